//! A batch of datagrams received from any senders with one `recvmmsg` and sent back to
//! each sender with one `sendmmsg`: the echo server's UDP path, so that the limit it
//! shows is the kernel's rather than one syscall per datagram. (socket2 wraps neither
//! call; this is written over libc, like `mmsg`.)

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::mmsg::MAX_BATCH;

/// Largest UDP payload.
const SLOT: usize = 65_536;

pub struct EchoBatch {
    /// Datagram `k` is `buf[k * SLOT..][..lens[k]]`, from `names[k]`.
    buf: Box<[u8]>,
    lens: [usize; MAX_BATCH],
    names: [libc::sockaddr_storage; MAX_BATCH],
    name_lens: [libc::socklen_t; MAX_BATCH],
    /// Datagrams in the batch, and how many of them were sent back already.
    len: usize,
    sent: usize,
}

impl Default for EchoBatch {
    fn default() -> Self {
        EchoBatch {
            buf: vec![0; SLOT * MAX_BATCH].into_boxed_slice(),
            lens: [0; MAX_BATCH],
            // SAFETY: sockaddr_storage is plain data; all-zero is a valid (AF_UNSPEC) value.
            names: unsafe { std::mem::zeroed() },
            name_lens: [0; MAX_BATCH],
            len: 0,
            sent: 0,
        }
    }
}

impl EchoBatch {
    /// Datagrams received and not yet sent back.
    pub fn pending(&self) -> usize {
        self.len - self.sent
    }

    /// Receives up to `MAX_BATCH` datagrams (only when nothing is pending); `Ok(0)`: none
    /// waiting.
    pub fn recv(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        assert_eq!(self.pending(), 0, "receiving over unsent echoes");
        let mut iovs = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; MAX_BATCH];
        // SAFETY: an all-zero mmsghdr is valid (null pointers, zero lengths).
        let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
        for k in 0..MAX_BATCH {
            iovs[k].iov_base = self.buf[k * SLOT..].as_mut_ptr().cast();
            iovs[k].iov_len = SLOT;
            let h = &mut hdrs[k].msg_hdr;
            h.msg_iov = &mut iovs[k];
            h.msg_iovlen = 1;
            h.msg_name = (&mut self.names[k] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        // SAFETY: every header points at its own iovec (into a disjoint SLOT-sized range
        // of `buf`) and its own sockaddr_storage with its true size; all outlive the call
        // and nothing else touches them meanwhile. MSG_DONTWAIT: no timeout needed.
        let r = match retry(|| unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                hdrs.as_mut_ptr(),
                MAX_BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        }) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) => return Err(e),
        };
        for (k, h) in hdrs[..r].iter().enumerate() {
            self.lens[k] = h.msg_len as usize;
            self.name_lens[k] = h.msg_hdr.msg_namelen;
        }
        self.len = r;
        self.sent = 0;
        Ok(r)
    }

    /// Sends pending datagrams back to their senders until none is left (`Ok(true)`) or
    /// the socket would block (`Ok(false)`). A datagram the kernel refuses outright (an
    /// unreachable sender) is dropped, as a server would.
    pub fn send_back(&mut self, fd: BorrowedFd<'_>) -> io::Result<bool> {
        while self.pending() > 0 {
            let (from, n) = (self.sent, self.pending());
            let mut iovs = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; MAX_BATCH];
            // SAFETY: an all-zero mmsghdr is valid (null pointers, zero lengths).
            let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
            for j in 0..n {
                let k = from + j;
                iovs[j].iov_base = self.buf[k * SLOT..].as_mut_ptr().cast();
                iovs[j].iov_len = self.lens[k];
                let h = &mut hdrs[j].msg_hdr;
                h.msg_iov = &mut iovs[j];
                h.msg_iovlen = 1;
                h.msg_name = (&mut self.names[k] as *mut libc::sockaddr_storage).cast();
                h.msg_namelen = self.name_lens[k];
            }
            // SAFETY: headers point at live iovecs over received bytes of `buf` and at
            // the addresses recvmmsg filled in, with the lengths it reported; the kernel
            // only reads them.
            match retry(|| unsafe {
                libc::sendmmsg(
                    fd.as_raw_fd(),
                    hdrs.as_mut_ptr(),
                    n as libc::c_uint,
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            }) {
                Ok(0) => return Ok(false),
                Ok(m) => self.sent += m,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                // The first datagram failed on its own (e.g. EHOSTUNREACH): drop it.
                Err(_) => self.sent += 1,
            }
        }
        Ok(true)
    }
}

/// Runs a libc call that returns a count or -1 (errno set), retrying on EINTR.
fn retry(mut call: impl FnMut() -> libc::c_int) -> io::Result<usize> {
    loop {
        let r = call();
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};

    #[test]
    fn echoes_each_datagram_to_its_own_sender() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server.set_nonblocking(true).unwrap();
        let clients: Vec<UdpSocket> = (0..3)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for (i, c) in clients.iter().enumerate() {
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            c.send_to(&vec![i as u8; 10 + i], server.local_addr().unwrap())
                .unwrap();
        }
        let mut batch = EchoBatch::default();
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut got = 0;
        while got < 3 && Instant::now() < deadline {
            match batch.recv(server.as_fd()) {
                Ok(0) | Err(_) => std::thread::yield_now(),
                Ok(n) => {
                    got += n;
                    assert!(batch.send_back(server.as_fd()).unwrap());
                    assert_eq!(batch.pending(), 0);
                }
            }
        }
        assert_eq!(got, 3);
        for (i, c) in clients.iter().enumerate() {
            let mut buf = [0u8; 64];
            let n = c.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &vec![i as u8; 10 + i][..]);
        }
    }
}
