//! The load generator's own CPU time, so every figure says whether the load generator or
//! the server was the limit. A single-threaded load generator near one full core cannot
//! offer more load: its figure is a lower bound of what the server can do.

use std::time::{Duration, Instant};

/// User + system CPU time the calling thread has used so far (`getrusage(RUSAGE_THREAD)`): the
/// load generator runs on one thread, so this is its own CPU, even inside a test process where
/// other tests (and an in-process server) run on other threads.
pub fn process_cpu() -> Duration {
    // SAFETY: `usage` is a plain C struct that getrusage fully writes on success; the
    // pointer is valid for the duration of the call. RUSAGE_THREAD cannot fail on Linux,
    // and on failure the zeroed struct reads as zero time.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// User and system CPU time of this process's children that have exited and been waited for
/// (`getrusage(RUSAGE_CHILDREN)`): how `timed` measures a real benchmark client it ran.
pub fn children_cpu() -> (Duration, Duration) {
    // SAFETY: as in `process_cpu`: a plain C struct fully written by getrusage on success,
    // a pointer valid for the call; on failure the zeroed struct reads as zero time.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(usage.ru_utime), tv(usage.ru_stime))
}

/// CPU used between the start and the end of the measured window.
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuWindow {
    start: Option<(Instant, Duration)>,
    end: Option<(Instant, Duration)>,
}

impl CpuWindow {
    /// Called on every turn of the loop: takes the first sample at or after `start` and
    /// the first at or after `end` (the loop wakes at both boundaries).
    pub fn observe(&mut self, now: Instant, start: Instant, end: Instant) {
        if self.start.is_none() && now >= start {
            self.start = Some((now, process_cpu()));
        }
        if self.end.is_none() && now >= end && self.start.is_some() {
            self.end = Some((now, process_cpu()));
        }
    }

    /// CPU seconds used in the window and that as a share of one core (1.0 = a whole
    /// core), or `None` if the window was not reached. A run that ends early (an error)
    /// is measured up to `now`.
    pub fn result(&self, now: Instant) -> Option<(f64, f64)> {
        let (t0, c0) = self.start?;
        let (t1, c1) = self.end.unwrap_or_else(|| (now, process_cpu()));
        let wall = t1.saturating_duration_since(t0).as_secs_f64();
        let cpu = c1.saturating_sub(c0).as_secs_f64();
        Some((cpu, if wall > 0.0 { cpu / wall } else { 0.0 }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_counts_cpu_spent_inside_it() {
        let t = Instant::now();
        let mut w = CpuWindow::default();
        w.observe(t, t, t + Duration::from_secs(3600));
        assert!(w.start.is_some() && w.end.is_none());
        // Burn 50 ms of CPU (however long a shared machine takes to give it to us).
        let c0 = process_cpu();
        let mut x = 0u64;
        while process_cpu() - c0 < Duration::from_millis(50)
            && t.elapsed() < Duration::from_secs(10)
        {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let end = Instant::now();
        w.observe(end, t, end);
        let (cpu, share) = w.result(Instant::now()).unwrap();
        // The spin above ran on this thread (RUSAGE_THREAD): at least its 50 ms count.
        assert!(cpu >= 0.05 && share > 0.0, "{cpu} {share}");
        // Later turns do not move a closed window.
        w.observe(end + Duration::from_secs(1), t, end);
        assert_eq!(w.result(Instant::now()).unwrap().0, cpu);
    }

    #[test]
    fn a_waited_child_s_cpu_is_counted() {
        let before = children_cpu();
        // A child that burns some CPU of its own, then exits and is reaped.
        let status = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"])
            .status()
            .unwrap();
        assert!(status.success());
        let after = children_cpu();
        assert!(
            after.0 + after.1 > before.0 + before.1,
            "{before:?} {after:?}"
        );
    }

    #[test]
    fn no_window_no_figure() {
        let t = Instant::now();
        let mut w = CpuWindow::default();
        w.observe(t, t + Duration::from_secs(10), t + Duration::from_secs(20));
        assert!(w.result(t).is_none());
    }
}
