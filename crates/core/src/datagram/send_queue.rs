//! Datagrams queued for one `sendmmsg`. Two ways to use GSO (`UDP_SEGMENT`: one message the kernel
//! cuts into datagrams of one size, the last possibly shorter):
//! - merging (`SendQueue::merging`, a datagram port's outbox): a run of datagrams of one size to
//!   one peer leaves as one such message;
//! - passing trains through (`SendQueue::trains`, the datagram proxy): only what arrived as one
//!   coalesced buffer (`UDP_GRO`: its sender used GSO) leaves as one message again (`push_train`);
//!   single datagrams stay single. A receiver without GRO has a GSO message cut apart on arrival,
//!   and the pieces can cost its receive buffer more than datagrams sent one by one: a proxy keeps
//!   the shape its sender chose.
//!
//! What the peers receive is the same datagrams either way.

use crate::sys::mmsg::{send_many, Outgoing};
use crate::sys::udp_offload::MAX_SEGMENTS;
use socket2::SockAddr;
use std::io;
use std::os::fd::RawFd;

/// The most bytes one GSO message carries: the IPv4 UDP payload limit (IPv6's is higher).
const GSO_MAX_BYTES: usize = 65_507;

#[derive(Default)]
pub struct SendQueue {
    queued: Vec<Queued>,
    bytes: Vec<u8>,
    /// Runs of datagrams up to this size are merged into GSO messages (0: never). Lowered when the
    /// kernel refuses a segment size (larger than the path's MTU allows), 0 when it refuses GSO.
    gso_max_segment: usize,
    /// Trains (`push_train`) leave as GSO messages; false: the kernel cannot (they leave cut apart).
    gso_trains: bool,
}

/// One queued message: a datagram, or a train of datagrams of `segment` bytes (0: a datagram).
struct Queued {
    to: Option<SockAddr>,
    range: std::ops::Range<usize>,
    segment: u16,
}

impl Queued {
    /// The datagrams it carries.
    fn datagrams(&self) -> usize {
        if self.segment == 0 {
            1
        } else {
            self.range.len().div_ceil(usize::from(self.segment)).max(1)
        }
    }
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
    /// A queue that merges runs of one size to one peer into GSO messages, for a socket on which
    /// GSO may be tried (`gso`: the kernel knows `UDP_SEGMENT`).
    pub fn merging(gso: bool) -> SendQueue {
        SendQueue { gso_max_segment: if gso { usize::from(u16::MAX) } else { 0 }, gso_trains: gso, ..SendQueue::default() }
    }

    /// A queue that sends single datagrams as they are and trains (`push_train`) as GSO messages
    /// where the kernel can (`gso`).
    pub fn trains(gso: bool) -> SendQueue {
        SendQueue { gso_trains: gso, ..SendQueue::default() }
    }

    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Messages queued (a train counts once).
    pub fn len(&self) -> usize {
        self.queued.len()
    }

    /// Datagrams queued (a train counts each of its datagrams).
    pub fn datagrams(&self) -> usize {
        self.queued.iter().map(Queued::datagrams).sum()
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
        self.queued.push(Queued { to, range: start..self.bytes.len(), segment: 0 });
    }

    /// Queues `train`: datagrams of `segment` bytes back to back (the last may be shorter), as a
    /// coalesced receive gave them. It leaves as one GSO message where the kernel can, else cut
    /// apart; at most `MAX_SEGMENTS` datagrams and `GSO_MAX_BYTES` per train (longer ones are cut).
    pub fn push_train(&mut self, to: Option<SockAddr>, train: &[u8], segment: usize) {
        let Ok(seg) = u16::try_from(segment) else { return self.push_cut(to, train, segment.max(1)) };
        if !self.gso_trains || seg == 0 || train.len() <= segment {
            return self.push_cut(to, train, segment.max(1));
        }
        let most = (MAX_SEGMENTS * segment).min(GSO_MAX_BYTES / segment * segment).max(segment);
        for piece in train.chunks(most) {
            let start = self.bytes.len();
            self.bytes.extend_from_slice(piece);
            let segment = if piece.len() > segment { seg } else { 0 };
            self.queued.push(Queued { to: to.clone(), range: start..self.bytes.len(), segment });
        }
    }

    /// Queues each datagram of a train on its own.
    fn push_cut(&mut self, to: Option<SockAddr>, train: &[u8], segment: usize) {
        for datagram in train.chunks(segment) {
            self.push(to.clone(), datagram);
        }
        if train.is_empty() {
            self.push(to, train);
        }
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
            let msgs: Vec<Outgoing<'_>> = plan.iter().map(|&(m, _, _)| m).collect();
            let (sent, err) = send_many(fd, &msgs);
            out.sent += plan[..sent].iter().map(|&(_, _, n)| n as u64).sum::<u64>();
            start += plan[..sent].iter().map(|&(_, entries, _)| entries).sum::<usize>();
            let Some(e) = err else { continue };
            let (failed, entries, datagrams) = plan[sent];
            let segment = usize::from(failed.segment);
            drop(plan);
            if segment > 0 && self.gso_refused(segment, &e) {
                self.cut_trains(start..start + entries);
                continue; // planned again from the same datagram, without GSO for this size
            }
            start += entries; // the datagrams that failed are dropped
            match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::ENOBUFS) => out.dropped += datagrams as u64,
                errno => out.errors.push(errno.unwrap_or(libc::EIO)),
            }
        }
        self.clear();
        out
    }

    /// Turns the trains among `entries` into single datagrams (the kernel refused their GSO).
    fn cut_trains(&mut self, entries: std::ops::Range<usize>) {
        let mut cut = Vec::new();
        for q in &self.queued[entries.clone()] {
            if q.segment == 0 {
                cut.push(Queued { to: q.to.clone(), range: q.range.clone(), segment: 0 });
                continue;
            }
            let seg = usize::from(q.segment);
            for at in q.range.clone().step_by(seg) {
                cut.push(Queued { to: q.to.clone(), range: at..(at + seg).min(q.range.end), segment: 0 });
            }
        }
        self.queued.splice(entries, cut);
    }

    /// The messages for the queue from entry `start` on, each with how many entries and datagrams
    /// it carries: a train as it was pushed (a GSO message where trains may leave as such); with
    /// merging, a run of at least two datagrams of one size to one peer (the last may be shorter)
    /// as one GSO message, within the kernel's limits; the rest one by one.
    fn plan(&self, start: usize) -> Vec<(Outgoing<'_>, usize, usize)> {
        let mut plan = Vec::new();
        let mut i = start;
        while i < self.queued.len() {
            let first = &self.queued[i];
            if first.segment > 0 {
                let segment = if self.gso_trains { first.segment } else { 0 };
                plan.push((Outgoing { to: first.to.as_ref(), bytes: &self.bytes[first.range.clone()], segment }, 1, first.datagrams()));
                i += 1;
                continue;
            }
            let segment = first.range.len();
            let mut end = first.range.end;
            let mut j = i + 1;
            if segment > 0 && segment <= self.gso_max_segment {
                while j < self.queued.len() && j - i < MAX_SEGMENTS {
                    let next = &self.queued[j];
                    let fits = next.segment == 0 && next.range.start == end && !next.range.is_empty() && next.range.len() <= segment;
                    if !fits || next.to != first.to || next.range.end - first.range.start > GSO_MAX_BYTES {
                        break;
                    }
                    end = next.range.end;
                    j += 1;
                    if next.range.len() < segment {
                        break; // a shorter datagram ends the run
                    }
                }
            }
            let count = j - i;
            // Within u16 (gso_max_segment starts at u16::MAX and only goes down).
            let segment = if count > 1 { segment as u16 } else { 0 };
            plan.push((Outgoing { to: first.to.as_ref(), bytes: &self.bytes[first.range.start..end], segment }, count, count));
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
            Some(libc::EIO) | Some(libc::ENOPROTOOPT) | Some(libc::EOPNOTSUPP) => {
                self.gso_max_segment = 0;
                self.gso_trains = false;
            }
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
        let mut q = SendQueue::merging(true);
        for _ in 0..3 {
            q.push(Some(to.clone()), &[1; 64]);
        }
        q.push(Some(to.clone()), &[2; 10]); // shorter: ends the run, within it
        q.push(Some(other.clone()), &[3; 64]);
        q.push_parts(Some(other), &[&[4; 4], &[5; 60]]);
        let plan: Vec<(u16, usize, usize)> = q.plan(0).iter().map(|(m, _, n)| (m.segment, m.bytes.len(), *n)).collect();
        assert_eq!(plan, [(64, 202, 4), (64, 128, 2)]);
        assert_eq!((q.len(), q.bytes()), (6, 330));
    }

    #[test]
    fn a_train_queue_keeps_single_datagrams_single_and_trains_whole() {
        let to = SockAddr::from("127.0.0.1:9".parse::<std::net::SocketAddr>().unwrap());
        let mut q = SendQueue::trains(true);
        q.push(Some(to.clone()), &[1; 64]);
        q.push(Some(to.clone()), &[1; 64]);
        q.push_train(Some(to.clone()), &[2; 150], 64);
        q.push_train(Some(to.clone()), &[3; 64 * 100], 64); // past MAX_SEGMENTS: two trains
        q.push_train(Some(to), &[4; 40], 64); // one datagram
        let plan: Vec<(u16, usize, usize)> = q.plan(0).iter().map(|(m, _, n)| (m.segment, m.bytes.len(), *n)).collect();
        assert_eq!(plan, [(0, 64, 1), (0, 64, 1), (64, 150, 3), (64, 64 * 64, 64), (64, 64 * 36, 36), (0, 40, 1)]);
        let mut no_gso = SendQueue::trains(false);
        no_gso.push_train(None, &[5; 150], 64);
        assert_eq!(no_gso.plan(0).iter().map(|(m, _, _)| (m.segment, m.bytes.len())).collect::<Vec<_>>(), [(0, 64), (0, 64), (0, 22)]);
        // A refused train is cut into datagrams.
        q.cut_trains(2..3);
        assert_eq!(q.plan(2).iter().take(3).map(|(m, _, n)| (m.segment, m.bytes.len(), *n)).collect::<Vec<_>>(), [(0, 64, 1), (0, 64, 1), (0, 22, 1)]);
    }

    #[test]
    fn a_flush_sends_each_datagram_and_empties_the_queue() {
        let rx = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        rx.bind(&SockAddr::from("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())).unwrap();
        let tx = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        tx.connect(&rx.local_addr().unwrap()).unwrap();
        let mut q = SendQueue::merging(crate::sys::udp_offload::gso_supported(&tx));
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
