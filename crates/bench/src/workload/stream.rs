//! `stream`: every connection writes `size`-byte messages continuously and verifies the
//! echo, with at most `inflight` messages unanswered per connection. The bound keeps the
//! data in flight small (64 KiB by default) so the figure is the server's echo rate, not
//! how much the kernel's socket buffers can absorb.

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
use crate::stats::Stats;

pub struct Stream {
    addr: SocketAddr,
    conns_wanted: usize,
    size: usize,
    /// Bytes allowed unanswered per connection.
    window: u64,
    conns: Vec<Conn>,
    alive: usize,
    scratch: Vec<u8>,
}

struct Conn {
    sock: Option<TcpStream>,
    connected: bool,
    pattern: Pattern,
    /// The message being written, and how much of it has been written.
    wbuf: Vec<u8>,
    wpos: usize,
    /// Stream bytes put into `wbuf` so far (the next message starts here).
    queued: u64,
    /// Stream bytes echoed and verified so far.
    received: u64,
}

impl Stream {
    pub fn new(cfg: &Config) -> Stream {
        Stream {
            addr: cfg.addr,
            conns_wanted: cfg.conns,
            size: cfg.size,
            window: (cfg.size * cfg.inflight) as u64,
            conns: Vec::new(),
            alive: 0,
            scratch: vec![0; 64 * 1024],
        }
    }

    fn service(
        &mut self,
        i: usize,
        event: &Event,
        sched: &Schedule,
        stats: &mut Stats,
    ) -> io::Result<()> {
        let size = self.size as u64;
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
        if event.is_readable() || event.is_read_closed() {
            let written = c.queued - (c.wbuf.len() - c.wpos) as u64;
            while let Some(n) = tcp::read_once(sock, &mut self.scratch)? {
                if n == 0 {
                    return Err(invalid("server closed the connection".into()));
                }
                if c.received + n as u64 > written {
                    return Err(invalid(format!(
                        "server echoed more than the {written} bytes sent"
                    )));
                }
                // A chunk with any wrong byte counts nothing, and the connection is dropped:
                // after one wrong byte the stream cannot be trusted.
                c.pattern
                    .verify(c.received, &self.scratch[..n])
                    .map_err(|m| invalid(format!("echo mismatch: {m}")))?;
                if sched.counting(Instant::now()) {
                    stats.bytes += n as u64;
                    stats.ops += (c.received + n as u64) / size - c.received / size;
                }
                c.received += n as u64;
                if n < self.scratch.len() && !(event.is_read_closed() || event.is_error()) {
                    // A short read emptied the socket (epoll(7)): more data raises a new
                    // edge, so the WouldBlock read can be skipped.
                    break;
                }
            }
        }
        // Reading may have opened the window; a writable event may have made room.
        let issuing = sched.issuing(Instant::now());
        loop {
            if c.wpos == c.wbuf.len() {
                if !issuing || c.queued - c.received + size > self.window {
                    return Ok(());
                }
                c.wbuf.resize(self.size, 0);
                c.pattern.fill(c.queued, &mut c.wbuf);
                c.queued += size;
                c.wpos = 0;
            }
            if !tcp::write_pending(sock, &c.wbuf, &mut c.wpos)? {
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

impl Workload for Stream {
    fn start(
        &mut self,
        registry: &Registry,
        _sched: &Schedule,
        _stats: &mut Stats,
    ) -> io::Result<()> {
        for i in 0..self.conns_wanted {
            let mut sock = tcp::connect(self.addr)?;
            registry.register(&mut sock, Token(i), Interest::READABLE | Interest::WRITABLE)?;
            self.conns.push(Conn {
                sock: Some(sock),
                connected: false,
                pattern: Pattern::new(i as u64),
                wbuf: Vec::new(),
                wpos: 0,
                queued: 0,
                received: 0,
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
        if let Err(e) = self.service(i, event, sched, stats) {
            stats.error(format_args!("stream connection {i}: {e}"));
            self.kill(registry, i);
        }
    }

    fn outstanding(&self) -> (u64, &'static str) {
        let n = self
            .conns
            .iter()
            .filter(|c| c.sock.is_some())
            .map(|c| c.queued - c.received)
            .sum();
        (n, "echo bytes")
    }

    fn is_dead(&self) -> bool {
        self.alive == 0
    }
}
