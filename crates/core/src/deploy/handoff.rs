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
//! Trust goes both ways: the offer hands its descriptors only to a peer of its own uid or one in
//! `allow_uids`, and [`take`] accepts them only from an offer made by its own uid, root, or one in
//! `trust_uids` (both by `SO_PEERCRED`), so whoever holds the path first cannot feed a successor
//! sockets of its choosing.
//!
//! Every wait is a `poll` that also watches a [`Canceller`] (the offer's `close()`) and has a
//! deadline, so the calls block only the thread that runs them and never for ever (a taker's own
//! timeout may be infinite by its caller's choice). The offer serves up to [`MAX_TAKERS`] takers
//! at once, each for at most its taker timeout ([`DEFAULT_TAKER_TIMEOUT`]) from connect to 'K':
//! a taker that stays silent, or takes the descriptors and hangs, delays nobody. A taker that goes
//! away before 'K' changes nothing: the offer keeps serving the others and the next.

use crate::sys::{errno, poll, scm, sockets};
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

/// How long the offer gives one taker from its connect to its 'K' (ready) by default.
pub const DEFAULT_TAKER_TIMEOUT: Duration = Duration::from_secs(10);

/// Takers an offer serves at once; later ones wait in the backlog until one is done or dropped.
pub const MAX_TAKERS: usize = 16;

/// How long small control messages ('R', 'K', 'A') may wait for room in the socket buffer.
const SMALL_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The instant `timeout_ms` milliseconds after `now`. None (no deadline) for a negative or NaN
/// timeout, and for one too far away to represent (1e300 ms, or more than the clock's range):
/// waiting that long is waiting for ever. Never panics, whatever the number.
pub fn deadline_after_ms(now: Instant, timeout_ms: f64) -> Option<Instant> {
    if timeout_ms.is_nan() || timeout_ms < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(timeout_ms / 1000.0).ok().and_then(|timeout| now.checked_add(timeout))
}

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
    taker_timeout: Duration,
    path: Arc<OfferPath>,
    cancel: Canceller,
}

/// One taker being served: its connection, how much of the offer it has, and its deadline.
struct Taker {
    socket: Socket,
    /// Bytes of the offer message sent so far (the descriptors went with the first).
    sent: usize,
    /// Past it the taker is dropped (None: too far away to represent).
    deadline: Option<Instant>,
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
        // Which listener failed goes into the message: the caller may pass many.
        let about = |e: io::Error, name: &str, fd: RawFd| match errno::number(&e) {
            Some(n) => errno::error(n, format!("{} (listener {name:?}, fd {fd})", errno::message(&e))),
            None => e,
        };
        // Every descriptor is checked before any is duplicated: a duplicate takes the lowest free
        // number, which may be that of a closed descriptor further down the list.
        for (name, fd) in listeners {
            if name.len() > usize::from(u16::MAX) {
                return Err(errno::error(libc::EINVAL, "a listener's name is longer than 65535 bytes"));
            }
            crate::sys::validate::check_open(*fd).map_err(|e| about(e, name, *fd))?;
        }
        let mut duplicates = Vec::with_capacity(listeners.len());
        for (name, fd) in listeners {
            let fd = duplicate(*fd).map_err(|e| about(e, name, *fd))?;
            duplicates.push(Listener { name: name.clone(), fd });
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
        Ok(Offer {
            socket,
            listeners: duplicates,
            allow_uids: allow_uids.to_vec(),
            taker_timeout: DEFAULT_TAKER_TIMEOUT,
            path,
            cancel,
        })
    }

    /// How long one taker may take from its connect to its 'K' before it is dropped (default
    /// [`DEFAULT_TAKER_TIMEOUT`]).
    pub fn with_taker_timeout(mut self, timeout: Duration) -> Offer {
        self.taker_timeout = timeout;
        self
    }

    /// What `close()` uses from another thread: wake the server, remove the path.
    pub fn canceller(&self) -> Canceller {
        self.cancel.clone()
    }

    pub fn path(&self) -> Arc<OfferPath> {
        self.path.clone()
    }

    /// Serves takers until one confirms it is ready (Ok), or the canceller fires (ECANCELED).
    /// `on_refused` is told of each peer refused for its uid. Either way the path is removed and
    /// the socket closed before this returns; on success before the taker's `confirm_ready`
    /// returns.
    pub fn serve(self, mut on_refused: impl FnMut(PeerCred)) -> io::Result<()> {
        let result = self.serve_until_taken(&mut on_refused);
        self.path.remove();
        let Offer { socket, listeners, .. } = self;
        drop(socket);
        drop(listeners);
        // The path is gone and the socket closed: only now is the taker told so, so it may make
        // its own offer at the same path at once.
        result.map(|taker| {
            let _ = write_all(taker.as_fd(), &[ACKNOWLEDGED], Some(Instant::now() + SMALL_WRITE_TIMEOUT));
        })
    }

    /// The serving loop: one poll over the canceller, the listening socket and every taker, so a
    /// taker that does nothing holds up nobody. Returns the connection of the first taker to say
    /// 'K'; the others are dropped (closed) with the loop.
    fn serve_until_taken(&self, on_refused: &mut impl FnMut(PeerCred)) -> io::Result<Socket> {
        let message = encode_offer(&self.listeners);
        let fds: Vec<BorrowedFd<'_>> = self.listeners.iter().map(|l| l.fd.as_fd()).collect();
        let mut takers: Vec<Taker> = Vec::new();
        // Out of descriptors: accepting pauses until then (the takers wait in the backlog).
        let mut accept_paused_until: Option<Instant> = None;
        loop {
            let now = Instant::now();
            takers.retain(|taker| taker.deadline.is_none_or(|deadline| deadline > now));
            accept_paused_until = accept_paused_until.filter(|until| *until > now);
            let accepting = takers.len() < MAX_TAKERS && accept_paused_until.is_none();

            let mut polled = Vec::with_capacity(2 + takers.len());
            polled.push(poll::entry(self.cancel.fd().as_raw_fd(), libc::POLLIN));
            polled.push(poll::entry(if accepting { self.socket.as_raw_fd() } else { -1 }, libc::POLLIN));
            for taker in &takers {
                let events = if taker.sent < message.len() { libc::POLLIN | libc::POLLOUT } else { libc::POLLIN };
                polled.push(poll::entry(taker.socket.as_raw_fd(), events));
            }
            let wake = takers.iter().filter_map(|t| t.deadline).chain(accept_paused_until).min();
            poll::poll(&mut polled, wake)?;
            if polled[0].revents != 0 {
                return Err(errno::error(libc::ECANCELED, "the offer was closed"));
            }

            // Serve the takers that have news; keep those still in the conversation.
            let mut kept = Vec::with_capacity(takers.len());
            for (mut taker, entry) in takers.into_iter().zip(&polled[2..]) {
                if entry.revents == 0 {
                    kept.push(taker);
                    continue;
                }
                match self.advance(&mut taker, &message, &fds, entry.revents) {
                    Ok(Step::Ready) => return Ok(taker.socket),
                    Ok(Step::Waiting) => kept.push(taker),
                    Err(_) => {} // gone, or said something else than 'K': dropped
                }
            }
            takers = kept;

            if polled[1].revents != 0 {
                accept_paused_until = self.accept_takers(&mut takers, &message, &fds, on_refused)?;
            }
        }
    }

    /// Accepts what waits in the backlog (up to [`MAX_TAKERS`] in service) and starts each
    /// allowed taker's conversation. Some(instant): out of descriptors, try again then.
    fn accept_takers(
        &self,
        takers: &mut Vec<Taker>,
        message: &[u8],
        fds: &[BorrowedFd<'_>],
        on_refused: &mut impl FnMut(PeerCred),
    ) -> io::Result<Option<Instant>> {
        while takers.len() < MAX_TAKERS {
            let socket = match self.socket.accept() {
                Ok((socket, _)) => socket,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(err) if is_transient_accept_error(&err) => continue,
                Err(err) if matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    return Ok(Some(Instant::now() + Duration::from_millis(100)));
                }
                Err(err) => return Err(err),
            };
            if socket.set_nonblocking(true).is_err() {
                continue;
            }
            let Ok(cred) = peer_cred(socket.as_fd()) else { continue };
            if !self.allows(cred.uid) {
                // Best effort, never waited for: the refused peer gets 'R' if its buffer has room.
                let _ = scm::send_with_fds(socket.as_fd(), &[REFUSED], &[]);
                on_refused(cred);
                continue;
            }
            let deadline = Instant::now().checked_add(self.taker_timeout);
            let mut taker = Taker { socket, sent: 0, deadline };
            // Start at once: the offer usually fits the socket buffer in one send.
            if self.advance(&mut taker, message, fds, libc::POLLOUT).is_ok() {
                takers.push(taker);
            }
        }
        Ok(None)
    }

    fn allows(&self, uid: u32) -> bool {
        // SAFETY: geteuid cannot fail.
        uid == unsafe { libc::geteuid() } || self.allow_uids.contains(&uid)
    }

    /// One step of a taker's conversation on poll's `revents`: send what the socket takes of the
    /// offer (the descriptors with its first byte), read its 'K' once the offer is sent. Err: the
    /// taker is gone or broke the protocol.
    fn advance(&self, taker: &mut Taker, message: &[u8], fds: &[BorrowedFd<'_>], revents: libc::c_short) -> io::Result<Step> {
        while taker.sent < message.len() {
            let with = if taker.sent == 0 { fds } else { &[] };
            match scm::send_with_fds(taker.socket.as_fd(), &message[taker.sent..], with) {
                Ok(n) => taker.sent += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) => return Err(err),
            }
        }
        if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) == 0 {
            return Ok(Step::Waiting);
        }
        let mut reply = [0u8; 1];
        match read_some(taker.socket.as_fd(), &mut reply) {
            Ok(1) if reply[0] == READY && taker.sent == message.len() => Ok(Step::Ready),
            Ok(0) => Err(errno::error(libc::ECONNRESET, "the taker went away")),
            Ok(_) => Err(errno::error(libc::EPROTO, "the taker said something else than ready")),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(Step::Waiting),
            Err(err) => Err(err),
        }
    }
}

/// Where a taker's conversation stands after [`Offer::advance`].
enum Step {
    Waiting,
    Ready,
}

/// What [`take`] got: the listeners, and the connection on which to confirm readiness.
#[derive(Debug)]
pub struct Taken {
    pub listeners: Vec<Listener>,
    pub control: Socket,
}

/// Connects to the offer at `path` and receives its descriptors (close-on-exec), if the offering
/// process is of our effective uid, root, or one of `trust_uids` (`SO_PEERCRED`). ENOENT or
/// ECONNREFUSED: no offer there; EPERM: the offer belongs to a uid we do not trust (nothing was
/// received); ETIMEDOUT: no answer before `deadline`; EACCES: the offering process refused us
/// (uid); ECONNRESET: it went away; EPROTO: it answered something else; ECANCELED: `cancel`
/// fired.
pub fn take(path: &str, trust_uids: &[u32], deadline: Option<Instant>, cancel: Option<&Canceller>) -> io::Result<Taken> {
    let address = sockets::unix_socket_addr(path)?;
    let control = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    control.set_nonblocking(true)?;
    connect(&control, &address, deadline, cancel)?;
    let offerer = peer_cred(control.as_fd())?;
    if !trusts(offerer.uid, trust_uids) {
        return Err(errno::error(
            libc::EPERM,
            format!(
                "the offer at {path} was made by uid {} (pid {}), which is neither ours, root, nor in trustUids",
                offerer.uid, offerer.pid
            ),
        ));
    }
    let mut message = Vec::new();
    let mut fds = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
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
        let got = match scm::recv_with_fds(control.as_fd(), &mut buf, scm::MAX_FDS) {
            Ok(got) => got,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) => return Err(err),
        };
        if got.truncated {
            return Err(errno::error(libc::EPROTO, "the offer's descriptors did not arrive whole (MSG_CTRUNC)"));
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

/// Whether an offer made by `uid` may hand us descriptors: our own uid, root's, or a trusted one.
fn trusts(uid: u32, trust_uids: &[u32]) -> bool {
    // SAFETY: geteuid cannot fail.
    uid == unsafe { libc::geteuid() } || uid == 0 || trust_uids.contains(&uid)
}

/// Tells the offering process that we serve the sockets now, and waits for its acknowledgement
/// (the offer is withdrawn by then). Closes `control`.
pub fn confirm_ready(control: Socket, deadline: Option<Instant>, cancel: Option<&Canceller>) -> io::Result<()> {
    let small_write = Instant::now() + SMALL_WRITE_TIMEOUT;
    write_all(control.as_fd(), &[READY], Some(deadline.map_or(small_write, |d| d.min(small_write)))).map_err(|err| {
        match err.raw_os_error() {
            Some(libc::EPIPE | libc::ECONNRESET) => errno::error(
                libc::ECONNRESET,
                "the offering process went away, or dropped this taker (past its taker timeout)",
            ),
            _ => err,
        }
    })?;
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
    let mut polled = [
        poll::entry(fd.as_raw_fd(), libc::POLLIN),
        poll::entry(cancel.map_or(-1, |c| c.fd().as_raw_fd()), libc::POLLIN),
    ];
    loop {
        if deadline.is_some_and(|deadline| deadline <= Instant::now()) {
            return Err(errno::error(libc::ETIMEDOUT, "timed out waiting for the other process"));
        }
        poll::poll(&mut polled, deadline)?;
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

/// The names of a complete offer message, None while more bytes are needed. The lengths are
/// walked first (at most 253 of them), so a message that arrives in many pieces costs little
/// until it is whole.
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
    if usize::from(count) > scm::MAX_FDS {
        return Err(errno::error(libc::EPROTO, format!("an offer of {count} listeners (at most {})", scm::MAX_FDS)));
    }
    let mut spans = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let Some(length) = read_u16(message, &mut at) else { return Ok(None) };
        let end = at + usize::from(length);
        if end > message.len() {
            return Ok(None);
        }
        spans.push(at..end);
        at = end;
    }
    if at != message.len() {
        return Err(errno::error(libc::EPROTO, "bytes after the offer"));
    }
    spans
        .into_iter()
        .map(|span| {
            std::str::from_utf8(&message[span])
                .map(str::to_owned)
                .map_err(|_| errno::error(libc::EPROTO, "a listener name is not UTF-8"))
        })
        .collect::<io::Result<Vec<String>>>()
        .map(Some)
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

/// Writes all of `bytes` (the messages here are small; a non-blocking socket is waited on, until
/// `deadline` at the latest: ETIMEDOUT when the other process does not read).
fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8], deadline: Option<Instant>) -> io::Result<()> {
    while !bytes.is_empty() {
        match scm::send_with_fds(fd, bytes, &[]) {
            Ok(n) => bytes = &bytes[n..],
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                let mut polled = [poll::entry(fd.as_raw_fd(), libc::POLLOUT)];
                if poll::poll(&mut polled, deadline)? == 0 {
                    return Err(errno::error(libc::ETIMEDOUT, "the other process does not read"));
                }
            }
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
