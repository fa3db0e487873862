//! What the consumer's thread asks of the shared state: writes, state inputs (pause, resume,
//! close), aborts and relays. Each runs under the lock, on the consumer's thread.

use super::registry::State;
use crate::relay::RelayOptions;
use crate::service::Step;
use crate::stream::state::Input;
use crate::batch::counters;
use crate::entry::Entry;
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
        let action = s.state.on(input, s.queue.is_empty());
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
