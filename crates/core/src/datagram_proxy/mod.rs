//! The native UDP forwarder: a listening datagram socket whose clients each get a session, and
//! each session its own connected upstream socket. Datagrams from a client go out on its
//! session's socket; replies come back on that socket, demultiplexed by the kernel (a connected
//! UDP socket receives only from its peer: no table lookup per reply, and a datagram from any
//! other source is dropped by the kernel), and leave through the listening socket to the client.
//! Everything runs in the core, in batches (recvmmsg/sendmmsg, GRO/GSO where they apply), with no
//! JS per datagram except an optional routing function, called once per new client, in batches.
//!
//! The pieces, each beside its type: `port` (the listening socket, its sessions by client, the
//! replies waiting to leave), `session` (one client's upstream socket, its idle clock and reply
//! count), `source_ports` (the local ports a port may bind its upstream sockets to), `routing`
//! (new clients waiting for the routing function). The loop carries out what they ask
//! (`event_loop::datagram_proxy`).

pub mod forwarding;
pub mod port;
pub(crate) mod routing;
pub(crate) mod session;
pub mod source_ports;

use socket2::SockAddr;
use std::net::SocketAddr;
use std::time::Duration;

/// Where a datagram proxy sends a new client.
#[derive(Debug, Clone)]
pub enum DatagramRoute {
    /// To these upstreams in turn (round robin), one per new session.
    Upstreams(Vec<SockAddr>),
    /// The consumer decides per new client (a DATAGRAM_ROUTE record; `Reactor::route_datagrams`).
    Consumer,
}

impl DatagramRoute {
    pub fn is_consumer(&self) -> bool {
        matches!(self, DatagramRoute::Consumer)
    }
}

/// How a datagram proxy runs (fixed when it is made).
#[derive(Debug, Clone)]
pub struct DatagramProxyConfig {
    pub route: DatagramRoute,
    /// A session with no datagram either way for this long ends (None: never).
    pub idle_timeout: Option<Duration>,
    /// Sessions (open, or waiting for their route) at most; a new client past it is refused.
    pub max_sessions: Option<u32>,
    /// A session ends once it has received this many replies per datagram it forwarded (as
    /// nginx's `proxy_responses`: 1 for DNS). None: only the idle timeout ends it.
    pub responses: Option<u32>,
    /// Put a PROXY protocol v2 header (the client's address, UDP) in front of every datagram to
    /// the upstream.
    pub proxy_header: bool,
    /// Bind each upstream socket to a local port in this range (inclusive) before connecting it.
    pub source_ports: Option<(u16, u16)>,
}

/// A client as the port's table knows it: its address, without the IPv6 flow label (which the
/// kernel may report per datagram, and which does not make another client).
pub fn client_key(from: &SockAddr) -> Option<SocketAddr> {
    match from.as_socket()? {
        SocketAddr::V6(mut v6) => {
            v6.set_flowinfo(0);
            Some(SocketAddr::V6(v6))
        }
        v4 => Some(v4),
    }
}
