//! A TCP proxy with no JS and no copy through user space: the limit a relay inside
//! reactor-socket is measured against. Every client connection gets its own upstream
//! connection (a non-blocking connect), and each direction moves bytes socket → pipe →
//! socket with `splice(2)`, through one pipe per direction kept for the connection's
//! life and reused by later connections (a small pool).
//!
//! Half-close is passed on: when one side's EOF has been relayed (the pipe empty), the
//! other side's write half is shut down; the pair closes once both directions are done,
//! or at once on an error (reset, broken pipe, refused upstream).
//!
//! Registrations are edge-triggered: a direction stops only when its source has nothing
//! to read and the pipe is empty, or when its destination is full (the pipe then holds
//! bytes, and the destination's writable edge resumes it). A busy pair gets a bounded
//! budget per turn and is resumed after the other ready sources, as in `EchoServer`.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token};

use reactor_core::sys::pipe::Pipe;
use crate::tcp;

/// Tokens below this are the embedder's stop sources (see `inherit`) and `WAKE`.
pub const WAKE: Token = Token(2);
const CONTROL_END: usize = 3;
const LISTENER: Token = Token(3);
const FIRST_PAIR: usize = 4;

/// Bytes asked of one splice: the default pipe capacity.
const SPLICE_LEN: usize = 64 * 1024;
/// Splice rounds per direction per turn before the pair is deferred.
const BUDGET: usize = 16;
/// Idle pipes kept for later connections.
const POOL_MAX: usize = 256;

pub struct SpliceProxy {
    poll: Poll,
    listener: TcpListener,
    upstream: SocketAddr,
    /// Pair slots, indexed by (token − FIRST_PAIR) / 2; `free` lists the empty ones.
    pairs: Vec<Option<Pair>>,
    free: Vec<usize>,
    /// Pairs that used their budget and still have work.
    deferred: Vec<usize>,
    pipes: Vec<Pipe>,
    open: Arc<AtomicUsize>,
}

struct Pair {
    client: TcpStream,
    upstream: TcpStream,
    upstream_connected: bool,
    /// Client → upstream.
    up: Leg,
    /// Upstream → client.
    down: Leg,
}

/// One direction of a pair.
struct Leg {
    pipe: Pipe,
    /// Bytes read from the source and not yet written to the destination.
    in_pipe: usize,
    eof: bool,
    /// The destination's write half is shut down (this direction is done).
    shut: bool,
}

enum Next {
    Wait,
    Defer,
    Close,
}

impl SpliceProxy {
    /// Takes a non-blocking, listening socket; every client is relayed to `upstream`.
    pub fn new(listener: TcpListener, upstream: SocketAddr) -> io::Result<SpliceProxy> {
        let poll = Poll::new()?;
        let mut proxy = SpliceProxy {
            poll,
            listener,
            upstream,
            pairs: Vec::new(),
            free: Vec::new(),
            deferred: Vec::new(),
            pipes: Vec::new(),
            open: Arc::default(),
        };
        proxy
            .poll
            .registry()
            .register(&mut proxy.listener, LISTENER, Interest::READABLE)?;
        Ok(proxy)
    }

    /// For registering stop sources (tokens 0 and 1) or a `WAKE` waker.
    pub fn registry(&self) -> &Registry {
        self.poll.registry()
    }

    /// The number of connection pairs open, readable from another thread while `run`
    /// serves (for tests that check every pair is closed).
    pub fn open_pairs(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.open)
    }

    /// Serves until `stop` returns true for an event on a control token.
    pub fn run(&mut self, mut stop: impl FnMut(&Event) -> bool) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = (!self.deferred.is_empty()).then_some(Duration::ZERO);
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let resumed = std::mem::take(&mut self.deferred);
            for event in events.iter() {
                match event.token() {
                    t if t.0 < CONTROL_END => {
                        if stop(event) {
                            return Ok(());
                        }
                    }
                    LISTENER => self.accept(),
                    t => self.service((t.0 - FIRST_PAIR) / 2),
                }
            }
            for slot in resumed {
                self.service(slot);
            }
        }
    }

    fn accept(&mut self) {
        loop {
            // mio accepts with accept4(SOCK_NONBLOCK | SOCK_CLOEXEC).
            let client = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    // EMFILE and the like: retry when the next connection arrives.
                    eprintln!("splice-proxy: accept: {e}");
                    return;
                }
            };
            if let Err(e) = self.open_pair(client) {
                eprintln!("splice-proxy: {e}");
            }
        }
    }

    /// Connects upstream for `client` and registers both; on failure `client` is closed.
    fn open_pair(&mut self, client: TcpStream) -> io::Result<()> {
        let _ = client.set_nodelay(true);
        let upstream = tcp::connect(self.upstream)?;
        let (up, down) = (self.take_pipe()?, self.take_pipe()?);
        let slot = self.free.pop().unwrap_or_else(|| {
            self.pairs.push(None);
            self.pairs.len() - 1
        });
        let mut pair = Pair {
            client,
            upstream,
            upstream_connected: false,
            up: Leg::new(up),
            down: Leg::new(down),
        };
        let both = Interest::READABLE | Interest::WRITABLE;
        let registry = self.poll.registry();
        let registered = registry
            .register(&mut pair.client, Token(FIRST_PAIR + 2 * slot), both)
            .and_then(|()| {
                registry.register(&mut pair.upstream, Token(FIRST_PAIR + 2 * slot + 1), both)
            });
        if let Err(e) = registered {
            let _ = registry.deregister(&mut pair.client);
            self.free.push(slot);
            return Err(e);
        }
        // Registration reports what is already readable: nothing to pump yet.
        self.pairs[slot] = Some(pair);
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn take_pipe(&mut self) -> io::Result<Pipe> {
        match self.pipes.pop() {
            Some(p) => Ok(p),
            None => Pipe::new(SPLICE_LEN),
        }
    }

    fn service(&mut self, slot: usize) {
        let Some(Some(pair)) = self.pairs.get_mut(slot) else {
            return;
        };
        match pair.pump() {
            Ok(Next::Wait) => {}
            Ok(Next::Defer) => self.deferred.push(slot),
            Ok(Next::Close) | Err(_) => self.close(slot),
        }
    }

    fn close(&mut self, slot: usize) {
        let Some(mut pair) = self.pairs[slot].take() else {
            return;
        };
        let registry = self.poll.registry();
        // Deregister before the close, so nothing stale stays in epoll.
        let _ = registry.deregister(&mut pair.client);
        let _ = registry.deregister(&mut pair.upstream);
        // A pipe still holding bytes would hand them to the next pair: close it instead.
        for leg in [pair.up, pair.down] {
            if leg.in_pipe == 0 && self.pipes.len() < POOL_MAX {
                self.pipes.push(leg.pipe);
            }
        }
        self.free.push(slot);
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Pair {
    fn pump(&mut self) -> io::Result<Next> {
        if !self.upstream_connected {
            if !tcp::is_connected(&self.upstream)? {
                return Ok(Next::Wait);
            }
            self.upstream_connected = true;
        }
        let more_up = self.up.pump(&self.client, &self.upstream)?;
        let more_down = self.down.pump(&self.upstream, &self.client)?;
        Ok(if self.up.shut && self.down.shut {
            Next::Close
        } else if more_up || more_down {
            Next::Defer
        } else {
            Next::Wait
        })
    }
}

impl Leg {
    fn new(pipe: Pipe) -> Leg {
        Leg {
            pipe,
            in_pipe: 0,
            eof: false,
            shut: false,
        }
    }

    /// Moves bytes from `from` to `to` until neither side can move (`Ok(false)`) or the
    /// budget is used (`Ok(true)`: resume later).
    fn pump(&mut self, from: &TcpStream, to: &TcpStream) -> io::Result<bool> {
        for _ in 0..BUDGET {
            let mut progress = false;
            if self.in_pipe > 0 {
                if let Some(n @ 1..) = would_block(self.pipe.drain_into(to.as_raw_fd(), self.in_pipe))? {
                    self.in_pipe -= n;
                    progress = true;
                }
            }
            if !self.eof {
                // `None` is an empty source or a full pipe; in the second case the pipe
                // holds bytes for `to`, whose writable edge brings us back.
                if let Some(n) = would_block(self.pipe.fill_from(from.as_raw_fd(), SPLICE_LEN))? {
                    if n == 0 {
                        self.eof = true;
                    }
                    self.in_pipe += n;
                    progress = true;
                }
            }
            if self.eof && self.in_pipe == 0 && !self.shut {
                match to.shutdown(Shutdown::Write) {
                    Ok(()) => {}
                    // The peer is already gone; nothing left to tell it.
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                    Err(e) => return Err(e),
                }
                self.shut = true;
            }
            if !progress {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// `Ok(None)` for EAGAIN (an empty source, a full pipe or a full destination): wait for an edge.
fn would_block(r: io::Result<usize>) -> io::Result<Option<usize>> {
    match r {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}
