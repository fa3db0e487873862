//! A datagram port's sending side, owned by the consumer's thread (no lock): datagrams written
//! while the consumer handles a batch are queued and leave together in one `sendmmsg`; others
//! leave at once. The queue sends runs of one size to one peer with GSO (see `send_queue`).

use super::send_queue::SendQueue;
use crate::sys::mmsg::{send_many, Outgoing};
use crate::sys::udp_offload;
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
    /// Datagrams written while the consumer handles a batch (see `Consumer`).
    queue: SendQueue,
    /// Datagrams the kernel had no room for (EAGAIN/ENOBUFS): dropped, as UDP may.
    pub dropped: u64,
    /// Datagrams the kernel took (a GSO message counts each datagram it carries).
    pub sent: u64,
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
        let queue = SendQueue::merging(udp_offload::gso_supported(&sock));
        Outbox { sock, family, last: None, last_sent_to: None, queue, dropped: 0, sent: 0 }
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
            self.queue.push(to, data);
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
        !self.queue.is_empty()
    }

    /// Sends everything queued. Errors that concern the caller (a refusal, ...) are returned as
    /// errnos; datagrams that failed are dropped, as UDP may.
    pub fn flush(&mut self) -> Vec<i32> {
        let flushed = self.queue.flush(self.sock.as_raw_fd());
        self.sent += flushed.sent;
        self.dropped += flushed.dropped;
        flushed.errors
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
