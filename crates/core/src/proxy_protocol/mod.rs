//! The PROXY protocol, versions 1 and 2 (HAProxy's `doc/proxy-protocol.txt`): a pure codec, with
//! no I/O, for accepted connections that start with a header and for a proxy that sends one.
//!
//! - `parse` reads a header from the bytes received so far: `Incomplete` (wait for more),
//!   `Complete { header, consumed }` (the rest of the buffer is application data), or a typed
//!   error, decided as soon as the bytes allow. It never guesses: bytes that cannot begin an
//!   accepted header are an error at once, as the spec requires.
//! - `encode_v1` / `encode_v2` append a header to an output buffer, allocating nothing else.
//!
//! Choices where the spec leaves room (written down here once):
//! - v1 `UNKNOWN` parses as a PROXY header with `Addresses::Unspecified`; a LOCAL v2 header parses
//!   with `Addresses::Unspecified` whatever its family and address block.
//! - v2 TLVs are read after the address block of the family. LOCAL headers keep their TLVs when
//!   the family says where the block ends and the TLVs are well formed; otherwise their payload
//!   is ignored. The one error a LOCAL header's payload can cause is a CRC32C that does not match.
//! - A v2 family/protocol byte outside the seven the spec lists (0x00, 0x11, 0x12, 0x21, 0x22,
//!   0x31, 0x32) is refused for PROXY.
//! - 1 or 2 bytes left after the last TLV are a truncated TLV (`TlvOverrun`), as in HAProxy.
//! - v1 has no UDP, UNIX or LOCAL: those headers encode as `PROXY UNKNOWN\r\n`. A mixed
//!   IPv4/IPv6 pair encodes as IPv6 (the IPv4 address mapped), in both versions.
//! - With a version excluded, its first bytes are `NotProxy` until its whole signature is in,
//!   then `VersionNotAllowed`.

#![forbid(unsafe_code)]

mod crc32c;
mod error;
mod header;
mod parse;
pub mod tlv;
mod v1;
mod v2;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

pub use error::ProxyError;
pub use header::{Addresses, Command, Header, Parsed, SocketType, Transport, UnixAddress, Version, UNIX_ADDRESS_LEN};
pub use parse::{parse, ParseOptions, Versions, DEFAULT_MAX_SIZE};
pub use tlv::{Ssl, Tlv, TlvIter, Tlvs};
pub use v1::{encode_v1, MAX_LINE_LEN as V1_MAX_LINE_LEN};
pub use v2::{encode_v2, FIXED_LEN as V2_FIXED_LEN};

/// The v2 signature, for callers that sniff (the spec forbids guessing whether a header is there;
/// this is for tests and diagnostics).
pub const V2_SIGNATURE: [u8; 12] = v2::SIGNATURE;
