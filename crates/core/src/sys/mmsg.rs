//! Many datagrams per syscall: `recvmmsg` / `sendmmsg` (socket2 has neither; libc has both).
//! The unsafe code is confined here: building the message headers that point into buffers this
//! module owns (receive) or borrows for the duration of the call (send). Each received message
//! may be several datagrams coalesced by the kernel (`UDP_GRO`), and each sent one several
//! datagrams for the kernel to cut apart (`UDP_SEGMENT`): see `udp_offload`.

use crate::sys::udp_offload::{self, RecvControl, SendControl};
use socket2::{SockAddr, SockAddrStorage};
use std::io;
use std::os::fd::RawFd;
use std::ptr;

/// Buffers for up to `count` messages of at most `slot` bytes each, reused across calls.
pub struct RecvBatch {
    slot: usize,
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    controls: Vec<RecvControl>,
    lens: Vec<u32>,
    addr_lens: Vec<libc::socklen_t>,
    segments: Vec<usize>,
}

impl RecvBatch {
    pub fn new(slot: usize, count: usize) -> RecvBatch {
        let count = count.max(1);
        RecvBatch {
            slot,
            bufs: vec![0; slot * count],
            // SAFETY: all-zero bytes are a valid (AF_UNSPEC) sockaddr_storage.
            addrs: vec![unsafe { std::mem::zeroed() }; count],
            controls: vec![RecvControl::default(); count],
            lens: vec![0; count],
            addr_lens: vec![0; count],
            segments: vec![0; count],
        }
    }

    pub fn capacity(&self) -> usize {
        self.addrs.len()
    }

    pub fn slot(&self) -> usize {
        self.slot
    }

    /// Receives up to `capacity()` messages without blocking; returns how many arrived.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let count = self.addrs.len();
        let mut iovs: Vec<libc::iovec> = Vec::with_capacity(count);
        let mut hdrs: Vec<libc::mmsghdr> = Vec::with_capacity(count);
        for i in 0..count {
            iovs.push(libc::iovec {
                // SAFETY: slot i lies within `bufs` (count * slot bytes).
                iov_base: unsafe { self.bufs.as_mut_ptr().add(i * self.slot) } as *mut libc::c_void,
                iov_len: self.slot,
            });
        }
        for (i, (addr, control)) in self.addrs.iter_mut().zip(self.controls.iter_mut()).enumerate() {
            let size = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            // SAFETY: an all-zero msghdr is valid; the fields set below point into buffers that
            // outlive the call (`iovs`, `self.addrs`, `self.controls`), with their true sizes.
            let mut hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
            hdr.msg_hdr.msg_name = addr as *mut libc::sockaddr_storage as *mut libc::c_void;
            hdr.msg_hdr.msg_namelen = size;
            hdr.msg_hdr.msg_iov = &mut iovs[i];
            hdr.msg_hdr.msg_iovlen = 1;
            // Control data is only written where the socket asked for some (UDP_GRO, ...).
            hdr.msg_hdr.msg_control = control.as_mut_ptr().cast();
            hdr.msg_hdr.msg_controllen = std::mem::size_of::<RecvControl>() as _;
            hdrs.push(hdr);
        }
        // MSG_TRUNC: each message's length is the datagram's (or coalesced buffer's) real one, even
        // when the slot held less, so the caller knows what the kernel cut.
        let flags = libc::MSG_DONTWAIT | libc::MSG_TRUNC;
        // SAFETY: `hdrs` holds `count` initialised headers whose pointers stay valid for the call.
        let n = syscall!(recvmmsg(fd, hdrs.as_mut_ptr(), count as u32, flags, ptr::null_mut()))? as usize;
        for (i, hdr) in hdrs.iter().take(n).enumerate() {
            self.lens[i] = hdr.msg_len;
            self.addr_lens[i] = hdr.msg_hdr.msg_namelen;
            self.segments[i] = udp_offload::gro_segment(&hdr.msg_hdr);
        }
        Ok(n)
    }

    /// Message `i` of the last `recv`: its bytes (at most a slot: the kernel cut the rest), its
    /// sender, and the size of the datagrams coalesced in it (0: it is one datagram).
    pub fn message(&self, i: usize) -> (&[u8], SockAddr, usize) {
        let (bytes, addr, segment, _) = self.message_and_length(i);
        (bytes, addr, segment)
    }

    /// `message`, and the message's real length (more than the bytes when the slot was too short).
    pub fn message_and_length(&self, i: usize) -> (&[u8], SockAddr, usize, usize) {
        let len = (self.lens[i] as usize).min(self.slot);
        let bytes = &self.bufs[i * self.slot..i * self.slot + len];
        // SAFETY: recvmmsg filled this storage with an address of the socket's family and set
        // its length; a storage the kernel did not fill stays zeroed (family AF_UNSPEC).
        let addr = unsafe {
            let mut storage = SockAddrStorage::zeroed();
            *storage.view_as::<libc::sockaddr_storage>() = self.addrs[i];
            SockAddr::new(storage, self.addr_lens[i])
        };
        (bytes, addr, self.segments[i], self.lens[i] as usize)
    }
}

/// One message for `send_many`: to `to` (None: the connected peer); with `segment` > 0, `bytes`
/// holds several datagrams of `segment` bytes (the last may be shorter) that the kernel cuts apart.
#[derive(Clone, Copy)]
pub struct Outgoing<'a> {
    pub to: Option<&'a SockAddr>,
    pub bytes: &'a [u8],
    pub segment: u16,
}

/// Sends `msgs` in as few syscalls as the kernel allows. Returns how many messages were sent and,
/// if it stopped early, the error that stopped it (the message at that index was not sent).
pub fn send_many(fd: RawFd, msgs: &[Outgoing<'_>]) -> (usize, Option<io::Error>) {
    let mut sent = 0;
    while sent < msgs.len() {
        let chunk = &msgs[sent..msgs.len().min(sent + 1024)]; // UIO_MAXIOV messages per call
        let mut iovs: Vec<libc::iovec> = chunk
            .iter()
            .map(|m| libc::iovec { iov_base: m.bytes.as_ptr() as *mut libc::c_void, iov_len: m.bytes.len() })
            .collect();
        let mut controls: Vec<SendControl> = vec![SendControl::default(); chunk.iter().filter(|m| m.segment > 0).count()];
        let mut next_control = controls.iter_mut();
        let mut hdrs: Vec<libc::mmsghdr> = Vec::with_capacity(chunk.len());
        for (i, m) in chunk.iter().enumerate() {
            // SAFETY: as above; `msg_name` points at a SockAddr borrowed for the whole call.
            let mut hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
            if let Some(addr) = m.to {
                hdr.msg_hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
                hdr.msg_hdr.msg_namelen = addr.len();
            }
            hdr.msg_hdr.msg_iov = &mut iovs[i];
            hdr.msg_hdr.msg_iovlen = 1;
            if m.segment > 0 {
                let control = next_control.next().expect("one control buffer per segmented message");
                udp_offload::set_segment(&mut hdr.msg_hdr, control, m.segment);
            }
            hdrs.push(hdr);
        }
        // SAFETY: every header points at memory borrowed or owned (`iovs`, `controls`) for the
        // duration of the call.
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        match super::retry_interrupted(|| syscall!(sendmmsg(fd, hdrs.as_mut_ptr(), hdrs.len() as u32, flags))) {
            Ok(n) => sent += n as usize,
            Err(err) => return (sent, Some(err)),
        }
    }
    (sent, None)
}
