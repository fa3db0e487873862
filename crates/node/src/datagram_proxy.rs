//! Datagram proxies (`listenDatagramProxy`): the options converted, the routing answers passed
//! on (one call per batch), the stop and the figures. Glue only: every rule is the core's
//! (reactor_core::datagram_proxy).

use crate::error::{coded_error, os_error};
use crate::numbers;
use crate::reactor::{closed_reactor, AdoptResult, NativeReactor};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use reactor_core::datagram_proxy::{DatagramProxyConfig, DatagramRoute};
use reactor_core::socket2::SockAddr;
use reactor_core::sys::buffers::BufferSizes;
use reactor_core::sys::sockets::ip_socket_addr;
use reactor_core::DatagramProxyStats;

/// An upstream: `host` is an IP literal (js/ checks it), `port` 0..65535.
#[napi(object)]
pub struct DatagramUpstream {
    pub host: String,
    pub port: f64,
}

/// A datagram proxy's options, already checked by js/validate.ts (numbers here are only
/// converted). Absent: off (no timeout, no cap, no `responses`, no header, any source port).
#[napi(object)]
#[derive(Default)]
pub struct DatagramProxyOptions {
    /// New sessions go to these in turn.
    pub upstreams: Option<Vec<DatagramUpstream>>,
    /// New clients are routed by JS instead (DATAGRAM_ROUTE records answered by `routeDatagrams`).
    pub route_by_consumer: Option<bool>,
    pub idle_timeout_ms: Option<f64>,
    pub max_sessions: Option<f64>,
    pub responses: Option<f64>,
    /// A PROXY protocol v2 header in front of each datagram to the upstream.
    pub proxy_header: Option<bool>,
    pub source_port_low: Option<f64>,
    pub source_port_high: Option<f64>,
    /// SO_RCVBUF / SO_SNDBUF for the listening socket (the kernel's answer is in the figures).
    pub recv_buffer_size: Option<f64>,
    pub send_buffer_size: Option<f64>,
}

macro_rules! js_datagram_proxy_stats {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// A datagram proxy's figures: totals since it was made, and levels now.
        #[napi(object)]
        pub struct JsDatagramProxyStats {
            $($(#[$doc])* pub $name: f64,)*
        }

        fn js_datagram_proxy_stats(s: DatagramProxyStats) -> JsDatagramProxyStats {
            JsDatagramProxyStats { $($name: s.$name as f64,)* }
        }
    };
}

reactor_core::for_each_datagram_proxy_stat!(js_datagram_proxy_stats);

fn invalid(msg: String) -> Error {
    coded_error("ERR_INVALID_ARG_VALUE", &msg)
}

fn upstream(u: &DatagramUpstream) -> Result<SockAddr> {
    let port = numbers::port(u.port)?;
    ip_socket_addr(&u.host, port).map(SockAddr::from).map_err(|_| invalid(format!("upstream host {:?} is not an IP address", u.host)))
}

/// The core's configuration and the buffer sizes of `o`.
pub(crate) fn config(o: &DatagramProxyOptions) -> Result<(DatagramProxyConfig, BufferSizes)> {
    let route = match (&o.upstreams, o.route_by_consumer.unwrap_or(false)) {
        (_, true) => DatagramRoute::Consumer,
        (Some(list), false) if !list.is_empty() => DatagramRoute::Upstreams(list.iter().map(upstream).collect::<Result<_>>()?),
        _ => return Err(invalid("a datagram proxy needs upstreams or a routing function".into())),
    };
    let count = |v: Option<f64>, name: &str| v.map(|v| numbers::u32_exact(v, name)).transpose();
    let source_ports = match (o.source_port_low, o.source_port_high) {
        (Some(low), Some(high)) => {
            let (low, high) = (numbers::port(low)?, numbers::port(high)?);
            if low == 0 || low > high {
                return Err(invalid(format!("sourcePortRange [{low}, {high}]: 1 <= low <= high")));
            }
            Some((low, high))
        }
        (None, None) => None,
        _ => return Err(invalid("sourcePortRange needs both ends".into())),
    };
    let config = DatagramProxyConfig {
        route,
        idle_timeout: o.idle_timeout_ms.map(|v| numbers::duration_ms(v, "idleTimeout")).transpose()?,
        max_sessions: count(o.max_sessions, "maxSessions")?,
        responses: count(o.responses, "responses")?,
        proxy_header: o.proxy_header.unwrap_or(false),
        source_ports,
    };
    let sizes = numbers::buffer_sizes(o.recv_buffer_size, o.send_buffer_size)?;
    Ok((config, sizes))
}

#[napi]
impl NativeReactor {
    /// Adopts a datagram socket as a datagram proxy (checked as `adopt` checks a datagram port,
    /// with the same refusals). Buffer sizes are set on the socket once it passed the checks;
    /// a size the kernel refuses throws with its errno and nothing is adopted.
    #[napi(catch_unwind)]
    pub fn adopt_datagram_proxy(&mut self, env: Env, fd: f64, family: i32, options: DatagramProxyOptions) -> Result<AdoptResult> {
        if self.closed {
            return Err(closed_reactor());
        }
        let fd = numbers::fd(fd, "fcntl")?;
        let (config, sizes) = config(&options)?;
        let kind = reactor_core::Adopt::Datagram { max_packet: 0 };
        if let Err(e) = kind.check(fd, family) {
            return Ok(AdoptResult::refused(e));
        }
        sizes.apply(fd).map_err(|e| os_error(e, "setsockopt"))?;
        self.ensure_core(&env)?;
        match self.core()?.adopt_datagram_proxy(fd, family, config) {
            Ok(id) => Ok(AdoptResult { id: Some(id), ..Default::default() }),
            Err(e) => Ok(AdoptResult::refused(e)),
        }
    }

    /// Answers DATAGRAM_ROUTE records of port `port`, all of a batch in one call: the client
    /// waiting under `tokens[i]` goes to `hosts[i]`:`ports[i]` ("" refuses it).
    #[napi(catch_unwind)]
    pub fn route_datagrams(&self, port: u32, tokens: Vec<u32>, hosts: Vec<String>, ports: Vec<f64>) -> Result<()> {
        let Some(core) = self.live_core() else { return Ok(()) };
        let answers = tokens.iter().zip(hosts.iter().zip(ports.iter())).map(|(&token, (host, &p))| {
            let to = if host.is_empty() { None } else { numbers::port(p).ok().and_then(|p| ip_socket_addr(host, p).ok()).map(SockAddr::from) };
            (token, to)
        });
        core.route_datagrams(port, answers.collect::<Vec<_>>());
        Ok(())
    }

    /// Stops datagram proxy `id` reading; EV_DATAGRAM_PROXY_CLOSED says when its sessions ended
    /// and it closed. False if it is not open.
    #[napi(catch_unwind)]
    pub fn stop_datagram_proxy(&self, id: u32) -> bool {
        self.live_core().is_some_and(|c| c.stop_datagram_proxy(id))
    }

    /// A datagram proxy's figures; once it closed, its final figures (once), then null.
    #[napi(catch_unwind)]
    pub fn datagram_proxy_stats(&self, id: u32) -> Option<JsDatagramProxyStats> {
        self.live_core()?.datagram_proxy_stats(id).map(js_datagram_proxy_stats)
    }
}
