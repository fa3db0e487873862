//! Where a stream connection is in its life: one type, with every transition in `StreamState::on`.
//!
//! This is the only place that decides what a connection may still do (read, accept writes, send
//! FIN, close). The consumer (the TypeScript transport) never derives it: it keeps the last value
//! the core reported (`bits`), which every state-changing call returns and `Reactor::stream_state`
//! answers. A new phase (for instance relaying) is a new variant here and new arms in `on`.
//!
//! The two halves follow Twisted's `abstract.FileDescriptor`: reading can be paused, ended by the
//! peer's FIN, or stopped by `loseConnection`; writing can be half-closed (FIN once the queue is
//! flushed) or turned into a close (once the queue is flushed, and no earlier than the end of the
//! consumer's current turn, so that writes made right after `loseConnection` still go out).

use crate::wire::bits;

/// The connection as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// An outbound `connect` in progress: nothing is read or written until it completes.
    Connecting,
    /// Connected; the halves below say what it still does.
    Established,
    /// Its bytes move to and from another connection inside the core, in the relay with this id
    /// (`relay`): nothing is read for the consumer, and the consumer's writes are dropped.
    Relaying(u32),
}

/// The read half. Pausing is apart (`StreamState::paused`): a consumer may pause after the peer's
/// FIN was read and before it was delivered, and must then still see itself paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    Active,
    /// The peer sent FIN (reported as an EOF event); nothing more to read.
    PeerClosed,
    /// `loseConnection`: we stopped reading for a close.
    Stopped,
}

/// The write half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writing {
    Open,
    /// `loseWriteConnection`: FIN once the queue is flushed; later writes are dropped.
    FinAfterFlush,
    /// FIN sent.
    Finished,
    /// `loseConnection`: close once the queue is flushed. Writes are still accepted until the
    /// close is `released` (at the end of the consumer's turn), as Twisted sends writes made
    /// after `loseConnection` and before the next reactor iteration.
    CloseAfterFlush { released: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamState {
    pub phase: Phase,
    pub reading: Reading,
    /// `pauseProducing`: the socket is not read; the kernel holds what arrives.
    pub paused: bool,
    pub writing: Writing,
    /// A write was queued; the consumer gets a DRAINED event when the queue empties.
    pub drain_wanted: bool,
}

/// What happened to a connection (from the consumer or from the socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// An outbound connect completed.
    Connected,
    /// The connection's bytes now go to another connection inside the core, in this relay.
    StartRelay(u32),
    Pause,
    Resume,
    /// A read returned 0.
    PeerEof,
    LoseConnection,
    /// The consumer's turn in which `LoseConnection` was asked for is over.
    ReleaseClose,
    ShutdownWrite,
    /// A write left bytes in the queue.
    Queued,
    /// The write queue is empty (after a flush, or at the time of the input).
    Flushed,
}

/// What the caller must do after a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Tell the consumer the queue drained.
    ReportDrained,
    /// shutdown(SHUT_WR), then tell the consumer.
    SendFin,
    /// shutdown(SHUT_RDWR) and close the duplicate: the orderly end.
    Close,
    /// End the relay this connection is part of, in order (both directions flushed, then closed).
    EndRelay,
}

impl Default for StreamState {
    fn default() -> Self {
        StreamState { phase: Phase::Established, reading: Reading::Active, paused: false, writing: Writing::Open, drain_wanted: false }
    }
}

impl StreamState {
    /// The one transition function. `queue_empty` says whether the write queue is empty now.
    pub fn on(&mut self, input: Input, queue_empty: bool) -> Action {
        use Input::*;
        if let Phase::Relaying(_) = self.phase {
            // The relay owns both halves now; only a close from the consumer ends it.
            return match input {
                LoseConnection => {
                    self.writing = Writing::CloseAfterFlush { released: true };
                    Action::EndRelay
                }
                _ => Action::Nothing,
            };
        }
        match input {
            Connected => {
                if self.phase == Phase::Connecting {
                    self.phase = Phase::Established;
                }
                Action::Nothing
            }
            StartRelay(relay) => {
                self.phase = Phase::Relaying(relay);
                self.drain_wanted = false;
                self.paused = false;
                Action::Nothing
            }
            Pause => {
                if self.reading != Reading::Stopped {
                    self.paused = true;
                }
                Action::Nothing
            }
            Resume => {
                self.paused = false;
                Action::Nothing
            }
            PeerEof => {
                if self.reading == Reading::Active {
                    self.reading = Reading::PeerClosed;
                }
                Action::Nothing
            }
            LoseConnection => {
                if matches!(self.writing, Writing::CloseAfterFlush { .. }) {
                    return Action::Nothing;
                }
                self.reading = Reading::Stopped;
                self.paused = false;
                // A FIN already asked for stays asked for: the close that follows sends it anyway.
                self.writing = Writing::CloseAfterFlush { released: false };
                Action::Nothing
            }
            ReleaseClose => match self.writing {
                Writing::CloseAfterFlush { released: false } => {
                    self.writing = Writing::CloseAfterFlush { released: true };
                    if queue_empty {
                        Action::Close
                    } else {
                        Action::Nothing
                    }
                }
                _ => Action::Nothing,
            },
            ShutdownWrite => match self.writing {
                Writing::Open if queue_empty => {
                    self.writing = Writing::Finished;
                    Action::SendFin
                }
                Writing::Open => {
                    self.writing = Writing::FinAfterFlush;
                    Action::Nothing
                }
                _ => Action::Nothing,
            },
            Queued => {
                self.drain_wanted = true;
                Action::Nothing
            }
            Flushed => match self.writing {
                Writing::CloseAfterFlush { released: true } => Action::Close,
                Writing::FinAfterFlush => {
                    self.writing = Writing::Finished;
                    // DRAINED is not needed: the FIN event tells the consumer the queue is done.
                    self.drain_wanted = false;
                    Action::SendFin
                }
                _ if std::mem::take(&mut self.drain_wanted) => Action::ReportDrained,
                _ => Action::Nothing,
            },
        }
    }

    /// The relay this connection is part of, while relaying.
    pub fn relay(&self) -> Option<u32> {
        match self.phase {
            Phase::Relaying(relay) => Some(relay),
            _ => None,
        }
    }

    /// A connection that is connecting.
    pub fn connecting() -> StreamState {
        StreamState { phase: Phase::Connecting, ..StreamState::default() }
    }

    /// Whether the consumer's `write` still queues bytes (else they are dropped, as Twisted drops
    /// them).
    pub fn accepts_writes(&self) -> bool {
        self.phase == Phase::Established && matches!(self.writing, Writing::Open | Writing::CloseAfterFlush { released: false })
    }

    /// Whether the socket should be read for the consumer when it is readable.
    pub fn reads(&self) -> bool {
        self.phase == Phase::Established && self.reading == Reading::Active && !self.paused
    }

    pub fn bits(&self) -> u32 {
        let phase = match self.phase {
            Phase::Connecting => bits::CONNECTING,
            Phase::Established => 0,
            Phase::Relaying(_) => bits::RELAYING,
        };
        let read = match self.reading {
            Reading::Active => 0,
            Reading::PeerClosed => bits::READ_EOF,
            Reading::Stopped => bits::READ_STOPPED,
        } | if self.paused { bits::PAUSED } else { 0 };
        let write = match self.writing {
            Writing::Open => 0,
            Writing::FinAfterFlush => bits::WRITE_CLOSING,
            Writing::Finished => bits::WRITE_CLOSED,
            Writing::CloseAfterFlush { .. } => bits::DISCONNECTING,
        };
        phase | read | write
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_after_lose_connection_are_accepted_until_the_close_is_released() {
        let mut s = StreamState::default();
        assert_eq!(s.on(Input::LoseConnection, true), Action::Nothing);
        assert!(s.accepts_writes() && !s.reads());
        assert_eq!(s.bits(), bits::READ_STOPPED | bits::DISCONNECTING);
        assert_eq!(s.on(Input::ReleaseClose, false), Action::Nothing);
        assert!(!s.accepts_writes());
        assert_eq!(s.on(Input::Flushed, true), Action::Close);
    }

    #[test]
    fn release_with_an_empty_queue_closes_at_once() {
        let mut s = StreamState::default();
        s.on(Input::LoseConnection, true);
        assert_eq!(s.on(Input::ReleaseClose, true), Action::Close);
        assert_eq!(s.on(Input::ReleaseClose, true), Action::Nothing, "released once");
    }

    #[test]
    fn half_close_drops_later_writes_and_sends_fin_after_the_flush() {
        let mut s = StreamState::default();
        s.on(Input::Queued, false);
        assert_eq!(s.on(Input::ShutdownWrite, false), Action::Nothing);
        assert!(!s.accepts_writes());
        assert_eq!(s.bits(), bits::WRITE_CLOSING);
        assert_eq!(s.on(Input::Flushed, true), Action::SendFin);
        assert_eq!(s.bits(), bits::WRITE_CLOSED);
        assert_eq!(s.on(Input::ShutdownWrite, true), Action::Nothing, "FIN once");
    }

    #[test]
    fn drained_is_reported_once_per_queued_write() {
        let mut s = StreamState::default();
        assert_eq!(s.on(Input::Flushed, true), Action::Nothing);
        s.on(Input::Queued, false);
        assert_eq!(s.on(Input::Flushed, true), Action::ReportDrained);
        assert_eq!(s.on(Input::Flushed, true), Action::Nothing);
    }

    #[test]
    fn a_connecting_stream_neither_reads_nor_takes_writes_until_connected() {
        let mut s = StreamState::connecting();
        assert!(!s.reads() && !s.accepts_writes());
        assert_eq!(s.bits(), bits::CONNECTING);
        s.on(Input::Connected, true);
        assert!(s.reads() && s.accepts_writes());
        assert_eq!(s.bits(), 0);
    }

    #[test]
    fn a_relaying_stream_drops_the_consumers_writes_and_is_not_read_for_it() {
        let mut s = StreamState::default();
        s.on(Input::Pause, true);
        s.on(Input::StartRelay(1), true);
        assert!(!s.reads() && !s.accepts_writes());
        assert_eq!(s.bits(), bits::RELAYING);
    }

    #[test]
    fn pause_and_eof() {
        let mut s = StreamState::default();
        s.on(Input::Pause, true);
        assert!(!s.reads());
        assert_eq!(s.bits(), bits::PAUSED);
        s.on(Input::Resume, true);
        assert!(s.reads());
        s.on(Input::PeerEof, true);
        s.on(Input::Pause, true);
        assert_eq!(s.bits(), bits::READ_EOF | bits::PAUSED, "paused after the FIN was read: still paused");
        s.on(Input::Resume, true);
        assert_eq!(s.bits(), bits::READ_EOF);
        s.on(Input::LoseConnection, true);
        assert_eq!(s.reading, Reading::Stopped);
    }
}
