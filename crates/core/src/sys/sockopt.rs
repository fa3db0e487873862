//! Named socket options: a fixed, typed set that callers may set and read on any socket they hold
//! (Node has no generic setsockopt: nodejs/node#49418).
//!
//! This table is the one owner of the set: each option's name, the kind of value it takes and the
//! range the kernel's documentation gives for it (socket(7), tcp(7), ip(7), ipv6(7), and the limits
//! in include/net/tcp.h), never more than INT_MAX. The binding exports it; the TypeScript layer
//! checks arguments against it before anything reaches the kernel.
//!
//! Nothing here decides whether an option applies to a socket: the kernel does, and its answer is
//! passed on as is (ENOPROTOOPT for TCP_NODELAY on a UDP socket or IPV6_V6ONLY on an IPv4 one,
//! EOPNOTSUPP for a TCP or IP option on a UNIX socket, EINVAL for IPV6_V6ONLY after bind or
//! TCP_FASTOPEN on a connection, EPERM without the privilege SO_MARK or IP_TRANSPARENT needs).
//! Values are read back as the kernel reports them: SO_RCVBUF / SO_SNDBUF doubled on Linux, a
//! TCP_DEFER_ACCEPT rounded up to its retransmission schedule, a TCP_FASTOPEN queue capped at
//! somaxconn, IP_TOS with the ECN bits the kernel keeps on TCP sockets.
//!
//! socket2's setters and getters are used where it has one that sets only that option; the rest
//! (TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, whose socket2 setter also turns SO_KEEPALIVE on;
//! TCP_DEFER_ACCEPT and TCP_FASTOPEN, which it lacks) go through `setsockopt` directly.

use crate::sys::errno;
use socket2::Socket;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// The largest value any option takes from a caller: a C int.
pub const INT_MAX: i64 = i32::MAX as i64;

/// The kernel's limits for the TCP keepalive knobs (include/net/tcp.h: MAX_TCP_KEEPIDLE,
/// MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT); outside 1..=these it answers EINVAL.
const MAX_TCP_KEEPIDLE: i64 = 32_767;
const MAX_TCP_KEEPINTVL: i64 = 32_767;
const MAX_TCP_KEEPCNT: i64 = 127;

/// TCP_CA_NAME_MAX (include/net/tcp.h): a congestion control name and its NUL.
const TCP_CA_NAME_MAX: usize = 16;

/// What kind of value an option takes, and its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A flag: on or off.
    Bool,
    /// An integer in `min..=max`.
    Int { min: i64, max: i64 },
    /// An ASCII name without NUL of at most `max_len` bytes; empty only where `clearable`
    /// (SO_BINDTODEVICE, where '' removes the binding).
    Name { max_len: usize, clearable: bool },
}

/// A value to set, or one read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    /// Wide enough for anything the kernel reports (SO_MARK and TCP_USER_TIMEOUT are unsigned);
    /// what a caller sets is within the option's [`Kind::Int`] range.
    Int(i64),
    Name(String),
}

macro_rules! socket_options {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $kind:expr; )*) => {
        /// The options this module sets and reads, by their C names.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum SocketOption {
            $( $(#[$doc])* $variant, )*
        }

        impl SocketOption {
            /// Every option, in the order the documentation lists them.
            pub const ALL: &'static [SocketOption] = &[$(SocketOption::$variant),*];

            /// The option's C name ("SO_RCVBUF"), which is also its name in JS.
            pub fn name(self) -> &'static str {
                match self {
                    $(SocketOption::$variant => $name,)*
                }
            }

            /// The kind of value it takes.
            pub fn kind(self) -> Kind {
                match self {
                    $(SocketOption::$variant => $kind,)*
                }
            }
        }
    };
}

socket_options! {
    /// Receive buffer, bytes (the kernel caps it at net.core.rmem_max and doubles it).
    SoRcvbuf = "SO_RCVBUF", Kind::Int { min: 0, max: INT_MAX };
    /// Send buffer, bytes (capped at net.core.wmem_max, doubled).
    SoSndbuf = "SO_SNDBUF", Kind::Int { min: 0, max: INT_MAX };
    /// Keepalive probes on a connection.
    SoKeepalive = "SO_KEEPALIVE", Kind::Bool;
    /// Several sockets may bind the same address and port (the kernel spreads the load).
    SoReuseport = "SO_REUSEPORT", Kind::Bool;
    /// The packet mark for routing and filtering (needs CAP_NET_ADMIN or CAP_NET_RAW).
    SoMark = "SO_MARK", Kind::Int { min: 0, max: INT_MAX };
    /// Only packets of this interface; '' removes the binding (changing an existing binding
    /// needs CAP_NET_RAW).
    SoBindtodevice = "SO_BINDTODEVICE", Kind::Name { max_len: libc::IFNAMSIZ - 1, clearable: true };
    /// No Nagle delay.
    TcpNodelay = "TCP_NODELAY", Kind::Bool;
    /// Seconds idle before the first keepalive probe.
    TcpKeepidle = "TCP_KEEPIDLE", Kind::Int { min: 1, max: MAX_TCP_KEEPIDLE };
    /// Seconds between keepalive probes.
    TcpKeepintvl = "TCP_KEEPINTVL", Kind::Int { min: 1, max: MAX_TCP_KEEPINTVL };
    /// Unanswered probes before the connection is dropped.
    TcpKeepcnt = "TCP_KEEPCNT", Kind::Int { min: 1, max: MAX_TCP_KEEPCNT };
    /// Milliseconds sent data may stay unacknowledged before the connection is dropped (0: the
    /// system's default).
    TcpUserTimeout = "TCP_USER_TIMEOUT", Kind::Int { min: 0, max: INT_MAX };
    /// Seconds a listener waits for data before handing over a connection (read back rounded up
    /// to the SYN-ACK retransmission schedule).
    TcpDeferAccept = "TCP_DEFER_ACCEPT", Kind::Int { min: 0, max: INT_MAX };
    /// TCP Fast Open queue length on a listener (capped at somaxconn; 0 turns it off).
    TcpFastopen = "TCP_FASTOPEN", Kind::Int { min: 0, max: INT_MAX };
    /// The congestion control algorithm by name ('cubic', 'reno', ...).
    TcpCongestion = "TCP_CONGESTION", Kind::Name { max_len: TCP_CA_NAME_MAX - 1, clearable: false };
    /// The IPv4 type-of-service byte (DSCP and ECN).
    IpTos = "IP_TOS", Kind::Int { min: 0, max: 255 };
    /// The IPv4 time to live of unicast packets.
    IpTtl = "IP_TTL", Kind::Int { min: 1, max: 255 };
    /// Bind to an address that is not (yet) local.
    IpFreebind = "IP_FREEBIND", Kind::Bool;
    /// Transparent proxying: bind to and answer for foreign addresses (needs CAP_NET_ADMIN or
    /// CAP_NET_RAW).
    IpTransparent = "IP_TRANSPARENT", Kind::Bool;
    /// An IPv6 socket that takes no IPv4-mapped traffic (settable only before bind).
    Ipv6V6only = "IPV6_V6ONLY", Kind::Bool;
}

impl SocketOption {
    /// The option named `name` (its C name, exactly).
    pub fn from_name(name: &str) -> Option<SocketOption> {
        SocketOption::ALL.iter().copied().find(|o| o.name() == name)
    }

    /// EINVAL (with what is wrong) unless `value` is of this option's kind and within its bounds.
    pub fn check(self, value: &Value) -> io::Result<()> {
        let name = self.name();
        match (self.kind(), value) {
            (Kind::Bool, Value::Bool(_)) => Ok(()),
            (Kind::Int { min, max }, Value::Int(n)) if (min..=max).contains(n) => Ok(()),
            (Kind::Int { min, max }, Value::Int(n)) => {
                Err(errno::error(libc::EINVAL, format!("{name} must be an integer in {min}..{max}, not {n}")))
            }
            (Kind::Name { max_len, clearable }, Value::Name(s)) => {
                if s.is_empty() && !clearable {
                    Err(errno::error(libc::EINVAL, format!("{name} must not be empty")))
                } else if !s.is_ascii() || s.contains('\0') {
                    Err(errno::error(libc::EINVAL, format!("{name} must be ASCII without NUL: {s:?}")))
                } else if s.len() > max_len {
                    Err(errno::error(libc::EINVAL, format!("{name} is at most {max_len} bytes: {s:?}")))
                } else {
                    Ok(())
                }
            }
            (kind, value) => Err(errno::error(libc::EINVAL, format!("{name} takes {kind:?}, not {value:?}"))),
        }
    }
}

/// Sets `option` to `value` on `sock`. EINVAL for a value the option does not take (see
/// [`SocketOption::check`]); otherwise whatever the kernel answers.
pub fn set(sock: &Socket, option: SocketOption, value: &Value) -> io::Result<()> {
    use SocketOption::*;
    option.check(value)?;
    match (option, value) {
        (SoKeepalive, &Value::Bool(on)) => sock.set_keepalive(on),
        (SoReuseport, &Value::Bool(on)) => sock.set_reuse_port(on),
        (TcpNodelay, &Value::Bool(on)) => sock.set_tcp_nodelay(on),
        (IpFreebind, &Value::Bool(on)) => sock.set_freebind_v4(on),
        (IpTransparent, &Value::Bool(on)) => sock.set_ip_transparent_v4(on),
        (Ipv6V6only, &Value::Bool(on)) => sock.set_only_v6(on),
        // `check` bounded every integer to 0..=INT_MAX or narrower: the casts below are exact.
        (SoRcvbuf, &Value::Int(n)) => sock.set_recv_buffer_size(n as usize),
        (SoSndbuf, &Value::Int(n)) => sock.set_send_buffer_size(n as usize),
        (SoMark, &Value::Int(n)) => sock.set_mark(n as u32),
        (TcpUserTimeout, &Value::Int(n)) => sock.set_tcp_user_timeout((n > 0).then(|| Duration::from_millis(n as u64))),
        (IpTos, &Value::Int(n)) => sock.set_tos_v4(n as u32),
        (IpTtl, &Value::Int(n)) => sock.set_ttl_v4(n as u32),
        (TcpKeepidle, &Value::Int(n)) => set_int(sock.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, n as i32),
        (TcpKeepintvl, &Value::Int(n)) => set_int(sock.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, n as i32),
        (TcpKeepcnt, &Value::Int(n)) => set_int(sock.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_KEEPCNT, n as i32),
        (TcpDeferAccept, &Value::Int(n)) => set_int(sock.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT, n as i32),
        (TcpFastopen, &Value::Int(n)) => set_int(sock.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_FASTOPEN, n as i32),
        (SoBindtodevice, Value::Name(name)) => sock.bind_device((!name.is_empty()).then_some(name.as_bytes())),
        (TcpCongestion, Value::Name(name)) => sock.set_tcp_congestion(name.as_bytes()),
        // `check` let through only the kind each option takes.
        _ => unreachable!("{option:?} was checked to take {value:?}"),
    }
}

/// What the kernel reports for `option` on `sock`.
pub fn get(sock: &Socket, option: SocketOption) -> io::Result<Value> {
    use SocketOption::*;
    let fd = sock.as_raw_fd();
    Ok(match option {
        SoKeepalive => Value::Bool(sock.keepalive()?),
        SoReuseport => Value::Bool(sock.reuse_port()?),
        TcpNodelay => Value::Bool(sock.tcp_nodelay()?),
        IpFreebind => Value::Bool(sock.freebind_v4()?),
        IpTransparent => Value::Bool(sock.ip_transparent_v4()?),
        Ipv6V6only => Value::Bool(sock.only_v6()?),
        SoRcvbuf => Value::Int(sock.recv_buffer_size()? as i64),
        SoSndbuf => Value::Int(sock.send_buffer_size()? as i64),
        SoMark => Value::Int(sock.mark()?.into()),
        TcpUserTimeout => Value::Int(sock.tcp_user_timeout()?.map_or(0, |d| d.as_millis() as i64)),
        IpTos => Value::Int(sock.tos_v4()?.into()),
        IpTtl => Value::Int(sock.ttl_v4()?.into()),
        TcpKeepidle => Value::Int(sock.tcp_keepalive_time()?.as_secs() as i64),
        TcpKeepintvl => Value::Int(sock.tcp_keepalive_interval()?.as_secs() as i64),
        TcpKeepcnt => Value::Int(sock.tcp_keepalive_retries()?.into()),
        TcpDeferAccept => Value::Int(get_int(fd, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT)?.into()),
        TcpFastopen => Value::Int(get_int(fd, libc::IPPROTO_TCP, libc::TCP_FASTOPEN)?.into()),
        SoBindtodevice => Value::Name(text(sock.device()?.unwrap_or_default())),
        TcpCongestion => Value::Name(text(sock.tcp_congestion()?)),
    })
}

/// [`set`] on a descriptor the caller holds: EBADF when it is not open, ENOTSOCK when it is not
/// a socket. Nothing is kept or closed.
pub fn set_fd(fd: RawFd, option: SocketOption, value: &Value) -> io::Result<()> {
    crate::sys::validate::with_socket(fd, |sock| set(&sock, option, value))?
}

/// [`get`] on a descriptor the caller holds (EBADF, ENOTSOCK as for [`set_fd`]).
pub fn get_fd(fd: RawFd, option: SocketOption) -> io::Result<Value> {
    crate::sys::validate::with_socket(fd, |sock| get(&sock, option))?
}

/// A name the kernel wrote into a fixed buffer, up to its first NUL (TCP_CONGESTION fills all
/// 16 bytes, padding with NULs).
fn text(mut bytes: Vec<u8>) -> String {
    if let Some(end) = bytes.iter().position(|&b| b == 0) {
        bytes.truncate(end);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn set_int(fd: RawFd, level: libc::c_int, option: libc::c_int, value: libc::c_int) -> io::Result<()> {
    let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the value is a c_int that lives across the call, passed with its size; `fd` is only
    // borrowed for the call (the caller holds it open).
    syscall!(setsockopt(fd, level, option, (&value as *const libc::c_int).cast(), size)).map(drop)
}

fn get_int(fd: RawFd, level: libc::c_int, option: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` is a writable c_int and `len` its size; the kernel writes at most `len`
    // bytes. `fd` is only borrowed for the call.
    syscall!(getsockopt(fd, level, option, (&mut value as *mut libc::c_int).cast(), &mut len))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Protocol, Type};
    use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;
    use SocketOption::*;

    fn errno_of(err: &io::Error) -> i32 {
        errno::number(err).unwrap_or_else(|| panic!("no errno in {err}"))
    }

    fn sock_of(fd: &impl AsFd) -> socket2::SockRef<'_> {
        socket2::SockRef::from(fd)
    }

    /// The kernel's word for an option of another protocol: ENOPROTOOPT from an IPv4 socket's
    /// setsockopt, EOPNOTSUPP from its getsockopt and from a UNIX socket's (Linux 6.x).
    fn assert_not_applicable(result: io::Result<()>, option: SocketOption) {
        let err = result.expect_err(option.name());
        let errno = errno_of(&err);
        assert!(errno == libc::ENOPROTOOPT || errno == libc::EOPNOTSUPP, "{option:?}: {err}");
    }

    fn round_trip(sock: &Socket, option: SocketOption, value: Value) {
        set(sock, option, &value).unwrap_or_else(|e| panic!("set {option:?} {value:?}: {e}"));
        assert_eq!(get(sock, option).unwrap(), value, "{option:?}");
    }

    fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }

    fn tcp_pair() -> (TcpListener, TcpStream, TcpStream) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (listener, client, server)
    }

    #[test]
    fn names_are_unique_and_found_again() {
        for (i, option) in SocketOption::ALL.iter().enumerate() {
            assert_eq!(SocketOption::from_name(option.name()), Some(*option));
            assert!(SocketOption::ALL[..i].iter().all(|o| o.name() != option.name()));
            if let Kind::Int { max, .. } = option.kind() {
                assert!(max <= INT_MAX, "{option:?}");
            }
        }
        assert_eq!(SocketOption::ALL.len(), 19);
        assert_eq!(SocketOption::from_name("so_rcvbuf"), None);
        assert_eq!(SocketOption::from_name("SO_LINGER"), None);
    }

    #[test]
    fn values_outside_the_table_are_einval_before_any_syscall() {
        let (reader, _writer) = std::io::pipe().unwrap();
        let pipe = sock_of(&reader);
        // A pipe would answer ENOTSOCK: EINVAL shows the check came first.
        for (option, value) in [
            (IpTtl, Value::Int(0)),
            (IpTtl, Value::Int(256)),
            (IpTos, Value::Int(-1)),
            (SoRcvbuf, Value::Int(INT_MAX + 1)),
            (TcpKeepcnt, Value::Int(128)),
            (TcpNodelay, Value::Int(1)),
            (SoMark, Value::Bool(true)),
            (TcpCongestion, Value::Name(String::new())),
            (TcpCongestion, Value::Name("x".repeat(16))),
            (SoBindtodevice, Value::Name("l\0".into())),
            (SoBindtodevice, Value::Name("é".into())),
        ] {
            let err = set(&pipe, option, &value).unwrap_err();
            assert_eq!(errno_of(&err), libc::EINVAL, "{option:?} {value:?}");
        }
        // A name of the longest length passes the check and reaches the kernel.
        let err = set(&pipe, TcpCongestion, &Value::Name("x".repeat(15))).unwrap_err();
        assert_eq!(errno_of(&err), libc::ENOTSOCK);
    }

    #[test]
    fn tcp_connection_round_trips() {
        let (_listener, client, _server) = tcp_pair();
        let sock = sock_of(&client);
        for on in [true, false] {
            round_trip(&sock, SoKeepalive, Value::Bool(on));
            round_trip(&sock, TcpNodelay, Value::Bool(on));
            round_trip(&sock, SoReuseport, Value::Bool(on));
            round_trip(&sock, IpFreebind, Value::Bool(on));
        }
        for (option, values) in [
            (TcpKeepidle, [1, 60, MAX_TCP_KEEPIDLE]),
            (TcpKeepintvl, [1, 15, MAX_TCP_KEEPINTVL]),
            (TcpKeepcnt, [1, 9, MAX_TCP_KEEPCNT]),
            (TcpUserTimeout, [0, 1500, INT_MAX]),
            (IpTtl, [1, 64, 255]),
            // TCP keeps the ECN bits (the low two) for itself: set values without them.
            (IpTos, [0, 0x10, 0xb8]),
        ] {
            for n in values {
                round_trip(&sock, option, Value::Int(n));
            }
        }
        // TCP_KEEPIDLE & co. leave SO_KEEPALIVE alone (socket2's combined setter would not).
        set(&sock, SoKeepalive, &Value::Bool(false)).unwrap();
        set(&sock, TcpKeepidle, &Value::Int(30)).unwrap();
        assert_eq!(get(&sock, SoKeepalive).unwrap(), Value::Bool(false));
        // Past the kernel's own limits: EINVAL from the table, not a silent clamp.
        assert_eq!(errno_of(&set(&sock, TcpKeepidle, &Value::Int(MAX_TCP_KEEPIDLE + 1)).unwrap_err()), libc::EINVAL);
    }

    #[test]
    fn buffers_are_read_back_doubled() {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let sock = sock_of(&udp);
        set(&sock, SoRcvbuf, &Value::Int(65_536)).unwrap();
        assert_eq!(get(&sock, SoRcvbuf).unwrap(), Value::Int(131_072));
        set(&sock, SoSndbuf, &Value::Int(32_768)).unwrap();
        assert_eq!(get(&sock, SoSndbuf).unwrap(), Value::Int(65_536));
        // 0 is raised to the kernel's minimum, INT_MAX capped at its maximum: both succeed.
        set(&sock, SoRcvbuf, &Value::Int(0)).unwrap();
        let Value::Int(min) = get(&sock, SoRcvbuf).unwrap() else { panic!() };
        assert!(min > 0 && min < 131_072, "{min}");
        set(&sock, SoSndbuf, &Value::Int(INT_MAX)).unwrap();
        let Value::Int(max) = get(&sock, SoSndbuf).unwrap() else { panic!() };
        assert!(max >= 131_072, "{max}");
    }

    #[test]
    fn listener_options() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let sock = sock_of(&listener);
        round_trip(&sock, TcpFastopen, Value::Int(16));
        round_trip(&sock, TcpFastopen, Value::Int(0));
        round_trip(&sock, TcpDeferAccept, Value::Int(0));
        round_trip(&sock, TcpDeferAccept, Value::Int(1));
        round_trip(&sock, TcpDeferAccept, Value::Int(3));
        // Rounded up to the retransmission schedule (1 + 2 + 4 s): 5 reads back as 7.
        set(&sock, TcpDeferAccept, &Value::Int(5)).unwrap();
        assert_eq!(get(&sock, TcpDeferAccept).unwrap(), Value::Int(7));
        // Fast Open's queue applies to listeners (and sockets not yet connected) only.
        let (_l, client, _s) = tcp_pair();
        assert_eq!(errno_of(&set(&sock_of(&client), TcpFastopen, &Value::Int(16)).unwrap_err()), libc::EINVAL);
    }

    #[test]
    fn congestion_control_by_name() {
        let (_listener, client, _server) = tcp_pair();
        let sock = sock_of(&client);
        round_trip(&sock, TcpCongestion, Value::Name("reno".into()));
        let err = set(&sock, TcpCongestion, &Value::Name("no-such-cc".into())).unwrap_err();
        assert_eq!(errno_of(&err), libc::ENOENT);
        assert_eq!(get(&sock, TcpCongestion).unwrap(), Value::Name("reno".into()));
    }

    #[test]
    fn bind_to_device_and_clear() {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let sock = sock_of(&udp);
        assert_eq!(get(&sock, SoBindtodevice).unwrap(), Value::Name(String::new()));
        round_trip(&sock, SoBindtodevice, Value::Name("lo".into()));
        round_trip(&sock, SoBindtodevice, Value::Name(String::new()));
        let err = set(&sock, SoBindtodevice, &Value::Name("nosuchif0".into())).unwrap_err();
        assert_eq!(errno_of(&err), libc::ENODEV);
    }

    #[test]
    fn ipv6_only_before_bind_only() {
        let sock = match Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP)) {
            Ok(sock) => sock,
            Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => return, // no IPv6 here
            Err(e) => panic!("{e}"),
        };
        round_trip(&sock, Ipv6V6only, Value::Bool(true));
        round_trip(&sock, Ipv6V6only, Value::Bool(false));
        if sock.bind(&SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)).into()).is_ok() {
            assert_eq!(errno_of(&set(&sock, Ipv6V6only, &Value::Bool(true)).unwrap_err()), libc::EINVAL);
        }
        let v4 = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        assert_not_applicable(set(&v4, Ipv6V6only, &Value::Bool(true)).map(drop), Ipv6V6only);
        assert_not_applicable(get(&v4, Ipv6V6only).map(drop), Ipv6V6only);
    }

    #[test]
    fn options_of_another_kind_of_socket_are_the_kernels_errno() {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let udp = sock_of(&udp);
        for option in [TcpNodelay, TcpKeepidle, TcpCongestion] {
            let value = match option.kind() {
                Kind::Bool => Value::Bool(true),
                Kind::Int { min, .. } => Value::Int(min),
                Kind::Name { .. } => Value::Name("reno".into()),
            };
            assert_not_applicable(set(&udp, option, &value), option);
            assert_not_applicable(get(&udp, option).map(drop), option);
        }
        let (unix, _other) = UnixStream::pair().unwrap();
        let unix = sock_of(&unix);
        for option in [TcpNodelay, IpTos, IpTtl] {
            let value = if option == TcpNodelay { Value::Bool(true) } else { Value::Int(1) };
            assert_not_applicable(set(&unix, option, &value), option);
        }
        // SOL_SOCKET options apply to UNIX sockets too.
        set(&unix, SoSndbuf, &Value::Int(65_536)).unwrap();
        assert_eq!(get(&unix, SoSndbuf).unwrap(), Value::Int(131_072));
    }

    #[test]
    fn privileged_options_as_root() {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let sock = sock_of(&udp);
        assert_eq!(get(&sock, SoMark).unwrap(), Value::Int(0));
        assert_eq!(get(&sock, IpTransparent).unwrap(), Value::Bool(false));
        if !is_root() {
            // Without CAP_NET_ADMIN / CAP_NET_RAW (a non-root user has neither unless granted).
            for result in [set(&sock, SoMark, &Value::Int(7)), set(&sock, IpTransparent, &Value::Bool(true))] {
                let err = result.unwrap_err();
                assert_eq!(errno_of(&err), libc::EPERM);
            }
            return;
        }
        round_trip(&sock, SoMark, Value::Int(7));
        round_trip(&sock, SoMark, Value::Int(INT_MAX));
        round_trip(&sock, SoMark, Value::Int(0));
        round_trip(&sock, IpTransparent, Value::Bool(true));
        round_trip(&sock, IpTransparent, Value::Bool(false));
    }

    #[test]
    fn descriptors_are_checked_first() {
        let err = get_fd(-1, TcpNodelay).unwrap_err();
        assert_eq!(errno_of(&err), libc::EBADF);
        let err = set_fd(RawFd::MAX, TcpNodelay, &Value::Bool(true)).unwrap_err();
        assert_eq!(errno_of(&err), libc::EBADF);
        let (reader, _writer) = std::io::pipe().unwrap();
        let err = get_fd(reader.as_raw_fd(), SoRcvbuf).unwrap_err();
        assert_eq!(errno_of(&err), libc::ENOTSOCK);
        let (_l, client, _s) = tcp_pair();
        set_fd(client.as_raw_fd(), TcpNodelay, &Value::Bool(true)).unwrap();
        assert_eq!(get_fd(client.as_raw_fd(), TcpNodelay).unwrap(), Value::Bool(true));
    }
}
