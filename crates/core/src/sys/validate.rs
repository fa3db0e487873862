//! Checks an fd before adoption, in the documented order (docs/adopting.md, "Errors, in the order they are
//! checked"), without taking it over.
//!
//! Order: open (EBADF) → socket (ENOTSOCK) → SO_TYPE → SO_DOMAIN → listening / connected.

use crate::wire::refusal;
use socket2::{SockRef, Type};
use std::io;
use std::os::fd::{BorrowedFd, RawFd};

/// What an adoption needs the socket to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// SOCK_STREAM, listening (`adoptStreamPort`).
    Listener,
    /// SOCK_STREAM, connected (`adoptStreamConnection`).
    Connected,
    /// SOCK_DGRAM, bound or not (`adoptDatagramPort`).
    Datagram,
}

#[derive(Debug)]
pub enum AdoptError {
    /// A syscall failed: EBADF, ENOTSOCK, ...
    Os(io::Error),
    /// SO_TYPE is not the one the method needs; holds the socket's actual type.
    SocketType(i32),
    /// SO_DOMAIN differs from the family given; holds the socket's actual family.
    Family(i32),
    /// A stream port that is not listening.
    NotListening,
    /// A stream connection that is not connected.
    NotConnected,
}


impl AdoptError {
    /// The refusal kind (`refusal::*`).
    pub fn refusal(&self) -> u32 {
        match self {
            AdoptError::Os(_) => refusal::OS,
            AdoptError::SocketType(_) => refusal::SOCKET_TYPE,
            AdoptError::Family(_) => refusal::FAMILY,
            AdoptError::NotListening => refusal::NOT_LISTENING,
            AdoptError::NotConnected => refusal::NOT_CONNECTED,
        }
    }


    /// The errno behind this error, when there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            AdoptError::Os(e) => e.raw_os_error(),
            AdoptError::NotListening => Some(libc::EINVAL),
            AdoptError::NotConnected => Some(libc::ENOTCONN),
            _ => None,
        }
    }
}

impl From<io::Error> for AdoptError {
    fn from(e: io::Error) -> Self {
        AdoptError::Os(e)
    }
}

impl std::fmt::Display for AdoptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdoptError::Os(e) => write!(f, "{e}"),
            AdoptError::SocketType(t) => write!(f, "unsupported socket type {t}"),
            AdoptError::Family(a) => write!(f, "socket's address family is {a}"),
            AdoptError::NotListening => write!(f, "socket is not listening"),
            AdoptError::NotConnected => write!(f, "socket is not connected"),
        }
    }
}

/// Fails with EBADF unless `fd` is an open descriptor. Must run before any `BorrowedFd` is made.
pub fn check_open(fd: RawFd) -> io::Result<()> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: F_GETFD only reads the descriptor flags; any integer is a valid argument.
    syscall!(fcntl(fd, libc::F_GETFD)).map(drop)
}

/// Borrows an fd already known to be open for the length of `f`.
pub(crate) fn with_socket<R>(fd: RawFd, f: impl FnOnce(SockRef<'_>) -> R) -> io::Result<R> {
    check_open(fd)?;
    // SAFETY: `fd` is open (checked just above) and stays open while `f` runs: the caller
    // owns it and nothing here closes it.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    Ok(f(SockRef::from(&borrowed)))
}

/// Runs the fd checks (open, socket, type, family, state: docs/adopting.md "Errors, in the order they are checked") on `fd` for a socket of `family` (already known to be supported).
pub fn validate(fd: RawFd, family: i32, expect: Expect) -> Result<(), AdoptError> {
    with_socket(fd, |sock| {
        let ty = sock.r#type()?; // ENOTSOCK for anything that is not a socket
        let wanted = match expect {
            Expect::Listener | Expect::Connected => Type::STREAM,
            Expect::Datagram => Type::DGRAM,
        };
        if ty != wanted {
            return Err(AdoptError::SocketType(i32::from(ty)));
        }
        let actual = i32::from(sock.domain()?);
        if actual != family {
            return Err(AdoptError::Family(actual));
        }
        match expect {
            Expect::Listener if !sock.is_listener()? => Err(AdoptError::NotListening),
            Expect::Connected => match sock.peer_addr() {
                Ok(_) => Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Err(AdoptError::NotConnected),
                Err(e) => Err(e.into()),
            },
            _ => Ok(()),
        }
    })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Socket};
    use std::os::fd::AsRawFd;

    fn listener_v4() -> Socket {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
        s.listen(16).unwrap();
        s
    }

    #[test]
    fn closed_fd_is_ebadf() {
        let fd = listener_v4().as_raw_fd(); // dropped: closed
        match validate(fd, libc::AF_INET, Expect::Listener) {
            Err(AdoptError::Os(e)) => assert_eq!(e.raw_os_error(), Some(libc::EBADF)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(validate(-1, libc::AF_INET, Expect::Listener), Err(AdoptError::Os(_))));
    }

    #[test]
    fn file_is_enotsock() {
        let file = std::fs::File::open("/dev/null").unwrap();
        match validate(file.as_raw_fd(), libc::AF_INET, Expect::Datagram) {
            Err(AdoptError::Os(e)) => assert_eq!(e.raw_os_error(), Some(libc::ENOTSOCK)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn type_then_family_then_state() {
        let l = listener_v4();
        let fd = l.as_raw_fd();
        assert!(matches!(validate(fd, libc::AF_INET, Expect::Datagram), Err(AdoptError::SocketType(1))));
        assert!(matches!(validate(fd, libc::AF_INET6, Expect::Listener), Err(AdoptError::Family(2))));
        assert!(matches!(validate(fd, libc::AF_INET, Expect::Connected), Err(AdoptError::NotConnected)));
        validate(fd, libc::AF_INET, Expect::Listener).unwrap();

        let unbound = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        assert!(matches!(
            validate(unbound.as_raw_fd(), libc::AF_INET, Expect::Listener),
            Err(AdoptError::NotListening)
        ));
        let udp = Socket::new(Domain::IPV6, Type::DGRAM, None).unwrap();
        validate(udp.as_raw_fd(), libc::AF_INET6, Expect::Datagram).unwrap();
        assert!(matches!(validate(udp.as_raw_fd(), libc::AF_INET, Expect::Datagram), Err(AdoptError::Family(10))));
    }

    #[test]
    fn connected_pair_passes() {
        let (a, _b) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
        validate(a.as_raw_fd(), libc::AF_UNIX, Expect::Connected).unwrap();
        assert!(matches!(validate(a.as_raw_fd(), libc::AF_UNIX, Expect::Listener), Err(AdoptError::NotListening)));
    }
}
