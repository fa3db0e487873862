//! A connection's TLS layer: the `TlsSession` it reads and writes through, and what the loop
//! keeps beside it (the handshake's deadline, bytes that must leave in the clear first, bytes
//! read before the session existed, a FIN waiting for close_notify).
//!
//! A plain `Stream` has none (`Stream::tls` is `None`) and its read and write paths do not look
//! at it beyond that one test. A TLS stream reads ciphertext from the socket into its session
//! and hands the plaintext to the batch; `write` hands plaintext to the session (bytes the
//! session cannot take yet wait in the stream's write queue, in order) and sends the ciphertext.
//! `Incoming` (an accepted connection on a TLS port) and `Upstream` (a proxy's upstream with
//! `upstreamTls`) drive the handshake with the same layer before they become streams.

use crate::batch::Batch;
use crate::stream::write_queue::WriteQueue;
use crate::tls::{End, TlsError, TlsSession};
use crate::wire::{self, kind};
use socket2::Socket;
use std::io;
use std::net::Shutdown;
use std::time::{Duration, Instant};

/// What the handshake's completion is reported as, by the stream that completes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// An outbound connection (`connect` with TLS): TLS_READY then CONNECTED.
    Connected,
    /// `startTLS` on an established connection: TLS_READY.
    Started,
    /// Done before the stream existed (an accepted connection, a proxy's upstream).
    Done,
}

#[derive(Debug)]
pub struct TlsLayer {
    pub session: TlsSession,
    /// Bytes written before `startTLS` (or a PROXY header before an upstream's ClientHello): they
    /// leave in the clear, before any TLS record.
    cleartext: Vec<u8>,
    cleartext_sent: usize,
    /// Ciphertext that arrived before the session existed: it is read before the socket.
    prefix: Vec<u8>,
    /// When the handshake must be done by (None: no limit, or not started yet, or done).
    pub deadline: Option<Instant>,
    timeout: Duration,
    pub report: Report,
    /// An outbound connection's TCP connect completed (the handshake runs from then on).
    pub connected: bool,
    /// Plaintext handed to the session that may not have left yet (an upper bound: zero once the
    /// session has nothing to send).
    unflushed: usize,
    /// Reading stopped before the socket said WouldBlock (a budget, or plaintext waiting): come
    /// back without a new edge.
    pub more: bool,
    /// A FIN waits for close_notify (and what was written before it) to leave.
    fin_after_flush: bool,
}

/// How far a handshake got on one call.
#[derive(Debug)]
pub enum Handshake {
    /// Complete: application data may flow (plaintext may already wait in the session).
    Done,
    /// Waiting for the peer; come back at the deadline (if any) or on the next edge.
    Waiting(Option<Instant>),
    /// Reading stopped early (the budget): come back without a new edge.
    More,
    /// Failed: a TLS error (see `tls_error`: the alert for the peer was flushed as far as the
    /// socket took it) or a socket error.
    Failed(io::Error),
}

impl TlsLayer {
    /// A layer around a new session. `timeout` bounds the handshake from `start` (zero: no limit).
    pub fn new(session: TlsSession, timeout: Duration, report: Report) -> TlsLayer {
        TlsLayer {
            session,
            cleartext: Vec::new(),
            cleartext_sent: 0,
            prefix: Vec::new(),
            deadline: None,
            timeout,
            report,
            connected: false,
            unflushed: 0,
            more: false,
            fin_after_flush: false,
        }
    }

    /// The handshake's clock starts now. TCP_NODELAY goes on: a handshake flight, a session
    /// ticket, then a small record would otherwise wait for the peer's delayed ACK (Nagle), 40 ms
    /// a connection; records are written whole anyway. (A UNIX socket refuses it: no matter.)
    pub fn start(&mut self, sock: &Socket) {
        let _ = sock.set_tcp_nodelay(true);
        if !self.timeout.is_zero() {
            self.deadline = Instant::now().checked_add(self.timeout);
        }
    }

    /// Bytes that go out in the clear before the first TLS record.
    pub fn send_first_in_clear(&mut self, bytes: &[u8]) {
        self.cleartext.extend_from_slice(bytes);
    }

    /// Ciphertext read before the session existed.
    pub fn read_first(&mut self, bytes: &[u8]) {
        self.prefix.extend_from_slice(bytes);
    }

    /// Moves the handshake on: sends what waits, reads what came, sends the answer.
    pub fn handshake(&mut self, sock: &Socket) -> Handshake {
        if let Err(e) = self.send(sock) {
            return Handshake::Failed(e);
        }
        let outcome = match self.session.read_tls_after(&mut self.prefix, sock) {
            Ok(o) => o,
            Err(e) => return Handshake::Failed(e),
        };
        // The next flight, or the alert of a failure.
        let sent = self.send(sock);
        match outcome.end {
            Some(End::Failed(e)) => return Handshake::Failed(tls_error(e)),
            // The peer left (or said close_notify) before the handshake completed.
            Some(_) if self.session.is_handshaking() => return Handshake::Failed(tls_error(TlsError::truncated())),
            _ => {}
        }
        if let Err(e) = sent {
            return Handshake::Failed(e);
        }
        if !self.session.is_handshaking() {
            self.deadline = None;
            self.more = outcome.more;
            return Handshake::Done;
        }
        if outcome.more {
            return Handshake::More;
        }
        match self.deadline {
            Some(at) if Instant::now() >= at => {
                let e = TlsError::timeout();
                Handshake::Failed(tls_error(e))
            }
            at => Handshake::Waiting(at),
        }
    }

    /// Reads what the socket brings (after the prefix) into the session.
    pub fn read(&mut self, sock: &Socket) -> io::Result<crate::tls::ReadOutcome> {
        let outcome = self.session.read_tls_after(&mut self.prefix, sock)?;
        self.more = outcome.more;
        Ok(outcome)
    }

    /// Reports the completed handshake: a TLS_READY record with the session's parameters.
    pub fn report_ready(&self, id: u32, batch: &mut Batch) {
        let (offset, len) = wire::push_tls_info(&mut batch.data, &self.session.info());
        batch.push(kind::TLS_READY, id, offset as u32, len as u32);
    }

    /// Sends the bytes owed in the clear, then the session's records. Ok(true): nothing is left.
    pub fn send(&mut self, sock: &Socket) -> io::Result<bool> {
        while self.cleartext_sent < self.cleartext.len() {
            match sock.send_with_flags(&self.cleartext[self.cleartext_sent..], libc::MSG_NOSIGNAL) {
                Ok(n) => self.cleartext_sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if !self.cleartext.is_empty() {
            self.cleartext = Vec::new();
            self.cleartext_sent = 0;
        }
        Ok(!self.session.write_tls_to(sock)?.blocked)
    }

    /// Sends what waits, refilling the session from `queue` (plaintext it could not take before)
    /// as it empties. Ok(true): nothing is left to send, the handshake is over, and a FIN that was
    /// waiting for close_notify went out.
    pub fn flush(&mut self, sock: &Socket, queue: &mut WriteQueue) -> io::Result<bool> {
        loop {
            if !self.send(sock)? {
                return Ok(false);
            }
            if queue.is_empty() || self.session.is_handshaking() {
                break;
            }
            let moved = queue.drain_into(|bytes| self.session.write_plaintext(bytes));
            if moved == 0 {
                break;
            }
        }
        if self.session.is_handshaking() || !queue.is_empty() || self.session.wants_write() {
            return Ok(false);
        }
        self.unflushed = 0;
        if std::mem::take(&mut self.fin_after_flush) {
            ignore_not_connected(sock.shutdown(Shutdown::Write))?;
        }
        Ok(true)
    }

    /// `write`: plaintext to the session, what it cannot take to `queue` (behind what waits
    /// there), then the ciphertext to the socket. Returns the bytes not yet sent (an upper bound).
    pub fn write(&mut self, sock: &Socket, queue: &mut WriteQueue, chunks: &[&[u8]]) -> io::Result<usize> {
        for chunk in chunks {
            let taken = if queue.is_empty() {
                self.session.write_plaintext(chunk)
            } else {
                0
            };
            self.unflushed += taken;
            queue.count_sent_directly(taken);
            queue.push(&chunk[taken..]);
        }
        self.flush(sock, queue)?;
        Ok(self.pending(queue))
    }

    /// Bytes written and not yet sent: in `queue`, in the session (an upper bound), in the clear.
    pub fn pending(&self, queue: &WriteQueue) -> usize {
        queue.len() + self.unflushed + (self.cleartext.len() - self.cleartext_sent)
    }

    /// Nothing waits to be sent (and the handshake is over).
    pub fn is_flushed(&self, queue: &WriteQueue) -> bool {
        queue.is_empty()
            && self.cleartext_sent == self.cleartext.len()
            && !self.session.wants_write()
            && !self.session.is_handshaking()
    }

    /// Hands plaintext to the session and sends what it can (a relay's write). Returns how many
    /// bytes the session took (0: its buffer is full, wait for the writable edge).
    pub fn send_plain(&mut self, sock: &Socket, bytes: &[u8]) -> io::Result<usize> {
        let taken = self.session.write_plaintext(bytes);
        self.send(sock)?;
        Ok(taken)
    }

    /// Reads plaintext into `buf` (a relay's read): what the session holds, else what the socket
    /// brings. Ok(0) is the peer's end (close_notify, or EOF without it: a relay passes both on
    /// as a FIN); WouldBlock when nothing came; a TLS failure as `tls_error`.
    pub fn recv_plain(&mut self, sock: &Socket, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.session.read_plaintext(buf);
            if n > 0 {
                return Ok(n);
            }
            match self.session.end() {
                Some(End::Failed(e)) => {
                    let e = e.clone();
                    let _ = self.send(sock); // its alert
                    return Err(tls_error(e));
                }
                Some(_) => return Ok(0),
                None => {}
            }
            let outcome = self.session.read_tls_after(&mut self.prefix, sock)?;
            // Records the reading produced for the peer (a KeyUpdate's answer) leave at once.
            self.send(sock)?;
            if !outcome.plaintext && outcome.end.is_none() {
                if outcome.more {
                    continue;
                }
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
    }

    /// A half-close: close_notify, then the FIN once everything before it is sent (see `flush`).
    pub fn shutdown_write(&mut self, sock: &Socket, queue: &mut WriteQueue) -> io::Result<()> {
        self.session.send_close_notify();
        self.fin_after_flush = true;
        self.flush(sock, queue).map(|_| ())
    }

    /// An orderly close: close_notify, sent as far as the socket takes it now (everything written
    /// before was flushed: the state closes only then).
    pub fn close(&mut self, sock: &Socket) {
        self.session.send_close_notify();
        let _ = self.send(sock);
    }
}

/// A TLS failure as the `io::Error` the loop carries (`Batch::push_closed` reports it).
pub fn tls_error(e: TlsError) -> io::Error {
    io::Error::other(e)
}

fn ignore_not_connected(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(()),
        other => other,
    }
}
