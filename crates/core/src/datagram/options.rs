//! Options of a datagram port (broadcast, multicast membership, TTL, loopback, outgoing interface),
//! each chosen by the socket's family, with the address and interface forms Twisted and Node accept.

use crate::sys::interface;
use socket2::Socket;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Why a datagram port call (an option, a send, a connect) failed.
#[derive(Debug)]
pub enum DatagramError {
    /// An address or interface argument that is not of the socket's family (`ERR_INVALID_ADDRESS`).
    InvalidAddress(String),
    /// The syscall failed; the name of the call for the message.
    Os(io::Error, &'static str),
}

pub type DatagramResult<T> = Result<T, DatagramError>;

fn set(r: io::Result<()>) -> DatagramResult<()> {
    r.map_err(|e| DatagramError::Os(e, "setsockopt"))
}

fn get<T>(r: io::Result<T>) -> DatagramResult<T> {
    r.map_err(|e| DatagramError::Os(e, "getsockopt"))
}

fn v6(family: i32) -> bool {
    family == libc::AF_INET6
}

pub fn set_broadcast(s: &Socket, on: bool) -> DatagramResult<()> {
    set(s.set_broadcast(on))
}

pub fn broadcast(s: &Socket) -> DatagramResult<bool> {
    get(s.broadcast())
}

pub fn set_ttl(s: &Socket, family: i32, ttl: u32) -> DatagramResult<()> {
    set(if v6(family) { s.set_multicast_hops_v6(ttl) } else { s.set_multicast_ttl_v4(ttl) })
}

pub fn ttl(s: &Socket, family: i32) -> DatagramResult<u32> {
    get(if v6(family) { s.multicast_hops_v6() } else { s.multicast_ttl_v4() })
}

pub fn set_loopback(s: &Socket, family: i32, on: bool) -> DatagramResult<()> {
    set(if v6(family) { s.set_multicast_loop_v6(on) } else { s.set_multicast_loop_v4(on) })
}

pub fn loopback(s: &Socket, family: i32) -> DatagramResult<bool> {
    get(if v6(family) { s.multicast_loop_v6() } else { s.multicast_loop_v4() })
}

/// Joins (`join`) or leaves a multicast group. IPv4: `iface` is an interface address (any when
/// absent); IPv6: an interface name, index, or an address with `%scope` (any when absent).
pub fn membership(s: &Socket, family: i32, group: &str, iface: Option<&str>, join: bool) -> DatagramResult<()> {
    let syscall = if join { "addMembership" } else { "dropMembership" };
    let os = |r: io::Result<()>| r.map_err(|e| DatagramError::Os(e, syscall));
    let bad = || DatagramError::InvalidAddress(format!("{group:?} is not a multicast address of the socket's family"));
    if v6(family) {
        let g: Ipv6Addr = group.parse().map_err(|_| bad())?;
        let index = iface.map(v6_interface).transpose()?.unwrap_or(0);
        return os(if join { s.join_multicast_v6(&g, index) } else { s.leave_multicast_v6(&g, index) });
    }
    let g: Ipv4Addr = group.parse().map_err(|_| bad())?;
    let i = match iface {
        Some(a) => a.parse().map_err(|_| DatagramError::InvalidAddress("interface must be an IPv4 address".into()))?,
        None => Ipv4Addr::UNSPECIFIED,
    };
    os(if join { s.join_multicast_v4(&g, &i) } else { s.leave_multicast_v4(&g, &i) })
}

/// IPv4: an interface address; IPv6: an interface name or index (or an address with `%scope`).
pub fn set_outgoing_interface(s: &Socket, family: i32, addr: &str) -> DatagramResult<()> {
    if v6(family) {
        let index = v6_interface(addr)?;
        return set(s.set_multicast_if_v6(index));
    }
    let v4: Ipv4Addr = addr.parse().map_err(|_| DatagramError::InvalidAddress("not an IPv4 address".into()))?;
    set(s.set_multicast_if_v4(&v4))
}

pub fn outgoing_interface(s: &Socket, family: i32) -> DatagramResult<String> {
    get(if v6(family) { s.multicast_if_v6().map(|i| i.to_string()) } else { s.multicast_if_v4().map(|a| a.to_string()) })
}

/// An IPv6 interface given as a name ("lo"), an index ("1"), or an address with a scope ("::1%lo").
fn v6_interface(spec: &str) -> DatagramResult<u32> {
    let index = |name: &str| interface::index(name).map_err(|e| DatagramError::Os(e, "if_nametoindex"));
    match spec.split_once('%') {
        Some((_, scope)) => index(scope),
        None if spec.parse::<Ipv6Addr>().is_ok() => Ok(0),
        None => index(spec),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Type};

    #[test]
    fn options_follow_the_family() {
        let s4 = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        set_ttl(&s4, libc::AF_INET, 7).unwrap();
        assert_eq!(ttl(&s4, libc::AF_INET).unwrap(), 7);
        set_loopback(&s4, libc::AF_INET, false).unwrap();
        assert!(!loopback(&s4, libc::AF_INET).unwrap());
        assert!(matches!(membership(&s4, libc::AF_INET, "::1", None, true), Err(DatagramError::InvalidAddress(_))));
        let s6 = Socket::new(Domain::IPV6, Type::DGRAM, None).unwrap();
        set_outgoing_interface(&s6, libc::AF_INET6, "lo").unwrap();
        assert_eq!(outgoing_interface(&s6, libc::AF_INET6).unwrap(), "1");
        assert_eq!(v6_interface("::1%lo").unwrap(), 1);
        assert!(matches!(v6_interface("no-such-if0"), Err(DatagramError::Os(..))));
    }
}
