//! A TLS stream's service: the handshake of a connect with TLS or of `startTLS`, then reads and
//! writes through the session. Kept apart from `service.rs` so that the plain path stays as it
//! was: `Stream::service` hands a stream with a TLS layer here after one test.

use super::state::Input;
use super::tls::{tls_error, Handshake, Report};
use super::{ReadState, Stream};
use crate::batch::Batch;
use crate::service::{Ready, Step};
use crate::tls::{End, TlsError};
use crate::wire::{address, kind};
use std::io;

/// Reads of ciphertext per connection per loop turn (each up to the session's bound of waiting
/// plaintext, 16 KiB) before others get a go.
const TLS_READS_PER_TURN: usize = 16;

impl Stream {
    /// An established TLS stream (its handshake may still run, after `startTLS`).
    pub(super) fn service_tls(&mut self, id: u32, ready: Ready, batch: &mut Batch) -> Step {
        let tls = self.tls.as_mut().expect("a TLS stream");
        if tls.session.is_handshaking() {
            match tls.handshake(&self.sock) {
                Handshake::Done => {
                    self.edges.readable = true; // application data may have come behind the handshake
                    self.handshake_done(id, batch);
                }
                Handshake::Waiting(at) => return at.map_or(Step::Idle, Step::WakeAt),
                Handshake::More => return Step::More,
                Handshake::Failed(e) => return self.handshake_failed(e),
            }
        }
        if self.state.reads() {
            if batch.is_full() {
                return Step::More;
            }
            match self.read_tls(id, batch) {
                Ok(ReadState::More) => return Step::More,
                Ok(_) => {}
                Err(e) => return Step::Fail(e),
            }
        }
        // What was written, and what reading produced for the peer (a KeyUpdate's answer).
        if !self.is_flushed() {
            if let Some(step) = self.flush_and_carry_out(id, batch) {
                return step;
            }
        }
        if ready.error {
            if let Ok(Some(e)) = self.sock.take_error() {
                return Step::Fail(e);
            }
        }
        Step::Idle
    }

    /// A connecting stream with TLS whose TCP connect completed: the client's handshake; then
    /// TLS_READY and CONNECTED (the consumer's `connectionMade` comes after the handshake).
    pub(super) fn connect_handshake(&mut self, id: u32, batch: &mut Batch) -> Step {
        let tls = self.tls.as_mut().expect("a TLS stream");
        match tls.handshake(&self.sock) {
            Handshake::Done => {
                let peer = match self.sock.peer_addr() {
                    Ok(peer) => peer,
                    Err(e) => return Step::Fail(e),
                };
                self.state.on(Input::Connected, true);
                self.handshake_done(id, batch);
                let record = address::encode(&peer, &mut batch.data);
                batch.push(kind::CONNECTED, id, record as u32, 0);
                self.edges.readable = true;
                Step::More // application data may have come behind the handshake
            }
            Handshake::Waiting(at) => at.map_or(Step::Idle, Step::WakeAt),
            Handshake::More => Step::More,
            Handshake::Failed(e) => self.handshake_failed(e),
        }
    }

    fn handshake_done(&mut self, id: u32, batch: &mut Batch) {
        let Some(tls) = &self.tls else { return };
        if tls.report != Report::Done {
            tls.report_ready(id, batch);
        }
        if let Some(c) = self.queue.counters() {
            c.tls_session();
        }
    }

    fn handshake_failed(&mut self, e: io::Error) -> Step {
        if let Some(c) = self.queue.counters() {
            c.tls_handshake_failed();
        }
        Step::Fail(e)
    }

    /// Reads through the session into the batch: plaintext first (it arrived first), then the
    /// peer's end (close_notify is an EOF; an EOF without it, or a failure, ends the connection).
    fn read_tls(&mut self, id: u32, batch: &mut Batch) -> io::Result<ReadState> {
        let tls = self.tls.as_mut().expect("a TLS stream");
        for _ in 0..TLS_READS_PER_TURN {
            if batch.is_full() {
                return Ok(ReadState::More);
            }
            let offset = batch.data.len();
            let n = tls.session.take_plaintext(&mut batch.data);
            if n > 0 {
                batch.push_data(id, offset, n);
            }
            match tls.session.end() {
                None => {}
                Some(End::CloseNotify) => {
                    self.edges.drained();
                    self.state.on(Input::PeerEof, true);
                    batch.push(kind::EOF, id, 0, 0);
                    return Ok(ReadState::Eof);
                }
                Some(End::Truncated) => return Err(tls_error(TlsError::truncated())),
                Some(End::Failed(e)) => {
                    let e = e.clone();
                    let _ = tls.send(&self.sock); // the alert for the peer
                    return Err(tls_error(e));
                }
            }
            if !self.edges.readable && !tls.more {
                return Ok(ReadState::Idle);
            }
            let outcome = tls.read(&self.sock)?;
            if !outcome.more {
                self.edges.drained(); // read to WouldBlock (or EOF): a new edge says when
            }
            if !outcome.plaintext && outcome.end.is_none() && !outcome.more {
                return Ok(ReadState::Idle);
            }
        }
        Ok(ReadState::More)
    }
}
