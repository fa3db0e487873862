//! The native proxy port: a listening socket whose connections are accepted, optionally read for a
//! PROXY protocol header, routed to an upstream, connected and relayed, all in the core, with no
//! JS per connection (except a routing function, called in batches).
//!
//! The pieces, each beside its type: `header` (what a port accepts as a PROXY header, and from
//! whom), `incoming` (an accepted connection before it is handed on: reading its header, waiting
//! for a route, connecting upstream), `upstream` (the connecting socket of a session), `balance`
//! (which upstream next). The event loop carries out what they ask (`event_loop::sessions`).

pub mod balance;
pub mod header;
pub(crate) mod incoming;
pub(crate) mod upstream;

use crate::relay::RelayOptions;
use crate::tls::{ClientTlsConfig, ReloadableServerConfig};
use balance::Balance;
use header::HeaderPolicy;
use socket2::SockAddr;
use std::sync::Arc;
use std::time::Duration;

/// Where a port's clients go.
#[derive(Debug, Clone)]
pub enum Route {
    /// To one of these upstreams, chosen by the balance.
    Upstreams(Vec<SockAddr>, Balance),
    /// The consumer decides per client (a ROUTE record; `Reactor::route` answers).
    Consumer,
}

/// How a proxy port runs (fixed when the port is made).
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub route: Route,
    /// One connect attempt at most this long.
    pub connect_timeout: Duration,
    /// Further upstreams to try after a refusal or a timeout (Route::Upstreams only).
    pub retries: u32,
    pub relay: RelayOptions,
    /// A PROXY protocol header to send to the upstream first, with the client's addresses (in the
    /// clear before the ClientHello when `upstream_tls` is set, as HAProxy sends it).
    pub send_header: Option<crate::proxy_protocol::Version>,
    /// Originate TLS to the upstream: its handshake runs after the connect and before the relay.
    /// The name sent and verified is the config's `server_name`, else the upstream's IP address.
    pub upstream_tls: Option<ClientTlsConfig>,
}

/// What a listening port does with what it accepts, beyond handing it over.
#[derive(Debug, Default, Clone)]
pub struct PortRole {
    /// Clients must begin with a PROXY protocol header (read and checked in the core).
    pub header: Option<Arc<HeaderPolicy>>,
    /// Proxy the clients to upstreams in the core instead of handing them to the consumer.
    pub proxy: Option<Arc<ProxyConfig>>,
    /// Terminate TLS: each client's handshake runs in the core (after its PROXY header, if one is
    /// expected) before it is handed on; a failed one never is. Replaceable while the port runs
    /// (`Reactor::set_port_tls`): new handshakes take the new config.
    pub tls: Option<ReloadableServerConfig>,
}

impl PortRole {
    /// Whether accepted connections need the core's attention before they are handed on.
    pub fn is_plain(&self) -> bool {
        self.header.is_none() && self.proxy.is_none() && self.tls.is_none()
    }
}
