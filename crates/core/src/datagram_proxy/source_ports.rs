//! The local ports a datagram proxy may bind its upstream sockets to (`sourcePortRange`): a port
//! is held by one session at a time; one the kernel says is taken (by anyone else) is skipped.

use socket2::{Domain, SockAddr, Socket};
use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Binds tried per new session at most, so that a range crowded by other processes costs a
/// bounded time (the other sessions wait for it): past it the client is refused and counted.
const MAX_BIND_TRIES: usize = 64;

#[derive(Debug)]
pub struct SourcePorts {
    low: u16,
    high: u16,
    /// Where the next search starts (ports are handed out in turn, so a port just released is
    /// not reused at once: a late reply to its last session then finds it closed).
    next: u16,
    held: HashSet<u16>,
}

impl SourcePorts {
    /// The range `low..=high` (low ≤ high, both above 0: checked by the caller).
    pub fn new(low: u16, high: u16) -> SourcePorts {
        SourcePorts { low, high, next: low, held: HashSet::new() }
    }

    /// Binds `sock` (of `domain`) to a free port of the range on the unspecified address, and
    /// holds it. EADDRINUSE when every port is held or taken (or the tries ran out).
    pub fn bind(&mut self, sock: &Socket, domain: Domain) -> io::Result<u16> {
        let size = usize::from(self.high - self.low) + 1;
        let start = usize::from(self.next - self.low);
        let mut tries = 0;
        for k in 0..size {
            let port = self.low + ((start + k) % size) as u16;
            if self.held.contains(&port) {
                continue;
            }
            if tries == MAX_BIND_TRIES {
                break;
            }
            tries += 1;
            let ip = if domain == Domain::IPV6 { IpAddr::V6(Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) };
            match sock.bind(&SockAddr::from(SocketAddr::new(ip, port))) {
                Ok(()) => {
                    self.held.insert(port);
                    self.next = if port == self.high { self.low } else { port + 1 };
                    return Ok(port);
                }
                Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::from_raw_os_error(libc::EADDRINUSE))
    }

    /// The session that held `port` ended (its socket is closed).
    pub fn release(&mut self, port: u16) {
        self.held.remove(&port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::Type;

    fn udp() -> Socket {
        Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap()
    }

    #[test]
    fn ports_are_held_one_session_at_a_time_and_taken_ones_skipped() {
        // Two free ports next to each other, found by binding and letting go.
        let probe = udp();
        probe.bind(&SockAddr::from("0.0.0.0:0".parse::<SocketAddr>().unwrap())).unwrap();
        let low = probe.local_addr().unwrap().as_socket().unwrap().port();
        drop(probe);
        let mut range = SourcePorts::new(low, low.saturating_add(1));
        let (a, b, c) = (udp(), udp(), udp());
        let pa = range.bind(&a, Domain::IPV4);
        let pb = range.bind(&b, Domain::IPV4);
        // The neighbour may be taken by another process: then the range has one port.
        match (pa, pb) {
            (Ok(x), Ok(y)) => {
                assert_ne!(x, y);
                assert_eq!(range.bind(&c, Domain::IPV4).unwrap_err().raw_os_error(), Some(libc::EADDRINUSE));
                drop(a);
                range.release(x);
                assert_eq!(range.bind(&c, Domain::IPV4).unwrap(), x);
            }
            (Ok(_), Err(e)) => assert_eq!(e.raw_os_error(), Some(libc::EADDRINUSE)),
            (Err(e), _) => panic!("no port of {low}..={}: {e}", low + 1),
        }
    }
}
