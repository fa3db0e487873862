//! The service side of systemd's protocols, without libsystemd: socket activation
//! (`sd_listen_fds_with_names`), readiness and fd-store notification (`sd_notify`,
//! `sd_pid_notify_with_fds`) and the watchdog interval (`sd_watchdog_enabled`).
//!
//! The environment is read by the caller and passed in (the values of `LISTEN_PID`, ...), so this
//! module never touches the process environment: the host (Node's `process.env`) owns it.

use crate::sys::{errno, scm, sockets};
use socket2::{Domain, Socket, Type};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, RawFd};

/// The first inherited descriptor (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// The name systemd gives a descriptor that has none.
pub const UNKNOWN_NAME: &str = "unknown";

/// The socket-activation variables as found in the environment (None: unset).
#[derive(Debug, Default, Clone, Copy)]
pub struct ListenEnv<'a> {
    pub pid: Option<&'a str>,
    pub fds: Option<&'a str>,
    pub names: Option<&'a str>,
}

/// One inherited descriptor and its `FileDescriptorName=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenFd {
    pub fd: RawFd,
    pub name: String,
}

/// The descriptors systemd passed to process `our_pid`, each made close-on-exec (they are
/// inherited without it). Empty when `LISTEN_PID` or `LISTEN_FDS` is unset or `LISTEN_PID` names
/// another process (the variables were inherited from a parent, the descriptors are not ours).
/// EINVAL for a malformed value; EBADF when a listed descriptor is not open.
pub fn listen_fds(env: ListenEnv<'_>, our_pid: u32) -> io::Result<Vec<ListenFd>> {
    let fds = parse_listen_fds(env, our_pid)?;
    for listen in &fds {
        set_cloexec(listen.fd)?;
    }
    Ok(fds)
}

/// [`listen_fds`] without touching any descriptor: what the variables say.
pub fn parse_listen_fds(env: ListenEnv<'_>, our_pid: u32) -> io::Result<Vec<ListenFd>> {
    let Some(pid) = env.pid else { return Ok(Vec::new()) };
    let pid = parse_pid(pid, "LISTEN_PID")?;
    if pid != our_pid {
        return Ok(Vec::new());
    }
    let Some(count) = env.fds else { return Ok(Vec::new()) };
    let count: RawFd = parse_decimal(count)
        .and_then(|n| RawFd::try_from(n).ok())
        .filter(|n| *n > 0 && *n <= RawFd::MAX - LISTEN_FDS_START)
        .ok_or_else(|| invalid(format!("LISTEN_FDS is not a positive count: {count:?}")))?;
    let names: Vec<&str> = env.names.map(|names| names.split(':').collect()).unwrap_or_default();
    if names.len() > count as usize {
        return Err(invalid(format!("LISTEN_FDNAMES has {} names for {count} descriptors", names.len())));
    }
    Ok((0..count)
        .map(|i| {
            // A missing or empty name is systemd's "unknown".
            let name = names.get(i as usize).copied().filter(|n| !n.is_empty()).unwrap_or(UNKNOWN_NAME);
            ListenFd { fd: LISTEN_FDS_START + i, name: name.to_owned() }
        })
        .collect())
}

/// Sends `state` (e.g. "READY=1") as one datagram to `notify_socket` (the value of
/// `NOTIFY_SOCKET`: an absolute path, or `@name` for an abstract socket), with `fds` attached
/// (for `FDSTORE=1`).
pub fn notify(notify_socket: &str, state: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let address = notify_address(notify_socket)?;
    if state.is_empty() {
        return Err(invalid("the notification state is empty".into()));
    }
    // socket2 opens with SOCK_CLOEXEC; the socket lives only for this call.
    let socket = Socket::new(Domain::UNIX, Type::DGRAM, None)?;
    let sent = scm::send_to_with_fds(socket.as_fd(), state, fds, &address)?;
    if sent != state.len() {
        return Err(errno::error(libc::EMSGSIZE, "the notification was not sent whole"));
    }
    Ok(())
}

/// The address `NOTIFY_SOCKET` names: `/path` or `@abstract` (sent with a leading NUL).
pub fn notify_address(notify_socket: &str) -> io::Result<socket2::SockAddr> {
    match notify_socket.as_bytes().first() {
        Some(b'/') => sockets::unix_socket_addr(notify_socket),
        Some(b'@') if notify_socket.len() > 1 => sockets::unix_socket_addr(&format!("\0{}", &notify_socket[1..])),
        _ => Err(invalid(format!("NOTIFY_SOCKET is neither an absolute path nor @name: {notify_socket:?}"))),
    }
}

/// The watchdog interval in microseconds: `WATCHDOG_USEC` when `WATCHDOG_PID` is unset or is
/// `our_pid`, None otherwise (or when `WATCHDOG_USEC` is unset). EINVAL for a malformed value.
pub fn watchdog_usec(usec: Option<&str>, pid: Option<&str>, our_pid: u32) -> io::Result<Option<u64>> {
    let Some(usec) = usec else { return Ok(None) };
    let value = parse_decimal(usec)
        .filter(|n| *n > 0 && *n < u64::MAX)
        .ok_or_else(|| invalid(format!("WATCHDOG_USEC is not a positive number: {usec:?}")))?;
    if let Some(pid) = pid {
        if parse_pid(pid, "WATCHDOG_PID")? != our_pid {
            return Ok(None);
        }
    }
    Ok(Some(value))
}

/// A decimal number of ASCII digits only (no sign, no spaces), as systemd writes them.
fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_pid(text: &str, variable: &str) -> io::Result<u32> {
    parse_decimal(text)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| invalid(format!("{variable} is not a process id: {text:?}")))
}

fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFD/F_SETFD only read and set the descriptor flags of `fd`; a number that is not
    // open fails with EBADF and nothing changes.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn invalid(detail: String) -> io::Error {
    errno::error(libc::EINVAL, detail)
}

#[cfg(test)]
mod tests {
    /// The errno an error carries (tests compare numbers; naming them is the binding's business).
    fn errno_number(err: &std::io::Error) -> i32 {
        crate::sys::errno::number(err).expect("an errno")
    }
    use super::*;
    use std::os::fd::{AsRawFd, OwnedFd};

    const ME: u32 = 4242;

    fn env<'a>(pid: Option<&'a str>, fds: Option<&'a str>, names: Option<&'a str>) -> ListenEnv<'a> {
        ListenEnv { pid, fds, names }
    }

    fn code(result: io::Result<Vec<ListenFd>>) -> i32 {
        errno_number(&result.unwrap_err())
    }

    #[test]
    fn names_come_from_listen_fdnames_with_unknown_for_the_rest() {
        let fds = parse_listen_fds(env(Some("4242"), Some("3"), Some("web:")), ME).unwrap();
        let got: Vec<(RawFd, &str)> = fds.iter().map(|f| (f.fd, f.name.as_str())).collect();
        assert_eq!(got, [(3, "web"), (4, "unknown"), (5, "unknown")]);
        let fds = parse_listen_fds(env(Some("4242"), Some("2"), None), ME).unwrap();
        assert!(fds.iter().all(|f| f.name == "unknown"));
    }

    #[test]
    fn another_pid_or_unset_variables_mean_none() {
        assert_eq!(parse_listen_fds(env(Some("1"), Some("2"), None), ME).unwrap(), []);
        assert_eq!(parse_listen_fds(env(None, Some("2"), None), ME).unwrap(), []);
        assert_eq!(parse_listen_fds(env(Some("4242"), None, None), ME).unwrap(), []);
    }

    #[test]
    fn malformed_values_are_einval() {
        for (pid, fds, names) in [
            ("x", "1", None),
            ("0", "1", None),
            ("-5", "1", None),
            (" 4242", "1", None),
            ("4242", "0", None),
            ("4242", "-1", None),
            ("4242", "1x", None),
            ("4242", "", None),
            ("4242", "99999999999", None),
            ("4242", "1", Some("a:b")),
        ] {
            assert_eq!(code(parse_listen_fds(env(Some(pid), Some(fds), names), ME)), libc::EINVAL, "{pid} {fds} {names:?}");
        }
    }

    #[test]
    fn listen_fds_sets_close_on_exec_and_reports_closed_numbers() {
        // Fds 3.. are whatever the test harness has open; check a high number we control instead
        // through parse + set_cloexec, the two halves of listen_fds.
        let file: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
        // SAFETY: F_SETFD on an fd we own.
        unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETFD, 0) };
        set_cloexec(file.as_raw_fd()).unwrap();
        // SAFETY: F_GETFD on an fd we own.
        let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFD) };
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
        assert_eq!(errno_number(&set_cloexec(RawFd::MAX).unwrap_err()), libc::EBADF);
    }

    #[test]
    fn watchdog_interval_rules() {
        assert_eq!(watchdog_usec(None, None, ME).unwrap(), None);
        assert_eq!(watchdog_usec(Some("3000000"), None, ME).unwrap(), Some(3_000_000));
        assert_eq!(watchdog_usec(Some("3000000"), Some("4242"), ME).unwrap(), Some(3_000_000));
        assert_eq!(watchdog_usec(Some("3000000"), Some("1"), ME).unwrap(), None);
        for bad in ["0", "x", "", "-1"] {
            assert_eq!(errno_number(&watchdog_usec(Some(bad), None, ME).unwrap_err()), libc::EINVAL);
        }
        assert_eq!(errno_number(&watchdog_usec(Some("5"), Some("pid"), ME).unwrap_err()), libc::EINVAL);
    }

    #[test]
    fn notify_addresses() {
        assert_eq!(errno_number(&notify_address("relative").unwrap_err()), libc::EINVAL);
        assert_eq!(errno_number(&notify_address("@").unwrap_err()), libc::EINVAL);
        assert_eq!(errno_number(&notify_address("").unwrap_err()), libc::EINVAL);
        assert!(notify_address("/run/systemd/notify").is_ok());
        let abstract_name = notify_address("@x").unwrap();
        assert_eq!(abstract_name.as_abstract_namespace(), Some(&b"x"[..]));
    }

    fn receiver(address: &str) -> Socket {
        let socket = Socket::new(Domain::UNIX, Type::DGRAM, None).unwrap();
        socket.bind(&notify_address(address).unwrap()).unwrap();
        socket
    }

    fn receive(socket: &Socket) -> (String, Vec<OwnedFd>) {
        let mut buf = [0u8; 256];
        let got = scm::recv_with_fds(socket.as_fd(), &mut buf, 8).unwrap();
        (String::from_utf8_lossy(&buf[..got.bytes]).into_owned(), got.fds)
    }

    #[test]
    fn notify_reaches_a_path_socket_with_fds() {
        let path = std::env::temp_dir().join(format!("reactor-core-notify-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let path_text = path.to_str().unwrap().to_owned();
        let socket = receiver(&path_text);
        let (a, _b) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
        notify(&path_text, b"FDSTORE=1\nFDNAME=web", &[a.as_fd()]).unwrap();
        let (state, fds) = receive(&socket);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(state, "FDSTORE=1\nFDNAME=web");
        assert_eq!(fds.len(), 1);
    }

    #[test]
    fn notify_reaches_an_abstract_socket() {
        let name = format!("@reactor-core-notify-{}", std::process::id());
        let socket = receiver(&name);
        notify(&name, b"READY=1", &[]).unwrap();
        let (state, fds) = receive(&socket);
        assert_eq!((state.as_str(), fds.len()), ("READY=1", 0));
    }

    #[test]
    fn notify_errors() {
        let name = format!("@reactor-core-nobody-{}", std::process::id());
        assert_eq!(errno_number(&notify(&name, b"READY=1", &[]).unwrap_err()), libc::ECONNREFUSED);
        assert_eq!(errno_number(&notify("/nonexistent/notify", b"READY=1", &[]).unwrap_err()), libc::ENOENT);
        assert_eq!(errno_number(&notify("/x", b"", &[]).unwrap_err()), libc::EINVAL);
    }
}
