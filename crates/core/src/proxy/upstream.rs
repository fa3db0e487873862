//! The upstream side of a proxy session while its connect is in progress. It only waits for the
//! connect to finish, one way or the other; then the session turns both sockets into streams and
//! relays them (see `event_loop::sessions`).

use crate::service::{Ready, SessionStep, Step};
use socket2::{SockAddr, Socket};
use std::io;

#[derive(Debug)]
pub struct Upstream {
    pub sock: Socket,
    /// The session's client (an `Incoming`).
    pub client: u32,
    pub unix: bool,
}

impl Upstream {
    /// Starts a non-blocking connect to `to`.
    pub fn connect(to: &SockAddr, client: u32) -> io::Result<Upstream> {
        let sock = Socket::new(to.domain(), socket2::Type::STREAM.nonblocking().cloexec(), None)?;
        match sock.connect(to) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        Ok(Upstream { sock, client, unix: to.is_unix() })
    }

    pub fn service(&mut self, ready: Ready) -> Step {
        if !(ready.writable || ready.error) {
            return Step::Idle;
        }
        let client = self.client;
        match self.sock.take_error() {
            Ok(Some(_)) | Err(_) => return Step::Session(SessionStep::UpstreamFailed { client }),
            // Writable with no error: connected (one syscall, not two).
            Ok(None) if ready.writable && !ready.error => return Step::Session(SessionStep::UpstreamReady { client }),
            Ok(None) => {}
        }
        match self.sock.peer_addr() {
            Ok(_) => Step::Session(SessionStep::UpstreamReady { client }),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Step::Idle, // a later edge
            Err(_) => Step::Session(SessionStep::UpstreamFailed { client }),
        }
    }
}
