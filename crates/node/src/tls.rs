//! TLS: options converted into the core's configs (every rule is `reactor_core::tls`'s), built
//! contexts JS keeps and reuses (a client context's session cache is what resumption needs),
//! connects with TLS, `startTLS`, a port's reload, and what the kernel offers (kTLS). Glue only.

use crate::error::{coded_error, os_error};
use crate::numbers;
use crate::reactor::NativeReactor;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use reactor_core::socket2::SockAddr;
use reactor_core::sys::sockets::ip_socket_addr;
use reactor_core::tls::{
    CertKeyPem, ClientAuth, ClientTlsConfig, ClientTlsOptions, ConfigError, ServerTlsConfig, ServerTlsOptions,
    SniCertificate, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_SESSION_CACHE_SIZE,
};
use reactor_core::{Reactor, TlsRole};
use std::time::Duration;

/// A certificate for the names an SNI entry answers (PEM).
#[napi(object)]
pub struct TlsSniEntry {
    pub names: Vec<String>,
    pub cert: Buffer,
    pub key: Buffer,
}

/// A server's TLS options, checked by js/tls-options.ts (PEM as bytes; names as Node's `tls`).
#[napi(object)]
pub struct TlsServerOptions {
    pub cert: Option<Buffer>,
    pub key: Option<Buffer>,
    pub sni: Option<Vec<TlsSniEntry>>,
    /// The CAs client certificates must chain to.
    pub ca: Option<Buffer>,
    /// "none" (default), "optional" (asked for; one sent must verify) or "required".
    pub client_auth: Option<String>,
    pub alpn_protocols: Option<Vec<String>>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    pub tickets: Option<bool>,
    pub session_cache_size: Option<f64>,
    pub handshake_timeout_ms: Option<f64>,
}

/// A client's TLS options (connectTCP's `tls`, listenProxy's `upstreamTls`, a client `startTLS`).
#[napi(object)]
pub struct TlsClientOptions {
    pub ca: Option<Buffer>,
    /// false: no check of the server's certificate at all (Node's rejectUnauthorized: false).
    pub verify: Option<bool>,
    pub servername: Option<String>,
    pub alpn_protocols: Option<Vec<String>>,
    pub cert: Option<Buffer>,
    pub key: Option<Buffer>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    pub session_cache_size: Option<f64>,
    pub handshake_timeout_ms: Option<f64>,
}

fn config_error(e: ConfigError) -> Error {
    coded_error(e.code(), &e.to_string())
}

fn pem_pair(cert: &Option<Buffer>, key: &Option<Buffer>, what: &str) -> Result<Option<CertKeyPem>> {
    match (cert, key) {
        (Some(c), Some(k)) => Ok(Some(CertKeyPem {
            cert_chain: c.to_vec(),
            key: k.to_vec(),
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(coded_error(
            "ERR_TLS_KEY",
            &format!("tls.{what}key: a certificate needs its key"),
        )),
        (None, Some(_)) => Err(coded_error(
            "ERR_TLS_CERT",
            &format!("tls.{what}cert: a key needs its certificate"),
        )),
    }
}

fn alpn(list: &Option<Vec<String>>) -> Vec<Vec<u8>> {
    list.iter().flatten().map(|p| p.as_bytes().to_vec()).collect()
}

fn timeout(ms: Option<f64>) -> Result<Duration> {
    ms.map_or(Ok(DEFAULT_HANDSHAKE_TIMEOUT), |ms| {
        numbers::duration_ms(ms, "handshakeTimeout")
    })
}

fn cache_size(n: Option<f64>) -> Result<usize> {
    Ok(n.map(|n| numbers::u32_exact(n, "sessionCacheSize"))
        .transpose()?
        .map_or(DEFAULT_SESSION_CACHE_SIZE, |n| n as usize))
}

pub(crate) fn server_config(o: &TlsServerOptions) -> Result<ServerTlsConfig> {
    let mut sni = Vec::new();
    for entry in o.sni.iter().flatten() {
        let cert = CertKeyPem {
            cert_chain: entry.cert.to_vec(),
            key: entry.key.to_vec(),
        };
        sni.push(SniCertificate {
            names: entry.names.clone(),
            cert,
        });
    }
    let ca = || {
        o.ca.as_ref().map(|ca| ca.to_vec()).ok_or_else(|| {
            coded_error(
                "ERR_TLS_CA",
                "tls.ca: asking clients for a certificate needs the CAs it must chain to",
            )
        })
    };
    let client_auth = match o.client_auth.as_deref() {
        None | Some("none") => ClientAuth::None,
        Some("optional") => ClientAuth::Optional { ca: ca()? },
        Some("required") => ClientAuth::Required { ca: ca()? },
        Some(other) => {
            return Err(coded_error(
                "ERR_TLS_OPTION",
                &format!("tls: unknown client authentication {other:?}"),
            ))
        }
    };
    let options = ServerTlsOptions {
        default_cert: pem_pair(&o.cert, &o.key, "")?,
        sni,
        alpn_protocols: alpn(&o.alpn_protocols),
        client_auth,
        min_version: o.min_version.clone(),
        max_version: o.max_version.clone(),
        session_tickets: o.tickets.unwrap_or(true),
        session_cache_size: cache_size(o.session_cache_size)?,
        handshake_timeout: timeout(o.handshake_timeout_ms)?,
    };
    options.build().map_err(config_error)
}

pub(crate) fn client_config(o: &TlsClientOptions) -> Result<ClientTlsConfig> {
    let verify = o.verify.unwrap_or(true);
    let options = ClientTlsOptions {
        ca: if verify {
            o.ca.as_ref().map(|ca| ca.to_vec())
        } else {
            None
        },
        verify,
        server_name: o.servername.clone(),
        alpn_protocols: alpn(&o.alpn_protocols),
        client_cert: pem_pair(&o.cert, &o.key, "")?,
        min_version: o.min_version.clone(),
        max_version: o.max_version.clone(),
        session_cache_size: cache_size(o.session_cache_size)?,
        handshake_timeout: timeout(o.handshake_timeout_ms)?,
    };
    options.build().map_err(config_error)
}

/// A server config built once (PEM parsed, keys loaded, ticket key made), for `startTLS` and
/// `setSecureContext`.
#[napi]
pub struct TlsServerContext {
    config: ServerTlsConfig,
}

#[napi]
impl TlsServerContext {
    /// Throws an Error with code ERR_TLS_CERT, ERR_TLS_KEY, ERR_TLS_KEY_MISMATCH, ERR_TLS_CA,
    /// ERR_TLS_VERSION, ERR_TLS_ALPN, ERR_TLS_SERVERNAME or ERR_TLS_OPTION.
    #[napi(constructor, catch_unwind)]
    pub fn new(options: TlsServerOptions) -> Result<Self> {
        Ok(TlsServerContext {
            config: server_config(&options)?,
        })
    }
}

/// A client config built once: its session cache lets later connections resume.
#[napi]
pub struct TlsClientContext {
    config: ClientTlsConfig,
}

#[napi]
impl TlsClientContext {
    #[napi(constructor, catch_unwind)]
    pub fn new(options: TlsClientOptions) -> Result<Self> {
        Ok(TlsClientContext {
            config: client_config(&options)?,
        })
    }

    /// Checks that `host` can be verified (a DNS name or an IP address), or the servername
    /// override: ERR_TLS_SERVERNAME otherwise.
    #[napi(catch_unwind)]
    pub fn check_host(&self, host: String) -> Result<()> {
        self.config.server_name_for(&host).map(|_| ()).map_err(config_error)
    }
}

/// What this kernel offers for TLS.
#[napi(object)]
pub struct TlsSupport {
    /// The kernel takes TLS records over (kTLS: the TCP "tls" ULP).
    pub ktls: bool,
    /// Why not (empty when it does).
    pub ktls_reason: String,
}

/// Probes the kernel once (setsockopt TCP_ULP "tls" on a loopback connection).
#[napi(catch_unwind)]
pub fn tls_support() -> TlsSupport {
    let s = Reactor::ktls_support();
    TlsSupport {
        ktls: s.available,
        ktls_reason: s.reason.clone(),
    }
}

#[napi]
impl NativeReactor {
    /// `connectTcp` with TLS: the handshake runs in the core after the connect; EV_TLS_READY then
    /// EV_CONNECTED report both (EV_TLS_ERROR then EV_CLOSED a failed handshake). `name` is the
    /// host to verify (the context's servername wins).
    #[napi(catch_unwind)]
    #[allow(clippy::too_many_arguments)]
    pub fn connect_tcp_tls(
        &mut self,
        env: Env,
        host: String,
        port: f64,
        bind_host: Option<String>,
        bind_port: Option<f64>,
        context: &TlsClientContext,
        name: String,
    ) -> Result<u32> {
        let server_name = context.config.server_name_for(&name).map_err(config_error)?;
        let to: SockAddr = ip_socket_addr(&host, numbers::port(port)?)
            .map_err(|e| os_error(e, "connect"))?
            .into();
        let bind: Option<SockAddr> = match bind_host {
            Some(h) => Some(
                ip_socket_addr(&h, numbers::port(bind_port.unwrap_or(0.0))?)
                    .map_err(|e| os_error(e, "bind"))?
                    .into(),
            ),
            None => None,
        };
        self.ensure_core(&env)?
            .connect_tls(&to, bind.as_ref(), &context.config, server_name)
            .map_err(|e| os_error(e, "connect"))
    }

    /// startTLS, server side. `held`: bytes JS received and did not deliver. Returns the state.
    #[napi(catch_unwind)]
    pub fn start_tls_server(&self, id: u32, context: &TlsServerContext, held: Vec<Uint8ArraySlice>) -> Result<u32> {
        self.start_tls(id, TlsRole::Server(context.config.clone()), held)
    }

    /// startTLS, client side, verifying `name` (the context's servername wins).
    #[napi(catch_unwind)]
    pub fn start_tls_client(
        &self,
        id: u32,
        context: &TlsClientContext,
        name: String,
        held: Vec<Uint8ArraySlice>,
    ) -> Result<u32> {
        let server_name = context.config.server_name_for(&name).map_err(config_error)?;
        self.start_tls(id, TlsRole::Client(context.config.clone(), server_name), held)
    }

    /// A TLS port's new certificates (and options) for handshakes from now on. EINVAL: the port
    /// has no TLS; EBADF: it is closed.
    #[napi(catch_unwind)]
    pub fn set_port_tls(&self, id: u32, context: &TlsServerContext) -> Result<()> {
        self.core()?
            .set_port_tls(id, context.config.clone())
            .map_err(|e| os_error(e, "setSecureContext"))
    }
}

impl NativeReactor {
    fn start_tls(&self, id: u32, role: TlsRole, held: Vec<Uint8ArraySlice>) -> Result<u32> {
        let held: Vec<&[u8]> = held.iter().map(|c| c.as_ref()).collect();
        self.core()?
            .start_tls(id, role, &held)
            .map_err(|e| os_error(e, "startTLS"))
    }
}
