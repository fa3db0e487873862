//! A native relay: bytes move both ways between two connections inside the core, never reaching
//! the consumer.
//!
//! Each direction copies small and splices large, as HAProxy's `splice-auto` does: it starts by
//! copying (one `recv` into a scratch buffer the engine lends, one `send`: no pipe, no descriptor),
//! moves to `splice(2)` through a pipe once reads come in large (bulk transfer: zero copy), and
//! back to copying when they turn small again. Where the kernel refuses to splice (EINVAL) the
//! direction copies for good.
//!
//! An event pumps only the direction it concerns (see `Relay::directions`), and a short read on
//! the copy path ends the pass as `Stream::read_into`'s does: a request and its answer cost two
//! `recv` and two `send`, not twice as many `recv` that find nothing.
//!
//! Per direction, at most `cap` bytes are held in the core (in the pipe, or bytes the destination
//! did not take yet); past that the source is not read, so the kernel pushes back on its peer.
//! Bytes the destination's write queue already held (written before the relay started) go out
//! first. The source's EOF becomes a FIN on the destination once what was read from it is written.
//! When both directions are done, both connections close in order. An error on one side aborts
//! that side; what was already read from it is still written to the other, which then closes (both
//! report the error).

pub mod engine;
pub mod pipes;

use crate::relay::pipes::PipePool;
use crate::service::Ready;
use crate::stream::Stream;
use crate::sys::pipe::Pipe;
use socket2::Socket;
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Loop passes per direction per service before other sockets get a go.
const PASSES_PER_TURN: usize = 16;
/// Bytes read per `recv` on the copy path (the size of the engine's scratch buffer).
pub const COPY_CHUNK: usize = 64 * 1024;
/// A read at least this large counts as bulk; this many bulk reads in a row move a direction to
/// splicing.
const LARGE_READ: usize = 16 * 1024;
const LARGE_READS_TO_SPLICE: u8 = 2;
/// A splice that moved less than this counts as small; this many in a row move a direction back to
/// copying (its pipe goes back to the pool).
const SMALL_SPLICE: usize = 4 * 1024;
const SMALL_SPLICES_TO_COPY: u8 = 8;

#[derive(Debug)]
pub struct Relay {
    pub a: u32,
    pub b: u32,
    pub ab: Direction,
    pub ba: Direction,
    pub cap: usize,
    pub last_activity: Instant,
    /// No byte either way for this long aborts both sides with ETIMEDOUT.
    pub idle_timeout: Option<Duration>,
    /// Set once the relay is ending: the errno to report (0: orderly).
    pub ending: Option<i32>,
    /// The proxy port that started it (None: the consumer did).
    pub owner: Option<PortRelay>,
}

#[derive(Debug, Default)]
pub struct Direction {
    path: Path,
    /// Bytes read from the source and not yet written to the destination.
    pub held: usize,
    /// Bytes written to the destination.
    pub moved: u64,
    /// Of `moved`, those that went through a pipe.
    pub spliced: u64,
    /// The source is done: EOF, an error, or the relay is ending.
    pub src_done: bool,
    pub fin_sent: bool,
    /// The last pump found it done (`Pumped::Finished`: src_done, FIN sent, nothing held), or its
    /// destination is gone. Nothing undoes that (the consumer cannot write to a relaying
    /// connection), so a pass that skips the direction counts it as done.
    pub finished: bool,
    /// Bulk reads (copying) or small splices (splicing) in a row: what moves the path.
    streak: u8,
    /// The kernel refused to splice these sockets: copy for good.
    copy_only: bool,
}

#[derive(Debug, Default)]
enum Path {
    /// Copying: bytes read that the destination did not take yet, from `start` on (empty, and
    /// without an allocation, whenever the destination keeps up).
    #[default]
    Copy,
    Pending(Vec<u8>, usize),
    Splice(Pipe),
}

/// How a relay runs (`Reactor::relay`).
#[derive(Debug, Clone, Copy)]
pub struct RelayOptions {
    /// Bytes held in the core per direction at most.
    pub cap: usize,
    /// No byte either way for this long aborts both sides with ETIMEDOUT.
    pub idle_timeout: Option<Duration>,
}

/// A relay a proxy port started (its client is `a`, its upstream `b`): the consumer hears nothing
/// of it; its end is counted in the port's figures instead.
#[derive(Debug, Clone, Copy)]
pub struct PortRelay {
    pub port: u32,
    /// Which of the port's upstreams (for its balance).
    pub upstream: usize,
}

/// What one pass over a direction found.
#[derive(Debug, PartialEq, Eq)]
pub enum Pumped {
    /// Waiting for an edge on the source or the destination.
    Waiting,
    /// The budget ran out with work left: come back on a later pass.
    More,
    /// The source is done and everything read from it is written (FIN sent).
    Finished,
}

/// Which socket failed.
#[derive(Debug)]
pub enum Failed {
    Source(io::Error),
    Destination(io::Error),
}

/// What a pump may use besides the two streams: the engine's scratch buffer for copying and its
/// pipe pool for splicing.
pub struct Tools<'a> {
    pub scratch: &'a mut Vec<u8>,
    pub pipes: &'a mut PipePool,
}

impl Relay {
    pub fn new(a: u32, b: u32, cap: usize) -> Relay {
        Relay {
            a,
            b,
            ab: Direction::default(),
            ba: Direction::default(),
            cap: cap.max(1),
            last_activity: Instant::now(),
            idle_timeout: None,
            ending: None,
            owner: None,
        }
    }

    /// Bytes moved a→b and b→a.
    pub fn counts(&self) -> (u64, u64) {
        (self.ab.moved, self.ba.moved)
    }

    /// Which directions (a→b, b→a) an event calls for: a side's readable edge concerns the
    /// direction it is the source of, its writable edge the one it is the destination of. An
    /// error, a pass with no event, or a connection not of this relay: both.
    pub fn directions(&self, event: Option<(u32, Ready)>) -> [bool; 2] {
        let Some((conn, ready)) = event else { return [true, true] };
        if ready.error || !(ready.readable || ready.writable) || (conn != self.a && conn != self.b) {
            return [true, true];
        }
        if conn == self.a {
            [ready.readable, ready.writable]
        } else {
            [ready.writable, ready.readable]
        }
    }

    /// Gives the pipes back to the pool (those still holding bytes are closed).
    pub fn release(&mut self, pool: &mut PipePool) {
        for dir in [&mut self.ab, &mut self.ba] {
            if let Path::Splice(p) = std::mem::take(&mut dir.path) {
                pool.give_back(p, dir.held == 0);
            }
        }
    }
}

impl Direction {
    /// Moves what it can from `src` to `dst`. `dst`'s write queue (bytes written before the relay)
    /// goes first. A `src` of None (already closed) only drains what was read from it.
    pub fn pump(&mut self, src: Option<&mut Stream>, dst: &mut Stream, cap: usize, tools: &mut Tools<'_>) -> Result<Pumped, Failed> {
        if src.is_none() {
            self.src_done = true;
        }
        if dst.tls.is_some() || src.as_ref().is_some_and(|s| s.tls.is_some()) {
            return self.pump_tls(src, dst, cap, tools);
        }
        let mut src = src;
        for _ in 0..PASSES_PER_TURN {
            if !dst.queue.is_empty() {
                match dst.flush() {
                    Ok(true) => {}
                    Ok(false) => return Ok(Pumped::Waiting),
                    Err(e) => return Err(Failed::Destination(e)),
                }
            }
            if self.held > 0 {
                match self.write_held(dst) {
                    Some(stop) => return stop,
                    None => continue,
                }
            }
            if self.src_done {
                if !self.fin_sent {
                    dst.send_fin().map_err(Failed::Destination)?;
                    self.fin_sent = true;
                }
                return Ok(Pumped::Finished);
            }
            let Some(src) = src.as_deref_mut() else { unreachable!("src_done is set without a source") };
            if !src.edges.worth_reading() {
                // A read drained it and no edge came since: new bytes (or the FIN) raise one, which
                // pumps this direction. No recv only to hear EAGAIN (e.g. on the writable edge that
                // comes with every readable one of the other side).
                return Ok(Pumped::Waiting);
            }
            self.choose_path(tools.pipes);
            let room = cap - self.held;
            let read = if let Path::Splice(pipe) = &self.path {
                match pipe.fill_from(src.sock.as_raw_fd(), room) {
                    // The kernel cannot splice this socket: copy for good (nothing was moved).
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        self.copy_only = true;
                        self.leave_pipe(tools.pipes);
                        continue;
                    }
                    Ok(n) => {
                        self.held += n;
                        self.streak = if n > 0 && n < SMALL_SPLICE { self.streak.saturating_add(1) } else { 0 };
                        Ok(n)
                    }
                    Err(e) => Err(Failed::Source(e)),
                }
            } else {
                let want = room.min(COPY_CHUNK);
                match self.copy(&src.sock, dst, want, tools.scratch) {
                    // A short read drained the source, as a stream's read does (`Stream::read_into`)
                    // and nginx's: new bytes raise a new edge, so no second recv only to hear
                    // EAGAIN; unless a FIN was reported, which is read on to the EOF (`ReadEdges`).
                    Ok(n) if n > 0 && n < want => {
                        src.edges.short_read();
                        if self.held == 0 && !src.edges.worth_reading() {
                            return Ok(Pumped::Waiting);
                        }
                        Ok(n) // what the destination did not take is sent first
                    }
                    other => other,
                }
            };
            match read {
                Ok(0) => self.src_done = true,
                Ok(_) => {}
                Err(Failed::Source(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    src.edges.drained();
                    return Ok(Pumped::Waiting);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Pumped::More)
    }

    /// `pump` where either side has TLS: bytes go through the sessions (decrypted from a TLS
    /// source, encrypted to a TLS destination), always by copying: splice cannot carry TLS
    /// records. The same bound (`cap` bytes held), order and FIN rules as the plain path; a TLS
    /// destination's FIN follows its close_notify. A TLS source's end without close_notify is
    /// passed on as a FIN too (as HAProxy and nginx do): the upstream cannot tell the two apart.
    fn pump_tls(&mut self, mut src: Option<&mut Stream>, dst: &mut Stream, cap: usize, tools: &mut Tools<'_>) -> Result<Pumped, Failed> {
        for _ in 0..PASSES_PER_TURN {
            // What was written before the relay, and what the destination's session holds.
            match dst.flush() {
                Ok(true) => {}
                Ok(false) => return Ok(Pumped::Waiting),
                Err(e) => return Err(Failed::Destination(e)),
            }
            if let Some(s) = src.as_deref_mut() {
                // Records the source's session owes its peer (tickets, a KeyUpdate's answer).
                if let Some(tls) = &mut s.tls {
                    tls.send(&s.sock).map_err(Failed::Source)?;
                }
            }
            if self.held > 0 {
                match self.write_held(dst) {
                    Some(stop) => return stop,
                    None => continue,
                }
            }
            if self.src_done {
                if !self.fin_sent {
                    dst.send_fin().map_err(Failed::Destination)?;
                    self.fin_sent = true;
                    continue; // the flush above says when close_notify and the FIN are out
                }
                return Ok(Pumped::Finished);
            }
            let Some(s) = src.as_deref_mut() else { unreachable!("src_done is set without a source") };
            tools.scratch.resize(COPY_CHUNK, 0);
            let want = (cap - self.held).min(COPY_CHUNK);
            let n = match s.recv_plain(&mut tools.scratch[..want]) {
                Ok(0) => {
                    self.src_done = true;
                    continue;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Pumped::Waiting),
                Err(e) => return Err(Failed::Source(e)),
            };
            let chunk = &tools.scratch[..n];
            self.pass_on(chunk, dst.send_plain(chunk))?;
        }
        Ok(Pumped::More)
    }

    /// Moves to splicing after bulk reads, back to copying after small splices; only with nothing
    /// held (bytes never change path mid-way, so order is kept).
    fn choose_path(&mut self, pipes: &mut PipePool) {
        if self.held > 0 {
            return;
        }
        match &self.path {
            Path::Copy | Path::Pending(..) if !self.copy_only && self.streak >= LARGE_READS_TO_SPLICE => {
                // Out of pipes (EMFILE): keep copying, nothing lost.
                if let Ok(pipe) = pipes.take(COPY_CHUNK) {
                    self.path = Path::Splice(pipe);
                    self.streak = 0;
                }
            }
            Path::Splice(_) if self.streak >= SMALL_SPLICES_TO_COPY => self.leave_pipe(pipes),
            _ => {}
        }
    }

    fn leave_pipe(&mut self, pipes: &mut PipePool) {
        if let Path::Splice(p) = std::mem::take(&mut self.path) {
            pipes.give_back(p, self.held == 0);
        }
        self.streak = 0;
    }

    /// One copy: `recv` of up to `want` (at most COPY_CHUNK) bytes into the scratch buffer, `send` at
    /// once (`pass_on`). Errors are tagged with the side that failed.
    fn copy(&mut self, src: &Socket, dst: &mut Stream, want: usize, scratch: &mut Vec<u8>) -> Result<usize, Failed> {
        scratch.resize(COPY_CHUNK, 0);
        let n = recv(src, &mut scratch[..want]).map_err(Failed::Source)?;
        self.streak = if n >= LARGE_READ.min(want) { self.streak.saturating_add(1) } else { 0 };
        if n == 0 {
            return Ok(0);
        }
        let chunk = &scratch[..n];
        self.pass_on(chunk, dst.send_plain(chunk))?;
        Ok(n)
    }

    /// A chunk just read, after the destination was offered it (`sent`): what it took counts as
    /// moved, the rest is held (WouldBlock: all of it) and goes first on the next pass.
    fn pass_on(&mut self, chunk: &[u8], sent: io::Result<usize>) -> Result<(), Failed> {
        let sent = match sent {
            Ok(sent) => sent,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(Failed::Destination(e)),
        };
        self.moved += sent as u64;
        if sent < chunk.len() {
            self.path = Path::Pending(chunk[sent..].to_vec(), 0);
            self.held = chunk.len() - sent;
        }
        Ok(())
    }

    /// Writes what is held (from the pipe, or the bytes a copy could not send): None when some
    /// went and the pass goes on, else how the pump stops (the destination is full, or failed).
    fn write_held(&mut self, dst: &mut Stream) -> Option<Result<Pumped, Failed>> {
        let written = match &mut self.path {
            Path::Splice(pipe) => pipe.drain_into(dst.sock.as_raw_fd(), self.held),
            Path::Pending(buf, start) => dst.send_plain(&buf[*start..]).inspect(|&n| *start += n),
            Path::Copy => Err(io::Error::from_raw_os_error(libc::EBADF)),
        };
        match written {
            Ok(0) => Some(Ok(Pumped::Waiting)),
            Ok(n) => {
                self.wrote(n);
                None
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Some(Ok(Pumped::Waiting)),
            Err(e) => Some(Err(Failed::Destination(e))),
        }
    }

    /// `n` held bytes reached the destination.
    fn wrote(&mut self, n: usize) {
        self.held -= n;
        self.moved += n as u64;
        match &self.path {
            Path::Splice(_) => self.spliced += n as u64,
            Path::Pending(..) if self.held == 0 => self.path = Path::Copy, // frees the leftover
            _ => {}
        }
    }
}

fn recv(sock: &Socket, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::Read;
    (&*sock).read(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(readable: bool, writable: bool, error: bool) -> Ready {
        Ready { readable, read_closed: false, writable, error }
    }

    #[test]
    fn an_event_pumps_the_directions_its_side_reads_or_writes_for() {
        let relay = Relay::new(3, 7, 1024);
        // a→b reads 3 and writes 7; b→a reads 7 and writes 3
        assert_eq!(relay.directions(Some((3, ready(true, false, false)))), [true, false]);
        assert_eq!(relay.directions(Some((3, ready(false, true, false)))), [false, true]);
        assert_eq!(relay.directions(Some((7, ready(true, false, false)))), [false, true]);
        assert_eq!(relay.directions(Some((7, ready(false, true, false)))), [true, false]);
        assert_eq!(relay.directions(Some((7, ready(true, true, false)))), [true, true]);
        // an error, a pass with no event or no flags, a connection not of this relay: both
        assert_eq!(relay.directions(Some((3, ready(true, false, true)))), [true, true]);
        assert_eq!(relay.directions(Some((3, Ready::default()))), [true, true]);
        assert_eq!(relay.directions(None), [true, true]);
        assert_eq!(relay.directions(Some((9, ready(true, false, false)))), [true, true]);
    }

    /// A relaying stream over one end of a loopback TCP connection, and the other end (blocking,
    /// with a deadline).
    fn tcp_stream() -> (Stream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (ours, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        (Stream::new(Socket::from(ours), false), peer)
    }

    /// Waits (5 s at most) until the socket reports `events` (POLLIN, POLLRDHUP).
    fn until_polled(sock: &Socket, events: libc::c_short) {
        let mut fd = libc::pollfd { fd: sock.as_raw_fd(), events, revents: 0 };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut fd, 1, 5000) };
        assert!(n == 1 && fd.revents & events == events, "the socket never reported {events:#x}");
    }

    fn nothing_arrives(peer: &std::net::TcpStream) -> bool {
        peer.set_nonblocking(true).unwrap();
        let quiet = matches!(std::io::Read::read(&mut &*peer, &mut [0u8; 8]), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        peer.set_nonblocking(false).unwrap();
        quiet
    }

    #[test]
    fn a_source_is_read_only_while_an_edge_says_it_may_hold_bytes() {
        use std::io::{Read, Write};
        let ((mut src, mut client), (mut dst, mut upstream)) = (tcp_stream(), tcp_stream());
        let (mut scratch, mut pipes) = (Vec::new(), PipePool::default());
        let mut dir = Direction::default();
        let mut pump = |dir: &mut Direction, src: &mut Stream, dst: &mut Stream| {
            dir.pump(Some(src), dst, 1024, &mut Tools { scratch: &mut scratch, pipes: &mut pipes }).map_err(|_| "failed").unwrap()
        };
        client.write_all(b"hello").unwrap();
        until_polled(&src.sock, libc::POLLIN);
        // A read drained the source and no edge came since: no recv, nothing moves.
        src.edges.readable = false;
        assert_eq!(pump(&mut dir, &mut src, &mut dst), Pumped::Waiting);
        assert!(nothing_arrives(&upstream));
        // The edge: read (a short read, which drains it), and sent on.
        src.edges.readable = true;
        assert_eq!(pump(&mut dir, &mut src, &mut dst), Pumped::Waiting);
        assert!(!src.edges.readable, "a short read drains the source");
        let mut got = [0u8; 5];
        upstream.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        // Bytes and the FIN behind them, the FIN reported by an edge: a short read does not stop
        // the read, which goes on to the EOF and sends the FIN on.
        client.write_all(b"bye").unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        until_polled(&src.sock, libc::POLLIN | libc::POLLRDHUP);
        src.edges.peer_closed = true;
        src.edges.readable = false;
        assert_eq!(pump(&mut dir, &mut src, &mut dst), Pumped::Finished);
        let mut rest = Vec::new();
        upstream.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"bye");
    }
}
