//! Helpers that make and inspect socket descriptors for callers that cannot (Node has no raw
//! socket API). Every fd returned is close-on-exec (socket2 opens with SOCK_CLOEXEC), blocking,
//! and owned by the caller: nothing here keeps or closes it.

use crate::sys::buffers::BufferSizes;
use crate::sys::errno;
use crate::wire::address;
use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, IntoRawFd, RawFd};

/// What [`info`] reports about a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// AF_INET, AF_INET6, AF_UNIX, ... (SO_DOMAIN).
    pub family: i32,
    /// SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, ... (SO_TYPE).
    pub socket_type: i32,
    /// SO_ACCEPTCONN: `listen()` was called.
    pub listening: bool,
    /// O_NONBLOCK on the open file description.
    pub non_blocking: bool,
    /// The bound address as an [`address`] record; None when getsockname fails.
    pub local: Option<Vec<u8>>,
    /// The peer's address as an [`address`] record; None when not connected.
    pub peer: Option<Vec<u8>>,
}

/// A TCP listening socket bound to `host:port`. SO_REUSEADDR is on, as for any server we make;
/// `ipv6_only` sets IPV6_V6ONLY on an IPv6 socket (None keeps the system default; ignored for IPv4).
pub fn listen_tcp(
    host: &str,
    port: u16,
    backlog: i32,
    reuse_port: bool,
    ipv6_only: Option<bool>,
) -> io::Result<RawFd> {
    listen_tcp_sized(host, port, backlog, reuse_port, ipv6_only, BufferSizes::default())
}

/// A UDP socket bound to `host:port` (no SO_REUSEADDR, as Node's dgram defaults).
pub fn bind_udp(host: &str, port: u16, reuse_port: bool) -> io::Result<RawFd> {
    bind_udp_sized(host, port, reuse_port, BufferSizes::default())
}

/// `bind_udp` with kernel buffers of `sizes` (set before the bind, so no datagram ever meets the
/// default ones; read them back with `info`). A size the kernel refuses closes the socket.
pub fn bind_udp_sized(host: &str, port: u16, reuse_port: bool, sizes: BufferSizes) -> io::Result<RawFd> {
    let addr = ip_socket_addr(host, port)?;
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    sizes.apply(std::os::fd::AsRawFd::as_raw_fd(&socket))?;
    socket.bind(&addr.into())?;
    Ok(socket.into_raw_fd())
}

/// A UNIX stream socket listening at `path` (a leading NUL names an abstract socket). An existing
/// file at `path` is left alone, so bind fails with EADDRINUSE rather than stealing the name.
pub fn listen_unix(path: &str, backlog: i32) -> io::Result<RawFd> {
    listen_unix_sized(path, backlog, BufferSizes::default())
}

/// A TCP socket connected to `host:port` with a blocking connect.
pub fn connect_tcp(host: &str, port: u16) -> io::Result<RawFd> {
    let addr = ip_socket_addr(host, port)?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.connect(&addr.into())?;
    Ok(socket.into_raw_fd())
}

/// Two connected AF_UNIX stream sockets.
pub fn socket_pair() -> io::Result<(RawFd, RawFd)> {
    let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None)?;
    Ok((a.into_raw_fd(), b.into_raw_fd()))
}

/// Closes `fd`. A negative or already-closed fd is EBADF.
pub fn close(fd: RawFd) -> io::Result<()> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: closing a number we were handed; if it is not open, close reports EBADF and does
    // nothing. Ownership is the caller's claim: the fd must be theirs to close.
    if unsafe { libc::close(fd) } == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    // On Linux the fd is released even when close reports EINTR; retrying could close another.
    if err.raw_os_error() == Some(libc::EINTR) {
        return Ok(());
    }
    Err(err)
}

/// Describes the socket behind `fd` without taking it over. EBADF when `fd` is not open,
/// ENOTSOCK when it is not a socket.
pub fn info(fd: RawFd) -> io::Result<Info> {
    crate::sys::validate::check_open(fd)?;
    // SAFETY: `fd` is open (checked just above) and we only borrow it for the duration of this
    // call; it is never closed here. A caller closing it concurrently on another thread is a bug on
    // their side, as with any borrowed fd.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let socket = SockRef::from(&borrowed);
    // SO_TYPE first: on a non-socket it fails with ENOTSOCK, the error callers expect.
    let socket_type = i32::from(socket.r#type()?);
    let family = i32::from(socket.domain()?);
    Ok(Info {
        family,
        socket_type,
        // SO_ACCEPTCONN is 0 for datagram sockets on Linux; treat any failure the same way.
        listening: socket.is_listener().unwrap_or(false),
        non_blocking: socket.nonblocking()?,
        local: socket.local_addr().ok().map(|addr| address::record(&addr)),
        peer: peer_record(&socket)?,
    })
}

/// The peer's record, None for a socket that is not connected.
fn peer_record(socket: &SockRef<'_>) -> io::Result<Option<Vec<u8>>> {
    match socket.peer_addr() {
        Ok(addr) => Ok(Some(address::record(&addr))),
        Err(err) if err.raw_os_error() == Some(libc::ENOTCONN) => Ok(None),
        Err(err) => Err(err),
    }
}


/// `listen_tcp` with kernel buffers of `buffers` (set before the bind so every accepted connection
/// inherits them; as far as the process may, see `sys::buffers`). A size the kernel refuses fails
/// the call with its errno and closes the socket.
pub fn listen_tcp_sized(
    host: &str,
    port: u16,
    backlog: i32,
    reuse_port: bool,
    ipv6_only: Option<bool>,
    buffers: BufferSizes,
) -> io::Result<RawFd> {
    let addr = ip_socket_addr(host, port)?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if let (SocketAddr::V6(_), Some(only)) = (addr, ipv6_only) {
        socket.set_only_v6(only)?;
    }
    buffers.apply(std::os::fd::AsRawFd::as_raw_fd(&socket))?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into_raw_fd())
}

/// `listen_unix` with kernel buffers of `buffers`, set before the bind. They stay the listening
/// socket's: unlike TCP, Linux gives each accepted UNIX connection the system's defaults. A size
/// the kernel refuses fails the call and leaves no file at `path`.
pub fn listen_unix_sized(path: &str, backlog: i32, buffers: BufferSizes) -> io::Result<RawFd> {
    let addr = unix_socket_addr(path)?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    buffers.apply(std::os::fd::AsRawFd::as_raw_fd(&socket))?;
    socket.bind(&addr)?;
    socket.listen(backlog)?;
    Ok(socket.into_raw_fd())
}

/// `host` must be an IP literal (IPv6 may carry `%<interface>`): these helpers never resolve names.
pub fn ip_socket_addr(host: &str, port: u16) -> io::Result<SocketAddr> {
    address::parse_ip(host, port)?
        .ok_or_else(|| errno::error(libc::EINVAL, format!("host is not an IP address literal: {host:?}")))
}

/// A UNIX socket address for `path`, rejecting what the kernel would silently mangle.
pub fn unix_socket_addr(path: &str) -> io::Result<SockAddr> {
    if path.is_empty() {
        return Err(errno::error(libc::EINVAL, "UNIX socket path is empty"));
    }
    if path.bytes().skip(1).any(|b| b == 0) {
        return Err(errno::error(libc::EINVAL, "UNIX socket path contains a NUL byte"));
    }
    // socket2 refuses a path that does not fit sun_path with an error that has no errno.
    SockAddr::unix(path).map_err(|_| {
        errno::error(libc::ENAMETOOLONG, format!("UNIX socket path is too long ({} bytes)", path.len()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::buffers::{buffer_size, Buffer};
    use crate::wire::address::{decode, Record};
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Takes ownership of a returned fd so the test closes it even when an assertion fails.
    fn own(fd: RawFd) -> OwnedFd {
        assert!(fd >= 0);
        // SAFETY: `fd` was just returned to us by a helper that hands over ownership.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    fn decoded(record: &Option<Vec<u8>>) -> Record {
        decode(record.as_ref().expect("an address record"), 0).unwrap().0
    }

    fn code(err: &io::Error) -> i32 {
        errno::number(err).expect("an errno")
    }

    fn is_cloexec(fd: &OwnedFd) -> bool {
        // SAFETY: `fd` is open for as long as the borrow lasts; F_GETFD only reads flags.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
        flags >= 0 && flags & libc::FD_CLOEXEC != 0
    }

    use crate::test_support::TempPath;

    /// A number that no descriptor can have: far above any RLIMIT_NOFILE.
    const NEVER_OPEN: RawFd = RawFd::MAX;

    /// An fd number that was open a moment ago. Taken high (F_DUPFD picks the lowest free number
    /// at or above the floor) so tests opening fds on other threads do not get it back meanwhile,
    /// and from a fresh floor on each call so two tests never share one.
    fn just_closed_fd() -> RawFd {
        static NEXT_FLOOR: AtomicUsize = AtomicUsize::new(900);
        let floor = NEXT_FLOOR.fetch_add(10, Ordering::Relaxed) as RawFd;
        let file = std::fs::File::open("/dev/null").unwrap();
        // SAFETY: F_DUPFD_CLOEXEC makes a new fd from an open one; we close it right after.
        let high = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_DUPFD_CLOEXEC, floor) };
        assert!(high >= floor, "{}", io::Error::last_os_error());
        close(high).unwrap();
        high
    }

    #[test]
    fn listen_tcp_v4_listens_on_loopback() {
        let fd = own(listen_tcp("127.0.0.1", 0, 16, false, None).unwrap());
        assert!(is_cloexec(&fd));
        let info = info(fd.as_raw_fd()).unwrap();
        assert_eq!((info.family, info.socket_type), (libc::AF_INET, libc::SOCK_STREAM));
        assert!(info.listening);
        assert!(!info.non_blocking);
        assert_eq!(info.peer, None);
        let local = decoded(&info.local);
        assert_eq!(local.host, b"127.0.0.1");
        assert_ne!(local.port, 0);
        let reuse_addr = SockRef::from(&fd).reuse_address().unwrap();
        assert!(reuse_addr);
    }

    #[test]
    fn listen_tcp_v6_with_options() {
        let fd = match listen_tcp("::1", 0, 16, true, Some(true)) {
            Ok(fd) => own(fd),
            // A host without IPv6 cannot run this test.
            Err(err) if code(&err) == libc::EAFNOSUPPORT || code(&err) == libc::EADDRNOTAVAIL => return,
            Err(err) => panic!("{err}"),
        };
        let socket = SockRef::from(&fd);
        assert!(socket.only_v6().unwrap());
        assert!(socket.reuse_port().unwrap());
        let info = info(fd.as_raw_fd()).unwrap();
        assert_eq!(info.family, libc::AF_INET6);
        assert_eq!(decoded(&info.local).host, b"::1");
    }

    #[test]
    fn listen_tcp_rejects_names_and_busy_ports() {
        let err = listen_tcp("localhost", 0, 16, false, None).unwrap_err();
        assert_eq!(code(&err), libc::EINVAL);
        let first = own(listen_tcp("127.0.0.1", 0, 16, false, None).unwrap());
        let port = decoded(&info(first.as_raw_fd()).unwrap().local).port;
        let err = listen_tcp("127.0.0.1", port, 16, false, None).unwrap_err();
        assert_eq!(code(&err), libc::EADDRINUSE);
    }

    #[test]
    fn bind_udp_is_a_bound_datagram_socket() {
        let fd = own(bind_udp("127.0.0.1", 0, false).unwrap());
        assert!(is_cloexec(&fd));
        let info = info(fd.as_raw_fd()).unwrap();
        assert_eq!((info.family, info.socket_type), (libc::AF_INET, libc::SOCK_DGRAM));
        assert!(!info.listening);
        assert_eq!(info.peer, None);
        assert_ne!(decoded(&info.local).port, 0);
        assert!(!SockRef::from(&fd).reuse_address().unwrap());
        assert_eq!(code(&bind_udp("not-an-ip", 0, false).unwrap_err()), libc::EINVAL);
    }

    #[test]
    fn bind_udp_sized_sets_the_buffers_before_the_bind() {
        let sizes = BufferSizes { receive: Some(1 << 20), send: Some(1 << 18) };
        let fd = own(bind_udp_sized("127.0.0.1", 0, false, sizes).unwrap());
        // The kernel doubles what it is given (root passes rmem_max with SO_RCVBUFFORCE; others
        // are capped at it, which is far above these on any default system).
        let sizes = (buffer_size(fd.as_raw_fd(), Buffer::Receive).unwrap(), buffer_size(fd.as_raw_fd(), Buffer::Send).unwrap());
        assert_eq!(sizes, (2 << 20, 2 << 18));
    }

    #[test]
    fn bind_udp_reuse_port_lets_two_sockets_share_a_port() {
        let first = own(bind_udp("127.0.0.1", 0, true).unwrap());
        let port = decoded(&info(first.as_raw_fd()).unwrap().local).port;
        let second = own(bind_udp("127.0.0.1", port, true).unwrap());
        assert_eq!(decoded(&info(second.as_raw_fd()).unwrap().local).port, port);
    }

    #[test]
    fn listen_unix_listens_and_never_unlinks() {
        let path = TempPath::new("listen");
        let fd = own(listen_unix(path.as_str(), 8).unwrap());
        assert!(is_cloexec(&fd));
        let info = info(fd.as_raw_fd()).unwrap();
        assert_eq!((info.family, info.socket_type), (libc::AF_UNIX, libc::SOCK_STREAM));
        assert!(info.listening);
        assert_eq!(decoded(&info.local).host, path.as_str().as_bytes());
        // The path exists now: a second listener must fail, not replace the first.
        assert_eq!(code(&listen_unix(path.as_str(), 8).unwrap_err()), libc::EADDRINUSE);
        assert!(path.0.exists());
    }

    #[test]
    fn listen_unix_rejects_bad_paths() {
        assert_eq!(code(&listen_unix("", 8).unwrap_err()), libc::EINVAL);
        assert_eq!(code(&listen_unix("/tmp/a\0b", 8).unwrap_err()), libc::EINVAL);
        let long = format!("/tmp/{}", "x".repeat(200));
        assert_eq!(code(&listen_unix(&long, 8).unwrap_err()), libc::ENAMETOOLONG);
    }

    #[test]
    fn listen_unix_abstract_name() {
        let name = format!("\0reactor-core-{}-abstract", std::process::id());
        let fd = own(listen_unix(&name, 8).unwrap());
        assert_eq!(decoded(&info(fd.as_raw_fd()).unwrap().local).host, name.as_bytes());
    }

    #[test]
    fn connect_tcp_reaches_a_listener() {
        let listener = own(listen_tcp("127.0.0.1", 0, 16, false, None).unwrap());
        let port = decoded(&info(listener.as_raw_fd()).unwrap().local).port;
        let client = own(connect_tcp("127.0.0.1", port).unwrap());
        assert!(is_cloexec(&client));
        let info = info(client.as_raw_fd()).unwrap();
        assert!(!info.listening);
        let peer = decoded(&info.peer);
        assert_eq!((peer.host.as_slice(), peer.port), (&b"127.0.0.1"[..], port));
        let (accepted, _) = SockRef::from(&listener).accept().unwrap();
        drop(accepted);
    }

    #[test]
    fn connect_tcp_refused_and_bad_host() {
        // Bind a port, then close it, so nothing listens there.
        let port = {
            let fd = own(listen_tcp("127.0.0.1", 0, 1, false, None).unwrap());
            decoded(&info(fd.as_raw_fd()).unwrap().local).port
        };
        assert_eq!(code(&connect_tcp("127.0.0.1", port).unwrap_err()), libc::ECONNREFUSED);
        assert_eq!(code(&connect_tcp("example.com", 80).unwrap_err()), libc::EINVAL);
    }

    #[test]
    fn socket_pair_is_connected_unix_stream() {
        let (a, b) = socket_pair().unwrap();
        let (a, b) = (own(a), own(b));
        assert!(is_cloexec(&a) && is_cloexec(&b));
        let info = info(a.as_raw_fd()).unwrap();
        assert_eq!((info.family, info.socket_type), (libc::AF_UNIX, libc::SOCK_STREAM));
        assert!(!info.listening);
        // Unnamed on both ends: records with an empty name.
        assert_eq!(decoded(&info.peer).host, b"");
        assert_eq!(decoded(&info.local).host, b"");
        let mut a = std::fs::File::from(a);
        let mut b = std::fs::File::from(b);
        a.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        b.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
    }

    #[test]
    fn info_reports_non_blocking() {
        let (a, b) = socket_pair().unwrap();
        let (a, _b) = (own(a), own(b));
        SockRef::from(&a).set_nonblocking(true).unwrap();
        assert!(info(a.as_raw_fd()).unwrap().non_blocking);
    }

    #[test]
    fn info_unbound_udp_has_port_zero_and_no_peer() {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        let info = info(socket.as_raw_fd()).unwrap();
        assert_eq!(info.socket_type, libc::SOCK_DGRAM);
        assert_eq!(decoded(&info.local).port, 0);
        assert_eq!(info.peer, None);
    }

    #[test]
    fn info_rejects_bad_fds() {
        assert_eq!(code(&info(-1).unwrap_err()), libc::EBADF);
        assert_eq!(code(&info(NEVER_OPEN).unwrap_err()), libc::EBADF);
        assert_eq!(code(&info(just_closed_fd()).unwrap_err()), libc::EBADF);
        let (reader, writer) = std::io::pipe().unwrap();
        assert_eq!(code(&info(reader.as_raw_fd()).unwrap_err()), libc::ENOTSOCK);
        assert_eq!(code(&info(writer.as_raw_fd()).unwrap_err()), libc::ENOTSOCK);
        let null = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(code(&info(null.as_raw_fd()).unwrap_err()), libc::ENOTSOCK);
    }

    #[test]
    fn close_closes_once() {
        let (a, b) = socket_pair().unwrap();
        let _b = own(b);
        close(a).unwrap();
        // `a` may be reused by another test's fd at any moment, so check a number nobody reuses.
        assert_eq!(code(&close(just_closed_fd()).unwrap_err()), libc::EBADF);
        assert_eq!(code(&close(NEVER_OPEN).unwrap_err()), libc::EBADF);
        assert_eq!(code(&close(-1).unwrap_err()), libc::EBADF);
    }

    #[test]
    fn listeners_get_their_buffers_before_listening() {
        use crate::sys::sockopt::{get, SocketOption, Value};
        let buffers = BufferSizes { receive: Some(1 << 17), send: Some(1 << 16) };
        let tcp = own(listen_tcp_sized("127.0.0.1", 0, 8, false, None, buffers).unwrap());
        let sock = SockRef::from(&tcp);
        // Linux keeps twice what it is asked for (far below net.core.rmem_max / wmem_max here).
        assert_eq!(get(&sock, SocketOption::SoRcvbuf).unwrap(), Value::Int(1 << 18));
        assert_eq!(get(&sock, SocketOption::SoSndbuf).unwrap(), Value::Int(1 << 17));
        assert!(info(tcp.as_raw_fd()).unwrap().listening);
        // An accepted connection inherits the listener's sizes.
        let port = decoded(&info(tcp.as_raw_fd()).unwrap().local).port;
        let _client = own(connect_tcp("127.0.0.1", port).unwrap());
        let (accepted, _) = sock.accept().unwrap();
        assert_eq!(get(&accepted, SocketOption::SoRcvbuf).unwrap(), Value::Int(1 << 18));

        let path = TempPath::new("sized");
        let unix = own(listen_unix_sized(path.as_str(), 8, BufferSizes { receive: None, send: Some(1 << 16) }).unwrap());
        assert_eq!(get(&SockRef::from(&unix), SocketOption::SoSndbuf).unwrap(), Value::Int(1 << 17));
        // A size the option does not take: EINVAL, and nothing was bound.
        let refused = TempPath::new("refused");
        let err = listen_unix_sized(refused.as_str(), 8, BufferSizes { receive: Some(-1), send: None }).unwrap_err();
        assert_eq!(code(&err), libc::EINVAL);
        assert!(!refused.0.exists());
    }

    #[test]
    fn close_works_on_non_sockets() {
        let (reader, writer) = std::io::pipe().unwrap();
        close(reader.into_raw_fd()).unwrap();
        close(writer.into_raw_fd()).unwrap();
    }
}
