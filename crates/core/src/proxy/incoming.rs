//! An accepted connection before it is handed on: to the consumer (a port that reads PROXY
//! headers) or to an upstream (a proxy port). It reads and checks the PROXY header, keeps the
//! bytes that came after it, waits for a route and for the upstream connect, each with a deadline.

use super::PortRole;
use crate::proxy_protocol::{self, Header, Parsed};
use crate::service::{ReadEdges, Ready, SessionStep, Step};
use crate::stream::admission::Ticket;
use crate::stream::tls::{Handshake, Report, TlsLayer};
use crate::tls::TlsSession;
use socket2::{SockAddr, Socket};
use std::io;
use std::time::Instant;

/// Bytes asked of the kernel per read while a header is awaited.
const HEADER_READ: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading the PROXY header (or about to hand on, when none is expected).
    Header,
    /// A TLS port: its handshake runs (after the PROXY header, if one was expected).
    Handshake,
    /// Waiting for the consumer to route it (a ROUTE record is out).
    Route,
    /// Its upstream connect is in progress.
    Connect,
}

#[derive(Debug)]
pub struct Incoming {
    pub sock: Socket,
    /// The connection's real peer (a load balancer, when a header follows).
    pub peer: SockAddr,
    /// The listener that accepted it, and what it counts against there.
    pub origin: (u32, Ticket),
    pub role: PortRole,
    pub phase: Phase,
    pub unix: bool,
    /// Bytes that came after the header: the client's first bytes, which go on first.
    pub early: Vec<u8>,
    /// The header received (None: none expected).
    pub header: Option<Header>,
    /// When the current phase gives up.
    pub deadline: Option<Instant>,
    /// A proxy session's upstream connect: its entry, which upstream, and those tried so far.
    pub upstream: Option<u32>,
    pub target: Option<usize>,
    pub tried: Vec<usize>,
    /// Its TLS layer (a TLS port), handed to the stream it becomes.
    pub tls: Option<Box<TlsLayer>>,
    /// What the edges said of the client's read side: handed to the stream it becomes.
    pub edges: ReadEdges,
}

impl Incoming {
    pub fn new(sock: Socket, peer: SockAddr, origin: (u32, Ticket), role: PortRole, unix: bool) -> Incoming {
        let deadline = role.header.as_ref().and_then(|h| Instant::now().checked_add(h.timeout));
        let mut incoming = Incoming {
            sock,
            peer,
            origin,
            role,
            phase: Phase::Header,
            unix,
            early: Vec::new(),
            header: None,
            deadline,
            upstream: None,
            target: None,
            tried: Vec::new(),
            tls: None,
            edges: ReadEdges::UNKNOWN,
        };
        if incoming.role.header.is_none() {
            incoming.begin_tls();
        }
        incoming
    }

    /// On a TLS port, starts the handshake (with the config current now; the bytes that came
    /// behind a PROXY header are its first). False on a port without TLS.
    fn begin_tls(&mut self) -> bool {
        let Some(config) = self.role.tls.as_ref().map(|r| r.current()) else { return false };
        let Ok(session) = TlsSession::server(&config) else { return false };
        let mut layer = TlsLayer::new(session, config.handshake_timeout, Report::Done);
        layer.read_first(&std::mem::take(&mut self.early));
        layer.start(&self.sock);
        self.phase = Phase::Handshake;
        self.tls = Some(Box::new(layer));
        true
    }

    fn handshake(&mut self) -> Step {
        let Some(tls) = &mut self.tls else { return Step::Session(SessionStep::HeaderDone) };
        match tls.handshake(&self.sock) {
            Handshake::Done => Step::Session(SessionStep::HeaderDone),
            Handshake::Waiting(at) => at.map_or(Step::Idle, Step::WakeAt),
            Handshake::More => Step::More,
            Handshake::Failed(_) => Step::Session(SessionStep::HandshakeFailed),
        }
    }

    /// The client as the rest of the system should see it: the header's source when it relays
    /// an IP connection, else the real peer.
    pub fn client(&self) -> SockAddr {
        match self.header.as_ref().and_then(Header::source) {
            Some(source) => SockAddr::from(source),
            None => self.peer.clone(),
        }
    }

    pub fn service(&mut self, ready: Ready) -> Step {
        self.edges.record(ready);
        let expired = self.deadline.is_some_and(|at| Instant::now() >= at);
        match self.phase {
            Phase::Handshake => self.handshake(),
            Phase::Header => {
                let Some(policy) = self.role.header.clone() else { return Step::Session(SessionStep::HeaderDone) };
                if !policy.trusts(&self.peer) {
                    return Step::Session(SessionStep::HeaderFailed);
                }
                match self.read_header(&policy.parse_options()) {
                    Ok(true) if self.begin_tls() => self.handshake(),
                    Ok(true) => Step::Session(SessionStep::HeaderDone),
                    Ok(false) if expired => Step::Session(SessionStep::HeaderFailed),
                    Ok(false) => self.deadline.map_or(Step::Idle, Step::WakeAt),
                    Err(_) => Step::Session(SessionStep::HeaderFailed),
                }
            }
            // The client's bytes wait in the kernel; only its failure matters now.
            Phase::Route | Phase::Connect if ready.error => Step::Session(SessionStep::ClientGone),
            Phase::Connect if expired => Step::Session(SessionStep::ConnectTimedOut),
            Phase::Connect => self.deadline.map_or(Step::Idle, Step::WakeAt),
            Phase::Route => Step::Idle,
        }
    }

    /// Reads what is waiting and parses the header: Ok(true) once it is complete (the bytes after
    /// it stay in `early`), Ok(false) while more is needed; an error for a header that breaks the
    /// policy or a client that closed or failed first.
    fn read_header(&mut self, opts: &proxy_protocol::ParseOptions) -> io::Result<bool> {
        let invalid = || io::Error::from_raw_os_error(libc::EPROTO);
        while self.edges.readable {
            let mut buf = [0u8; HEADER_READ];
            match std::io::Read::read(&mut &self.sock, &mut buf) {
                Ok(0) => return Err(io::Error::from_raw_os_error(libc::ECONNRESET)),
                Ok(n) => {
                    self.early.extend_from_slice(&buf[..n]);
                    if n < HEADER_READ {
                        self.edges.short_read();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.edges.drained();
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            match proxy_protocol::parse(&self.early, opts) {
                Ok(Parsed::Complete { header, consumed }) => {
                    self.early.drain(..consumed);
                    self.header = Some(header);
                    return Ok(true);
                }
                Ok(Parsed::Incomplete) => {}
                Err(_) => return Err(invalid()),
            }
        }
        Ok(false)
    }
}
