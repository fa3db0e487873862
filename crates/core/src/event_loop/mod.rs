//! The loop: the registry of entries and its dispatch (`registry`), one turn (`engine`), who turns
//! it (`driver`), the lock both threads share (`shared`), and the consumer's side (`consumer`).

mod calls;
pub mod consumer;
mod datagram_proxy;
mod drain;
pub mod driver;
pub mod engine;
pub mod registry;
mod sessions;
pub mod shared;

use crate::batch::counters::SharedCounters;
use std::sync::Arc;

/// Told (from the I/O thread) that a batch is ready. At most one announcement is outstanding:
/// the next comes only after `take_batch` has returned None.
pub trait Notify: Send + 'static {
    fn batch_ready(&self);
}

/// A `Notify` that counts each announcement of the I/O thread (one wake-up of the consumer's
/// thread) before passing it on.
pub struct CountingNotify {
    inner: Box<dyn Notify>,
    counters: Arc<SharedCounters>,
}

impl CountingNotify {
    pub fn new(inner: Box<dyn Notify>, counters: Arc<SharedCounters>) -> CountingNotify {
        CountingNotify { inner, counters }
    }
}

impl Notify for CountingNotify {
    fn batch_ready(&self) {
        self.counters.woke_from_io_thread();
        self.inner.batch_ready();
    }
}

