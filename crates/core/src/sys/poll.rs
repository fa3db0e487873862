//! `poll(2)` on a few descriptors, for the waits that are not the event loop's own (the I/O thread
//! watching two epoll fds, the handoff's deadlines).

use std::io;
use std::os::fd::RawFd;

/// Waits until any of `fds` is readable (or has an error or hang-up), up to `timeout_ms` (-1: no
/// limit). Returns which are; all false on a timeout. EINTR counts as a timeout (the caller loops).
pub fn readable<const N: usize>(fds: [RawFd; N], timeout_ms: i32) -> io::Result<[bool; N]> {
    let mut p = fds.map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
    // SAFETY: `p` holds N valid pollfds for the length of the call (poll ignores a negative fd).
    match syscall!(poll(p.as_mut_ptr(), N as libc::nfds_t, timeout_ms)) {
        Ok(_) => Ok(p.map(|q| q.revents != 0)),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok([false; N]),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn says_which_descriptor_is_readable() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let (_c, d) = UnixStream::pair().unwrap();
        assert_eq!(readable([b.as_raw_fd(), d.as_raw_fd()], 0).unwrap(), [false, false]);
        a.write_all(b"x").unwrap();
        assert_eq!(readable([b.as_raw_fd(), d.as_raw_fd()], 1000).unwrap(), [true, false]);
        assert_eq!(readable([-1], 0).unwrap(), [false], "a negative fd is ignored");
    }
}
