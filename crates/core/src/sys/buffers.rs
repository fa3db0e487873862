//! A socket's kernel buffer sizes (`SO_RCVBUF`, `SO_SNDBUF`): set as far as the process may, and
//! read back, since the kernel decides what it really keeps.
//!
//! Linux doubles the value it is given (room for its own bookkeeping) and, for `SO_RCVBUF` /
//! `SO_SNDBUF`, first caps it at `net.core.rmem_max` / `wmem_max` without saying so. A process
//! with `CAP_NET_ADMIN` may pass that cap with `SO_RCVBUFFORCE` / `SO_SNDBUFFORCE`: that is tried
//! first, and the plain option is used where the kernel refuses it (`EPERM`), as systemd does.
//! Either way the caller reads back what the kernel set, never what it asked for.

use std::io;
use std::os::fd::RawFd;

/// Which of a socket's two buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buffer {
    Receive,
    Send,
}

impl Buffer {
    fn option(self) -> libc::c_int {
        match self {
            Buffer::Receive => libc::SO_RCVBUF,
            Buffer::Send => libc::SO_SNDBUF,
        }
    }

    fn forced(self) -> libc::c_int {
        match self {
            Buffer::Receive => libc::SO_RCVBUFFORCE,
            Buffer::Send => libc::SO_SNDBUFFORCE,
        }
    }
}

/// The sizes a caller asked for (None: leave the system's default).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BufferSizes {
    pub receive: Option<i32>,
    pub send: Option<i32>,
}

impl BufferSizes {
    /// Sets those asked for on `fd`; the first failure is returned (with its errno). A negative
    /// size is EINVAL here: the kernel would read it as 0 (`SO_RCVBUFFORCE`) or as huge (`SO_RCVBUF`).
    pub fn apply(self, fd: RawFd) -> io::Result<()> {
        if self.receive.is_some_and(|n| n < 0) || self.send.is_some_and(|n| n < 0) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        if let Some(bytes) = self.receive {
            set_buffer_size(fd, Buffer::Receive, bytes)?;
        }
        if let Some(bytes) = self.send {
            set_buffer_size(fd, Buffer::Send, bytes)?;
        }
        Ok(())
    }
}

/// Asks for `bytes` of `buffer` on `fd` (past the system's cap where the process may), and
/// returns what the kernel set (read back: usually twice `bytes`, or twice the cap).
pub fn set_buffer_size(fd: RawFd, buffer: Buffer, bytes: i32) -> io::Result<i32> {
    match set_int(fd, buffer.forced(), bytes) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => set_int(fd, buffer.option(), bytes)?,
        Err(e) => return Err(e),
    }
    buffer_size(fd, buffer)
}

/// What the kernel keeps for `buffer` on `fd`, in bytes (its bookkeeping included).
pub fn buffer_size(fd: RawFd, buffer: Buffer) -> io::Result<i32> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` is a writable c_int and `len` its size; the kernel writes at most `len`
    // bytes. `fd` is only borrowed for the call.
    syscall!(getsockopt(fd, libc::SOL_SOCKET, buffer.option(), (&mut value as *mut libc::c_int).cast(), &mut len))?;
    Ok(value)
}

fn set_int(fd: RawFd, option: libc::c_int, value: libc::c_int) -> io::Result<()> {
    let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the option value is a c_int that lives across the call, passed with its size.
    syscall!(setsockopt(fd, libc::SOL_SOCKET, option, (&value as *const libc::c_int).cast(), size)).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Socket, Type};
    use std::os::fd::AsRawFd;

    #[test]
    fn the_size_read_back_is_what_the_kernel_keeps() {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        let fd = s.as_raw_fd();
        let before = buffer_size(fd, Buffer::Receive).unwrap();
        let set = set_buffer_size(fd, Buffer::Receive, 65_536).unwrap();
        // Linux keeps twice what it is asked for (within its cap, which is far above 64 KiB).
        assert_eq!(set, 131_072, "before: {before}");
        assert_eq!(buffer_size(fd, Buffer::Receive).unwrap(), set);
        assert_eq!(set_buffer_size(fd, Buffer::Send, 32_768).unwrap(), 65_536);
    }

    #[test]
    fn errors_carry_their_errno() {
        let file = std::fs::File::open("/dev/null").unwrap();
        let err = set_buffer_size(file.as_raw_fd(), Buffer::Receive, 65_536).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTSOCK));
        assert_eq!(buffer_size(-1, Buffer::Send).unwrap_err().raw_os_error(), Some(libc::EBADF));
    }
}
