//! Socket addresses in the compact record form that crosses into JS.
//!
//! Record layout (little endian): `u8 family, u8 host_len, u16 port, u32 flow_info, u32 scope_id`,
//! then `host_len` bytes of host text. INET/INET6 hosts are printed by std (RFC 5952 for v6, with
//! `%<ifname>` appended for a scoped address); UNIX hosts are the path bytes (an abstract name starts
//! with NUL; length 0 is an unnamed socket). Text is formatted here, once, so JS only slices it.

use crate::sys::interface;
use socket2::SockAddr;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, SocketAddrV6};

pub const RECORD_HEADER: usize = 12;

/// Appends the record for `addr` to `out` and returns its offset.
pub fn encode(addr: &SockAddr, out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_HEADER]);
    let (family, port, flow, scope) = match addr.as_socket() {
        Some(SocketAddr::V4(v4)) => {
            let _ = write!(out, "{}", v4.ip());
            (libc::AF_INET, v4.port(), 0, 0)
        }
        Some(SocketAddr::V6(v6)) => {
            let _ = write!(out, "{}", v6.ip());
            if v6.scope_id() != 0 {
                out.push(b'%');
                interface::push_name(v6.scope_id(), out);
            }
            (libc::AF_INET6, v6.port(), v6.flowinfo(), v6.scope_id())
        }
        None => {
            if addr.is_unix() {
                if let Some(path) = addr.as_pathname() {
                    out.extend_from_slice(path.as_os_str().as_encoded_bytes());
                } else if let Some(name) = addr.as_abstract_namespace() {
                    out.push(0);
                    out.extend_from_slice(name);
                }
            }
            (addr.family() as i32, 0, 0, 0)
        }
    };
    let host_len = (out.len() - start - RECORD_HEADER).min(255);
    out.truncate(start + RECORD_HEADER + host_len);
    let header = &mut out[start..start + RECORD_HEADER];
    header[0] = family as u8;
    header[1] = host_len as u8;
    header[2..4].copy_from_slice(&port.to_le_bytes());
    header[4..8].copy_from_slice(&flow.to_le_bytes());
    header[8..12].copy_from_slice(&scope.to_le_bytes());
    start
}

/// Encodes one address as a standalone record.
pub fn record(addr: &SockAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_HEADER + 48);
    encode(addr, &mut out);
    out
}

/// Parses an IP literal with a port into a socket address; an IPv6 literal may carry `%<interface>`
/// (a name such as `eth0`, or an index). Never resolves names: None when `host` is not a literal.
pub fn parse_ip(host: &str, port: u16) -> io::Result<Option<SocketAddr>> {
    let (ip_text, scope) = match host.split_once('%') {
        Some((ip, scope)) => (ip, Some(scope)),
        None => (host, None),
    };
    let Ok(ip) = ip_text.parse::<IpAddr>() else { return Ok(None) };
    Ok(Some(match (ip, scope) {
        (IpAddr::V4(v4), None) => SocketAddr::from((v4, port)),
        (IpAddr::V4(_), Some(_)) => return Ok(None),
        (IpAddr::V6(v6), scope) => {
            let scope_id = scope.map(interface::index).transpose()?.unwrap_or(0);
            SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope_id))
        }
    }))
}

/// Decoded form, for Rust callers and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub family: i32,
    pub host: Vec<u8>,
    pub port: u16,
    pub flow_info: u32,
    pub scope_id: u32,
}

/// Reads the record at `offset`; returns it and its total length.
pub fn decode(buf: &[u8], offset: usize) -> Option<(Record, usize)> {
    let h = buf.get(offset..offset + RECORD_HEADER)?;
    let len = h[1] as usize;
    let host = buf.get(offset + RECORD_HEADER..offset + RECORD_HEADER + len)?.to_vec();
    Some((
        Record {
            family: h[0] as i32,
            host,
            port: u16::from_le_bytes([h[2], h[3]]),
            flow_info: u32::from_le_bytes([h[4], h[5], h[6], h[7]]),
            scope_id: u32::from_le_bytes([h[8], h[9], h[10], h[11]]),
        },
        RECORD_HEADER + len,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_literals_and_scopes_never_names() {
        assert_eq!(parse_ip("127.0.0.1", 80).unwrap(), Some("127.0.0.1:80".parse().unwrap()));
        let scoped = parse_ip("fe80::1%lo", 9).unwrap().unwrap();
        assert!(matches!(scoped, SocketAddr::V6(v6) if v6.scope_id() > 0));
        assert_eq!(parse_ip("localhost", 1).unwrap(), None);
        assert_eq!(parse_ip("127.0.0.1%lo", 1).unwrap(), None);
        assert!(parse_ip("fe80::1%no-such-if", 1).is_err());
    }

    #[test]
    fn v4_v6_unix_round_trip() {
        let v4: SockAddr = "127.0.0.1:8080".parse::<SocketAddr>().unwrap().into();
        let (r, n) = decode(&record(&v4), 0).unwrap();
        assert_eq!((r.family, r.host.as_slice(), r.port, n), (libc::AF_INET, &b"127.0.0.1"[..], 8080, 21));
        let v6: SockAddr = "[::1]:9".parse::<SocketAddr>().unwrap().into();
        let (r, _) = decode(&record(&v6), 0).unwrap();
        assert_eq!((r.family, r.host.as_slice(), r.port), (libc::AF_INET6, &b"::1"[..], 9));
        let unix = SockAddr::unix("/tmp/x.sock").unwrap();
        let (r, _) = decode(&record(&unix), 0).unwrap();
        assert_eq!((r.family, r.host.as_slice()), (libc::AF_UNIX, &b"/tmp/x.sock"[..]));
    }
}
