//! v2 TLVs (type, 16-bit big-endian length, value) after the address block: the registered
//! types, their validation, and a list kept in its wire form.
//!
//! `Tlvs` holds the TLV region exactly as sent, in one `Vec<u8>`: parsing copies it once (the only
//! allocation a parse makes, and none when there are no TLVs), encoding copies it back, and
//! lookups walk it. Every `Tlvs` is valid by construction (parsed, or built through `push*`), so
//! a parsed header re-encodes into one that parses.

use super::error::ProxyError;
use std::fmt;

pub const ALPN: u8 = 0x01;
pub const AUTHORITY: u8 = 0x02;
pub const CRC32C: u8 = 0x03;
pub const NOOP: u8 = 0x04;
pub const UNIQUE_ID: u8 = 0x05;
pub const SSL: u8 = 0x20;
pub const SSL_VERSION: u8 = 0x21;
pub const SSL_CN: u8 = 0x22;
pub const SSL_CIPHER: u8 = 0x23;
pub const SSL_SIG_ALG: u8 = 0x24;
pub const SSL_KEY_ALG: u8 = 0x25;
pub const NETNS: u8 = 0x30;

/// Bits of the SSL TLV's `client` field.
pub const CLIENT_SSL: u8 = 0x01;
pub const CLIENT_CERT_CONN: u8 = 0x02;
pub const CLIENT_CERT_SESS: u8 = 0x04;

/// Type byte and 16-bit length.
pub const TLV_HEADER_LEN: usize = 3;
/// The spec caps a unique ID at 128 bytes.
pub const UNIQUE_ID_MAX: usize = 128;
/// The SSL TLV's fixed part: `client` (1 byte) and `verify` (4 bytes).
const SSL_FIXED_LEN: usize = 5;

/// One TLV, borrowed from its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub kind: u8,
    pub value: &'a [u8],
}

/// The TLVs of a v2 header, in order, in their wire form.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Tlvs {
    bytes: Vec<u8>,
}

impl Tlvs {
    pub const fn new() -> Tlvs {
        Tlvs { bytes: Vec::new() }
    }

    /// A copy of a region `validate` accepted.
    pub(crate) fn from_validated(region: &[u8]) -> Tlvs {
        Tlvs { bytes: region.to_vec() }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The TLV region as sent: what `encode_v2` writes after the addresses.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn iter(&self) -> TlvIter<'_> {
        TlvIter { rest: &self.bytes }
    }

    /// The value of the first TLV of this type.
    pub fn get(&self, kind: u8) -> Option<&[u8]> {
        self.iter().find(|tlv| tlv.kind == kind).map(|tlv| tlv.value)
    }

    /// Appends a TLV. Registered types must have their spec shape (`TlvMalformed` otherwise: a
    /// CRC32C is 4 bytes and appears once, a unique ID is at most 128 bytes, an SSL value is its
    /// fixed part then well-formed sub-TLVs); a value over 65535 bytes is `TooLarge`.
    pub fn push(&mut self, kind: u8, value: &[u8]) -> Result<(), ProxyError> {
        if value.len() > u16::MAX as usize {
            return Err(ProxyError::TooLarge);
        }
        check_registered_shape(kind, value)?;
        if kind == CRC32C && self.get(CRC32C).is_some() {
            return Err(ProxyError::TlvMalformed);
        }
        push_raw(&mut self.bytes, kind, value);
        Ok(())
    }

    /// Asks `encode_v2` for a checksum: appends a CRC32C TLV whose value the encoder computes.
    /// Does nothing if there is one already.
    pub fn push_crc32c(&mut self) {
        if self.get(CRC32C).is_none() {
            push_raw(&mut self.bytes, CRC32C, &[0; 4]);
        }
    }

    /// Appends an SSL TLV: the `client` bits (`CLIENT_*`), `verify` (0 when a client certificate
    /// was presented and verified), then the sub-TLVs (`SSL_VERSION`, `SSL_CN`, ...).
    pub fn push_ssl(&mut self, client: u8, verify: u32, sub_tlvs: &[Tlv<'_>]) -> Result<(), ProxyError> {
        let sub_len: usize = sub_tlvs.iter().map(|sub| TLV_HEADER_LEN + sub.value.len()).sum();
        let len = SSL_FIXED_LEN + sub_len;
        if len > u16::MAX as usize {
            return Err(ProxyError::TooLarge);
        }
        self.bytes.reserve(TLV_HEADER_LEN + len);
        self.bytes.push(SSL);
        self.bytes.extend_from_slice(&(len as u16).to_be_bytes());
        self.bytes.push(client);
        self.bytes.extend_from_slice(&verify.to_be_bytes());
        for sub in sub_tlvs {
            push_raw(&mut self.bytes, sub.kind, sub.value);
        }
        Ok(())
    }

    /// Where the CRC32C value sits in `as_bytes()`, for the encoder to fill.
    pub(crate) fn crc32c_offset(&self) -> Option<usize> {
        let mut offset = 0;
        for tlv in self.iter() {
            if tlv.kind == CRC32C {
                return Some(offset + TLV_HEADER_LEN);
            }
            offset += TLV_HEADER_LEN + tlv.value.len();
        }
        None
    }

    /// ALPN (0x01): the negotiated application protocol, e.g. `h2`.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.get(ALPN)
    }

    /// AUTHORITY (0x02): the host name the client asked for (TLS SNI), UTF-8 by the spec; the
    /// bytes are given as received.
    pub fn authority(&self) -> Option<&[u8]> {
        self.get(AUTHORITY)
    }

    /// CRC32C (0x03): the checksum as sent. A parsed header's checksum has been verified.
    pub fn crc32c(&self) -> Option<u32> {
        let value = self.get(CRC32C)?;
        Some(u32::from_be_bytes(value.try_into().ok()?))
    }

    /// How many NOOP (0x04) TLVs there are (padding; their content means nothing).
    pub fn noop_count(&self) -> usize {
        self.iter().filter(|tlv| tlv.kind == NOOP).count()
    }

    /// UNIQUE_ID (0x05): an opaque connection id of at most 128 bytes.
    pub fn unique_id(&self) -> Option<&[u8]> {
        self.get(UNIQUE_ID)
    }

    /// SSL (0x20): how the client connected, with its sub-TLVs.
    pub fn ssl(&self) -> Option<Ssl<'_>> {
        Ssl::new(self.get(SSL)?)
    }

    /// NETNS (0x30): the network namespace's name, US-ASCII.
    pub fn netns(&self) -> Option<&[u8]> {
        self.get(NETNS)
    }
}

impl fmt::Debug for Tlvs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a Tlvs {
    type Item = Tlv<'a>;
    type IntoIter = TlvIter<'a>;
    fn into_iter(self) -> TlvIter<'a> {
        self.iter()
    }
}

/// Walks a TLV region. Stops at the first TLV that does not fit (none does not, in a validated
/// region; stopping keeps it panic-free on any bytes).
#[derive(Debug, Clone)]
pub struct TlvIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Tlv<'a>;

    fn next(&mut self) -> Option<Tlv<'a>> {
        let (tlv, rest) = split_first_tlv(self.rest).ok()??;
        self.rest = rest;
        Some(tlv)
    }
}

/// The SSL TLV's value, read in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ssl<'a> {
    /// `CLIENT_*` bits.
    pub client: u8,
    /// 0 if the client presented a certificate and it was verified, non-zero otherwise.
    pub verify: u32,
    sub_tlvs: &'a [u8],
}

impl<'a> Ssl<'a> {
    fn new(value: &'a [u8]) -> Option<Ssl<'a>> {
        if value.len() < SSL_FIXED_LEN {
            return None;
        }
        let verify = u32::from_be_bytes([value[1], value[2], value[3], value[4]]);
        Some(Ssl { client: value[0], verify, sub_tlvs: &value[SSL_FIXED_LEN..] })
    }

    /// The client connected over TLS (`CLIENT_SSL`).
    pub fn over_tls(&self) -> bool {
        self.client & CLIENT_SSL != 0
    }

    /// A client certificate was presented and verified.
    pub fn certificate_verified(&self) -> bool {
        self.client & (CLIENT_CERT_CONN | CLIENT_CERT_SESS) != 0 && self.verify == 0
    }

    pub fn sub_tlvs(&self) -> TlvIter<'a> {
        TlvIter { rest: self.sub_tlvs }
    }

    fn sub(&self, kind: u8) -> Option<&'a [u8]> {
        self.sub_tlvs().find(|tlv| tlv.kind == kind).map(|tlv| tlv.value)
    }

    /// The TLS version, e.g. `TLSv1.3`.
    pub fn version(&self) -> Option<&'a [u8]> {
        self.sub(SSL_VERSION)
    }

    /// The client certificate's Common Name.
    pub fn common_name(&self) -> Option<&'a [u8]> {
        self.sub(SSL_CN)
    }

    /// The cipher, e.g. `ECDHE-RSA-AES128-GCM-SHA256`.
    pub fn cipher(&self) -> Option<&'a [u8]> {
        self.sub(SSL_CIPHER)
    }

    /// The algorithm that signed the frontend's certificate, e.g. `RSA-SHA256`.
    pub fn signature_algorithm(&self) -> Option<&'a [u8]> {
        self.sub(SSL_SIG_ALG)
    }

    /// The algorithm of the frontend certificate's key, e.g. `RSA2048`.
    pub fn key_algorithm(&self) -> Option<&'a [u8]> {
        self.sub(SSL_KEY_ALG)
    }
}

/// Checks a received TLV region: each TLV within the region, registered types of the right
/// shape, at most one CRC32C. Returns the offset in `region` of the CRC32C value, if any, for the
/// caller to verify against the whole header.
pub(crate) fn validate(region: &[u8]) -> Result<Option<usize>, ProxyError> {
    let mut crc_at = None;
    let mut rest = region;
    while let Some((tlv, after)) = split_first_tlv(rest)? {
        check_registered_shape(tlv.kind, tlv.value)?;
        if tlv.kind == CRC32C {
            if crc_at.is_some() {
                return Err(ProxyError::TlvMalformed);
            }
            crc_at = Some(region.len() - rest.len() + TLV_HEADER_LEN);
        }
        rest = after;
    }
    Ok(crc_at)
}

/// The first TLV of `bytes` and what follows it; `None` at the end; `TlvOverrun` if the TLV's
/// header or value does not fit (1 or 2 trailing bytes are a truncated TLV header, as HAProxy
/// also judges them).
fn split_first_tlv(bytes: &[u8]) -> Result<Option<(Tlv<'_>, &[u8])>, ProxyError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    if bytes.len() < TLV_HEADER_LEN {
        return Err(ProxyError::TlvOverrun);
    }
    let len = u16::from_be_bytes([bytes[1], bytes[2]]) as usize;
    let end = TLV_HEADER_LEN + len;
    if bytes.len() < end {
        return Err(ProxyError::TlvOverrun);
    }
    Ok(Some((Tlv { kind: bytes[0], value: &bytes[TLV_HEADER_LEN..end] }, &bytes[end..])))
}

/// The spec's constraints on registered types; other types (NOOP, custom, experimental, future)
/// may hold anything.
fn check_registered_shape(kind: u8, value: &[u8]) -> Result<(), ProxyError> {
    match kind {
        CRC32C if value.len() != 4 => Err(ProxyError::TlvMalformed),
        UNIQUE_ID if value.len() > UNIQUE_ID_MAX => Err(ProxyError::TlvMalformed),
        SSL => {
            if value.len() < SSL_FIXED_LEN {
                return Err(ProxyError::TlvMalformed);
            }
            let mut rest = &value[SSL_FIXED_LEN..];
            while let Some((_, after)) = split_first_tlv(rest)? {
                rest = after;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Appends one TLV; the caller has checked `value` fits 16 bits.
fn push_raw(out: &mut Vec<u8>, kind: u8, value: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_then_read_back() {
        let mut tlvs = Tlvs::new();
        tlvs.push(ALPN, b"h2").unwrap();
        tlvs.push(AUTHORITY, b"example.com").unwrap();
        tlvs.push(NOOP, &[0; 3]).unwrap();
        tlvs.push(UNIQUE_ID, &[7; 128]).unwrap();
        tlvs.push(NETNS, b"blue").unwrap();
        tlvs.push(0xE0, b"custom").unwrap();
        let subs = [Tlv { kind: SSL_VERSION, value: b"TLSv1.3" }, Tlv { kind: SSL_CN, value: b"client" }];
        tlvs.push_ssl(CLIENT_SSL | CLIENT_CERT_CONN, 0, &subs).unwrap();
        tlvs.push_crc32c();
        tlvs.push_crc32c();

        assert_eq!(tlvs.alpn(), Some(&b"h2"[..]));
        assert_eq!(tlvs.authority(), Some(&b"example.com"[..]));
        assert_eq!(tlvs.noop_count(), 1);
        assert_eq!(tlvs.unique_id(), Some(&[7u8; 128][..]));
        assert_eq!(tlvs.netns(), Some(&b"blue"[..]));
        assert_eq!(tlvs.get(0xE0), Some(&b"custom"[..]));
        assert_eq!(tlvs.crc32c(), Some(0));
        assert_eq!(tlvs.iter().filter(|t| t.kind == CRC32C).count(), 1);
        let ssl = tlvs.ssl().unwrap();
        assert!(ssl.over_tls() && ssl.certificate_verified());
        assert_eq!(ssl.version(), Some(&b"TLSv1.3"[..]));
        assert_eq!(ssl.common_name(), Some(&b"client"[..]));
        assert_eq!(ssl.cipher(), None);
        assert_eq!(ssl.sub_tlvs().count(), 2);
        assert!(validate(tlvs.as_bytes()).unwrap().is_some());
    }

    #[test]
    fn push_refuses_wrong_shapes() {
        let mut tlvs = Tlvs::new();
        assert_eq!(tlvs.push(CRC32C, &[0; 3]), Err(ProxyError::TlvMalformed));
        assert_eq!(tlvs.push(UNIQUE_ID, &[0; 129]), Err(ProxyError::TlvMalformed));
        assert_eq!(tlvs.push(SSL, &[0; 4]), Err(ProxyError::TlvMalformed));
        assert_eq!(tlvs.push(SSL, &[1, 0, 0, 0, 0, SSL_CN, 0, 9, b'x']), Err(ProxyError::TlvOverrun));
        assert_eq!(tlvs.push(NOOP, &vec![0; 65536]), Err(ProxyError::TooLarge));
        tlvs.push(CRC32C, &[0; 4]).unwrap();
        assert_eq!(tlvs.push(CRC32C, &[0; 4]), Err(ProxyError::TlvMalformed));
        assert!(tlvs.push(NOOP, &vec![0; 65535]).is_ok());
    }

    #[test]
    fn validate_finds_overruns_and_the_checksum() {
        assert_eq!(validate(&[]), Ok(None));
        assert_eq!(validate(&[NOOP]), Err(ProxyError::TlvOverrun));
        assert_eq!(validate(&[NOOP, 0]), Err(ProxyError::TlvOverrun));
        assert_eq!(validate(&[NOOP, 0, 2, 1]), Err(ProxyError::TlvOverrun));
        assert_eq!(validate(&[NOOP, 0, 0, CRC32C, 0, 4, 1, 2, 3, 4]), Ok(Some(6)));
        assert_eq!(validate(&[CRC32C, 0, 4, 1, 2, 3, 4, CRC32C, 0, 4, 1, 2, 3, 4]), Err(ProxyError::TlvMalformed));
        assert_eq!(validate(&[CRC32C, 0, 2, 1, 2]), Err(ProxyError::TlvMalformed));
    }
}
