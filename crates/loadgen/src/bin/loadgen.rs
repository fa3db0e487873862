//! `loadgen <workload> --addr HOST:PORT [options]`: see `reactor_loadgen::args::LOADGEN_USAGE`.

use std::process::ExitCode;

use reactor_loadgen::args::{parse_loadgen, LOADGEN_USAGE};

fn main() -> ExitCode {
    let cfg = match parse_loadgen(std::env::args().skip(1)) {
        Ok(cfg) => cfg,
        Err(e) if e.is_empty() => {
            println!("{LOADGEN_USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("loadgen: {e}\n{LOADGEN_USAGE}");
            return ExitCode::from(2);
        }
    };
    let report = reactor_loadgen::run(&cfg);
    println!("{}", report.to_json());
    if let Some(e) = &report.error {
        eprintln!("loadgen: {e}");
    }
    if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
