//! UDP segmentation offloads: `UDP_GRO` on receive (the kernel may hand a socket several datagrams
//! of one flow as one buffer, with the segment size in a control message) and `UDP_SEGMENT` (GSO)
//! on send (one buffer that the kernel cuts into equal-size datagrams, the last possibly shorter).
//!
//! Written over libc: socket2 wraps neither, and `quinn-udp`, which does, turns on socket options
//! of its own (GRO, ECN) when it takes a socket, which an adopted socket must not get.

use socket2::Socket;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

/// Datagrams one GSO send may carry: the kernel's `UDP_MAX_SEGMENTS` (64 before Linux 6.9,
/// 128 since; the lower one holds everywhere).
pub const MAX_SEGMENTS: usize = 64;

/// The largest buffer a coalesced receive can fill: an IP packet's 64 KiB.
pub const GRO_BUFFER: usize = 65_536;

/// Room for the control messages of one received datagram: `UDP_GRO` (`CMSG_SPACE(4)`, 24 bytes)
/// plus whatever else the socket's owner turned on (`IP_PKTINFO`, timestamps) ahead of it.
/// u64 elements keep it 8-byte aligned, as `cmsghdr` requires.
pub type RecvControl = [u64; 16];

/// Room for one `UDP_SEGMENT` control message on send (`CMSG_SPACE(2)` is 24 bytes).
pub type SendControl = [u64; 3];

/// Whether `UDP_GRO` is on for this socket (off where the kernel cannot say: before Linux 5.19
/// it has no getsockopt for it; the receive path then still notices the first coalesced buffer).
pub fn gro_enabled(sock: &Socket) -> bool {
    get_udp_option(sock.as_raw_fd(), libc::UDP_GRO).is_ok_and(|v| v != 0)
}

/// Whether the kernel knows `UDP_SEGMENT` (Linux ≥ 4.18). Asked with getsockopt, which changes
/// nothing: a kernel that did not know the control message would ignore it and send the whole
/// buffer as one datagram, so GSO is only ever tried where this says yes.
pub fn gso_supported(sock: &Socket) -> bool {
    get_udp_option(sock.as_raw_fd(), libc::UDP_SEGMENT).is_ok()
}

/// Turns `UDP_GRO` on or off (for the `sockets` helper: the reactor never turns it on itself).
pub fn set_gro(fd: RawFd, on: bool) -> io::Result<()> {
    set_udp_option(fd, libc::UDP_GRO, on.into())
}

/// Sets a `SOL_UDP` option (`UDP_GRO`, `UDP_SEGMENT`, …) to an int value.
pub fn set_udp_option(fd: RawFd, option: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: the option value is a c_int that lives across the call, passed with its size.
    let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    syscall!(setsockopt(fd, libc::SOL_UDP, option, (&value as *const libc::c_int).cast(), size)).map(drop)
}

fn get_udp_option(fd: RawFd, option: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` is a writable c_int and `len` its size; the kernel writes at most `len` bytes.
    syscall!(getsockopt(fd, libc::SOL_UDP, option, (&mut value as *mut libc::c_int).cast(), &mut len))?;
    Ok(value)
}

/// The `UDP_GRO` segment size in a message recvmmsg just filled in, or 0 (a single datagram).
pub fn gro_segment(msg: &libc::msghdr) -> usize {
    if msg.msg_control.is_null() {
        return 0;
    }
    // SAFETY: `msg` was filled in by the kernel: its control pointer and length describe the part
    // of our control buffer it wrote, and the CMSG macros never walk past that length. The value
    // is read unaligned, as CMSG_DATA promises no alignment.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == libc::UDP_GRO {
                let size = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::c_int);
                return usize::try_from(size).unwrap_or(0);
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    0
}

/// Writes a `UDP_SEGMENT` control message for `segment`-byte datagrams into `control` and points
/// `msg` at it.
pub fn set_segment(msg: &mut libc::msghdr, control: &mut SendControl, segment: u16) {
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is a pure computation.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) } as _;
    debug_assert!(msg.msg_controllen <= std::mem::size_of::<SendControl>());
    // SAFETY: `msg_control` points at `control`, which is at least `msg_controllen` bytes and
    // 8-byte aligned, so CMSG_FIRSTHDR returns a header inside it with room for a u16 of data.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(msg);
        (*c).cmsg_level = libc::SOL_UDP;
        (*c).cmsg_type = libc::UDP_SEGMENT;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut u16, segment);
    }
}

/// The datagrams in a received buffer of `total` bytes whose `UDP_GRO` segment size is `segment`:
/// their ranges, all `segment` bytes but the last, which may be shorter. `segment` 0 means the
/// buffer is one datagram (possibly empty).
pub fn segments(total: usize, segment: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let step = if segment == 0 { total.max(1) } else { segment };
    (0..total.max(1)).step_by(step).map(move |start| start..(start + step).min(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cut_a_buffer_into_datagrams() {
        let cut = |total, seg| segments(total, seg).collect::<Vec<_>>();
        assert_eq!(cut(640, 64).len(), 10);
        assert_eq!(cut(640, 64)[9], 576..640);
        assert_eq!(cut(150, 64), vec![0..64, 64..128, 128..150]);
        assert_eq!(cut(64, 64), vec![0..64]);
        assert_eq!(cut(100, 0), vec![0..100]);
        // An empty datagram is still one datagram.
        assert_eq!(cut(0, 0), vec![0..0]);
        assert_eq!(cut(0, 64), vec![0..0]);
    }
}
