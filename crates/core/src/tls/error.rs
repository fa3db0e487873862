//! The two kinds of TLS failure: bad options (found once, when a config is built) and a failed
//! session (found on the wire). Each has a short `code()` that the binding hands to JS as
//! `err.code`, and a message for people.

use rustls::AlertDescription;
use std::fmt;

/// Why options could not become a config. The message names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub kind: ConfigErrorKind,
    /// The option at fault, spelled as Node's `tls` options spell it (`cert`, `key`, `ca`,
    /// `minVersion`, `ALPNProtocols`, `servername`), or `sni[1].key` for an SNI entry.
    pub field: String,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// A certificate (chain) that is missing, not PEM, or not X.509.
    Cert,
    /// A private key that is missing, not PEM, encrypted, or of a type ring does not sign with.
    Key,
    /// The key is not the one the end-entity certificate names.
    KeyMismatch,
    /// A CA bundle that is missing, empty or unparsable.
    Ca,
    /// An unknown or unsupported protocol version, or a minimum above the maximum.
    Version,
    /// An ALPN protocol name that is empty or longer than 255 bytes.
    Alpn,
    /// A server name (SNI) that is not a DNS name or IP address, or a name given twice.
    ServerName,
    /// Options that contradict each other (`verify: false` with a CA bundle, no certificate).
    Option,
    /// The crypto provider failed (no randomness for a ticket key, say).
    Internal,
}

impl ConfigError {
    pub fn new(kind: ConfigErrorKind, field: impl Into<String>, detail: impl Into<String>) -> Self {
        ConfigError { kind, field: field.into(), detail: detail.into() }
    }

    pub fn code(&self) -> &'static str {
        match self.kind {
            ConfigErrorKind::Cert => "ERR_TLS_CERT",
            ConfigErrorKind::Key => "ERR_TLS_KEY",
            ConfigErrorKind::KeyMismatch => "ERR_TLS_KEY_MISMATCH",
            ConfigErrorKind::Ca => "ERR_TLS_CA",
            ConfigErrorKind::Version => "ERR_TLS_VERSION",
            ConfigErrorKind::Alpn => "ERR_TLS_ALPN",
            ConfigErrorKind::ServerName => "ERR_TLS_SERVERNAME",
            ConfigErrorKind::Option => "ERR_TLS_OPTION",
            ConfigErrorKind::Internal => "ERR_TLS_INTERNAL",
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tls.{}: {}", self.field, self.detail)
    }
}

impl std::error::Error for ConfigError {}

/// Why a session failed on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError {
    pub kind: TlsErrorKind,
    /// The TLS alert that went with the failure, and which way it went: for `Alert` the one the
    /// peer sent; otherwise the fatal alert rustls queued for the peer (flush it with
    /// `write_tls_to` before closing). `None` for a truncation or a timeout (no alert exists).
    pub alert: Option<Alert>,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsErrorKind {
    /// The handshake could not agree: no common version, suite or ALPN protocol, no certificate
    /// for the name asked (SNI), the peer's parameters refused.
    Handshake,
    /// We refused the peer's certificate: unknown CA, expired, wrong name, missing when required.
    CertVerify,
    /// The peer sent a fatal alert (it refused us, or gave up).
    Alert,
    /// The peer broke the protocol: a bad record (MAC, decoding), an unexpected message, a
    /// second renegotiation attempt, too many key updates.
    Protocol,
    /// The transport ended without the peer's close_notify: what was read may be cut short.
    Truncated,
    /// The handshake did not finish in time. Reserved for the event loop, which owns the clock.
    Timeout,
    /// Anything else rustls reports (no randomness, clock before 1970, an encryption failure).
    Internal,
}

impl TlsErrorKind {
    pub fn code(self) -> &'static str {
        match self {
            TlsErrorKind::Handshake => "ERR_TLS_HANDSHAKE",
            TlsErrorKind::CertVerify => "ERR_TLS_CERT_VERIFY",
            TlsErrorKind::Alert => "ERR_TLS_ALERT",
            TlsErrorKind::Protocol => "ERR_TLS_PROTOCOL",
            TlsErrorKind::Truncated => "ERR_TLS_TRUNCATED",
            TlsErrorKind::Timeout => "ERR_TLS_TIMEOUT",
            TlsErrorKind::Internal => "ERR_TLS_INTERNAL",
        }
    }
}

/// A TLS alert and its direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alert {
    pub description: AlertDescription,
    /// True when the peer sent it; false when we send it.
    pub received: bool,
}

impl Alert {
    /// The IANA name (`unknown_ca`, `certificate_expired`, `unrecognized_name`...).
    pub fn name(&self) -> &'static str {
        alert_name(self.description)
    }
}

impl TlsError {
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The alert's IANA name, if an alert went with the failure.
    pub fn alert_name(&self) -> Option<&'static str> {
        self.alert.map(|a| a.name())
    }

    /// EOF from the transport before the peer's close_notify.
    pub fn truncated() -> Self {
        TlsError {
            kind: TlsErrorKind::Truncated,
            alert: None,
            detail: "the peer closed the connection without close_notify".into(),
        }
    }

    /// For the event loop, when a handshake outlives its `handshake_timeout`.
    pub fn timeout() -> Self {
        TlsError { kind: TlsErrorKind::Timeout, alert: None, detail: "the handshake timed out".into() }
    }

    /// Classifies what rustls reported on `side`. For errors found on our side, `alert` is the
    /// alert rustls sends for them, following rustls's own choices (common_state.rs, hs.rs,
    /// tls12.rs, tls13.rs of rustls 0.23): rustls does not say which alert it queued, so this
    /// mirrors it for the cases that matter to users and says `None` where rustls sends none or
    /// where it cannot be sure.
    pub fn from_rustls(err: rustls::Error, side: rustls::Side) -> Self {
        use rustls::Error as E;
        use rustls::PeerIncompatible as P;
        let sent = |d| Some(Alert { description: d, received: false });
        let server = side == rustls::Side::Server;
        let (kind, alert) = match &err {
            E::AlertReceived(d) => (TlsErrorKind::Alert, Some(Alert { description: *d, received: true })),
            E::InvalidCertificate(e) => (TlsErrorKind::CertVerify, sent(AlertDescription::from(e.clone()))),
            // A server missing a required client certificate says so; a client given an empty
            // chain by a server fails without an alert.
            E::NoCertificatesPresented if server => {
                (TlsErrorKind::CertVerify, sent(AlertDescription::CertificateRequired))
            }
            E::NoCertificatesPresented => (TlsErrorKind::CertVerify, None),
            E::NoApplicationProtocol => (TlsErrorKind::Handshake, sent(AlertDescription::NoApplicationProtocol)),
            // No SNI and no default certificate: rustls answers access_denied. (A name that
            // matches nothing is refused before rustls, with unrecognized_name: accept.rs.)
            E::General(m) if server && m.contains("no server certificate chain resolved") => {
                (TlsErrorKind::Handshake, sent(AlertDescription::AccessDenied))
            }
            E::PeerIncompatible(
                P::Tls12NotOffered | P::Tls12NotOfferedOrEnabled | P::SupportedVersionsExtensionRequired,
            ) => (TlsErrorKind::Handshake, sent(AlertDescription::ProtocolVersion)),
            E::PeerIncompatible(P::NullCompressionRequired | P::UncompressedEcPointsRequired) => {
                (TlsErrorKind::Handshake, sent(AlertDescription::IllegalParameter))
            }
            E::PeerIncompatible(_) => (TlsErrorKind::Handshake, sent(AlertDescription::HandshakeFailure)),
            E::DecryptError => (TlsErrorKind::Protocol, sent(AlertDescription::BadRecordMac)),
            E::InvalidMessage(_) => (TlsErrorKind::Protocol, sent(AlertDescription::DecodeError)),
            E::PeerSentOversizedRecord => (TlsErrorKind::Protocol, sent(AlertDescription::RecordOverflow)),
            E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
                (TlsErrorKind::Protocol, sent(AlertDescription::UnexpectedMessage))
            }
            E::PeerMisbehaved(_) => (TlsErrorKind::Protocol, None),
            _ => (TlsErrorKind::Internal, None),
        };
        TlsError { kind, alert, detail: err.to_string() }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.alert {
            Some(a) if a.received => write!(f, "{} (alert {} from the peer)", self.detail, a.name()),
            Some(a) => write!(f, "{} (alert {} sent)", self.detail, a.name()),
            None => f.write_str(&self.detail),
        }
    }
}

impl std::error::Error for TlsError {}

/// IANA's names for TLS alerts (the TLS Alert Registry), the spelling OpenSSL and Node print.
pub fn alert_name(d: AlertDescription) -> &'static str {
    use AlertDescription as A;
    match d {
        A::CloseNotify => "close_notify",
        A::UnexpectedMessage => "unexpected_message",
        A::BadRecordMac => "bad_record_mac",
        A::DecryptionFailed => "decryption_failed",
        A::RecordOverflow => "record_overflow",
        A::DecompressionFailure => "decompression_failure",
        A::HandshakeFailure => "handshake_failure",
        A::NoCertificate => "no_certificate",
        A::BadCertificate => "bad_certificate",
        A::UnsupportedCertificate => "unsupported_certificate",
        A::CertificateRevoked => "certificate_revoked",
        A::CertificateExpired => "certificate_expired",
        A::CertificateUnknown => "certificate_unknown",
        A::IllegalParameter => "illegal_parameter",
        A::UnknownCA => "unknown_ca",
        A::AccessDenied => "access_denied",
        A::DecodeError => "decode_error",
        A::DecryptError => "decrypt_error",
        A::ExportRestriction => "export_restriction",
        A::ProtocolVersion => "protocol_version",
        A::InsufficientSecurity => "insufficient_security",
        A::InternalError => "internal_error",
        A::InappropriateFallback => "inappropriate_fallback",
        A::UserCanceled => "user_canceled",
        A::NoRenegotiation => "no_renegotiation",
        A::MissingExtension => "missing_extension",
        A::UnsupportedExtension => "unsupported_extension",
        A::CertificateUnobtainable => "certificate_unobtainable",
        A::UnrecognisedName => "unrecognized_name",
        A::BadCertificateStatusResponse => "bad_certificate_status_response",
        A::BadCertificateHashValue => "bad_certificate_hash_value",
        A::UnknownPSKIdentity => "unknown_psk_identity",
        A::CertificateRequired => "certificate_required",
        A::NoApplicationProtocol => "no_application_protocol",
        A::EncryptedClientHelloRequired => "encrypted_client_hello_required",
        _ => "unknown",
    }
}
