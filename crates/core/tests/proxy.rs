//! Proxy ports and PROXY-header ports on real loopback sockets: accept, header, route, connect
//! (with retries), relay, admission, all in the core.

mod common;

use common::{listener, Harness};
use reactor_core::proxy::balance::Balance;
use reactor_core::proxy::header::{Cidr, HeaderPolicy};
use reactor_core::proxy::{PortRole, ProxyConfig, Route};
use reactor_core::proxy_protocol::{self, Parsed, Version};
use reactor_core::socket2::SockAddr;
use reactor_core::wire::kind;
use reactor_core::{Limits, PerSource, Reactor, RelayOptions, StreamInput};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

const INET: i32 = libc::AF_INET;

/// An echo server on loopback (one thread per connection); with `header`, each connection's first
/// bytes must be a PROXY header, whose source is sent back before the echo.
fn echo_upstream(header: bool) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                let mut pending = Vec::new();
                if header {
                    loop {
                        let n = conn.read(&mut buf).unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        pending.extend_from_slice(&buf[..n]);
                        match proxy_protocol::parse(&pending, &Default::default()) {
                            Ok(Parsed::Complete { header, consumed }) => {
                                let line = format!("from {}\n", header.source().map_or("?".into(), |s| s.to_string()));
                                conn.write_all(line.as_bytes()).unwrap();
                                pending.drain(..consumed);
                                break;
                            }
                            Ok(Parsed::Incomplete) => {}
                            Err(e) => panic!("bad header: {e:?}"),
                        }
                    }
                    conn.write_all(&pending).unwrap();
                }
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// A listening loopback socket adopted by `reactor` as a port with `role` (the reactor holds its
/// own duplicate): its id and address.
fn proxy_port(reactor: &Reactor, role: PortRole) -> (u32, SocketAddr) {
    let (l, addr) = listener();
    (reactor.adopt_listener(l.as_raw_fd(), INET, Limits::default(), role).unwrap(), addr)
}

/// A loopback port nothing listens on.
fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn proxy_role(route: Route, send_header: Option<Version>) -> PortRole {
    PortRole {
        header: None,
        proxy: Some(Arc::new(ProxyConfig {
            route,
            connect_timeout: Duration::from_secs(2),
            retries: 2,
            relay: RelayOptions { cap: 256 * 1024, idle_timeout: None },
            send_header,
            upstream_tls: None,
        })),
        tls: None,
    }
}

fn upstreams(list: &[SocketAddr]) -> Route {
    Route::Upstreams(list.iter().map(|a| SockAddr::from(*a)).collect(), Balance::RoundRobin)
}

fn echo_through(addr: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(payload).unwrap();
    let mut got = vec![0u8; payload.len()];
    c.read_exact(&mut got).unwrap();
    got
}

/// Waits (bounded) until `f` holds.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_proxy_port_relays_its_clients_with_no_event_for_the_consumer() {
    let h = Harness::new();
    let up = echo_upstream(false);
    let (port, addr) = proxy_port(&h.reactor, proxy_role(upstreams(&[up]), None));
    for i in 0..20u8 {
        let payload = vec![i; 100_000];
        assert_eq!(echo_through(addr, &payload), payload);
    }
    eventually("every session ended", || h.reactor.port_stats(port).unwrap().0.connections_active == 0);
    let (stats, failures) = h.reactor.port_stats(port).unwrap();
    assert_eq!((stats.connections_accepted, stats.sessions_relayed), (20, 20));
    assert_eq!((stats.bytes_to_upstream, stats.bytes_from_upstream), (2_000_000, 2_000_000));
    assert_eq!(failures, [0]);
    assert!(h.reactor.take_batch().is_none(), "the consumer heard nothing");
}

#[test]
fn the_upstream_gets_a_proxy_header_with_the_clients_address_first() {
    let h = Harness::new();
    let up = echo_upstream(true);
    let (l, addr) = listener();
    for version in [Version::V1, Version::V2] {
        let port = h.reactor.adopt_listener(l.as_raw_fd(), INET, Limits::default(), proxy_role(upstreams(&[up]), Some(version))).unwrap();
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(b"after the header").unwrap();
        let expect = format!("from {}\nafter the header", c.local_addr().unwrap());
        let mut got = vec![0u8; expect.len()];
        c.read_exact(&mut got).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), expect, "{version:?}");
        h.reactor.close_port(port);
    }
}

#[test]
fn a_refused_upstream_is_retried_on_the_next_and_counted() {
    let h = Harness::new();
    let (dead, live) = (closed_port(), echo_upstream(false));
    let (port, addr) = proxy_port(&h.reactor, proxy_role(upstreams(&[dead, live]), None));
    for _ in 0..4 {
        assert_eq!(echo_through(addr, b"retry"), b"retry");
    }
    let (stats, failures) = h.reactor.port_stats(port).unwrap();
    assert_eq!(failures[1], 0);
    assert!(failures[0] >= 2, "round robin sent some clients to the dead one first: {failures:?}");
    assert_eq!(stats.upstream_connect_failures, failures[0]);
    assert_eq!(stats.sessions_relayed, 4);
}

#[test]
fn with_no_upstream_left_the_client_is_closed_and_counted() {
    let h = Harness::new();
    let (port, addr) = proxy_port(&h.reactor, proxy_role(upstreams(&[closed_port()]), None));
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 8];
    assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)), "closed, not left hanging");
    eventually("counted", || h.reactor.port_stats(port).unwrap().0.upstream_unavailable == 1);
    assert_eq!(h.reactor.port_stats(port).unwrap().0.connections_active, 0);
}

#[test]
fn the_consumer_routes_each_client_or_refuses_it() {
    let mut h = Harness::new();
    let up = echo_upstream(false);
    let (port, addr) = proxy_port(&h.reactor, proxy_role(Route::Consumer, None));
    let mut routed = TcpStream::connect(addr).unwrap();
    let ev = h.until(|ev| ev.iter().any(|e| e.kind == kind::ROUTE));
    let route = ev.iter().find(|e| e.kind == kind::ROUTE).unwrap();
    h.reactor.route([(route.id, Some(SockAddr::from(up)))]);
    routed.write_all(b"routed").unwrap();
    let mut got = [0u8; 6];
    routed.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"routed");

    let mut refused = TcpStream::connect(addr).unwrap();
    refused.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let ev = h.until(|ev| ev.iter().any(|e| e.kind == kind::ROUTE));
    h.reactor.route([(ev.iter().find(|e| e.kind == kind::ROUTE).unwrap().id, None)]);
    assert!(matches!(refused.read(&mut got), Ok(0) | Err(_)));
    eventually("counted", || h.reactor.port_stats(port).unwrap().0.refused_by_route == 1);
}

#[test]
fn a_client_that_closes_inside_its_header_is_closed_at_once_and_counted() {
    let h = Harness::new();
    // A long timeout: the close must come from the FIN, not from the deadline.
    let (port, addr) = header_port(&h, HeaderPolicy { timeout: Duration::from_secs(30), ..HeaderPolicy::default() });
    for _ in 0..5 {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"PROXY TCP4 ").unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let read = c.read(&mut [0u8; 8]);
        let closed = matches!(read, Ok(0)) || matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset);
        assert!(closed, "closed when the client closed, not at the header deadline: {read:?}");
    }
    eventually("counted", || h.reactor.port_stats(port).unwrap().0.proxy_header_errors == 5);
}

fn header_port(h: &Harness, policy: HeaderPolicy) -> (u32, SocketAddr) {
    proxy_port(&h.reactor, PortRole { header: Some(Arc::new(policy)), proxy: None, tls: None })
}

#[test]
fn a_header_port_hands_on_the_client_the_header_names_with_the_bytes_after_it() {
    let mut h = Harness::new();
    let (port, addr) = header_port(&h, HeaderPolicy::default());
    let mut c = TcpStream::connect(addr).unwrap();
    // What nginx's `proxy_protocol on` sends (v1), then the client's first bytes in the same write.
    c.write_all(b"PROXY TCP4 192.0.2.1 192.0.2.2 5555 80\r\nGET / HTTP/1.1\r\n").unwrap();
    let ev = h.until(|ev| ev.iter().any(|e| e.kind == kind::DATA));
    let kinds: Vec<u32> = ev.iter().map(|e| e.kind).collect();
    assert_eq!(kinds[..2], [kind::PROXY_INFO, kind::ACCEPT]);
    let accept = &ev[1];
    assert_eq!(accept.id, port);
    let conn = accept.a;
    assert_eq!(Harness::data_of(&ev, conn), b"GET / HTTP/1.1\r\n");
    assert_eq!(h.reactor.port_stats(port).unwrap().0.connections_active, 1);
    let _ = h.reactor.stream_input(conn, StreamInput::LoseConnection);
    let _ = h.reactor.stream_input(conn, StreamInput::ReleaseClose);
    eventually("the close released the port's count", || h.reactor.port_stats(port).unwrap().0.connections_active == 0);
}

#[test]
fn a_bad_slow_or_untrusted_header_closes_the_connection_and_counts() {
    let h = Harness::new();
    let policy = HeaderPolicy { timeout: Duration::from_millis(200), ..HeaderPolicy::default() };
    let (port, addr) = header_port(&h, policy);
    let mut no_header = TcpStream::connect(addr).unwrap();
    no_header.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"PROXY TCP4 ").unwrap(); // and never the rest
    let mut endless = TcpStream::connect(addr).unwrap();
    endless.write_all(&[b'A'; 300]).unwrap();
    for c in [&mut no_header, &mut slow, &mut endless] {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 8];
        assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)));
    }
    eventually("all three counted", || h.reactor.port_stats(port).unwrap().0.proxy_header_errors == 3);

    let untrusting = HeaderPolicy { trusted: vec![Cidr { addr: "192.0.2.0".parse().unwrap(), prefix: 24 }], ..HeaderPolicy::default() };
    let (port, addr) = header_port(&h, untrusting);
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"PROXY TCP4 192.0.2.1 192.0.2.2 5555 80\r\n").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(matches!(c.read(&mut [0u8; 8]), Ok(0) | Err(_)), "loopback is not in the trusted block");
    eventually("counted", || h.reactor.port_stats(port).unwrap().0.proxy_header_errors == 1);
}

#[test]
fn the_connection_mark_stops_accepting_until_one_closes() {
    let mut h = Harness::new();
    let (l, addr) = listener();
    let limits = Limits { max_connections: Some(2), ..Limits::default() };
    let port = h.reactor.adopt_listener(l.as_raw_fd(), INET, limits, PortRole::default()).unwrap();
    let clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let ev = h.until(|ev| ev.iter().filter(|e| e.kind == kind::ACCEPT).count() == 2);
    let mut accepted: Vec<u32> = ev.iter().filter(|e| e.kind == kind::ACCEPT).map(|e| e.a).collect();
    accepted.extend(h.reactor.take_batch().map_or(Vec::new(), |b| b.records().filter(|r| r.0 == kind::ACCEPT).map(|r| r.2).collect()));
    assert_eq!(accepted.len(), 2, "the third waits in the backlog");
    let stats = h.reactor.port_stats(port).unwrap().0;
    assert_eq!((stats.connections_accepted, stats.connections_active), (2, 2));
    assert!(stats.paused_at_max >= 1);
    h.reactor.abort(accepted[0]);
    h.until(|ev| ev.iter().any(|e| e.kind == kind::ACCEPT));
    assert_eq!(h.reactor.port_stats(port).unwrap().0.connections_accepted, 3);
    drop(clients);
}

#[test]
fn one_source_may_not_take_more_than_its_share() {
    let mut h = Harness::new();
    let (l, addr) = listener();
    let limits = Limits { per_source: Some(PerSource { max: 1, ..PerSource::default() }), ..Limits::default() };
    let port = h.reactor.adopt_listener(l.as_raw_fd(), INET, limits, PortRole::default()).unwrap();
    let _first = TcpStream::connect(addr).unwrap();
    h.until(|ev| ev.iter().any(|e| e.kind == kind::ACCEPT));
    let mut second = TcpStream::connect(addr).unwrap();
    second.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(matches!(second.read(&mut [0u8; 4]), Ok(0) | Err(_)), "accepted and closed at once");
    eventually("counted", || h.reactor.port_stats(port).unwrap().0.refused_per_source == 1);
}

fn drain_counts(h: &mut Harness, port: u32) -> (u64, u64, u64) {
    let ev = h.until(|ev| ev.iter().any(|e| e.kind == kind::PORT_DRAINED && e.id == port));
    let e = ev.iter().find(|e| e.kind == kind::PORT_DRAINED).unwrap();
    let n = |i: usize| u64::from_le_bytes(e.bytes[i * 8..i * 8 + 8].try_into().unwrap());
    (n(0), n(1), n(2))
}

#[test]
fn a_drain_closes_idle_sessions_and_lets_active_ones_finish() {
    let mut h = Harness::new();
    let up = echo_upstream(false);
    let (port, addr) = proxy_port(&h.reactor, proxy_role(upstreams(&[up]), None));
    let mut idle = TcpStream::connect(addr).unwrap();
    let mut active = TcpStream::connect(addr).unwrap();
    for c in [&mut idle, &mut active] {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(b"x").unwrap();
        c.read_exact(&mut [0u8; 1]).unwrap();
    }
    eventually("both relaying", || h.reactor.port_stats(port).unwrap().0.sessions_relayed == 2);
    std::thread::sleep(Duration::from_millis(60)); // both quiet past `idle_after`
    active.write_all(b"busy").unwrap(); // bytes in flight or just moved: not idle
    assert!(h.reactor.drain(port, Duration::from_secs(20), Duration::from_millis(50)));
    assert!(matches!(idle.read(&mut [0u8; 1]), Ok(0) | Err(_)), "the idle session is closed in order");
    let mut got = [0u8; 4];
    active.read_exact(&mut got).unwrap();
    active.write_all(b"still served").unwrap();
    let mut more = [0u8; 12];
    active.read_exact(&mut more).unwrap();
    assert_eq!(&more, b"still served", "an active session goes on while the port drains");
    drop(active);
    assert_eq!(drain_counts(&mut h, port), (1, 1, 0));
    let last = h.reactor.port_stats(port).expect("the last figures, once").0;
    assert_eq!(last.sessions_relayed, 2);
    assert!(h.reactor.port_stats(port).is_none(), "the port closed at the end of its drain");
}

#[test]
fn at_the_drain_deadline_what_is_left_is_closed() {
    let mut h = Harness::new();
    let up = echo_upstream(false);
    let (port, addr) = proxy_port(&h.reactor, proxy_role(upstreams(&[up]), None));
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"x").unwrap();
    c.read_exact(&mut [0u8; 1]).unwrap();
    let started = Instant::now();
    assert!(h.reactor.drain(port, Duration::from_millis(200), Duration::from_secs(3600)));
    assert_eq!(drain_counts(&mut h, port), (0, 0, 1));
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(matches!(c.read(&mut [0u8; 1]), Ok(0) | Err(_)));
}

/// The PROXY v2 header's cost per proxied connection: encoding one (what a proxy port sends) and
/// parsing one (what a port with `proxyProtocol` reads), measured in one thread. Run with
/// `cargo test --release -p reactor-core --test proxy -- --ignored --nocapture proxy_header_cost`.
#[test]
#[ignore]
fn proxy_header_cost() {
    use reactor_core::proxy_protocol::{encode_v2, parse, Header, ParseOptions};
    let header = Header::tcp(Version::V2, "192.0.2.1:40000".parse().unwrap(), "192.0.2.2:443".parse().unwrap());
    let mut out = Vec::with_capacity(64);
    let n = 1_000_000;
    let t = Instant::now();
    for _ in 0..n {
        out.clear();
        encode_v2(std::hint::black_box(&header), &mut out).unwrap();
    }
    let encode_ns = t.elapsed().as_nanos() as f64 / n as f64;
    let opts = ParseOptions::default();
    let t = Instant::now();
    for _ in 0..n {
        let parsed = parse(std::hint::black_box(&out), &opts).unwrap();
        std::hint::black_box(parsed);
    }
    let parse_ns = t.elapsed().as_nanos() as f64 / n as f64;
    println!("PROXY v2 header ({} bytes): encode {encode_ns:.0} ns, parse {parse_ns:.0} ns per connection", out.len());
}

/// A client that sends its request and its FIN at once: both are in the socket before the relay
/// starts (the edges went to the proxy session), and the upstream must still get both, then its
/// answer and FIN must reach the client. Several rounds, each with its own upstream connection.
/// With `header`, a PROXY header comes first in the same write: the session reads the socket
/// empty to parse it, and the FIN behind the request must still be read.
fn requests_sent_with_their_fin(reactor: &Reactor, header: bool) {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = upstream.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..10 {
            let (mut conn, _) = upstream.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut request = Vec::new();
            conn.read_to_end(&mut request).expect("the client's FIN reaches the upstream");
            conn.write_all(&[b"got ", &request[..]].concat()).unwrap();
        } // dropped: the upstream's FIN
    });
    let mut role = proxy_role(upstreams(&[up]), None);
    let mut first = Vec::new();
    if header {
        role.header = Some(Arc::new(HeaderPolicy::default()));
        first.extend_from_slice(b"PROXY TCP4 192.0.2.1 192.0.2.2 5555 80\r\n");
    }
    let (port, addr) = proxy_port(reactor, role);
    for i in 0..10u8 {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(&[&first[..], &[b'r', b'0' + i]].concat()).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = Vec::new();
        c.read_to_end(&mut answer).unwrap();
        assert_eq!(answer, [&b"got r"[..], &[b'0' + i]].concat());
    }
    server.join().unwrap();
    eventually("every session ended", || reactor.port_stats(port).unwrap().0.connections_active == 0);
}

/// An upstream that speaks first and closes at once (a banner, then FIN): both may be in its socket
/// before the relay starts (the edges went to the connecting upstream's entry), and the client must
/// get both.
fn an_upstream_that_speaks_first_and_closes(reactor: &Reactor) {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = upstream.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        for i in 0..10u8 {
            let (mut conn, _) = upstream.accept().unwrap();
            conn.write_all(&[b'b', b'0' + i]).unwrap();
        } // dropped at once: the banner's FIN
    });
    let (port, addr) = proxy_port(reactor, proxy_role(upstreams(&[up]), None));
    for i in 0..10u8 {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut banner = Vec::new();
        c.read_to_end(&mut banner).expect("the upstream's FIN reaches the client");
        assert_eq!(banner, [b'b', b'0' + i]);
    }
    server.join().unwrap();
    eventually("every session ended", || reactor.port_stats(port).unwrap().0.connections_active == 0);
}

/// An upstream that speaks first and then waits for the client (a greeting: SMTP, MySQL): the
/// greeting may be in its socket before the relay starts, and its edge was the connecting
/// upstream's. The relay reads a source only while an edge says it may hold bytes, so the upstream
/// must hand that edge on: else the client waits for a greeting that sits in the proxy's socket.
fn an_upstream_that_greets_and_waits(reactor: &Reactor) {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = upstream.local_addr().unwrap();
    const CLIENTS: u8 = 20;
    let server = std::thread::spawn(move || {
        for i in 0..CLIENTS {
            let (mut conn, _) = upstream.accept().unwrap();
            conn.write_all(&[b'g', b'0' + i]).unwrap();
            let mut request = [0u8; 1];
            conn.read_exact(&mut request).unwrap();
            conn.write_all(&[b'r', request[0]]).unwrap();
        }
    });
    let (port, addr) = proxy_port(reactor, proxy_role(upstreams(&[up]), None));
    for i in 0..CLIENTS {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut greeting = [0u8; 2];
        c.read_exact(&mut greeting).expect("the upstream's greeting reaches the client");
        assert_eq!(greeting, [b'g', b'0' + i]);
        c.write_all(&[b'q']).unwrap();
        let mut reply = [0u8; 2];
        c.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"rq");
    }
    server.join().unwrap();
    eventually("every session ended", || reactor.port_stats(port).unwrap().0.connections_active == 0);
}

/// Runs `body` against a reactor whose loop is turned by a host thread, as Node's would be: no
/// relay poller, so no re-registration raises a fresh edge when a relay starts.
fn hosted(body: impl FnOnce(&Reactor)) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let reactor = Arc::new(Reactor::start_hosted().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let host = {
        let (reactor, stop) = (reactor.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                reactor.turn_hosted().unwrap();
                while reactor.take_batch().is_some() {}
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    body(&reactor);
    stop.store(true, Ordering::Relaxed);
    host.join().unwrap();
    reactor.close();
}

#[test]
fn a_request_and_fin_sent_before_the_relay_starts_reach_the_upstream() {
    for header in [false, true] {
        requests_sent_with_their_fin(&Harness::new().reactor, header);
        hosted(|reactor| requests_sent_with_their_fin(reactor, header));
    }
}

#[test]
fn a_banner_and_fin_sent_before_the_relay_starts_reach_the_client() {
    an_upstream_that_speaks_first_and_closes(&Harness::new().reactor);
    hosted(an_upstream_that_speaks_first_and_closes);
}

#[test]
fn a_greeting_sent_before_the_relay_starts_reaches_the_client() {
    an_upstream_that_greets_and_waits(&Harness::new().reactor);
    hosted(an_upstream_that_greets_and_waits);
}
