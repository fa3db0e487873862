//! What the codec refuses, as one typed enum with a short stable code per kind.

use std::fmt;

/// Why a buffer is not a PROXY protocol header (parsing), or why a header cannot be built or
/// encoded (building TLVs, `encode_v2`).
///
/// Every parse error is final: the spec says a receiver must abort the connection, never skip
/// ahead or fall back to treating the bytes as application data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyError {
    /// The first bytes are neither `"PROXY "` nor the v2 signature (decided at the first byte
    /// that disagrees).
    NotProxy,
    /// The bytes hold the whole signature of a version the options exclude.
    VersionNotAllowed,
    /// The header would be larger than `ParseOptions::max_size` (v2: known from its length field,
    /// before the rest arrives), or a TLV value or a v2 header would not fit its 16-bit length.
    TooLarge,
    /// No CRLF within the first 107 bytes of a v1 line.
    V1LineTooLong,
    /// A v1 line that does not match the grammar (family, addresses, ports, spacing, CRLF).
    V1Malformed,
    /// The v2 version nibble is not 2.
    V2BadVersion,
    /// The v2 command nibble is neither LOCAL (0) nor PROXY (1).
    V2BadCommand,
    /// A PROXY command with a family/protocol byte outside the seven the spec lists.
    V2BadFamily,
    /// The v2 length is shorter than the address block its family requires.
    V2AddressTruncated,
    /// A TLV (or an SSL sub-TLV) whose header or value runs past the end of its container.
    TlvOverrun,
    /// A registered TLV of the wrong shape: CRC32C not 4 bytes or given twice, UNIQUE_ID over
    /// 128 bytes, SSL shorter than its 5-byte fixed part.
    TlvMalformed,
    /// The CRC32C TLV does not match the checksum of the header.
    Crc32cMismatch,
}

impl ProxyError {
    /// A short stable name, for logs and for the JS side (`err.code`).
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::NotProxy => "NotProxy",
            ProxyError::VersionNotAllowed => "VersionNotAllowed",
            ProxyError::TooLarge => "TooLarge",
            ProxyError::V1LineTooLong => "V1LineTooLong",
            ProxyError::V1Malformed => "V1Malformed",
            ProxyError::V2BadVersion => "V2BadVersion",
            ProxyError::V2BadCommand => "V2BadCommand",
            ProxyError::V2BadFamily => "V2BadFamily",
            ProxyError::V2AddressTruncated => "V2AddressTruncated",
            ProxyError::TlvOverrun => "TlvOverrun",
            ProxyError::TlvMalformed => "TlvMalformed",
            ProxyError::Crc32cMismatch => "Crc32cMismatch",
        }
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ProxyError::NotProxy => "not a PROXY protocol header",
            ProxyError::VersionNotAllowed => "PROXY protocol version not allowed here",
            ProxyError::TooLarge => "PROXY protocol header too large",
            ProxyError::V1LineTooLong => "PROXY v1 line without CRLF in 107 bytes",
            ProxyError::V1Malformed => "malformed PROXY v1 line",
            ProxyError::V2BadVersion => "PROXY v2 header with a version other than 2",
            ProxyError::V2BadCommand => "PROXY v2 header with an unknown command",
            ProxyError::V2BadFamily => "PROXY v2 header with an unknown family or protocol",
            ProxyError::V2AddressTruncated => "PROXY v2 address block shorter than its family needs",
            ProxyError::TlvOverrun => "PROXY v2 TLV runs past the header",
            ProxyError::TlvMalformed => "malformed registered PROXY v2 TLV",
            ProxyError::Crc32cMismatch => "PROXY v2 CRC32C does not match",
        };
        write!(f, "{text} ({})", self.code())
    }
}

impl std::error::Error for ProxyError {}
