//! A plain mio echo server (no JS): the practical limit of the machine, to compare
//! reactor-socket and Node against.
//!
//! TCP: everything read is written back. Data the peer is not reading fast enough is
//! kept per connection, and reading from that connection stops until it has drained, so
//! memory stays bounded by one read buffer per slow peer. UDP: each datagram goes back
//! to its sender, up to 64 per `recvmmsg` and per `sendmmsg` (see `EchoBatch`).
//!
//! Registrations are edge-triggered: every source is read/accepted until `WouldBlock`,
//! except that one busy source gets a bounded budget per turn and is then resumed after
//! the other ready sources (fairness), rather than monopolising the loop. A short read
//! from a stream socket also proves it empty (epoll(7)), which saves the `WouldBlock`
//! read — a third of the syscalls of a small-message echo.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::time::Duration;

use mio::event::Event;
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Registry, Token};

use crate::echo_batch::EchoBatch;

/// Tokens the embedder registers its stop sources under (stdin, a signalfd, a `Waker`);
/// an event on any of them is passed to the `run` callback.
pub use crate::inherit::{SIGNAL, STDIN};
pub const WAKE: Token = Token(2);
const CONTROL_END: usize = 3;
const LISTENER: Token = Token(3);
const UDP: Token = Token(4);
const FIRST_CONN: usize = 5;

/// Reads per connection (of up to `BUF_LEN` each) or datagram batches (of up to 64) per
/// turn before the source is deferred behind the others.
const TCP_BUDGET: usize = 16;
const UDP_BUDGET: usize = 8;
const BUF_LEN: usize = 64 * 1024;

pub struct EchoServer {
    poll: Poll,
    listener: Option<TcpListener>,
    udp: Option<UdpSocket>,
    /// Connection slots, indexed by token − FIRST_CONN; `free` lists the empty ones.
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// Sources that used their budget and still have work.
    deferred: Vec<Token>,
    /// Shared read buffer: data is written back straight from it, and only the part the
    /// peer cannot take yet is copied into the connection.
    scratch: Box<[u8]>,
    /// Datagrams received and their senders; echoes that would block stay here until the
    /// socket is writable, and no datagram is read meanwhile.
    udp_batch: EchoBatch,
}

struct Conn {
    stream: TcpStream,
    /// Echo data the peer has not taken yet.
    backlog: Vec<u8>,
    backlog_pos: usize,
    peer_closed: bool,
}

enum Next {
    /// Wait for the next event.
    Wait,
    /// Budget used up with work left: resume after the other ready sources.
    Defer,
    Close,
}

impl EchoServer {
    /// Takes non-blocking sockets (the listener already listening).
    pub fn new(listener: Option<TcpListener>, udp: Option<UdpSocket>) -> io::Result<EchoServer> {
        let poll = Poll::new()?;
        let mut server = EchoServer {
            poll,
            listener,
            udp,
            conns: Vec::new(),
            free: Vec::new(),
            deferred: Vec::new(),
            scratch: vec![0; BUF_LEN].into_boxed_slice(),
            udp_batch: EchoBatch::default(),
        };
        if let Some(l) = server.listener.as_mut() {
            server
                .poll
                .registry()
                .register(l, LISTENER, Interest::READABLE)?;
        }
        if let Some(u) = server.udp.as_mut() {
            server
                .poll
                .registry()
                .register(u, UDP, Interest::READABLE | Interest::WRITABLE)?;
        }
        Ok(server)
    }

    /// For registering stop sources under `STDIN`, `SIGNAL` or `WAKE`.
    pub fn registry(&self) -> &Registry {
        self.poll.registry()
    }

    /// Serves until `stop` returns true for an event on a control token.
    pub fn run(&mut self, mut stop: impl FnMut(&Event) -> bool) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = if self.deferred.is_empty() {
                None
            } else {
                Some(Duration::ZERO)
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            // Sources deferred last turn go after this turn's events.
            let resumed = std::mem::take(&mut self.deferred);
            for event in events.iter() {
                match event.token() {
                    t if t.0 < CONTROL_END => {
                        if stop(event) {
                            return Ok(());
                        }
                    }
                    // A reported close or error only shows through a read that returns 0 or
                    // fails, so such events are read to the end.
                    t => self.dispatch(t, event.is_read_closed() || event.is_error()),
                }
            }
            for t in resumed {
                self.dispatch(t, true);
            }
        }
    }

    fn dispatch(&mut self, token: Token, drain: bool) {
        match token {
            LISTENER => self.accept(),
            UDP => self.echo_datagrams(),
            t => self.echo_stream(t, drain),
        }
    }

    fn accept(&mut self) {
        let Some(listener) = self.listener.as_ref() else {
            return;
        };
        loop {
            // mio accepts with accept4(SOCK_NONBLOCK | SOCK_CLOEXEC).
            let (mut stream, _) = match listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // The peer gave up before we accepted (ECONNABORTED), or a signal: next one.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    // EMFILE and the like: retry when the next connection arrives instead
                    // of spinning on an error that will not clear by itself.
                    eprintln!("echo-server: accept: {e}");
                    return;
                }
            };
            let _ = stream.set_nodelay(true);
            let slot = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            let token = Token(FIRST_CONN + slot);
            // Registration reports data that is already waiting, so no read is needed here.
            if let Err(e) = self.poll.registry().register(
                &mut stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            ) {
                eprintln!("echo-server: register: {e}");
                self.free.push(slot);
                continue;
            }
            self.conns[slot] = Some(Conn {
                stream,
                backlog: Vec::new(),
                backlog_pos: 0,
                peer_closed: false,
            });
        }
    }

    fn echo_stream(&mut self, token: Token, drain: bool) {
        let slot = token.0 - FIRST_CONN;
        let Some(Some(conn)) = self.conns.get_mut(slot) else {
            return;
        };
        match conn.pump(&mut self.scratch, drain) {
            Next::Wait => {}
            Next::Defer => self.deferred.push(token),
            Next::Close => {
                if let Some(mut conn) = self.conns[slot].take() {
                    // Deregister before the close, so nothing stale stays in epoll.
                    let _ = self.poll.registry().deregister(&mut conn.stream);
                    self.free.push(slot);
                }
            }
        }
    }

    fn echo_datagrams(&mut self) {
        let Some(sock) = self.udp.as_ref() else {
            return;
        };
        for _ in 0..UDP_BUDGET {
            // Echoes that would block are kept, and nothing is read until they are sent.
            match self.udp_batch.send_back(sock.as_fd()) {
                Ok(true) => {}
                Ok(false) => return, // wait for writable
                Err(e) => {
                    eprintln!("echo-server: udp send: {e}");
                    return;
                }
            }
            match self.udp_batch.recv(sock.as_fd()) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    eprintln!("echo-server: udp recv: {e}");
                    return;
                }
            }
        }
        self.deferred.push(UDP);
    }
}

impl Conn {
    /// Echoes until the socket would block (or a short read shows it empty, unless
    /// `drain`), the budget is used, or the connection ends.
    fn pump(&mut self, scratch: &mut [u8], drain: bool) -> Next {
        for _ in 0..TCP_BUDGET {
            // Flush what the peer has not taken before reading more: the bound on memory.
            while self.backlog_pos < self.backlog.len() {
                match self.stream.write(&self.backlog[self.backlog_pos..]) {
                    Ok(n) => self.backlog_pos += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Wait,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Next::Close,
                }
            }
            self.backlog.clear();
            self.backlog_pos = 0;
            if self.peer_closed {
                // Everything echoed; closing sends our FIN.
                return Next::Close;
            }
            let n = match self.stream.read(scratch) {
                Ok(0) => {
                    self.peer_closed = true;
                    continue;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Wait,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Next::Close,
            };
            let mut pos = 0;
            while pos < n {
                match self.stream.write(&scratch[pos..n]) {
                    Ok(w) => pos += w,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Next::Close,
                }
            }
            if pos < n {
                // The peer is slow: keep the rest, and read nothing more until it is sent.
                self.backlog.extend_from_slice(&scratch[pos..n]);
                return Next::Wait;
            }
            if n < scratch.len() && !drain {
                return Next::Wait;
            }
        }
        Next::Defer
    }
}
