//! `stream` (and `proxy`, the same through a proxy): every connection writes `size`-byte
//! messages continuously and verifies the echo, with at most `inflight` messages
//! unanswered per connection. The bound keeps the data in flight small (64 KiB by
//! default) so the figure is the server's echo rate, not how much the kernel's socket
//! buffers can absorb.
//!
//! Everything the window allows is written with one `writev` of slices of the pattern's
//! tile: no buffer is filled, and a window of several messages costs one syscall.

use std::io::{self, IoSlice};

use mio::event::Event;
use mio::Registry;

use super::echo_window::{outstanding, EchoWindow};
use super::Workload;
use crate::args::Config;
use crate::conn::{read_chunks, ConnTable};
use crate::schedule::Schedule;
use crate::stats::Stats;
use crate::tcp::writev_once;

/// Slices per `writev`: a 64 KiB window spans at most five tile slices.
const MAX_IOV: usize = 16;

pub struct Stream {
    size: u64,
    /// Bytes allowed unanswered per connection.
    window: u64,
    table: ConnTable,
    conns: Vec<EchoWindow>,
    scratch: Vec<u8>,
}

impl Stream {
    pub fn new(cfg: &Config) -> Stream {
        Stream {
            size: cfg.size as u64,
            window: (cfg.size * cfg.inflight) as u64,
            table: ConnTable::new(cfg.addr, cfg.conns),
            conns: (0..cfg.conns).map(EchoWindow::new).collect(),
            scratch: vec![0; 256 * 1024],
        }
    }

    fn service(
        &mut self,
        i: usize,
        event: &Event,
        sched: &Schedule,
        stats: &mut Stats,
    ) -> io::Result<()> {
        let size = self.size;
        let Some(sock) = self.table.ready(i)? else {
            return Ok(());
        };
        let c = &mut self.conns[i];
        let drain = event.is_read_closed() || event.is_error();
        if event.is_readable() || drain {
            read_chunks(sock, &mut self.scratch, drain, |chunk| {
                c.echoed(chunk, size, sched, stats).map(|()| true)
            })?;
        }
        // Reading may have opened the window; a writable event may have made room.
        c.admit(size, self.window, sched);
        while c.written < c.queued {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let mut k = 0;
            for s in c
                .pattern
                .slices(c.written, c.queued - c.written)
                .take(MAX_IOV)
            {
                iov[k] = IoSlice::new(s);
                k += 1;
            }
            match writev_once(sock, &iov[..k])? {
                Some(n) => c.written += n as u64,
                None => break,
            }
        }
        Ok(())
    }
}

impl Workload for Stream {
    fn start(
        &mut self,
        registry: &Registry,
        _sched: &Schedule,
        _stats: &mut Stats,
    ) -> io::Result<()> {
        for i in 0..self.table.len() {
            self.table.open(registry, i)?;
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
        if let Err(e) = self.service(i, event, sched, stats) {
            stats.error(format_args!("stream connection {i}: {e}"));
            self.table.close(registry, i);
        }
    }

    fn outstanding(&self) -> (u64, &'static str) {
        (outstanding(&self.table, self.conns.iter()), "echo bytes")
    }

    fn is_dead(&self) -> bool {
        self.table.open_count() == 0
    }
}
