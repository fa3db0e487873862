//! The incremental parser's entry: which versions to accept, how much to buffer, and the
//! decision between "need more bytes", "a header" and "not a header".

use super::error::ProxyError;
use super::header::Parsed;
use super::{v1, v2};

/// Which header formats a listener accepts. The spec has the receiver configured for the protocol
/// (never guessing whether a header is there); v2 receivers are advised to accept v1 too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Versions {
    pub v1: bool,
    pub v2: bool,
}

impl Versions {
    pub const ALL: Versions = Versions { v1: true, v2: true };
    pub const V1_ONLY: Versions = Versions { v1: true, v2: false };
    pub const V2_ONLY: Versions = Versions { v1: false, v2: true };
}

/// How the parser decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParseOptions {
    pub versions: Versions,
    /// The most bytes a header may take. Past it, `TooLarge` instead of `Incomplete`, so a caller
    /// never buffers more than this waiting for a header. A v2 header is refused as soon as its
    /// length field shows it too large; a v1 line is also bounded by the spec's 107 bytes.
    pub max_size: usize,
}

/// 536 bytes: the smallest TCP segment every host must accept (576 - 40), which the spec designs
/// both formats to fit in. A v1 line takes at most 107; a v2 header 16 + its length.
pub const DEFAULT_MAX_SIZE: usize = 536;

impl Default for ParseOptions {
    fn default() -> ParseOptions {
        ParseOptions { versions: Versions::ALL, max_size: DEFAULT_MAX_SIZE }
    }
}

/// Parses the PROXY header at the start of `buf` (everything received so far on the connection).
///
/// Decides as early as the bytes allow: a first byte that cannot begin an accepted format is an
/// error at once, never `Incomplete`. It allocates only when the header carries TLVs (one copy
/// of the TLV region).
pub fn parse(buf: &[u8], opts: &ParseOptions) -> Result<Parsed, ProxyError> {
    if buf.is_empty() {
        return Ok(Parsed::Incomplete);
    }
    let parsed = if agrees_with(buf, &v2::SIGNATURE) {
        if !opts.versions.v2 {
            return Err(refused_version(buf, v2::SIGNATURE.len()));
        }
        v2::parse(buf, opts.max_size)?
    } else if agrees_with(buf, v1::SIGNATURE) {
        if !opts.versions.v1 {
            return Err(refused_version(buf, v1::SIGNATURE.len()));
        }
        v1::parse(buf, opts.max_size)?
    } else {
        return Err(ProxyError::NotProxy);
    };
    match parsed {
        // The one bound that holds whatever the format: never wait past max_size.
        Parsed::Incomplete if buf.len() >= opts.max_size => Err(ProxyError::TooLarge),
        parsed => Ok(parsed),
    }
}

/// Whether `buf` and `signature` agree on the bytes both have (an empty buffer agrees).
fn agrees_with(buf: &[u8], signature: &[u8]) -> bool {
    let n = buf.len().min(signature.len());
    buf[..n] == signature[..n]
}

/// The error for the start of an excluded format: `VersionNotAllowed` once its whole signature is
/// there to say so, `NotProxy` before (a prefix alone cannot start an accepted header either).
fn refused_version(buf: &[u8], signature_len: usize) -> ProxyError {
    if buf.len() >= signature_len {
        ProxyError::VersionNotAllowed
    } else {
        ProxyError::NotProxy
    }
}
