//! The registry's part in proxy sessions and PROXY-header ports: registering what such a port
//! accepts, and carrying out the steps of an `Incoming` and its `Upstream` (hand-over to the
//! consumer, routing, connecting with retries, the relay), with the port's figures kept as they go.

use super::registry::State;
use crate::entry::Entry;
use crate::proxy::incoming::{Incoming, Phase};
use crate::proxy::upstream::Upstream;
use crate::proxy::{ProxyConfig, Route};
use crate::proxy_protocol::{encode_v1, encode_v2, Header, Version};
use crate::relay::engine::Lent;
use crate::relay::PortRelay;
use crate::service::SessionStep;
use crate::stream::listener::Admitted;
use crate::stream::tls::{Report, TlsLayer};
use crate::stream::Stream;
use crate::tls::TlsSession;
use crate::wire::{address, kind, push_proxy_info};
use mio::Registry;
use socket2::SockAddr;

use std::sync::Arc;
use std::time::Instant;

impl State {
    /// Registers a connection that a PROXY-header or proxy port accepted; it is looked at once.
    pub(super) fn register_incoming(&mut self, registry: &Registry, listener: u32, a: Admitted) {
        let Some(Entry::Listener(l)) = self.entries.get(listener) else { return };
        let incoming = Incoming::new(a.sock, a.peer, (listener, a.ticket), l.role.clone(), l.unix);
        // A proxy port's sessions live on the relay poller, whichever loop accepted them (a retry
        // after EMFILE runs on the main one): their relay then starts where its sockets are.
        let home = if incoming.role.proxy.is_some() { self.relays.registry(registry) } else { registry };
        // A registration failure drops (closes) it: the client sees a close. It is looked at once,
        // now, rather than on a later pass.
        if let Ok(id) = self.entries.insert(home, Entry::Incoming(Box::new(incoming))) {
            self.service(registry, id, crate::service::Ready::default());
        }
    }

    pub(super) fn on_session(&mut self, registry: &Registry, id: u32, step: SessionStep) {
        match step {
            SessionStep::HeaderDone => self.hand_on(registry, id),
            SessionStep::HeaderFailed => {
                self.count(id, |s| s.proxy_header_errors += 1);
                self.close_session(registry, id);
            }
            SessionStep::ClientGone => self.close_session(registry, id),
            SessionStep::HandshakeFailed => {
                self.count(id, |s| s.tls_handshake_failures += 1);
                self.entries.shared_counters.tls_handshake_failed();
                self.close_session(registry, id);
            }
            SessionStep::UpstreamHandshakeFailed { client } => {
                self.entries.shared_counters.tls_handshake_failed();
                self.upstream_failed(registry, client);
            }
            SessionStep::ConnectTimedOut => self.upstream_failed(registry, id),
            SessionStep::UpstreamFailed { client } => self.upstream_failed(registry, client),
            SessionStep::UpstreamReady { client } => self.start_session_relay(registry, client),
            SessionStep::DrainDeadline => self.drain_deadline(registry, id),
        }
    }

    /// The header is read (or none was expected): to the consumer as an accepted connection, or
    /// on to an upstream.
    fn hand_on(&mut self, registry: &Registry, id: u32) {
        let counters = self.entries.shared_counters.clone();
        let Some(Entry::Incoming(c)) = self.entries.get_mut(id) else { return };
        let client = c.client();
        let (port, _) = c.origin;
        let proxy = c.role.proxy.clone();
        if let Some(header) = &c.header {
            let (offset, len) = push_proxy_info(&mut self.batch.data, header);
            self.batch.push(kind::PROXY_INFO, id, offset as u32, len as u32);
        }
        if let Some(tls) = &c.tls {
            counters.tls_session();
            if proxy.is_none() {
                tls.report_ready(id, &mut self.batch); // its parameters, before the ACCEPT
            }
        }
        match proxy {
            None => {
                let early = std::mem::take(&mut c.early);
                self.entries.convert(id, |e| match e {
                    Entry::Incoming(c) => Entry::Stream(session_stream(*c)),
                    other => other,
                });
                let record = address::encode(&client, &mut self.batch.data);
                self.batch.push(kind::ACCEPT, port, id, record as u32);
                // Bytes that came with the header are the connection's first data.
                if !early.is_empty() {
                    let offset = self.batch.data.len();
                    self.batch.data.extend_from_slice(&early);
                    self.batch.push_data(id, offset, early.len());
                }
                self.defer(id);
            }
            Some(config) => match &config.route {
                Route::Upstreams(..) => self.connect_next(registry, id, &config),
                Route::Consumer => {
                    c.phase = Phase::Route;
                    c.deadline = None;
                    let record = address::encode(&client, &mut self.batch.data);
                    self.batch.push(kind::ROUTE, id, record as u32, port);
                }
            },
        }
    }

    /// The consumer's answer for a session waiting for a route: an upstream, or None to refuse.
    pub fn route(&mut self, registry: &Registry, id: u32, to: Option<SockAddr>) {
        let Some(Entry::Incoming(c)) = self.entries.get_mut(id) else { return };
        if c.phase != Phase::Route {
            return;
        }
        let Some(config) = c.role.proxy.clone() else { return };
        match to {
            Some(to) => self.connect_to(registry, id, &to, None, &config),
            None => {
                self.count(id, |s| s.refused_by_route += 1);
                self.close_session(registry, id);
            }
        }
    }

    /// Connects the session to the next upstream the balance gives (none left: it is closed).
    fn connect_next(&mut self, registry: &Registry, id: u32, config: &Arc<ProxyConfig>) {
        let Route::Upstreams(list, balance) = &config.route else { return };
        let Some(Entry::Incoming(c)) = self.entries.get(id) else { return };
        let (port, tried) = (c.origin.0, c.tried.clone());
        let pick = match self.entries.get_mut(port) {
            Some(Entry::Listener(l)) if tried.len() <= config.retries as usize => l.balancer.pick(*balance, &tried),
            _ => None,
        };
        match pick {
            Some(i) => {
                if let Some(Entry::Listener(l)) = self.entries.get_mut(port) {
                    l.balancer.opened(i);
                }
                self.connect_to(registry, id, &list[i].clone(), Some(i), config);
            }
            None => {
                self.count(id, |s| s.upstream_unavailable += 1);
                self.close_session(registry, id);
            }
        }
    }

    fn connect_to(&mut self, registry: &Registry, id: u32, to: &SockAddr, target: Option<usize>, config: &ProxyConfig) {
        if let Some(Entry::Incoming(c)) = self.entries.get_mut(id) {
            c.phase = Phase::Connect;
            c.target = target;
            c.tried.extend(target);
            c.deadline = Instant::now().checked_add(config.connect_timeout);
            if let Some(at) = c.deadline {
                self.deadlines.wake(id, at);
            }
        }
        let tls = match self.upstream_tls(id, to, config) {
            Ok(tls) => tls,
            Err(_) => return self.upstream_failed(registry, id),
        };
        // On the relay poller with its client, whoever asked (a routing answer comes from JS).
        let poller = self.relays.registry(registry);
        match Upstream::connect(to, id, tls).and_then(|u| self.entries.insert(poller, Entry::Upstream(u))) {
            Ok(up) => {
                if let Some(Entry::Incoming(c)) = self.entries.get_mut(id) {
                    c.upstream = Some(up);
                }
            }
            // Refused at once (a UNIX path that does not exist, no route): the next one.
            Err(_) => self.upstream_failed(registry, id),
        }
    }

    /// This session's upstream connect failed or timed out: count it, try the next, or give up.
    fn upstream_failed(&mut self, registry: &Registry, id: u32) {
        let Some(Entry::Incoming(c)) = self.entries.get_mut(id) else { return };
        let (port, target, upstream) = (c.origin.0, c.target.take(), c.upstream.take());
        let Some(config) = c.role.proxy.clone() else { return };
        if let Some(up) = upstream {
            self.remove(registry, up);
        }
        if let Some(Entry::Listener(l)) = self.entries.get_mut(port) {
            match target {
                Some(i) => {
                    l.balancer.failed(i);
                    l.balancer.closed(i);
                }
                None => l.stats.upstream_connect_failures += 1, // a consumer-routed upstream
            }
        }
        match config.route {
            Route::Upstreams(..) => self.connect_next(registry, id, &config),
            Route::Consumer => {
                self.count(id, |s| s.upstream_unavailable += 1);
                self.close_session(registry, id);
            }
        }
    }

    /// Both sockets are connected: they become streams and the relay starts, the PROXY header to
    /// the upstream and the client's early bytes first.
    fn start_session_relay(&mut self, registry: &Registry, client: u32) {
        let Some(Entry::Incoming(c)) = self.entries.get_mut(client) else { return };
        let (Some(up), Some(config)) = (c.upstream, c.role.proxy.clone()) else { return };
        let port = c.origin.0;
        let target = c.target;
        let mut first = Vec::new();
        // With TLS to the upstream, the header went in the clear before the ClientHello.
        let header_sent = config.upstream_tls.is_some();
        if let (Some(version), false) = (config.send_header, header_sent) {
            encode_header(c, version, &mut first);
        }
        first.extend_from_slice(&c.early);
        self.entries.convert(client, |e| match e {
            Entry::Incoming(c) => Entry::Stream(session_stream(*c)),
            other => other,
        });
        if matches!(self.entries.get(up), Some(Entry::Upstream(u)) if u.tls.is_some()) {
            self.entries.shared_counters.tls_session();
        }
        self.entries.convert(up, |e| match e {
            Entry::Upstream(u) => {
                let mut s = match u.tls {
                    Some(tls) => Stream::with_tls(u.sock, u.unix, tls),
                    None => Stream::new(u.sock, u.unix),
                };
                s.only_descriptor = true;
                s.take_edges(u.edges);
                Entry::Stream(s)
            }
            other => other,
        });
        let owner = PortRelay { port, upstream: target.unwrap_or(usize::MAX) };
        let cx = Lent { entries: &mut self.entries, batch: &mut self.batch, registry, deadlines: &mut self.deadlines };
        match self.relays.start(cx, client, up, &[&first], &[], config.relay, Some(owner)) {
            Ok(_) => self.count_port(port, |s| s.sessions_relayed += 1),
            Err(_) => {
                for id in [client, up] {
                    if let Some(s) = self.entries.stream(id) {
                        s.prepare_abort();
                    }
                    self.remove(registry, id);
                }
            }
        }
    }

    /// Closes a session that never reached its relay (and its upstream, if one was connecting).
    pub(super) fn close_session(&mut self, registry: &Registry, id: u32) {
        let Some(Entry::Incoming(c)) = self.entries.get_mut(id) else { return };
        let (upstream, target, port) = (c.upstream.take(), c.target.take(), c.origin.0);
        let _ = c.sock.shutdown(std::net::Shutdown::Both);
        if let Some(up) = upstream {
            self.remove(registry, up);
        }
        if let (Some(i), Some(Entry::Listener(l))) = (target, self.entries.get_mut(port)) {
            l.balancer.closed(i);
        }
        self.remove(registry, id);
    }

    /// The TLS layer for session `id`'s upstream at `to` (None: the port sends plain TCP). The
    /// name verified is the config's `server_name`, else the upstream's IP address (a UNIX
    /// upstream needs a `server_name`: EINVAL otherwise).
    fn upstream_tls(&mut self, id: u32, to: &SockAddr, config: &ProxyConfig) -> std::io::Result<Option<TlsLayer>> {
        let Some(tls) = &config.upstream_tls else { return Ok(None) };
        let invalid = |_| std::io::Error::from_raw_os_error(libc::EINVAL);
        let host = to.as_socket().map(|a| a.ip().to_string()).unwrap_or_default();
        let name = tls.server_name_for(&host).map_err(invalid)?;
        let session = TlsSession::client(tls, name).map_err(std::io::Error::other)?;
        let mut layer = TlsLayer::new(session, tls.handshake_timeout, Report::Done);
        if let (Some(version), Some(Entry::Incoming(c))) = (config.send_header, self.entries.get(id)) {
            let mut header = Vec::new();
            encode_header(c, version, &mut header);
            layer.send_first_in_clear(&header);
        }
        Ok(Some(layer))
    }

    fn count(&mut self, session: u32, f: impl FnOnce(&mut crate::wire::PortStats)) {
        if let Some(Entry::Incoming(c)) = self.entries.get(session) {
            let port = c.origin.0;
            self.count_port(port, f);
        }
    }

    fn count_port(&mut self, port: u32, f: impl FnOnce(&mut crate::wire::PortStats)) {
        if let Some(Entry::Listener(l)) = self.entries.get_mut(port) {
            f(&mut l.stats);
        }
    }
}

/// An accepted connection as the stream it becomes (with its TLS layer, on a TLS port).
fn session_stream(c: Incoming) -> Stream {
    let mut s = match c.tls {
        Some(tls) => Stream::with_tls(c.sock, c.unix, tls),
        None => Stream::new(c.sock, c.unix),
    };
    s.origin = Some(c.origin);
    s.only_descriptor = true;
    s.take_edges(c.edges);
    s
}

/// Appends the PROXY header for the upstream of `c` to `out`.
fn encode_header(c: &Incoming, version: Version, out: &mut Vec<u8>) {
    let header = outgoing_header(c, version);
    match version {
        Version::V1 => encode_v1(&header, out),
        // An unencodable header (too many TLVs) goes as LOCAL: the upstream uses the real peer.
        Version::V2 => {
            let start = out.len();
            if encode_v2(&header, out).is_err() {
                out.truncate(start);
                let _ = encode_v2(&Header::local(version), out);
            }
        }
    }
}

/// The header a proxy port sends its upstream: the client's addresses (as a received header gave
/// them, or the connection's own), and where it connected to.
fn outgoing_header(c: &Incoming, version: Version) -> Header {
    if let Some(h) = &c.header {
        let mut out = h.clone();
        out.version = version;
        return out;
    }
    let (src, dst) = (c.peer.as_socket(), c.sock.local_addr().ok().and_then(|a| a.as_socket()));
    match (src, dst) {
        (Some(src), Some(dst)) => Header::tcp(version, src, dst),
        _ => Header::local(version),
    }
}

