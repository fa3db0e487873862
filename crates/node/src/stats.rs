//! `stats()`: the core's counters as one plain JS object. Its fields are the core's list
//! (`reactor_core::for_each_stat!`), so the generated `ReactorStats` type (binding.d.ts) is the
//! TypeScript type too: the shape is written once.

use crate::reactor::NativeReactor;
use napi_derive::napi;
use reactor_core::Stats;

macro_rules! js_stats {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// A reactor's figures: totals since its core started, and levels now. Numbers are doubles in
        /// JS: exact up to 2^53, far past any count a reactor reaches.
        #[napi(object)]
        pub struct ReactorStats {
            $($(#[$doc])* pub $name: f64,)*
            /// `events / batches` (0 before the first batch).
            pub events_per_batch: f64,
        }

        impl From<Stats> for ReactorStats {
            fn from(s: Stats) -> Self {
                ReactorStats { $($name: s.$name as f64,)* events_per_batch: s.events_per_batch() }
            }
        }
    };
}

reactor_core::for_each_stat!(js_stats);

/// The figures of a reactor whose core never started (all zero).
#[napi(catch_unwind)]
pub fn no_stats() -> ReactorStats {
    Stats::default().into()
}

#[napi]
impl NativeReactor {
    /// The reactor's counters: zeros before the first adoption, the final figures after the close.
    #[napi(catch_unwind)]
    pub fn stats(&self) -> ReactorStats {
        self.current_stats().into()
    }
}
