//! Bytes accepted by `write` that the kernel has not taken yet, in order, with the descriptors
//! (SCM_RIGHTS) that go with the byte at a given position of the stream.

use crate::sys::scm;
use crate::batch::counters::SharedCounters;
use socket2::Socket;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

/// At most this many chunks go into one `sendmsg` (IOV_MAX is 1024; this keeps the array on the stack).
const MAX_IOV: usize = 64;

#[derive(Debug, Default)]
pub struct WriteQueue {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the front chunk already sent.
    head: usize,
    len: usize,
    /// Bytes ever queued and ever sent: positions in the stream, for `attachments`.
    queued_total: u64,
    sent_total: u64,
    /// Descriptors to send with the byte at a stream position, in order.
    attachments: VecDeque<(u64, Vec<OwnedFd>)>,
    /// The reactor's counters of bytes queued and sent (None for a queue outside a reactor).
    counters: Option<Arc<SharedCounters>>,
}

pub enum Flush {
    /// Everything was sent.
    Done,
    /// The kernel's buffer is full; the rest waits for a writable event.
    Blocked,
}

impl WriteQueue {
    /// Keeps the reactor's running totals of bytes queued and sent from now on (the queue is empty).
    pub fn count_into(&mut self, counters: Arc<SharedCounters>) {
        debug_assert!(self.is_empty());
        self.counters = Some(counters);
    }

    /// The reactor's counters this queue counts into (None outside a reactor).
    pub fn counters(&self) -> Option<&Arc<SharedCounters>> {
        self.counters.as_ref()
    }

    /// Bytes of this stream the kernel took without being queued (a direct write).
    pub fn count_sent_directly(&self, n: usize) {
        if let Some(c) = &self.counters {
            c.sent(n);
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues `bytes` with `fds` going along with the first of them (`bytes` must not be empty).
    pub fn push_with_fds(&mut self, bytes: &[u8], fds: Vec<OwnedFd>) {
        debug_assert!(!bytes.is_empty());
        self.attachments.push_back((self.queued_total, fds));
        self.push(bytes);
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len();
        self.queued_total += bytes.len() as u64;
        if let Some(c) = &self.counters {
            c.queued(bytes.len());
        }
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
        if let Some(c) = &self.counters {
            c.dequeued(self.len);
        }
        self.chunks.clear();
        self.head = 0;
        self.sent_total += self.len as u64;
        self.len = 0;
        self.attachments.clear();
    }

    /// Hands queued bytes, front first, to `take` (which answers how many it took) until it takes
    /// less than it was given; returns how many it took in all. They leave the queue as sent (a
    /// TLS stream's queue: its session takes them). Not for queues with descriptors attached.
    pub fn drain_into(&mut self, mut take: impl FnMut(&[u8]) -> usize) -> usize {
        debug_assert!(self.attachments.is_empty());
        let mut total = 0;
        while let Some(front) = self.chunks.front() {
            let part = &front[self.head..];
            let n = take(part).min(part.len());
            let whole = n == part.len();
            total += n;
            self.advance(n);
            if !whole {
                break;
            }
        }
        total
    }

    /// Sends as much as the kernel takes. An error leaves the queue as it was.
    pub fn flush(&mut self, sock: &Socket) -> io::Result<Flush> {
        while !self.is_empty() {
            // Bytes up to the next position that carries descriptors go in a plain sendmsg; the byte
            // at that position goes with its descriptors.
            let limit = match self.attachments.front() {
                Some((pos, _)) if *pos == self.sent_total => {
                    match self.send_attached(sock) {
                        Ok(()) => continue,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flush::Blocked),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                }
                Some((pos, _)) => (*pos - self.sent_total) as usize,
                None => usize::MAX,
            };
            let mut slices: [IoSlice<'_>; MAX_IOV] = [IoSlice::new(&[]); MAX_IOV];
            let (mut n, mut room) = (0, limit);
            for (i, chunk) in self.chunks.iter().take(MAX_IOV).enumerate() {
                let start = if i == 0 { self.head } else { 0 };
                let part = &chunk[start..start + room.min(chunk.len() - start)];
                slices[n] = IoSlice::new(part);
                n += 1;
                room -= part.len();
                if room == 0 {
                    break;
                }
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

    /// Sends the front chunk's bytes up to the next attachment with the front attachment's
    /// descriptors (the kernel attaches them to the first byte sent).
    fn send_attached(&mut self, sock: &Socket) -> io::Result<()> {
        let next = self.attachments.get(1).map_or(usize::MAX, |(pos, _)| (*pos - self.sent_total) as usize);
        let chunk = self.chunks.front().expect("an attachment has bytes");
        let bytes = &chunk[self.head..self.head + next.min(chunk.len() - self.head)];
        let fds: Vec<BorrowedFd<'_>> = self.attachments[0].1.iter().map(|f| f.as_fd()).collect();
        let sent = scm::send_with_fds(sock.as_fd(), bytes, &fds)?;
        self.attachments.pop_front(); // sent: the kernel holds them now; our duplicates close
        self.advance(sent);
        Ok(())
    }

    fn advance(&mut self, mut sent: usize) {
        if let Some(c) = &self.counters {
            c.dequeued(sent);
            c.sent(sent);
        }
        self.len -= sent;
        self.sent_total += sent as u64;
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

impl Drop for WriteQueue {
    /// A connection closed with bytes still queued: they leave the running total.
    fn drop(&mut self) {
        if let Some(c) = &self.counters {
            c.dequeued(self.len);
        }
    }
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

    #[test]
    fn descriptors_go_with_the_byte_they_were_queued_with() {
        let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
        a.set_nonblocking(true).unwrap();
        let mut q = WriteQueue::default();
        let (x, _y) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
        q.push(b"before");
        q.push_with_fds(b"F", vec![OwnedFd::from(x)]);
        q.push(b"after");
        assert!(matches!(q.flush(&a).unwrap(), Flush::Done));
        // The descriptor arrives with the read that holds the byte it was sent with (the kernel may
        // join the bytes before it into that read).
        drop(a);
        let mut buf = [0u8; 64];
        let (mut got, mut fd_seen_with) = (Vec::new(), None);
        loop {
            let r = scm::recv_with_fds(b.as_fd(), &mut buf, 4).unwrap();
            if r.bytes == 0 {
                break;
            }
            if !r.fds.is_empty() {
                fd_seen_with = Some(got.len()..got.len() + r.bytes);
            }
            got.extend_from_slice(&buf[..r.bytes]);
        }
        assert_eq!(got, b"beforeFafter");
        assert!(fd_seen_with.unwrap().contains(&6), "the read that brought the fd holds the 'F'");
    }
}
