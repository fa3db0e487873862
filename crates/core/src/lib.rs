//! reactor-core: adopts socket descriptors made elsewhere into a mio event loop.
//! Free of napi so that `cargo test` exercises it alone.
//!
//! The loop runs on a dedicated thread (`Reactor::start`) or is driven by the host's own event
//! loop (`Reactor::start_hosted`): the same engine, only the driver differs.
//!
//! Flow: an fd is validated (`validate`), duplicated (`fd`), registered (`state`); the loop
//! (`engine`, run by a `driver`) reads into a `batch`; the consumer is told a batch is ready
//! through `Notify` and takes it with `Reactor::take_batch`.

pub mod address;
pub mod batch;
pub mod consumer;
mod datagram;
pub mod datagram_options;
mod driver;
mod engine;
pub mod errno;
mod fd;
pub mod handoff;
mod listener;
pub mod mmsg;
pub mod outbox;
pub mod pipe;
mod reactor;
mod relay;
pub mod scm;
mod shared;
pub mod sockets;
mod state;
pub mod stats;
mod stream;
pub mod stream_state;
pub mod systemd;
pub mod udp_offload;
pub mod validate;
#[cfg(test)]
mod test_support;
mod write_queue;

pub use driver::hosted::HostedTurn;
pub use reactor::{wire, Adopt, Reactor};
pub use stream_state::Input as StreamInput;
pub use socket2;
pub use validate::{AdoptError, Expect};

/// Told (from the I/O thread) that a batch is ready. At most one announcement is outstanding:
/// the next comes only after `take_batch` has returned None.
pub trait Notify: Send + 'static {
    fn batch_ready(&self);
}
