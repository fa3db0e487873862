//! The loop on its own I/O thread, which the host's loop may assist.
//!
//! Alone (no host attached), the thread waits for readiness, turns the engine and announces
//! batches through the consumer's `Notify`: every event costs a hop from this thread to the
//! consumer's.
//!
//! Assisted (`Assist::attach`: the Node binding does it): the host's own loop also watches the
//! poller's fd and runs turns on its thread, as the hosted driver does, so a responsive JS thread
//! takes its events with no hop at all. This thread then only steps in for a host that is busy:
//! when readiness has waited for the grace period (1–16 ms, see `GRACE_MIN`) without a host turn, it turns the engine itself and
//! announces through `Notify`, so a JS thread busy for seconds still has its sockets accepted and
//! read up to the batch bound.

use crate::event_loop::engine::{Engine, Turn};
use crate::event_loop::shared::Shared;
use crate::event_loop::Notify;
use crate::sys::poll;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long readiness may wait for the host before this thread takes it: 1 ms, doubled (up to
/// 16 ms) each time the host kept up, so that under steady load this thread wakes rarely; back to
/// 1 ms once it had to step in.
const GRACE_MIN: Duration = Duration::from_millis(1);
const GRACE_MAX: Duration = Duration::from_millis(16);

/// What the I/O thread and an assisting host share.
#[derive(Default)]
pub struct Assist {
    attached: AtomicBool,
    /// Turns the host ran: this thread watches it move.
    host_turns: AtomicU64,
}

impl Assist {
    /// The host's loop watches the poller's fd from now on.
    pub fn attach(&self) {
        self.attached.store(true, Ordering::Release);
    }

    pub fn host_turned(&self) {
        self.host_turns.fetch_add(1, Ordering::AcqRel);
    }
}

/// The I/O thread. `relays` is its own engine for relaying sockets: it turns it whenever it has
/// events, with no grace (relayed bytes never wait for, or cost, the JS thread).
pub fn spawn(
    engine: Arc<Mutex<Engine>>,
    epfd: RawFd,
    mut relays: Engine,
    shared: Arc<Shared>,
    assist: Arc<Assist>,
    notify: Box<dyn Notify>,
) -> io::Result<JoinHandle<()>> {
    let mut grace = GRACE_MIN;
    std::thread::Builder::new().name("reactor-io".into()).spawn(move || loop {
        let (stopping, ready_work, limit, relay_work) = {
            let st = shared.lock();
            (st.stopping, st.has_ready_work(), st.wait_limit(None), st.relays.has_work() || st.has_datagram_work())
        };
        if stopping {
            return;
        }
        let (main_ready, relays_ready) = if ready_work {
            (true, relay_work)
        } else {
            // A deadline (or a listener's retry) that comes turns the main engine, which runs it.
            // Relay work left by the relay poller's own turn is not woken for: only looked at.
            let timeout = if relay_work { 0 } else { limit.map_or(-1, |d| d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32) };
            let (m, r) = wait_readable(epfd, relays.fd(), timeout);
            (m || (limit.is_some() && !r), r || relay_work)
        };
        if relays_ready && !turn_relays(&mut relays, &shared, &assist, notify.as_ref()) {
            return;
        }
        if !main_ready {
            continue;
        }
        if assist.attached.load(Ordering::Acquire) {
            let seen = assist.host_turns.load(Ordering::Acquire);
            // Give the host `grace` to take the events; relays are served meanwhile, at once.
            let until = std::time::Instant::now() + grace;
            loop {
                let left = until.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                // One look at the state per pass (a turn of the relays sees `stopping` too).
                let (stopping, work) = {
                    let st = shared.lock();
                    (st.stopping, st.relays.has_work() || st.has_datagram_work())
                };
                if stopping {
                    return;
                }
                let (_, r) = wait_readable(-1, relays.fd(), if work { 0 } else { left.as_millis().max(1) as i32 });
                if (r || work) && !turn_relays(&mut relays, &shared, &assist, notify.as_ref()) {
                    return;
                }
            }
            if assist.host_turns.load(Ordering::Acquire) != seen {
                grace = (grace * 2).min(GRACE_MAX);
                continue; // the host is keeping up: its turns take the events
            }
            grace = GRACE_MIN;
        }
        let turn = engine.lock().unwrap_or_else(|p| p.into_inner()).turn(Some(Duration::ZERO));
        match turn {
            Ok(Turn::Announce) => notify.batch_ready(),
            Ok(Turn::Quiet) => {}
            Ok(Turn::Stop) => return,
            // epoll_wait fails only on a broken poller (EBADF/EINVAL): nothing left to serve.
            Err(_) => return,
        }
    })
}

/// One turn of the relay poller; false when the reactor is stopping.
fn turn_relays(relays: &mut Engine, shared: &Shared, assist: &Assist, notify: &dyn Notify) -> bool {
    match relays.turn(Some(Duration::ZERO)) {
        // A relay's end is for JS: an assisting host's loop is woken through the main poller and
        // announces it itself (no hop); otherwise this thread announces.
        Ok(Turn::Announce) if assist.attached.load(Ordering::Acquire) => shared.wake(),
        Ok(Turn::Announce) => {
            let mut st = shared.lock();
            if st.should_announce() {
                st.in_flight = true;
                drop(st);
                notify.batch_ready();
            }
        }
        Ok(Turn::Quiet) => {}
        Ok(Turn::Stop) | Err(_) => return false,
    }
    true
}

/// Waits until either epoll fd has events (without taking them), up to `timeout_ms` (-1: no
/// limit); says which. Both epoll fds outlive this thread (the reactor joins it before it drops
/// the engines).
fn wait_readable(main: RawFd, relays: RawFd, timeout_ms: i32) -> (bool, bool) {
    match poll::readable([main, relays], timeout_ms) {
        Ok([m, r]) => (m, r),
        Err(_) => (false, false),
    }
}
