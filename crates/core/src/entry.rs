//! The entries of a reactor by id: every adopted, accepted or connecting socket, registered with a
//! poller from insertion to removal. Ids are never reused, so a stale id finds nothing.

use crate::batch::counters::{LoopCounters, SharedCounters};
use crate::datagram::Datagram;
use crate::datagram_proxy::port::DatagramProxy;
use crate::datagram_proxy::session::DatagramSession;
use crate::proxy::incoming::Incoming;
use crate::proxy::upstream::Upstream;
use crate::stream::listener::Listener;
use crate::stream::Stream;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use socket2::Socket;
use crate::ids::IdMap;
use std::collections::HashMap;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

#[derive(Debug)]
pub enum Entry {
    /// Boxed, as the other large kinds: every entry is as large as the largest variant, and
    /// streams and datagram sessions are the many.
    Listener(Box<Listener>),
    Stream(Stream),
    Datagram(Datagram),
    /// An accepted connection before its hand-over (PROXY header, routing, upstream connect).
    Incoming(Box<Incoming>),
    /// A proxy session's upstream while its connect is in progress.
    Upstream(Upstream),
    /// A datagram proxy's listening socket (boxed: it is large, and every entry is as large as the
    /// largest variant).
    DatagramProxy(Box<DatagramProxy>),
    /// A datagram proxy's session: its connected upstream socket.
    DatagramSession(DatagramSession),
}

impl Entry {
    pub fn socket(&self) -> &Socket {
        match self {
            Entry::Listener(l) => &l.sock,
            Entry::Stream(s) => &s.sock,
            Entry::Datagram(d) => &d.sock,
            Entry::Incoming(c) => &c.sock,
            Entry::Upstream(u) => &u.sock,
            Entry::DatagramProxy(p) => &p.sock,
            Entry::DatagramSession(s) => &s.sock,
        }
    }

    /// The core made the socket and holds its only descriptor: closing it is enough to take it out
    /// of epoll (epoll tracks the open file, and no other descriptor keeps it alive).
    fn only_descriptor(&self) -> bool {
        match self {
            Entry::Stream(s) => s.only_descriptor,
            Entry::Incoming(_) | Entry::Upstream(_) => true,
            Entry::Listener(_) | Entry::Datagram(_) | Entry::DatagramProxy(_) | Entry::DatagramSession(_) => false,
        }
    }

    fn interest(&self) -> Interest {
        match self {
            // Sessions become streams in place: the same registration serves.
            Entry::Stream(_) | Entry::Incoming(_) | Entry::Upstream(_) => Interest::READABLE | Interest::WRITABLE,
            Entry::Listener(_) | Entry::Datagram(_) | Entry::DatagramProxy(_) | Entry::DatagramSession(_) => Interest::READABLE,
        }
    }
}

#[derive(Debug, Default)]
pub struct Entries {
    map: IdMap<Entry>,
    next_id: u32,
    /// Counted under the state's lock (connections open, batches, relayed bytes, ...).
    pub counters: LoopCounters,
    /// Counted without it (write queues and the announcer hold this).
    pub shared_counters: Arc<SharedCounters>,
    /// Listeners that stopped at their connection limit and may accept again (a connection of
    /// theirs closed): the loop looks at them again.
    pub resumed: Vec<u32>,
    /// Draining ports whose last connection closed: their drain is over.
    pub drained: Vec<u32>,
}

/// Gives back a map's memory once it holds less than an eighth of what it has room for (after a
/// burst of connections or datagram sessions), keeping room for twice what it holds: amortised
/// O(1) per removal, and no shrinking back and forth around one size.
pub fn shrink_when_mostly_empty<K: std::hash::Hash + Eq, V, S: std::hash::BuildHasher>(map: &mut HashMap<K, V, S>) {
    if map.capacity() > 1024 && map.len() * 8 < map.capacity() {
        map.shrink_to(map.len() * 2);
    }
}

impl Entries {
    /// Registers a socket with `registry` and returns its id.
    pub fn insert(&mut self, registry: &Registry, mut entry: Entry) -> io::Result<u32> {
        let id = self.next_id.max(1);
        let fd = entry.socket().as_raw_fd();
        registry.register(&mut SourceFd(&fd), Token(id as usize), entry.interest())?;
        if let Entry::Stream(s) = &mut entry {
            s.queue.count_into(self.shared_counters.clone());
            self.counters.connections_open += 1;
        }
        self.next_id = id.wrapping_add(1).max(1);
        self.map.insert(id, entry);
        Ok(id)
    }

    /// Deregisters from `registry` (before the close: epoll tracks the open file, which the
    /// caller's fd may keep alive) and hands the entry back; dropping it closes the duplicate.
    pub fn remove(&mut self, registry: &Registry, id: u32) -> Option<Entry> {
        let entry = self.map.remove(&id)?;
        let origin = match &entry {
            Entry::Stream(s) => {
                self.counters.connections_open -= 1;
                s.origin
            }
            Entry::Incoming(c) => Some(c.origin),
            Entry::Datagram(d) => {
                self.counters.kernel_drops_closed += d.dropped_total();
                None
            }
            Entry::Listener(_) | Entry::Upstream(_) | Entry::DatagramProxy(_) | Entry::DatagramSession(_) => None,
        };
        if let Some((listener, ticket)) = origin {
            if let Some(Entry::Listener(l)) = self.map.get_mut(&listener) {
                if l.admission.release(ticket) && l.drain.is_none() {
                    self.resumed.push(listener);
                }
                if l.drain.is_some() && l.admission.active == 0 {
                    self.drained.push(listener);
                }
            }
        }
        if !entry.only_descriptor() {
            let _ = registry.deregister(&mut SourceFd(&entry.socket().as_raw_fd()));
        }
        shrink_when_mostly_empty(&mut self.map);
        Some(entry)
    }

    /// Moves a socket's registration from one poller to another (a relay's sockets in the
    /// threaded mode): added to `to` first, so that a failure leaves it served where it was.
    pub fn move_registration(&self, id: u32, from: &Registry, to: &Registry) -> io::Result<()> {
        let Some(entry) = self.map.get(&id) else { return Ok(()) };
        let fd = entry.socket().as_raw_fd();
        to.register(&mut SourceFd(&fd), Token(id as usize), entry.interest())?;
        let _ = from.deregister(&mut SourceFd(&fd));
        Ok(())
    }

    pub fn get(&self, id: u32) -> Option<&Entry> {
        self.map.get(&id)
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut Entry> {
        self.map.get_mut(&id)
    }

    pub fn stream(&mut self, id: u32) -> Option<&mut Stream> {
        match self.map.get_mut(&id) {
            Some(Entry::Stream(s)) => Some(s),
            _ => None,
        }
    }

    /// Two distinct streams at once (either None when it is not a stream or is gone).
    pub fn stream_pair(&mut self, a: u32, b: u32) -> [Option<&mut Stream>; 2] {
        self.map.get_disjoint_mut([&a, &b]).map(|e| match e {
            Some(Entry::Stream(s)) => Some(s),
            _ => None,
        })
    }

    /// Something a removal left for the loop: a listener to resume, a drain that is over.
    pub fn has_news(&self) -> bool {
        !self.resumed.is_empty() || !self.drained.is_empty()
    }

    /// Turns an entry into another in place (a session's sockets into streams): same id, same
    /// registration, nothing closed; `into` gets the old entry and gives the new one.
    pub fn convert(&mut self, id: u32, into: impl FnOnce(Entry) -> Entry) {
        let Some(old) = self.map.remove(&id) else { return };
        let was_stream = matches!(old, Entry::Stream(_));
        let mut new = into(old);
        if let (Entry::Stream(s), false) = (&mut new, was_stream) {
            s.queue.count_into(self.shared_counters.clone());
            self.counters.connections_open += 1;
        }
        self.map.insert(id, new);
    }

    pub fn datagram(&mut self, id: u32) -> Option<&mut Datagram> {
        match self.map.get_mut(&id) {
            Some(Entry::Datagram(d)) => Some(d),
            _ => None,
        }
    }

    /// The ids of the entries a listener's connections and sessions hold (its own accepted
    /// connections, its sessions before their relay).
    pub fn of_port(&self, port: u32) -> Vec<u32> {
        let origin = |e: &Entry| match e {
            Entry::Stream(s) => s.origin.map(|o| o.0),
            Entry::Incoming(c) => Some(c.origin.0),
            _ => None,
        };
        self.map.iter().filter(|(_, e)| origin(e) == Some(port)).map(|(id, _)| *id).collect()
    }

    pub fn ids(&self) -> Vec<u32> {
        self.map.keys().copied().collect()
    }

    pub fn values(&self) -> impl Iterator<Item = &Entry> {
        self.map.values()
    }
}
