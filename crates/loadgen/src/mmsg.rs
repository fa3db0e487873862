//! Batched datagram I/O on a connected UDP socket: `sendmmsg`/`recvmmsg` move many
//! datagrams per syscall, and `UDP_SEGMENT` (GSO) lets one send carry several equal-size
//! datagrams that the kernel cuts apart. socket2 wraps none of these, so they are
//! written here over libc.

use std::io::{self, IoSlice};
use reactor_core::sys::udp_offload;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Messages per `sendmmsg`/`recvmmsg` call.
pub const MAX_BATCH: usize = 64;

/// Datagrams one GSO send may carry (the kernel's `UDP_MAX_SEGMENTS` is 64 on older
/// kernels, 128 on newer ones).
pub const MAX_SEGMENTS: usize = 64;

/// Largest GSO buffer: the IPv4 UDP payload limit, so that every segment count below
/// `MAX_SEGMENTS` that fits is accepted.
pub const MAX_GSO_BYTES: usize = 65_507;

/// Sends each slice as one message (a datagram, or with GSO a train of them) with one
/// `sendmmsg`; returns how many messages the kernel took (fewer when the socket buffer
/// fills). `Ok(0)` means the socket would block.
pub fn send_batch(fd: BorrowedFd<'_>, msgs: &[IoSlice<'_>]) -> io::Result<usize> {
    let n = msgs.len().min(MAX_BATCH);
    if n == 0 {
        return Ok(0);
    }
    // SAFETY: an all-zero mmsghdr is valid (null pointers, zero lengths).
    let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
    for (h, m) in hdrs.iter_mut().zip(&msgs[..n]) {
        // IoSlice is ABI-compatible with iovec (std documents it); the kernel only reads
        // through this pointer, and `msgs` outlives the call.
        h.msg_hdr.msg_iov = m as *const IoSlice<'_> as *mut libc::iovec;
        h.msg_hdr.msg_iovlen = 1;
    }
    loop {
        // SAFETY: `hdrs[..n]` are initialised headers whose iovecs point into `msgs`,
        // alive for the call; the socket is connected, so no address is needed.
        let r = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::WouldBlock => return Ok(0),
            io::ErrorKind::Interrupted => continue,
            _ => return Err(e),
        }
    }
}

/// Room for one `UDP_GRO` control message (`CMSG_SPACE(sizeof(int))` is 24 on 64-bit
/// Linux), 8-byte aligned as `cmsghdr` requires.
type Control = [u64; 4];

/// Receives up to `lens.len()` datagrams with one `recvmmsg`, datagram `k` into
/// `buf[k * slot..][..slot]`, its length into `lens[k]`; returns how many arrived
/// (`Ok(0)`: none waiting). A datagram longer than `slot` is cut to `slot` bytes: give a
/// slot one byte longer than the expected size to see oversized datagrams as such.
///
/// With `gro` (on a socket with `UDP_GRO` on), `gro[k]` is the segment size of message `k`
/// when the kernel coalesced several datagrams into it, else 0.
pub fn recv_batch(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    slot: usize,
    lens: &mut [usize],
    mut gro: Option<&mut [usize]>,
) -> io::Result<usize> {
    let n = lens.len().min(MAX_BATCH).min(buf.len() / slot.max(1));
    if n == 0 {
        return Ok(0);
    }
    let mut iovs = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; MAX_BATCH];
    for (k, iov) in iovs[..n].iter_mut().enumerate() {
        iov.iov_base = buf[k * slot..].as_mut_ptr().cast();
        iov.iov_len = slot;
    }
    let mut control = [Control::default(); MAX_BATCH];
    // SAFETY: an all-zero mmsghdr is valid (null pointers, zero lengths).
    let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
    for ((h, iov), c) in hdrs.iter_mut().zip(iovs.iter_mut()).zip(control.iter_mut()) {
        h.msg_hdr.msg_iov = iov;
        h.msg_hdr.msg_iovlen = 1;
        if gro.is_some() {
            h.msg_hdr.msg_control = c.as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = std::mem::size_of::<Control>() as _;
        }
    }
    loop {
        // SAFETY: `hdrs[..n]` point at `iovs[..n]`, which point at disjoint `slot`-byte
        // ranges inside `buf` (n * slot <= buf.len()), and at their own `control` buffers
        // with their true size; all live and exclusively borrowed for the call. No
        // timeout pointer: the call does not wait (MSG_DONTWAIT).
        let r = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r >= 0 {
            let r = r as usize;
            for (len, h) in lens.iter_mut().zip(&hdrs[..r]) {
                *len = h.msg_len as usize;
            }
            if let Some(gro) = gro.as_deref_mut() {
                for (seg, h) in gro.iter_mut().zip(&hdrs[..r]) {
                    *seg = udp_offload::gro_segment(&h.msg_hdr);
                }
            }
            return Ok(r);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::WouldBlock => return Ok(0),
            io::ErrorKind::Interrupted => continue,
            _ => return Err(e),
        }
    }
}

/// Turns on GRO for this socket: the kernel may hand over several datagrams of one flow
/// as one buffer, with their size in a `UDP_GRO` control message (see `recv_batch`).
pub fn set_udp_gro(fd: BorrowedFd<'_>) -> io::Result<()> {
    udp_offload::set_gro(fd.as_raw_fd(), true)
}

/// Turns on GSO for every send on this socket: a send longer than `segment` bytes leaves
/// as datagrams of `segment` bytes (the last may be shorter). Fails where the kernel
/// has no UDP GSO.
pub fn set_udp_segment(fd: BorrowedFd<'_>, segment: usize) -> io::Result<()> {
    let value = libc::c_int::try_from(segment)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))?;
    udp_offload::set_udp_option(fd.as_raw_fd(), libc::UDP_SEGMENT, value)
}


#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};

    fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.connect(b.local_addr().unwrap()).unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();
        (a, b)
    }

    /// Receives `want` datagrams (loopback delivers at once, but allow a little time).
    fn recv_all(sock: &UdpSocket, slot: usize, want: usize) -> Vec<Vec<u8>> {
        let mut buf = vec![0u8; slot * MAX_BATCH];
        let mut lens = [0usize; MAX_BATCH];
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        while out.len() < want && Instant::now() < deadline {
            let n = recv_batch(sock.as_fd(), &mut buf, slot, &mut lens, None).unwrap();
            for k in 0..n {
                out.push(buf[k * slot..k * slot + lens[k]].to_vec());
            }
        }
        out
    }

    #[test]
    fn batches_arrive_whole_and_in_order() {
        let (a, b) = pair();
        let msgs: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 5 + i as usize]).collect();
        let slices: Vec<IoSlice> = msgs.iter().map(|m| IoSlice::new(m)).collect();
        assert_eq!(send_batch(a.as_fd(), &slices).unwrap(), 10);
        assert_eq!(recv_all(&b, 64, 10), msgs);
        // Nothing more waiting: Ok(0), not an error.
        let mut buf = [0u8; 64];
        assert_eq!(
            recv_batch(b.as_fd(), &mut buf, 64, &mut [0; 1], None).unwrap(),
            0
        );
    }

    #[test]
    fn an_oversized_datagram_is_cut_to_the_slot() {
        let (a, b) = pair();
        send_batch(a.as_fd(), &[IoSlice::new(&[7u8; 100])]).unwrap();
        assert_eq!(recv_all(&b, 65, 1), vec![vec![7u8; 65]]);
    }

    #[test]
    fn gso_send_arrives_as_separate_datagrams() {
        let (a, b) = pair();
        // Linux has had UDP GSO since 4.18; failing here means the loadgen's --gso cannot run.
        set_udp_segment(a.as_fd(), 64).unwrap();
        let train: Vec<u8> = (0..10 * 64).map(|i| (i / 64) as u8).collect();
        assert_eq!(send_batch(a.as_fd(), &[IoSlice::new(&train)]).unwrap(), 1);
        let got = recv_all(&b, 65, 10);
        assert_eq!(got.len(), 10);
        for (k, d) in got.iter().enumerate() {
            assert_eq!(d, &vec![k as u8; 64]);
        }
    }

    #[test]
    fn a_gso_train_reaches_a_gro_socket_whole_with_its_segment_size() {
        let (a, b) = pair();
        set_udp_segment(a.as_fd(), 64).unwrap();
        set_udp_gro(b.as_fd()).unwrap();
        let train: Vec<u8> = (0..10 * 64).map(|i| (i / 64) as u8).collect();
        assert_eq!(send_batch(a.as_fd(), &[IoSlice::new(&train)]).unwrap(), 1);
        let mut buf = vec![0u8; 65_536 * 2];
        let (mut lens, mut segs) = ([0usize; 2], [0usize; 2]);
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut n = 0;
        while n == 0 && Instant::now() < deadline {
            n = recv_batch(b.as_fd(), &mut buf, 65_536, &mut lens, Some(&mut segs)).unwrap();
        }
        // On loopback the train is never split: one buffer, with the segment size.
        assert_eq!((n, lens[0], segs[0]), (1, train.len(), 64));
        assert_eq!(&buf[..train.len()], &train[..]);
        // Without GRO data, a plain datagram reads as segment 0.
        send_batch(a.as_fd(), &[IoSlice::new(&[9u8; 64])]).unwrap();
        n = 0;
        while n == 0 && Instant::now() < deadline {
            n = recv_batch(b.as_fd(), &mut buf, 65_536, &mut lens, Some(&mut segs)).unwrap();
        }
        assert_eq!((n, lens[0], segs[0]), (1, 64, 0));
    }
}
