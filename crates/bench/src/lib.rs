//! Benchmark tools for reactor-socket, loopback only and single-threaded:
//!
//! - `loadgen`: drives an echo server with one of four workloads (`stream`, `pingpong`,
//!   `connect`, `udp`), verifies every echoed byte, and prints one JSON line.
//! - `echo-server`: a plain mio echo server on inherited fds — the practical limit of
//!   the machine, to put reactor-socket's and Node's figures in proportion.
//!
//! The library part exists so tests can run both in-process.

pub mod args;
pub mod pattern;
pub mod report;
pub mod schedule;
pub mod server;
pub mod stats;
mod workload;

pub use workload::run;
