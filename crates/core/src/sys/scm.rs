//! Passing descriptors over AF_UNIX sockets (`SCM_RIGHTS`): the primitive behind systemd's fd
//! store, the handoff between processes, and descriptor passing on UNIX transports.
//!
//! socket2 and std have no stable SCM_RIGHTS helper, so the `sendmsg`/`recvmsg` calls are written
//! here with libc; the received control messages are read by the pure [`cmsg::parse`].
//!
//! Rules the kernel imposes, kept here so callers need not know them:
//! - at most [`MAX_FDS`] descriptors per message (`SCM_MAX_FD`);
//! - on a stream socket a descriptor travels with at least one byte of data: `bytes` must not be
//!   empty when `fds` is not;
//! - received descriptors are close-on-exec (`MSG_CMSG_CLOEXEC`), owned by the receiver;
//! - a socket may get more than descriptors: credentials (`SO_PASSCRED`), a security label
//!   (`SO_PASSSEC`), the sender's pidfd (`SO_PASSPIDFD`, Linux ≥ 6.5). The receive buffer has
//!   room for all of them with 253 descriptors, and every pidfd is closed at once;
//! - when descriptors are lost anyway (`MSG_CTRUNC`, or the receiver is out of descriptors),
//!   [`recv_with_fds`] closes those that did arrive and reports it.

use super::cmsg;
use socket2::SockAddr;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

/// The kernel's limit on descriptors in one message (`SCM_MAX_FD`).
pub const MAX_FDS: usize = cmsg::MAX_FDS;

/// What one [`recv_with_fds`] call got.
#[derive(Debug)]
pub struct Received {
    /// Bytes of data written into the caller's buffer (0 with an empty buffer means EOF on a
    /// stream socket).
    pub bytes: usize,
    /// The descriptors that came with those bytes, close-on-exec, in the order they were sent.
    pub fds: Vec<OwnedFd>,
    /// Passed descriptors were lost (`MSG_CTRUNC` that cost `SCM_RIGHTS`, or more than
    /// `max_fds` came): `fds` is empty, what did arrive was closed. A truncation that cost only
    /// other control data (credentials, a label, a pidfd) is not reported.
    pub truncated: bool,
}

/// Sends `bytes` with `fds` attached on a connected socket. Returns the bytes sent (a stream
/// socket may take fewer than given; the descriptors go with the first byte either way).
pub fn send_with_fds(socket: BorrowedFd<'_>, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
    send_msg(socket, bytes, fds, None, 0)
}

/// Sends `bytes` with `fds` as one datagram to `to` (an unconnected datagram socket), without
/// waiting: a receiver whose queue is full is `EAGAIN` (`MSG_DONTWAIT`), whatever the socket's
/// mode.
pub fn send_to_with_fds(
    socket: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
    to: &SockAddr,
) -> io::Result<usize> {
    send_msg(socket, bytes, fds, Some(to), libc::MSG_DONTWAIT)
}

/// Receives into `buf` and up to `max_fds` descriptors (at most [`MAX_FDS`]) in one `recvmsg`.
/// Blocks or not as the socket does. Other control messages are read and dropped (a pidfd is
/// closed); more than `max_fds` descriptors count as lost.
pub fn recv_with_fds(socket: BorrowedFd<'_>, buf: &mut [u8], max_fds: usize) -> io::Result<Received> {
    if max_fds > MAX_FDS {
        return Err(too_many(max_fds));
    }
    let mut control = ControlBuffer::new();
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: an all-zero msghdr is valid (null name, no iov, no control).
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr();
    msg.msg_controllen = cmsg::RECEIVE_ROOM as _;
    let n = loop {
        // SAFETY: msg points at `iov` (covering `buf`) and at `control`, both alive and writable
        // for the call; the kernel writes at most iov_len and msg_controllen bytes into them.
        let n = unsafe {
            libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC | libc::MSG_NOSIGNAL)
        };
        if n >= 0 {
            break n as usize;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    };
    let written = (msg.msg_controllen as usize).min(cmsg::RECEIVE_ROOM);
    let parsed = cmsg::parse(&control.bytes()[..written], msg.msg_flags & libc::MSG_CTRUNC != 0, max_fds);
    // SAFETY (both): every number the parser returns was read from the control messages this
    // recvmsg wrote: descriptors the kernel installed in our table for this call, owned by nobody
    // else. Each is owned once (the parser returns each number once), so each is closed once.
    let own = |fd: RawFd| unsafe { OwnedFd::from_raw_fd(fd) };
    for fd in parsed.to_close {
        drop(own(fd));
    }
    let fds: Vec<OwnedFd> = parsed.rights.into_iter().map(own).collect();
    Ok(Received { bytes: n, fds, truncated: parsed.rights_lost })
}

fn send_msg(
    socket: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
    to: Option<&SockAddr>,
    flags: libc::c_int,
) -> io::Result<usize> {
    if fds.len() > MAX_FDS {
        return Err(too_many(fds.len()));
    }
    if !fds.is_empty() && bytes.is_empty() {
        return Err(crate::sys::errno::error(libc::EINVAL, "descriptors must travel with at least one byte"));
    }
    let mut control = ControlBuffer::new();
    let mut iov = libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() };
    // SAFETY: an all-zero msghdr is valid (null name, no iov, no control).
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(addr) = to {
        msg.msg_name = addr.as_ptr() as *mut libc::c_void;
        msg.msg_namelen = addr.len();
    }
    if !fds.is_empty() {
        msg.msg_control = control.as_mut_ptr();
        msg.msg_controllen = cmsg::space(fds.len() * mem::size_of::<RawFd>()) as _;
        // SAFETY: the control buffer holds more than CMSG_SPACE(253 ints) bytes, aligned for
        // cmsghdr, so its first header exists and its data area holds fds.len() ints.
        unsafe {
            let header = libc::CMSG_FIRSTHDR(&msg);
            (*header).cmsg_level = libc::SOL_SOCKET;
            (*header).cmsg_type = libc::SCM_RIGHTS;
            (*header).cmsg_len = cmsg::len(fds.len() * mem::size_of::<RawFd>()) as _;
            let data = libc::CMSG_DATA(header).cast::<RawFd>();
            for (i, fd) in fds.iter().enumerate() {
                ptr::write_unaligned(data.add(i), fd.as_raw_fd());
            }
        }
    }
    loop {
        // SAFETY: msg points at `iov` (covering `bytes`), `control` and `to`, all alive for the
        // call; sendmsg only reads them.
        let n = unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL | flags) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

fn too_many(count: usize) -> io::Error {
    crate::sys::errno::error(libc::EINVAL, format!("{count} descriptors in one message; at most {MAX_FDS}"))
}

/// A control-message buffer of [`cmsg::RECEIVE_ROOM`] bytes on the stack, aligned for `cmsghdr`
/// (u64 words): room for everything a receive can bring, so no read allocates for it.
struct ControlBuffer([u64; cmsg::RECEIVE_ROOM.div_ceil(mem::size_of::<u64>())]);

impl ControlBuffer {
    fn new() -> ControlBuffer {
        ControlBuffer([0; cmsg::RECEIVE_ROOM.div_ceil(mem::size_of::<u64>())])
    }

    fn as_mut_ptr(&mut self) -> *mut libc::c_void {
        self.0.as_mut_ptr().cast()
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: any u64 array is also a valid, initialised byte array of 8 times its length.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast(), mem::size_of_val(&self.0)) }
    }
}

#[cfg(test)]
mod tests {
    /// The errno an error carries (tests compare numbers; naming them is the binding's business).
    fn errno_number(err: &std::io::Error) -> i32 {
        crate::sys::errno::number(err).expect("an errno")
    }
    use super::*;
    use socket2::{Domain, Socket, Type};
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    fn pair(kind: Type) -> (Socket, Socket) {
        Socket::pair(Domain::UNIX, kind, None).unwrap()
    }

    fn is_cloexec(fd: &OwnedFd) -> bool {
        // SAFETY: F_GETFD only reads the flags of an fd we own.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
        flags & libc::FD_CLOEXEC != 0
    }

    /// The inode behind an fd, to prove a received descriptor is the same open file.
    fn inode(fd: RawFd) -> u64 {
        std::fs::metadata(format!("/proc/self/fd/{fd}")).map(|m| std::os::unix::fs::MetadataExt::ino(&m)).unwrap()
    }

    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().count()
    }

    #[test]
    fn a_descriptor_crosses_a_stream_pair_and_still_works() {
        let (a, b) = pair(Type::STREAM);
        let (mut inner_a, inner_b) = pair(Type::STREAM);
        let sent = send_with_fds(a.as_fd(), b"x", &[inner_b.as_fd()]).unwrap();
        assert_eq!(sent, 1);
        drop(inner_b);
        let mut buf = [0u8; 8];
        let got = recv_with_fds(b.as_fd(), &mut buf, 4).unwrap();
        assert_eq!((got.bytes, got.truncated, got.fds.len()), (1, false, 1));
        assert_eq!(buf[0], b'x');
        assert!(is_cloexec(&got.fds[0]));
        // The received fd is the other end of inner_a's pair: bytes written there arrive here.
        inner_a.write_all(b"hello").unwrap();
        let mut received = std::fs::File::from(got.fds.into_iter().next().unwrap());
        let mut five = [0u8; 5];
        received.read_exact(&mut five).unwrap();
        assert_eq!(&five, b"hello");
    }

    #[test]
    fn many_descriptors_keep_their_order() {
        let (a, b) = pair(Type::STREAM);
        // Sockets, not files: each has its own inode, so order can be checked.
        let sockets: Vec<Socket> = (0..MAX_FDS).map(|_| Socket::new(Domain::UNIX, Type::DGRAM, None).unwrap()).collect();
        let borrowed: Vec<BorrowedFd<'_>> = sockets.iter().map(|s| s.as_fd()).collect();
        send_with_fds(a.as_fd(), b"n", &borrowed).unwrap();
        let mut buf = [0u8; 1];
        let got = recv_with_fds(b.as_fd(), &mut buf, MAX_FDS).unwrap();
        assert!(!got.truncated);
        assert_eq!(got.fds.len(), MAX_FDS);
        for (sent, received) in sockets.iter().zip(&got.fds) {
            assert_eq!(inode(sent.as_raw_fd()), inode(received.as_raw_fd()));
        }
    }

    #[test]
    fn more_than_the_kernel_limit_is_refused_before_sending() {
        let (a, _b) = pair(Type::STREAM);
        let fds: Vec<BorrowedFd<'_>> = (0..MAX_FDS + 1).map(|_| a.as_fd()).collect();
        let err = send_with_fds(a.as_fd(), b"x", &fds).unwrap_err();
        assert_eq!(errno_number(&err), libc::EINVAL);
        let mut buf = [0u8; 1];
        assert_eq!(errno_number(&recv_with_fds(a.as_fd(), &mut buf, MAX_FDS + 1).unwrap_err()), libc::EINVAL);
    }

    #[test]
    fn descriptors_need_a_byte() {
        let (a, b) = pair(Type::STREAM);
        let err = send_with_fds(a.as_fd(), b"", &[b.as_fd()]).unwrap_err();
        assert_eq!(errno_number(&err), libc::EINVAL);
    }

    #[test]
    fn a_short_control_buffer_closes_what_arrived_and_reports_truncation() {
        let (a, b) = pair(Type::STREAM);
        let sockets: Vec<Socket> = (0..8).map(|_| Socket::new(Domain::UNIX, Type::DGRAM, None).unwrap()).collect();
        let borrowed: Vec<BorrowedFd<'_>> = sockets.iter().map(|s| s.as_fd()).collect();
        send_with_fds(a.as_fd(), b"t", &borrowed).unwrap();
        let before = open_fds();
        let mut buf = [0u8; 1];
        let got = recv_with_fds(b.as_fd(), &mut buf, 2).unwrap();
        assert_eq!((got.bytes, got.truncated, got.fds.len()), (1, true, 0));
        assert_eq!(open_fds(), before, "no received descriptor stays open");
    }

    #[test]
    fn no_room_for_descriptors_drops_them_all() {
        let (a, b) = pair(Type::STREAM);
        let extra = Socket::new(Domain::UNIX, Type::DGRAM, None).unwrap();
        send_with_fds(a.as_fd(), b"z", &[extra.as_fd()]).unwrap();
        let before = open_fds();
        let mut buf = [0u8; 1];
        let got = recv_with_fds(b.as_fd(), &mut buf, 0).unwrap();
        assert_eq!((got.bytes, got.truncated), (1, true));
        assert_eq!(open_fds(), before);
    }

    #[test]
    fn plain_bytes_and_eof() {
        let (a, b) = pair(Type::STREAM);
        send_with_fds(a.as_fd(), b"abc", &[]).unwrap();
        drop(a);
        let mut buf = [0u8; 8];
        let got = recv_with_fds(b.as_fd(), &mut buf, 4).unwrap();
        assert_eq!((got.bytes, got.fds.len(), got.truncated), (3, 0, false));
        let eof = recv_with_fds(b.as_fd(), &mut buf, 4).unwrap();
        assert_eq!(eof.bytes, 0);
    }

    #[test]
    fn a_datagram_to_an_address_carries_descriptors() {
        let dir = std::env::temp_dir().join(format!("reactor-core-scm-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let receiver = Socket::new(Domain::UNIX, Type::DGRAM, None).unwrap();
        let addr = SockAddr::unix(&dir).unwrap();
        receiver.bind(&addr).unwrap();
        let sender = Socket::new(Domain::UNIX, Type::DGRAM, None).unwrap();
        let (one, _two) = pair(Type::STREAM);
        send_to_with_fds(sender.as_fd(), b"FDSTORE=1", &[one.as_fd()], &addr).unwrap();
        let mut buf = [0u8; 64];
        let got = recv_with_fds(receiver.as_fd(), &mut buf, 4).unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(&buf[..got.bytes], b"FDSTORE=1");
        assert_eq!(got.fds.len(), 1);
        assert_eq!(inode(got.fds[0].as_raw_fd()), inode(one.as_raw_fd()));
    }

    #[test]
    fn a_closed_peer_is_epipe_not_a_signal() {
        let (a, b) = pair(Type::STREAM);
        drop(b);
        let err = send_with_fds(a.as_fd(), b"x", &[a.as_fd()]).unwrap_err();
        assert_eq!(errno_number(&err), libc::EPIPE);
    }

    /// Turns on a SOL_SOCKET flag; false when this kernel does not know it (ENOPROTOOPT).
    fn enable(socket: &Socket, option: libc::c_int) -> bool {
        let on: libc::c_int = 1;
        // SAFETY: setsockopt reads one int from a live local.
        let rc = unsafe {
            libc::setsockopt(socket.as_raw_fd(), libc::SOL_SOCKET, option, (&on as *const libc::c_int).cast(), 4)
        };
        if rc == 0 {
            return true;
        }
        let err = std::io::Error::last_os_error();
        assert_eq!(err.raw_os_error(), Some(libc::ENOPROTOOPT), "setsockopt({option}): {err}");
        false
    }

    /// SO_PASSPIDFD (include/uapi/asm-generic/socket.h; not in the libc crate for Linux).
    const SO_PASSPIDFD: libc::c_int = 76;

    fn open_pidfds() -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|link| link.to_string_lossy().contains("pidfd"))
            .count()
    }

    fn sockets(count: usize) -> Vec<Socket> {
        (0..count).map(|_| Socket::new(Domain::UNIX, Type::DGRAM, None).unwrap()).collect()
    }

    #[test]
    fn a_pidfd_that_comes_with_every_read_is_closed() {
        let (a, b) = pair(Type::STREAM);
        if !enable(&b, SO_PASSPIDFD) {
            eprintln!("skipped: this kernel has no SO_PASSPIDFD (Linux >= 6.5)");
            return;
        }
        let before = open_pidfds();
        let extra = sockets(2);
        for round in 0..20u8 {
            let with: Vec<BorrowedFd<'_>> = if round % 2 == 0 { extra.iter().map(|s| s.as_fd()).collect() } else { vec![] };
            send_with_fds(a.as_fd(), &[round], &with).unwrap();
            let mut buf = [0u8; 4];
            let got = recv_with_fds(b.as_fd(), &mut buf, MAX_FDS).unwrap();
            assert_eq!((got.bytes, buf[0], got.truncated, got.fds.len()), (1, round, false, with.len()));
        }
        assert_eq!(open_pidfds(), before, "no pidfd stays open");
    }

    #[test]
    fn credentials_leave_room_for_253_descriptors() {
        let (a, b) = pair(Type::STREAM);
        assert!(enable(&b, libc::SO_PASSCRED));
        let pidfd = enable(&b, SO_PASSPIDFD);
        let extra = sockets(MAX_FDS);
        for count in [1, 246, 247, 250, MAX_FDS] {
            let borrowed: Vec<BorrowedFd<'_>> = extra[..count].iter().map(|s| s.as_fd()).collect();
            send_with_fds(a.as_fd(), b"c", &borrowed).unwrap();
            let mut buf = [0u8; 4];
            let got = recv_with_fds(b.as_fd(), &mut buf, MAX_FDS).unwrap();
            assert_eq!((got.bytes, got.truncated, got.fds.len()), (1, false, count), "{count} fds, pidfd {pidfd}");
            for (sent, received) in extra.iter().zip(&got.fds) {
                assert_eq!(inode(sent.as_raw_fd()), inode(received.as_raw_fd()));
            }
        }
    }
}
