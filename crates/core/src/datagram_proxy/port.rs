//! A datagram proxy's listening socket: it receives clients' datagrams in batches, knows each
//! client's session, and sends the replies its sessions queue for their clients, all together
//! once per loop turn (sendmmsg; a GSO train of the upstream's leaves as one again).

use super::routing::Routing;
use super::source_ports::SourcePorts;
use super::{DatagramProxyConfig, DatagramRoute};
use crate::datagram::send_queue::SendQueue;
use crate::service::{DatagramStep, Ready, Step};
use crate::sys::buffers::{buffer_size, Buffer};
use crate::sys::mmsg::RecvBatch;
use crate::sys::{meminfo, udp_offload};
use crate::wire::DatagramProxyStats;
use socket2::{SockAddr, Socket};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;

/// Receive buffers of a port (and of the sessions' shared reader): as many datagrams per
/// `recvmmsg`, each slot large enough for any datagram or a coalesced (GRO) buffer, so that a
/// proxy never truncates. Pages are only touched as far as datagrams fill them.
pub const RECV_SLOTS: usize = 32;
pub const RECV_SLOT: usize = udp_offload::GRO_BUFFER;

/// Replies queued past this many bytes (or `SEND_DATAGRAMS`) are sent at once rather than at the
/// end of the turn, so that a turn with many busy sessions holds a bounded amount.
const SEND_BYTES: usize = 256 * 1024;
const SEND_DATAGRAMS: usize = 1024;

pub struct DatagramProxy {
    /// The reactor's duplicate of the listening socket.
    pub sock: Socket,
    pub config: Arc<DatagramProxyConfig>,
    /// Its local address (the destination a PROXY header names).
    pub local: Option<SocketAddr>,
    /// An edge said datagrams may be waiting.
    pub readable: bool,
    /// False once stopped: it reads nothing more; its sessions go on until they end, and their
    /// replies still leave through this socket.
    pub receiving: bool,
    /// Receive buffers, made on first use (taken out while their datagrams are forwarded).
    pub recv: Option<RecvBatch>,
    /// The session of each client.
    pub sessions: HashMap<SocketAddr, u32>,
    pub routing: Routing,
    /// Replies for clients, sent once per turn (or sooner when large).
    pub replies: SendQueue,
    /// The upstream the next new session gets (round robin).
    next_upstream: usize,
    pub source_ports: Option<SourcePorts>,
    /// Totals (the levels are filled in by `figures`).
    pub counts: DatagramProxyStats,
    /// The kernel's drop count of the listening socket when the port was made.
    drops_at_start: u32,
    /// Drops at upstream sockets already closed.
    pub upstream_drops_closed: u64,
}

impl std::fmt::Debug for DatagramProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatagramProxy").field("fd", &self.sock.as_raw_fd()).field("sessions", &self.sessions.len()).finish()
    }
}

impl DatagramProxy {
    pub fn new(sock: Socket, config: DatagramProxyConfig) -> DatagramProxy {
        let local = sock.local_addr().ok().and_then(|a| a.as_socket());
        let source_ports = config.source_ports.map(|(low, high)| SourcePorts::new(low, high));
        let drops_at_start = meminfo::kernel_drops(&sock).unwrap_or(0);
        let replies = SendQueue::trains(udp_offload::gso_supported(&sock));
        DatagramProxy {
            sock,
            config: Arc::new(config),
            local,
            readable: true,
            receiving: true,
            recv: None,
            sessions: HashMap::new(),
            routing: Routing::default(),
            replies,
            next_upstream: 0,
            source_ports,
            counts: DatagramProxyStats::default(),
            drops_at_start,
            upstream_drops_closed: 0,
        }
    }

    /// Sends the replies queued for clients, then asks for its clients' datagrams to be read.
    pub fn service(&mut self, ready: Ready) -> Step {
        if ready.readable {
            self.readable = true;
        }
        self.send_replies();
        if self.receiving && self.readable {
            Step::Datagrams(DatagramStep::FromClients)
        } else {
            Step::Idle
        }
    }

    /// Queues replies for `client`: one datagram, or (`segment` > 0) a train of datagrams of that
    /// size as the upstream sent it with GSO, which leaves as one again. Sends the queue at once
    /// when it grew large (else the caller makes sure the port is serviced before the turn ends).
    pub fn queue_reply(&mut self, client: SocketAddr, reply: &[u8], segment: usize) {
        let to = Some(SockAddr::from(client));
        if segment > 0 && reply.len() > segment {
            self.replies.push_train(to, reply, segment);
        } else {
            self.replies.push(to, reply);
        }
        if self.replies.bytes() >= SEND_BYTES || self.replies.len() >= SEND_DATAGRAMS {
            self.send_replies();
        }
    }

    /// Sends the queued replies (a full send buffer drops them, counted: UDP may).
    pub fn send_replies(&mut self) {
        if self.replies.is_empty() {
            return;
        }
        let bytes = self.replies.bytes() as u64;
        let queued = self.replies.datagrams() as u64;
        let flushed = self.replies.flush(self.sock.as_raw_fd());
        self.counts.datagrams_to_clients += flushed.sent;
        // Bytes of the datagrams sent: all of them, unless some were dropped (then in proportion).
        self.counts.bytes_to_clients += if flushed.sent == queued { bytes } else { bytes * flushed.sent / queued.max(1) };
        self.counts.datagrams_dropped += queued - flushed.sent;
    }

    /// The upstream for the next new session (Route::Upstreams), in turn.
    pub fn next_upstream(&mut self) -> Option<SockAddr> {
        let DatagramRoute::Upstreams(list) = &self.config.route else { return None };
        let to = list.get(self.next_upstream % list.len().max(1))?.clone();
        self.next_upstream = self.next_upstream.wrapping_add(1);
        Some(to)
    }

    /// Whether a new client would pass maxSessions (sessions open and waiting for a route count).
    pub fn at_capacity(&self) -> bool {
        self.config.max_sessions.is_some_and(|max| self.sessions.len() + self.routing.len() >= max as usize)
    }

    /// Whether a stopped port has nothing left: it may close.
    pub fn finished(&self) -> bool {
        !self.receiving && self.sessions.is_empty() && self.routing.is_empty()
    }

    /// Its figures now: the totals, and the levels read at this moment (`upstream_drops_open`:
    /// the drops of its open sessions' sockets).
    pub fn figures(&self, upstream_drops_open: u64) -> DatagramProxyStats {
        let mut s = self.counts;
        s.sessions_active = self.sessions.len() as u64;
        s.sessions_routing = self.routing.len() as u64;
        s.kernel_drops = meminfo::kernel_drops(&self.sock).map_or(0, |n| u64::from(n.wrapping_sub(self.drops_at_start)));
        s.upstream_kernel_drops = self.upstream_drops_closed + upstream_drops_open;
        let fd = self.sock.as_raw_fd();
        s.recv_buffer_size = buffer_size(fd, Buffer::Receive).map_or(0, |n| n.max(0) as u64);
        s.send_buffer_size = buffer_size(fd, Buffer::Send).map_or(0, |n| n.max(0) as u64);
        s
    }
}
