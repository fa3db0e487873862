//! The event loop shared by all workloads and the report it produces.
//!
//! Each workload is a state machine over its own sockets (TCP ones in a `ConnTable`); `run`
//! owns the single mio `Poll`, the clock, the phases (see `Schedule`) and the load
//! generator's own CPU clock, and turns the counters into a `Report`.

mod connect;
mod echo_window;
mod http;
mod per_connection;
mod pingpong;
mod roundtrip;
mod stream;
mod tls;
mod udp;

use std::io;
use std::time::Instant;

use mio::event::Event;
use mio::{Events, Poll, Registry};

use crate::args::{Config, Workload as Kind};
use crate::cpu::CpuWindow;
use crate::report::Report;
use crate::schedule::Schedule;
use crate::stats::Stats;

trait Workload {
    /// Opens the sockets and starts the first operations.
    fn start(&mut self, registry: &Registry, sched: &Schedule, stats: &mut Stats)
        -> io::Result<()>;

    /// Handles readiness of the source registered under `event.token()`.
    fn on_event(&mut self, registry: &Registry, event: &Event, sched: &Schedule, stats: &mut Stats);

    /// Timer work, run after every poll; returns when it next needs to run.
    fn on_tick(
        &mut self,
        _registry: &Registry,
        _sched: &Schedule,
        _stats: &mut Stats,
    ) -> Option<Instant> {
        None
    }

    /// Work sent but not yet answered: what the grace period after the window waits for.
    /// Returns the amount and its unit, for the error message.
    fn outstanding(&self) -> (u64, &'static str);

    /// Nothing can make progress any more (every connection failed).
    fn is_dead(&self) -> bool {
        false
    }
}

/// Runs one workload as configured; never panics on network errors and always returns
/// within `warmup + duration + grace`.
pub fn run(cfg: &Config) -> Report {
    let mut stats = Stats::default();
    let mut cpu = CpuWindow::default();
    let sched = Schedule::new(Instant::now(), cfg.warmup, cfg.duration, cfg.grace);
    let (window_end, mut error) = match drive(cfg, &sched, &mut stats, &mut cpu) {
        Ok(end) => end,
        Err(e) => (
            Instant::now().min(sched.measure_end),
            Some(format!("cannot run: {e}")),
        ),
    };
    let seconds = window_end
        .saturating_duration_since(sched.measure_start)
        .as_secs_f64();
    if error.is_none() && stats.ops == 0 {
        error = Some("no operation completed in the measured window".into());
    }
    let per_second = |x: u64| {
        if seconds > 0.0 {
            x as f64 / seconds
        } else {
            0.0
        }
    };
    let rate = match cfg.workload {
        Kind::Stream | Kind::Proxy | Kind::TlsStream => per_second(stats.bytes) / 1e6,
        _ => per_second(stats.ops),
    };
    let p = stats.percentiles();
    let cpu = cpu.result(Instant::now());
    Report {
        workload: cfg.workload.name(),
        conns: cfg.conns,
        size: cfg.size,
        seconds,
        ops: stats.ops,
        bytes: stats.bytes,
        rate,
        unit: cfg.workload.unit(),
        p50_us: p.map(|p| p.0),
        p99_us: p.map(|p| p.1),
        errors: stats.errors,
        lost: stats.lost,
        cpu_s: cpu.map(|c| c.0),
        cpu_share: cpu.map(|c| c.1),
        error,
    }
}

/// The event loop. Returns the end of the measured window actually run and, if the run
/// is incomplete, why.
fn drive(
    cfg: &Config,
    sched: &Schedule,
    stats: &mut Stats,
    cpu: &mut CpuWindow,
) -> io::Result<(Instant, Option<String>)> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut w: Box<dyn Workload> = match cfg.workload {
        Kind::Stream | Kind::Proxy => Box::new(stream::Stream::new(cfg)),
        Kind::Pingpong => Box::new(pingpong::workload(cfg)),
        Kind::Connect | Kind::ProxyConnect => Box::new(connect::Connect::new(cfg)),
        Kind::Udp => Box::new(udp::Udp::new(cfg)),
        Kind::Http => Box::new(http::workload(cfg)),
        Kind::TlsStream => Box::new(tls::TlsStream::new(cfg)?),
        Kind::TlsConnect => Box::new(tls::TlsConnect::new(cfg)?),
    };
    w.start(poll.registry(), sched, stats)?;
    let mut timer: Option<Instant> = None;
    loop {
        let now = Instant::now();
        cpu.observe(now, sched.measure_start, sched.measure_end);
        let (pending, unit) = w.outstanding();
        if now >= sched.measure_end && pending == 0 {
            return Ok((sched.measure_end, None));
        }
        if now >= sched.deadline {
            let why = format!("hard deadline reached with {pending} {unit} still unanswered");
            return Ok((sched.measure_end, Some(why)));
        }
        if w.is_dead() {
            return Ok((
                now.min(sched.measure_end),
                Some("every connection failed".into()),
            ));
        }
        let wake = timer.map_or(sched.next_boundary(now), |t| {
            t.min(sched.next_boundary(now))
        });
        match poll.poll(&mut events, Some(wake.saturating_duration_since(now))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            w.on_event(poll.registry(), event, sched, stats);
        }
        timer = w.on_tick(poll.registry(), sched, stats);
    }
}
