//! napi binding of reactor-core: glue only; every socket operation and every rule is the core's.

mod batches;
mod datagram_proxy;
mod datagrams;
mod error;
mod hosted;
mod notify;
mod numbers;
mod outbound;
mod ports;
mod reactor;
mod sockets;
mod socket_options;
mod stats;
mod streams;
mod teardown;
mod tls;
mod uv;
mod wire;
mod systemd;
mod handoff;
mod background;
