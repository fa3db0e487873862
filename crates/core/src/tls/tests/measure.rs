//! The handshake's CPU cost, measured (ignored by default: it is a measurement, not a check).
//!
//! cargo test --release -p reactor-core --lib tls::tests::measure -- --ignored --nocapture
//!
//! 2,000 full handshakes, TLS 1.3, ECDSA P-256 certificate, X25519, over socketpairs, both
//! sessions in this one thread (nothing blocks, so the time spent is CPU time). Reported per
//! handshake: the server side alone (creating its session, every read_tls_from / write_tls_to it
//! makes: rustls's work plus its syscalls), and both sides together. The target: the server's
//! share at or under HAProxy's 456 µs for the same handshake.

use crate::test_support::certs::need_material;
use crate::tls::{ClientTlsConfig, ClientTlsOptions, ServerTlsConfig, ServerTlsOptions, TlsSession};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const HANDSHAKES: u32 = 2000;
const WARM_UP: u32 = 50;

struct Cost {
    server: Duration,
    both: Duration,
    /// This thread's CPU time (from /proc/thread-self/schedstat), if the kernel tells it.
    cpu: Option<Duration>,
    resumed: u32,
    handshakes: u32,
}

fn run(client: &ClientTlsConfig, server: &ServerTlsConfig, n: u32) -> Cost {
    let name = client.server_name_for("localhost").unwrap();
    let mut server_time = Duration::ZERO;
    let mut resumed = 0;
    let cpu_before = thread_cpu();
    let start = Instant::now();
    for _ in 0..n {
        let (c_sock, s_sock) = UnixStream::pair().unwrap();
        c_sock.set_nonblocking(true).unwrap();
        s_sock.set_nonblocking(true).unwrap();
        let t = Instant::now();
        let mut s = TlsSession::server(server).unwrap();
        server_time += t.elapsed();
        let mut c = TlsSession::client(client, name.clone()).unwrap();
        let (mut c_done, mut s_done) = (false, false);
        for _ in 0..100 {
            c.write_tls_to(&c_sock).unwrap();
            let t = Instant::now();
            let out = s.read_tls_from(&s_sock).unwrap();
            s.write_tls_to(&s_sock).unwrap();
            server_time += t.elapsed();
            assert_eq!(out.end, None);
            s_done |= out.handshake_completed;
            let out = c.read_tls_from(&c_sock).unwrap();
            assert_eq!(out.end, None);
            c_done |= out.handshake_completed;
            // Done when both finished and nothing is left in flight (tickets, if any, read).
            if c_done && s_done && !c.wants_write() && !s.wants_write() {
                break;
            }
        }
        assert!(c_done && s_done, "a handshake did not finish");
        // Let the client take the tickets that follow a TLS 1.3 handshake, for the resumption runs.
        c.read_tls_from(&c_sock).unwrap();
        resumed += s.info().resumed as u32;
    }
    let both = start.elapsed();
    let cpu = thread_cpu().zip(cpu_before).map(|(after, before)| after - before);
    Cost { server: server_time / n, both: both / n, cpu: cpu.map(|c| c / n), resumed, handshakes: n }
}

/// Nanoseconds this thread has run, from the scheduler's own count.
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(text.split_whitespace().next()?.parse().ok()?))
}

/// Wall time counts preemption on a shared machine; the thread's CPU time does not. The server's
/// CPU is estimated as its share of the wall time applied to the thread's CPU time.
fn report(label: &str, cost: &Cost) {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let cpu = match cost.cpu {
        Some(cpu) => format!(
            "; CPU: both sides {:.0} µs, server ≈ {:.0} µs",
            us(cpu),
            us(cpu) * cost.server.as_secs_f64() / cost.both.as_secs_f64()
        ),
        None => String::new(),
    };
    let _ = writeln!(
        std::io::stderr(),
        "{label}: wall: server {:.0} µs/handshake, both sides {:.0} µs{cpu} ({} of {} resumed)",
        us(cost.server),
        us(cost.both),
        cost.resumed,
        cost.handshakes,
    );
}

#[test]
#[ignore = "a measurement; run with --release --ignored --nocapture"]
fn handshake_cost_tls13_ecdsa_p256() {
    let m = need_material!();
    let client =
        ClientTlsOptions { ca: Some(m.ca.clone()), session_cache_size: 0, ..Default::default() }.build().unwrap();
    let full_only = ServerTlsOptions {
        default_cert: Some(m.server.clone()),
        session_tickets: false,
        session_cache_size: 0,
        ..Default::default()
    }
    .build()
    .unwrap();
    run(&client, &full_only, WARM_UP);
    let cost = run(&client, &full_only, HANDSHAKES);
    report("full handshake, TLS 1.3, ECDSA P-256, no tickets", &cost);

    // The defaults: tickets on, so each full handshake also seals two tickets for the client.
    let defaults = ServerTlsOptions { default_cert: Some(m.server.clone()), ..Default::default() }.build().unwrap();
    report("full handshake, TLS 1.3, ECDSA P-256, default options (2 tickets)", &run(&client, &defaults, HANDSHAKES));

    // Resumed: a client that remembers tickets.
    let remembering = ClientTlsOptions { ca: Some(m.ca.clone()), ..Default::default() }.build().unwrap();
    run(&remembering, &defaults, WARM_UP);
    report("resumed handshake, TLS 1.3 ticket", &run(&remembering, &defaults, HANDSHAKES));

    // For scale: the same full handshake with the RSA 2048 certificate.
    let rsa = ServerTlsOptions {
        default_cert: Some(m.server_rsa.clone()),
        session_tickets: false,
        session_cache_size: 0,
        ..Default::default()
    }
    .build()
    .unwrap();
    report("full handshake, TLS 1.3, RSA 2048, no tickets", &run(&client, &rsa, HANDSHAKES / 4));
    assert!(cost.server < Duration::from_millis(50), "a full handshake should never take this long");
}
