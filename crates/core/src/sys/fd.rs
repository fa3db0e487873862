//! The reactor's own duplicate of an adopted descriptor, and raw calls socket2 lacks.

use socket2::{SockAddr, Socket};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Duplicates `fd` (close-on-exec) and makes the socket non-blocking. O_NONBLOCK lives on the open
/// file description, so the caller's fd becomes non-blocking too (as in Go and Twisted).
pub fn duplicate_nonblocking(fd: RawFd) -> io::Result<Socket> {
    let sock = Socket::from(duplicate_cloexec(fd)?);
    sock.set_nonblocking(true)?; // on error `sock` drops and closes the duplicate
    Ok(sock)
}

/// A close-on-exec duplicate of `fd` (any kind of descriptor), owned by the caller.
pub fn duplicate_cloexec(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: F_DUPFD_CLOEXEC creates a new descriptor or fails; it never touches `fd` itself.
    let dup = syscall!(fcntl(fd, libc::F_DUPFD_CLOEXEC, 0))?;
    // SAFETY: `dup` was just returned by fcntl and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

/// `accept4` with SOCK_NONBLOCK | SOCK_CLOEXEC in one call (socket2's accept sets only CLOEXEC).
pub fn accept_nonblocking(listener: RawFd) -> io::Result<(Socket, SockAddr)> {
    let mut fd: RawFd = -1;
    // SAFETY: try_init hands us storage of `len` bytes for accept4 to fill; accept4 writes at
    // most `len` bytes and updates `len`; the returned fd is owned by us alone.
    let (_, addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            fd = libc::accept4(
                listener,
                storage as *mut libc::sockaddr,
                len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            );
            if fd < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        })?
    };
    // SAFETY: accept4 succeeded, so `fd` is a new descriptor nobody else owns.
    Ok((Socket::from(unsafe { OwnedFd::from_raw_fd(fd) }), addr))
}

/// Bytes waiting to be read on a socket (`FIONREAD`).
pub fn unread_bytes(fd: RawFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int to the pointer, which is valid for the call.
    syscall!(ioctl(fd, libc::FIONREAD, &mut n as *mut libc::c_int))?;
    Ok(n.max(0) as usize)
}

/// Closes a descriptor this process owns and nothing else refers to.
pub fn close_owned(fd: RawFd) {
    if fd >= 0 {
        // SAFETY: the caller owns `fd` (received, never handed on) and drops every other use of it.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }
}
