//! `pingpong`: every connection sends one `size`-byte message, waits for the whole echo,
//! verifies it and records the round trip, then sends the next. With `--conns 1` this is
//! the server's latency; with many connections, its rate for small messages.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::tcp::{self, invalid};
use super::Workload;
use crate::args::Config;
use crate::pattern::Pattern;
use crate::schedule::Schedule;
use crate::stats::{micros, Stats};

pub struct Pingpong {
    addr: SocketAddr,
    conns_wanted: usize,
    size: usize,
    conns: Vec<Conn>,
    alive: usize,
    scratch: Vec<u8>,
}

struct Conn {
    sock: Option<TcpStream>,
    connected: bool,
    pattern: Pattern,
    msg: Vec<u8>,
    wpos: usize,
    /// Echo bytes of the current message received so far.
    got: usize,
    /// Stream offset of the current message (each message has different bytes).
    offset: u64,
    /// When the current message was sent; `None` between round trips.
    sent_at: Option<Instant>,
}

impl Pingpong {
    pub fn new(cfg: &Config) -> Pingpong {
        Pingpong {
            addr: cfg.addr,
            conns_wanted: cfg.conns,
            size: cfg.size,
            conns: Vec::new(),
            alive: 0,
            scratch: vec![0; 64 * 1024],
        }
    }

    /// `drain`: read until `WouldBlock` even after a short read (the event reported a
    /// close or an error, which only a read returning 0 or failing will surface).
    fn service(
        &mut self,
        i: usize,
        drain: bool,
        sched: &Schedule,
        stats: &mut Stats,
    ) -> io::Result<()> {
        let c = &mut self.conns[i];
        let Some(sock) = c.sock.as_mut() else {
            return Ok(());
        };
        if !c.connected {
            if !tcp::is_connected(sock)? {
                return Ok(());
            }
            c.connected = true;
        }
        loop {
            if c.sent_at.is_none() {
                if !sched.issuing(Instant::now()) {
                    return Ok(());
                }
                c.pattern.fill(c.offset, &mut c.msg);
                c.wpos = 0;
                c.got = 0;
                c.sent_at = Some(Instant::now());
                tcp::write_pending(sock, &c.msg, &mut c.wpos)?;
                // Nothing can be unread here: the previous echo was complete and the server
                // cannot echo what was not sent. This echo comes with a new readable event,
                // so a read now would only return WouldBlock (one syscall per round trip saved).
                if !drain {
                    return Ok(());
                }
            }
            tcp::write_pending(sock, &c.msg, &mut c.wpos)?;
            // Read even if the write is incomplete: the server may be echoing the first
            // part and waiting for us to read before it reads more.
            let Some(n) = tcp::read_once(sock, &mut self.scratch)? else {
                return Ok(());
            };
            if n == 0 {
                return Err(invalid("server closed the connection".into()));
            }
            if c.got + n > c.wpos {
                return Err(invalid(format!(
                    "server echoed {} bytes, only {} were sent",
                    c.got + n,
                    c.wpos
                )));
            }
            let echoed = &self.scratch[..n];
            c.pattern
                .verify(c.offset + c.got as u64, echoed)
                .map_err(|m| invalid(format!("echo mismatch: {m}")))?;
            c.got += n;
            if c.got == self.size {
                let now = Instant::now();
                let sent_at = c.sent_at.take().expect("a round trip is open");
                if sched.counting(now) {
                    stats.ops += 1;
                    stats.bytes += self.size as u64;
                    stats.latencies_us.push(micros(now - sent_at));
                }
                c.offset += self.size as u64;
            } else if n < self.scratch.len() && !drain {
                // A short read emptied the socket (epoll(7)): the rest of the echo will
                // raise a new edge.
                return Ok(());
            }
        }
    }

    fn kill(&mut self, registry: &Registry, i: usize) {
        if let Some(mut sock) = self.conns[i].sock.take() {
            let _ = registry.deregister(&mut sock);
            self.alive -= 1;
        }
    }
}

impl Workload for Pingpong {
    fn start(
        &mut self,
        registry: &Registry,
        _sched: &Schedule,
        stats: &mut Stats,
    ) -> io::Result<()> {
        // One latency sample per round trip: reserve so the vector rarely reallocates (and
        // copies megabytes) in the middle of the measurement.
        stats.latencies_us.reserve(1 << 18);
        for i in 0..self.conns_wanted {
            let mut sock = tcp::connect(self.addr)?;
            registry.register(&mut sock, Token(i), Interest::READABLE | Interest::WRITABLE)?;
            self.conns.push(Conn {
                sock: Some(sock),
                connected: false,
                pattern: Pattern::new(i as u64),
                msg: vec![0; self.size],
                wpos: 0,
                got: 0,
                offset: 0,
                sent_at: None,
            });
            self.alive += 1;
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
            stats.error(format_args!("pingpong connection {i}: {e}"));
            self.kill(registry, i);
        }
    }

    fn outstanding(&self) -> (u64, &'static str) {
        let n = self
            .conns
            .iter()
            .filter(|c| c.sock.is_some() && c.sent_at.is_some())
            .count();
        (n as u64, "round trips")
    }

    fn is_dead(&self) -> bool {
        self.alive == 0
    }
}
