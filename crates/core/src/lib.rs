//! reactor-core: adopts socket descriptors made elsewhere into a mio event loop.
//! Free of napi so that `cargo test` exercises it alone.
//!
//! The folders are its architecture, each layer using only those above it in this list:
//!
//! - `sys`: every OS call socket2 and mio do not make (descriptors, errno, socket helpers,
//!   validation, SCM_RIGHTS, recvmmsg/sendmmsg, UDP offloads, pipes and splice).
//! - `wire`: the format the consumer reads: record kinds, layouts, payloads, state bits, the
//!   stats shape.
//! - `batch`: the events of one or more turns, gathered for one hand-over, and the counters.
//! - the kinds of entries: `stream` (connections, their state machine, write queue, listeners),
//!   `datagram` (ports, outbox, options), `relay` (the relay engine and its pipes),
//!   `datagram_proxy` (the UDP forwarder: a listening socket, a connected socket per session).
//! - `event_loop`: the registry of entries and its dispatch, the engine, the drivers (a dedicated
//!   thread, or the host's own loop), the consumer's side.
//! - `reactor`: the public face.
//! - `deploy` (beside the loop, on `sys` only): systemd activation and notify, the handoff.
//!
//! Flow: an fd is validated (`sys::validate`), duplicated (`sys::fd`), registered
//! (`event_loop::registry`); the loop (`event_loop::engine`, run by a driver) reads into a batch;
//! the consumer is told a batch is ready through `Notify` and takes it with `Reactor::take_batch`.

mod batch;
mod datagram;
pub mod datagram_proxy;
pub mod deploy;
mod entry;
mod event_loop;
mod ids;
pub mod proxy;
pub mod proxy_protocol;
mod reactor;
mod relay;
mod service;
mod stream;
pub mod sys;
pub mod tls;
#[cfg(any(test, feature = "test-support"))]
#[doc(hidden)]
pub mod test_support;
pub mod wire;

pub use batch::counters::SendCounters;
pub use batch::{Batch, DATA_CAP};
pub use datagram::options as datagram_options;
pub use datagram::outbox::Outbox;
pub use deploy::{handoff, systemd};
pub use event_loop::consumer::Consumer;
pub use event_loop::driver::HostedTurn;
pub use event_loop::Notify;
pub use reactor::{Adopt, Reactor, TlsRole};
pub use sys::ktls::KtlsSupport;
pub use relay::RelayOptions;
pub use socket2;
pub use stream::admission::{Limits, PerSource, Rate};
pub use stream::state::Input as StreamInput;
pub use sys::validate::{AdoptError, Expect};
pub use wire::{DatagramProxyStats, PortStats, Stats};
