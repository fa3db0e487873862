//! What `transport.tlsInfo` tells about a session.

use rustls::{CipherSuite, HandshakeKind, ProtocolVersion};

/// A snapshot of a session's negotiated parameters. Every field is `None`/empty while the
/// handshake runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// `"TLSv1.3"` or `"TLSv1.2"`, as Node's `getProtocol()` spells them.
    pub protocol: Option<&'static str>,
    /// The IANA name (`TLS_AES_128_GCM_SHA256`, `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`): Node's
    /// `getCipher().standardName`.
    pub cipher_suite: Option<&'static str>,
    /// The key exchange group (`X25519`, `secp256r1`, `secp384r1`).
    pub key_exchange_group: Option<&'static str>,
    /// The ALPN protocol both sides agreed on.
    pub alpn_protocol: Option<Vec<u8>>,
    /// The SNI name: on a server, the one the client asked for; on a client, the one it sent.
    pub server_name: Option<String>,
    /// The peer's certificates, leaf first, DER. Empty for a client that sent none.
    pub peer_certificates: Vec<Vec<u8>>,
    /// The handshake resumed an earlier session (ticket or session cache): no certificate was
    /// exchanged in it, and `peer_certificates` are those of the original session.
    pub resumed: bool,
}

pub fn protocol_name(version: ProtocolVersion) -> Option<&'static str> {
    match version {
        ProtocolVersion::TLSv1_3 => Some("TLSv1.3"),
        ProtocolVersion::TLSv1_2 => Some("TLSv1.2"),
        _ => None,
    }
}

/// rustls names TLS 1.3 suites `TLS13_*`; IANA (and OpenSSL's standard names) say `TLS_*`.
/// The TLS 1.2 names are already IANA's.
pub fn cipher_suite_name(suite: CipherSuite) -> Option<&'static str> {
    match suite {
        CipherSuite::TLS13_AES_128_GCM_SHA256 => Some("TLS_AES_128_GCM_SHA256"),
        CipherSuite::TLS13_AES_256_GCM_SHA384 => Some("TLS_AES_256_GCM_SHA384"),
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => Some("TLS_CHACHA20_POLY1305_SHA256"),
        other => other.as_str(),
    }
}

pub fn resumed(kind: Option<HandshakeKind>) -> bool {
    matches!(kind, Some(HandshakeKind::Resumed))
}
