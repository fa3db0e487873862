//! The decoded header: what the proxy says about the connection it relays.

use super::tlv::Tlvs;
use std::fmt;
use std::net::{SocketAddr, SocketAddrV6};

/// The wire format a header came in (parsing) or is meant for. The encoders do not read it: the
/// function called (`encode_v1` or `encode_v2`) picks the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V1,
    V2,
}

/// Whether the connection is relayed (PROXY) or the proxy's own, such as a health check (LOCAL:
/// the receiver uses the real endpoints). v1 has no LOCAL; its nearest form is `UNKNOWN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Local,
    Proxy,
}

/// SOCK_STREAM or SOCK_DGRAM: TCP or UDP for IP, stream or datagram for UNIX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketType {
    Stream,
    Datagram,
}

/// The transport family as the spec names it (v2's family/protocol byte; v1 knows TCP4, TCP6 and
/// UNKNOWN, which maps to `Unspec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp4,
    Tcp6,
    Udp4,
    Udp6,
    UnixStream,
    UnixDgram,
    Unspec,
}

impl Transport {
    /// The v2 family/protocol byte (`0x11` for TCP over IPv4, ...).
    pub fn v2_byte(self) -> u8 {
        match self {
            Transport::Unspec => 0x00,
            Transport::Tcp4 => 0x11,
            Transport::Udp4 => 0x12,
            Transport::Tcp6 => 0x21,
            Transport::Udp6 => 0x22,
            Transport::UnixStream => 0x31,
            Transport::UnixDgram => 0x32,
        }
    }

    /// The transport a v2 family/protocol byte names, if it is one of the seven the spec lists.
    pub fn from_v2_byte(byte: u8) -> Option<Transport> {
        Some(match byte {
            0x00 => Transport::Unspec,
            0x11 => Transport::Tcp4,
            0x12 => Transport::Udp4,
            0x21 => Transport::Tcp6,
            0x22 => Transport::Udp6,
            0x31 => Transport::UnixStream,
            0x32 => Transport::UnixDgram,
            _ => return None,
        })
    }

    /// Bytes of v2 address block this transport requires (source and destination, then ports).
    pub fn v2_address_len(self) -> usize {
        match self {
            Transport::Unspec => 0,
            Transport::Tcp4 | Transport::Udp4 => 2 * 4 + 2 * 2,
            Transport::Tcp6 | Transport::Udp6 => 2 * 16 + 2 * 2,
            Transport::UnixStream | Transport::UnixDgram => 2 * UNIX_ADDRESS_LEN,
        }
    }
}

/// Bytes of one UNIX address in v2: the size of `sun_path`.
pub const UNIX_ADDRESS_LEN: usize = 108;

/// A UNIX socket address as v2 carries it: the 108 bytes of `sun_path`, NUL-padded. Kept whole
/// (no allocation, and an abstract name's exact bytes survive a round trip).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnixAddress([u8; UNIX_ADDRESS_LEN]);

impl UnixAddress {
    /// The address of `path` (a pathname, or an abstract name starting with NUL), padded with
    /// NULs; `None` if it is longer than 108 bytes.
    pub fn new(path: &[u8]) -> Option<UnixAddress> {
        if path.len() > UNIX_ADDRESS_LEN {
            return None;
        }
        let mut raw = [0u8; UNIX_ADDRESS_LEN];
        raw[..path.len()].copy_from_slice(path);
        Some(UnixAddress(raw))
    }

    pub fn from_raw(raw: [u8; UNIX_ADDRESS_LEN]) -> UnixAddress {
        UnixAddress(raw)
    }

    /// All 108 bytes, as on the wire.
    pub fn as_raw(&self) -> &[u8; UNIX_ADDRESS_LEN] {
        &self.0
    }

    /// The name without its padding: a pathname up to its first NUL; an abstract name (first byte
    /// NUL) up to its last non-NUL byte (trailing NULs of an abstract name are indistinguishable
    /// from padding: `as_raw` is the exact form); empty for an unnamed socket (all zero).
    pub fn path(&self) -> &[u8] {
        let raw = &self.0;
        if raw[0] != 0 {
            let end = raw.iter().position(|&b| b == 0).unwrap_or(UNIX_ADDRESS_LEN);
            &raw[..end]
        } else {
            let end = raw.iter().rposition(|&b| b != 0).map_or(0, |last| last + 1);
            &raw[..end]
        }
    }
}

impl fmt::Debug for UnixAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnixAddress(\"{}\")", self.path().escape_ascii())
    }
}

/// Source and destination as the header carries them. The variant is the address family; the
/// socket type completes the transport (see `Addresses::transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Addresses {
    /// No usable addresses: v1 `UNKNOWN`, v2 `AF_UNSPEC`, and every LOCAL header once parsed (the
    /// spec says to ignore its address block). The receiver uses the real connection's endpoints.
    Unspecified,
    /// TCP or UDP. Both addresses should be of one family; if they are not, the encoders send
    /// both as IPv6 (an IPv4 one as `::ffff:a.b.c.d`). IPv6 flow info and scope id are not
    /// carried by the protocol and parse as 0.
    Ip { socket_type: SocketType, source: SocketAddr, destination: SocketAddr },
    /// UNIX stream or datagram sockets (v2 only).
    Unix { socket_type: SocketType, source: UnixAddress, destination: UnixAddress },
}

impl Addresses {
    /// The transport family these addresses are sent as; mixed IPv4/IPv6 pairs count as IPv6.
    pub fn transport(&self) -> Transport {
        match *self {
            Addresses::Unspecified => Transport::Unspec,
            Addresses::Ip { socket_type, source, destination } => {
                let v4 = source.is_ipv4() && destination.is_ipv4();
                match (socket_type, v4) {
                    (SocketType::Stream, true) => Transport::Tcp4,
                    (SocketType::Stream, false) => Transport::Tcp6,
                    (SocketType::Datagram, true) => Transport::Udp4,
                    (SocketType::Datagram, false) => Transport::Udp6,
                }
            }
            Addresses::Unix { socket_type: SocketType::Stream, .. } => Transport::UnixStream,
            Addresses::Unix { socket_type: SocketType::Datagram, .. } => Transport::UnixDgram,
        }
    }
}

/// A PROXY protocol header, v1 or v2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub version: Version,
    pub command: Command,
    pub addresses: Addresses,
    /// v2 only; always empty for v1 (and not sent by `encode_v1`).
    pub tlvs: Tlvs,
}

impl Header {
    /// A PROXY header for these addresses, without TLVs.
    pub fn proxy(version: Version, addresses: Addresses) -> Header {
        Header { version, command: Command::Proxy, addresses, tlvs: Tlvs::new() }
    }

    /// A LOCAL header (v2; `encode_v1` sends `UNKNOWN`), without TLVs.
    pub fn local(version: Version) -> Header {
        Header { version, command: Command::Local, addresses: Addresses::Unspecified, tlvs: Tlvs::new() }
    }

    /// A PROXY header for a TCP connection from `source` to `destination`.
    pub fn tcp(version: Version, source: SocketAddr, destination: SocketAddr) -> Header {
        Header::proxy(version, Addresses::Ip { socket_type: SocketType::Stream, source, destination })
    }

    pub fn transport(&self) -> Transport {
        self.addresses.transport()
    }

    /// The client's address, when the header relays an IP connection (PROXY command, TCP or UDP).
    /// `None` means: use the real peer address.
    pub fn source(&self) -> Option<SocketAddr> {
        match (self.command, self.addresses) {
            (Command::Proxy, Addresses::Ip { source, .. }) => Some(source),
            _ => None,
        }
    }

    /// The address the client connected to, on the same terms as `source`.
    pub fn destination(&self) -> Option<SocketAddr> {
        match (self.command, self.addresses) {
            (Command::Proxy, Addresses::Ip { destination, .. }) => Some(destination),
            _ => None,
        }
    }
}

/// `addr` as an IPv6 socket address (IPv4 as `::ffff:a.b.c.d`), for a mixed pair sent as IPv6.
pub(crate) fn as_ipv6(addr: SocketAddr) -> SocketAddrV6 {
    match addr {
        SocketAddr::V6(v6) => v6,
        SocketAddr::V4(v4) => SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0),
    }
}

/// What the bytes so far amount to.
// The header is large (two inline UNIX addresses); boxing it would allocate on every parse, and a
// `Parsed` lives only until the caller takes the header.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A valid start of a header: wait for more bytes and call again with all of them.
    Incomplete,
    /// A whole header in `buf[..consumed]`; `buf[consumed..]` is application data the caller
    /// keeps.
    Complete { header: Header, consumed: usize },
}
