//! TLS in the loop, on real loopback sockets: TLS ports (handshake in the core, then the
//! connection handed over), proxy ports that terminate TLS and relay plaintext (and originate TLS
//! to an upstream), connects with TLS, `start_tls`, reloads, failures and their reports.
//! Peers are rustls over blocking std sockets (the same rustls the core uses, driven another way).

mod common;

use common::{listener, Event, Harness};
use reactor_core::proxy::balance::Balance;
use reactor_core::proxy::{PortRole, ProxyConfig, Route};
use reactor_core::socket2::SockAddr;
use reactor_core::tls::{
    ClientTlsConfig, ClientTlsOptions, ReloadableServerConfig, ServerName, ServerTlsConfig,
    ServerTlsOptions,
};
use reactor_core::test_support::certs::Material as Certs;
use reactor_core::wire::kind;
use reactor_core::{Adopt, Limits, Reactor, RelayOptions, StreamInput, TlsRole};
use rustls::{ClientConnection, ServerConnection, StreamOwned};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

const INET: i32 = libc::AF_INET;

fn server_config(c: &Certs, f: impl FnOnce(&mut ServerTlsOptions)) -> ServerTlsConfig {
    let mut o = ServerTlsOptions {
        default_cert: Some(c.server.clone()),
        ..Default::default()
    };
    f(&mut o);
    o.build().unwrap()
}

fn client_config(c: &Certs) -> ClientTlsConfig {
    ClientTlsOptions {
        ca: Some(c.ca.clone()),
        ..Default::default()
    }
    .build()
    .unwrap()
}

fn tls_role(config: ServerTlsConfig) -> (PortRole, ReloadableServerConfig) {
    let reload = ReloadableServerConfig::new(config);
    (
        PortRole {
            tls: Some(reload.clone()),
            ..Default::default()
        },
        reload,
    )
}

type Client = StreamOwned<ClientConnection, TcpStream>;

/// A blocking rustls client (its handshake runs on its first read or write).
fn tls_client(addr: SocketAddr, config: &ClientTlsConfig) -> Client {
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = ServerName::try_from("localhost").unwrap().to_owned();
    StreamOwned::new(ClientConnection::new(config.rustls.clone(), name).unwrap(), sock)
}

fn first(events: &[Event], k: u32) -> Option<&Event> {
    events.iter().find(|e| e.kind == k)
}

/// The code of a TLS_ERROR payload (u8 length + ASCII first).
fn error_code(e: &Event) -> String {
    String::from_utf8(e.bytes[1..1 + e.bytes[0] as usize].to_vec()).unwrap()
}

/// The protocol name in a TLS_READY payload (after the flags byte).
fn ready_protocol(e: &Event) -> String {
    String::from_utf8(e.bytes[2..2 + e.bytes[1] as usize].to_vec()).unwrap()
}

fn tls_port(h: &Harness, role: PortRole) -> (u32, SocketAddr) {
    let (l, addr) = listener();
    let port = h
        .reactor
        .adopt_listener(l.as_raw_fd(), INET, Limits::default(), role)
        .unwrap();
    (port, addr)
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_tls_port_hands_over_connections_after_the_handshake_and_ends_them_with_close_notify() {
    let c = need_certs!();
    let mut h = Harness::new();
    let (role, _) = tls_role(server_config(c, |_| {}));
    let (port, addr) = tls_port(&h, role);
    let mut client = tls_client(addr, &client_config(c));
    client.write_all(b"hello").unwrap();
    let seen =
        h.until(|ev| Harness::data_of(ev, ev.iter().find(|e| e.kind == kind::ACCEPT).map_or(0, |e| e.a)) == b"hello");
    let ready = first(&seen, kind::TLS_READY).expect("TLS_READY before the ACCEPT");
    let accept = first(&seen, kind::ACCEPT).unwrap();
    assert_eq!((accept.id, ready.id), (port, accept.a));
    let order: Vec<u32> = seen
        .iter()
        .filter(|e| e.id == accept.a || e.kind == kind::ACCEPT)
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        &order[..2],
        [kind::TLS_READY, kind::ACCEPT],
        "the parameters come before the connection"
    );
    assert_eq!(ready_protocol(ready), "TLSv1.3");
    let conn = accept.a;

    h.reactor.write(conn, b"world");
    let mut got = [0u8; 5];
    client.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"world");

    // The client's close_notify is an EOF; our close sends close_notify, then FIN.
    client.conn.send_close_notify();
    client.flush().unwrap();
    h.until(|ev| ev.iter().any(|e| e.kind == kind::EOF && e.id == conn));
    h.reactor.stream_input(conn, StreamInput::LoseConnection);
    h.reactor.stream_input(conn, StreamInput::ReleaseClose);
    let mut rest = Vec::new();
    assert_eq!(
        client.read_to_end(&mut rest).unwrap(),
        0,
        "a clean end: close_notify came before the FIN"
    );
    let stats = h.reactor.stats();
    assert_eq!(
        (
            stats.tls_sessions_userspace,
            stats.tls_handshake_failures,
            stats.tls_sessions_ktls
        ),
        (1, 0, 0)
    );
}

#[test]
fn a_peer_that_closes_without_close_notify_is_a_truncation() {
    let c = need_certs!();
    let mut h = Harness::new();
    let (role, _) = tls_role(server_config(c, |_| {}));
    let (_, addr) = tls_port(&h, role);
    let mut client = tls_client(addr, &client_config(c));
    client.write_all(b"x").unwrap();
    let seen = h.until(|ev| ev.iter().any(|e| e.kind == kind::DATA));
    let conn = first(&seen, kind::ACCEPT).unwrap().a;
    client.sock.shutdown(Shutdown::Both).unwrap();
    let seen = h.until(|ev| ev.iter().any(|e| e.kind == kind::CLOSED && e.id == conn));
    let err = first(&seen, kind::TLS_ERROR).expect("TLS_ERROR before CLOSED");
    assert_eq!(error_code(err), "ERR_TLS_TRUNCATED");
    assert_eq!(first(&seen, kind::CLOSED).unwrap().a, libc::EPROTO as u32);
}

#[test]
fn failed_handshakes_never_reach_the_consumer_and_are_counted() {
    let c = need_certs!();
    let h = Harness::new();
    let (role, _) = tls_role(server_config(c, |o| o.handshake_timeout = Duration::from_millis(300)));
    let (port, addr) = tls_port(&h, role);
    // Not TLS at all: refused with an alert.
    let mut junk = TcpStream::connect(addr).unwrap();
    junk.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = junk.read_to_end(&mut answer);
    assert_eq!(answer.first(), Some(&21), "an alert record: {answer:?}");
    // Silent: closed by the handshake timeout.
    let mut silent = TcpStream::connect(addr).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    assert_eq!(silent.read(&mut [0u8; 16]).unwrap_or(0), 0, "closed");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "not before the timeout: {:?}",
        started.elapsed()
    );
    // A client that does not trust the certificate.
    let untrusting = ClientTlsOptions {
        ca: Some(c.server.cert_chain.clone()),
        ..Default::default()
    }
    .build();
    if let Ok(cfg) = untrusting {
        let mut client = tls_client(addr, &cfg);
        assert!(client.write_all(b"x").and_then(|_| client.flush()).is_err() || client.read(&mut [0u8; 1]).is_err());
    }
    eventually("three failures counted", || {
        h.reactor.port_stats(port).unwrap().0.tls_handshake_failures == 3
    });
    assert_eq!(h.reactor.stats().tls_handshake_failures, 3);
    std::thread::sleep(Duration::from_millis(50));
    while let Some(b) = h.reactor.take_batch() {
        assert!(
            b.records().all(|r| r.0 != kind::ACCEPT),
            "no connection was handed over"
        );
    }
}

fn echo_upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// An upstream that speaks TLS (rustls, one thread per connection) and echoes.
fn tls_echo_upstream(config: ServerTlsConfig) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { return };
            let config = config.rustls.clone();
            std::thread::spawn(move || {
                let mut s = StreamOwned::new(ServerConnection::new(config).unwrap(), conn);
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                s.conn.send_close_notify();
                let _ = s.flush();
            });
        }
    });
    addr
}

fn proxy_role(to: SocketAddr, upstream_tls: Option<ClientTlsConfig>) -> Arc<ProxyConfig> {
    Arc::new(ProxyConfig {
        route: Route::Upstreams(vec![SockAddr::from(to)], Balance::RoundRobin),
        connect_timeout: Duration::from_secs(5),
        retries: 0,
        relay: RelayOptions {
            cap: 256 * 1024,
            idle_timeout: None,
        },
        send_header: None,
        upstream_tls,
    })
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn a_proxy_port_terminates_tls_and_relays_plaintext_by_copying() {
    let c = need_certs!();
    let h = Harness::new();
    let (mut role, _) = tls_role(server_config(c, |_| {}));
    role.proxy = Some(proxy_role(echo_upstream(), None));
    let (port, addr) = tls_port(&h, role);
    // One thread drives the client's rustls: it writes everything, then reads. The socket buffers
    // and the relay's bound hold this much without a reader.
    let payload = pattern(256 * 1024);
    let mut client = tls_client(addr, &client_config(c));
    client.write_all(&payload).unwrap();
    let mut got = vec![0u8; payload.len()];
    client.read_exact(&mut got).unwrap();
    assert!(got == payload, "the echo came back whole");
    client.conn.send_close_notify();
    client.flush().unwrap();
    let mut rest = Vec::new();
    assert_eq!(
        client.read_to_end(&mut rest).unwrap(),
        0,
        "the proxy ends with close_notify"
    );
    eventually("the session to end", || {
        h.reactor.port_stats(port).unwrap().0.connections_active == 0
    });
    let (stats, _) = h.reactor.port_stats(port).unwrap();
    assert_eq!(
        (stats.sessions_relayed, stats.bytes_spliced),
        (1, 0),
        "TLS is relayed by copying"
    );
    assert_eq!(stats.bytes_to_upstream, payload.len() as u64);
}

#[test]
fn a_proxy_port_originates_tls_to_its_upstream() {
    let c = need_certs!();
    let h = Harness::new();
    let up = tls_echo_upstream(server_config(c, |_| {}));
    let role = PortRole {
        proxy: Some(proxy_role(up, Some(client_config(c)))),
        ..Default::default()
    };
    let (port, addr) = tls_port(&h, role);
    let payload = pattern(300_000);
    let mut plain = TcpStream::connect(addr).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = plain.try_clone().unwrap();
    let expected = payload.clone();
    let read = std::thread::spawn(move || {
        let mut got = vec![0u8; expected.len()];
        reader.read_exact(&mut got).unwrap();
        got == expected
    });
    plain.write_all(&payload).unwrap();
    assert!(
        read.join().unwrap(),
        "the echo came back whole through TLS to the upstream"
    );
    plain.shutdown(Shutdown::Write).unwrap();
    eventually("the session to end", || {
        h.reactor.port_stats(port).unwrap().0.connections_active == 0
    });
    assert_eq!(h.reactor.stats().tls_sessions_userspace, 1);
}

#[test]
fn a_connect_with_tls_is_reported_after_its_handshake_and_a_refused_one_with_its_error() {
    let c = need_certs!();
    let mut h = Harness::new();
    let (role, _) = tls_role(server_config(c, |_| {}));
    let (port, addr) = tls_port(&h, role);
    let name = ServerName::try_from("localhost").unwrap().to_owned();
    let out = h
        .reactor
        .connect_tls(&SockAddr::from(addr), None, &client_config(c), name)
        .unwrap();
    let seen = h.until(|ev| ev.iter().any(|e| e.kind == kind::CONNECTED) && ev.iter().any(|e| e.kind == kind::ACCEPT));
    let ready: Vec<u32> = seen
        .iter()
        .filter(|e| e.kind == kind::TLS_READY)
        .map(|e| e.id)
        .collect();
    let inbound = seen.iter().find(|e| e.kind == kind::ACCEPT && e.id == port).unwrap().a;
    assert!(
        ready.contains(&out) && ready.contains(&inbound),
        "both sides report their handshake"
    );
    h.reactor.write(out, b"ping");
    h.until(|ev| Harness::data_of(ev, inbound) == b"ping");
    h.reactor.write(inbound, b"pong");
    h.until(|ev| Harness::data_of(ev, out) == b"pong");

    // A name the certificate does not carry: refused by our client.
    let name = ServerName::try_from("wrong.test").unwrap().to_owned();
    let bad = h
        .reactor
        .connect_tls(&SockAddr::from(addr), None, &client_config(c), name)
        .unwrap();
    let seen = h.until(|ev| ev.iter().any(|e| e.kind == kind::CLOSED && e.id == bad));
    let err = seen
        .iter()
        .find(|e| e.kind == kind::TLS_ERROR && e.id == bad)
        .expect("TLS_ERROR");
    assert_eq!(error_code(err), "ERR_TLS_CERT_VERIFY");
    assert!(
        seen.iter().all(|e| !(e.kind == kind::CONNECTED && e.id == bad)),
        "never reported connected"
    );
}

#[test]
fn start_tls_sends_what_was_written_before_in_the_clear_and_the_rest_encrypted() {
    let c = need_certs!();
    let mut h = Harness::new();
    let (l, addr) = listener();
    let mut peer = TcpStream::connect(addr).unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (ours, _) = l.accept().unwrap();
    let conn = h.reactor.adopt(ours.as_raw_fd(), INET, Adopt::Connection).unwrap();
    drop(ours);
    peer.write_all(b"STARTTLS\r\n").unwrap();
    h.until(|ev| Harness::data_of(ev, conn) == b"STARTTLS\r\n");
    h.reactor.write(conn, b"220 go ahead\r\n");
    h.reactor
        .start_tls(conn, TlsRole::Server(server_config(c, |_| {})), &[])
        .unwrap();
    h.reactor.write(conn, b"secret reply"); // held, and encrypted after the handshake
    let mut line = [0u8; 14];
    peer.read_exact(&mut line).unwrap();
    assert_eq!(
        &line, b"220 go ahead\r\n",
        "the bytes written before startTLS, in the clear"
    );
    let name = ServerName::try_from("localhost").unwrap().to_owned();
    let mut tls = StreamOwned::new(
        ClientConnection::new(client_config(c).rustls.clone(), name).unwrap(),
        peer,
    );
    let mut got = [0u8; 12];
    tls.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"secret reply");
    tls.write_all(b"inside").unwrap();
    let seen = h.until(|ev| Harness::data_of(ev, conn) == b"inside");
    assert!(seen.iter().any(|e| e.kind == kind::TLS_READY && e.id == conn));
}

#[test]
fn a_reload_changes_the_certificate_of_new_handshakes_only() {
    let c = need_certs!();
    let mut h = Harness::new();
    let (role, _) = tls_role(server_config(c, |_| {}));
    let (port, addr) = tls_port(&h, role);
    let leaf = |client: &Client| client.conn.peer_certificates().unwrap()[0].as_ref().to_vec();
    let mut before = tls_client(addr, &client_config(c));
    before.write_all(b"a").unwrap();
    h.until(|ev| ev.iter().any(|e| e.kind == kind::DATA));
    let first_leaf = leaf(&before);
    let other = ServerTlsOptions {
        // a second `localhost` certificate (RSA): the reload is seen in the leaf
        default_cert: Some(c.server_rsa.clone()),
        ..Default::default()
    }
    .build()
    .unwrap();
    h.reactor.set_port_tls(port, other).unwrap();
    let mut after = tls_client(addr, &client_config(c));
    after.write_all(b"b").unwrap();
    h.until(|ev| ev.iter().any(|e| e.kind == kind::DATA));
    assert_ne!(leaf(&after), first_leaf, "a new handshake got the new certificate");
    before.write_all(b"still").unwrap(); // the established session goes on
    h.until(|ev| ev.iter().any(|e| e.kind == kind::DATA));
    let plain = h
        .reactor
        .adopt_listener(listener().0.as_raw_fd(), INET, Limits::default(), PortRole::default())
        .unwrap();
    assert_eq!(
        h.reactor
            .set_port_tls(plain, server_config(c, |_| {}))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EINVAL)
    );
}

#[test]
fn the_ktls_probe_answers() {
    let s = Reactor::ktls_support();
    assert_eq!(s.available, s.reason.is_empty());
}

#[test]
fn a_proxy_header_comes_before_the_client_hello_on_a_tls_port() {
    let c = need_certs!();
    let mut h = Harness::new();
    let (mut role, _) = tls_role(server_config(c, |_| {}));
    role.header = Some(Arc::new(reactor_core::proxy::header::HeaderPolicy::default()));
    let (port, addr) = tls_port(&h, role);
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The header and the ClientHello in one write (as a load balancer sends them).
    let name = ServerName::try_from("localhost").unwrap().to_owned();
    let mut conn = ClientConnection::new(client_config(c).rustls.clone(), name).unwrap();
    let mut first = b"PROXY TCP4 192.0.2.1 192.0.2.2 5555 443\r\n".to_vec();
    conn.write_tls(&mut first).unwrap();
    sock.write_all(&first).unwrap();
    let mut client = StreamOwned::new(conn, sock);
    client.write_all(b"after").unwrap();
    let seen = h.until(|ev| ev.iter().any(|e| e.kind == kind::DATA));
    let kinds: Vec<u32> = seen.iter().filter(|e| e.kind != kind::DATA).map(|e| e.kind).collect();
    assert_eq!(kinds, [kind::PROXY_INFO, kind::TLS_READY, kind::ACCEPT]);
    assert_eq!(seen.iter().find(|e| e.kind == kind::ACCEPT).unwrap().id, port);
    assert_eq!(Harness::data_of(&seen, seen[0].id), b"after");
}
