//! What a port accepts as a PROXY protocol header (HAProxy's `proxy-protocol.txt`): which versions,
//! from which sources, how large and how fast. A header that breaks any of these closes the
//! connection and is counted; nothing is ever guessed (the spec forbids it).

use crate::proxy_protocol::{ParseOptions, Versions};
use socket2::SockAddr;
use std::net::IpAddr;
use std::time::Duration;

/// An address block (`10.0.0.0/8`, `::1/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(u32::from(net) as u128, u32::from(ip) as u128, self.prefix.min(32), 32),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(u128::from(net), u128::from(ip), self.prefix.min(128), 128),
            (IpAddr::V6(_), IpAddr::V4(v4)) => self.contains(IpAddr::V6(v4.to_ipv6_mapped())),
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().is_some_and(|v4| self.contains(IpAddr::V4(v4))),
        }
    }
}

fn prefix_eq(a: u128, b: u128, prefix: u8, width: u32) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = width - prefix as u32;
    (a >> shift) == (b >> shift)
}

#[derive(Debug, Clone)]
pub struct HeaderPolicy {
    pub versions: Versions,
    /// Sources allowed to send a header (the load balancers in front); empty: any source. A
    /// UNIX peer is always trusted (whoever can reach the socket's path was let in by its mode).
    pub trusted: Vec<Cidr>,
    /// The whole header must arrive within this long of the accept.
    pub timeout: Duration,
    /// Bytes a header may take at most (v1 is never over 107).
    pub max_size: usize,
}

impl Default for HeaderPolicy {
    fn default() -> Self {
        HeaderPolicy { versions: Versions::ALL, trusted: Vec::new(), timeout: Duration::from_secs(3), max_size: 536 }
    }
}

impl HeaderPolicy {
    pub fn parse_options(&self) -> ParseOptions {
        ParseOptions { versions: self.versions, max_size: self.max_size }
    }

    pub fn trusts(&self, peer: &SockAddr) -> bool {
        match peer.as_socket() {
            Some(a) => self.trusted.is_empty() || self.trusted.iter().any(|c| c.contains(a.ip())),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        let (a, p) = s.split_once('/').unwrap();
        Cidr { addr: a.parse().unwrap(), prefix: p.parse().unwrap() }
    }

    #[test]
    fn blocks_contain_their_addresses_only() {
        assert!(cidr("10.0.0.0/8").contains("10.1.2.3".parse().unwrap()));
        assert!(!cidr("10.0.0.0/8").contains("11.0.0.1".parse().unwrap()));
        assert!(cidr("0.0.0.0/0").contains("192.0.2.1".parse().unwrap()));
        assert!(cidr("2001:db8::/32").contains("2001:db8:1::5".parse().unwrap()));
        assert!(!cidr("2001:db8::/32").contains("2001:db9::5".parse().unwrap()));
        assert!(cidr("127.0.0.1/32").contains("::ffff:127.0.0.1".parse().unwrap()), "a v4-mapped peer");
        assert!(!cidr("127.0.0.1/32").contains("::1".parse().unwrap()));
    }

    #[test]
    fn an_empty_list_trusts_everyone_and_unix_peers_are_trusted() {
        let mut p = HeaderPolicy::default();
        let lb: SockAddr = "10.0.0.5:4000".parse::<std::net::SocketAddr>().unwrap().into();
        assert!(p.trusts(&lb));
        p.trusted = vec![cidr("192.0.2.0/24")];
        assert!(!p.trusts(&lb));
        assert!(p.trusts(&SockAddr::unix("/run/lb.sock").unwrap()));
    }
}
