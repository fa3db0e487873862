//! The relay engine: every relay of a reactor, the relays with work left, and the pipe pool.
//!
//! In the threaded mode relaying sockets move to a poller of their own (`RelayPoller`), turned by
//! the I/O thread alone (see `event_loop::driver::thread`), so relayed bytes never cost the JS
//! thread anything. Hosted, the main loop serves relays itself.

use super::pipes::PipePool;
use super::{Failed, PortRelay, Pumped, Relay, RelayOptions, Tools};
use crate::batch::Batch;
use crate::entry::{Entries, Entry};
use crate::service::{Deadlines, Ready};
use crate::stream::state::{Input, Reading};
use crate::wire::{kind, push_relay_counts};
use mio::{Registry, Waker};
use crate::ids::{IdMap, IdSet};
use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

/// The threaded mode's poller for relaying sockets: its registry and its waker.
pub struct RelayPoller {
    pub registry: Registry,
    pub waker: Waker,
}

/// What the engine works on, lent by the registry for one call.
pub struct Lent<'a> {
    pub entries: &'a mut Entries,
    pub batch: &'a mut Batch,
    /// The main poller's registry.
    pub registry: &'a Registry,
    pub deadlines: &'a mut Deadlines,
}

#[derive(Default)]
pub struct RelayEngine {
    /// Relays by id (the id of their first connection).
    relays: IdMap<Relay>,
    /// Relays with work left for a later pass, and their ids.
    work: VecDeque<u32>,
    work_ids: IdSet,
    pipes: PipePool,
    /// The copy path's read buffer, lent to each pump in turn.
    scratch: Vec<u8>,
    poller: Option<RelayPoller>,
    /// Set while the relay poller's own turn runs (its events are served, not passed on).
    pub serving: bool,
}

impl RelayEngine {
    pub fn set_poller(&mut self, poller: RelayPoller) {
        self.poller = Some(poller);
    }

    pub fn has_poller(&self) -> bool {
        self.poller.is_some()
    }

    pub fn has_work(&self) -> bool {
        !self.work.is_empty()
    }

    /// Wakes the relay poller's turn (where there is one): work for it was queued from elsewhere.
    pub fn wake_poller(&self) {
        if let Some(p) = &self.poller {
            let _ = p.waker.wake();
        }
    }

    pub fn active(&self) -> usize {
        self.relays.len()
    }

    pub fn pooled_pipes(&self) -> usize {
        self.pipes.pooled()
    }

    pub fn counts(&self, rid: u32) -> Option<(u64, u64)> {
        self.relays.get(&rid).map(Relay::counts)
    }

    /// The registry a relaying socket is registered with.
    pub fn registry<'r>(&'r self, main: &'r Registry) -> &'r Registry {
        self.poller.as_ref().map_or(main, |p| &p.registry)
    }

    /// Starts relaying between `a` and `b`. `held_a` are bytes read from `a` that the consumer
    /// holds (they go to `b` first), likewise `held_b`; bytes of either still in the batch the
    /// consumer has not taken follow them, and their records are blanked. Errors: EINVAL when the
    /// pair cannot relay (the same id, not both open established connections, already relaying),
    /// ENOENT when either is gone.
    pub fn start(&mut self, cx: Lent<'_>, a: u32, b: u32, held_a: &[&[u8]], held_b: &[&[u8]], options: RelayOptions, owner: Option<PortRelay>) -> io::Result<u32> {
        let invalid = || io::Error::from_raw_os_error(libc::EINVAL);
        if a == b {
            return Err(invalid());
        }
        for id in [a, b] {
            let s = cx.entries.stream(id).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
            if !s.state.accepts_writes() || s.state.reading == Reading::Stopped || s.state.relay().is_some() {
                return Err(invalid());
            }
        }
        let mut relay = Relay::new(a, b, options.cap);
        relay.idle_timeout = options.idle_timeout;
        relay.owner = owner;
        let pending = cx.batch.take_stream_bytes(&[a, b]);
        for (src, dst, held) in [(a, b, held_a), (b, a, held_b)] {
            let mut moved = 0;
            let s = cx.entries.stream(dst).expect("checked above");
            for bytes in held.iter().copied().chain(pending.iter().filter(|(id, _)| *id == src).map(|(_, v)| v.as_slice())) {
                s.queue.push(bytes);
                moved += bytes.len() as u64;
            }
            if src == a {
                relay.ab.moved += moved
            } else {
                relay.ba.moved += moved
            }
            cx.entries.counters.bytes_relayed += moved;
        }
        for (id, dir) in [(a, &mut relay.ab), (b, &mut relay.ba)] {
            let s = cx.entries.stream(id).expect("checked above");
            s.state.on(Input::StartRelay(a), s.is_flushed());
            // The peer's FIN was already read: this direction only flushes, then sends FIN.
            dir.src_done = s.state.reading == Reading::PeerClosed;
        }
        // A proxy port's session (`owner`) lives on the relay poller from its accept and connect
        // on; a pair JS joins moves to it.
        if let Some(poller) = self.poller.as_ref().filter(|_| owner.is_none()) {
            for id in [a, b] {
                cx.entries.move_registration(id, cx.registry, &poller.registry)?;
            }
        }
        if let Some(at) = options.idle_timeout.and_then(|t| relay.last_activity.checked_add(t)) {
            cx.deadlines.wake(a, at);
        }
        self.relays.insert(a, relay);
        self.queue_work(a);
        Ok(a)
    }

    /// An event (`ready`) for `conn`, a relaying socket. With a poller of their own, an event that
    /// reached the main loop (harvested before the socket moved) is passed on to it (as work: both
    /// directions).
    pub fn on_event(&mut self, cx: Lent<'_>, rid: u32, conn: u32, ready: Ready) {
        if self.poller.is_some() && !self.serving {
            return self.queue_work(rid);
        }
        self.service(cx, rid, Some((conn, ready)));
    }

    /// Runs the relays that have work left (on the loop that serves relays).
    pub fn run_work(&mut self, cx: Lent<'_>) {
        for _ in 0..self.work.len() {
            let Some(rid) = self.work.pop_front() else { return };
            self.work_ids.remove(&rid);
            self.service(Lent { entries: cx.entries, batch: cx.batch, registry: cx.registry, deadlines: cx.deadlines }, rid, None);
        }
    }

    fn queue_work(&mut self, rid: u32) {
        if self.work_ids.insert(rid) {
            self.work.push_back(rid);
        }
        // Queued from the relay poller's own turn, the work is found by the I/O thread before it
        // waits again (it does not block while relays have work: `driver::thread`): no wake-up,
        // no syscall. From anywhere else the poller must be woken.
        if self.serving {
            return;
        }
        if let Some(p) = &self.poller {
            let _ = p.waker.wake();
        }
    }

    /// Pumps the directions of a relay that `event` concerns (both without one), and ends the relay
    /// when both are done.
    fn service(&mut self, mut cx: Lent<'_>, rid: u32, event: Option<(u32, Ready)>) {
        let Some(mut relay) = self.relays.remove(&rid) else { return };
        let before = relay.counts();
        let wanted = relay.directions(event);
        let (mut more, mut done, mut failure) = (false, 0, None);
        for (forward, wanted) in [(true, wanted[0]), (false, wanted[1])] {
            let (src_id, dst_id) = if forward { (relay.a, relay.b) } else { (relay.b, relay.a) };
            let dir = if forward { &mut relay.ab } else { &mut relay.ba };
            if !wanted {
                // Not this event's: it waits for an edge of its own, or is queued as work.
                done += usize::from(dir.finished);
                continue;
            }
            let [src, dst] = cx.entries.stream_pair(src_id, dst_id);
            let Some(dst) = dst else {
                // Nowhere to write: this direction is over, also for the passes that skip it.
                dir.finished = true;
                done += 1;
                continue;
            };
            let mut tools = Tools { scratch: &mut self.scratch, pipes: &mut self.pipes };
            match dir.pump(src, dst, relay.cap, &mut tools) {
                Ok(Pumped::Finished) => {
                    dir.finished = true;
                    done += 1
                }
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
            relay.last_activity = Instant::now();
            let (ab, ba) = relay.counts();
            cx.entries.counters.bytes_relayed += (ab - before.0) + (ba - before.1);
        }
        if let Some((id, err)) = failure {
            // That side is gone at once; what was read from it still goes to the other side.
            let errno = err.raw_os_error().unwrap_or(libc::EIO);
            relay.ending.get_or_insert(errno);
            let existed = cx.entries.stream(id).is_some();
            self.abort_one(&mut cx, id, None);
            if existed && relay.owner.is_none() {
                cx.batch.push_closed(id, &err); // a TLS failure says which (TLS_ERROR)
            }
            self.relays.insert(rid, relay);
            return self.queue_work(rid);
        }
        if done == 2 {
            return self.finish(cx, relay);
        }
        self.relays.insert(rid, relay);
        if more {
            self.queue_work(rid);
        }
    }

    /// Both directions are done: close what is left in order and report the counts.
    fn finish(&mut self, mut cx: Lent<'_>, mut relay: Relay) {
        let errno = relay.ending.unwrap_or(0);
        // FIN went both ways and both EOFs were read: a shutdown would only fail (ENOTCONN).
        let both_closed = relay.ab.fin_sent && relay.ba.fin_sent;
        for id in [relay.a, relay.b] {
            if let Some(s) = cx.entries.stream(id) {
                if !both_closed {
                    s.shutdown_both();
                }
                cx.entries.remove(self.registry(cx.registry), id);
                if relay.owner.is_none() {
                    cx.batch.push(kind::CLOSED, id, errno as u32, 0);
                }
            }
        }
        self.report_end(&mut cx, &mut relay);
    }

    /// The relay is over: its pipes go back, and its counts to the consumer (RELAY_ENDED) or to the
    /// port that started it.
    fn report_end(&mut self, cx: &mut Lent<'_>, relay: &mut Relay) {
        relay.release(&mut self.pipes);
        let (ab, ba) = relay.counts();
        match relay.owner {
            None => {
                let offset = push_relay_counts(&mut cx.batch.data, ab, ba);
                cx.batch.push(kind::RELAY_ENDED, relay.a, offset as u32, 0);
            }
            Some(PortRelay { port, upstream }) => {
                if let Some(Entry::Listener(l)) = cx.entries.get_mut(port) {
                    l.stats.bytes_to_upstream += ab;
                    l.stats.bytes_from_upstream += ba;
                    l.stats.bytes_spliced += relay.ab.spliced + relay.ba.spliced;
                    l.balancer.closed(upstream);
                }
            }
        }
    }

    /// Aborts one connection now (RST where we hold the last reference); `report` its close with
    /// that errno, or not (a close the consumer asked for itself).
    fn abort_one(&self, cx: &mut Lent<'_>, id: u32, report: Option<i32>) {
        if let Some(s) = cx.entries.stream(id) {
            s.prepare_abort();
            cx.entries.remove(self.registry(cx.registry), id);
            if let Some(errno) = report {
                cx.batch.push(kind::CLOSED, id, errno as u32, 0);
            }
        }
    }

    /// Ends a relay: in order (`errno` 0: both directions stop reading, flush, FIN, close) or by
    /// aborting both sides with `errno` (idle timeout).
    pub fn end(&mut self, mut cx: Lent<'_>, rid: u32, errno: i32) {
        let Some(mut relay) = self.relays.remove(&rid) else { return };
        if errno == 0 {
            relay.ending.get_or_insert(0);
            relay.ab.src_done = true;
            relay.ba.src_done = true;
            self.relays.insert(rid, relay);
            return self.service(cx, rid, None);
        }
        for id in [relay.a, relay.b] {
            self.abort_one(&mut cx, id, relay.owner.is_none().then_some(errno));
        }
        self.report_end(&mut cx, &mut relay);
    }

    /// The consumer aborted `id`, which is relaying: it closes without an event (the consumer
    /// reports it), the other side is aborted with ECONNABORTED.
    pub fn abort_relaying(&mut self, mut cx: Lent<'_>, id: u32, rid: u32) {
        let Some(mut relay) = self.relays.remove(&rid) else { return };
        self.abort_one(&mut cx, id, None);
        let other = if id == relay.a { relay.b } else { relay.a };
        self.abort_one(&mut cx, other, relay.owner.is_none().then_some(libc::ECONNABORTED));
        self.report_end(&mut cx, &mut relay);
    }

    /// The proxy port that started relay `rid` (None: the consumer did, or no such relay).
    pub fn owner_of(&self, rid: u32) -> Option<u32> {
        self.relays.get(&rid).and_then(|r| r.owner).map(|o| o.port)
    }

    /// The two connections of relay `rid`.
    pub fn ends(&self, rid: u32) -> Option<(u32, u32)> {
        self.relays.get(&rid).map(|r| (r.a, r.b))
    }

    /// Whether relay `rid` holds no byte either way and moved none for `quiet`.
    pub fn is_idle(&self, rid: u32, quiet: Duration) -> bool {
        self.relays.get(&rid).is_some_and(|r| r.ab.held == 0 && r.ba.held == 0 && r.last_activity.elapsed() >= quiet)
    }

    /// A relay's idle deadline came: abort it with ETIMEDOUT if it really was idle that long,
    /// otherwise look again when it could be.
    pub fn check_idle(&mut self, cx: Lent<'_>, rid: u32) {
        let Some(relay) = self.relays.get(&rid) else { return };
        let Some(timeout) = relay.idle_timeout else { return };
        match relay.last_activity.checked_add(timeout) {
            Some(at) if at > Instant::now() => cx.deadlines.wake(rid, at),
            _ => self.end(cx, rid, libc::ETIMEDOUT),
        }
    }

    /// Forgets every relay (reactor shutdown: the registry closes the sockets).
    pub fn clear(&mut self) {
        self.relays.clear();
        self.work.clear();
        self.work_ids.clear();
    }
}
