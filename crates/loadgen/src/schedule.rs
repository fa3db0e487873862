//! The phases of a run: warmup (not counted), the measured window, then a grace period to
//! collect echoes still in flight. The hard deadline ends the run no matter what, so a
//! stalled server gives a (flagged) result instead of a hung benchmark.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub measure_start: Instant,
    pub measure_end: Instant,
    pub deadline: Instant,
}

impl Schedule {
    pub fn new(start: Instant, warmup: Duration, duration: Duration, grace: Duration) -> Schedule {
        let measure_start = start + warmup;
        let measure_end = measure_start + duration;
        Schedule {
            measure_start,
            measure_end,
            deadline: measure_end + grace,
        }
    }

    /// Whether an operation completing at `t` is counted.
    pub fn counting(&self, t: Instant) -> bool {
        t >= self.measure_start && t < self.measure_end
    }

    /// Whether new work may start at `t`; after the window only in-flight work finishes.
    pub fn issuing(&self, t: Instant) -> bool {
        t < self.measure_end
    }

    /// The next phase boundary after `t` (the loop wakes there even if nothing happens).
    pub fn next_boundary(&self, t: Instant) -> Instant {
        [self.measure_start, self.measure_end, self.deadline]
            .into_iter()
            .find(|&b| b > t)
            .unwrap_or(self.deadline)
    }
}
