//! `timed [--timeout-ms N] CMD [ARGS...]`: runs a real benchmark client (`redis-benchmark`,
//! `iperf3`) beside the load generator and reports its CPU the way the load generator reports
//! its own. The client inherits stdin, stdout and stderr; once it has exited, one more line goes
//! to stdout:
//!
//! ```text
//! timed {"wall_s":1.234,"cpu_s":0.987,"user_s":0.321,"sys_s":0.666,"cpu_share":0.800,"status":0,"timed_out":false}
//! ```
//!
//! `cpu_s` is the client's user + system time (`getrusage(RUSAGE_CHILDREN)` after it was reaped:
//! its whole life, all its threads), `cpu_share` that per second of its wall time (1.0 = one
//! whole core: the client, not the server, was then the limit). `--timeout-ms` kills the client
//! (SIGKILL) once it has run that long — `redis-benchmark` spins forever on a refused
//! connection — and the line says `"timed_out":true`. Exit status: the client's (1 if it was
//! killed), 2 usage.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use reactor_loadgen::cpu::children_cpu;

const USAGE: &str = "usage: timed [--timeout-ms N] CMD [ARGS...]";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut timeout = None;
    if args.first().map(String::as_str) == Some("--timeout-ms") {
        match args.get(1).and_then(|v| v.parse::<u64>().ok()) {
            Some(ms) => timeout = Some(Duration::from_millis(ms)),
            None => {
                eprintln!("timed: --timeout-ms needs a number\n{USAGE}");
                return ExitCode::from(2);
            }
        }
        args.drain(..2);
    }
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let t0 = Instant::now();
    let mut child = match Command::new(cmd).args(rest).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("timed: cannot run {cmd}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                eprintln!("timed: wait: {e}");
                return ExitCode::from(1);
            }
        }
        if timeout.is_some_and(|t| t0.elapsed() >= t) {
            timed_out = true;
            let _ = child.kill();
            match child.wait() {
                Ok(status) => break status,
                Err(e) => {
                    eprintln!("timed: wait: {e}");
                    return ExitCode::from(1);
                }
            }
        }
        // Polling costs this process a few wake-ups; only the child's CPU is reported.
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = t0.elapsed().as_secs_f64();
    let (user, sys) = children_cpu();
    let (user, sys) = (user.as_secs_f64(), sys.as_secs_f64());
    let code = status.code().unwrap_or(1);
    let share = if wall > 0.0 { (user + sys) / wall } else { 0.0 };
    println!(
        "timed {{\"wall_s\":{wall:.3},\"cpu_s\":{:.3},\"user_s\":{user:.3},\"sys_s\":{sys:.3},\"cpu_share\":{share:.3},\"status\":{code},\"timed_out\":{timed_out}}}",
        user + sys
    );
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
