//! Pipes for `splice(2)`: socket → pipe → socket moves bytes without copying them through user
//! space. A small pool keeps emptied pipes for the next relay instead of two new fds per relay.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Pipes kept for reuse at most.
const POOL_MAX: usize = 16;

#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    /// A non-blocking, close-on-exec pipe, sized for `capacity` bytes where the kernel allows
    /// (`F_SETPIPE_SZ` up to /proc/sys/fs/pipe-max-size; the default 64 KiB otherwise).
    pub fn new(capacity: usize) -> io::Result<Pipe> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
        let pipe = unsafe { Pipe { read: OwnedFd::from_raw_fd(fds[0]), write: OwnedFd::from_raw_fd(fds[1]) } };
        // SAFETY: F_SETPIPE_SZ on our own open pipe; failure (EPERM above the limit) keeps the default.
        unsafe { libc::fcntl(pipe.write.as_raw_fd(), libc::F_SETPIPE_SZ, capacity.min(1 << 20) as libc::c_int) };
        Ok(pipe)
    }

    /// Moves up to `len` bytes from the socket `src` into the pipe. Ok(0) is the peer's EOF.
    pub fn fill_from(&self, src: RawFd, len: usize) -> io::Result<usize> {
        splice(src, self.write.as_raw_fd(), len)
    }

    /// Moves up to `len` bytes from the pipe into the socket `dst`.
    pub fn drain_into(&self, dst: RawFd, len: usize) -> io::Result<usize> {
        splice(self.read.as_raw_fd(), dst, len)
    }
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    loop {
        // SAFETY: plain syscall on descriptors the caller keeps open for the call; null offsets
        // (sockets and pipes have none).
        let n = unsafe {
            libc::splice(from, std::ptr::null_mut(), to, std::ptr::null_mut(), len, libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE)
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Emptied pipes kept for the next relay.
#[derive(Debug, Default)]
pub struct PipePool {
    pipes: Vec<Pipe>,
}

impl PipePool {
    pub fn take(&mut self, capacity: usize) -> io::Result<Pipe> {
        match self.pipes.pop() {
            Some(p) => {
                // SAFETY: F_SETPIPE_SZ on our own open pipe; see Pipe::new.
                unsafe { libc::fcntl(p.write.as_raw_fd(), libc::F_SETPIPE_SZ, capacity.min(1 << 20) as libc::c_int) };
                Ok(p)
            }
            None => Pipe::new(capacity),
        }
    }

    /// Keeps an empty pipe for reuse (a pipe that still holds bytes is closed instead).
    pub fn give_back(&mut self, pipe: Pipe, empty: bool) {
        if empty && self.pipes.len() < POOL_MAX {
            self.pipes.push(pipe);
        }
    }

    /// Pipes waiting for reuse.
    pub fn len(&self) -> usize {
        self.pipes.len()
    }
}
