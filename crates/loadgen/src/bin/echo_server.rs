//! `echo-server [--tcp-fd N] [--udp-fd N] [--ignore-stdin]`: a plain mio echo server on
//! sockets inherited from the parent. Stops when stdin reaches EOF (the parent closes
//! the pipe — the primary path, which also covers a parent that dies) or on SIGTERM/SIGINT.

use std::io;
use std::os::fd::RawFd;
use std::process::ExitCode;

use reactor_loadgen::args::{parse_server, SERVER_USAGE};
use reactor_loadgen::inherit::{adopt, adopt_listener, is_stop, register_stop_sources};
use reactor_loadgen::server::EchoServer;
use socket2::Type;

fn main() -> ExitCode {
    let args = match parse_server(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{SERVER_USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("echo-server: {e}\n{SERVER_USAGE}");
            return ExitCode::from(2);
        }
    };
    match serve(args.tcp_fd, args.udp_fd, !args.ignore_stdin) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo-server: {e}");
            ExitCode::from(1)
        }
    }
}

fn serve(tcp_fd: Option<RawFd>, udp_fd: Option<RawFd>, watch_stdin: bool) -> io::Result<()> {
    let listener = tcp_fd.map(adopt_listener).transpose()?;
    let udp = udp_fd
        .map(|fd| {
            Ok::<_, io::Error>(mio::net::UdpSocket::from_std(
                adopt(fd, Type::DGRAM)?.into(),
            ))
        })
        .transpose()?;
    let mut server = EchoServer::new(listener, udp)?;
    let _signals = register_stop_sources(server.registry(), watch_stdin)?;
    server.run(is_stop)
}
