//! Listening ports with more than accepting: admission limits, PROXY headers read in the core,
//! proxying to upstreams in the core (`listenProxy`), routing answers, drains and per-port figures.
//! Glue only: the options are converted here and every rule is the core's (reactor_core::proxy,
//! reactor_core::stream::admission).

use crate::error::{coded_error, os_error};
use crate::numbers;
use crate::tls::{self, TlsClientOptions, TlsServerOptions};
use reactor_core::tls::ReloadableServerConfig;
use crate::reactor::{closed_reactor, AdoptResult, NativeReactor};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use reactor_core::proxy::balance::Balance;
use reactor_core::proxy::header::{Cidr, HeaderPolicy};
use reactor_core::proxy::{PortRole, ProxyConfig, Route};
use reactor_core::proxy_protocol::{Version, Versions};
use reactor_core::socket2::SockAddr;
use reactor_core::sys::sockets::{ip_socket_addr, unix_socket_addr};
use reactor_core::{Limits, PerSource, PortStats, Rate, RelayOptions};
use std::os::fd::IntoRawFd;
use std::sync::Arc;
use std::time::Duration;

/// An upstream: `host` (an IP literal: js/ resolves names) and `port`, or a UNIX `path`.
#[napi(object)]
pub struct UpstreamAddress {
    pub host: Option<String>,
    pub port: Option<f64>,
    pub path: Option<String>,
}

/// A listening port's options, already checked by js/validate.ts (numbers here are only
/// converted). Absent: off.
#[napi(object)]
#[derive(Default)]
pub struct PortOptions {
    pub max_connections: Option<f64>,
    pub per_source_max: Option<f64>,
    pub per_source_ipv4_prefix: Option<u32>,
    pub per_source_ipv6_prefix: Option<u32>,
    pub per_source_slots: Option<f64>,
    pub accept_rate: Option<f64>,
    pub accept_burst: Option<f64>,
    /// Read a PROXY header first: the versions accepted (1, 2).
    pub proxy_versions: Option<Vec<u32>>,
    /// Sources allowed to send one, as CIDR blocks ("10.0.0.0/8"); empty or absent: any.
    pub proxy_trusted: Option<Vec<String>>,
    pub proxy_timeout_ms: Option<f64>,
    pub proxy_max_size: Option<f64>,
    /// Proxy to these upstreams in the core.
    pub upstreams: Option<Vec<UpstreamAddress>>,
    /// Proxy, with each client routed by JS (ROUTE records answered by `route`).
    pub route_by_consumer: Option<bool>,
    /// "roundRobin" (default) or "leastConnections".
    pub balance: Option<String>,
    pub connect_timeout_ms: Option<f64>,
    pub retries: Option<f64>,
    pub idle_timeout_ms: Option<f64>,
    pub buffer_size: Option<f64>,
    /// Send a PROXY header (1 or 2) to the upstream first.
    pub send_header: Option<u32>,
    /// Terminate TLS on accepted connections (the handshake runs in the core).
    pub tls: Option<TlsServerOptions>,
    /// Originate TLS to the upstream (proxy ports).
    pub upstream_tls: Option<TlsClientOptions>,
}

macro_rules! js_port_stats {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// A listening port's figures: totals since its adoption, and levels now.
        #[napi(object)]
        pub struct JsPortStats {
            $($(#[$doc])* pub $name: f64,)*
            /// Connect failures per upstream, in the order of the port's upstreams.
            pub upstream_failures: Vec<f64>,
        }

        fn js_port_stats(s: PortStats, failures: Vec<u64>) -> JsPortStats {
            JsPortStats { $($name: s.$name as f64,)* upstream_failures: failures.into_iter().map(|n| n as f64).collect() }
        }
    };
}

reactor_core::for_each_port_stat!(js_port_stats);

fn invalid(msg: String) -> Error {
    coded_error("ERR_INVALID_ARG_VALUE", &msg)
}

fn upstream_addr(u: &UpstreamAddress) -> Result<SockAddr> {
    match (&u.path, &u.host) {
        (Some(path), _) => unix_socket_addr(path).map_err(|e| invalid(format!("upstream path {path:?}: {e}"))),
        (None, Some(host)) => {
            let port = numbers::port(u.port.unwrap_or(f64::NAN))?;
            ip_socket_addr(host, port).map(SockAddr::from).map_err(|_| invalid(format!("upstream host {host:?} is not an IP address")))
        }
        (None, None) => Err(invalid("an upstream needs a host and port, or a path".into())),
    }
}

fn cidr(text: &str) -> Result<Cidr> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let addr: std::net::IpAddr = addr.parse().map_err(|_| invalid(format!("trusted source {text:?} is not an address block")))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| invalid(format!("trusted source {text:?}: prefix past /{max}")))?,
        None => max,
    };
    Ok(Cidr { addr, prefix })
}

fn ms(value: Option<f64>, name: &str, default: Duration) -> Result<Duration> {
    value.map_or(Ok(default), |v| numbers::duration_ms(v, name))
}

fn limits(o: &PortOptions) -> Result<Limits> {
    let count = |v: Option<f64>, name: &str| v.map(|v| numbers::u32_exact(v, name)).transpose();
    let per_source = match count(o.per_source_max, "perSource.max")? {
        Some(max) => Some(PerSource {
            max,
            ipv4_prefix: o.per_source_ipv4_prefix.unwrap_or(32).min(32) as u8,
            ipv6_prefix: o.per_source_ipv6_prefix.unwrap_or(64).min(128) as u8,
            slots: count(o.per_source_slots, "perSource.slots")?.unwrap_or(4096) as usize,
        }),
        None => None,
    };
    let rate = o.accept_rate.map(|per_second| Rate { per_second, burst: o.accept_burst.unwrap_or(per_second) });
    Ok(Limits { max_connections: count(o.max_connections, "maxConnections")?, per_source, rate })
}

fn role(o: &PortOptions) -> Result<PortRole> {
    let header = match &o.proxy_versions {
        Some(versions) => Some(Arc::new(HeaderPolicy {
            versions: Versions { v1: versions.contains(&1), v2: versions.contains(&2) },
            trusted: o.proxy_trusted.iter().flatten().map(|t| cidr(t)).collect::<Result<_>>()?,
            timeout: ms(o.proxy_timeout_ms, "proxyProtocol.timeout", Duration::from_secs(3))?,
            max_size: o.proxy_max_size.map(|v| numbers::u32_exact(v, "proxyProtocol.maxSize")).transpose()?.unwrap_or(536) as usize,
        })),
        None => None,
    };
    let route = match (&o.upstreams, o.route_by_consumer.unwrap_or(false)) {
        (_, true) => Some(Route::Consumer),
        (Some(list), false) => {
            let balance = match o.balance.as_deref() {
                None | Some("roundRobin") => Balance::RoundRobin,
                Some("leastConnections") => Balance::LeastConnections,
                Some(other) => return Err(invalid(format!("balance {other:?}: roundRobin or leastConnections"))),
            };
            Some(Route::Upstreams(list.iter().map(upstream_addr).collect::<Result<_>>()?, balance))
        }
        (None, false) => None,
    };
    let proxy = match route {
        Some(route) => Some(Arc::new(ProxyConfig {
            route,
            connect_timeout: ms(o.connect_timeout_ms, "connectTimeout", Duration::from_secs(5))?,
            retries: o.retries.map(|v| numbers::u32_exact(v, "retries")).transpose()?.unwrap_or(2),
            relay: RelayOptions {
                cap: o.buffer_size.map(|v| numbers::u32_exact(v, "bufferSize")).transpose()?.unwrap_or(262_144) as usize,
                idle_timeout: o.idle_timeout_ms.map(|v| numbers::duration_ms(v, "idleTimeout")).transpose()?,
            },
            send_header: match o.send_header {
                None => None,
                Some(1) => Some(Version::V1),
                Some(2) => Some(Version::V2),
                Some(v) => return Err(invalid(format!("proxyHeader version {v}: 1 or 2"))),
            },
            upstream_tls: o.upstream_tls.as_ref().map(tls::client_config).transpose()?,
        })),
        None => None,
    };
    let tls = o.tls.as_ref().map(tls::server_config).transpose()?.map(ReloadableServerConfig::new);
    Ok(PortRole { header, proxy, tls })
}

#[napi]
impl NativeReactor {
    /// Adopts a listening socket with `options` (limits, PROXY headers, proxying). Checked as
    /// `adopt` checks a listener, with the same refusals.
    #[napi(catch_unwind)]
    pub fn adopt_port(&mut self, env: Env, fd: f64, family: i32, options: PortOptions) -> Result<AdoptResult> {
        if self.closed {
            return Err(closed_reactor());
        }
        let fd = numbers::fd(fd, "fcntl")?;
        let (limits, role) = (limits(&options)?, role(&options)?);
        if self.consumer.is_none() {
            if let Err(e) = reactor_core::Adopt::Listener.check(fd, family) {
                return Ok(AdoptResult::refused(e));
            }
        }
        self.ensure_core(&env)?;
        match self.core()?.adopt_listener(fd, family, limits, role) {
            Ok(id) => Ok(AdoptResult { id: Some(id), ..Default::default() }),
            Err(e) => Ok(AdoptResult::refused(e)),
        }
    }

    /// Answers ROUTE records, all of a batch in one call: session `sessions[i]` goes to `hosts[i]`
    /// and `ports[i]` (a host starting with "/" or "\0" is a UNIX path; "" refuses the client).
    #[napi(catch_unwind)]
    pub fn route(&self, sessions: Vec<u32>, hosts: Vec<String>, ports: Vec<f64>) -> Result<()> {
        let Some(core) = self.live_core() else { return Ok(()) };
        let answers: Vec<(u32, Option<SockAddr>)> = sessions
            .iter()
            .zip(hosts.iter().zip(ports.iter()))
            .map(|(&session, (host, &port))| {
                let to = match host.as_bytes().first() {
                    None => None,
                    Some(b'/') | Some(0) => unix_socket_addr(host).ok(),
                    Some(_) => numbers::port(port).ok().and_then(|p| ip_socket_addr(host, p).ok()).map(SockAddr::from),
                };
                (session, to)
            })
            .collect();
        core.route(answers);
        Ok(())
    }

    /// A listening port's figures (None once it is closed).
    #[napi(catch_unwind)]
    pub fn port_stats(&self, id: u32) -> Option<JsPortStats> {
        let (stats, failures) = self.live_core()?.port_stats(id)?;
        Some(js_port_stats(stats, failures))
    }

    /// A new close-on-exec descriptor of the socket behind port `id`, owned by the caller (who
    /// must close it). EBADF when the core no longer holds the port; EMFILE when no descriptor
    /// is left.
    #[napi(catch_unwind)]
    pub fn duplicate_fd(&self, id: u32) -> Result<i32> {
        let fd = self.core()?.duplicate_socket(id).map_err(|e| os_error(e, "fcntl"))?;
        Ok(fd.into_raw_fd())
    }

    /// Drains listening port `id`: EV_PORT_DRAINED reports the end. False if it is not open.
    #[napi(catch_unwind)]
    pub fn drain(&self, id: u32, deadline_ms: f64, idle_after_ms: f64) -> Result<bool> {
        let deadline = numbers::duration_ms(deadline_ms, "deadline")?;
        let idle_after = numbers::duration_ms(idle_after_ms, "idleAfter")?;
        Ok(self.live_core().is_some_and(|c| c.drain(id, deadline, idle_after)))
    }
}

/// A TLV of a PROXY v2 header.
#[napi(object)]
pub struct ProxyTlv {
    pub r#type: u32,
    pub value: Buffer,
}

/// Encodes a PROXY protocol header (the core's codec) for `connectTCP` and `relay` to send first.
/// `command` "proxy" or "local"; addresses are IP literals (both of one family, or sent as IPv6)
/// or, in v2, UNIX paths (host starting with "/" or "\0", port ignored); TLVs in v2 only.
#[napi(catch_unwind)]
pub fn encode_proxy_header(
    version: u32,
    local: bool,
    source_host: Option<String>,
    source_port: Option<f64>,
    destination_host: Option<String>,
    destination_port: Option<f64>,
    tlvs: Option<Vec<ProxyTlv>>,
) -> Result<Buffer> {
    use reactor_core::proxy_protocol::{encode_v1, encode_v2, Addresses, Header, SocketType, Tlvs, UnixAddress};
    let version = match version {
        1 => Version::V1,
        2 => Version::V2,
        v => return Err(invalid(format!("PROXY header version {v}: 1 or 2"))),
    };
    let addresses = match (source_host, destination_host) {
        _ if local => Addresses::Unspecified,
        (Some(s), Some(d)) if s.starts_with(['/', '\0']) || d.starts_with(['/', '\0']) => {
            let unix = |p: &str| UnixAddress::new(p.as_bytes()).ok_or_else(|| invalid(format!("UNIX path {p:?} is longer than 108 bytes")));
            Addresses::Unix { socket_type: SocketType::Stream, source: unix(&s)?, destination: unix(&d)? }
        }
        (Some(s), Some(d)) => {
            let ip = |h: &str, p: Option<f64>| -> Result<std::net::SocketAddr> {
                ip_socket_addr(h, numbers::port(p.unwrap_or(f64::NAN))?).map_err(|_| invalid(format!("{h:?} is not an IP address")))
            };
            Addresses::Ip { socket_type: SocketType::Stream, source: ip(&s, source_port)?, destination: ip(&d, destination_port)? }
        }
        _ => return Err(invalid("a PROXY header needs a source and a destination (or command \"local\")".into())),
    };
    let mut header = if local { Header::local(version) } else { Header::proxy(version, addresses) };
    let mut list = Tlvs::new();
    for t in tlvs.iter().flatten() {
        let kind = u8::try_from(t.r#type).map_err(|_| invalid(format!("TLV type {} is past 255", t.r#type)))?;
        list.push(kind, &t.value).map_err(|e| invalid(format!("TLV {kind}: {}", e.code())))?;
    }
    header.tlvs = list;
    let mut out = Vec::new();
    match version {
        Version::V1 => encode_v1(&header, &mut out),
        Version::V2 => encode_v2(&header, &mut out).map_err(|e| invalid(format!("PROXY header: {}", e.code())))?,
    }
    Ok(out.into())
}
