//! Request–response workloads over persistent connections (`pingpong`, `http`): every
//! connection sends one request, waits for the whole response, checks it, records the
//! round trip and sends the next. What a request and a valid response are is the
//! `Exchange` of each workload; the loop, the timing and the connection handling are here.

use std::io;
use std::time::Instant;

use mio::event::Event;
use mio::Registry;

use super::Workload;
use crate::conn::{read_chunks, ConnTable};
use crate::schedule::Schedule;
use crate::stats::{micros, Stats};
use crate::tcp::write_pending;

/// One connection's side of the conversation.
pub trait Exchange {
    /// Makes the next request current.
    fn prepare(&mut self);
    /// The current request's bytes.
    fn request(&self) -> &[u8];
    /// Takes response bytes (`written`: request bytes sent so far). `Ok(Some(bytes))`
    /// once the response is complete and correct, with the bytes it counts for.
    fn take(&mut self, bytes: &[u8], written: usize) -> io::Result<Option<u64>>;
}

pub struct RoundTrips<X> {
    name: &'static str,
    table: ConnTable,
    conns: Vec<Conn<X>>,
    scratch: Vec<u8>,
}

struct Conn<X> {
    exchange: X,
    wpos: usize,
    /// When the current request was sent; `None` between round trips.
    sent_at: Option<Instant>,
}

impl<X: Exchange> RoundTrips<X> {
    /// `name` prefixes error messages; one exchange per connection.
    pub fn new(name: &'static str, table: ConnTable, exchanges: Vec<X>) -> RoundTrips<X> {
        RoundTrips {
            name,
            table,
            conns: exchanges
                .into_iter()
                .map(|exchange| Conn {
                    exchange,
                    wpos: 0,
                    sent_at: None,
                })
                .collect(),
            scratch: vec![0; 64 * 1024],
        }
    }

    /// `drain`: read until `WouldBlock` even after a short read or a completed round trip
    /// (the event reported a close or an error, which only a read will surface).
    fn service(
        &mut self,
        i: usize,
        drain: bool,
        sched: &Schedule,
        stats: &mut Stats,
    ) -> io::Result<()> {
        let Some(sock) = self.table.ready(i)? else {
            return Ok(());
        };
        let c = &mut self.conns[i];
        loop {
            if c.sent_at.is_none() {
                if !sched.issuing(Instant::now()) {
                    return Ok(());
                }
                c.exchange.prepare();
                c.wpos = 0;
                c.sent_at = Some(Instant::now());
                write_pending(sock, c.exchange.request(), &mut c.wpos)?;
                // Nothing can be unread here: the previous response was complete and the
                // server cannot answer what was not sent. The answer comes with a new
                // readable event, so a read now would only return WouldBlock (one syscall
                // per round trip saved).
                if !drain {
                    return Ok(());
                }
            }
            write_pending(sock, c.exchange.request(), &mut c.wpos)?;
            // Read even if the write is incomplete: the server may be answering the first
            // part and waiting for us to read before it reads more.
            let mut completed = false;
            read_chunks(sock, &mut self.scratch, drain, |bytes| {
                let Some(counted) = c.exchange.take(bytes, c.wpos)? else {
                    return Ok(true);
                };
                let now = Instant::now();
                let sent_at = c.sent_at.take().expect("a round trip is open");
                if sched.counting(now) {
                    stats.ops += 1;
                    stats.bytes += counted;
                    stats.latencies_us.push(micros(now - sent_at));
                }
                completed = true;
                Ok(false) // the next request goes out first
            })?;
            if !completed {
                return Ok(()); // drained: the rest of the response raises a new edge
            }
        }
    }
}

impl<X: Exchange> Workload for RoundTrips<X> {
    fn start(
        &mut self,
        registry: &Registry,
        _sched: &Schedule,
        stats: &mut Stats,
    ) -> io::Result<()> {
        // One latency sample per round trip: reserve so the vector rarely reallocates (and
        // copies megabytes) in the middle of the measurement.
        stats.latencies_us.reserve(1 << 18);
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
        let drain = event.is_read_closed() || event.is_error();
        if let Err(e) = self.service(i, drain, sched, stats) {
            stats.error(format_args!("{} connection {i}: {e}", self.name));
            self.table.close(registry, i);
        }
    }

    fn outstanding(&self) -> (u64, &'static str) {
        let n = (0..self.table.len())
            .filter(|&i| self.table.is_open(i) && self.conns[i].sent_at.is_some())
            .count();
        (n as u64, "round trips")
    }

    fn is_dead(&self) -> bool {
        self.table.open_count() == 0
    }
}
