//! Draining a listening port, for a graceful restart: it accepts nothing more, its idle sessions
//! close at once, the active ones go on until the deadline, and what is left then is closed. When
//! its last connection is gone the consumer gets a PORT_DRAINED record with the counts, and the
//! port's duplicate is closed.
//!
//! Idle: a proxied connection whose relay holds no byte, has none waiting to be read, and moved
//! none either way for `idle_after`. A session still reading its header or connecting is busy. Connections handed to the consumer are its
//! own to end (it knows what idle means for its protocol); at the deadline they are aborted too.

use super::registry::State;
use crate::entry::Entry;
use crate::relay::engine::Lent;
use crate::stream::listener::Drain;
use crate::sys::fd::unread_bytes;
use crate::wire::{kind, push_drain_counts};
use mio::unix::SourceFd;
use mio::Registry;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

impl State {
    /// Starts draining `port`; false when it is not a listening port.
    pub fn drain(&mut self, registry: &Registry, port: u32, deadline: Instant, idle_after: Duration) -> bool {
        let Some(Entry::Listener(l)) = self.entries.get_mut(port) else { return false };
        if l.drain.is_some() {
            return true;
        }
        l.drain = Some(Drain { deadline, started_with: l.admission.active as u64, idle_closed: 0, closed_at_deadline: 0 });
        let active = l.admission.active;
        // It accepts nothing more: no events from it either (clients wait in the backlog, for a
        // successor sharing the socket, or get a reset when the port closes).
        let fd = l.sock.as_raw_fd();
        let registry_of_port = if self.on_relay_poller(port) { self.relays.registry(registry) } else { registry };
        let _ = registry_of_port.deregister(&mut SourceFd(&fd));
        self.deadlines.wake(port, deadline);
        let mut idle = 0;
        for id in self.entries.of_port(port) {
            if self.close_if_idle(registry, id, port, idle_after) {
                idle += 1;
            }
        }
        if let Some(Entry::Listener(l)) = self.entries.get_mut(port) {
            if let Some(d) = &mut l.drain {
                d.idle_closed = idle;
            }
        }
        if active == 0 {
            self.entries.drained.push(port);
        }
        true
    }

    fn close_if_idle(&mut self, registry: &Registry, id: u32, port: u32, idle_after: Duration) -> bool {
        match self.entries.get(id) {
            // A session still reading its header or connecting upstream is busy, not idle.
            Some(Entry::Stream(s)) => match s.state.relay() {
                Some(rid) if self.relays.owner_of(rid) == Some(port) && self.relays.is_idle(rid, idle_after) && self.quiet_sockets(rid) => {
                    self.relays.end(Lent { entries: &mut self.entries, batch: &mut self.batch, registry, deadlines: &mut self.deadlines }, rid, 0);
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// Whether neither socket of relay `rid` has bytes waiting to be read (bytes the relay has not
    /// seen yet still make it busy).
    fn quiet_sockets(&mut self, rid: u32) -> bool {
        let Some((a, b)) = self.relays.ends(rid) else { return false };
        [a, b].into_iter().all(|id| self.entries.get(id).is_some_and(|e| unread_bytes(e.socket().as_raw_fd()).is_ok_and(|n| n == 0)))
    }

    /// The deadline came: everything of the port still open is closed.
    pub(super) fn drain_deadline(&mut self, registry: &Registry, port: u32) {
        let mut closed = 0;
        for id in self.entries.of_port(port) {
            match self.entries.get(id) {
                Some(Entry::Incoming(_)) => self.close_session(registry, id),
                Some(Entry::Stream(s)) => match s.state.relay() {
                    Some(rid) if self.relays.owner_of(rid) == Some(port) => {
                        let cx = Lent { entries: &mut self.entries, batch: &mut self.batch, registry, deadlines: &mut self.deadlines };
                        self.relays.end(cx, rid, libc::ECONNABORTED);
                    }
                    Some(rid) => {
                        let cx = Lent { entries: &mut self.entries, batch: &mut self.batch, registry, deadlines: &mut self.deadlines };
                        self.relays.abort_relaying(cx, id, rid);
                        self.batch.push(kind::CLOSED, id, libc::ECONNABORTED as u32, 0);
                    }
                    None => {
                        if let Some(s) = self.entries.stream(id) {
                            s.prepare_abort();
                        }
                        self.remove(registry, id);
                        self.batch.push(kind::CLOSED, id, libc::ECONNABORTED as u32, 0);
                    }
                },
                _ => continue,
            }
            closed += 1;
        }
        if let Some(Entry::Listener(l)) = self.entries.get_mut(port) {
            if let Some(d) = &mut l.drain {
                d.closed_at_deadline += closed;
            }
        }
    }

    /// Reports the drains whose last connection closed and closes their ports.
    pub(super) fn finish_drains(&mut self, registry: &Registry) {
        for port in std::mem::take(&mut self.entries.drained) {
            let Some(Entry::Listener(l)) = self.entries.get(port) else { continue };
            let Some(d) = l.drain else { continue };
            let ended = d.started_with.saturating_sub(d.idle_closed + d.closed_at_deadline);
            let offset = push_drain_counts(&mut self.batch.data, ended, d.idle_closed, d.closed_at_deadline);
            self.batch.push(kind::PORT_DRAINED, port, offset as u32, 0);
            // Its last figures wait for the consumer, which asks once it reads the record.
            self.final_port_stats.insert(port, (l.current_stats(), l.balancer.failures.clone()));
            self.remove(registry, port);
        }
    }
}
