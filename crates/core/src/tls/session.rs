//! One TLS session over a non-blocking socket, driven by the event loop's readiness edges.
//!
//! The loop calls `read_tls_from` on a readable edge and `write_tls_to` on a writable one (and
//! after anything that makes `wants_write()` true: a handshake step, `write_plaintext`,
//! `send_close_notify`, a failure's alert). Nothing here blocks, sleeps or owns a clock.
//!
//! ## Writes before the handshake completes
//!
//! They are accepted and held in plaintext inside this process (by rustls; by the session itself
//! on a server still waiting for the ClientHello); rustls encrypts them when the handshake
//! completes and only then do they reach `write_tls_to`. Nothing written
//! through `write_plaintext` ever leaves in the clear. (For `startTLS`, bytes the application
//! wrote *before* starting TLS are the loop's to flush in plaintext first: they never enter
//! the session.) The test `pre_handshake_plaintext_is_never_on_the_wire` checks every byte
//! that crosses the socket.
//!
//! ## Memory bound per session
//!
//! - outgoing: `write_plaintext` accepts at most `SEND_BUFFER_LIMIT` bytes not yet flushed
//!   (plaintext held before the handshake, ciphertext after it); it returns how many it took,
//!   and 0 when full. Handshake messages and alerts are added beyond that (a certificate chain
//!   of a few KiB).
//! - incoming: rustls stops reading ciphertext once more than 16 KiB of plaintext wait for
//!   `take_plaintext` (so at most 16 KiB + one 16 KiB record), and its record buffer holds one
//!   record (16 KiB + 2 KiB) — up to 64 KiB while a handshake message is being joined.
//!
//! So a session holds at most about 64 + 34 + 64 KiB of data, and a few KiB when idle.

use super::accept::{HelloStep, HelloWait, Refusal};
use super::config::{ClientTlsConfig, ServerTlsConfig};
use super::error::TlsError;
use super::info::{cipher_suite_name, protocol_name, resumed, TlsInfo};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, Connection, ServerConnection, Side};
use socket2::SockRef;
use std::io::{self, BufRead, IoSlice, Read, Write};
use std::os::fd::AsFd;

/// Plaintext (before the handshake) or ciphertext (after) a session buffers for sending.
pub const SEND_BUFFER_LIMIT: usize = 64 * 1024;

/// Ciphertext read per `read_tls_from` call before other connections get a turn (fairness
/// under edge triggering: the call says `more` and the loop comes back).
pub const READ_BUDGET: usize = 256 * 1024;

/// How the peer's side of the session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The peer sent close_notify: everything it sent has arrived.
    CloseNotify,
    /// The transport reached EOF without close_notify (during or after the handshake): what
    /// arrived may be cut short. `End::error()` gives it as `ERR_TLS_TRUNCATED`.
    Truncated,
    /// The session failed; flush `write_tls_to` (the alert for the peer, if any) and close.
    Failed(TlsError),
}

impl End {
    /// The failure to report for this end (none for a clean close_notify).
    pub fn error(&self) -> Option<TlsError> {
        match self {
            End::CloseNotify => None,
            End::Truncated => Some(TlsError::truncated()),
            End::Failed(e) => Some(e.clone()),
        }
    }
}

/// What a `read_tls_from` call found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOutcome {
    /// This call completed the handshake: the moment for `connectionMade`.
    pub handshake_completed: bool,
    /// Plaintext waits in the session: take it with `take_plaintext` / `read_plaintext` (before
    /// acting on `end`: it arrived first).
    pub plaintext: bool,
    /// Reading stopped before the socket said WouldBlock (the budget ran out, or plaintext waits
    /// beyond its bound): call again, after taking plaintext; no new edge will come.
    pub more: bool,
    /// The peer's side is over, and how. Reported on every call from then on.
    pub end: Option<End>,
}

/// What a `write_tls_to` call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    pub written: usize,
    /// Ciphertext is left (the socket said WouldBlock): wait for the writable edge.
    pub blocked: bool,
}

pub struct TlsSession {
    phase: Phase,
    /// A client's SNI, kept for `info()` (rustls does not give it back).
    sent_server_name: Option<String>,
    end: Option<End>,
    close_notify_sent: bool,
}

enum Phase {
    /// A server waiting for the whole ClientHello (`accept.rs`).
    Hello(Box<HelloWait>),
    /// A server that refused the ClientHello, with the alert still to send.
    Refused(Refusal),
    /// The rustls connection, from the ClientHello on.
    Open(Connection),
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let phase = match &self.phase {
            Phase::Hello(_) => "awaiting ClientHello",
            Phase::Refused(_) => "refused",
            Phase::Open(c) if c.is_handshaking() => "handshaking",
            Phase::Open(_) => "open",
        };
        f.debug_struct("TlsSession").field("phase", &phase).field("end", &self.end).finish()
    }
}

impl TlsSession {
    /// The server side of an accepted connection. Costs nothing until the ClientHello comes.
    pub fn server(config: &ServerTlsConfig) -> Result<Self, TlsError> {
        Ok(TlsSession {
            phase: Phase::Hello(Box::new(HelloWait::new(config))),
            sent_server_name: None,
            end: None,
            close_notify_sent: false,
        })
    }

    /// The client side of an outbound connection; `server_name` from
    /// `ClientTlsConfig::server_name_for(host)`. The ClientHello is ready at once (`wants_write`).
    pub fn client(config: &ClientTlsConfig, server_name: ServerName<'static>) -> Result<Self, TlsError> {
        let sent = match &server_name {
            ServerName::DnsName(name) => Some(name.as_ref().to_string()),
            _ => None, // an IP address is verified, not sent (RFC 6066 forbids IPs in SNI)
        };
        let mut conn = ClientConnection::new(config.rustls.clone(), server_name)
            .map_err(|e| TlsError::from_rustls(e, Side::Client))?;
        conn.set_buffer_limit(Some(SEND_BUFFER_LIMIT));
        Ok(TlsSession {
            phase: Phase::Open(Connection::Client(conn)),
            sent_server_name: sent,
            end: None,
            close_notify_sent: false,
        })
    }

    /// Reads ciphertext until WouldBlock (or the budget), decrypting as it goes.
    /// `Err` is a socket error (ECONNRESET...); TLS failures come as `end: Failed`.
    pub fn read_tls_from<S: AsFd>(&mut self, sock: &S) -> io::Result<ReadOutcome> {
        self.read_tls_via(&mut SocketIo(SockRef::from(sock)))
    }

    /// As `read_tls_from`, but the bytes of `prefix` come first, as if read from the socket: ciphertext
    /// the loop read before the session existed (what followed a PROXY header; bytes read as
    /// plaintext before `startTLS`). What the session takes of it is removed from `prefix`.
    pub fn read_tls_after<S: AsFd>(&mut self, prefix: &mut Vec<u8>, sock: &S) -> io::Result<ReadOutcome> {
        if prefix.is_empty() {
            return self.read_tls_from(sock);
        }
        let mut io = Prefixed { prefix: &prefix[..], taken: 0, socket: SocketIo(SockRef::from(sock)) };
        let outcome = self.read_tls_via(&mut io);
        let taken = io.taken;
        prefix.drain(..taken);
        outcome
    }

    fn read_tls_via(&mut self, io: &mut dyn Read) -> io::Result<ReadOutcome> {
        let was_handshaking = self.is_handshaking();
        let mut io = io;
        let mut budget = READ_BUDGET;
        let mut more = false;
        if self.end.is_none() {
            if let Phase::Hello(wait) = &mut self.phase {
                match wait.read(&mut io, &mut budget)? {
                    HelloStep::Waiting { more: m } => more = m,
                    HelloStep::Eof => self.end = Some(End::Truncated),
                    HelloStep::Refused(error, refusal) => {
                        self.phase = Phase::Refused(refusal);
                        self.end = Some(End::Failed(error));
                    }
                    HelloStep::Accepted(conn) => self.open(conn),
                }
            }
        }
        while let (None, Phase::Open(conn)) = (&self.end, &mut self.phase) {
            if budget == 0 {
                more = true;
                break;
            }
            match conn.read_tls(&mut io) {
                Ok(0) => {
                    // EOF. (rustls also answers 0 without reading once close_notify came, but
                    // that case has already set `end` below.)
                    self.end = Some(End::Truncated);
                }
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    self.process();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // rustls refuses to read while more than its bound of plaintext waits: that is
                // back-pressure, not a failure (it comes before any read, so the socket is untouched).
                Err(e) if e.kind() == io::ErrorKind::Other && self.has_plaintext() => {
                    more = true;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(ReadOutcome {
            handshake_completed: was_handshaking && !self.is_handshaking() && !self.failed(),
            plaintext: self.has_plaintext(),
            more,
            end: self.end.clone(),
        })
    }

    /// The ClientHello was accepted: the connection takes over, with what was written so far.
    fn open(&mut self, mut conn: ServerConnection) {
        conn.set_buffer_limit(Some(SEND_BUFFER_LIMIT));
        let early = match std::mem::replace(&mut self.phase, Phase::Open(Connection::Server(conn))) {
            Phase::Hello(wait) => wait.early_plaintext,
            _ => unreachable!("open() follows the ClientHello"),
        };
        if let Phase::Open(conn) = &mut self.phase {
            // Both bounded by SEND_BUFFER_LIMIT: it all fits.
            let _ = conn.writer().write(&early);
            if self.close_notify_sent {
                conn.send_close_notify();
            }
        }
        // Records that came in behind the ClientHello (a compatibility ChangeCipherSpec, say).
        self.process();
    }

    fn process(&mut self) {
        let side = self.side();
        if let Phase::Open(conn) = &mut self.phase {
            match conn.process_new_packets() {
                Ok(state) if state.peer_has_closed() => self.end = Some(End::CloseNotify),
                Ok(_) => {}
                Err(e) => self.end = Some(End::Failed(TlsError::from_rustls(e, side))),
            }
        }
    }

    /// Appends all waiting plaintext to `out`; returns how many bytes.
    pub fn take_plaintext(&mut self, out: &mut Vec<u8>) -> usize {
        let Phase::Open(conn) = &mut self.phase else { return 0 };
        let mut reader = conn.reader();
        let mut taken = 0;
        loop {
            // Err: nothing waits (WouldBlock), or EOF without close_notify once drained.
            let n = match reader.fill_buf() {
                Ok(chunk) if !chunk.is_empty() => {
                    out.extend_from_slice(chunk);
                    chunk.len()
                }
                _ => return taken,
            };
            reader.consume(n);
            taken += n;
        }
    }

    /// Copies waiting plaintext into `buf`; returns how many bytes (0: none waits).
    pub fn read_plaintext(&mut self, buf: &mut [u8]) -> usize {
        let Phase::Open(conn) = &mut self.phase else { return 0 };
        conn.reader().read(buf).unwrap_or(0)
    }

    /// Hands plaintext to the session; returns how many bytes it took (0 when its send buffer is
    /// full, or after `send_close_notify`, or once the session failed). Before the handshake
    /// completes the bytes are held and encrypted later (see the module doc); they are never sent
    /// in the clear.
    pub fn write_plaintext(&mut self, data: &[u8]) -> usize {
        if self.close_notify_sent || self.failed() {
            return 0;
        }
        match &mut self.phase {
            Phase::Open(conn) => conn.writer().write(data).unwrap_or(0),
            Phase::Hello(wait) => {
                let room = SEND_BUFFER_LIMIT - wait.early_plaintext.len();
                let n = data.len().min(room);
                wait.early_plaintext.extend_from_slice(&data[..n]);
                n
            }
            Phase::Refused(_) => 0,
        }
    }

    /// Sends ciphertext until the session has none left or the socket says WouldBlock.
    /// `Err` is a socket error (EPIPE, ECONNRESET...).
    pub fn write_tls_to<S: AsFd>(&mut self, sock: &S) -> io::Result<WriteOutcome> {
        let mut io = SocketIo(SockRef::from(sock));
        let mut written = 0;
        loop {
            let step = match &mut self.phase {
                Phase::Open(conn) if conn.wants_write() => conn.write_tls(&mut io),
                Phase::Refused(refusal) if refusal.pending() => match refusal.write(&mut io) {
                    Ok(0) => continue,
                    other => other,
                },
                _ => return Ok(WriteOutcome { written, blocked: false }),
            };
            match step {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(WriteOutcome { written, blocked: true }),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Ciphertext (or a refusal's alert) waits to be sent.
    pub fn wants_write(&self) -> bool {
        match &self.phase {
            Phase::Open(conn) => conn.wants_write(),
            Phase::Refused(refusal) => refusal.pending(),
            Phase::Hello(_) => false,
        }
    }

    /// True until the handshake completes (and for a session refused before it did).
    pub fn is_handshaking(&self) -> bool {
        match &self.phase {
            Phase::Open(conn) => conn.is_handshaking(),
            _ => true,
        }
    }

    /// Queues close_notify (flush with `write_tls_to`, then shut the socket's write side). Later
    /// `write_plaintext` calls take nothing.
    pub fn send_close_notify(&mut self) {
        if !self.close_notify_sent {
            if let Phase::Open(conn) = &mut self.phase {
                conn.send_close_notify();
            }
            self.close_notify_sent = true;
        }
    }

    /// Sends a TLS 1.3 KeyUpdate (new keys for our direction; the peer answers with its own).
    /// rustls already does this by itself before a key wears out; this is for long-lived idle
    /// connections, and for tests.
    pub fn update_keys(&mut self) -> Result<(), TlsError> {
        let side = self.side();
        match &mut self.phase {
            Phase::Open(conn) => conn.refresh_traffic_keys().map_err(|e| TlsError::from_rustls(e, side)),
            _ => Err(TlsError::from_rustls(rustls::Error::HandshakeNotComplete, side)),
        }
    }

    /// How the peer's side ended, if it has.
    pub fn end(&self) -> Option<&End> {
        self.end.as_ref()
    }

    pub fn is_server(&self) -> bool {
        !matches!(self.phase, Phase::Open(Connection::Client(_)))
    }

    fn side(&self) -> Side {
        if self.is_server() {
            Side::Server
        } else {
            Side::Client
        }
    }

    pub fn info(&self) -> TlsInfo {
        let Phase::Open(conn) = &self.phase else { return TlsInfo::default() };
        let server_name = match conn {
            Connection::Server(s) => s.server_name().map(str::to_string),
            Connection::Client(_) => self.sent_server_name.clone(),
        };
        TlsInfo {
            protocol: conn.protocol_version().and_then(protocol_name),
            cipher_suite: conn.negotiated_cipher_suite().and_then(|s| cipher_suite_name(s.suite())),
            key_exchange_group: conn.negotiated_key_exchange_group().and_then(|g| g.name().as_str()),
            alpn_protocol: conn.alpn_protocol().map(<[u8]>::to_vec),
            server_name,
            peer_certificates: conn
                .peer_certificates()
                .map(|chain| chain.iter().map(|c| c.as_ref().to_vec()).collect())
                .unwrap_or_default(),
            resumed: resumed(conn.handshake_kind()),
        }
    }

    /// The rustls connection, for what this type does not wrap (tests extract keys with it).
    /// None for a server that has not accepted a ClientHello.
    pub fn into_connection(self) -> Option<Connection> {
        match self.phase {
            Phase::Open(conn) => Some(conn),
            _ => None,
        }
    }

    /// Plaintext waits to be taken.
    pub fn has_plaintext(&mut self) -> bool {
        let Phase::Open(conn) = &mut self.phase else { return false };
        matches!(conn.reader().fill_buf(), Ok(chunk) if !chunk.is_empty())
    }

    fn failed(&self) -> bool {
        matches!(self.end, Some(End::Failed(_)))
    }
}

/// Bytes read before the session existed, then the socket.
struct Prefixed<'a, 'b> {
    prefix: &'a [u8],
    taken: usize,
    socket: SocketIo<'b>,
}

impl Read for Prefixed<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.taken < self.prefix.len() {
            let n = buf.len().min(self.prefix.len() - self.taken);
            buf[..n].copy_from_slice(&self.prefix[self.taken..self.taken + n]);
            self.taken += n;
            return Ok(n);
        }
        self.socket.read(buf)
    }
}

/// A borrowed socket as rustls's reader and writer: recv, and send with MSG_NOSIGNAL (the
/// core must not raise SIGPIPE in any host).
struct SocketIo<'a>(SockRef<'a>);

impl Read for SocketIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl Write for SocketIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.send_with_flags(buf, libc::MSG_NOSIGNAL)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.send_vectored_with_flags(bufs, libc::MSG_NOSIGNAL)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
