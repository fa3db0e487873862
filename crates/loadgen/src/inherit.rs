//! What the benchmark's server binaries (`echo-server`, `splice-proxy`) share: taking an
//! inherited socket, and stopping when the parent closes stdin or sends SIGTERM/SIGINT.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use mio::event::Event;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use socket2::{Socket, Type};

/// Tokens of the stop sources; servers keep them out of their own token range.
pub const STDIN: Token = Token(0);
pub const SIGNAL: Token = Token(1);

pub fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Takes ownership of inherited socket `fd`, checks its type, makes it non-blocking.
pub fn adopt(fd: RawFd, want: Type) -> io::Result<Socket> {
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

/// Takes inherited `fd` as a listening TCP socket.
pub fn adopt_listener(fd: RawFd) -> io::Result<mio::net::TcpListener> {
    let s = adopt(fd, Type::STREAM)?;
    if !s.is_listener()? {
        return Err(bad(format!("fd {fd} is not a listening socket")));
    }
    Ok(mio::net::TcpListener::from_std(s.into()))
}

/// Registers the stop sources: a signalfd under `SIGNAL` and, if `watch_stdin`, stdin's
/// hang-up under `STDIN`. Keep the returned fd open while serving.
pub fn register_stop_sources(registry: &Registry, watch_stdin: bool) -> io::Result<OwnedFd> {
    // Blocking the signals and reading them from a signalfd turns SIGTERM into an event
    // of the loop, so the server returns normally (exit status 0) instead of being killed.
    let signals = signal_fd()?;
    registry.register(
        &mut SourceFd(&signals.as_raw_fd()),
        SIGNAL,
        Interest::READABLE,
    )?;
    if watch_stdin {
        // Only the hang-up matters; stdin is never read (and never made non-blocking,
        // which would leak to a shared terminal). Anything the parent writes is ignored.
        if let Err(e) = registry.register(&mut SourceFd(&0), STDIN, Interest::READABLE) {
            // epoll refuses regular files and /dev/null (EPERM).
            eprintln!("cannot watch stdin ({e}); stop me with SIGTERM");
        }
    }
    Ok(signals)
}

/// Whether an event on a stop source means: stop.
pub fn is_stop(event: &Event) -> bool {
    event.token() == SIGNAL || event.is_read_closed() || event.is_error()
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
