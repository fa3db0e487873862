//! A datagram port's sending side, owned by the consumer's thread (no lock): datagrams written
//! while the consumer handles a batch are queued and leave together in one `sendmmsg`; others
//! leave at once.

use crate::mmsg::send_many;
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
    queued: Vec<(Option<SockAddr>, std::ops::Range<usize>)>,
    bytes: Vec<u8>,
    /// Datagrams the kernel had no room for (EAGAIN/ENOBUFS): dropped, as UDP may.
    pub dropped: u64,
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
        Outbox { sock, family, last: None, queued: Vec::new(), bytes: Vec::new(), dropped: 0 }
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
        let addr = match crate::address::parse_ip(host, port)? {
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
        let (_, err) = send_many(self.sock.as_raw_fd(), &[(to.as_ref(), data)]);
        match err {
            Some(e) => self.absorb(e),
            None => Ok(()),
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
        while start < self.queued.len() {
            let msgs: Vec<(Option<&SockAddr>, &[u8])> =
                self.queued[start..].iter().map(|(to, range)| (to.as_ref(), &self.bytes[range.clone()])).collect();
            let (sent, err) = send_many(self.sock.as_raw_fd(), &msgs);
            start += sent;
            if let Some(e) = err {
                start += 1; // the datagram that failed is dropped
                if let Err(e) = self.absorb(e) {
                    errors.push(e.raw_os_error().unwrap_or(libc::EIO));
                }
            }
        }
        self.queued.clear();
        self.bytes.clear();
        errors
    }

    /// A full send queue drops the datagram (counted); anything else is the caller's business.
    fn absorb(&mut self, e: io::Error) -> io::Result<()> {
        match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::ENOBUFS) => {
                self.dropped += 1;
                Ok(())
            }
            _ => Err(e),
        }
    }
}
