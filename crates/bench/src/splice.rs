//! `splice(2)` through a pipe: the zero-copy path between two sockets (socket → pipe →
//! socket). Neither std nor socket2 wraps `pipe2` or `splice`, so they are written here
//! over libc.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A pipe used as the kernel-side buffer of one relay direction.
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    /// A non-blocking, close-on-exec pipe.
    pub fn new() -> io::Result<Pipe> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes on success.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: on success both are new descriptors that nothing else owns.
        Ok(unsafe {
            Pipe {
                read: OwnedFd::from_raw_fd(fds[0]),
                write: OwnedFd::from_raw_fd(fds[1]),
            }
        })
    }

    /// Moves up to `len` bytes from socket `from` into the pipe. `Ok(None)`: the socket
    /// has nothing to read or the pipe is full; `Ok(Some(0))`: the socket reached EOF.
    pub fn fill_from(&self, from: BorrowedFd<'_>, len: usize) -> io::Result<Option<usize>> {
        splice(from, self.write.as_fd(), len)
    }

    /// Moves up to `len` bytes from the pipe into socket `to`. `Ok(None)`: the socket's
    /// buffer is full (or the pipe empty).
    pub fn drain_into(&self, to: BorrowedFd<'_>, len: usize) -> io::Result<Option<usize>> {
        splice(self.read.as_fd(), to, len)
    }
}

fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<Option<usize>> {
    loop {
        // SAFETY: both descriptors are open for the call (borrowed); null offsets mean
        // "current position", which is what sockets and pipes require.
        let r = unsafe {
            libc::splice(
                from.as_raw_fd(),
                std::ptr::null_mut(),
                to.as_raw_fd(),
                std::ptr::null_mut(),
                len,
                libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE,
            )
        };
        if r >= 0 {
            return Ok(Some(r as usize));
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::WouldBlock => return Ok(None),
            io::ErrorKind::Interrupted => continue,
            _ => return Err(e),
        }
    }
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
        let pipe = Pipe::new().unwrap();
        // Empty socket: nothing to move, not an error.
        assert_eq!(pipe.fill_from(b.as_fd(), 4096).unwrap(), None);
        a.write_all(b"hello splice").unwrap();
        let mut moved = 0;
        while moved < 12 {
            moved += pipe.fill_from(b.as_fd(), 4096).unwrap().unwrap_or(0);
        }
        assert_eq!(pipe.drain_into(c.as_fd(), 4096).unwrap(), Some(12));
        let mut got = [0u8; 12];
        d.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello splice");
        // EOF on the source shows as Some(0).
        drop(a);
        loop {
            match pipe.fill_from(b.as_fd(), 4096).unwrap() {
                Some(0) => break,
                Some(n) => panic!("{n} unexpected bytes"),
                None => std::thread::yield_now(),
            }
        }
    }
}
