//! The TLS module's tests. Certificates are made at test time (`test_support::certs`); sessions run over real
//! non-blocking loopback sockets (`harness`); `interop` runs the `openssl` command as the peer;
//! `measure` (ignored) times full handshakes.

mod config_tests;
pub mod harness;
mod interop;
mod measure;
mod security_tests;
mod session_tests;
