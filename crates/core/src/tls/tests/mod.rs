//! The TLS module's tests. Certificates are made at test time (`certs`); sessions run over real
//! non-blocking loopback sockets (`harness`); `interop` runs the `openssl` command as the peer;
//! `measure` (ignored) times full handshakes.

pub mod certs;
mod config_tests;
pub mod harness;
mod interop;
mod measure;
mod security_tests;
mod session_tests;
