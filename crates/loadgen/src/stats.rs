//! Counters shared by all workloads, and the latency percentiles.

use std::fmt;

/// Lines of error detail printed to stderr before the rest are only counted: a broken
/// server can produce an error per operation and must not flood the terminal.
const MAX_ERROR_LINES: u64 = 20;

#[derive(Debug, Default)]
pub struct Stats {
    /// Operations completed and verified inside the measured window.
    pub ops: u64,
    /// Echoed bytes verified inside the measured window.
    pub bytes: u64,
    /// Mismatches, unexpected closes, refused/reset connections — in any phase.
    pub errors: u64,
    /// UDP datagrams given up on inside the measured window.
    pub lost: u64,
    /// Per-operation latencies in µs, inside the measured window.
    pub latencies_us: Vec<u32>,
}

impl Stats {
    /// Counts an error and describes it on stderr (the first few only).
    pub fn error(&mut self, what: fmt::Arguments<'_>) {
        self.errors += 1;
        if self.errors <= MAX_ERROR_LINES {
            eprintln!("loadgen: error: {what}");
        } else if self.errors == MAX_ERROR_LINES + 1 {
            eprintln!("loadgen: further errors are counted but not printed");
        }
    }

    /// Sorts the latencies and returns (p50, p99), or `None` if none were recorded.
    pub fn percentiles(&mut self) -> Option<(u32, u32)> {
        self.latencies_us.sort_unstable();
        Some((
            percentile(&self.latencies_us, 50.0)?,
            percentile(&self.latencies_us, 99.0)?,
        ))
    }
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Saturating µs of a duration, for the latency vector.
pub fn micros(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7], 99.0), Some(7));
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        let v: Vec<u32> = (1..=1000).collect();
        assert_eq!(percentile(&v, 99.0), Some(990));
    }

    #[test]
    fn percentiles_sort_first() {
        let mut s = Stats {
            latencies_us: vec![30, 10, 20],
            ..Stats::default()
        };
        assert_eq!(s.percentiles(), Some((20, 30)));
    }
}
