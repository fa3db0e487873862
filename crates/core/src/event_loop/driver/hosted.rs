//! The hosted variant's turn: one non-blocking turn of the engine on the host's thread.

use crate::event_loop::engine::{Engine, Turn};
use crate::event_loop::shared::Shared;
use std::io;
use std::time::Duration;

/// What a hosted turn asks of the host.
#[derive(Debug, PartialEq, Eq)]
pub struct HostedTurn {
    /// A batch is ready and no announcement is in flight: call the consumer.
    pub announce: bool,
    /// Come back after this delay even if the fd stays quiet (a deadline, or a listener out of
    /// descriptors).
    pub retry_after: Option<Duration>,
}

pub fn turn(engine: &mut Engine, shared: &Shared) -> io::Result<HostedTurn> {
    let turn = engine.turn(Some(Duration::ZERO))?;
    let st = shared.lock();
    // Edge-triggered work left for later turns (fairness) raises no new edge: re-arm the fd.
    if st.has_ready_work() {
        shared.wake();
    }
    Ok(HostedTurn { announce: turn == Turn::Announce, retry_after: st.wait_limit(None) })
}
