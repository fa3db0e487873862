//! Passing descriptors over AF_UNIX sockets (`SCM_RIGHTS`): the primitive behind systemd's fd
//! store, the handoff between processes, and descriptor passing on UNIX transports.
//!
//! socket2 and std have no stable SCM_RIGHTS helper, so the `sendmsg`/`recvmsg` calls and the
//! control-message walk are written here with libc's `CMSG_*` functions.
//!
//! Rules the kernel imposes, kept here so callers need not know them:
//! - at most [`MAX_FDS`] descriptors per message (`SCM_MAX_FD`);
//! - on a stream socket a descriptor travels with at least one byte of data: `bytes` must not be
//!   empty when `fds` is not;
//! - received descriptors are close-on-exec (`MSG_CMSG_CLOEXEC`), owned by the receiver;
//! - when the receiver's control buffer is too small the kernel drops the descriptors that do not
//!   fit and sets `MSG_CTRUNC`: [`recv_with_fds`] then closes those that did arrive and reports it.

use socket2::SockAddr;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

/// The kernel's limit on descriptors in one message (`SCM_MAX_FD`).
pub const MAX_FDS: usize = 253;

/// What one [`recv_with_fds`] call got.
#[derive(Debug)]
pub struct Received {
    /// Bytes of data written into the caller's buffer (0 with an empty buffer means EOF on a
    /// stream socket).
    pub bytes: usize,
    /// The descriptors that came with those bytes, close-on-exec, in the order they were sent.
    pub fds: Vec<OwnedFd>,
    /// The kernel dropped descriptors (`MSG_CTRUNC`): `fds` is empty, what did arrive was closed.
    pub truncated: bool,
}

/// Sends `bytes` with `fds` attached on a connected socket. Returns the bytes sent (a stream
/// socket may take fewer than given; the descriptors go with the first byte either way).
pub fn send_with_fds(socket: BorrowedFd<'_>, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
    send_msg(socket, bytes, fds, None)
}

/// Sends `bytes` with `fds` as one datagram to `to` (an unconnected datagram socket).
pub fn send_to_with_fds(
    socket: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
    to: &SockAddr,
) -> io::Result<usize> {
    send_msg(socket, bytes, fds, Some(to))
}

/// Receives into `buf` and up to `max_fds` descriptors (at most [`MAX_FDS`]) in one `recvmsg`.
/// Blocks or not as the socket does.
pub fn recv_with_fds(socket: BorrowedFd<'_>, buf: &mut [u8], max_fds: usize) -> io::Result<Received> {
    if max_fds > MAX_FDS {
        return Err(too_many(max_fds));
    }
    let mut control = ControlBuffer::for_fds(max_fds);
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: an all-zero msghdr is valid (null name, no iov, no control).
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if max_fds > 0 {
        msg.msg_control = control.as_mut_ptr();
        msg.msg_controllen = control.len() as _;
    }
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
    // Own every descriptor first, so that each is closed whatever happens next.
    // SAFETY: `msg` was filled by a successful recvmsg and `control` is still alive.
    let fds = unsafe { received_fds(&msg) };
    let truncated = msg.msg_flags & libc::MSG_CTRUNC != 0;
    if truncated {
        drop(fds);
        return Ok(Received { bytes: n, fds: Vec::new(), truncated: true });
    }
    Ok(Received { bytes: n, fds, truncated: false })
}

fn send_msg(socket: BorrowedFd<'_>, bytes: &[u8], fds: &[BorrowedFd<'_>], to: Option<&SockAddr>) -> io::Result<usize> {
    if fds.len() > MAX_FDS {
        return Err(too_many(fds.len()));
    }
    if !fds.is_empty() && bytes.is_empty() {
        return Err(crate::sys::errno::error(libc::EINVAL, "descriptors must travel with at least one byte"));
    }
    let mut control = ControlBuffer::for_fds(fds.len());
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
        msg.msg_controllen = control.len() as _;
        // SAFETY: the control buffer is CMSG_SPACE(fds.len() * sizeof(int)) bytes, aligned for
        // cmsghdr, so its first header exists and its data area holds fds.len() ints.
        unsafe {
            let header = libc::CMSG_FIRSTHDR(&msg);
            (*header).cmsg_level = libc::SOL_SOCKET;
            (*header).cmsg_type = libc::SCM_RIGHTS;
            (*header).cmsg_len = libc::CMSG_LEN(fd_bytes(fds.len())) as _;
            let data = libc::CMSG_DATA(header).cast::<RawFd>();
            for (i, fd) in fds.iter().enumerate() {
                ptr::write_unaligned(data.add(i), fd.as_raw_fd());
            }
        }
    }
    loop {
        // SAFETY: msg points at `iov` (covering `bytes`), `control` and `to`, all alive for the
        // call; sendmsg only reads them.
        let n = unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Takes ownership of every descriptor in the SCM_RIGHTS messages of `msg`.
///
/// # Safety
/// `msg` must have been filled by a successful `recvmsg` whose control buffer is still alive.
unsafe fn received_fds(msg: &libc::msghdr) -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    if msg.msg_control.is_null() {
        return fds;
    }
    let mut header = libc::CMSG_FIRSTHDR(msg);
    while !header.is_null() {
        let cmsg = &*header;
        if cmsg.cmsg_level == libc::SOL_SOCKET && cmsg.cmsg_type == libc::SCM_RIGHTS {
            let payload = cmsg.cmsg_len as usize - libc::CMSG_LEN(0) as usize;
            let data = libc::CMSG_DATA(header).cast::<RawFd>();
            for i in 0..payload / mem::size_of::<RawFd>() {
                // The kernel installed each of these in our table; nobody else owns them.
                fds.push(OwnedFd::from_raw_fd(ptr::read_unaligned(data.add(i))));
            }
        }
        header = libc::CMSG_NXTHDR(msg, header);
    }
    fds
}

fn fd_bytes(count: usize) -> libc::c_uint {
    (count * mem::size_of::<RawFd>()) as libc::c_uint
}

fn too_many(count: usize) -> io::Error {
    crate::sys::errno::error(libc::EINVAL, format!("{count} descriptors in one message; at most {MAX_FDS}"))
}

/// A control-message buffer of CMSG_SPACE bytes, aligned for `cmsghdr` (u64 words).
struct ControlBuffer(Vec<u64>);

impl ControlBuffer {
    fn for_fds(count: usize) -> ControlBuffer {
        // SAFETY: CMSG_SPACE is pure arithmetic on its argument.
        let space = if count == 0 { 0 } else { (unsafe { libc::CMSG_SPACE(fd_bytes(count)) }) as usize };
        ControlBuffer(vec![0u64; space.div_ceil(mem::size_of::<u64>())])
    }

    fn as_mut_ptr(&mut self) -> *mut libc::c_void {
        self.0.as_mut_ptr().cast()
    }

    fn len(&self) -> usize {
        self.0.len() * mem::size_of::<u64>()
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
}
