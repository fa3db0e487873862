//! `echo-server [--tcp-fd N] [--udp-fd N] [--ignore-stdin]`: a plain mio echo server on
//! sockets inherited from the parent. Stops when stdin reaches EOF (the parent closes
//! the pipe — the primary path, which also covers a parent that dies) or on SIGTERM/SIGINT.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::process::ExitCode;

use mio::unix::SourceFd;
use mio::Interest;
use reactor_bench::args::{parse_server, SERVER_USAGE};
use reactor_bench::server::{EchoServer, SIGNAL, STDIN};
use socket2::{Socket, Type};

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
    let listener = tcp_fd
        .map(|fd| {
            let s = adopt(fd, Type::STREAM)?;
            if !s.is_listener()? {
                return Err(bad(format!("fd {fd} is not a listening socket")));
            }
            Ok(mio::net::TcpListener::from_std(s.into()))
        })
        .transpose()?;
    let udp = udp_fd
        .map(|fd| {
            Ok::<_, io::Error>(mio::net::UdpSocket::from_std(
                adopt(fd, Type::DGRAM)?.into(),
            ))
        })
        .transpose()?;

    let mut server = EchoServer::new(listener, udp)?;
    // Blocking the signals and reading them from a signalfd turns SIGTERM into an event
    // of the loop, so the server returns normally (exit status 0) instead of being killed.
    let signals = signal_fd()?;
    let signals_raw = std::os::fd::AsRawFd::as_raw_fd(&signals);
    server
        .registry()
        .register(&mut SourceFd(&signals_raw), SIGNAL, Interest::READABLE)?;
    if watch_stdin {
        // Only the hang-up matters; stdin is never read (and never made non-blocking,
        // which would leak to a shared terminal). Anything the parent writes is ignored.
        if let Err(e) = server
            .registry()
            .register(&mut SourceFd(&0), STDIN, Interest::READABLE)
        {
            // epoll refuses regular files and /dev/null (EPERM).
            eprintln!("echo-server: cannot watch stdin ({e}); stop me with SIGTERM");
        }
    }
    server.run(|event| event.token() == SIGNAL || event.is_read_closed() || event.is_error())?;
    Ok(())
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Takes ownership of inherited socket `fd`, checks its type, makes it non-blocking.
fn adopt(fd: RawFd, want: Type) -> io::Result<Socket> {
    // Check through /proc (no unsafe needed) that the number is an open socket before
    // claiming ownership of it: wrapping a closed or non-socket fd would be unsound.
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map_err(|e| bad(format!("fd {fd} is not open: {e}")))?;
    if !target.to_string_lossy().starts_with("socket:") {
        return Err(bad(format!(
            "fd {fd} is not a socket ({})",
            target.display()
        )));
    }
    // SAFETY: fd is open (checked above), it was inherited from the parent for this
    // process to serve, and nothing else in this process uses or closes it: the OwnedFd
    // becomes its only owner.
    let socket = Socket::from(unsafe { OwnedFd::from_raw_fd(fd) });
    if socket.r#type()? != want {
        let what = if want == Type::STREAM {
            "TCP (stream)"
        } else {
            "UDP (datagram)"
        };
        return Err(bad(format!("fd {fd} is not a {what} socket")));
    }
    socket.set_nonblocking(true)?;
    // Inherited fds are not close-on-exec; we spawn nothing, but keep the hygiene.
    socket.set_cloexec(true)?;
    Ok(socket)
}

/// A non-blocking signalfd for SIGTERM and SIGINT, with both blocked for normal delivery.
fn signal_fd() -> io::Result<OwnedFd> {
    // SAFETY: `set` is initialised by sigemptyset before any other use; the calls get
    // valid pointers; the process is single-threaded so the mask applies to the only
    // thread; a non-negative signalfd result is a new fd that we solely own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}
