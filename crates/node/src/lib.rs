//! napi binding of reactor-core: a thin layer; all I/O happens in the core.

mod error;
mod hosted;
mod notify;
mod reactor;
mod sockets;
mod teardown;
mod uv;
mod systemd;
mod handoff;
mod background;
