//! Version 1: one US-ASCII line, `PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n` or
//! `PROXY UNKNOWN[ anything]\r\n`, at most 107 bytes with the CRLF.

use super::error::ProxyError;
use super::header::{as_ipv6, Addresses, Command, Header, SocketType, Version};
use super::header::Parsed;
use super::tlv::Tlvs;
use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::str::FromStr;

/// What every v1 header starts with.
pub(crate) const SIGNATURE: &[u8] = b"PROXY ";
/// The longest line the spec allows, CRLF included (`PROXY UNKNOWN` with two full IPv6 addresses
/// and ports).
pub const MAX_LINE_LEN: usize = 107;

/// `buf` agrees with `SIGNATURE` so far. The line is decoded only once its CRLF is there (the spec
/// says so); before that the bytes are checked only to fail early on what no line can contain.
pub(crate) fn parse(buf: &[u8], max_size: usize) -> Result<Parsed, ProxyError> {
    let window = &buf[..buf.len().min(MAX_LINE_LEN)];
    let Some(cr) = window.windows(2).position(|pair| pair == b"\r\n") else {
        if window.len() == MAX_LINE_LEN {
            return Err(ProxyError::V1LineTooLong);
        }
        check_partial_line(buf)?;
        return Ok(Parsed::Incomplete);
    };
    let consumed = cr + 2;
    if consumed > max_size {
        return Err(ProxyError::TooLarge);
    }
    // `buf` agrees with "PROXY " and holds a CR, so it holds all of "PROXY " before the CR.
    let addresses = parse_line(&buf[SIGNATURE.len()..cr])?;
    let header = Header { version: Version::V1, command: Command::Proxy, addresses, tlvs: Tlvs::new() };
    Ok(Parsed::Complete { header, consumed })
}

/// Decodes what lies between `"PROXY "` and the CRLF.
fn parse_line(line: &[u8]) -> Result<Addresses, ProxyError> {
    if let Some(rest) = line.strip_prefix(b"UNKNOWN") {
        // The receiver must ignore whatever follows UNKNOWN, but UNKNOWN must be the whole word.
        return match rest.first() {
            None | Some(b' ') => Ok(Addresses::Unspecified),
            Some(_) => Err(ProxyError::V1Malformed),
        };
    }
    let (ipv6, rest) = if let Some(rest) = line.strip_prefix(b"TCP4 ") {
        (false, rest)
    } else if let Some(rest) = line.strip_prefix(b"TCP6 ") {
        (true, rest)
    } else {
        return Err(ProxyError::V1Malformed);
    };
    // Exactly one space between fields: `split` turns a doubled space into an empty field, which
    // no address or port parses.
    let mut fields = rest.split(|&b| b == b' ');
    let (Some(src), Some(dst), Some(sport), Some(dport), None) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(ProxyError::V1Malformed);
    };
    let sport = parse_port(sport).ok_or(ProxyError::V1Malformed)?;
    let dport = parse_port(dport).ok_or(ProxyError::V1Malformed)?;
    let (source, destination) = if ipv6 {
        let src: Ipv6Addr = parse_ip(src)?;
        let dst: Ipv6Addr = parse_ip(dst)?;
        (SocketAddrV6::new(src, sport, 0, 0).into(), SocketAddrV6::new(dst, dport, 0, 0).into())
    } else {
        let src: Ipv4Addr = parse_ip(src)?;
        let dst: Ipv4Addr = parse_ip(dst)?;
        (SocketAddrV4::new(src, sport).into(), SocketAddrV4::new(dst, dport).into())
    };
    Ok(Addresses::Ip { socket_type: SocketType::Stream, source, destination })
}

/// std's parsers match the spec's forms: IPv4 is exactly four decimal numbers 0..=255 without
/// leading zeros; IPv6 is the textual form (no brackets, no zone).
fn parse_ip<T: FromStr>(field: &[u8]) -> Result<T, ProxyError> {
    let text = std::str::from_utf8(field).map_err(|_| ProxyError::V1Malformed)?;
    text.parse().map_err(|_| ProxyError::V1Malformed)
}

/// A decimal port 0..=65535 with no leading zero (except `0` itself) and no sign.
fn parse_port(field: &[u8]) -> Option<u16> {
    let leading_zero = field.len() > 1 && field[0] == b'0';
    if field.is_empty() || field.len() > 5 || leading_zero || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = field.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(value).ok()
}

/// Fails early on a line still waiting for its CRLF that no more bytes could make valid: a family
/// other than TCP4/TCP6/UNKNOWN, or (for TCP4/TCP6) a byte that is in no address or port, a
/// doubled or leading space, a fifth field, or a CR or LF not forming the CRLF. Every prefix of a
/// valid line passes. After UNKNOWN anything goes, as the spec says.
fn check_partial_line(buf: &[u8]) -> Result<(), ProxyError> {
    let Some(rest) = buf.get(SIGNATURE.len()..) else { return Ok(()) };
    const FAMILIES: [&[u8]; 3] = [b"TCP4 ", b"TCP6 ", b"UNKNOWN"];
    let fields = match FAMILIES.iter().find(|family| rest.starts_with(family)) {
        Some(&family) if family == b"UNKNOWN" => {
            return match rest.get(family.len()) {
                None | Some(b' ' | b'\r') => Ok(()),
                Some(_) => Err(ProxyError::V1Malformed),
            };
        }
        Some(family) => &rest[family.len()..],
        None if FAMILIES.iter().any(|family| family.starts_with(rest)) => return Ok(()),
        None => return Err(ProxyError::V1Malformed),
    };
    let (body, ends_in_cr) = match fields.split_last() {
        Some((b'\r', body)) => (body, true),
        _ => (fields, false),
    };
    let allowed = |b: &u8| b.is_ascii_hexdigit() || matches!(b, b'.' | b':' | b' ');
    let spaces = body.iter().filter(|&&b| b == b' ').count();
    let misplaced_space = body.first() == Some(&b' ')
        || body.windows(2).any(|pair| pair == b"  ")
        || (ends_in_cr && body.last() == Some(&b' '));
    if !body.iter().all(allowed) || spaces > 3 || misplaced_space {
        return Err(ProxyError::V1Malformed);
    }
    Ok(())
}

/// Appends the v1 line for `header`. Only a PROXY header with TCP addresses has a v1 form; any
/// other (LOCAL, UDP, UNIX, unspecified) is sent as `PROXY UNKNOWN\r\n`, which tells the receiver
/// to use the real connection's endpoints. A mixed IPv4/IPv6 pair goes as TCP6 with the IPv4
/// address mapped (`::ffff:a.b.c.d`). TLVs have no v1 form and are not sent. Allocates nothing
/// beyond `out`'s growth (std formats addresses without allocating).
pub fn encode_v1(header: &Header, out: &mut Vec<u8>) {
    let (source, destination) = match (header.command, header.addresses) {
        (Command::Proxy, Addresses::Ip { socket_type: SocketType::Stream, source, destination }) => {
            (source, destination)
        }
        _ => {
            out.extend_from_slice(b"PROXY UNKNOWN\r\n");
            return;
        }
    };
    // Writing into a Vec cannot fail.
    let _ = match (source, destination) {
        (SocketAddr::V4(src), SocketAddr::V4(dst)) => {
            write!(out, "PROXY TCP4 {} {} {} {}\r\n", src.ip(), dst.ip(), src.port(), dst.port())
        }
        _ => {
            let (src, dst) = (as_ipv6(source), as_ipv6(destination));
            write!(out, "PROXY TCP6 {} {} {} {}\r\n", src.ip(), dst.ip(), src.port(), dst.port())
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(parse_port(b"0"), Some(0));
        assert_eq!(parse_port(b"65535"), Some(65535));
        assert_eq!(parse_port(b"443"), Some(443));
        for bad in [&b""[..], b"00", b"0443", b"65536", b"99999", b"123456", b"+1", b"-1", b"1a", b" 1"] {
            assert_eq!(parse_port(bad), None, "{}", bad.escape_ascii());
        }
    }

    #[test]
    fn partial_lines() {
        for ok in [
            &b"PROXY "[..],
            b"PROXY T",
            b"PROXY TCP",
            b"PROXY TCP4 ",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r",
            b"PROXY TCP6 ::1 ",
            b"PROXY UNKN",
            b"PROXY UNKNOWN",
            b"PROXY UNKNOWN\r",
            b"PROXY UNKNOWN \xff\x00 junk \r \n ",
        ] {
            assert_eq!(check_partial_line(ok), Ok(()), "{}", ok.escape_ascii());
        }
        for bad in [
            &b"PROXY X"[..],
            b"PROXY TCP5",
            b"PROXY TCP4  ",
            b"PROXY TCP4 1.2.3.4  ",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ",
            b"PROXY TCP4 1.2.3.4\n",
            b"PROXY TCP4 1.2.3.4\rx",
            b"PROXY TCP4 1.2.3.4 \r",
            b"PROXY TCP4 host",
            b"PROXY UNKNOWNX",
        ] {
            assert_eq!(check_partial_line(bad), Err(ProxyError::V1Malformed), "{}", bad.escape_ascii());
        }
    }
}
