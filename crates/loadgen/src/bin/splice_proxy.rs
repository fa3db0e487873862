//! `splice-proxy --tcp-fd N --upstream HOST:PORT [--ignore-stdin]`: a TCP proxy with no
//! JS that relays with splice(2) (see `reactor_loadgen::proxy`), on a listening socket
//! inherited from the parent. Stops like `echo-server`.

use std::io;
use std::process::ExitCode;

use reactor_loadgen::args::{parse_proxy, ProxyArgs, PROXY_USAGE};
use reactor_loadgen::inherit::{adopt_listener, is_stop, register_stop_sources};
use reactor_loadgen::proxy::SpliceProxy;

fn main() -> ExitCode {
    let args = match parse_proxy(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{PROXY_USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("splice-proxy: {e}\n{PROXY_USAGE}");
            return ExitCode::from(2);
        }
    };
    match serve(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("splice-proxy: {e}");
            ExitCode::from(1)
        }
    }
}

fn serve(args: &ProxyArgs) -> io::Result<()> {
    let mut proxy = SpliceProxy::new(adopt_listener(args.tcp_fd)?, args.upstream)?;
    let _signals = register_stop_sources(proxy.registry(), !args.ignore_stdin)?;
    proxy.run(is_stop)
}
