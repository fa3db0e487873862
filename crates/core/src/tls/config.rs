//! Options as the user gives them (PEM text, names, version strings) → rustls configs, built
//! once per port or per `connect` option set and shared by `Arc` with every session: a handshake
//! parses no PEM and builds no store.

use super::error::{ConfigError, ConfigErrorKind as Kind};
use super::no_verify::AcceptAnyServerCert;
use super::pem::{certified_key, root_store, CertKeyPem};
use super::provider::provider;
use super::resolver::{NameProblem, SniResolver};
use rustls::client::{ClientSessionMemoryCache, Resumption, WebPkiServerVerifier};
use rustls::pki_types::ServerName;
use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::sign::SingleCertAndKey;
use rustls::version::{TLS12, TLS13};
use rustls::{ClientConfig, ServerConfig, SupportedProtocolVersion};
use std::sync::Arc;
use std::time::Duration;

/// How long a handshake may take unless told otherwise. Node's 120 s lets a slow client hold a
/// socket and a session for two minutes for free; ten seconds is generous on any real network.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Sessions a server or client keeps for resumption unless told otherwise (rustls's own default).
pub const DEFAULT_SESSION_CACHE_SIZE: usize = 256;

/// A listening or proxy port's TLS: what `tls: {...}` on the port says.
#[derive(Debug, Clone)]
pub struct ServerTlsOptions {
    /// The certificate for clients whose SNI matches no `sni` entry, or who send none.
    /// With no default, such clients are refused (`access_denied`).
    pub default_cert: Option<CertKeyPem>,
    /// Certificates chosen by the name the client asks for.
    pub sni: Vec<SniCertificate>,
    /// Offered in preference order; a client offering only others is refused
    /// (`no_application_protocol`). Empty: no ALPN.
    pub alpn_protocols: Vec<Vec<u8>>,
    pub client_auth: ClientAuth,
    /// `"TLSv1.2"` (the default) or `"TLSv1.3"`; `"1.2"` and `"1.3"` are understood too.
    pub min_version: Option<String>,
    /// `"TLSv1.3"` (the default) or `"TLSv1.2"`.
    pub max_version: Option<String>,
    /// Stateless resumption: tickets sealed with a key this config owns (rotated every 6 h by
    /// rustls). A reloaded config has a new key, so sessions from before a reload do not resume.
    pub session_tickets: bool,
    /// Stateful resumption: sessions kept in memory, at most this many (0: none).
    pub session_cache_size: usize,
    /// Carried for the event loop, which enforces it (it owns the clock). Zero: no limit.
    pub handshake_timeout: Duration,
}

impl Default for ServerTlsOptions {
    fn default() -> Self {
        ServerTlsOptions {
            default_cert: None,
            sni: Vec::new(),
            alpn_protocols: Vec::new(),
            client_auth: ClientAuth::None,
            min_version: None,
            max_version: None,
            session_tickets: true,
            session_cache_size: DEFAULT_SESSION_CACHE_SIZE,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

/// A certificate answering for some names: `host.example.com`, or `*.example.com`.
#[derive(Debug, Clone)]
pub struct SniCertificate {
    pub names: Vec<String>,
    pub cert: CertKeyPem,
}

/// Whether a server asks clients for a certificate.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    None,
    /// Asked for; a client may send none, but one it sends must chain to `ca`.
    Optional {
        ca: Vec<u8>,
    },
    /// A client without a certificate chaining to `ca` is refused.
    Required {
        ca: Vec<u8>,
    },
}

/// A built server config and what the loop needs beside it. Cloning is two reference counts.
#[derive(Debug, Clone)]
pub struct ServerTlsConfig {
    pub rustls: Arc<ServerConfig>,
    pub handshake_timeout: Duration,
    /// The resolver inside `rustls`, kept to check a ClientHello's name before rustls does.
    pub(super) resolver: Arc<SniResolver>,
}

impl ServerTlsOptions {
    pub fn build(&self) -> Result<ServerTlsConfig, ConfigError> {
        let versions = versions(self.min_version.as_deref(), self.max_version.as_deref())?;
        let default = self.default_cert.as_ref().map(|pair| certified_key("", pair)).transpose()?;
        if default.is_none() && self.sni.is_empty() {
            return Err(ConfigError::new(
                Kind::Cert,
                "cert",
                "a server needs a certificate (cert/key, or sni entries)",
            ));
        }
        let mut resolver = SniResolver::new(default);
        for (i, entry) in self.sni.iter().enumerate() {
            let key = certified_key(&format!("sni[{i}]."), &entry.cert)?;
            if entry.names.is_empty() {
                return Err(ConfigError::new(Kind::ServerName, format!("sni[{i}].names"), "no name given"));
            }
            for (j, name) in entry.names.iter().enumerate() {
                resolver.add(name, key.clone()).map_err(|problem| {
                    let detail = match problem {
                        NameProblem::Invalid => format!("{name:?} is not a DNS name nor *.wildcard"),
                        NameProblem::Duplicate => format!("{name:?} is given twice"),
                    };
                    ConfigError::new(Kind::ServerName, format!("sni[{i}].names[{j}]"), detail)
                })?;
            }
        }

        let builder = ServerConfig::builder_with_provider(provider().clone())
            .with_protocol_versions(&versions)
            .map_err(|e| ConfigError::new(Kind::Version, "minVersion", e.to_string()))?;
        let builder = match &self.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Optional { ca } | ClientAuth::Required { ca } => {
                let roots = root_store("ca", ca)?;
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider().clone());
                let verifier = match self.client_auth {
                    ClientAuth::Optional { .. } => verifier.allow_unauthenticated(),
                    _ => verifier,
                };
                let verifier =
                    verifier.build().map_err(|e| ConfigError::new(Kind::Ca, "ca", e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let resolver = Arc::new(resolver);
        let mut config = builder.with_cert_resolver(resolver.clone());
        config.alpn_protocols = alpn("ALPNProtocols", &self.alpn_protocols)?;
        config.session_storage = match self.session_cache_size {
            0 => Arc::new(NoServerSessionStorage {}),
            n => ServerSessionMemoryCache::new(n),
        };
        if self.session_tickets {
            config.ticketer = rustls::crypto::ring::Ticketer::new()
                .map_err(|e| ConfigError::new(Kind::Internal, "sessionTickets", e.to_string()))?;
        } else if self.session_cache_size == 0 {
            // Nothing to resume from: TLS 1.3 tickets would be dead weight on every handshake.
            config.send_tls13_tickets = 0;
        }
        Ok(ServerTlsConfig { rustls: Arc::new(config), handshake_timeout: self.handshake_timeout, resolver })
    }
}

/// An outbound connection's TLS: what `tls: {...}` on `connect` or on an upstream says.
#[derive(Debug, Clone)]
pub struct ClientTlsOptions {
    /// The CAs the server's certificate must chain to. Required while `verify` is true.
    pub ca: Option<Vec<u8>>,
    /// `false` turns off every check of the server's certificate (see `no_verify.rs`: anyone on
    /// the path can then pose as the server). For tests and pinned peers only.
    pub verify: bool,
    /// The name sent as SNI and checked against the certificate, instead of the host connected
    /// to. An IP address is checked against the certificate's IP SANs (and sends no SNI).
    pub server_name: Option<String>,
    pub alpn_protocols: Vec<Vec<u8>>,
    /// A certificate to present when the server asks for one.
    pub client_cert: Option<CertKeyPem>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    /// Sessions remembered for resumption, across servers (0: none).
    pub session_cache_size: usize,
    pub handshake_timeout: Duration,
}

impl Default for ClientTlsOptions {
    fn default() -> Self {
        ClientTlsOptions {
            ca: None,
            verify: true,
            server_name: None,
            alpn_protocols: Vec::new(),
            client_cert: None,
            min_version: None,
            max_version: None,
            session_cache_size: DEFAULT_SESSION_CACHE_SIZE,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

/// A built client config and what a session needs beside it.
#[derive(Debug, Clone)]
pub struct ClientTlsConfig {
    pub rustls: Arc<ClientConfig>,
    /// The SNI override, checked once here.
    pub server_name: Option<ServerName<'static>>,
    pub handshake_timeout: Duration,
}

impl ClientTlsOptions {
    pub fn build(&self) -> Result<ClientTlsConfig, ConfigError> {
        let versions = versions(self.min_version.as_deref(), self.max_version.as_deref())?;
        let server_name = self.server_name.as_deref().map(|n| server_name("servername", n)).transpose()?;
        let builder = ClientConfig::builder_with_provider(provider().clone())
            .with_protocol_versions(&versions)
            .map_err(|e| ConfigError::new(Kind::Version, "minVersion", e.to_string()))?;
        let builder = match (&self.ca, self.verify) {
            (Some(ca), true) => {
                let roots = root_store("ca", ca)?;
                let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider().clone())
                    .build()
                    .map_err(|e| ConfigError::new(Kind::Ca, "ca", e.to_string()))?;
                builder.with_webpki_verifier(verifier)
            }
            (None, true) => {
                return Err(ConfigError::new(
                    Kind::Ca,
                    "ca",
                    "a CA bundle is required to verify the server (or verify: false, which trusts anyone)",
                ))
            }
            (Some(_), false) => {
                return Err(ConfigError::new(
                    Kind::Option,
                    "verify",
                    "verify: false with a CA bundle: the bundle would be ignored",
                ))
            }
            (None, false) => builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert {
                algorithms: provider().signature_verification_algorithms,
            })),
        };
        let mut config = match &self.client_cert {
            Some(pair) => builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified_key("", pair)?))),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn("ALPNProtocols", &self.alpn_protocols)?;
        config.resumption = match self.session_cache_size {
            0 => Resumption::disabled(),
            n => Resumption::store(Arc::new(ClientSessionMemoryCache::new(n))),
        };
        Ok(ClientTlsConfig { rustls: Arc::new(config), server_name, handshake_timeout: self.handshake_timeout })
    }
}

impl ClientTlsConfig {
    /// The name to verify and send for a connection to `host`: the override if there is one.
    pub fn server_name_for(&self, host: &str) -> Result<ServerName<'static>, ConfigError> {
        match &self.server_name {
            Some(name) => Ok(name.clone()),
            None => server_name("host", host),
        }
    }
}

/// A protocol version as users write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    pub fn parse(field: &str, text: &str) -> Result<Self, ConfigError> {
        match text {
            "TLSv1.2" | "1.2" => Ok(TlsVersion::Tls12),
            "TLSv1.3" | "1.3" => Ok(TlsVersion::Tls13),
            "TLSv1" | "TLSv1.1" | "1.0" | "1.1" | "SSLv3" => Err(ConfigError::new(
                Kind::Version,
                field,
                format!("{text} is not supported (TLSv1.2 and TLSv1.3 are)"),
            )),
            other => Err(ConfigError::new(
                Kind::Version,
                field,
                format!("unknown version {other:?} (expected \"TLSv1.2\" or \"TLSv1.3\")"),
            )),
        }
    }
}

fn versions(min: Option<&str>, max: Option<&str>) -> Result<Vec<&'static SupportedProtocolVersion>, ConfigError> {
    let min = min.map(|m| TlsVersion::parse("minVersion", m)).transpose()?.unwrap_or(TlsVersion::Tls12);
    let max = max.map(|m| TlsVersion::parse("maxVersion", m)).transpose()?.unwrap_or(TlsVersion::Tls13);
    if min > max {
        return Err(ConfigError::new(Kind::Version, "minVersion", "is above maxVersion"));
    }
    Ok([(TlsVersion::Tls13, &TLS13), (TlsVersion::Tls12, &TLS12)]
        .into_iter()
        .filter(|(v, _)| (min..=max).contains(v))
        .map(|(_, s)| s)
        .collect())
}

fn alpn(field: &str, protocols: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, ConfigError> {
    for (i, p) in protocols.iter().enumerate() {
        if p.is_empty() || p.len() > 255 {
            return Err(ConfigError::new(Kind::Alpn, format!("{field}[{i}]"), "must be 1 to 255 bytes"));
        }
    }
    Ok(protocols.to_vec())
}

fn server_name(field: &str, name: &str) -> Result<ServerName<'static>, ConfigError> {
    ServerName::try_from(name.trim_end_matches('.').to_string())
        .map_err(|_| ConfigError::new(Kind::ServerName, field, format!("{name:?} is not a DNS name or IP address")))
}
