//! Everything the loop and the consumer share, behind one lock: adopted sockets by id, the batch
//! being filled, and the list of sockets that still have work (edge-triggered fairness).

use crate::wire::address;
use crate::{batch::Batch, wire::kind};
use crate::datagram::Datagram;
use crate::stream::listener::{Accepted, Listener, SpareFd};
use crate::relay::pipes::PipePool;
use crate::relay::{Failed, Pumped, Relay};
use crate::batch::counters::{self, LoopCounters, SharedCounters};
use crate::wire::{bits, Stats};
use crate::stream::{ReadState, Stream};
use crate::stream::state::{Action, Input, Phase};
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use socket2::Socket;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

#[derive(Debug)]
pub enum Entry {
    Listener(Listener),
    Stream(Stream),
    Datagram(Datagram),
}

impl Entry {
    pub fn socket(&self) -> &Socket {
        match self {
            Entry::Listener(l) => &l.sock,
            Entry::Stream(s) => &s.sock,
            Entry::Datagram(d) => &d.sock,
        }
    }

    fn interest(&self) -> Interest {
        match self {
            Entry::Stream(_) => Interest::READABLE | Interest::WRITABLE,
            _ => Interest::READABLE,
        }
    }
}

/// Readiness reported by one poll event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ready {
    pub readable: bool,
    pub read_closed: bool,
    pub writable: bool,
    pub error: bool,
}

pub struct State {
    pub entries: HashMap<u32, Entry>,
    next_id: u32,
    pub batch: Batch,
    /// A batch was announced to the consumer and it has not yet found the batch empty.
    pub in_flight: bool,
    /// The loop stopped reading because the batch was full; taking the batch must wake it.
    pub stalled: bool,
    /// Sockets with work left over from an earlier turn.
    pub deferred: VecDeque<u32>,
    /// The ids in `deferred`, so that deferring stays O(1) with many sockets.
    deferred_ids: HashSet<u32>,
    /// A listener ran out of descriptors with none to shed: poll with a timeout to retry.
    pub retry_accept: bool,
    /// Set by the engine that serves relays while it runs (see `service_relay_of`).
    pub serving_relays: bool,
    pub stopping: bool,
    spare: SpareFd,
    /// The read buffer streams read into (kept when a read is small enough to be copied out).
    read_buf: Vec<u8>,
    /// Relays by id (the id of their first connection).
    relays: HashMap<u32, Relay>,
    pipes: PipePool,
    pub counters: LoopCounters,
    /// Counters that write queues and the announcer update without this lock.
    pub shared_counters: Arc<SharedCounters>,
    /// Relays with work left for a later pass, and their ids.
    relay_work: VecDeque<u32>,
    relay_work_ids: HashSet<u32>,
    /// The threaded mode's own poller for relaying sockets (registry and waker): only the I/O
    /// thread turns it, so relayed bytes never cost the JS thread anything. None when hosted.
    relay_poller: Option<(Registry, mio::Waker)>,
}

impl State {
    pub fn new() -> io::Result<State> {
        Ok(State {
            entries: HashMap::new(),
            next_id: 1,
            batch: Batch::with_capacity(),
            in_flight: false,
            stalled: false,
            deferred: VecDeque::new(),
            deferred_ids: HashSet::new(),
            retry_accept: false,
            serving_relays: false,
            stopping: false,
            spare: SpareFd::open()?,
            read_buf: Vec::new(),
            relays: HashMap::new(),
            pipes: PipePool::default(),
            counters: LoopCounters::default(),
            shared_counters: Arc::default(),
            relay_work: VecDeque::new(),
            relay_work_ids: HashSet::new(),
            relay_poller: None,
        })
    }

    /// Registers a socket and returns its id; ids are never reused, so a stale id finds nothing.
    pub fn insert(&mut self, registry: &Registry, mut entry: Entry) -> io::Result<u32> {
        let id = self.next_id;
        let fd = entry.socket().as_raw_fd();
        registry.register(&mut SourceFd(&fd), Token(id as usize), entry.interest())?;
        if let Entry::Stream(s) = &mut entry {
            s.queue.count_into(self.shared_counters.clone());
            self.counters.connections_open += 1;
        }
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.entries.insert(id, entry);
        // Bytes or clients may have arrived before registration: look once.
        self.defer(id);
        Ok(id)
    }

    /// Deregisters (before the close: epoll tracks the open file, which the caller's fd may keep
    /// alive) and closes the reactor's duplicate.
    pub fn remove(&mut self, registry: &Registry, id: u32) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        match &entry {
            Entry::Stream(_) => self.counters.connections_open -= 1,
            Entry::Datagram(d) => self.counters.kernel_drops_closed += d.dropped_total(),
            Entry::Listener(_) => {}
        }
        let fd = entry.socket().as_raw_fd();
        if let (Entry::Stream(s), Some((relays, _))) = (&entry, &self.relay_poller) {
            if s.state.relay().is_some() {
                let _ = relays.deregister(&mut SourceFd(&fd));
                return Some(entry);
            }
        }
        let _ = registry.deregister(&mut SourceFd(&fd));
        Some(entry)
    }

    /// Gives relaying sockets a poller of their own, turned by the I/O thread only.
    pub fn set_relay_poller(&mut self, registry: Registry, waker: mio::Waker) {
        self.relay_poller = Some((registry, waker));
    }

    pub fn stream(&mut self, id: u32) -> Option<&mut Stream> {
        match self.entries.get_mut(&id) {
            Some(Entry::Stream(s)) => Some(s),
            _ => None,
        }
    }

    pub fn datagram(&mut self, id: u32) -> Option<&mut Datagram> {
        match self.entries.get_mut(&id) {
            Some(Entry::Datagram(d)) => Some(d),
            _ => None,
        }
    }

    /// Handles one poll event.
    pub fn on_event(&mut self, registry: &Registry, id: u32, ready: Ready) {
        match self.entries.get_mut(&id) {
            Some(Entry::Stream(_)) => self.service_stream(registry, id, ready),
            Some(Entry::Listener(l)) => {
                l.pending = true;
                self.service_listener(registry, id);
            }
            Some(Entry::Datagram(d)) => {
                d.pending = true;
                self.service_datagram(id);
            }
            None => {}
        }
    }

    /// Continues work left over from earlier turns, in arrival order.
    pub fn run_deferred(&mut self, registry: &Registry) {
        for _ in 0..self.deferred.len() {
            if self.batch.is_full() {
                self.stalled = true; // what is left stays deferred (see `stall`)
                return;
            }
            let Some(id) = self.deferred.pop_front() else { return };
            self.deferred_ids.remove(&id);
            match self.entries.get(&id) {
                Some(Entry::Stream(_)) => self.service_stream(registry, id, Ready::default()),
                Some(Entry::Listener(_)) => self.service_listener(registry, id),
                Some(Entry::Datagram(_)) => self.service_datagram(id),
                None => {}
            }
        }
    }

    /// Listeners that ran out of descriptors get another try.
    pub fn retry_listeners(&mut self) {
        self.retry_accept = false;
        let waiting: Vec<u32> = self
            .entries
            .iter()
            .filter(|(_, e)| matches!(e, Entry::Listener(l) if l.pending))
            .map(|(id, _)| *id)
            .collect();
        for id in waiting {
            self.defer(id);
        }
    }

    /// A batch is waiting and no announcement is in flight: the consumer must be told.
    pub fn should_announce(&self) -> bool {
        !self.in_flight && !self.batch.is_empty()
    }

    /// Work left over from an earlier turn can go on now (the batch has room): turn again at once.
    /// Relay work counts only where this loop serves relays (no relay poller of their own).
    pub fn has_ready_work(&self) -> bool {
        (!self.deferred.is_empty() && !self.batch.is_full()) || (self.relay_poller.is_none() && !self.relay_work.is_empty())
    }

    pub fn has_relay_poller(&self) -> bool {
        self.relay_poller.is_some()
    }

    /// Relays with work left, for the relay poller's turn.
    pub fn has_relay_work(&self) -> bool {
        !self.relay_work.is_empty()
    }

    /// Runs the relays that have work left (on the loop that serves relays).
    pub fn run_relay_work(&mut self, registry: &Registry) {
        for _ in 0..self.relay_work.len() {
            let Some(rid) = self.relay_work.pop_front() else { return };
            self.relay_work_ids.remove(&rid);
            self.service_relay(registry, rid);
        }
    }

    /// Queues a relay for a later pass, on the loop that serves relays.
    fn queue_relay_work(&mut self, rid: u32) {
        if self.relay_work_ids.insert(rid) {
            self.relay_work.push_back(rid);
        }
        if let Some((_, waker)) = &self.relay_poller {
            let _ = waker.wake();
        }
    }

    pub fn is_deferred(&self, id: u32) -> bool {
        self.deferred_ids.contains(&id)
    }

    fn defer(&mut self, id: u32) {
        if self.deferred_ids.insert(id) {
            self.deferred.push_back(id);
        }
    }

    fn service_stream(&mut self, registry: &Registry, id: u32, ready: Ready) {
        let Some(Entry::Stream(s)) = self.entries.get_mut(&id) else { return };
        match s.state.phase {
            Phase::Connecting => return self.finish_connect(registry, id, ready),
            Phase::Relaying(_) => return self.service_relay_of(registry, id, ready),
            Phase::Established => {}
        }
        if (ready.writable || ready.error) && !s.queue.is_empty() {
            match s.flush() {
                Ok(true) => {
                    let action = s.state.on(Input::Flushed, true);
                    if !self.carry_out(registry, id, action, true) {
                        return;
                    }
                }
                Ok(false) => {}
                Err(e) => return self.fail(registry, id, e),
            }
        }
        let Some(Entry::Stream(s)) = self.entries.get_mut(&id) else { return };
        if ready.readable {
            s.readable = true;
        }
        if ready.read_closed {
            s.peer_closed = true;
        }
        if s.wants_read() {
            if self.batch.is_full() {
                return self.stall(id);
            }
            match s.read_into(id, &mut self.batch, &mut self.read_buf) {
                Ok(ReadState::More) => {
                    if self.batch.is_full() {
                        return self.stall(id);
                    }
                    return self.defer(id);
                }
                Ok(_) => {}
                Err(e) => return self.fail(registry, id, e),
            }
        }
        if ready.error {
            // A reset on a socket we are not reading (paused) still ends the connection.
            if let Some(Entry::Stream(s)) = self.entries.get(&id) {
                if let Ok(Some(e)) = s.sock.take_error() {
                    self.fail(registry, id, e);
                }
            }
        }
    }

    /// A connecting stream became writable or failed: the connect is done, one way or the other.
    fn finish_connect(&mut self, registry: &Registry, id: u32, ready: Ready) {
        if !(ready.writable || ready.error) {
            return;
        }
        let Some(s) = self.stream(id) else { return };
        match s.sock.take_error() {
            Ok(Some(e)) | Err(e) => return self.fail(registry, id, e),
            Ok(None) => {}
        }
        let peer = match s.sock.peer_addr() {
            Ok(peer) => peer,
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => return, // not yet: a later edge
            Err(e) => return self.fail(registry, id, e),
        };
        s.state.on(Input::Connected, true);
        let record = address::encode(&peer, &mut self.batch.data);
        self.batch.push(kind::CONNECTED, id, record as u32, 0);
        // Bytes may already be waiting: read them on the next pass.
        self.defer(id);
    }

    /// Carries out what a transition of `id`'s state asked for. Events tell the consumer, except
    /// for a close it asked for itself (`report_close` false: the consumer learns it from the
    /// call's result). Returns false when the connection is gone.
    fn carry_out(&mut self, registry: &Registry, id: u32, action: Action, report_close: bool) -> bool {
        let Some(s) = self.stream(id) else { return false };
        match action {
            Action::Nothing => true,
            Action::ReportDrained => {
                self.batch.push(kind::DRAINED, id, 0, 0);
                true
            }
            Action::SendFin => match s.send_fin() {
                Ok(()) => {
                    if report_close {
                        self.batch.push(kind::WRITE_CLOSED, id, 0, 0);
                    }
                    true
                }
                Err(e) => {
                    self.fail(registry, id, e);
                    false
                }
            },
            Action::Close => {
                s.shutdown_both();
                self.remove(registry, id);
                if report_close {
                    self.batch.push(kind::CLOSED, id, 0, 0);
                }
                false
            }
            Action::EndRelay => {
                if let Some(rid) = s.state.relay() {
                    self.end_relay(registry, rid, 0);
                }
                true
            }
        }
    }

    // ---- relays ----

    /// Starts relaying between `a` and `b`. `held_a` are bytes read from `a` that the consumer
    /// holds (they go to `b` first), likewise `held_b`; bytes of either still in the batch the
    /// consumer has not taken follow them, and their records are blanked. Errors: EINVAL when the
    /// pair cannot relay (the same id, not both open established connections, already relaying),
    /// ENOENT when either is gone.
    pub fn start_relay(&mut self, registry: &Registry, a: u32, b: u32, held_a: &[&[u8]], held_b: &[&[u8]], cap: usize) -> io::Result<u32> {
        let invalid = || io::Error::from_raw_os_error(libc::EINVAL);
        if a == b {
            return Err(invalid());
        }
        for id in [a, b] {
            let s = self.stream(id).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
            if !s.state.accepts_writes() || s.state.reading == crate::stream::state::Reading::Stopped || s.state.relay().is_some() {
                return Err(invalid());
            }
        }
        let mut relay = Relay::new(a, b, cap, &mut self.pipes)?;
        let pending = self.batch.take_stream_bytes(&[a, b]);
        for (src, dst, held) in [(a, b, held_a), (b, a, held_b)] {
            let mut moved = 0;
            let s = self.stream(dst).expect("checked above");
            for bytes in held.iter().copied().chain(pending.iter().filter(|(id, _)| *id == src).map(|(_, v)| v.as_slice())) {
                s.queue.push(bytes);
                moved += bytes.len() as u64;
            }
            if src == a { relay.ab.moved += moved } else { relay.ba.moved += moved }
            self.counters.bytes_relayed += moved;
        }
        for (id, dir) in [(a, &mut relay.ab), (b, &mut relay.ba)] {
            let s = self.stream(id).expect("checked above");
            s.state.on(Input::StartRelay(a), s.queue.is_empty());
            // The peer's FIN was already read: this direction only flushes, then sends FIN.
            dir.src_done = s.state.reading == crate::stream::state::Reading::PeerClosed;
        }
        // With a relay poller, both sockets move to it (the main loop no longer sees them).
        if let Some((relays, _)) = &self.relay_poller {
            for id in [a, b] {
                let fd = self.entries[&id].socket().as_raw_fd();
                let _ = registry.deregister(&mut SourceFd(&fd));
                relays.register(&mut SourceFd(&fd), Token(id as usize), Interest::READABLE | Interest::WRITABLE)?;
            }
        }
        self.relays.insert(a, relay);
        self.queue_relay_work(a);
        Ok(a)
    }

    /// An event for a relaying socket. With a relay poller of their own, an event that reached the
    /// main loop (harvested before the socket moved) is passed on to it.
    fn service_relay_of(&mut self, registry: &Registry, id: u32, _ready: Ready) {
        let Some(rid) = self.stream(id).and_then(|s| s.state.relay()) else { return };
        if self.relay_poller.is_some() && !self.serving_relays {
            return self.queue_relay_work(rid);
        }
        self.service_relay(registry, rid);
    }

    /// Pumps both directions of a relay, and ends it when both are done.
    fn service_relay(&mut self, registry: &Registry, rid: u32) {
        let Some(mut relay) = self.relays.remove(&rid) else { return };
        let before = relay.counts();
        let mut more = false;
        let mut done = 0;
        let mut failure = None;
        for forward in [true, false] {
            let (src_id, dst_id) = if forward { (relay.a, relay.b) } else { (relay.b, relay.a) };
            let dir = if forward { &mut relay.ab } else { &mut relay.ba };
            let [src, dst] = self.entries.get_disjoint_mut([&src_id, &dst_id]);
            let Some(Entry::Stream(dst)) = dst else {
                done += 1; // nowhere to write: this direction is over
                continue;
            };
            let src = match src {
                Some(Entry::Stream(s)) => Some(&*s),
                _ => None,
            };
            match dir.pump(src, dst, relay.cap) {
                Ok(Pumped::Finished) => done += 1,
                Ok(Pumped::More) => more = true,
                Ok(Pumped::Waiting) => {}
                Err(Failed::Source(e)) => failure = Some((src_id, e)),
                Err(Failed::Destination(e)) => failure = Some((dst_id, e)),
            }
            if failure.is_some() {
                break;
            }
        }
        if relay.counts() != before {
            relay.last_activity = std::time::Instant::now();
            let (ab, ba) = relay.counts();
            self.counters.bytes_relayed += (ab - before.0) + (ba - before.1);
        }
        if let Some((id, err)) = failure {
            // That side is gone at once; what was read from it still goes to the other side.
            let errno = err.raw_os_error().unwrap_or(libc::EIO);
            relay.ending.get_or_insert(errno);
            self.abort_one(registry, id, Some(errno));
            return self.keep_relay(rid, relay);
        }
        if done == 2 {
            return self.finish_relay(registry, relay);
        }
        if more {
            return self.keep_relay(rid, relay);
        }
        self.relays.insert(rid, relay);
    }

    /// Keeps a relay that has work left for a later pass.
    fn keep_relay(&mut self, rid: u32, relay: Relay) {
        self.relays.insert(rid, relay);
        self.queue_relay_work(rid);
    }

    /// Both directions are done: close what is left in order and report the counts.
    fn finish_relay(&mut self, registry: &Registry, mut relay: Relay) {
        let errno = relay.ending.unwrap_or(0);
        for id in [relay.a, relay.b] {
            if let Some(s) = self.stream(id) {
                s.shutdown_both();
                self.remove(registry, id);
                self.batch.push(kind::CLOSED, id, errno as u32, 0);
            }
        }
        self.report_relay_end(&mut relay);
    }

    fn report_relay_end(&mut self, relay: &mut Relay) {
        relay.release(&mut self.pipes);
        let (ab, ba) = relay.counts();
        let offset = self.batch.data.len();
        self.batch.data.extend_from_slice(&ab.to_le_bytes());
        self.batch.data.extend_from_slice(&ba.to_le_bytes());
        self.batch.push(kind::RELAY_ENDED, relay.a, offset as u32, 0);
    }

    /// Aborts one connection now (RST where we hold the last reference); `report` its close
    /// with that errno, or not (a close the consumer asked for itself).
    fn abort_one(&mut self, registry: &Registry, id: u32, report: Option<i32>) {
        if let Some(s) = self.stream(id) {
            s.prepare_abort();
            self.remove(registry, id);
            if let Some(errno) = report {
                self.batch.push(kind::CLOSED, id, errno as u32, 0);
            }
        }
    }

    /// Ends a relay: in order (`errno` 0: both directions stop reading, flush, FIN, close) or by
    /// aborting both sides with `errno` (idle timeout).
    pub fn end_relay(&mut self, registry: &Registry, rid: u32, errno: i32) {
        let Some(mut relay) = self.relays.remove(&rid) else { return };
        if errno == 0 {
            relay.ending.get_or_insert(0);
            relay.ab.src_done = true;
            relay.ba.src_done = true;
            self.relays.insert(rid, relay);
            return self.service_relay(registry, rid);
        }
        for id in [relay.a, relay.b] {
            self.abort_one(registry, id, Some(errno));
        }
        self.report_relay_end(&mut relay);
    }

    /// The consumer aborted `id`, which is relaying: it closes without an event (the consumer
    /// reports it), the other side is aborted with ECONNABORTED.
    fn abort_relaying(&mut self, registry: &Registry, id: u32, rid: u32) {
        let Some(mut relay) = self.relays.remove(&rid) else { return };
        self.abort_one(registry, id, None);
        let other = if id == relay.a { relay.b } else { relay.a };
        self.abort_one(registry, other, Some(libc::ECONNABORTED));
        self.report_relay_end(&mut relay);
    }

    /// Milliseconds since a relay last moved a byte (None: no such relay).
    pub fn relay_idle(&self, rid: u32) -> Option<u64> {
        self.relays.get(&rid).map(|r| r.last_activity.elapsed().as_millis() as u64)
    }

    /// The core's figures now (see `stats`). Reads each open datagram port's kernel drop count.
    pub fn stats(&self) -> Stats {
        let kernel_drops = self
            .entries
            .values()
            .map(|e| match e {
                Entry::Datagram(d) => d.dropped_total(),
                _ => 0,
            })
            .sum();
        counters::core_stats(&self.batch.counters, &self.counters, &self.shared_counters, self.relays.len(), kernel_drops)
    }

    pub fn pooled_pipes(&self) -> usize {
        self.pipes.pooled()
    }

    pub fn relay_counts(&self, rid: u32) -> Option<(u64, u64)> {
        self.relays.get(&rid).map(Relay::counts)
    }

    /// The batch is full: stop reading until the consumer takes it, and come back to `id` then.
    fn stall(&mut self, id: u32) {
        self.stalled = true;
        self.defer(id);
    }

    /// Ends a connection on an error: closes the duplicate, reports the errno.
    pub fn fail(&mut self, registry: &Registry, id: u32, err: io::Error) {
        if self.remove(registry, id).is_some() {
            let errno = err.raw_os_error().unwrap_or(libc::EIO);
            self.batch.push(kind::CLOSED, id, errno as u32, 0);
        }
    }

    fn service_listener(&mut self, registry: &Registry, id: u32) {
        let mut count = 0;
        loop {
            if self.batch.is_full() {
                return self.stall(id);
            }
            let Some(Entry::Listener(l)) = self.entries.get_mut(&id) else { return };
            if !l.pending {
                return;
            }
            let unix = l.unix;
            match l.accept(count, &mut self.spare) {
                Accepted::Connection(sock, peer) => {
                    count += 1;
                    // A registration failure drops (closes) the new socket: the client sees a close.
                    if let Ok(conn) = self.insert(registry, Entry::Stream(Stream::new(sock, unix))) {
                        let record = address::encode(&peer, &mut self.batch.data);
                        self.batch.push(kind::ACCEPT, id, conn, record as u32);
                    }
                }
                Accepted::Stop { more } => {
                    if more {
                        self.defer(id);
                    }
                    return;
                }
                Accepted::OutOfDescriptors => {
                    self.retry_accept = true;
                    return;
                }
            }
        }
    }

    fn service_datagram(&mut self, id: u32) {
        let Some(Entry::Datagram(d)) = self.entries.get_mut(&id) else { return };
        if d.pending && d.recv_into(id, &mut self.batch) {
            if self.batch.is_full() {
                return self.stall(id);
            }
            self.defer(id);
        }
    }

    // ---- called from the consumer's thread ----

    pub fn write(&mut self, registry: &Registry, id: u32, chunks: &[&[u8]]) -> usize {
        let Some(s) = self.stream(id) else { return 0 };
        match s.write_vectored(chunks) {
            Ok(n) => n,
            Err(e) => {
                self.fail(registry, id, e);
                0
            }
        }
    }

    /// A state input from the consumer (pause, resume, loseConnection, its release, half-close);
    /// returns the state afterwards as `bits` (CLOSED when the connection is gone).
    pub fn stream_input(&mut self, registry: &Registry, id: u32, input: Input) -> u32 {
        let Some(s) = self.stream(id) else { return bits::GONE };
        let action = s.state.on(input, s.queue.is_empty());
        if input == Input::Resume && s.wants_read() {
            self.defer(id);
        }
        if !self.carry_out(registry, id, action, false) {
            return bits::CLOSED;
        }
        self.stream_bits(id)
    }

    pub fn stream_bits(&mut self, id: u32) -> u32 {
        self.stream(id).map_or(bits::GONE, |s| s.state.bits())
    }

    pub fn abort(&mut self, registry: &Registry, id: u32) {
        match self.stream(id).map(|s| s.state.relay()) {
            Some(Some(rid)) => self.abort_relaying(registry, id, rid),
            Some(None) => self.abort_one(registry, id, None),
            None => {}
        }
    }

    /// Closes everything (reactor shutdown).
    pub fn clear(&mut self, registry: &Registry) {
        let ids: Vec<u32> = self.entries.keys().copied().collect();
        for id in ids {
            self.remove(registry, id);
        }
        self.deferred.clear();
        self.deferred_ids.clear();
        self.relays.clear();
        self.relay_work.clear();
        self.relay_work_ids.clear();
    }
}
