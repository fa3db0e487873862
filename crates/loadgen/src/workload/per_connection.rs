//! What the connect-per-operation workloads (`connect`, `tls-connect`) share: each slot opens a
//! connection, sends one message, verifies its echo, closes it and opens the next at once; a slot
//! that cannot open (no ephemeral port left, ...) tries again from the tick. The workloads differ
//! only in how bytes reach the socket (plain, or through a TLS session).

use std::io;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::Registry;

use super::Workload;
use crate::args::Config;
use crate::conn::ConnTable;
use crate::pattern::Pattern;
use crate::schedule::Schedule;
use crate::stats::{micros, Stats};
use crate::tcp::invalid;

/// How soon a slot whose `connect()` failed outright (e.g. no ephemeral port left) tries again.
const RETRY: Duration = Duration::from_millis(1);

/// One slot's current connection: its message, how much of it was written, how much came back.
pub(super) struct EchoSlot {
    pattern: Pattern,
    pub msg: Vec<u8>,
    /// Bytes of `msg` written (to the socket, or taken by the TLS session).
    pub wpos: usize,
    /// Bytes echoed and verified.
    pub got: usize,
    /// Connections this slot has started; the message bytes differ per connection, so an echo
    /// from a previous connection on a reused port cannot pass.
    round: u64,
    started: Instant,
}

impl EchoSlot {
    fn new(i: usize, size: usize) -> EchoSlot {
        EchoSlot { pattern: Pattern::new(i as u64), msg: vec![0; size], wpos: 0, got: 0, round: 0, started: Instant::now() }
    }

    /// A new connection: the next message, nothing written or echoed yet.
    fn begin(&mut self) {
        let size = self.msg.len() as u64;
        self.pattern.fill(self.round * size, &mut self.msg);
        self.round += 1;
        self.wpos = 0;
        self.got = 0;
        self.started = Instant::now();
    }

    /// Verifies an echoed chunk against what was sent, and counts it.
    pub fn echoed(&mut self, chunk: &[u8]) -> io::Result<()> {
        let n = chunk.len();
        if self.got + n > self.wpos {
            return Err(invalid(format!("server echoed {} bytes, only {} were sent", self.got + n, self.wpos)));
        }
        let offset = (self.round - 1) * self.msg.len() as u64 + self.got as u64;
        self.pattern.verify(offset, chunk).map_err(|m| invalid(format!("echo mismatch: {m}")))?;
        self.got += n;
        Ok(())
    }

    /// The whole message came back.
    pub fn complete(&self) -> bool {
        self.got == self.msg.len()
    }

    /// An error with how far the echo had come.
    pub fn failed(&self, e: io::Error) -> io::Error {
        invalid(format!("{e} (after {} of {} echo bytes)", self.got, self.msg.len()))
    }
}

/// The slots of a connect-per-operation workload: their sockets and their echoes.
pub(super) struct Slots {
    pub table: ConnTable,
    pub echoes: Vec<EchoSlot>,
    /// Where reads land.
    pub scratch: Vec<u8>,
}

impl Slots {
    pub fn new(cfg: &Config) -> Slots {
        Slots {
            table: ConnTable::new(cfg.addr, cfg.conns),
            echoes: (0..cfg.conns).map(|i| EchoSlot::new(i, cfg.size)).collect(),
            scratch: vec![0; 64 * 1024],
        }
    }
}

pub(super) trait PerConnection {
    /// What the workload's errors are called ("connect slot 3: ...").
    const NAME: &'static str;
    fn slots(&self) -> &Slots;
    fn slots_mut(&mut self) -> &mut Slots;
    /// Makes what slot `i` needs besides its socket (a TLS session), before it connects.
    fn prepare(&mut self, _i: usize) -> io::Result<()> {
        Ok(())
    }
    /// Advances slot `i` on `event`: `Ok(true)` once its echo is complete.
    fn advance(&mut self, i: usize, event: &Event) -> io::Result<bool>;
    /// Drops what `prepare` made for slot `i`, before the close.
    fn release(&mut self, _i: usize) {}

    /// Starts slot `i`'s next connection; a failure is counted in `stats` (the tick retries).
    fn open(&mut self, registry: &Registry, i: usize, stats: &mut Stats) {
        let opened = self.prepare(i).and_then(|()| self.slots_mut().table.open(registry, i));
        match opened {
            Ok(()) => self.slots_mut().echoes[i].begin(),
            Err(e) => {
                self.release(i);
                stats.error(format_args!("{} slot {i}: {e}", Self::NAME));
            }
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
            let echo = &self.slots().echoes[i];
            stats.ops += 1;
            stats.bytes += echo.msg.len() as u64;
            stats.latencies_us.push(micros(now - echo.started));
        }
        self.release(i);
        self.slots_mut().table.close(registry, i);
        if sched.issuing(now) {
            self.open(registry, i, stats);
        }
    }
}

impl<W: PerConnection> Workload for W {
    fn start(&mut self, registry: &Registry, _sched: &Schedule, stats: &mut Stats) -> io::Result<()> {
        stats.latencies_us.reserve(1 << 16);
        for i in 0..self.slots().table.len() {
            self.open(registry, i, stats);
        }
        Ok(())
    }

    fn on_event(&mut self, registry: &Registry, event: &Event, sched: &Schedule, stats: &mut Stats) {
        self.on_slot_event(registry, event, sched, stats)
    }

    /// Opens the slots that are closed (their last `open` failed); returns when to try again.
    fn on_tick(&mut self, registry: &Registry, sched: &Schedule, stats: &mut Stats) -> Option<Instant> {
        let now = Instant::now();
        if !sched.issuing(now) {
            return None;
        }
        let mut retry = None;
        for i in 0..self.slots().table.len() {
            if !self.slots().table.is_open(i) {
                self.open(registry, i, stats);
                if !self.slots().table.is_open(i) {
                    retry = Some(now + RETRY);
                }
            }
        }
        retry
    }

    fn outstanding(&self) -> (u64, &'static str) {
        (self.slots().table.open_count() as u64, "connections")
    }
}
