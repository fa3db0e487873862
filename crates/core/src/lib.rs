//! reactor-core: adopts socket descriptors made elsewhere into a mio event loop.
//! Free of napi so that `cargo test` exercises it alone.

pub mod address;
pub mod errno;
pub mod sockets;
