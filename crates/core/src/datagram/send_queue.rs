//! Datagrams queued for one `sendmmsg`: a run of datagrams of one size to one peer (the last may
//! be shorter) leaves as one message that the kernel cuts apart (`UDP_SEGMENT`, GSO); the rest
//! leave one message each. What the peers receive is the same either way. Used by a datagram
//! port's outbox and by the datagram proxy (replies to clients, datagrams to an upstream).

use crate::sys::mmsg::{send_many, Outgoing};
use crate::sys::udp_offload::MAX_SEGMENTS;
use socket2::SockAddr;
use std::io;
use std::os::fd::RawFd;

/// The most bytes one GSO message carries: the IPv4 UDP payload limit (IPv6's is higher).
const GSO_MAX_BYTES: usize = 65_507;

#[derive(Default)]
pub struct SendQueue {
    queued: Vec<(Option<SockAddr>, std::ops::Range<usize>)>,
    bytes: Vec<u8>,
    /// Runs of datagrams up to this size leave with GSO (0: never). Lowered when the kernel
    /// refuses a segment size (larger than the path's MTU allows), 0 when it refuses GSO itself.
    gso_max_segment: usize,
}

/// What a flush did: datagrams the kernel took, datagrams it had no room for (EAGAIN/ENOBUFS:
/// dropped, as UDP may), and the errnos of other failures (their datagrams dropped too).
#[derive(Debug, Default)]
pub struct Flushed {
    pub sent: u64,
    pub dropped: u64,
    pub errors: Vec<i32>,
}

impl SendQueue {
    /// A queue for a socket on which GSO may be tried (`gso`: the kernel knows `UDP_SEGMENT`).
    pub fn new(gso: bool) -> SendQueue {
        SendQueue { gso_max_segment: if gso { usize::from(u16::MAX) } else { 0 }, ..SendQueue::default() }
    }

    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Datagrams queued.
    pub fn len(&self) -> usize {
        self.queued.len()
    }

    /// Bytes queued.
    pub fn bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Queues one datagram, to `to` (None: the connected peer).
    pub fn push(&mut self, to: Option<SockAddr>, data: &[u8]) {
        self.push_parts(to, &[data]);
    }

    /// Queues one datagram made of `parts` (a header and a payload, ...).
    pub fn push_parts(&mut self, to: Option<SockAddr>, parts: &[&[u8]]) {
        let start = self.bytes.len();
        for part in parts {
            self.bytes.extend_from_slice(part);
        }
        self.queued.push((to, start..self.bytes.len()));
    }

    /// Drops everything queued.
    pub fn clear(&mut self) {
        self.queued.clear();
        self.bytes.clear();
    }

    /// Sends everything queued on `fd` and empties the queue (nothing is kept for later: a
    /// datagram the kernel refuses is dropped, as UDP may).
    pub fn flush(&mut self, fd: RawFd) -> Flushed {
        let mut out = Flushed::default();
        let mut start = 0;
        while start < self.queued.len() {
            let plan = self.plan(start);
            let msgs: Vec<Outgoing<'_>> = plan.iter().map(|&(m, _)| m).collect();
            let (sent, err) = send_many(fd, &msgs);
            let datagrams = plan[..sent].iter().map(|&(_, n)| n).sum::<usize>();
            start += datagrams;
            out.sent += datagrams as u64;
            let Some(e) = err else { continue };
            let (failed, count) = plan[sent];
            let segment = usize::from(failed.segment);
            drop(plan);
            if segment > 0 && self.gso_refused(segment, &e) {
                continue; // planned again from the same datagram, without GSO for this size
            }
            start += count; // the datagrams that failed are dropped
            match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::ENOBUFS) => out.dropped += count as u64,
                errno => out.errors.push(errno.unwrap_or(libc::EIO)),
            }
        }
        self.clear();
        out
    }

    /// The messages for the queue from datagram `start` on, each with how many datagrams it
    /// carries: a run of at least two datagrams of one size to one peer (the last may be shorter)
    /// becomes one GSO message, within the kernel's limits; the rest go one by one.
    fn plan(&self, start: usize) -> Vec<(Outgoing<'_>, usize)> {
        let mut plan = Vec::new();
        let mut i = start;
        while i < self.queued.len() {
            let (to, first) = &self.queued[i];
            let segment = first.len();
            let mut end = first.end;
            let mut j = i + 1;
            if segment > 0 && segment <= self.gso_max_segment {
                while j < self.queued.len() && j - i < MAX_SEGMENTS {
                    let (next_to, next) = &self.queued[j];
                    let fits = next.start == end && !next.is_empty() && next.len() <= segment;
                    if !fits || next_to != to || next.end - first.start > GSO_MAX_BYTES {
                        break;
                    }
                    end = next.end;
                    j += 1;
                    if next.len() < segment {
                        break; // a shorter datagram ends the run
                    }
                }
            }
            let count = j - i;
            // Within u16 (gso_max_segment starts at u16::MAX and only goes down).
            let segment = if count > 1 { segment as u16 } else { 0 };
            plan.push((Outgoing { to: to.as_ref(), bytes: &self.bytes[first.start..end], segment }, count));
            i = j;
        }
        plan
    }

    /// Whether `e`, from a GSO message of `segment`-byte datagrams, is the kernel refusing GSO
    /// (then it is remembered, and the datagrams are sent again one by one).
    fn gso_refused(&mut self, segment: usize, e: &io::Error) -> bool {
        match e.raw_os_error() {
            // A segment larger than the route's MTU allows, or a train longer than the kernel takes.
            Some(libc::EINVAL) | Some(libc::EMSGSIZE) => self.gso_max_segment = self.gso_max_segment.min(segment - 1),
            // No checksum offload on the way out (EIO), or no GSO at all.
            Some(libc::EIO) | Some(libc::ENOPROTOOPT) | Some(libc::EOPNOTSUPP) => self.gso_max_segment = 0,
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Socket, Type};
    use std::os::fd::AsRawFd;

    #[test]
    fn runs_of_one_size_to_one_peer_become_one_message() {
        let to = SockAddr::from("127.0.0.1:9".parse::<std::net::SocketAddr>().unwrap());
        let other = SockAddr::from("127.0.0.1:10".parse::<std::net::SocketAddr>().unwrap());
        let mut q = SendQueue::new(true);
        for _ in 0..3 {
            q.push(Some(to.clone()), &[1; 64]);
        }
        q.push(Some(to.clone()), &[2; 10]); // shorter: ends the run, within it
        q.push(Some(other.clone()), &[3; 64]);
        q.push_parts(Some(other), &[&[4; 4], &[5; 60]]);
        let plan: Vec<(u16, usize, usize)> = q.plan(0).iter().map(|(m, n)| (m.segment, m.bytes.len(), *n)).collect();
        assert_eq!(plan, [(64, 202, 4), (64, 128, 2)]);
        assert_eq!((q.len(), q.bytes()), (6, 330));
    }

    #[test]
    fn a_flush_sends_each_datagram_and_empties_the_queue() {
        let rx = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        rx.bind(&SockAddr::from("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())).unwrap();
        let tx = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        tx.connect(&rx.local_addr().unwrap()).unwrap();
        let mut q = SendQueue::new(crate::sys::udp_offload::gso_supported(&tx));
        for i in 0..5u8 {
            q.push(None, &[i; 100]);
        }
        let flushed = q.flush(tx.as_raw_fd());
        assert_eq!((flushed.sent, flushed.dropped, flushed.errors.len()), (5, 0, 0));
        assert!(q.is_empty());
        let mut buf = [std::mem::MaybeUninit::new(0u8); 200];
        for i in 0..5u8 {
            let n = rx.recv(&mut buf).unwrap();
            // SAFETY: recv initialised the first n bytes.
            let got: Vec<u8> = buf[..n].iter().map(|b| unsafe { b.assume_init() }).collect();
            assert_eq!(got, vec![i; 100]);
        }
    }
}
