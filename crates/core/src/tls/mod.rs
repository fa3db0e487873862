//! TLS for the core, in userspace with rustls (ring provider): configs built from the user's
//! options, and a session the event loop drives over a non-blocking socket. Self-contained: the
//! loop plugs it into its accept, read/write and relay paths; nothing here knows the loop.
//!
//! - `config`: `ServerTlsOptions` / `ClientTlsOptions` → shared rustls configs (`pem`,
//!   `resolver` for SNI, `no_verify` for `verify: false`, `provider`).
//! - `reload`: a port's config, replaceable while it runs (`port.setSecureContext`).
//! - `session`: `TlsSession`, what the loop calls on readiness (`accept`: a server's wait for
//!   the ClientHello, where an unknown SNI name is refused).
//! - `info`: `TlsInfo`, what `transport.tlsInfo` tells.
//! - `error`: `ConfigError` (bad options) and `TlsError` (a failed session), each with a `code()`.

mod accept;
mod config;
mod error;
mod info;
mod no_verify;
mod pem;
mod provider;
mod reload;
mod resolver;
mod session;
#[cfg(test)]
mod tests;

pub use config::{
    ClientAuth, ClientTlsConfig, ClientTlsOptions, ServerTlsConfig, ServerTlsOptions, SniCertificate, TlsVersion,
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_SESSION_CACHE_SIZE,
};
pub use error::{alert_name, Alert, ConfigError, ConfigErrorKind, TlsError, TlsErrorKind};
pub use info::TlsInfo;
pub use pem::CertKeyPem;
pub use reload::ReloadableServerConfig;
pub use rustls::pki_types::ServerName;
pub use rustls::AlertDescription;
pub use session::{End, ReadOutcome, TlsSession, WriteOutcome, READ_BUDGET, SEND_BUFFER_LIMIT};
