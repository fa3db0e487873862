//! Events of one or more loop turns, gathered for a single hand-over to the consumer (JS).
//!
//! `events` holds fixed-size records `[kind, id, a, b]`; `data` holds the bytes they point into
//! (payloads and address records). One batch is handed over per call, never one call per event.
//!
//! Descriptors received with stream data are owned by the batch (`fds`) until the consumer takes
//! it (`hand_over_fds`): a batch dropped or cleared before that, or a record blanked, closes them.

pub mod counters;

use crate::wire::{self, kind, STRIDE};
use counters::BatchCounters;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};

/// Past this many bytes (data and chunks) the loop stops reading until the consumer takes the batch.
pub const DATA_CAP: usize = 512 * 1024;
/// Past this many records, likewise (bounds the events array for tiny datagrams).
pub const EVENT_CAP: usize = 16 * 1024;

#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<u32>,
    /// Small payloads and address records, copied together into one buffer per batch.
    pub data: Vec<u8>,
    /// Large reads, each in the buffer it was read into.
    pub chunks: Vec<Vec<u8>>,
    chunk_bytes: usize,
    /// The descriptors of the FDS records, in record order, until handed over.
    fds: Vec<OwnedFd>,
    /// Read buffers the consumer gave back after copying them out (warm memory, no malloc).
    pool: Vec<Vec<u8>>,
    /// What was ever pushed into this batch (the loop's batch keeps them: swaps exchange contents
    /// only).
    pub counters: BatchCounters,
}

/// Buffers kept in the pool at most.
const POOL_MAX: usize = 32;

impl Batch {
    pub fn with_capacity() -> Batch {
        Batch { events: Vec::with_capacity(1024 * STRIDE), data: Vec::with_capacity(DATA_CAP + 64 * 1024), ..Batch::default() }
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn len(&self) -> usize {
        self.events.len() / STRIDE
    }

    /// No room for more reads: the consumer must take this batch first.
    pub fn is_full(&self) -> bool {
        self.data.len() + self.chunk_bytes >= DATA_CAP || self.events.len() >= EVENT_CAP * STRIDE
    }

    pub fn push(&mut self, kind: u32, id: u32, a: u32, b: u32) {
        self.counters.record(kind);
        self.events.extend_from_slice(&[kind, id, a, b]);
    }

    /// Reports that the core closed connection `id` because of `err`: CLOSED with its errno, or,
    /// for a TLS failure (an `io::Error` carrying a `TlsError`), TLS_ERROR then CLOSED with EPROTO.
    pub fn push_closed(&mut self, id: u32, err: &std::io::Error) {
        match err.get_ref().and_then(|inner| inner.downcast_ref::<crate::tls::TlsError>()) {
            Some(tls) => {
                let (offset, len) = wire::push_tls_error(&mut self.data, tls);
                self.push(kind::TLS_ERROR, id, offset as u32, len as u32);
                self.push(kind::CLOSED, id, libc::EPROTO as u32, 0);
            }
            None => {
                let errno = err.raw_os_error().unwrap_or(libc::EIO);
                self.push(kind::CLOSED, id, errno as u32, 0);
            }
        }
    }

    /// Records `len` bytes just appended at `offset` for `id`, merging with the previous record
    /// when it is data of the same connection that ends where this begins.
    pub fn push_data(&mut self, id: u32, offset: usize, len: usize) {
        self.counters.stream_bytes(len);
        let n = self.events.len();
        if n >= STRIDE {
            let last = &mut self.events[n - STRIDE..];
            if last[0] == kind::DATA && last[1] == id && (last[2] + last[3]) as usize == offset {
                last[3] += len as u32;
                return;
            }
        }
        self.push(kind::DATA, id, offset as u32, len as u32);
    }

    /// A read buffer from the pool, if there is one.
    pub fn pooled_buffer(&mut self) -> Option<Vec<u8>> {
        self.pool.pop()
    }

    /// Gives read buffers back for reuse once their bytes were copied out.
    pub fn recycle(&mut self, buffers: impl IntoIterator<Item = Vec<u8>>) {
        for mut b in buffers {
            if self.pool.len() >= POOL_MAX {
                break;
            }
            b.clear();
            self.pool.push(b);
        }
    }

    /// Hands over a buffer read for `id` as it is.
    pub fn push_chunk(&mut self, id: u32, chunk: Vec<u8>) {
        self.counters.stream_bytes(chunk.len());
        self.chunk_bytes += chunk.len();
        self.push(kind::DATA_CHUNK, id, self.chunks.len() as u32, chunk.len() as u32);
        self.chunks.push(chunk);
    }

    /// Exchanges the events, data and chunks of two batches (each keeps its own buffer pool).
    /// O(1): the consumer hands in an empty batch and gets the full one.
    pub fn swap_contents(&mut self, other: &mut Batch) {
        std::mem::swap(&mut self.events, &mut other.events);
        std::mem::swap(&mut self.data, &mut other.data);
        std::mem::swap(&mut self.chunks, &mut other.chunks);
        std::mem::swap(&mut self.chunk_bytes, &mut other.chunk_bytes);
        std::mem::swap(&mut self.fds, &mut other.fds);
    }

    /// Records descriptors received on connection `id` with the data that follows (an FDS record;
    /// the batch owns them until `hand_over_fds`).
    pub fn push_fds(&mut self, id: u32, fds: Vec<OwnedFd>) {
        let offset = wire::push_fds(&mut self.data, fds.iter().map(AsRawFd::as_raw_fd));
        self.push(kind::FDS, id, offset as u32, fds.len() as u32);
        self.fds.extend(fds);
    }

    /// The consumer took the batch: from now on it owns the descriptors its FDS records name.
    /// Returns their numbers (those the consumer must settle: see `Reactor::fds_in_dispatch`).
    pub fn hand_over_fds(&mut self) -> Vec<i32> {
        self.fds.drain(..).map(IntoRawFd::into_raw_fd).collect()
    }

    /// Empties the batch, keeping the capacity of its buffers.
    pub fn clear(&mut self) {
        self.events.clear();
        self.data.clear();
        self.chunks.clear();
        self.chunk_bytes = 0;
        self.fds.clear(); // closes any not handed over
    }

    /// Takes out the bytes of DATA and DATA_CHUNK records of `ids` (with their EOF records), in
    /// order, blanking the records (kind NONE, which the consumer skips): for a relay, which sends
    /// them on itself.
    pub fn take_stream_bytes(&mut self, ids: &[u32]) -> Vec<(u32, Vec<u8>)> {
        let mut out = Vec::new();
        for r in self.events.chunks_exact_mut(STRIDE) {
            if !ids.contains(&r[1]) {
                continue;
            }
            match r[0] {
                kind::DATA => out.push((r[1], self.data[r[2] as usize..(r[2] + r[3]) as usize].to_vec())),
                kind::DATA_CHUNK => out.push((r[1], self.chunks[r[2] as usize][..r[3] as usize].to_vec())),
                kind::EOF => {}
                kind::FDS => {
                    // Descriptors cannot be relayed: close them.
                    let blanked: Vec<i32> = wire::read_fds(&self.data, r[2] as usize, r[3] as usize).collect();
                    self.fds.retain(|fd| !blanked.contains(&fd.as_raw_fd()));
                }
                _ => continue,
            }
            r[0] = kind::NONE;
        }
        out
    }

    /// Iterates over records as `(kind, id, a, b)`.
    pub fn records(&self) -> impl Iterator<Item = (u32, u32, u32, u32)> + '_ {
        self.events.chunks_exact(STRIDE).map(|r| (r[0], r[1], r[2], r[3]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_data_merges() {
        let mut b = Batch::default();
        b.data.extend_from_slice(b"hello world");
        b.push_data(7, 0, 5);
        b.push_data(7, 5, 6);
        b.push_data(8, 11, 0);
        let r: Vec<_> = b.records().collect();
        assert_eq!(r, vec![(kind::DATA, 7, 0, 11), (kind::DATA, 8, 11, 0)]);
        let mut out = Batch::default();
        b.swap_contents(&mut out);
        assert_eq!((out.len(), out.data.as_slice()), (2, &b"hello world"[..]));
        assert!(b.is_empty() && b.data.is_empty());
    }

    /// Read ends of pipes for the batch to own, and their write ends: a write end tells whether
    /// its read end is still open anywhere (EPIPE once closed), whatever numbers get reused.
    fn pipes(n: usize) -> (Vec<OwnedFd>, Vec<std::fs::File>) {
        (0..n)
            .map(|_| {
                let p = crate::sys::pipe::Pipe::new(4096).unwrap();
                let (r, w) = p.into_ends();
                (r, std::fs::File::from(w))
            })
            .unzip()
    }

    fn read_end_open(w: &std::fs::File) -> bool {
        use std::io::Write;
        !matches!((&*w).write(b"x"), Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }

    #[test]
    fn received_descriptors_are_closed_unless_handed_over() {
        let mut dropped = Batch::default();
        let (fds, ends) = pipes(2);
        let raw: Vec<i32> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        dropped.push_fds(3, fds);
        assert_eq!(wire::read_fds(&dropped.data, 0, 2).collect::<Vec<_>>(), raw);
        drop(dropped);
        assert!(!ends.iter().any(read_end_open), "a batch nobody took closes its descriptors");

        let mut loop_batch = Batch::default();
        let (fds, ends) = pipes(1);
        let kept = fds[0].as_raw_fd();
        loop_batch.push_fds(3, fds);
        let mut taken = Batch::default();
        loop_batch.swap_contents(&mut taken);
        taken.hand_over_fds();
        taken.clear();
        assert!(read_end_open(&ends[0]), "the consumer owns what it took");
        // SAFETY: the test is the owner now.
        drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(kept) });
    }

    #[test]
    fn a_relay_closes_the_descriptors_of_the_records_it_blanks() {
        let mut b = Batch::default();
        let ((mine, mine_ends), (other, other_ends)) = (pipes(2), pipes(1));
        b.push_fds(1, mine);
        b.push_fds(2, other);
        b.take_stream_bytes(&[1]);
        assert!(!mine_ends.iter().any(read_end_open));
        assert!(read_end_open(&other_ends[0]), "another connection's descriptors stay");
        assert_eq!(b.records().filter(|r| r.0 == kind::FDS).count(), 1);
    }
}
