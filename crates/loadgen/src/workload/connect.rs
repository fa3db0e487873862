//! `connect` (and `proxy-connect`, the same through a proxy): `conns` concurrent loops,
//! each doing non-blocking connect → write a `size`-byte message → read and verify its
//! echo → close, and starting over at once. Measures accept + short-lived-connection
//! cost. Refused or reset connections are counted as errors and the slot simply starts
//! a new connection.

use std::io;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::Registry;

use super::Workload;
use crate::args::Config;
use crate::conn::{read_chunks, ConnTable};
use crate::pattern::Pattern;
use crate::schedule::Schedule;
use crate::stats::{micros, Stats};
use crate::tcp::{invalid, write_pending};

/// How soon a slot whose `connect()` failed outright (e.g. no ephemeral port left) tries again.
const RETRY: Duration = Duration::from_millis(1);

pub struct Connect {
    size: usize,
    table: ConnTable,
    slots: Vec<Slot>,
    scratch: Vec<u8>,
}

struct Slot {
    pattern: Pattern,
    msg: Vec<u8>,
    wpos: usize,
    got: usize,
    /// Connections this slot has started; the message bytes differ per connection, so
    /// an echo from a previous connection on a reused port cannot pass.
    round: u64,
    started: Instant,
}

impl Connect {
    pub fn new(cfg: &Config) -> Connect {
        let slots = (0..cfg.conns)
            .map(|i| Slot {
                pattern: Pattern::new(i as u64),
                msg: vec![0; cfg.size],
                wpos: 0,
                got: 0,
                round: 0,
                started: Instant::now(),
            })
            .collect();
        Connect {
            size: cfg.size,
            table: ConnTable::new(cfg.addr, cfg.conns),
            slots,
            scratch: vec![0; 64 * 1024],
        }
    }

    /// Starts slot `i`'s next connection; a failure is counted and retried from `on_tick`.
    fn open(&mut self, registry: &Registry, i: usize, stats: &mut Stats) {
        match self.table.open(registry, i) {
            Ok(()) => {
                let s = &mut self.slots[i];
                s.pattern.fill(s.round * self.size as u64, &mut s.msg);
                s.round += 1;
                s.wpos = 0;
                s.got = 0;
                s.started = Instant::now();
            }
            Err(e) => stats.error(format_args!("connect slot {i}: {e}")),
        }
    }

    /// Advances slot `i`; `Ok(true)` when its connection completed its echo. `drain`: the
    /// event reported a close or error, so read to the end even after a short read.
    fn service(&mut self, i: usize, drain: bool) -> io::Result<bool> {
        let size = self.size;
        let Some(sock) = self.table.ready(i)? else {
            return Ok(false);
        };
        let s = &mut self.slots[i];
        write_pending(sock, &s.msg, &mut s.wpos)?;
        read_chunks(sock, &mut self.scratch, drain, |echoed| {
            let n = echoed.len();
            if s.got + n > s.wpos {
                return Err(invalid(format!(
                    "server echoed {} bytes, only {} were sent",
                    s.got + n,
                    s.wpos
                )));
            }
            let offset = (s.round - 1) * size as u64 + s.got as u64;
            s.pattern
                .verify(offset, echoed)
                .map_err(|m| invalid(format!("echo mismatch: {m}")))?;
            s.got += n;
            Ok(s.got < size)
        })
        .map_err(|e| invalid(format!("{e} (after {} of {size} echo bytes)", s.got)))?;
        Ok(s.got == size)
    }
}

impl Workload for Connect {
    fn start(
        &mut self,
        registry: &Registry,
        _sched: &Schedule,
        stats: &mut Stats,
    ) -> io::Result<()> {
        stats.latencies_us.reserve(1 << 16);
        for i in 0..self.slots.len() {
            self.open(registry, i, stats);
        }
        Ok(())
    }

    fn on_event(
        &mut self,
        registry: &Registry,
        event: &Event,
        sched: &Schedule,
        stats: &mut Stats,
    ) {
        let i = event.token().0;
        let done = match self.service(i, event.is_read_closed() || event.is_error()) {
            Ok(false) => return,
            Ok(true) => true,
            Err(e) => {
                stats.error(format_args!("connect slot {i}: {e}"));
                false
            }
        };
        let now = Instant::now();
        if done && sched.counting(now) {
            stats.ops += 1;
            stats.bytes += self.size as u64;
            stats.latencies_us.push(micros(now - self.slots[i].started));
        }
        self.table.close(registry, i);
        if sched.issuing(now) {
            self.open(registry, i, stats);
        }
    }

    fn on_tick(
        &mut self,
        registry: &Registry,
        sched: &Schedule,
        stats: &mut Stats,
    ) -> Option<Instant> {
        let now = Instant::now();
        if !sched.issuing(now) {
            return None;
        }
        let mut retry = None;
        for i in 0..self.slots.len() {
            if !self.table.is_open(i) {
                self.open(registry, i, stats);
                if !self.table.is_open(i) {
                    retry = Some(now + RETRY);
                }
            }
        }
        retry
    }

    fn outstanding(&self) -> (u64, &'static str) {
        (self.table.open_count() as u64, "connections")
    }
}
