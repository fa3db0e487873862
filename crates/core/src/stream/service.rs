//! A stream connection's service: what one readiness event (or a deferred pass) does to it.
//! Writes queued bytes, reads into the batch, finishes a connect, and carries out what its state
//! machine decided; the loop's part (removing, deferring, relaying) is the `Step` it returns.

use super::state::{Action, Input, Phase};
use super::{ReadState, Stream};
use crate::batch::Batch;
use crate::service::{Ready, Step};
use crate::wire::{address, kind};

impl Stream {
    pub fn service(&mut self, id: u32, ready: Ready, batch: &mut Batch, read_buf: &mut Vec<u8>) -> Step {
        // First, whatever the phase: the short-read rules (`read_into`, the relay's copy) count on
        // every edge being remembered, as none says it again.
        self.edges.record(ready);
        match self.state.phase {
            Phase::Connecting => return self.finish_connect(id, ready, batch),
            Phase::Relaying(rid) => return Step::Relay(rid, id, ready),
            Phase::Established => {}
        }
        if self.tls.is_some() {
            return self.service_tls(id, ready, batch);
        }
        if (ready.writable || ready.error) && !self.queue.is_empty() {
            if let Some(step) = self.flush_and_carry_out(id, batch) {
                return step;
            }
        }
        if self.wants_read() {
            if batch.is_full() {
                return Step::More;
            }
            match self.read_into(id, batch, read_buf) {
                Ok(ReadState::More) => return Step::More,
                Ok(_) => {}
                Err(e) => return Step::Fail(e),
            }
        }
        if ready.error {
            // A reset on a socket we are not reading (paused) still ends the connection.
            if let Ok(Some(e)) = self.sock.take_error() {
                return Step::Fail(e);
            }
        }
        Step::Idle
    }

    /// A connecting stream became writable or failed: the connect is done, one way or the other.
    fn finish_connect(&mut self, id: u32, ready: Ready, batch: &mut Batch) -> Step {
        if self.tls.as_ref().is_some_and(|t| t.connected) {
            return self.connect_handshake(id, batch);
        }
        if !(ready.writable || ready.error) {
            return Step::Idle;
        }
        match self.sock.take_error() {
            Ok(Some(e)) | Err(e) => return Step::Fail(e),
            Ok(None) => {}
        }
        let peer = match self.sock.peer_addr() {
            Ok(peer) => peer,
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => return Step::Idle, // a later edge
            Err(e) => return Step::Fail(e),
        };
        if let Some(tls) = &mut self.tls {
            // TCP is up: the handshake runs, and the connection is reported once it is done.
            tls.connected = true;
            tls.start(&self.sock);
            return self.connect_handshake(id, batch);
        }
        self.state.on(Input::Connected, true);
        let record = address::encode(&peer, &mut batch.data);
        batch.push(kind::CONNECTED, id, record as u32, 0);
        Step::More // bytes may already be waiting: read them on the next pass
    }

    /// Writes what is queued (plain, or through the TLS session); once all is out, the state's
    /// answer to `Flushed` (report the drain, send the FIN, close) is carried out. None while the
    /// connection goes on; a failed write is `Step::Fail`.
    pub fn flush_and_carry_out(&mut self, id: u32, batch: &mut Batch) -> Option<Step> {
        match self.flush() {
            Ok(true) => {
                let action = self.state.on(Input::Flushed, true);
                self.carry_out(id, action, true, batch)
            }
            Ok(false) => None,
            Err(e) => Some(Step::Fail(e)),
        }
    }

    /// Carries out what a transition of the state asked for. Events tell the consumer, except for a
    /// close it asked for itself (`report_close` false: it learns it from the call's result). None
    /// when the connection goes on; otherwise the step the loop must take.
    pub fn carry_out(&mut self, id: u32, action: Action, report_close: bool, batch: &mut Batch) -> Option<Step> {
        match action {
            Action::Nothing => None,
            Action::ReportDrained => {
                batch.push(kind::DRAINED, id, 0, 0);
                None
            }
            Action::SendFin => match self.send_fin() {
                Ok(()) => {
                    if report_close {
                        batch.push(kind::WRITE_CLOSED, id, 0, 0);
                    }
                    None
                }
                Err(e) => Some(Step::Fail(e)),
            },
            Action::Close => {
                self.shutdown_both();
                Some(Step::Close { report: report_close })
            }
            Action::EndRelay => self.state.relay().map(Step::EndRelay),
        }
    }
}
