//! The upstream side of a proxy session while its connect (and, with `upstream_tls`, its TLS
//! handshake) is in progress. It only waits for them to finish, one way or the other; then the
//! session turns both sockets into streams and relays them (see `event_loop::sessions`).

use crate::service::{ReadEdges, Ready, SessionStep, Step};
use crate::stream::tls::{Handshake, TlsLayer};
use socket2::{SockAddr, Socket};
use std::io;

#[derive(Debug)]
pub struct Upstream {
    pub sock: Socket,
    /// The session's client (an `Incoming`).
    pub client: u32,
    pub unix: bool,
    /// The TLS this proxy originates to the upstream (the client side), handed to the stream.
    pub tls: Option<Box<TlsLayer>>,
    /// What the edges said of its read side (it may speak first, and close, before the relay
    /// starts): handed to the stream it becomes.
    pub edges: ReadEdges,
}

impl Upstream {
    /// Starts a non-blocking connect to `to`; with `tls`, the handshake follows it.
    pub fn connect(to: &SockAddr, client: u32, tls: Option<TlsLayer>) -> io::Result<Upstream> {
        let sock = Socket::new(to.domain(), socket2::Type::STREAM.nonblocking().cloexec(), None)?;
        match sock.connect(to) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        Ok(Upstream { sock, client, unix: to.is_unix(), tls: tls.map(Box::new), edges: ReadEdges::QUIET })
    }

    pub fn service(&mut self, ready: Ready) -> Step {
        self.edges.record(ready);
        let client = self.client;
        if self.tls.as_ref().is_some_and(|t| t.connected) {
            return self.handshake();
        }
        if !(ready.writable || ready.error) {
            return Step::Idle;
        }
        match self.sock.take_error() {
            Ok(Some(_)) | Err(_) => return Step::Session(SessionStep::UpstreamFailed { client }),
            // Writable with no error: connected (one syscall, not two).
            Ok(None) if ready.writable && !ready.error => return self.connected(),
            Ok(None) => {}
        }
        match self.sock.peer_addr() {
            Ok(_) => self.connected(),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Step::Idle, // a later edge
            Err(_) => Step::Session(SessionStep::UpstreamFailed { client }),
        }
    }

    /// TCP is up: ready, or (with TLS) the handshake starts.
    fn connected(&mut self) -> Step {
        match &mut self.tls {
            Some(tls) => {
                tls.connected = true;
                tls.start(&self.sock);
                self.handshake()
            }
            None => Step::Session(SessionStep::UpstreamReady { client: self.client }),
        }
    }

    fn handshake(&mut self) -> Step {
        let client = self.client;
        let Some(tls) = &mut self.tls else { return Step::Session(SessionStep::UpstreamReady { client }) };
        match tls.handshake(&self.sock) {
            Handshake::Done => Step::Session(SessionStep::UpstreamReady { client }),
            Handshake::Waiting(at) => at.map_or(Step::Idle, Step::WakeAt),
            Handshake::More => Step::More,
            Handshake::Failed(_) => Step::Session(SessionStep::UpstreamHandshakeFailed { client }),
        }
    }
}
