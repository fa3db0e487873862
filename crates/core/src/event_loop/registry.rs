//! Everything the loop and the consumer share, behind one lock (`State`): the entries, the batch
//! being filled, the sockets that still have work (edge-triggered fairness) and the relay engine;
//! and the dispatch of events to each kind's own `service`, whose `Step` is carried out here.

use crate::datagram_proxy::forwarding::Forwarding;
use crate::batch::Batch;
use crate::entry::{Entries, Entry};
use crate::relay::engine::{Lent, RelayEngine};
use crate::service::{wait_for, Deadlines, Ready, Step};
use crate::stream::listener::{Admitted, SpareFd};
use crate::stream::Stream;
use crate::wire::{address, kind, PortStats};
use mio::Registry;
use crate::ids::IdSet;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::time::{Duration, Instant};

/// How long a listener that ran out of descriptors waits before trying again.
pub const ACCEPT_RETRY: Duration = Duration::from_millis(50);

pub struct State {
    pub entries: Entries,
    pub batch: Batch,
    /// A batch was announced to the consumer and it has not yet found the batch empty.
    pub in_flight: bool,
    /// The loop stopped reading because the batch was full; taking the batch must wake it.
    pub stalled: bool,
    /// Sockets with work left over from an earlier turn, and their ids (O(1) deferral).
    deferred: VecDeque<u32>,
    deferred_ids: IdSet,
    /// A listener ran out of descriptors with none to shed: poll with a timeout to retry.
    pub retry_accept: bool,
    pub stopping: bool,
    pub relays: RelayEngine,
    spare: SpareFd,
    /// The read buffer streams read into (kept when a read is small enough to be copied out).
    read_buf: Vec<u8>,
    /// Connections a listener accepted in one service, waiting to be registered.
    accepted: Vec<Admitted>,
    /// The last figures of ports whose drain ended, until the consumer reads them once.
    pub final_port_stats: HashMap<u32, (PortStats, Vec<u64>)>,
    /// When entries asked to be serviced again (timeouts), and a scratch list of those due.
    pub deadlines: Deadlines,
    due: Vec<u32>,
    /// What datagram proxies share (see `datagram_proxy`).
    pub(super) forwarding: Forwarding,
}

impl State {
    pub fn new() -> io::Result<State> {
        Ok(State {
            entries: Entries::default(),
            batch: Batch::with_capacity(),
            in_flight: false,
            stalled: false,
            deferred: VecDeque::new(),
            deferred_ids: IdSet::default(),
            retry_accept: false,
            stopping: false,
            relays: RelayEngine::default(),
            spare: SpareFd::open()?,
            read_buf: Vec::new(),
            accepted: Vec::new(),
            final_port_stats: HashMap::new(),
            deadlines: Deadlines::default(),
            due: Vec::new(),
            forwarding: Forwarding::default(),
        })
    }

    /// Registers a socket and returns its id. Bytes or clients may have arrived before the
    /// registration: the loop looks once.
    pub fn insert(&mut self, registry: &Registry, entry: Entry) -> io::Result<u32> {
        let id = self.entries.insert(registry, entry)?;
        self.defer(id);
        Ok(id)
    }

    /// Deregisters (from the poller it is on) and closes the reactor's duplicate.
    pub fn remove(&mut self, registry: &Registry, id: u32) -> Option<Entry> {
        let registry = if self.on_relay_poller(id) { self.relays.registry(registry) } else { registry };
        self.entries.remove(registry, id)
    }

    /// Whether an entry is registered with the relay poller (the threaded mode's; hosted, that is
    /// the main poller anyway): relaying sockets, and proxy ports with their sessions (clients and
    /// upstreams, from accept and connect on), so the I/O thread alone serves them.
    pub fn on_relay_poller(&self, id: u32) -> bool {
        match self.entries.get(id) {
            Some(Entry::Stream(s)) => s.state.relay().is_some(),
            Some(Entry::Listener(l)) => l.role.proxy.is_some(),
            Some(Entry::Incoming(c)) => c.role.proxy.is_some(),
            Some(Entry::Upstream(_)) => true,
            Some(Entry::DatagramProxy(_) | Entry::DatagramSession(_)) => true,
            _ => false,
        }
    }

    /// Registers a listening port: a proxy port on the relay poller (accept, connect and relay
    /// then run on the I/O thread, and the JS thread never turns for them), others on `main`.
    pub fn insert_port(&mut self, main: &Registry, entry: Entry) -> io::Result<u32> {
        let proxy = matches!(&entry, Entry::Listener(l) if l.role.proxy.is_some());
        let registry = if proxy { self.relays.registry(main) } else { main };
        let id = self.entries.insert(registry, entry)?;
        self.defer(id);
        Ok(id)
    }

    pub(super) fn lend<'a>(entries: &'a mut Entries, batch: &'a mut Batch, deadlines: &'a mut Deadlines, registry: &'a Registry) -> Lent<'a> {
        Lent { entries, batch, registry, deadlines }
    }

    // ---- dispatch ----

    /// Services `id` after `ready` (default: a deferred pass) and carries out the step it asks for.
    pub(super) fn service(&mut self, registry: &Registry, id: u32, ready: Ready) {
        let step = match self.entries.get_mut(id) {
            Some(Entry::Stream(s)) => s.service(id, ready, &mut self.batch, &mut self.read_buf),
            Some(Entry::Listener(l)) => {
                let step = l.service(&self.batch, &mut self.spare, &mut self.accepted);
                self.register_accepted(registry, id);
                step
            }
            Some(Entry::Datagram(d)) => d.service(id, &mut self.batch),
            Some(Entry::Incoming(c)) => c.service(ready),
            Some(Entry::Upstream(u)) => u.service(ready),
            Some(Entry::DatagramProxy(p)) => p.service(ready),
            Some(Entry::DatagramSession(s)) => s.service(ready, Instant::now()),
            None => return,
        };
        self.carry_out(registry, id, step);
    }

    pub(super) fn carry_out(&mut self, registry: &Registry, id: u32, step: Step) {
        match step {
            Step::Idle => {}
            Step::More => {
                if self.batch.is_full() {
                    self.stalled = true; // taking the batch wakes the loop, which comes back to `id`
                }
                self.defer(id);
            }
            Step::Fail(e) => self.fail(registry, id, e),
            Step::Close { report } => {
                if self.remove(registry, id).is_some() && report {
                    self.batch.push(kind::CLOSED, id, 0, 0);
                }
            }
            Step::Relay(rid, conn, ready) => self.relays.on_event(Self::lend(&mut self.entries, &mut self.batch, &mut self.deadlines, registry), rid, conn, ready),
            Step::EndRelay(rid) => self.relays.end(Self::lend(&mut self.entries, &mut self.batch, &mut self.deadlines, registry), rid, 0),
            Step::RetryLater => self.retry_accept = true,
            Step::WakeAt(at) => self.deadlines.wake(id, at),
            Step::Session(step) => self.on_session(registry, id, step),
            Step::Datagrams(step) => self.on_datagrams(registry, id, step),
        }
    }

    /// Registers what a listener accepted and reports each (a port with a PROXY header or a proxy
    /// role hands them to `sessions` first). A registration failure drops (closes) the new
    /// socket: the client sees a close.
    fn register_accepted(&mut self, registry: &Registry, listener: u32) {
        let (unix, plain) = match self.entries.get(listener) {
            Some(Entry::Listener(l)) => (l.unix, l.role.is_plain()),
            _ => return,
        };
        if !plain {
            for a in std::mem::take(&mut self.accepted) {
                self.register_incoming(registry, listener, a);
            }
            return;
        }
        for Admitted { sock, peer, ticket } in std::mem::take(&mut self.accepted) {
            let mut stream = Stream::new(sock, unix);
            stream.origin = Some((listener, ticket));
            stream.only_descriptor = true;
            if let Ok(conn) = self.insert(registry, Entry::Stream(stream)) {
                let record = address::encode(&peer, &mut self.batch.data);
                self.batch.push(kind::ACCEPT, listener, conn, record as u32);
            }
        }
    }

    /// Handles one poll event.
    pub fn on_event(&mut self, registry: &Registry, id: u32, ready: Ready) {
        match self.entries.get_mut(id) {
            Some(Entry::Listener(l)) => l.pending = true,
            Some(Entry::Datagram(d)) => d.pending = true,
            _ => {}
        }
        self.service(registry, id, ready);
    }

    /// Continues work left over from earlier turns, in arrival order (listeners that may accept
    /// again first).
    pub fn run_deferred(&mut self, registry: &Registry) {
        for id in std::mem::take(&mut self.entries.resumed) {
            self.defer(id);
        }
        self.finish_drains(registry);
        for _ in 0..self.deferred.len() {
            if self.batch.is_full() {
                self.stalled = true; // what is left stays deferred
                return;
            }
            let Some(id) = self.deferred.pop_front() else { return };
            self.deferred_ids.remove(&id);
            self.service(registry, id, Ready::default());
        }
    }

    /// Services the entries whose deadline has come (each checks its own clock).
    pub fn run_deadlines(&mut self, registry: &Registry) {
        // Every turn comes here: with no deadline pending, not even the clock is read.
        if self.deadlines.next().is_none() {
            return;
        }
        let mut due = std::mem::take(&mut self.due);
        self.deadlines.take_due(Instant::now(), &mut due);
        for id in due.drain(..) {
            match self.entries.stream(id).and_then(|s| s.state.relay()) {
                Some(rid) => self.relays.check_idle(Self::lend(&mut self.entries, &mut self.batch, &mut self.deadlines, registry), rid),
                None => self.service(registry, id, Ready::default()),
            }
        }
        self.due = due;
    }

    /// How long the loop may wait for readiness: until the next deadline, a listener's retry
    /// after running out of descriptors, or `cap` (None: no limit), whichever comes first.
    pub fn wait_limit(&self, cap: Option<Duration>) -> Option<Duration> {
        let cap = if self.retry_accept { Some(cap.map_or(ACCEPT_RETRY, |c| c.min(ACCEPT_RETRY))) } else { cap };
        match self.deadlines.next() {
            None => cap,
            next => wait_for(next, Instant::now(), cap),
        }
    }

    /// Runs the relays that have work left (on the loop that serves relays).
    pub fn run_relay_work(&mut self, registry: &Registry) {
        self.relays.run_work(Self::lend(&mut self.entries, &mut self.batch, &mut self.deadlines, registry));
    }

    /// Listeners that ran out of descriptors get another try.
    pub fn retry_listeners(&mut self) {
        self.retry_accept = false;
        let waiting: Vec<u32> =
            self.entries.ids().into_iter().filter(|&id| matches!(self.entries.get(id), Some(Entry::Listener(l)) if l.pending)).collect();
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
        ((!self.deferred.is_empty() || self.entries.has_news()) && !self.batch.is_full())
            || (!self.relays.has_poller() && (self.relays.has_work() || self.has_datagram_work()))
    }

    pub fn is_deferred(&self, id: u32) -> bool {
        self.deferred_ids.contains(&id)
    }

    pub(super) fn defer(&mut self, id: u32) {
        if self.deferred_ids.insert(id) {
            self.deferred.push_back(id);
        }
    }

    /// Ends an entry on an error: closes the duplicate, reports the errno.
    pub fn fail(&mut self, registry: &Registry, id: u32, err: io::Error) {
        if self.remove(registry, id).is_some() {
            self.batch.push_closed(id, &err);
        }
    }

    /// Closes everything (reactor shutdown).
    pub fn clear(&mut self, registry: &Registry) {
        for id in self.entries.ids() {
            self.remove(registry, id);
        }
        self.deferred.clear();
        self.deferred_ids.clear();
        self.relays.clear();
        self.deadlines.clear();
        self.batch.clear(); // closes received descriptors the consumer never took
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
