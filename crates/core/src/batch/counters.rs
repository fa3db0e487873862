//! Counters a user can read (`Reactor::stats`, `reactor.stats()` in JS). Every counter costs O(1)
//! per event: a plain add where the code that sees the event already holds the state's lock, an
//! atomic add where it cannot reach the state (a write queue, the announcer). Nothing here scans
//! sockets or records per event; only reading the kernel's drop counts visits each open datagram
//! port, and only when the stats are read.
//!
//! Several owners feed one `Stats`:
//! - `BatchCounters` and `LoopCounters`, kept by the loop's batch and the state (under the state's
//!   lock): what the loop accepts, reads, hands over, and the connections it holds.
//! - `SharedCounters`, behind an `Arc` that write queues and the announcer hold: bytes written and
//!   queued, wake-ups of the consumer.
//! - Each datagram port's outbox and `SendCounters`, kept by the consumer (its thread only, no
//!   lock): datagrams sent or dropped.

use crate::wire::{kind, Stats};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Kept by the loop's batch (under the state's lock): every record goes through `Batch::push`
/// and every stream read through `push_data`/`push_chunk`, so counting there misses none.
#[derive(Debug, Default)]
pub struct BatchCounters {
    /// Records pushed, by kind.
    records: [u64; RECORD_KINDS],
    /// Stream bytes read into the batch.
    stream_bytes: u64,
}

/// Record kinds are small numbers (see `batch::kind`); kinds past this table are not counted.
const RECORD_KINDS: usize = 16;

impl BatchCounters {
    #[inline]
    pub fn record(&mut self, k: u32) {
        if let Some(n) = self.records.get_mut(k as usize) {
            *n += 1;
        }
    }

    #[inline]
    pub fn stream_bytes(&mut self, n: usize) {
        self.stream_bytes += n as u64;
    }

    fn fill(&self, s: &mut Stats) {
        s.connections_accepted = self.records[kind::ACCEPT as usize];
        s.datagrams_in = self.records[kind::DATAGRAM as usize];
        s.bytes_in = self.stream_bytes;
    }
}

/// Kept in the state, under its lock.
#[derive(Debug, Default)]
pub struct LoopCounters {
    pub connections_open: u64,
    batches: u64,
    events: u64,
    pub bytes_relayed: u64,
    /// The kernel's drops at datagram ports already closed (their last reading).
    pub kernel_drops_closed: u64,
}

impl LoopCounters {
    /// The consumer took a batch of `events` records.
    pub fn batch_taken(&mut self, events: usize) {
        self.batches += 1;
        self.events += events as u64;
    }

    fn fill(&self, s: &mut Stats) {
        s.connections_open = self.connections_open;
        s.batches = self.batches;
        s.events = self.events;
        s.bytes_relayed = self.bytes_relayed;
        s.datagrams_dropped_by_kernel = self.kernel_drops_closed;
    }
}

/// Counters updated by code that cannot reach the state: write queues (each holds the `Arc`) and
/// the announcer. Relaxed atomics: each is a tally read on its own, ordering nothing.
#[derive(Debug, Default)]
pub struct SharedCounters {
    bytes_out: AtomicU64,
    bytes_queued: AtomicU64,
    wakeups: AtomicU64,
    wakeups_by_io_thread: AtomicU64,
    tls_sessions_userspace: AtomicU64,
    tls_handshake_failures: AtomicU64,
}

impl SharedCounters {
    pub fn sent(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Relaxed);
    }

    pub fn queued(&self, n: usize) {
        self.bytes_queued.fetch_add(n as u64, Relaxed);
    }

    /// Queued bytes left the queue (sent or discarded).
    pub fn dequeued(&self, n: usize) {
        self.bytes_queued.fetch_sub(n as u64, Relaxed);
    }

    /// A host turn announced a batch (the host calls the consumer).
    pub fn woke(&self) {
        self.wakeups.fetch_add(1, Relaxed);
    }

    /// The I/O thread announced a batch (through `Notify`).
    pub fn woke_from_io_thread(&self) {
        self.wakeups_by_io_thread.fetch_add(1, Relaxed);
        self.wakeups.fetch_add(1, Relaxed);
    }

    /// A TLS handshake completed (the session stays in userspace: no kTLS hand-off).
    pub fn tls_session(&self) {
        self.tls_sessions_userspace.fetch_add(1, Relaxed);
    }

    /// A TLS handshake failed.
    pub fn tls_handshake_failed(&self) {
        self.tls_handshake_failures.fetch_add(1, Relaxed);
    }

    fn fill(&self, s: &mut Stats) {
        s.tls_sessions_userspace = self.tls_sessions_userspace.load(Relaxed);
        s.tls_handshake_failures = self.tls_handshake_failures.load(Relaxed);
        s.bytes_out = self.bytes_out.load(Relaxed);
        s.bytes_queued = self.bytes_queued.load(Relaxed);
        s.wakeups = self.wakeups.load(Relaxed);
        s.wakeups_by_io_thread = self.wakeups_by_io_thread.load(Relaxed);
    }
}

/// The consumer's datagram sends (its thread only). Each open outbox counts what it sent and
/// dropped; these keep the counts of outboxes already closed.
#[derive(Debug, Default)]
pub struct SendCounters {
    pub sent_closed: u64,
    pub dropped_closed: u64,
}

impl SendCounters {
    /// Fills in the datagrams sent and dropped; `*_live` are the open outboxes' counts.
    pub fn fill(&self, sent_live: u64, dropped_live: u64, s: &mut Stats) {
        s.datagrams_out = self.sent_closed + sent_live;
        s.datagrams_dropped += self.dropped_closed + dropped_live;
    }
}

/// The core's part of the figures (everything but the consumer's sends). `kernel_drops_open` is
/// the kernel's drop count summed over the open datagram ports.
pub fn core_stats(batch: &BatchCounters, lp: &LoopCounters, shared: &SharedCounters, relays_active: usize, kernel_drops_open: u64) -> Stats {
    let mut s = Stats::default();
    batch.fill(&mut s);
    lp.fill(&mut s);
    shared.fill(&mut s);
    s.relays_active = relays_active as u64;
    s.datagrams_dropped_by_kernel += kernel_drops_open;
    s.datagrams_dropped = s.datagrams_dropped_by_kernel;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_counters_tally_records_by_kind() {
        let (mut b, mut lp) = (BatchCounters::default(), LoopCounters::default());
        for k in [kind::ACCEPT, kind::ACCEPT, kind::DATAGRAM, kind::EOF, 99] {
            b.record(k);
        }
        b.stream_bytes(4);
        b.stream_bytes(6);
        lp.batch_taken(3);
        lp.batch_taken(2);
        let s = core_stats(&b, &lp, &SharedCounters::default(), 0, 0);
        assert_eq!((s.connections_accepted, s.datagrams_in, s.bytes_in), (2, 1, 10));
        assert_eq!((s.batches, s.events), (2, 5));
        assert_eq!(s.events_per_batch(), 2.5);
        assert_eq!(Stats::default().events_per_batch(), 0.0);
    }

    #[test]
    fn shared_counters_keep_a_running_total_of_queued_bytes() {
        let c = SharedCounters::default();
        c.queued(100);
        c.queued(50);
        c.dequeued(120);
        c.sent(120);
        c.woke();
        c.woke_from_io_thread();
        let s = core_stats(&BatchCounters::default(), &LoopCounters::default(), &c, 0, 0);
        assert_eq!((s.bytes_queued, s.bytes_out), (30, 120));
        assert_eq!((s.wakeups, s.wakeups_by_io_thread), (2, 1));
    }

    #[test]
    fn sends_and_drops_add_up() {
        let lp = LoopCounters { kernel_drops_closed: 2, ..LoopCounters::default() };
        let mut s = core_stats(&BatchCounters::default(), &lp, &SharedCounters::default(), 1, 3);
        let sends = SendCounters { sent_closed: 4, dropped_closed: 1 };
        sends.fill(2, 2, &mut s);
        assert_eq!(s.datagrams_dropped_by_kernel, 5);
        assert_eq!(s.datagrams_dropped, 8);
        assert_eq!(s.datagrams_out, 6);
        assert_eq!(s.relays_active, 1);
    }
}
