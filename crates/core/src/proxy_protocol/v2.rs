//! Version 2: a 16-byte binary header (signature, version/command, family/protocol, length), then
//! `length` bytes of addresses and TLVs.

use super::crc32c;
use super::error::ProxyError;
use super::header::{
    as_ipv6, Addresses, Command, Header, SocketType, Transport, UnixAddress, Version, UNIX_ADDRESS_LEN,
};
use super::header::Parsed;
use super::tlv::{self, Tlvs};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// The 12 bytes every v2 header starts with (chosen to break HTTP, TLS, SMTP, FTP... at once).
pub(crate) const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Signature, version/command, family/protocol, 16-bit length.
pub const FIXED_LEN: usize = 16;

const VERSION_2: u8 = 0x2;
const COMMAND_LOCAL: u8 = 0x0;
const COMMAND_PROXY: u8 = 0x1;

/// `buf` agrees with `SIGNATURE` so far. Each field is judged as soon as it arrives, and the whole
/// size as soon as the length does: nothing is buffered that could not become a valid header.
pub(crate) fn parse(buf: &[u8], max_size: usize) -> Result<Parsed, ProxyError> {
    let Some(&version_command) = buf.get(12) else { return Ok(Parsed::Incomplete) };
    if version_command >> 4 != VERSION_2 {
        return Err(ProxyError::V2BadVersion);
    }
    let command = match version_command & 0x0F {
        COMMAND_LOCAL => Command::Local,
        COMMAND_PROXY => Command::Proxy,
        _ => return Err(ProxyError::V2BadCommand),
    };
    let Some(&family) = buf.get(13) else { return Ok(Parsed::Incomplete) };
    let transport = Transport::from_v2_byte(family);
    if command == Command::Proxy && transport.is_none() {
        return Err(ProxyError::V2BadFamily);
    }
    let Some(length) = buf.get(14..FIXED_LEN) else { return Ok(Parsed::Incomplete) };
    let length = u16::from_be_bytes([length[0], length[1]]) as usize;
    let total = FIXED_LEN + length;
    if total > max_size {
        return Err(ProxyError::TooLarge);
    }
    let address_len = transport.map(Transport::v2_address_len);
    // Where the TLVs start: after the family's address block. LOCAL ignores its block and family
    // (the spec); when they do not say where the block ends, there are no TLVs to read.
    let tlv_start = match (command, address_len) {
        (_, Some(needed)) if length >= needed => Some(FIXED_LEN + needed),
        (Command::Proxy, _) => return Err(ProxyError::V2AddressTruncated),
        (Command::Local, _) => None,
    };
    let Some(header_bytes) = buf.get(..total) else { return Ok(Parsed::Incomplete) };

    let tlvs = match tlv_start {
        Some(start) => match read_tlvs(header_bytes, start) {
            Ok(tlvs) => tlvs,
            // A LOCAL header must be accepted whatever follows its (ignored) address block, unless
            // a well-formed checksum says the header is corrupt.
            Err(ProxyError::TlvOverrun | ProxyError::TlvMalformed) if command == Command::Local => Tlvs::new(),
            Err(err) => return Err(err),
        },
        None => Tlvs::new(),
    };
    let addresses = match (command, transport) {
        (Command::Proxy, Some(transport)) => decode_addresses(transport, &header_bytes[FIXED_LEN..]),
        _ => Addresses::Unspecified,
    };
    let header = Header { version: Version::V2, command, addresses, tlvs };
    Ok(Parsed::Complete { header, consumed: total })
}

/// Validates the TLVs from `start` to the end of the header, checks the CRC32C if one is there,
/// and keeps a copy of the region.
fn read_tlvs(header_bytes: &[u8], start: usize) -> Result<Tlvs, ProxyError> {
    let region = &header_bytes[start..];
    if let Some(at) = tlv::validate(region)? {
        let field = start + at;
        let sent = u32::from_be_bytes([
            header_bytes[field],
            header_bytes[field + 1],
            header_bytes[field + 2],
            header_bytes[field + 3],
        ]);
        if crc32c::with_field_zeroed(header_bytes, field) != sent {
            return Err(ProxyError::Crc32cMismatch);
        }
    }
    Ok(if region.is_empty() { Tlvs::new() } else { Tlvs::from_validated(region) })
}

/// Reads the address block (`block` starts right after the fixed 16 bytes and holds at least
/// `transport.v2_address_len()` bytes, checked by the caller).
fn decode_addresses(transport: Transport, block: &[u8]) -> Addresses {
    let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
    match transport {
        Transport::Unspec => Addresses::Unspecified,
        Transport::Tcp4 | Transport::Udp4 => {
            let ip = |at: usize| Ipv4Addr::new(block[at], block[at + 1], block[at + 2], block[at + 3]);
            Addresses::Ip {
                socket_type: socket_type_of(transport),
                source: SocketAddr::V4(SocketAddrV4::new(ip(0), port(8))),
                destination: SocketAddr::V4(SocketAddrV4::new(ip(4), port(10))),
            }
        }
        Transport::Tcp6 | Transport::Udp6 => {
            let ip = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&block[at..at + 16]);
                Ipv6Addr::from(octets)
            };
            Addresses::Ip {
                socket_type: socket_type_of(transport),
                source: SocketAddr::V6(SocketAddrV6::new(ip(0), port(32), 0, 0)),
                destination: SocketAddr::V6(SocketAddrV6::new(ip(16), port(34), 0, 0)),
            }
        }
        Transport::UnixStream | Transport::UnixDgram => {
            let unix = |at: usize| {
                let mut raw = [0u8; UNIX_ADDRESS_LEN];
                raw.copy_from_slice(&block[at..at + UNIX_ADDRESS_LEN]);
                UnixAddress::from_raw(raw)
            };
            Addresses::Unix {
                socket_type: socket_type_of(transport),
                source: unix(0),
                destination: unix(UNIX_ADDRESS_LEN),
            }
        }
    }
}

fn socket_type_of(transport: Transport) -> SocketType {
    match transport {
        Transport::Udp4 | Transport::Udp6 | Transport::UnixDgram => SocketType::Datagram,
        _ => SocketType::Stream,
    }
}

/// Appends the v2 header for `header`: its addresses, then its TLVs as they are; if the TLVs hold
/// a CRC32C (`Tlvs::push_crc32c`), its value is computed over the finished header.
///
/// A LOCAL header is sent as the spec advises senders: family UNSPEC and no addresses (its TLVs
/// still follow). A mixed IPv4/IPv6 pair goes as IPv6 with the IPv4 address mapped. Fails only
/// with `TooLarge` when addresses and TLVs exceed the 16-bit length; `out` is then unchanged.
/// Allocates nothing beyond `out`'s growth (reserved once).
pub fn encode_v2(header: &Header, out: &mut Vec<u8>) -> Result<(), ProxyError> {
    let (command, addresses) = match header.command {
        Command::Local => (COMMAND_LOCAL, Addresses::Unspecified),
        Command::Proxy => (COMMAND_PROXY, header.addresses),
    };
    let transport = addresses.transport();
    let tlv_bytes = header.tlvs.as_bytes();
    let length = u16::try_from(transport.v2_address_len() + tlv_bytes.len()).map_err(|_| ProxyError::TooLarge)?;

    let start = out.len();
    out.reserve(FIXED_LEN + usize::from(length));
    out.extend_from_slice(&SIGNATURE);
    out.push((VERSION_2 << 4) | command);
    out.push(transport.v2_byte());
    out.extend_from_slice(&length.to_be_bytes());
    match addresses {
        Addresses::Unspecified => {}
        Addresses::Ip { source: SocketAddr::V4(src), destination: SocketAddr::V4(dst), .. } => {
            out.extend_from_slice(&src.ip().octets());
            out.extend_from_slice(&dst.ip().octets());
            out.extend_from_slice(&src.port().to_be_bytes());
            out.extend_from_slice(&dst.port().to_be_bytes());
        }
        Addresses::Ip { source, destination, .. } => {
            let (src, dst) = (as_ipv6(source), as_ipv6(destination));
            out.extend_from_slice(&src.ip().octets());
            out.extend_from_slice(&dst.ip().octets());
            out.extend_from_slice(&src.port().to_be_bytes());
            out.extend_from_slice(&dst.port().to_be_bytes());
        }
        Addresses::Unix { source, destination, .. } => {
            out.extend_from_slice(source.as_raw());
            out.extend_from_slice(destination.as_raw());
        }
    }
    let tlv_start = out.len();
    out.extend_from_slice(tlv_bytes);
    if let Some(at) = header.tlvs.crc32c_offset() {
        let field = tlv_start + at;
        let checksum = crc32c::with_field_zeroed(&out[start..], field - start);
        out[field..field + 4].copy_from_slice(&checksum.to_be_bytes());
    }
    Ok(())
}
