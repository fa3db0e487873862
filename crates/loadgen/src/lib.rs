//! Benchmark tools for reactor-socket, loopback only and single-threaded:
//!
//! - `loadgen`: drives a server with one of its workloads (`stream`, `pingpong`,
//!   `connect`, `udp` [`--gso`], `http`, and `proxy`/`proxy-connect` through an echoing
//!   proxy), verifies every byte it gets back, and prints one JSON line that includes
//!   its own CPU use.
//! - `echo-server`: a plain mio echo server on inherited fds — the practical limit of
//!   the machine, to put reactor-socket's and Node's figures in proportion.
//! - `splice-proxy`: a TCP proxy relaying with splice(2), no JS — the limit for a relay.
//! - `timed`: runs a real benchmark client (`redis-benchmark`, `iperf3`) and reports its CPU
//!   like the load generator's own (see `src/bin/timed.rs`).
//!
//! The library part exists so tests can run them in-process.
//!
//! `loadgen` prints exactly one JSON line (see `report::Report`):
//!
//! ```text
//! {"workload":"stream","conns":16,"size":16384,"seconds":3.000,"ops":N,"bytes":N,"rate":X,
//!  "unit":"MB/s","p50_us":null,"p99_us":null,"errors":0,"lost":0,"cpu_s":0.912,
//!  "cpu_share":0.304,"error":null}
//! ```
//!
//! `ops`/`bytes` count only verified operations completed inside the measured window;
//! `rate` is MB/s (10^6 bytes) of echoed bytes for `stream`/`proxy`, else operations per
//! second (`rt/s`, `conn/s`, `dgram/s`, `req/s`). `p50_us`/`p99_us` are round-trip
//! latencies for `pingpong` and `http` and whole-connection times (connect → echo →
//! close) for `connect`, `null` otherwise. `errors` counts wrong bytes, unexpected
//! closes, refused/reset connections in any phase; `lost` counts UDP datagrams not
//! echoed within 50 ms. `cpu_s` is the load generator's user + system CPU over the
//! measured window and `cpu_share` that per second of the window (1.0 = one whole core:
//! the load generator, not the server, was then the limit). `error` is `null` for a
//! clean run, else why the figure is not trustworthy. Exit status: 0 clean, 1 not
//! clean, 2 usage.

pub mod args;
pub mod conn;
pub mod cpu;
pub mod echo_batch;
pub mod http1;
pub mod inherit;
pub mod mmsg;
pub mod pattern;
pub mod proxy;
pub mod report;
pub mod schedule;
pub mod server;
pub mod stats;
pub mod tcp;
mod workload;

pub use workload::run;
