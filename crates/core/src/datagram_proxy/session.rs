//! One client's session of a datagram proxy: its own UDP socket, connected to the upstream, so
//! that the kernel hands it the upstream's replies (and only those). It keeps the session's idle
//! clock and its counts of datagrams forwarded and replies received.

use super::source_ports::SourcePorts;
use crate::proxy_protocol::{encode_v2, Addresses, Header, SocketType, Version};
use crate::service::{DatagramStep, Ready, Step};
use crate::sys::udp_offload;
use socket2::{SockAddr, Socket};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct DatagramSession {
    /// Connected to the upstream.
    pub sock: Socket,
    /// The datagram proxy whose session this is.
    pub port: u32,
    pub client: SocketAddr,
    /// The port of the proxy's `sourcePortRange` it holds.
    pub source_port: Option<u16>,
    /// The PROXY v2 header every datagram to the upstream starts with.
    pub header: Option<Box<[u8]>>,
    idle_timeout: Option<Duration>,
    /// The last datagram either way.
    pub last_active: Instant,
    /// When the loop's deadlines wake this session next (one wake-up at a time: when it comes,
    /// the session looks at its clock and asks for the next).
    armed: Option<Instant>,
    /// Datagrams forwarded to the upstream, and replies received (for `responses`).
    pub requests: u64,
    pub replies: u64,
    /// An edge said replies (or an error) may be waiting.
    pub readable: bool,
}

/// Why a session could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// No local port or descriptor for its socket (EADDRINUSE, EAGAIN, EMFILE, ENFILE, ...).
    NoSourcePort,
    /// The upstream cannot be reached from here (no route, ...).
    Upstream,
}

fn is_resource_shortage(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EADDRINUSE | libc::EADDRNOTAVAIL | libc::EAGAIN | libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

fn classify(e: io::Error) -> OpenError {
    if is_resource_shortage(&e) {
        OpenError::NoSourcePort
    } else {
        OpenError::Upstream
    }
}

/// What a new session needs to know of its port.
pub struct Opening<'a> {
    pub port: u32,
    pub client: SocketAddr,
    pub to: &'a SockAddr,
    pub idle_timeout: Option<Duration>,
    /// The port's local address, for the PROXY header (None: no header).
    pub header_destination: Option<Option<SocketAddr>>,
    pub now: Instant,
}

impl DatagramSession {
    /// Makes the session's socket: bound in `source_ports` when the port has a range, connected
    /// to the upstream, with UDP_GRO on (a GSO upstream's replies then arrive as one buffer).
    pub fn open(o: Opening<'_>, mut source_ports: Option<&mut SourcePorts>) -> Result<DatagramSession, OpenError> {
        let sock = Socket::new(o.to.domain(), socket2::Type::DGRAM.nonblocking().cloexec(), None).map_err(classify)?;
        let source_port = match source_ports.as_deref_mut() {
            Some(range) => Some(range.bind(&sock, o.to.domain()).map_err(|_| OpenError::NoSourcePort)?),
            None => None,
        };
        if let Err(e) = sock.connect(o.to) {
            if let (Some(range), Some(port)) = (source_ports, source_port) {
                range.release(port);
            }
            return Err(classify(e));
        }
        let _ = udp_offload::set_gro(sock.as_raw_fd(), true);
        Ok(DatagramSession {
            sock,
            port: o.port,
            client: o.client,
            source_port,
            header: o.header_destination.map(|destination| proxy_header(o.client, destination)),
            idle_timeout: o.idle_timeout,
            last_active: o.now,
            armed: None,
            requests: 0,
            replies: 0,
            readable: false,
        })
    }

    /// Replies to read, or the idle clock to look at.
    pub fn service(&mut self, ready: Ready, now: Instant) -> Step {
        if ready.readable || ready.error {
            self.readable = true;
        }
        if self.readable {
            return Step::Datagrams(DatagramStep::FromUpstream);
        }
        self.check_idle(now)
    }

    /// Expired, or the next wake-up to ask for (none while one is pending: when it comes, this
    /// runs again with the clock moved on).
    pub fn check_idle(&mut self, now: Instant) -> Step {
        let Some(idle) = self.idle_timeout else { return Step::Idle };
        let Some(deadline) = self.last_active.checked_add(idle) else { return Step::Idle };
        if now >= deadline {
            return Step::Datagrams(DatagramStep::Expired);
        }
        if self.armed.is_some_and(|at| at > now) {
            return Step::Idle;
        }
        self.armed = Some(deadline);
        Step::WakeAt(deadline)
    }

    /// Whether it has all the replies it waits for (`responses` per datagram forwarded).
    pub fn complete(&self, responses: Option<u32>) -> bool {
        responses.is_some_and(|per| self.requests > 0 && self.replies >= self.requests.saturating_mul(u64::from(per)))
    }
}

/// The PROXY v2 header for a session: the client as the source, the port's address as the
/// destination (an unknown one is the unspecified address of the client's family).
fn proxy_header(client: SocketAddr, destination: Option<SocketAddr>) -> Box<[u8]> {
    let destination = destination.unwrap_or_else(|| match client {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    });
    let header = Header::proxy(Version::V2, Addresses::Ip { socket_type: SocketType::Datagram, source: client, destination });
    let mut out = Vec::with_capacity(52);
    // An IP header without TLVs always encodes.
    let _ = encode_v2(&header, &mut out);
    out.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy_protocol::{parse, Parsed, ParseOptions, Transport};

    #[test]
    fn the_proxy_header_names_the_client_over_udp() {
        let client: SocketAddr = "192.0.2.7:5353".parse().unwrap();
        let header = proxy_header(client, Some("127.0.0.1:53".parse().unwrap()));
        let Ok(Parsed::Complete { header: h, consumed }) = parse(&header, &ParseOptions::default()) else { panic!("unparsable") };
        assert_eq!((consumed, h.transport(), h.source()), (header.len(), Transport::Udp4, Some(client)));
        let v6 = proxy_header("[2001:db8::1]:9".parse().unwrap(), None);
        let Ok(Parsed::Complete { header: h, .. }) = parse(&v6, &ParseOptions::default()) else { panic!("unparsable") };
        assert_eq!(h.transport(), Transport::Udp6);
    }

    #[test]
    fn the_idle_clock_asks_for_one_wake_up_at_a_time() {
        let now = Instant::now();
        let up = Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        let mut s = DatagramSession {
            sock: up,
            port: 1,
            client: "127.0.0.1:1".parse().unwrap(),
            source_port: None,
            header: None,
            idle_timeout: Some(Duration::from_millis(100)),
            last_active: now,
            armed: None,
            requests: 0,
            replies: 0,
            readable: false,
        };
        assert!(matches!(s.check_idle(now), Step::WakeAt(at) if at == now + Duration::from_millis(100)));
        assert!(matches!(s.check_idle(now + Duration::from_millis(10)), Step::Idle));
        // Activity moved the clock: the pending wake-up comes early and asks for the next.
        s.last_active = now + Duration::from_millis(50);
        assert!(matches!(s.check_idle(now + Duration::from_millis(100)), Step::WakeAt(at) if at == now + Duration::from_millis(150)));
        assert!(matches!(s.check_idle(now + Duration::from_millis(150)), Step::Datagrams(DatagramStep::Expired)));
        s.requests = 2;
        s.replies = 1;
        assert!(!s.complete(Some(1)) && !s.complete(None));
        s.replies = 2;
        assert!(s.complete(Some(1)) && !s.complete(Some(2)));
    }
}
