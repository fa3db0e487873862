//! What the loop's driver and the consumer's thread both hold.

use crate::event_loop::registry::State;
use mio::{Registry, Waker};
use std::sync::{Mutex, MutexGuard};

pub struct Shared {
    state: Mutex<State>,
    pub registry: Registry,
    pub waker: Waker,
}

impl Shared {
    pub fn new(state: State, registry: Registry, waker: Waker) -> Shared {
        Shared { state: Mutex::new(state), registry, waker }
    }

    /// Locks the state. A panic while holding the lock is a bug; the state stays usable so that
    /// shutdown can still close every socket.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn wake(&self) {
        let _ = self.waker.wake();
    }
}
