//! `connect` (and `proxy-connect`, the same through a proxy): `conns` concurrent loops,
//! each doing non-blocking connect → write a `size`-byte message → read and verify its
//! echo → close, and starting over at once. Measures accept + short-lived-connection
//! cost. Refused or reset connections are counted as errors and the slot simply starts
//! a new connection.

use std::io;
use std::time::Instant;

use mio::event::Event;
use mio::Registry;

use super::per_connection::PerConnection;
use super::Workload;
use crate::args::Config;
use crate::conn::{read_chunks, ConnTable};
use crate::pattern::Pattern;
use crate::schedule::Schedule;
use crate::stats::Stats;
use crate::tcp::{invalid, write_pending};

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

impl PerConnection for Connect {
    const NAME: &'static str = "connect";
    fn table(&self) -> &ConnTable {
        &self.table
    }
    fn table_mut(&mut self) -> &mut ConnTable {
        &mut self.table
    }
    fn size(&self) -> usize {
        self.size
    }
    fn started(&self, i: usize) -> Instant {
        self.slots[i].started
    }
    fn open(&mut self, registry: &Registry, i: usize, stats: &mut Stats) {
        Connect::open(self, registry, i, stats)
    }
    fn advance(&mut self, i: usize, event: &Event) -> io::Result<bool> {
        self.service(i, event.is_read_closed() || event.is_error())
    }
}

impl Workload for Connect {
    fn start(&mut self, registry: &Registry, _sched: &Schedule, stats: &mut Stats) -> io::Result<()> {
        self.open_all(registry, stats);
        Ok(())
    }

    fn on_event(&mut self, registry: &Registry, event: &Event, sched: &Schedule, stats: &mut Stats) {
        self.on_slot_event(registry, event, sched, stats)
    }

    fn on_tick(&mut self, registry: &Registry, sched: &Schedule, stats: &mut Stats) -> Option<Instant> {
        self.reopen_closed(registry, sched, stats)
    }

    fn outstanding(&self) -> (u64, &'static str) {
        (self.table.open_count() as u64, "connections")
    }
}
