//! Everything the loop and the consumer share, behind one lock: adopted sockets by id, the batch
//! being filled, and the list of sockets that still have work (edge-triggered fairness).

use crate::address;
use crate::batch::{kind, Batch};
use crate::datagram::Datagram;
use crate::listener::{Accepted, Listener, SpareFd};
use crate::stream::{ReadState, Stream};
use crate::stream_state::{bits, Action, Input};
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use socket2::Socket;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::os::fd::AsRawFd;

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
    pub stopping: bool,
    spare: SpareFd,
    /// The read buffer streams read into (kept when a read is small enough to be copied out).
    read_buf: Vec<u8>,
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
            stopping: false,
            spare: SpareFd::open()?,
            read_buf: Vec::new(),
        })
    }

    /// Registers a socket and returns its id; ids are never reused, so a stale id finds nothing.
    pub fn insert(&mut self, registry: &Registry, entry: Entry) -> io::Result<u32> {
        let id = self.next_id;
        let fd = entry.socket().as_raw_fd();
        registry.register(&mut SourceFd(&fd), Token(id as usize), entry.interest())?;
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
        let _ = registry.deregister(&mut SourceFd(&entry.socket().as_raw_fd()));
        Some(entry)
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
    pub fn has_ready_work(&self) -> bool {
        !self.deferred.is_empty() && !self.batch.is_full()
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
        }
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
            match l.accept(count, &mut self.spare) {
                Accepted::Connection(sock, peer) => {
                    count += 1;
                    // A registration failure drops (closes) the new socket: the client sees a close.
                    if let Ok(conn) = self.insert(registry, Entry::Stream(Stream::new(sock))) {
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
        if let Some(s) = self.stream(id) {
            s.prepare_abort();
            self.remove(registry, id);
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
    }
}
