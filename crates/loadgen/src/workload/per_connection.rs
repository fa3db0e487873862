//! What the connect-per-operation workloads (`connect`, `tls-connect`) share: each slot opens a
//! connection, runs one echo on it, closes it and opens the next at once; a slot that cannot open
//! (no ephemeral port left, ...) tries again from the tick. The workloads differ only in how a
//! connection is opened and advanced (plain bytes, or through a TLS session).

use std::io;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::Registry;

use crate::conn::ConnTable;
use crate::schedule::Schedule;
use crate::stats::{micros, Stats};

/// How soon a slot whose `connect()` failed outright (e.g. no ephemeral port left) tries again.
const RETRY: Duration = Duration::from_millis(1);

pub(super) trait PerConnection {
    /// What the workload's errors are called ("connect slot 3: ...").
    const NAME: &'static str;
    fn table(&self) -> &ConnTable;
    fn table_mut(&mut self) -> &mut ConnTable;
    /// The message size: the bytes one completed operation counts.
    fn size(&self) -> usize;
    /// When slot `i`'s current connection was started.
    fn started(&self, i: usize) -> Instant;
    /// Starts slot `i`'s next connection; a failure is counted in `stats` (the tick retries).
    fn open(&mut self, registry: &Registry, i: usize, stats: &mut Stats);
    /// Advances slot `i` on `event`: `Ok(true)` once its echo is complete.
    fn advance(&mut self, i: usize, event: &Event) -> io::Result<bool>;
    /// Drops what slot `i` kept for its connection (a TLS session), before the close.
    fn release(&mut self, _i: usize) {}

    /// Opens every slot's first connection.
    fn open_all(&mut self, registry: &Registry, stats: &mut Stats) {
        stats.latencies_us.reserve(1 << 16);
        for i in 0..self.table().len() {
            self.open(registry, i, stats);
        }
    }

    /// An event for slot `i`: once its echo is done (counted in the window) or failed (counted as
    /// an error), the connection closes and, while the schedule issues work, the next one opens.
    fn on_slot_event(&mut self, registry: &Registry, event: &Event, sched: &Schedule, stats: &mut Stats) {
        let i = event.token().0;
        let done = match self.advance(i, event) {
            Ok(false) => return,
            Ok(true) => true,
            Err(e) => {
                stats.error(format_args!("{} slot {i}: {e}", Self::NAME));
                false
            }
        };
        let now = Instant::now();
        if done && sched.counting(now) {
            stats.ops += 1;
            stats.bytes += self.size() as u64;
            stats.latencies_us.push(micros(now - self.started(i)));
        }
        self.release(i);
        self.table_mut().close(registry, i);
        if sched.issuing(now) {
            self.open(registry, i, stats);
        }
    }

    /// Opens the slots that are closed (their last `open` failed); returns when to try again.
    fn reopen_closed(&mut self, registry: &Registry, sched: &Schedule, stats: &mut Stats) -> Option<Instant> {
        let now = Instant::now();
        if !sched.issuing(now) {
            return None;
        }
        let mut retry = None;
        for i in 0..self.table().len() {
            if !self.table().is_open(i) {
                self.open(registry, i, stats);
                if !self.table().is_open(i) {
                    retry = Some(now + RETRY);
                }
            }
        }
        retry
    }
}
