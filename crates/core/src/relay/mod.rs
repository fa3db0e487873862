//! A native relay: bytes move both ways between two connections inside the core, never reaching
//! the consumer. Stream sockets are joined with `splice(2)` through a pipe per direction (zero
//! copy); where the kernel refuses to splice (EINVAL), a reused buffer does the same job.
//!
//! Per direction, at most `cap` bytes are held in the core (in the pipe or buffer); past that the
//! source is not read, so the kernel pushes back on its peer. Bytes the destination's write queue
//! already held (written before the relay started) go out first. The source's EOF becomes a FIN
//! on the destination once what was read from it is written. When both directions are done, both
//! connections close in order. An error on one side aborts that side; what was already read from
//! it is still written to the other, which then closes (both report the error).

pub mod engine;
pub mod pipes;

use crate::{relay::pipes::PipePool, sys::pipe::Pipe};
use crate::stream::Stream;
use socket2::Socket;
use std::io;
use std::os::fd::AsRawFd;
use std::time::Instant;

/// Loop passes per direction per service before other sockets get a go.
const PASSES_PER_TURN: usize = 16;
/// Bytes read per `recv` when the copy path is used.
const COPY_CHUNK: usize = 64 * 1024;

#[derive(Debug)]
pub struct Relay {
    pub a: u32,
    pub b: u32,
    pub ab: Direction,
    pub ba: Direction,
    pub cap: usize,
    pub last_activity: Instant,
    /// No byte either way for this long aborts both sides with ETIMEDOUT.
    pub idle_timeout: Option<std::time::Duration>,
    /// Set once the relay is ending: the errno to report (0: orderly).
    pub ending: Option<i32>,
}

#[derive(Debug, Default)]
pub struct Direction {
    path: Path,
    /// Bytes read from the source and not yet written to the destination.
    pub held: usize,
    /// Bytes written to the destination.
    pub moved: u64,
    /// The source is done: EOF, an error, or the relay is ending.
    pub src_done: bool,
    pub fin_sent: bool,
}

#[derive(Debug, Default)]
enum Path {
    #[default]
    None,
    Splice(Pipe),
    /// A buffer and the range of it still to write.
    Copy(Vec<u8>, usize),
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

impl Relay {
    pub fn new(a: u32, b: u32, cap: usize, pool: &mut PipePool) -> io::Result<Relay> {
        let mut relay = Relay {
            a,
            b,
            ab: Direction::default(),
            ba: Direction::default(),
            cap: cap.max(1),
            last_activity: Instant::now(),
            idle_timeout: None,
            ending: None,
        };
        relay.ab.path = Path::Splice(pool.take(cap)?);
        match pool.take(cap) {
            Ok(p) => relay.ba.path = Path::Splice(p),
            Err(e) => {
                relay.release(pool);
                return Err(e);
            }
        }
        Ok(relay)
    }

    /// Bytes moved a→b and b→a.
    pub fn counts(&self) -> (u64, u64) {
        (self.ab.moved, self.ba.moved)
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
    pub fn pump(&mut self, src: Option<&Stream>, dst: &mut Stream, cap: usize) -> Result<Pumped, Failed> {
        if src.is_none() {
            self.src_done = true;
        }
        for _ in 0..PASSES_PER_TURN {
            if !dst.queue.is_empty() {
                match dst.flush() {
                    Ok(true) => {}
                    Ok(false) => return Ok(Pumped::Waiting),
                    Err(e) => return Err(Failed::Destination(e)),
                }
            }
            if self.held > 0 {
                match self.drain(&dst.sock) {
                    Ok(0) => return Ok(Pumped::Waiting),
                    Ok(n) => {
                        self.held -= n;
                        self.moved += n as u64;
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Pumped::Waiting),
                    Err(e) => return Err(Failed::Destination(e)),
                }
            }
            if self.src_done {
                if !self.fin_sent {
                    dst.send_fin().map_err(Failed::Destination)?;
                    self.fin_sent = true;
                }
                return Ok(Pumped::Finished);
            }
            let Some(src) = src else { unreachable!("src_done is set without a source") };
            match self.fill(&src.sock, cap - self.held) {
                Ok(0) => self.src_done = true,
                Ok(n) => self.held += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Pumped::Waiting),
                Err(e) => return Err(Failed::Source(e)),
            }
        }
        Ok(Pumped::More)
    }

    fn fill(&mut self, src: &Socket, room: usize) -> io::Result<usize> {
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if let Path::Splice(pipe) = &self.path {
            match pipe.fill_from(src.as_raw_fd(), room) {
                // The kernel cannot splice this socket: fall back to a buffer (nothing was moved).
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && self.held == 0 => {
                    self.path = Path::Copy(Vec::with_capacity(COPY_CHUNK), 0);
                }
                other => return other,
            }
        }
        match &mut self.path {
            Path::Copy(buf, start) => {
                buf.clear();
                *start = 0;
                buf.resize(room.min(COPY_CHUNK), 0);
                let n = recv(src, buf)?;
                buf.truncate(n);
                Ok(n)
            }
            _ => Err(io::Error::from_raw_os_error(libc::EBADF)),
        }
    }

    fn drain(&mut self, dst: &Socket) -> io::Result<usize> {
        match &mut self.path {
            Path::Splice(pipe) => pipe.drain_into(dst.as_raw_fd(), self.held),
            Path::Copy(buf, start) => {
                let n = dst.send_with_flags(&buf[*start..], libc::MSG_NOSIGNAL)?;
                *start += n;
                Ok(n)
            }
            Path::None => Err(io::Error::from_raw_os_error(libc::EBADF)),
        }
    }
}

fn recv(sock: &Socket, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::Read;
    (&*sock).read(buf)
}
