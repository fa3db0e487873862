//! Pipes for `splice(2)`: socket → pipe → socket moves bytes without copying them through user
//! space (the relay keeps emptied ones for reuse: `relay::pipes`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// The capacity asked of the kernel last (a reused pipe keeps it: no syscall to ask again).
    capacity: usize,
}

impl Pipe {
    /// A non-blocking, close-on-exec pipe, sized for `capacity` bytes where the kernel allows
    /// (`F_SETPIPE_SZ` up to /proc/sys/fs/pipe-max-size; the default 64 KiB otherwise).
    pub fn new(capacity: usize) -> io::Result<Pipe> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        syscall!(pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC))?;
        // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
        let mut pipe = unsafe { Pipe { read: OwnedFd::from_raw_fd(fds[0]), write: OwnedFd::from_raw_fd(fds[1]), capacity: 0 } };
        pipe.resize(capacity);
        Ok(pipe)
    }

    /// The read and write ends, owned by the caller.
    pub fn into_ends(self) -> (OwnedFd, OwnedFd) {
        (self.read, self.write)
    }

    /// Asks the kernel for `capacity` bytes (F_SETPIPE_SZ up to /proc/sys/fs/pipe-max-size); a
    /// refusal keeps the size the pipe has. No syscall when that was asked last already.
    pub fn resize(&mut self, capacity: usize) {
        let capacity = capacity.clamp(4096, 1 << 20);
        if self.capacity != capacity {
            // SAFETY: F_SETPIPE_SZ on our own open pipe.
            unsafe { libc::fcntl(self.write.as_raw_fd(), libc::F_SETPIPE_SZ, capacity as libc::c_int) };
            self.capacity = capacity;
        }
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
    let flags = libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE;
    // SAFETY: plain syscall on descriptors the caller keeps open for the call; null offsets
    // (sockets and pipes have none).
    let n = super::retry_interrupted(|| syscall!(splice(from, std::ptr::null_mut(), to, std::ptr::null_mut(), len, flags)))?;
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn bytes_go_socket_to_pipe_to_socket() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut d, _) = l.accept().unwrap();
        b.set_nonblocking(true).unwrap();
        let pipe = Pipe::new(4096).unwrap();
        // Empty socket: nothing to move, not an error.
        assert_eq!(pipe.fill_from(b.as_raw_fd(), 4096).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        a.write_all(b"hello splice").unwrap();
        let mut moved = 0;
        while moved < 12 {
            moved += pipe.fill_from(b.as_raw_fd(), 4096).unwrap_or(0);
        }
        assert_eq!(pipe.drain_into(c.as_raw_fd(), 4096).unwrap(), 12);
        let mut got = [0u8; 12];
        d.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello splice");
        // EOF on the source shows as Ok(0).
        drop(a);
        loop {
            match pipe.fill_from(b.as_raw_fd(), 4096) {
                Ok(0) => break,
                Ok(n) => panic!("{n} unexpected bytes"),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
    }
}
