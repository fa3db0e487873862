//! One turn of the loop: poll, service what is ready, continue deferred work, and say whether a
//! batch should be announced. Who calls `turn` (a dedicated thread, or the host's own loop) is
//! the driver's business; see `driver`.

use crate::event_loop::shared::Shared;
use crate::relay::engine::RelayPoller;
use crate::service::Ready;
use mio::{Events, Poll, Token};
use std::io;
use std::sync::Arc;
use std::time::Duration;

pub const WAKER: Token = Token(usize::MAX);

pub struct Engine {
    poll: Poll,
    events: Events,
    shared: Arc<Shared>,
    role: Role,
}

/// What an engine's poller watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Every socket (the threaded mode's relaying sockets excepted, when it has a relay poller).
    Main,
    /// Only relaying sockets (the threaded mode's relay poller, turned by the I/O thread alone).
    Relays,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Turn {
    /// Nothing for the consumer (or a batch is already announced).
    Quiet,
    /// A batch is ready and no announcement is in flight: announce it.
    Announce,
    /// The reactor is closing: leave the loop.
    Stop,
}

impl Engine {
    pub fn new(poll: Poll, shared: Arc<Shared>) -> Engine {
        Engine { poll, events: Events::with_capacity(1024), shared, role: Role::Main }
    }

    /// The relay poller's engine: a poller of its own with a waker, given to the state.
    pub fn for_relays(shared: Arc<Shared>) -> io::Result<Engine> {
        let poll = Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        shared.lock().relays.set_poller(RelayPoller { registry: poll.registry().try_clone()?, waker });
        Ok(Engine { poll, events: Events::with_capacity(256), shared, role: Role::Relays })
    }

    pub fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.poll.as_raw_fd()
    }

    pub fn turn(&mut self, timeout: Option<Duration>) -> io::Result<Turn> {
        let timeout = {
            let st = self.shared.lock();
            if st.stopping {
                return Ok(Turn::Stop);
            }
            if st.has_ready_work() {
                Some(Duration::ZERO)
            } else if self.role == Role::Main {
                st.wait_limit(timeout)
            } else {
                timeout
            }
        };
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => self.events.clear(),
            Err(e) => return Err(e),
        }
        let registry = self.poll.registry();
        // The lock is taken per socket, not for the whole turn: the JS thread's writes and batch
        // takes then wait for one socket's work at most, not for every socket's.
        for ev in self.events.iter() {
            if ev.token() == WAKER {
                continue;
            }
            let ready = Ready {
                readable: ev.is_readable() || ev.is_read_closed(),
                read_closed: ev.is_read_closed(),
                writable: ev.is_writable() || ev.is_write_closed(),
                error: ev.is_error(),
            };
            let mut st = self.shared.lock();
            if st.stopping {
                return Ok(Turn::Stop);
            }
            st.relays.serving = self.role == Role::Relays;
            st.on_event(registry, ev.token().0 as u32, ready);
            st.relays.serving = false;
        }
        let mut st = self.shared.lock();
        if st.stopping {
            return Ok(Turn::Stop);
        }
        match self.role {
            Role::Main => {
                if st.retry_accept && self.events.is_empty() {
                    st.retry_listeners();
                }
                st.run_deadlines(registry);
                st.run_deferred(registry);
                if !st.relays.has_poller() {
                    st.run_relay_work(registry);
                    st.run_datagram_work(registry);
                } else if st.has_datagram_work() {
                    st.relays.wake_poller(); // a deadline here left work for the relay poller's loop
                }
            }
            Role::Relays => {
                st.relays.serving = true;
                st.run_relay_work(registry);
                st.relays.serving = false;
                st.run_datagram_work(registry);
                if st.entries.has_news() {
                    self.shared.wake(); // a listener may accept again: the main loop's work
                }
                // Who announces is the I/O thread's choice (see driver::thread): nothing is in
                // flight yet.
                return Ok(if st.should_announce() { Turn::Announce } else { Turn::Quiet });
            }
        }
        if st.should_announce() {
            st.in_flight = true;
            return Ok(Turn::Announce);
        }
        Ok(Turn::Quiet)
    }
}
