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
/// EINVAL for a malformed value, or a count past what this process can have open; EBADF when a
/// listed descriptor is not open. Each descriptor is checked before the next entry is made, so
/// what this allocates is bounded by the descriptors really open, whatever `LISTEN_FDS` says.
pub fn listen_fds(env: ListenEnv<'_>, our_pid: u32) -> io::Result<Vec<ListenFd>> {
    let Some(listed) = parse_listen_env(env, our_pid, fd_table_limit())? else { return Ok(Vec::new()) };
    let mut fds = Vec::new();
    for listen in listed.iter() {
        set_cloexec(listen.fd)?;
        fds.push(listen);
    }
    Ok(fds)
}

/// What the socket-activation variables say, before any descriptor is looked at: `count`
/// descriptors from fd 3, named by `names` (LISTEN_FDNAMES). Holds no per-descriptor data: the
/// entries are made one at a time by [`Listed::iter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed<'a> {
    pub count: RawFd,
    names: Option<&'a str>,
}

impl<'a> Listed<'a> {
    /// fd 3, 4, ... with their names (`unknown` where LISTEN_FDNAMES has none or an empty one).
    pub fn iter(&self) -> impl Iterator<Item = ListenFd> + 'a {
        let mut names = self.names.map(|names| names.split(':'));
        (0..self.count).map(move |i| {
            let name = names.as_mut().and_then(|n| n.next()).filter(|n| !n.is_empty()).unwrap_or(UNKNOWN_NAME);
            ListenFd { fd: LISTEN_FDS_START + i, name: name.to_owned() }
        })
    }
}

/// Reads the variables, without touching any descriptor or allocating per descriptor. None when
/// they are not for `our_pid` (or unset). `fd_limit`: one past the highest descriptor number this
/// process can have (see [`fd_table_limit`]); a `LISTEN_FDS` that reaches past it is EINVAL, as
/// is any malformed value.
pub fn parse_listen_env<'a>(env: ListenEnv<'a>, our_pid: u32, fd_limit: u64) -> io::Result<Option<Listed<'a>>> {
    if env.pid.is_none() || listen_pid_elsewhere(env.pid, our_pid)?.is_some() {
        return Ok(None);
    }
    let Some(text) = env.fds else { return Ok(None) };
    let count: RawFd = parse_decimal(text)
        .and_then(|n| RawFd::try_from(n).ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| invalid(format!("LISTEN_FDS is not a positive count: {}", shown(text))))?;
    let room = fd_limit.saturating_sub(LISTEN_FDS_START as u64);
    if count as u64 > room {
        return Err(invalid(format!(
            "LISTEN_FDS is {count}: more descriptors than this process can have open from fd {LISTEN_FDS_START} (limit {fd_limit})"
        )));
    }
    if let Some(names) = env.names {
        let given = names.split(':').count();
        if given > count as usize {
            return Err(invalid(format!("LISTEN_FDNAMES has {given} names for {count} descriptors")));
        }
    }
    Ok(Some(Listed { count, names: env.names }))
}

/// The process `LISTEN_PID` names when that is not `our_pid`: the descriptors were passed to
/// another process (most often a wrapper such as npm, tsx or nodemon that spawned this one
/// instead of exec'ing it) and are not ours. None when unset or ours; EINVAL when malformed.
pub fn listen_pid_elsewhere(pid: Option<&str>, our_pid: u32) -> io::Result<Option<u32>> {
    let Some(pid) = pid else { return Ok(None) };
    let pid = parse_pid(pid, "LISTEN_PID")?;
    Ok((pid != our_pid).then_some(pid))
}

/// One past the highest descriptor number this process can have open: the larger of the soft and
/// hard RLIMIT_NOFILE (Node raises the soft limit to the hard one at start-up; a descriptor
/// inherited across exec was placed under the limit of the process that exec'd us).
pub fn fd_table_limit() -> u64 {
    // SAFETY: an all-zero rlimit is a valid value to be overwritten.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: getrlimit writes one rlimit into a live local.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return RawFd::MAX as u64;
    }
    let highest = limit.rlim_cur.max(limit.rlim_max);
    if highest == libc::RLIM_INFINITY {
        RawFd::MAX as u64
    } else {
        highest.min(RawFd::MAX as u64)
    }
}

/// A value as an error message shows it: quoted, and cut short when long.
fn shown(text: &str) -> String {
    const MOST: usize = 40;
    match text.char_indices().nth(MOST) {
        Some((cut, _)) => format!("{:?}... ({} bytes)", &text[..cut], text.len()),
        None => format!("{text:?}"),
    }
}

/// Sends `state` (e.g. "READY=1") as one datagram to `notify_socket` (the value of
/// `NOTIFY_SOCKET`: an absolute path, or `@name` for an abstract socket), with `fds` attached
/// (for `FDSTORE=1`). Never waits: a manager whose queue is full is EAGAIN (the notification was
/// not sent), so the caller's thread (Node's JS thread) is never blocked by a busy manager.
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
        _ => Err(invalid(format!("NOTIFY_SOCKET is neither an absolute path nor @name: {}", shown(notify_socket)))),
    }
}

/// The watchdog interval in microseconds: `WATCHDOG_USEC` when `WATCHDOG_PID` is unset or is
/// `our_pid`, None otherwise (or when `WATCHDOG_USEC` is unset). EINVAL for a malformed value.
pub fn watchdog_usec(usec: Option<&str>, pid: Option<&str>, our_pid: u32) -> io::Result<Option<u64>> {
    let Some(usec) = usec else { return Ok(None) };
    let value = parse_decimal(usec)
        .filter(|n| *n > 0 && *n < u64::MAX)
        .ok_or_else(|| invalid(format!("WATCHDOG_USEC is not a positive number: {}", shown(usec))))?;
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
        .ok_or_else(|| invalid(format!("{variable} is not a process id: {}", shown(text))))
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

    /// What the variables say, as entries (for small counts), with a limit of 1024 descriptors.
    fn parse_listen_fds(env: ListenEnv<'_>, our_pid: u32) -> io::Result<Vec<ListenFd>> {
        Ok(parse_listen_env(env, our_pid, 1024)?.map(|listed| listed.iter().collect()).unwrap_or_default())
    }

    #[test]
    fn a_count_past_the_fd_table_is_einval_before_anything_is_made() {
        // 2147483644 = i32::MAX - 3: the largest count that still names valid fd numbers.
        let huge = env(Some("4242"), Some("2147483644"), None);
        let err = parse_listen_env(huge, ME, 1024).unwrap_err();
        assert_eq!(errno_number(&err), libc::EINVAL);
        assert!(err.to_string().contains("limit 1024"), "{err}");
        // Up to the limit it is only a number: nothing is made per descriptor.
        let listed = parse_listen_env(huge, ME, RawFd::MAX as u64).unwrap().unwrap();
        assert_eq!(listed.count, 2_147_483_644);
        assert_eq!(listed.iter().nth(1), Some(ListenFd { fd: 4, name: "unknown".into() }));
        let exact = parse_listen_env(env(Some("4242"), Some("1021"), None), ME, 1024).unwrap().unwrap();
        assert_eq!(exact.iter().last().unwrap().fd, 1023);
        assert!(parse_listen_env(env(Some("4242"), Some("1022"), None), ME, 1024).is_err());
        // The real table: this process's limit is far below 2147483644.
        assert!(fd_table_limit() >= 3);
        let ours = std::process::id().to_string();
        let huge_here = env(Some(&ours), Some("2147483644"), None);
        assert_eq!(errno_number(&listen_fds(huge_here, std::process::id()).unwrap_err()), libc::EINVAL);
    }

    #[test]
    fn listen_fds_stops_at_the_first_descriptor_that_is_not_open() {
        // The largest count the table allows: the entries stop at the first closed number, so
        // memory stays bounded by what is open.
        let limit = fd_table_limit();
        let count = (limit - 3).to_string();
        let err = listen_fds(env(Some(&std::process::id().to_string()), Some(&count), None), std::process::id()).unwrap_err();
        assert_eq!(errno_number(&err), libc::EBADF);
    }

    /// An arbitrary string for a variable: digits (sometimes very many), separators, signs,
    /// spaces, letters, multi-byte characters.
    fn arbitrary_text(rng: &mut crate::test_support::Rng) -> String {
        const PIECES: &[&str] = &["0", "1", "3", "9", "4242", ":", "::", "-", "+", " ", "\n", "x", "é", "\0", "web", "18446744073709551616", "2147483644", "2147483647"];
        let mut text = String::new();
        for _ in 0..rng.below(8) {
            let piece: &&str = rng.pick(PIECES);
            text.push_str(piece);
        }
        if rng.one_in(20) {
            text.push_str(&"9".repeat(rng.below(100_000)));
        }
        if rng.one_in(20) {
            text.push_str(&":".repeat(rng.below(100_000)));
        }
        text
    }

    #[test]
    fn property_arbitrary_variables_never_panic_and_allocate_nothing_per_descriptor() {
        use crate::test_support::Rng;
        for case in 0..Rng::cases(5000) {
            let seed = Rng::seed_for(case);
            let mut rng = Rng::new(seed);
            let texts: Vec<Option<String>> = (0..3).map(|_| (!rng.one_in(5)).then(|| arbitrary_text(&mut rng))).collect();
            let our_pid = if rng.one_in(2) { 4242 } else { rng.next_u64() as u32 };
            let limit = *rng.pick(&[0, 3, 4, 64, 1024, 1 << 20, RawFd::MAX as u64, u64::MAX]);
            let listen = ListenEnv { pid: texts[0].as_deref(), fds: texts[1].as_deref(), names: texts[2].as_deref() };
            match parse_listen_env(listen, our_pid, limit) {
                Ok(None) => {}
                Ok(Some(listed)) => {
                    assert!(listed.count >= 1 && listed.count as u64 <= limit.saturating_sub(3), "seed {seed}: {listed:?}");
                    for (i, entry) in listed.iter().take(4).enumerate() {
                        assert_eq!(entry.fd, 3 + i as RawFd, "seed {seed}");
                        assert!(!entry.name.is_empty() && !entry.name.contains(':'), "seed {seed}: {entry:?}");
                    }
                }
                Err(err) => {
                    assert_eq!(errno_number(&err), libc::EINVAL, "seed {seed}: {err}");
                    assert!(err.to_string().len() < 300, "seed {seed}: a short message, whatever the value");
                }
            }
            let _ = watchdog_usec(texts[0].as_deref(), texts[1].as_deref(), our_pid);
            if let Some(text) = &texts[2] {
                let _ = notify_address(text);
            }
        }
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
    fn listen_pid_elsewhere_names_another_process_only() {
        assert_eq!(listen_pid_elsewhere(Some("1"), ME).unwrap(), Some(1));
        assert_eq!(listen_pid_elsewhere(Some(&ME.to_string()), ME).unwrap(), None);
        assert_eq!(listen_pid_elsewhere(None, ME).unwrap(), None);
        assert_eq!(errno_number(&listen_pid_elsewhere(Some("x1"), ME).unwrap_err()), libc::EINVAL);
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

    #[test]
    fn notify_to_a_manager_that_does_not_read_is_eagain_not_a_wait() {
        let name = format!("@reactor-core-notify-full-{}", std::process::id());
        let _socket = receiver(&name); // never read
        let started = std::time::Instant::now();
        let mut sent = 0;
        let err = loop {
            match notify(&name, b"STATUS=filling the queue", &[]) {
                Ok(()) => sent += 1,
                Err(err) => break err,
            }
            assert!(sent < 100_000, "the queue never filled");
        };
        assert_eq!(errno_number(&err), libc::EAGAIN, "after {sent}: {err}");
        assert!(sent >= 1);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
