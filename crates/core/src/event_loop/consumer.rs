//! The consumer's side of a reactor: what the thread that takes batches (Node's JS thread) keeps
//! for itself, so that it needs no lock for it: the batch last taken, the large reads being
//! handed over, and each datagram port's sending side with its deferral policy.
//!
//! Deferral: between a `take_batch` that returned a batch and the next one, the consumer is
//! handling events, so datagrams it writes are queued and leave together (one `sendmmsg`) when it
//! asks for more. Outside a batch they leave at once.

use crate::batch::Batch;
use crate::wire::{Stats, BATCH_HEADER, RECORDS_OVERFLOW, STRIDE};
use crate::datagram::options::{DatagramError, DatagramResult};
use crate::datagram::outbox::{Outbox, SendError};
use crate::batch::counters::SendCounters;
use crate::Reactor;
use socket2::{SockAddr, Socket};
use crate::ids::IdMap;
use std::io;
use std::sync::Arc;

pub struct Consumer {
    core: Arc<Reactor>,
    /// Datagram ports' sending sides, made on first use.
    outboxes: IdMap<Outbox>,
    dispatching: bool,
    /// The batch last taken (its buffers go back to the core with the next take).
    taken: Batch,
    /// The large reads of the batch last taken, until the consumer copies them out.
    chunks: Vec<Vec<u8>>,
    /// Read buffers already copied out, to give back to the core for reuse.
    recycled: Vec<Vec<u8>>,
    /// The records of the last batch when they did not fit the consumer's array.
    overflow: Vec<u32>,
    /// Datagram sends, for `stats`.
    sends: SendCounters,
}

impl Consumer {
    pub fn new(core: Arc<Reactor>) -> Consumer {
        Consumer {
            core,
            outboxes: IdMap::default(),
            dispatching: false,
            taken: Batch::default(),
            chunks: Vec::new(),
            recycled: Vec::new(),
            overflow: Vec::new(),
            sends: SendCounters::default(),
        }
    }

    pub fn core(&self) -> &Arc<Reactor> {
        &self.core
    }

    /// Takes the next batch: the header `[records, chunks]` and the records go into `events`
    /// (records = RECORDS_OVERFLOW when they do not fit: see `take_overflow`); returns the batch's
    /// data, or None when there is no batch (the next announcement says when there is more).
    pub fn take_batch(&mut self, events: &mut [u32]) -> Option<&[u8]> {
        self.flush_datagrams();
        self.taken.clear();
        self.dispatching = self.core.swap_batch(&mut self.taken, &mut self.recycled);
        if !self.dispatching {
            return None;
        }
        let batch = &mut self.taken;
        if events.len() >= BATCH_HEADER {
            let n = batch.events.len();
            if events.len() >= BATCH_HEADER + n {
                events[0] = (n / STRIDE) as u32;
                events[BATCH_HEADER..BATCH_HEADER + n].copy_from_slice(&batch.events);
            } else {
                events[0] = RECORDS_OVERFLOW;
                self.overflow = batch.events.clone();
            }
            events[1] = batch.chunks.len() as u32;
        }
        self.chunks = std::mem::take(&mut batch.chunks);
        // The consumer reads their numbers from the data it gets now; until it says the batch is
        // dispatched, the core remembers them (a consumer torn down mid-batch leaves them to it).
        let handed = batch.hand_over_fds();
        if !handed.is_empty() {
            self.core.fds_in_dispatch(handed);
        }
        Some(&self.taken.data)
    }

    pub fn take_overflow(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.overflow)
    }

    /// Hands each large read of the last batch to `copy` (which copies it out); the buffers then
    /// go back to the core for reuse.
    pub fn take_chunks<R>(&mut self, copy: impl FnMut(&Vec<u8>) -> R) -> Vec<R> {
        let copies = self.chunks.iter().map(copy).collect();
        self.recycled.append(&mut self.chunks);
        copies
    }

    // ---- datagram ports ----

    fn outbox(&mut self, id: u32) -> DatagramResult<&mut Outbox> {
        if !self.outboxes.contains_key(&id) {
            let outbox = self.core.outbox(id).map_err(|e| DatagramError::Os(e, "send"))?;
            self.outboxes.insert(id, outbox);
        }
        Ok(self.outboxes.get_mut(&id).expect("inserted above"))
    }

    /// Runs an option call on a datagram port's socket, with the port's family.
    pub fn datagram_socket<R>(&mut self, id: u32, f: impl FnOnce(&Socket, i32) -> DatagramResult<R>) -> DatagramResult<R> {
        let outbox = self.outbox(id)?;
        f(outbox.socket(), outbox.family())
    }

    pub fn send_to(&mut self, id: u32, data: &[u8], host: &str, port: u16) -> DatagramResult<()> {
        let defer = self.dispatching;
        let outbox = self.outbox(id)?;
        let to = resolve(outbox, host, port)?;
        outbox.last_sent_to = Some(to.clone());
        outbox.send(data, Some(to), defer).map_err(|e| DatagramError::Os(e, "sendto"))
    }

    /// Sends to the address of the last `send_to` on this port (whatever that send's outcome):
    /// spares the caller passing (and this side parsing) the same address for every reply.
    pub fn send_again(&mut self, id: u32, data: &[u8]) -> DatagramResult<()> {
        let defer = self.dispatching;
        let outbox = self.outbox(id)?;
        let to = outbox.last_sent_to.clone().ok_or_else(|| DatagramError::Os(io::Error::from_raw_os_error(libc::EDESTADDRREQ), "sendto"))?;
        outbox.send(data, Some(to), defer).map_err(|e| DatagramError::Os(e, "sendto"))
    }

    pub fn send(&mut self, id: u32, data: &[u8]) -> DatagramResult<()> {
        let defer = self.dispatching;
        self.outbox(id)?.send(data, None, defer).map_err(|e| DatagramError::Os(e, "send"))
    }

    pub fn connect(&mut self, id: u32, host: &str, port: u16) -> DatagramResult<()> {
        let outbox = self.outbox(id)?;
        let to = resolve(outbox, host, port)?;
        outbox.socket().connect(&to).map_err(|e| DatagramError::Os(e, "connect"))
    }

    /// Datagrams lost since adoption: the kernel's drops at the socket and sends that found no room.
    pub fn dropped_datagrams(&self, id: u32) -> u64 {
        let sent = self.outboxes.get(&id).map_or(0, |o| o.dropped);
        self.core.dropped_datagrams(id) + sent
    }

    /// Sends what was queued while handling the last batch; refusals go back as events.
    fn flush_datagrams(&mut self) {
        for (id, outbox) in self.outboxes.iter_mut() {
            if outbox.has_queued() {
                let errors = outbox.flush();
                if !errors.is_empty() {
                    self.core.report_datagram_errors(*id, &errors);
                }
            }
        }
    }

    /// Closes a port's duplicate (see `Reactor::close_port`). Datagrams written before the stop
    /// still leave (a write that did not throw is sent); then the outbox's share of the socket
    /// goes, so that the close is the core's.
    pub fn close_port(&mut self, id: u32) -> usize {
        if let Some(mut outbox) = self.outboxes.remove(&id) {
            self.retire(&mut outbox);
        }
        self.core.close_port(id)
    }

    /// Sends what is queued, then closes the core (joins its thread, closes every socket). The
    /// host must have stopped watching a hosted core's poller before this.
    pub fn close(&mut self) {
        for (_, mut outbox) in std::mem::take(&mut self.outboxes) {
            self.retire(&mut outbox);
        }
        self.core.close();
    }

    /// Sends what a closing outbox still queues and keeps its counts.
    fn retire(&mut self, outbox: &mut Outbox) {
        outbox.flush();
        self.sends.sent_closed += outbox.sent;
        self.sends.dropped_closed += outbox.dropped;
    }

    /// The reactor's figures: the core's, and the datagrams this side sent and dropped.
    pub fn stats(&self) -> Stats {
        let mut s = self.core.stats();
        let sent_live = self.outboxes.values().map(|o| o.sent).sum();
        let dropped_live = self.outboxes.values().map(|o| o.dropped).sum();
        self.sends.fill(sent_live, dropped_live, &mut s);
        s
    }
}

fn resolve(outbox: &mut Outbox, host: &str, port: u16) -> DatagramResult<SockAddr> {
    outbox.resolve(host, port).map_err(|e| match e {
        SendError::InvalidAddress => DatagramError::InvalidAddress(format!("{host:?} is not an IP address of the socket's family")),
        SendError::Os(e) => DatagramError::Os(e, "if_nametoindex"),
    })
}

impl From<io::Error> for DatagramError {
    fn from(e: io::Error) -> Self {
        DatagramError::Os(e, "socket")
    }
}
