//! `poll(2)` on a few descriptors, for the waits that are not the event loop's own: the I/O thread
//! watching its two epoll fds, and the handoff's waits with deadlines.

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// Waits until one of `fds` has an event (each `revents` is set), or `deadline` passes (Ok(0)).
/// No deadline: waits for ever. An interrupted call (EINTR) is retried with the time left.
pub fn poll(fds: &mut [libc::pollfd], deadline: Option<Instant>) -> io::Result<usize> {
    super::retry_interrupted(|| {
        let timeout = deadline.map_or(-1, |d| timeout_ms(d.saturating_duration_since(Instant::now())));
        // SAFETY: `fds` is a live, writable slice of pollfds and its length is passed with it; a
        // negative fd in it is ignored by poll.
        syscall!(poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout)).map(|n| n as usize)
    })
}

/// A pollfd for `fd` (-1: none) and `events`.
pub fn entry(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd { fd, events, revents: 0 }
}

/// Waits until any of `fds` is readable (or has an error or hang-up), up to `timeout_ms` (-1: no
/// limit). Returns which are; all false on a timeout or a signal (the caller loops anyway).
pub fn readable<const N: usize>(fds: [RawFd; N], timeout_ms: i32) -> io::Result<[bool; N]> {
    let mut p = fds.map(|fd| entry(fd, libc::POLLIN));
    // SAFETY: `p` holds N valid pollfds for the length of the call.
    match syscall!(poll(p.as_mut_ptr(), N as libc::nfds_t, timeout_ms)) {
        Ok(_) => Ok(p.map(|q| q.revents != 0)),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok([false; N]),
        Err(e) => Err(e),
    }
}

/// Milliseconds for poll, rounded up (a sub-millisecond remainder must not spin), capped at i32.
fn timeout_ms(left: Duration) -> i32 {
    i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
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

    #[test]
    fn a_deadline_that_passed_returns_at_once() {
        let (_a, b) = UnixStream::pair().unwrap();
        let mut fds = [entry(b.as_raw_fd(), libc::POLLIN)];
        assert_eq!(poll(&mut fds, Some(Instant::now())).unwrap(), 0);
        assert_eq!(timeout_ms(Duration::from_micros(1)), 1);
        assert_eq!(timeout_ms(Duration::from_secs(u64::MAX)), i32::MAX);
    }
}
