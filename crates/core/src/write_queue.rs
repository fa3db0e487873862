//! Bytes accepted by `write` that the kernel has not taken yet, in order.

use socket2::Socket;
use std::collections::VecDeque;
use std::io::{self, IoSlice};

/// At most this many chunks go into one `sendmsg` (IOV_MAX is 1024; this keeps the array on the stack).
const MAX_IOV: usize = 64;

#[derive(Debug, Default)]
pub struct WriteQueue {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the front chunk already sent.
    head: usize,
    len: usize,
}

pub enum Flush {
    /// Everything was sent.
    Done,
    /// The kernel's buffer is full; the rest waits for a writable event.
    Blocked,
}

impl WriteQueue {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len();
        // Coalesce small writes so a burst of tiny writes does not become a long iovec.
        if let Some(last) = self.chunks.back_mut() {
            if last.len() + bytes.len() <= 16 * 1024 {
                last.extend_from_slice(bytes);
                return;
            }
        }
        self.chunks.push_back(bytes.to_vec());
    }

    pub fn clear(&mut self) {
        self.chunks.clear();
        self.head = 0;
        self.len = 0;
    }

    /// Sends as much as the kernel takes. An error leaves the queue as it was.
    pub fn flush(&mut self, sock: &Socket) -> io::Result<Flush> {
        while !self.is_empty() {
            let mut slices: [IoSlice<'_>; MAX_IOV] = [IoSlice::new(&[]); MAX_IOV];
            let mut n = 0;
            for (i, chunk) in self.chunks.iter().take(MAX_IOV).enumerate() {
                let start = if i == 0 { self.head } else { 0 };
                slices[n] = IoSlice::new(&chunk[start..]);
                n += 1;
            }
            match sock.send_vectored_with_flags(&slices[..n], libc::MSG_NOSIGNAL) {
                Ok(sent) => self.advance(sent),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flush::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Flush::Done)
    }

    fn advance(&mut self, mut sent: usize) {
        self.len -= sent;
        while sent > 0 {
            let front = self.chunks.front().expect("sent more than queued").len() - self.head;
            if sent >= front {
                sent -= front;
                self.chunks.pop_front();
                self.head = 0;
            } else {
                self.head += sent;
                sent = 0;
            }
        }
    }
}

/// Writes `chunks` directly, in one `sendmsg` per round, as far as the kernel takes them; returns
/// how many bytes it took.
pub fn send_now(sock: &Socket, chunks: &[&[u8]]) -> io::Result<usize> {
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    let mut sent = 0;
    while sent < total {
        let mut slices: [IoSlice<'_>; MAX_IOV] = [IoSlice::new(&[]); MAX_IOV];
        let (mut n, mut skip) = (0, sent);
        for chunk in chunks {
            if skip >= chunk.len() {
                skip -= chunk.len();
                continue;
            }
            slices[n] = IoSlice::new(&chunk[skip..]);
            skip = 0;
            n += 1;
            if n == MAX_IOV {
                break;
            }
        }
        match sock.send_vectored_with_flags(&slices[..n], libc::MSG_NOSIGNAL) {
            Ok(k) => sent += k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Type};
    use std::io::Read;

    #[test]
    fn queued_bytes_arrive_in_order() {
        let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
        a.set_nonblocking(true).unwrap();
        let mut q = WriteQueue::default();
        q.push(b"abc");
        q.push(&vec![b'x'; 20000]);
        q.push(b"def");
        assert_eq!(q.len(), 20006);
        assert!(matches!(q.flush(&a).unwrap(), Flush::Done));
        assert!(q.is_empty());
        drop(a);
        let mut got = Vec::new();
        (&b).read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), 20006);
        assert_eq!(&got[..3], b"abc");
        assert_eq!(&got[20003..], b"def");
    }
}
