//! A datagram port's sending side, owned by the consumer's thread (no lock): datagrams written
//! while the consumer handles a batch are queued and leave together in one `sendmmsg`; others
//! leave at once. In the queue, a run of datagrams of one size to one peer leaves as one message
//! that the kernel cuts apart (`UDP_SEGMENT`, GSO): what the peer receives is the same.

use crate::sys::mmsg::{send_many, Outgoing};
use crate::sys::udp_offload::{self, MAX_SEGMENTS};
use socket2::{SockAddr, Socket};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;

/// The largest UDP payload: 65535 minus the IP and UDP headers (IPv6 carries no header in its
/// payload-length limit, so only UDP's 8 bytes count there).
fn max_payload(family: i32) -> usize {
    if family == libc::AF_INET6 {
        65_527
    } else {
        65_507
    }
}

pub struct Outbox {
    sock: Arc<Socket>,
    family: i32,
    /// The last destination parsed from text: peers are usually answered many times in a row.
    last: Option<(String, u16, SockAddr)>,
    /// Where the consumer's last send with an address went (see `Consumer::send_again`).
    pub last_sent_to: Option<SockAddr>,
    queued: Vec<(Option<SockAddr>, std::ops::Range<usize>)>,
    bytes: Vec<u8>,
    /// Datagrams the kernel had no room for (EAGAIN/ENOBUFS): dropped, as UDP may.
    pub dropped: u64,
    /// Datagrams the kernel took (a GSO message counts each datagram it carries).
    pub sent: u64,
    /// Runs of datagrams up to this size leave with GSO (0: never). Lowered when the kernel
    /// refuses a segment size (larger than the path's MTU allows), 0 when it refuses GSO itself.
    gso_max_segment: usize,
}

/// Why a datagram was refused before reaching the kernel.
#[derive(Debug)]
pub enum SendError {
    /// The host is not an IP literal of the port's family.
    InvalidAddress,
    Os(io::Error),
}

impl From<io::Error> for SendError {
    fn from(e: io::Error) -> Self {
        SendError::Os(e)
    }
}

impl Outbox {
    pub fn new(sock: Arc<Socket>, family: i32) -> Outbox {
        let gso_max_segment = if udp_offload::gso_supported(&sock) { usize::from(u16::MAX) } else { 0 };
        Outbox { sock, family, last: None, last_sent_to: None, queued: Vec::new(), bytes: Vec::new(), dropped: 0, sent: 0, gso_max_segment }
    }

    pub fn family(&self) -> i32 {
        self.family
    }

    pub fn socket(&self) -> &Socket {
        &self.sock
    }

    /// Parses `host` (an IP literal of the port's family; IPv6 may carry `%<interface>`) and `port`.
    pub fn resolve(&mut self, host: &str, port: u16) -> Result<SockAddr, SendError> {
        if let Some((h, p, addr)) = &self.last {
            if *p == port && h == host {
                return Ok(addr.clone());
            }
        }
        let addr = match crate::wire::address::parse_ip(host, port)? {
            Some(a @ SocketAddr::V4(_)) if self.family == libc::AF_INET => SockAddr::from(a),
            Some(a @ SocketAddr::V6(_)) if self.family == libc::AF_INET6 => SockAddr::from(a),
            _ => return Err(SendError::InvalidAddress),
        };
        self.last = Some((host.to_owned(), port, addr.clone()));
        Ok(addr)
    }

    /// Sends one datagram (to `to`, or to the connected peer), or queues it when `defer`.
    pub fn send(&mut self, data: &[u8], to: Option<SockAddr>, defer: bool) -> io::Result<()> {
        if data.len() > max_payload(self.family) {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        if defer {
            let start = self.bytes.len();
            self.bytes.extend_from_slice(data);
            self.queued.push((to, start..self.bytes.len()));
            return Ok(());
        }
        let (_, err) = send_many(self.sock.as_raw_fd(), &[Outgoing { to: to.as_ref(), bytes: data, segment: 0 }]);
        match err {
            Some(e) => self.absorb(e, 1),
            None => {
                self.sent += 1;
                Ok(())
            }
        }
    }

    pub fn has_queued(&self) -> bool {
        !self.queued.is_empty()
    }

    /// Sends everything queued. Errors that concern the caller (a refusal, ...) are returned as
    /// errnos; datagrams that failed are dropped, as UDP may.
    pub fn flush(&mut self) -> Vec<i32> {
        let mut errors = Vec::new();
        let mut start = 0;
        let mut taken = 0; // datagrams the kernel took (counted once `plan` no longer borrows self)
        while start < self.queued.len() {
            let plan = self.plan(start);
            let msgs: Vec<Outgoing<'_>> = plan.iter().map(|&(m, _)| m).collect();
            let (sent, err) = send_many(self.sock.as_raw_fd(), &msgs);
            let datagrams = plan[..sent].iter().map(|&(_, n)| n).sum::<usize>();
            start += datagrams;
            taken += datagrams as u64;
            let Some(e) = err else { continue };
            let (failed, count) = plan[sent];
            let segment = usize::from(failed.segment);
            drop(plan);
            if segment > 0 && self.gso_refused(segment, &e) {
                continue; // planned again from the same datagram, without GSO for this size
            }
            start += count; // the datagrams that failed are dropped
            if let Err(e) = self.absorb(e, count) {
                errors.push(e.raw_os_error().unwrap_or(libc::EIO));
            }
        }
        self.sent += taken;
        self.queued.clear();
        self.bytes.clear();
        errors
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

    /// A full send queue drops the datagrams (counted); anything else is the caller's business.
    fn absorb(&mut self, e: io::Error, datagrams: usize) -> io::Result<()> {
        match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::ENOBUFS) => {
                self.dropped += datagrams as u64;
                Ok(())
            }
            _ => Err(e),
        }
    }
}

/// The most bytes one GSO message carries: the IPv4 UDP payload limit (IPv6's is higher).
const GSO_MAX_BYTES: usize = 65_507;
