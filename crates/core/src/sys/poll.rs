//! `poll(2)` with a deadline: the waits of the deploy code (handoff), which run on threads of
//! their own and watch a few descriptors at once.

use std::io;
use std::time::Instant;

/// Waits until one of `fds` has an event (each `revents` is set), or `deadline` passes (Ok(0)).
/// No deadline: waits for ever. An interrupted call (EINTR) is retried with the time left.
pub fn poll(fds: &mut [libc::pollfd], deadline: Option<Instant>) -> io::Result<usize> {
    loop {
        let timeout = match deadline {
            None => -1,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                // Rounded up, so that a sub-millisecond remainder does not spin; capped at i32.
                i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
            }
        };
        // SAFETY: `fds` is a live, writable slice of pollfds and its length is passed with it; a
        // negative fd in it is ignored by poll.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// A pollfd for `fd` (-1: none) and `events`.
pub fn entry(fd: std::os::fd::RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd { fd, events, revents: 0 }
}
