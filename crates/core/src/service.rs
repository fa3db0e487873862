//! What servicing one entry asks of the loop. Each kind of entry (stream, listener, datagram)
//! services itself beside its type and answers with a `Step`; the registry carries the step out
//! (`event_loop::registry`). A new kind of entry is a file with its type and its `service`, plus
//! one arm in the registry's dispatch.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::time::{Duration, Instant};

/// Readiness reported by one poll event (all false: a deferred pass, no new edge).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ready {
    pub readable: bool,
    pub read_closed: bool,
    pub writable: bool,
    pub error: bool,
}

/// What the edges said of a socket's read side, kept until a read settles it: edge triggering
/// reports each change once, so the entry that owns the socket remembers it, and hands it on with
/// the socket (a proxy session's client and upstream, to the streams they become).
#[derive(Debug, Clone, Copy)]
pub struct ReadEdges {
    /// An edge said bytes may be waiting, and no read has drained them since.
    pub readable: bool,
    /// An edge reported the peer's FIN (EPOLLRDHUP). Kept apart from `readable`: a short read
    /// clears `readable`, but the FIN behind that data raises no further edge.
    pub peer_closed: bool,
}

impl ReadEdges {
    /// A socket registered after the peer could send: data may be waiting already.
    pub const UNKNOWN: ReadEdges = ReadEdges { readable: true, peer_closed: false };
    /// A socket whose connect is in progress: nothing can arrive before an edge says so.
    pub const QUIET: ReadEdges = ReadEdges { readable: false, peer_closed: false };

    /// Remembers what one event said.
    pub fn record(&mut self, ready: Ready) {
        self.readable |= ready.readable;
        self.peer_closed |= ready.read_closed;
    }

    /// A read returned less than it asked for: the socket is drained (new bytes raise a new edge),
    /// unless a FIN was reported, which must still be read to its EOF.
    pub fn short_read(&mut self) {
        if !self.peer_closed {
            self.readable = false;
        }
    }

    /// A read found nothing (WouldBlock), or the EOF: nothing to read until the next edge.
    pub fn drained(&mut self) {
        self.readable = false;
    }

    /// A read may find something: bytes, or the FIN not read yet.
    pub fn worth_reading(&self) -> bool {
        self.readable || self.peer_closed
    }
}

#[cfg(test)]
mod read_edges_tests {
    use super::{ReadEdges, Ready};

    #[test]
    fn a_short_read_drains_unless_a_fin_waits_behind_it() {
        let mut edges = ReadEdges::QUIET;
        assert!(!edges.worth_reading());
        edges.record(Ready { readable: true, ..Ready::default() });
        assert!(edges.worth_reading());
        edges.short_read();
        assert!(!edges.worth_reading(), "drained: the next bytes raise an edge");
        edges.record(Ready { readable: true, read_closed: true, ..Ready::default() });
        edges.short_read();
        assert!(edges.readable, "the FIN behind the bytes is still to be read");
        edges.drained();
        assert!(edges.worth_reading(), "a reported FIN stays worth a read until the EOF ends the source");
        assert!(!ReadEdges::QUIET.readable && ReadEdges::UNKNOWN.readable);
    }
}

/// What an entry's service asks of the loop.
#[derive(Debug)]
pub enum Step {
    /// Nothing until the next edge.
    Idle,
    /// Work is left (a budget ran out, or the batch is full): come back on a later pass, or once
    /// the consumer has taken the batch.
    More,
    /// The entry failed: remove it and report the errno.
    Fail(io::Error),
    /// The entry closed in order (shutdown done): remove it, and report the close when `report`.
    Close { report: bool },
    /// A relaying connection: its relay is the relay engine's to serve. With the event that
    /// called for it (which connection, how it is ready), so that only the direction it concerns
    /// is pumped; a pass with no event (`Ready::default()`) pumps both.
    Relay(u32, u32, Ready),
    /// End this relay in order (the consumer closed one of its connections).
    EndRelay(u32),
    /// Out of descriptors, none could be freed: try again after a while.
    RetryLater,
    /// Nothing until this time (or the next edge).
    WakeAt(Instant),
    /// A step of a proxy session (see `event_loop::sessions`).
    Session(SessionStep),
    /// A step of a datagram proxy or one of its sessions (see `event_loop::datagram_proxy`).
    Datagrams(DatagramStep),
}

/// What a datagram proxy's listening socket (`datagram_proxy::port`) or one of its sessions
/// (`datagram_proxy::session`) asks of the loop.
#[derive(Debug)]
pub enum DatagramStep {
    /// Datagrams from clients may be waiting: read them and forward each to its session.
    FromClients,
    /// Replies (or an error) may be waiting on this session's upstream socket.
    FromUpstream,
    /// This session saw no datagram either way for its idle timeout.
    Expired,
}

/// What an accepted connection before its hand-over (`proxy::incoming`), or a proxy session's
/// connecting upstream (`proxy::upstream`), asks of the loop.
#[derive(Debug)]
pub enum SessionStep {
    /// Its PROXY header is read (or none was expected), and its TLS handshake is done (on a TLS
    /// port): hand it on.
    HeaderDone,
    /// Its TLS handshake failed (refused, broken, timed out, or the client left first): the alert
    /// went out; close it, count it.
    HandshakeFailed,
    /// The TLS handshake with the upstream of session `client` failed.
    UpstreamHandshakeFailed { client: u32 },
    /// Its PROXY header is missing, malformed, too large, too slow or from an untrusted source.
    HeaderFailed,
    /// The client left (or failed) before its session was relayed.
    ClientGone,
    /// The upstream connect of session `client` finished.
    UpstreamReady { client: u32 },
    /// The upstream connect of session `client` failed.
    UpstreamFailed { client: u32 },
    /// The upstream connect took longer than the port allows.
    ConnectTimedOut,
    /// A draining port's deadline came: close what is left of its sessions.
    DrainDeadline,
}

/// Deadlines entries asked for, soonest first. Lazy: when a deadline comes, its entry is serviced
/// and checks its own clock, so a deadline that moved later (or an entry that is gone) costs one
/// look, never a search of the heap.
#[derive(Debug, Default)]
pub struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, u32)>>,
}

impl Deadlines {
    /// Services entry `id` at `at` (or soon after).
    pub fn wake(&mut self, id: u32, at: Instant) {
        self.heap.push(Reverse((at, id)));
    }

    /// When the soonest deadline comes.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The entries whose deadline has come by `now`, each once.
    pub fn take_due(&mut self, now: Instant, out: &mut Vec<u32>) {
        while let Some(Reverse((at, id))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            if !out.contains(&id) {
                out.push(id);
            }
        }
    }

    pub fn clear(&mut self) {
        self.heap.clear();
    }
}

/// How long to wait for the next deadline from `now` (zero when it has come), capped by `cap`.
pub fn wait_for(next: Option<Instant>, now: Instant, cap: Option<Duration>) -> Option<Duration> {
    match (next.map(|at| at.saturating_duration_since(now)), cap) {
        (Some(d), Some(c)) => Some(d.min(c)),
        (d, c) => d.or(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_come_in_order_once() {
        let t = Instant::now();
        let mut d = Deadlines::default();
        d.wake(2, t + Duration::from_millis(20));
        d.wake(1, t + Duration::from_millis(10));
        d.wake(1, t + Duration::from_millis(10));
        assert_eq!(d.next(), Some(t + Duration::from_millis(10)));
        let mut due = Vec::new();
        d.take_due(t + Duration::from_millis(15), &mut due);
        assert_eq!(due, [1]);
        due.clear();
        d.take_due(t + Duration::from_millis(25), &mut due);
        assert_eq!(due, [2]);
        assert_eq!(d.next(), None);
    }

    #[test]
    fn the_wait_is_the_sooner_of_the_deadline_and_the_cap() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(wait_for(Some(t + ms(30)), t, Some(ms(50))), Some(ms(30)));
        assert_eq!(wait_for(Some(t + ms(80)), t, Some(ms(50))), Some(ms(50)));
        assert_eq!(wait_for(None, t, None), None);
        assert_eq!(wait_for(Some(t), t + ms(5), None), Some(Duration::ZERO));
    }
}
