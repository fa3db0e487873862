//! Handing listening sockets from a running process to its successor over a UNIX socket, so the
//! sockets never close and no connection attempt is refused (as HAProxy, Envoy and Pingora do).
//!
//! The old process makes an [`Offer`] at a path (mode 0600) and [`Offer::serve`]s it; the new one
//! calls [`take`] and, once it serves the sockets itself, [`confirm_ready`]. Conversation, one
//! connection:
//!
//! ```text
//! new → old   (connect; the old process checks the peer's uid with SO_PEERCRED)
//! old → new   'O' u16 count, count × (u16 length, UTF-8 name)   + SCM_RIGHTS: count descriptors
//!         or  'R'                                               (refused: uid not allowed)
//! new → old   'K'                                               (ready: the new process serves)
//! old → new   'A'                                               (acknowledged: the offer is gone)
//! ```
//!
//! Every wait is a `poll` that also watches a [`Canceller`] (the offer's `close()`) and honours a
//! deadline, so the calls block only the thread that runs them. A taker that goes away before
//! 'K' changes nothing: the offer keeps serving the next one.

use crate::sys::{errno, scm, sockets};
use socket2::{Domain, SockAddr, Socket, Type};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const OFFER: u8 = b'O';
const REFUSED: u8 = b'R';
const READY: u8 = b'K';
const ACKNOWLEDGED: u8 = b'A';

/// A listening socket as handed over: its name and the descriptor.
#[derive(Debug)]
pub struct Listener {
    pub name: String,
    pub fd: OwnedFd,
}

/// The peer's credentials on a connected AF_UNIX socket (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// `SO_PEERCRED` (socket2 has no getter for it).
pub fn peer_cred(socket: BorrowedFd<'_>) -> io::Result<PeerCred> {
    // SAFETY: an all-zero ucred is a valid value to be overwritten.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, which is that large.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCred { pid: cred.pid, uid: cred.uid, gid: cred.gid })
}

/// Wakes whatever waits in [`Offer::serve`] (an eventfd that stays readable once written).
#[derive(Debug, Clone)]
pub struct Canceller(Arc<OwnedFd>);

impl Canceller {
    pub fn new() -> io::Result<Canceller> {
        // SAFETY: eventfd returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nobody else.
        Ok(Canceller(Arc::new(unsafe { OwnedFd::from_raw_fd(fd) })))
    }

    /// A handle that can cancel without keeping the eventfd open.
    pub fn downgrade(&self) -> WeakCanceller {
        WeakCanceller(Arc::downgrade(&self.0))
    }

    /// Every present and future wait on this canceller fails with ECANCELED.
    pub fn cancel(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd; a full counter (EAGAIN) is
        // already readable, which is all we need.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Cancels while the [`Canceller`] lives; a no-op after it was dropped (its wait is over).
#[derive(Debug, Clone)]
pub struct WeakCanceller(std::sync::Weak<OwnedFd>);

impl WeakCanceller {
    pub fn cancel(&self) {
        if let Some(fd) = self.0.upgrade() {
            Canceller(fd).cancel();
        }
    }
}

/// The socket file an offer created: removed once, and only while it is still ours (a successor
/// may have created its own offer at the same path meanwhile).
#[derive(Debug)]
pub struct OfferPath {
    path: String,
    identity: (u64, u64),
    removed: Mutex<bool>,
}

impl OfferPath {
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Unlinks the path if it still names the socket this offer bound. Idempotent.
    pub fn remove(&self) {
        let mut removed = self.removed.lock().unwrap_or_else(|e| e.into_inner());
        if *removed {
            return;
        }
        *removed = true;
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.identity {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// An open offer: a listening UNIX socket and duplicates of the descriptors to hand over.
#[derive(Debug)]
pub struct Offer {
    socket: Socket,
    listeners: Vec<Listener>,
    allow_uids: Vec<u32>,
    path: Arc<OfferPath>,
    cancel: Canceller,
}

impl Offer {
    /// Listens at `path` (mode 0600; a stale socket left by a dead process is replaced) with
    /// close-on-exec duplicates of `listeners` (the caller keeps and may close its own). Peers of
    /// our effective uid or one of `allow_uids` may take them.
    pub fn new(path: &str, listeners: &[(String, RawFd)], allow_uids: &[u32]) -> io::Result<Offer> {
        if listeners.is_empty() || listeners.len() > scm::MAX_FDS {
            return Err(errno::error(
                libc::EINVAL,
                format!("an offer holds 1 to {} descriptors, not {}", scm::MAX_FDS, listeners.len()),
            ));
        }
        let mut duplicates = Vec::with_capacity(listeners.len());
        for (name, fd) in listeners {
            if name.len() > usize::from(u16::MAX) {
                return Err(errno::error(libc::EINVAL, "a listener's name is longer than 65535 bytes"));
            }
            duplicates.push(Listener { name: name.clone(), fd: duplicate(*fd)? });
        }
        let socket = bind_private(path)?;
        let meta = std::fs::symlink_metadata(path)?;
        let path = Arc::new(OfferPath {
            path: path.to_owned(),
            identity: (meta.dev(), meta.ino()),
            removed: Mutex::new(false),
        });
        // From here on, a failure must not leave the file behind.
        let listening = socket.listen(16).and_then(|()| socket.set_nonblocking(true));
        if let Err(err) = listening {
            path.remove();
            return Err(err);
        }
        let cancel = match Canceller::new() {
            Ok(cancel) => cancel,
            Err(err) => {
                path.remove();
                return Err(err);
            }
        };
        Ok(Offer { socket, listeners: duplicates, allow_uids: allow_uids.to_vec(), path, cancel })
    }

    /// What `close()` uses from another thread: wake the server, remove the path.
    pub fn canceller(&self) -> Canceller {
        self.cancel.clone()
    }

    pub fn path(&self) -> Arc<OfferPath> {
        self.path.clone()
    }

    /// Serves takers until one confirms it is ready (Ok, with how many peers were refused), or
    /// the canceller fires (ECANCELED). Either way the path is removed and the socket closed
    /// before this returns; on success before the taker's `confirm_ready` returns.
    pub fn serve(self, mut on_refused: impl FnMut(PeerCred)) -> io::Result<()> {
        let result = self.serve_until_taken(&mut on_refused);
        self.path.remove();
        let Offer { socket, listeners, .. } = self;
        drop(socket);
        drop(listeners);
        // The path is gone and the socket closed: only now is the taker told so, so it may make
        // its own offer at the same path at once.
        result.map(|taker| {
            let _ = write_all(taker.as_fd(), &[ACKNOWLEDGED]);
        })
    }

    fn serve_until_taken(&self, on_refused: &mut impl FnMut(PeerCred)) -> io::Result<Socket> {
        loop {
            wait_readable(self.socket.as_fd(), Some(&self.cancel), None)?;
            let taker = match self.socket.accept() {
                Ok((taker, _)) => taker,
                Err(err) if is_transient_accept_error(&err) => continue,
                Err(err) if matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    // Out of descriptors: the taker waits in the backlog; try again shortly.
                    match wait_readable(self.cancel.fd(), None, Some(Instant::now() + Duration::from_millis(100))) {
                        Err(err) if err.raw_os_error() == Some(libc::ETIMEDOUT) => continue,
                        _ => return Err(errno::error(libc::ECANCELED, "the offer was closed")),
                    }
                }
                Err(err) => return Err(err),
            };
            let cred = peer_cred(taker.as_fd())?;
            if !self.allows(cred.uid) {
                let _ = write_all(taker.as_fd(), &[REFUSED]);
                on_refused(cred);
                continue;
            }
            match self.hand_over(&taker) {
                Ok(true) => return Ok(taker),
                Ok(false) => continue,
                Err(err) if err.raw_os_error() == Some(libc::ECANCELED) => return Err(err),
                Err(_) => continue, // the taker vanished; the next may come
            }
        }
    }

    fn allows(&self, uid: u32) -> bool {
        // SAFETY: geteuid cannot fail.
        uid == unsafe { libc::geteuid() } || self.allow_uids.contains(&uid)
    }

    /// Sends the descriptors, then waits for 'K'. Ok(false): the taker closed without it.
    fn hand_over(&self, taker: &Socket) -> io::Result<bool> {
        let message = encode_offer(&self.listeners);
        let fds: Vec<BorrowedFd<'_>> = self.listeners.iter().map(|l| l.fd.as_fd()).collect();
        let sent = scm::send_with_fds(taker.as_fd(), &message, &fds)?;
        write_all(taker.as_fd(), &message[sent..])?;
        wait_readable(taker.as_fd(), Some(&self.cancel), None)?;
        let mut reply = [0u8; 1];
        let n = read_some(taker.as_fd(), &mut reply)?;
        Ok(n == 1 && reply[0] == READY)
    }
}

/// What [`take`] got: the listeners, and the connection on which to confirm readiness.
#[derive(Debug)]
pub struct Taken {
    pub listeners: Vec<Listener>,
    pub control: Socket,
}

/// Connects to the offer at `path` and receives its descriptors (close-on-exec). ENOENT or
/// ECONNREFUSED: no offer there; ETIMEDOUT: no answer before `deadline`; EACCES: the offering
/// process refused us (uid); ECONNRESET: it went away; EPROTO: it answered something else;
/// ECANCELED: `cancel` fired.
pub fn take(path: &str, deadline: Option<Instant>, cancel: Option<&Canceller>) -> io::Result<Taken> {
    let address = sockets::unix_socket_addr(path)?;
    let control = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    control.set_nonblocking(true)?;
    connect(&control, &address, deadline, cancel)?;
    let mut message = Vec::new();
    let mut fds = Vec::new();
    loop {
        if let Some(names) = decode_offer(&message)? {
            if names.len() != fds.len() {
                return Err(errno::error(
                    libc::EPROTO,
                    format!("{} names came with {} descriptors", names.len(), fds.len()),
                ));
            }
            let listeners = names.into_iter().zip(fds).map(|(name, fd)| Listener { name, fd }).collect();
            return Ok(Taken { listeners, control });
        }
        wait_readable(control.as_fd(), cancel, deadline)?;
        let mut buf = [0u8; 4096];
        let got = match scm::recv_with_fds(control.as_fd(), &mut buf, scm::MAX_FDS) {
            Ok(got) => got,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) => return Err(err),
        };
        if got.truncated {
            return Err(errno::error(libc::EPROTO, "the offer's descriptors did not fit (MSG_CTRUNC)"));
        }
        if got.bytes == 0 {
            return Err(errno::error(libc::ECONNRESET, "the offering process closed the connection"));
        }
        if !got.fds.is_empty() && !message.is_empty() {
            return Err(errno::error(libc::EPROTO, "descriptors arrived after the offer's first byte"));
        }
        message.extend_from_slice(&buf[..got.bytes]);
        fds.extend(got.fds);
    }
}

/// Tells the offering process that we serve the sockets now, and waits for its acknowledgement
/// (the offer is withdrawn by then). Closes `control`.
pub fn confirm_ready(control: Socket, deadline: Option<Instant>, cancel: Option<&Canceller>) -> io::Result<()> {
    write_all(control.as_fd(), &[READY])?;
    let mut reply = [0u8; 1];
    loop {
        wait_readable(control.as_fd(), cancel, deadline)?;
        match read_some(control.as_fd(), &mut reply) {
            Ok(1) if reply[0] == ACKNOWLEDGED => return Ok(()),
            Ok(0) => return Err(errno::error(libc::ECONNRESET, "the offering process went away before acknowledging")),
            Ok(_) => return Err(errno::error(libc::EPROTO, "unexpected reply to ready")),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) => return Err(err),
        }
    }
}

/// Waits until `fd` is readable (or hung up), the canceller fires (ECANCELED) or the deadline
/// passes (ETIMEDOUT).
pub fn wait_readable(fd: BorrowedFd<'_>, cancel: Option<&Canceller>, deadline: Option<Instant>) -> io::Result<()> {
    loop {
        let mut polled = [
            libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: cancel.map_or(-1, |c| c.fd().as_raw_fd()), events: libc::POLLIN, revents: 0 },
        ];
        let timeout = match deadline {
            None => -1,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(errno::error(libc::ETIMEDOUT, "timed out waiting for the other process"));
                }
                // Round up so a sub-millisecond remainder does not spin.
                i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
            }
        };
        // SAFETY: `polled` is a live array of 2 pollfds; a negative fd is ignored by poll.
        let n = unsafe { libc::poll(polled.as_mut_ptr(), 2, timeout) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if polled[1].revents != 0 {
            return Err(errno::error(libc::ECANCELED, "cancelled"));
        }
        if polled[0].revents != 0 {
            return Ok(());
        }
    }
}

fn encode_offer(listeners: &[Listener]) -> Vec<u8> {
    let mut message = vec![OFFER];
    message.extend_from_slice(&(listeners.len() as u16).to_le_bytes());
    for listener in listeners {
        message.extend_from_slice(&(listener.name.len() as u16).to_le_bytes());
        message.extend_from_slice(listener.name.as_bytes());
    }
    message
}

/// The names of a complete offer message, None while more bytes are needed.
fn decode_offer(message: &[u8]) -> io::Result<Option<Vec<String>>> {
    match message.first() {
        None => return Ok(None),
        Some(&REFUSED) => {
            return Err(errno::error(libc::EACCES, "the offering process refused this process (its uid is not allowed)"))
        }
        Some(&OFFER) => {}
        Some(other) => return Err(errno::error(libc::EPROTO, format!("not a handoff offer (first byte {other:#04x})"))),
    }
    let mut at = 1;
    let Some(count) = read_u16(message, &mut at) else { return Ok(None) };
    let mut names = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let Some(length) = read_u16(message, &mut at) else { return Ok(None) };
        let Some(bytes) = message.get(at..at + usize::from(length)) else { return Ok(None) };
        at += usize::from(length);
        let name = std::str::from_utf8(bytes).map_err(|_| errno::error(libc::EPROTO, "a listener name is not UTF-8"))?;
        names.push(name.to_owned());
    }
    if at != message.len() {
        return Err(errno::error(libc::EPROTO, "bytes after the offer"));
    }
    Ok(Some(names))
}

fn read_u16(message: &[u8], at: &mut usize) -> Option<u16> {
    let bytes = message.get(*at..*at + 2)?;
    *at += 2;
    Some(u16::from_le_bytes([bytes[0], bytes[1]]))
}

/// A UNIX stream socket bound at `path` with mode 0600. The mode is set on the socket before
/// bind (Linux creates the file with the socket inode's mode, less the umask), so the file never
/// exists with a wider mode. A stale socket file (nobody accepts on it) is replaced; a live one
/// is EADDRINUSE.
fn bind_private(path: &str) -> io::Result<Socket> {
    let address = sockets::unix_socket_addr(path)?;
    if path.starts_with('\0') {
        return Err(errno::error(libc::EINVAL, "an offer needs a filesystem path (its mode protects it)"));
    }
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    // SAFETY: fchmod on a socket we own changes only its inode's mode.
    if unsafe { libc::fchmod(socket.as_raw_fd(), 0o600) } < 0 {
        return Err(io::Error::last_os_error());
    }
    match socket.bind(&address) {
        Err(err) if err.raw_os_error() == Some(libc::EADDRINUSE) && is_stale_socket(path, &address) => {
            std::fs::remove_file(path)?;
            socket.bind(&address)?;
        }
        other => other?,
    }
    Ok(socket)
}

/// A socket file at `path` that refuses connections: left behind by a process that died.
fn is_stale_socket(path: &str, address: &SockAddr) -> bool {
    let is_socket = std::fs::symlink_metadata(path)
        .map(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
        .unwrap_or(false);
    if !is_socket {
        return false;
    }
    let Ok(probe) = Socket::new(Domain::UNIX, Type::STREAM, None) else { return false };
    if probe.set_nonblocking(true).is_err() {
        return false;
    }
    matches!(probe.connect(address), Err(err) if err.raw_os_error() == Some(libc::ECONNREFUSED))
}

/// A non-blocking UNIX connect: immediate, or EAGAIN while the backlog is full (then retried).
fn connect(socket: &Socket, address: &SockAddr, deadline: Option<Instant>, cancel: Option<&Canceller>) -> io::Result<()> {
    loop {
        match socket.connect(address) {
            Ok(()) => return Ok(()),
            Err(err) if err.raw_os_error() == Some(libc::EAGAIN) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(errno::error(libc::ETIMEDOUT, "the offer's backlog stayed full"));
                }
                // Retry in 5 ms, unless cancelled meanwhile.
                if let Some(cancel) = cancel {
                    let retry = Some(Instant::now() + Duration::from_millis(5));
                    if wait_readable(cancel.fd(), None, retry).is_ok() {
                        return Err(errno::error(libc::ECANCELED, "cancelled"));
                    }
                } else {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
}

fn duplicate(fd: RawFd) -> io::Result<OwnedFd> {
    crate::sys::fd::duplicate_cloexec(fd)
}

fn is_transient_accept_error(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock
        || err.kind() == io::ErrorKind::Interrupted
        || err.raw_os_error() == Some(libc::ECONNABORTED)
}

fn read_some(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: reads at most buf.len() bytes into `buf`.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Writes all of `bytes` (the messages here are small; a non-blocking socket is waited on).
fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match scm::send_with_fds(fd, bytes, &[]) {
            Ok(n) => bytes = &bytes[n..],
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => wait_writable(fd)?,
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

fn wait_writable(fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut polled = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLOUT, revents: 0 };
    // SAFETY: one live pollfd; a bounded wait (the peer reads small messages promptly).
    let n = unsafe { libc::poll(&mut polled, 1, 10_000) };
    match n {
        0 => Err(errno::error(libc::ETIMEDOUT, "the other process does not read")),
        n if n < 0 => Err(io::Error::last_os_error()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
