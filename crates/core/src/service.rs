//! What servicing one entry asks of the loop. Each kind of entry (stream, listener, datagram)
//! services itself beside its type and answers with a `Step`; the registry carries the step out
//! (`event_loop::registry`). A new kind of entry is a file with its type and its `service`, plus
//! one arm in the registry's dispatch.

use std::io;

/// Readiness reported by one poll event (all false: a deferred pass, no new edge).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ready {
    pub readable: bool,
    pub read_closed: bool,
    pub writable: bool,
    pub error: bool,
}

/// What an entry's service asks of the loop.
#[derive(Debug)]
pub enum Step {
    /// Nothing until the next edge.
    Idle,
    /// Work is left (a budget ran out, or the batch is full): come back on a later pass, or once
    /// the consumer has taken the batch.
    More,
    /// The entry failed: remove it and report the errno.
    Fail(io::Error),
    /// The entry closed in order (shutdown done): remove it, and report the close when `report`.
    Close { report: bool },
    /// A relaying connection: its relay is the relay engine's to serve.
    Relay(u32),
    /// End this relay in order (the consumer closed one of its connections).
    EndRelay(u32),
    /// Out of descriptors, none could be freed: try again after a while.
    RetryLater,
}
