//! The registry's part in datagram proxies: forwarding each client's datagrams to its session
//! (opening sessions, or asking the consumer for a route), the replies back to the clients,
//! ending sessions (idle, `responses`), stopping a port, and the figures.
//!
//! Where it runs: in the threaded mode every socket of a datagram proxy is on the relay poller,
//! which the I/O thread alone turns, so datagrams never wait for (or cost) the JS thread; with
//! `thread: false` on the main poller, turned by Node's loop. Work left for later in a turn (a
//! port's replies to send, a socket whose budget ran out) is this module's own list, run at the
//! end of the turn of whichever loop serves these sockets (`run_datagram_work`).
//!
//! Batching: a port reads up to 32 datagrams per `recvmmsg`; consecutive datagrams of one client
//! leave on its session's socket in one `sendmmsg`. Replies read from any number of sessions in a
//! turn are queued on their port and leave together when the port is serviced at the end of the
//! turn (it is deferred for that), one `sendmmsg` for all. GSO is used only where the sender used
//! it: a train that arrived coalesced (`UDP_GRO`, on for every upstream socket, and on the
//! listening socket if its owner turned it on) leaves as one train again; single datagrams are
//! never merged into trains, whose pieces cost a receiver without GRO more of its buffer.

use super::registry::State;
use crate::datagram::send_queue::SendQueue;
use crate::datagram_proxy::port::{DatagramProxy, RECV_SLOT, RECV_SLOTS};
use crate::datagram_proxy::session::{DatagramSession, OpenError, Opening};
use crate::datagram_proxy::{client_key, DatagramProxyConfig};
use crate::entry::Entry;
use crate::service::{DatagramStep, Step};
use crate::sys::mmsg::RecvBatch;
use crate::sys::{meminfo, udp_offload};
use crate::wire::{kind, push_datagram_route, DatagramProxyStats};
use mio::unix::SourceFd;
use mio::Registry;
use socket2::SockAddr;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Instant;

/// Datagrams one service reads from a socket before other sockets get a go.
const DATAGRAMS_PER_TURN: usize = 256;
/// Datagrams (bytes) queued for one session's upstream before they are sent mid-batch.
const UPSTREAM_DATAGRAMS: usize = 256;
const UPSTREAM_BYTES: usize = 256 * 1024;

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Expired,
    Completed,
}

impl State {
    /// Makes a datagram proxy of `sock` (an adopted, checked duplicate) and registers it (with the
    /// relay poller where there is one); datagrams may be waiting already: it is looked at once.
    pub fn insert_datagram_proxy(&mut self, registry: &Registry, sock: socket2::Socket, config: DatagramProxyConfig) -> io::Result<u32> {
        let id = self.entries.insert(self.relays.registry(registry), Entry::DatagramProxy(Box::new(DatagramProxy::new(sock, config))))?;
        self.queue_datagram_work(id);
        self.relays.wake_poller();
        Ok(id)
    }

    pub fn has_datagram_work(&self) -> bool {
        !self.forwarding.work.is_empty()
    }

    /// Services `id` again before the turn ends.
    fn queue_datagram_work(&mut self, id: u32) {
        if self.forwarding.work_ids.insert(id) {
            self.forwarding.work.push_back(id);
        }
    }

    /// Services the ports and sessions queued (on the loop that serves datagram proxies).
    pub fn run_datagram_work(&mut self, registry: &Registry) {
        for _ in 0..self.forwarding.work.len() {
            let Some(id) = self.forwarding.work.pop_front() else { return };
            self.forwarding.work_ids.remove(&id);
            self.service(registry, id, crate::service::Ready::default());
        }
    }

    pub(super) fn on_datagrams(&mut self, registry: &Registry, id: u32, step: DatagramStep) {
        match step {
            DatagramStep::FromClients => self.forward_from_clients(registry, id),
            DatagramStep::FromUpstream => self.forward_replies(registry, id),
            DatagramStep::Expired => self.end_session(registry, id, Ended::Expired),
        }
    }

    // ---- clients → upstreams ----

    fn forward_from_clients(&mut self, registry: &Registry, port: u32) {
        let Some(Entry::DatagramProxy(p)) = self.entries.get_mut(port) else { return };
        let mut recv = p.recv.take().unwrap_or_else(|| RecvBatch::new(RECV_SLOT, RECV_SLOTS));
        let fd = p.sock.as_raw_fd();
        // ROUTE records need room in the batch: a full one waits for the consumer.
        let routes = p.config.route.is_consumer();
        let (mut taken, mut more, mut stalled) = (0, true, false);
        while taken < DATAGRAMS_PER_TURN {
            if routes && self.batch.is_full() {
                stalled = true;
                break;
            }
            match recv.recv(fd) {
                Ok(n) => {
                    let now = Instant::now();
                    for i in 0..n {
                        let (bytes, from, segment, length) = recv.message_and_length(i);
                        let Some(client) = client_key(&from) else { continue };
                        let message = &bytes[..length.min(bytes.len())];
                        taken += self.datagram_of_client(registry, port, client, message, segment, now);
                    }
                    if n < recv.capacity() {
                        more = false; // drained: the next datagram raises a new edge
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    more = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // An error queued on the socket: it is taken by the call; go on.
                Err(_) => taken += 1,
            }
        }
        self.flush_to_upstream();
        if let Some(Entry::DatagramProxy(p)) = self.entries.get_mut(port) {
            p.recv = Some(recv);
            p.readable = more;
        }
        if stalled {
            // Taking the batch wakes the main loop, whose deferred pass comes back here.
            self.stalled = true;
            self.defer(port);
        } else if more {
            self.queue_datagram_work(port);
        }
    }

    /// One datagram from `client`, or (`segment` > 0) a train of them coalesced by the kernel: to
    /// its session, a new one, or the consumer's routing. Returns how many datagrams it held.
    fn datagram_of_client(&mut self, registry: &Registry, port: u32, client: SocketAddr, message: &[u8], segment: usize, now: Instant) -> usize {
        let count = udp_offload::segments(message.len(), segment).count();
        let Some(Entry::DatagramProxy(p)) = self.entries.get_mut(port) else { return count };
        p.counts.datagrams_from_clients += count as u64;
        p.counts.bytes_from_clients += message.len() as u64;
        let session = match p.sessions.get(&client) {
            Some(&sid) => sid,
            None => {
                if let Some(token) = p.routing.token_of(&client) {
                    for range in udp_offload::segments(message.len(), segment) {
                        if !p.routing.queue(token, &message[range]) {
                            p.counts.datagrams_dropped += 1;
                        }
                    }
                    return count;
                }
                if p.at_capacity() {
                    p.counts.refused_max_sessions += 1;
                    p.counts.datagrams_dropped += count as u64;
                    return count;
                }
                if !p.config.route.is_consumer() {
                    let Some(to) = p.next_upstream() else {
                        p.counts.upstream_errors += 1; // an empty list: nowhere to go
                        p.counts.datagrams_dropped += count as u64;
                        return count;
                    };
                    match self.open_session(registry, port, client, &to, now) {
                        Some(sid) => sid,
                        None => {
                            self.count_datagrams(port, |c| c.datagrams_dropped += count as u64);
                            return count;
                        }
                    }
                } else {
                    // The consumer routes: ask with the first datagram, and keep them all meanwhile.
                    let mut datagrams = udp_offload::segments(message.len(), segment);
                    let first = &message[datagrams.next().unwrap_or(0..0)];
                    let token = p.routing.start(client, first);
                    for range in datagrams {
                        if !p.routing.queue(token, &message[range]) {
                            p.counts.datagrams_dropped += 1;
                        }
                    }
                    let offset = push_datagram_route(&mut self.batch.data, token, &SockAddr::from(client), first);
                    self.batch.push(kind::DATAGRAM_ROUTE, port, offset as u32, first.len() as u32);
                    return count;
                }
            }
        };
        self.queue_to_upstream(session, message, segment, now);
        count
    }

    /// Opens a session of `port` for `client` to `to`; None when it was refused (counted).
    fn open_session(&mut self, registry: &Registry, port: u32, client: SocketAddr, to: &SockAddr, now: Instant) -> Option<u32> {
        let Some(Entry::DatagramProxy(p)) = self.entries.get_mut(port) else { return None };
        let opening = Opening {
            port,
            client,
            to,
            idle_timeout: p.config.idle_timeout,
            header_destination: p.config.proxy_header.then_some(p.local),
            now,
        };
        let session = match DatagramSession::open(opening, p.source_ports.as_mut()) {
            Ok(s) => s,
            Err(OpenError::NoSourcePort) => {
                p.counts.refused_no_source_port += 1;
                return None;
            }
            Err(OpenError::Upstream) => {
                p.counts.upstream_errors += 1;
                return None;
            }
        };
        let source_port = session.source_port;
        // Nothing to read yet: registered without a first look.
        match self.entries.insert(self.relays.registry(registry), Entry::DatagramSession(session)) {
            Ok(sid) => {
                if let Some(Entry::DatagramSession(s)) = self.entries.get_mut(sid) {
                    if let Step::WakeAt(at) = s.check_idle(now) {
                        self.deadlines.wake(sid, at);
                    }
                }
                self.count_datagrams(port, |c| c.sessions_created += 1);
                if let Some(Entry::DatagramProxy(p)) = self.entries.get_mut(port) {
                    p.sessions.insert(client, sid);
                }
                Some(sid)
            }
            // The poller refused it (ENOSPC: max_user_watches; ENOMEM): the socket is closed.
            Err(_) => {
                if let Some(Entry::DatagramProxy(p)) = self.entries.get_mut(port) {
                    p.counts.refused_no_source_port += 1;
                    if let (Some(range), Some(n)) = (p.source_ports.as_mut(), source_port) {
                        range.release(n);
                    }
                }
                None
            }
        }
    }

    /// Queues `data` (a datagram, or a train of `segment`-byte datagrams) for session `sid`'s
    /// upstream; datagrams of one session leave together, a train as one GSO message again.
    fn queue_to_upstream(&mut self, sid: u32, data: &[u8], segment: usize, now: Instant) {
        if self.forwarding.to_session != Some(sid) {
            self.flush_to_upstream();
        }
        let Some(Entry::DatagramSession(s)) = self.entries.get_mut(sid) else { return };
        s.last_active = now;
        let queue = self.forwarding.to_upstream.get_or_insert_with(|| SendQueue::trains(udp_offload::gso_supported(&s.sock)));
        match &s.header {
            // Each datagram gets its own header: a train is cut apart.
            Some(header) => {
                for range in udp_offload::segments(data.len(), segment) {
                    queue.push_parts(None, &[header, &data[range]]);
                    s.requests += 1;
                }
            }
            None if segment > 0 && data.len() > segment => {
                queue.push_train(None, data, segment);
                s.requests += udp_offload::segments(data.len(), segment).count() as u64;
            }
            None => {
                queue.push(None, data);
                s.requests += 1;
            }
        }
        self.forwarding.to_session = Some(sid);
        if queue.len() >= UPSTREAM_DATAGRAMS || queue.bytes() >= UPSTREAM_BYTES {
            self.flush_to_upstream();
        }
    }

    /// Sends what is queued for one session's upstream.
    fn flush_to_upstream(&mut self) {
        let Some(sid) = self.forwarding.to_session.take() else { return };
        let Some(queue) = self.forwarding.to_upstream.as_mut() else { return };
        let (queued, bytes) = (queue.datagrams() as u64, queue.bytes() as u64);
        let (port, flushed) = match self.entries.get(sid) {
            Some(Entry::DatagramSession(s)) => (s.port, queue.flush(s.sock.as_raw_fd())),
            _ => {
                queue.clear();
                return;
            }
        };
        self.count_datagrams(port, |c| {
            c.datagrams_to_upstreams += flushed.sent;
            c.bytes_to_upstreams += if flushed.sent == queued { bytes } else { bytes * flushed.sent / queued.max(1) };
            c.datagrams_dropped += queued - flushed.sent;
            c.upstream_errors += flushed.errors.len() as u64;
        });
    }

    // ---- upstreams → clients ----

    /// Reads session `sid`'s replies and queues them on its port for the client.
    fn forward_replies(&mut self, registry: &Registry, sid: u32) {
        let Some(Entry::DatagramSession(s)) = self.entries.get(sid) else { return };
        let (fd, port, client) = (s.sock.as_raw_fd(), s.port, s.client);
        let mut recv = self.forwarding.replies_recv.take().unwrap_or_else(|| RecvBatch::new(RECV_SLOT, RECV_SLOTS));
        let (mut replies, mut bytes, mut errors, mut tries) = (0u64, 0u64, 0u64, 0);
        let mut more = true;
        while tries < DATAGRAMS_PER_TURN {
            match recv.recv(fd) {
                Ok(n) => {
                    let Some(Entry::DatagramProxy(p)) = self.entries.get_mut(port) else { break };
                    for i in 0..n {
                        let (data, _, segment, length) = recv.message_and_length(i);
                        let message = &data[..length.min(data.len())];
                        let count = udp_offload::segments(message.len(), segment).count();
                        bytes += message.len() as u64;
                        p.queue_reply(client, message, segment);
                        replies += count as u64;
                        tries += count;
                    }
                    if n < recv.capacity() {
                        more = false;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    more = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // ECONNREFUSED (the upstream's port is closed) and other errors the kernel queued.
                Err(_) => {
                    errors += 1;
                    tries += 1;
                }
            }
        }
        self.forwarding.replies_recv = Some(recv);
        let responses = match self.entries.get_mut(port) {
            Some(Entry::DatagramProxy(p)) => {
                p.counts.datagrams_from_upstreams += replies;
                p.counts.bytes_from_upstreams += bytes;
                p.counts.upstream_errors += errors;
                p.config.responses
            }
            _ => None,
        };
        let Some(Entry::DatagramSession(s)) = self.entries.get_mut(sid) else { return };
        s.replies += replies;
        if replies > 0 {
            s.last_active = Instant::now();
        }
        s.readable = more;
        let complete = s.complete(responses);
        if replies > 0 {
            self.queue_datagram_work(port); // the port sends the replies before the turn ends
        }
        if complete {
            self.end_session(registry, sid, Ended::Completed);
        } else if more {
            self.queue_datagram_work(sid);
        }
    }

    // ---- the end of sessions and ports ----

    fn end_session(&mut self, registry: &Registry, sid: u32, how: Ended) {
        if self.forwarding.to_session == Some(sid) {
            self.flush_to_upstream();
        }
        let drops = match self.entries.get(sid) {
            Some(Entry::DatagramSession(s)) => meminfo::kernel_drops(&s.sock).map_or(0, u64::from),
            _ => return,
        };
        let Some(Entry::DatagramSession(s)) = self.remove(registry, sid) else { return };
        let Some(Entry::DatagramProxy(p)) = self.entries.get_mut(s.port) else { return };
        if p.sessions.get(&s.client) == Some(&sid) {
            p.sessions.remove(&s.client);
            crate::entry::shrink_when_mostly_empty(&mut p.sessions);
        }
        if let (Some(range), Some(n)) = (p.source_ports.as_mut(), s.source_port) {
            range.release(n);
        }
        p.upstream_drops_closed += drops;
        match how {
            Ended::Expired => p.counts.sessions_expired += 1,
            Ended::Completed => p.counts.sessions_completed += 1,
        }
        if p.finished() {
            self.close_datagram_proxy(registry, s.port);
        }
    }

    /// Stops `port`: it reads nothing more (its socket leaves the poller; the caller's fd, or a
    /// successor's, still receives); its sessions go on until they end, and then it closes
    /// (a DATAGRAM_PROXY_CLOSED record). False when `port` is not a datagram proxy.
    pub fn stop_datagram_proxy(&mut self, registry: &Registry, port: u32) -> bool {
        let Some(Entry::DatagramProxy(p)) = self.entries.get_mut(port) else { return false };
        if p.receiving {
            p.receiving = false;
            let _ = self.relays.registry(registry).deregister(&mut SourceFd(&p.sock.as_raw_fd()));
            if p.finished() {
                self.close_datagram_proxy(registry, port);
            }
        }
        true
    }

    fn close_datagram_proxy(&mut self, registry: &Registry, port: u32) {
        let Some(Entry::DatagramProxy(p)) = self.entries.get_mut(port) else { return };
        p.send_replies();
        let figures = p.figures(0);
        self.forwarding.closed.insert(port, figures);
        self.remove(registry, port);
        self.batch.push(kind::DATAGRAM_PROXY_CLOSED, port, 0, 0);
    }

    // ---- the consumer's answers and questions ----

    /// The consumer's answer for a new client of `port` waiting under `token`: an upstream, or
    /// None to refuse it.
    pub fn route_datagrams(&mut self, registry: &Registry, port: u32, token: u32, to: Option<SockAddr>) {
        let Some(Entry::DatagramProxy(p)) = self.entries.get_mut(port) else { return };
        let Some(waiting) = p.routing.finish(token) else { return };
        let queued = waiting.datagrams.len() as u64;
        let session = match to {
            Some(to) => self.open_session(registry, port, waiting.client, &to, Instant::now()),
            None => {
                self.count_datagrams(port, |c| c.refused_by_route += 1);
                None
            }
        };
        match session {
            Some(sid) => {
                let now = Instant::now();
                for datagram in &waiting.datagrams {
                    self.queue_to_upstream(sid, datagram, 0, now);
                }
                self.flush_to_upstream();
            }
            None => self.count_datagrams(port, |c| c.datagrams_dropped += queued),
        }
        if matches!(self.entries.get(port), Some(Entry::DatagramProxy(p)) if p.finished()) {
            self.close_datagram_proxy(registry, port);
        }
    }

    /// A datagram proxy's figures now; for one that closed, its final figures (once).
    pub fn datagram_proxy_stats(&mut self, port: u32) -> Option<DatagramProxyStats> {
        let Some(Entry::DatagramProxy(p)) = self.entries.get(port) else { return self.forwarding.closed.remove(&port) };
        let open: u64 = p
            .sessions
            .values()
            .filter_map(|sid| match self.entries.get(*sid) {
                Some(Entry::DatagramSession(s)) => meminfo::kernel_drops(&s.sock).map(u64::from),
                _ => None,
            })
            .sum();
        Some(p.figures(open))
    }

    fn count_datagrams(&mut self, port: u32, f: impl FnOnce(&mut DatagramProxyStats)) {
        if let Some(Entry::DatagramProxy(p)) = self.entries.get_mut(port) {
            f(&mut p.counts);
        }
    }
}
