//! `stats()`: the core's counters as one plain JS object (see reactor_core::stats).

use crate::reactor::NativeReactor;
use napi_derive::napi;
use reactor_core::stats::Stats;

/// Numbers are doubles in JS: exact up to 2^53, far past any count a reactor reaches.
#[napi(object)]
pub struct ReactorStats {
    pub connections_accepted: f64,
    pub connections_open: f64,
    pub bytes_in: f64,
    pub bytes_out: f64,
    pub bytes_queued: f64,
    pub datagrams_in: f64,
    pub datagrams_out: f64,
    pub datagrams_dropped: f64,
    pub datagrams_dropped_by_kernel: f64,
    pub batches: f64,
    pub events: f64,
    pub events_per_batch: f64,
    pub wakeups: f64,
    pub wakeups_by_io_thread: f64,
    pub relays_active: f64,
    pub bytes_relayed: f64,
}

impl From<Stats> for ReactorStats {
    fn from(s: Stats) -> Self {
        ReactorStats {
            connections_accepted: s.connections_accepted as f64,
            connections_open: s.connections_open as f64,
            bytes_in: s.bytes_in as f64,
            bytes_out: s.bytes_out as f64,
            bytes_queued: s.bytes_queued as f64,
            datagrams_in: s.datagrams_in as f64,
            datagrams_out: s.datagrams_out as f64,
            datagrams_dropped: s.datagrams_dropped as f64,
            datagrams_dropped_by_kernel: s.datagrams_dropped_by_kernel as f64,
            batches: s.batches as f64,
            events: s.events as f64,
            events_per_batch: s.events_per_batch(),
            wakeups: s.wakeups as f64,
            wakeups_by_io_thread: s.wakeups_by_io_thread as f64,
            relays_active: s.relays_active as f64,
            bytes_relayed: s.bytes_relayed as f64,
        }
    }
}

#[napi]
impl NativeReactor {
    /// The reactor's counters: zeros before the first adoption, the final figures after the close.
    #[napi]
    pub fn stats(&self) -> ReactorStats {
        self.current_stats().into()
    }
}
