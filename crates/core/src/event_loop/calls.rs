//! What the consumer's thread asks of the shared state: writes, state inputs (pause, resume,
//! close), aborts and relays. Each runs under the lock, on the consumer's thread.

use super::registry::State;
use crate::relay::RelayOptions;
use crate::service::Step;
use crate::batch::counters;
use crate::entry::Entry;
use crate::stream::state::{Input, Phase};
use crate::stream::tls::TlsLayer;
use crate::wire::{bits, Stats};
use mio::Registry;
use std::io;

impl State {
    pub fn start_relay(&mut self, registry: &Registry, a: u32, b: u32, held_a: &[&[u8]], held_b: &[&[u8]], options: RelayOptions) -> io::Result<u32> {
        self.relays.start(Self::lend(&mut self.entries, &mut self.batch, &mut self.deadlines, registry), a, b, held_a, held_b, options, None)
    }

    pub fn write(&mut self, registry: &Registry, id: u32, chunks: &[&[u8]]) -> usize {
        let Some(s) = self.entries.stream(id) else { return 0 };
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
        let Some(s) = self.entries.stream(id) else { return bits::GONE };
        let action = s.state.on(input, s.is_flushed());
        let resumed = input == Input::Resume && s.wants_read();
        let step = s.carry_out(id, action, false, &mut self.batch);
        if resumed {
            self.defer(id);
        }
        match step {
            Some(Step::Close { .. }) | Some(Step::Fail(_)) => {
                self.carry_out(registry, id, step.expect("matched"));
                bits::CLOSED
            }
            Some(step) => {
                self.carry_out(registry, id, step);
                self.stream_bits(id)
            }
            None => self.stream_bits(id),
        }
    }

    /// `startTLS` on connection `id` (see `Reactor::start_tls`): bytes written before go out in
    /// the clear first, the bytes `held` (read before the call and not delivered) and those the
    /// batch has not handed over yet are the session's first ciphertext. EBADF: no such
    /// connection; EINVAL: it already has TLS, is not established, relays, or has descriptors to
    /// send.
    pub fn start_tls(&mut self, id: u32, mut layer: TlsLayer, held: &[&[u8]]) -> io::Result<u32> {
        let invalid = || io::Error::from_raw_os_error(libc::EINVAL);
        let s = self.entries.stream(id).ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))?;
        if s.tls.is_some() || s.state.phase != Phase::Established || s.has_fds_to_send() {
            return Err(invalid());
        }
        s.queue.drain_into(|bytes| {
            layer.send_first_in_clear(bytes);
            bytes.len()
        });
        for bytes in held {
            layer.read_first(bytes);
        }
        for (_, bytes) in self.batch.take_stream_bytes(&[id]) {
            layer.read_first(&bytes);
        }
        layer.start(&s.sock);
        let s = self.entries.stream(id).expect("checked above");
        s.tls = Some(Box::new(layer));
        s.edges.readable = true;
        let bits = s.state.bits();
        self.defer(id); // a client's ClientHello (or the bytes owed in the clear) go out at once
        Ok(bits)
    }

    pub fn stream_bits(&mut self, id: u32) -> u32 {
        self.entries.stream(id).map_or(bits::GONE, |s| s.state.bits())
    }

    /// Aborts a connection at the consumer's request (no event: the consumer reports it).
    pub fn abort(&mut self, registry: &Registry, id: u32) {
        match self.entries.stream(id).map(|s| s.state.relay()) {
            Some(Some(rid)) => self.relays.abort_relaying(Self::lend(&mut self.entries, &mut self.batch, &mut self.deadlines, registry), id, rid),
            Some(None) => {
                if let Some(s) = self.entries.stream(id) {
                    s.prepare_abort();
                }
                self.remove(registry, id);
            }
            None => {}
        }
    }


    /// The core's figures now (see `wire::Stats`). Reads each open datagram port's kernel drop count.
    pub fn stats(&self) -> Stats {
        let kernel_drops = self
            .entries
            .values()
            .map(|e| match e {
                Entry::Datagram(d) => d.dropped_total(),
                _ => 0,
            })
            .sum();
        let e = &self.entries;
        counters::core_stats(&self.batch.counters, &e.counters, &e.shared_counters, self.relays.active(), kernel_drops)
    }
}
