//! The datagram proxy on real loopback sockets: sessions per client, replies by the kernel's
//! demultiplexing, idle expiry, responses, the session cap, source ports, consumer routing, the
//! PROXY header, and a stop that lets sessions finish.

mod common;

use common::Harness;
use reactor_core::datagram_proxy::{DatagramProxyConfig, DatagramRoute};
use reactor_core::proxy_protocol::{self, Parsed};
use reactor_core::sys::udp_offload;
use reactor_core::socket2::SockAddr;
use reactor_core::wire::kind;
use reactor_core::DatagramProxyStats;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const INET: i32 = libc::AF_INET;

/// A UDP echo server on loopback (a thread); with `header`, each datagram must start with a
/// PROXY v2 header, and the echo is "<source> <payload>".
fn echo_upstream(header: bool) -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf) else { return };
            let reply = if header {
                match proxy_protocol::parse(&buf[..n], &Default::default()) {
                    Ok(Parsed::Complete { header, consumed }) => {
                        let mut r = format!("{} ", header.source().unwrap()).into_bytes();
                        r.extend_from_slice(&buf[consumed..n]);
                        r
                    }
                    _ => b"no header".to_vec(),
                }
            } else {
                buf[..n].to_vec()
            };
            let _ = sock.send_to(&reply, from);
        }
    });
    addr
}

fn config(route: DatagramRoute) -> DatagramProxyConfig {
    DatagramProxyConfig { route, idle_timeout: None, max_sessions: None, responses: None, proxy_header: false, source_ports: None }
}

fn listening() -> (UdpSocket, SocketAddr) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let a = s.local_addr().unwrap();
    (s, a)
}

fn client(to: SocketAddr) -> UdpSocket {
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.connect(to).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c
}

fn ask(c: &UdpSocket, msg: &[u8]) -> Vec<u8> {
    c.send(msg).unwrap();
    let mut buf = [0u8; 65536];
    let n = c.recv(&mut buf).expect("a reply");
    buf[..n].to_vec()
}

/// Waits (bounded) until the port's figures satisfy `done`.
fn stats_until(h: &Harness, id: u32, done: impl Fn(&DatagramProxyStats) -> bool) -> DatagramProxyStats {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = h.reactor.datagram_proxy_stats(id).expect("a datagram proxy");
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "timed out: {s:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn each_client_gets_its_own_session_and_only_its_own_replies() {
    let up = echo_upstream(false);
    let (l, at) = listening();
    let h = Harness::new();
    let id = h.reactor.adopt_datagram_proxy(l.as_raw_fd(), INET, config(DatagramRoute::Upstreams(vec![up.into()]))).unwrap();
    let clients: Vec<UdpSocket> = (0..20).map(|_| client(at)).collect();
    for round in 0..5 {
        for (i, c) in clients.iter().enumerate() {
            c.send(format!("client {i} round {round}").as_bytes()).unwrap();
        }
        for (i, c) in clients.iter().enumerate() {
            let mut buf = [0u8; 100];
            let n = c.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], format!("client {i} round {round}").as_bytes());
        }
    }
    let s = stats_until(&h, id, |s| s.datagrams_to_clients == 100);
    assert_eq!((s.sessions_active, s.sessions_created, s.datagrams_from_clients, s.datagrams_to_upstreams), (20, 20, 100, 100));
    assert_eq!((s.datagrams_from_upstreams, s.datagrams_dropped, s.kernel_drops), (100, 0, 0));
    assert!(s.recv_buffer_size > 0 && s.send_buffer_size > 0);
}

#[test]
fn idle_sessions_expire_and_responses_end_them() {
    let up = echo_upstream(false);
    let (l, at) = listening();
    let h = Harness::new();
    let mut cfg = config(DatagramRoute::Upstreams(vec![up.into()]));
    cfg.idle_timeout = Some(Duration::from_millis(100));
    let idle = h.reactor.adopt_datagram_proxy(l.as_raw_fd(), INET, cfg).unwrap();
    let c = client(at);
    assert_eq!(ask(&c, b"hello"), b"hello");
    let s = stats_until(&h, idle, |s| s.sessions_expired == 1);
    assert_eq!(s.sessions_active, 0);
    // A new datagram opens a new session.
    assert_eq!(ask(&c, b"again"), b"again");
    stats_until(&h, idle, |s| s.sessions_created == 2);

    let (l2, at2) = listening();
    let mut cfg = config(DatagramRoute::Upstreams(vec![up.into()]));
    cfg.responses = Some(1);
    let dns = h.reactor.adopt_datagram_proxy(l2.as_raw_fd(), INET, cfg).unwrap();
    let c = client(at2);
    for i in 0..3 {
        assert_eq!(ask(&c, format!("q{i}").as_bytes()), format!("q{i}").as_bytes());
    }
    let s = stats_until(&h, dns, |s| s.sessions_completed == 3);
    assert_eq!((s.sessions_created, s.sessions_active), (3, 0));
}

#[test]
fn past_max_sessions_new_clients_are_refused_and_counted() {
    let up = echo_upstream(false);
    let (l, at) = listening();
    let h = Harness::new();
    let mut cfg = config(DatagramRoute::Upstreams(vec![up.into()]));
    cfg.max_sessions = Some(2);
    let id = h.reactor.adopt_datagram_proxy(l.as_raw_fd(), INET, cfg).unwrap();
    let (a, b, c) = (client(at), client(at), client(at));
    assert_eq!(ask(&a, b"a"), b"a");
    assert_eq!(ask(&b, b"b"), b"b");
    c.send(b"c").unwrap();
    let s = stats_until(&h, id, |s| s.refused_max_sessions == 1);
    assert_eq!((s.sessions_active, s.datagrams_dropped), (2, 1));
    assert_eq!(ask(&a, b"a2"), b"a2", "the others are served");
}

#[test]
fn a_session_without_a_source_port_is_refused_and_the_others_served() {
    let up = echo_upstream(false);
    // Two neighbouring free ports (probed), for a range of two.
    let low = (20_000u16..60_000).step_by(7).find(|p| UdpSocket::bind(("0.0.0.0", *p)).is_ok() && UdpSocket::bind(("0.0.0.0", p + 1)).is_ok()).unwrap();
    let (l, at) = listening();
    let h = Harness::new();
    let mut cfg = config(DatagramRoute::Upstreams(vec![up.into()]));
    cfg.source_ports = Some((low, low + 1));
    let id = h.reactor.adopt_datagram_proxy(l.as_raw_fd(), INET, cfg).unwrap();
    let (a, b, c) = (client(at), client(at), client(at));
    assert_eq!(ask(&a, b"a"), b"a");
    assert_eq!(ask(&b, b"b"), b"b");
    c.send(b"c").unwrap();
    let s = stats_until(&h, id, |s| s.refused_no_source_port == 1);
    assert_eq!(s.sessions_active, 2);
    assert_eq!(ask(&a, b"a2"), b"a2");
    assert_eq!(ask(&b, b"b2"), b"b2");
}

#[test]
fn replies_from_another_source_never_reach_the_client() {
    let up = echo_upstream(false);
    let (l, at) = listening();
    let h = Harness::new();
    let id = h.reactor.adopt_datagram_proxy(l.as_raw_fd(), INET, config(DatagramRoute::Upstreams(vec![up.into()]))).unwrap();
    let c = client(at);
    assert_eq!(ask(&c, b"one"), b"one");
    // The session's local port, as the upstream saw it: find it among the reactor's sockets by
    // sending from an intruder to every UDP port bound on loopback is not needed — the session
    // socket is the only one connected to `up`.
    let session_port = session_local_port(up);
    let intruder = UdpSocket::bind("127.0.0.1:0").unwrap();
    intruder.send_to(b"forged", ("127.0.0.1", session_port)).unwrap();
    assert_eq!(ask(&c, b"two"), b"two", "the forged datagram never came through");
    let s = stats_until(&h, id, |s| s.datagrams_to_clients == 2);
    assert_eq!(s.datagrams_from_upstreams, 2);
}

/// The local port of the (only) UDP socket connected to `peer`, from /proc/net/udp.
fn session_local_port(peer: SocketAddr) -> u16 {
    let table = std::fs::read_to_string("/proc/net/udp").unwrap();
    let want = format!("0100007F:{:04X}", peer.port());
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f[2] == want {
            return u16::from_str_radix(f[1].split(':').nth(1).unwrap(), 16).unwrap();
        }
    }
    panic!("no socket connected to {peer}")
}

#[test]
fn the_consumer_routes_new_clients_in_batches() {
    let up = echo_upstream(false);
    let (l, at) = listening();
    let mut h = Harness::new();
    let id = h.reactor.adopt_datagram_proxy(l.as_raw_fd(), INET, config(DatagramRoute::Consumer)).unwrap();
    let (a, b) = (client(at), client(at));
    a.send(b"first").unwrap();
    a.send(b"second").unwrap();
    b.send(b"refuse me").unwrap();
    let mut routes: Vec<(u32, Vec<u8>)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while routes.len() < 2 {
        assert!(Instant::now() < deadline);
        let _ = h.ready.recv_timeout(Duration::from_millis(100));
        while let Some(batch) = h.reactor.take_batch() {
            for (k, port, a, b) in batch.records() {
                if k == kind::DATAGRAM_ROUTE {
                    assert_eq!(port, id);
                    let at = a as usize;
                    let token = u32::from_le_bytes(batch.data[at..at + 4].try_into().unwrap());
                    let (_, len) = reactor_core::wire::address::decode(&batch.data, at + 4).unwrap();
                    let datagram = batch.data[at + 4 + len..at + 4 + len + b as usize].to_vec();
                    routes.push((token, datagram));
                }
            }
        }
    }
    h.seen.clear();
    let answers: Vec<(u32, Option<SockAddr>)> =
        routes.iter().map(|(t, d)| (*t, if d == b"first" { Some(SockAddr::from(up)) } else { None })).collect();
    h.reactor.route_datagrams(id, answers);
    let mut buf = [0u8; 100];
    a.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for want in [&b"first"[..], b"second"] {
        let n = a.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], want, "queued datagrams follow the first, in order");
    }
    let s = stats_until(&h, id, |s| s.datagrams_to_clients == 2);
    assert_eq!((s.refused_by_route, s.sessions_active, s.datagrams_dropped), (1, 1, 1));
}

#[test]
fn the_proxy_header_names_each_client() {
    let up = echo_upstream(true);
    let (l, at) = listening();
    let h = Harness::new();
    let mut cfg = config(DatagramRoute::Upstreams(vec![up.into()]));
    cfg.proxy_header = true;
    h.reactor.adopt_datagram_proxy(l.as_raw_fd(), INET, cfg).unwrap();
    let c = client(at);
    let me = c.local_addr().unwrap();
    assert_eq!(ask(&c, b"hi"), format!("{me} hi").into_bytes());
}

#[test]
fn a_stopped_port_reads_nothing_more_and_closes_when_its_sessions_end() {
    let up = echo_upstream(false);
    let (l, at) = listening();
    l.set_nonblocking(true).unwrap();
    let mut h = Harness::new();
    let mut cfg = config(DatagramRoute::Upstreams(vec![up.into()]));
    cfg.idle_timeout = Some(Duration::from_millis(200));
    let id = h.reactor.adopt_datagram_proxy(l.as_raw_fd(), INET, cfg).unwrap();
    let c = client(at);
    assert_eq!(ask(&c, b"before"), b"before");
    assert!(h.reactor.stop_datagram_proxy(id));
    // The caller's socket receives what comes now; the stopped port does not.
    c.send(b"after").unwrap();
    let mut buf = [0u8; 64];
    let deadline = Instant::now() + Duration::from_secs(5);
    let n = loop {
        match l.recv(&mut buf) {
            Ok(n) => break n,
            Err(_) => {
                assert!(Instant::now() < deadline);
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    };
    assert_eq!(&buf[..n], b"after");
    h.until(|seen| seen.iter().any(|e| e.kind == kind::DATAGRAM_PROXY_CLOSED && e.id == id));
    let last = h.reactor.datagram_proxy_stats(id).expect("the final figures, once");
    assert_eq!((last.sessions_expired, last.sessions_active, last.datagrams_from_clients), (1, 0, 1));
    assert!(h.reactor.datagram_proxy_stats(id).is_none());
}

/// Sends `n` datagrams of `size` bytes (byte i of datagram k is k) from `from` to `to` as one
/// GSO train.
fn send_train(from: &UdpSocket, to: SocketAddr, n: usize, size: usize) {
    use reactor_core::sys::mmsg::{send_many, Outgoing};
    let bytes: Vec<u8> = (0..n).flat_map(|k| vec![k as u8; size]).collect();
    let to = SockAddr::from(to);
    let (sent, err) = send_many(from.as_raw_fd(), &[Outgoing { to: Some(&to), bytes: &bytes, segment: size as u16 }]);
    assert_eq!((sent, err.map(|e| e.to_string())), (1, None));
}

/// Receives `n` datagrams on `sock` (bounded in time).
fn receive(sock: &UdpSocket, n: usize) -> Vec<(Vec<u8>, SocketAddr)> {
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 65536];
    (0..n).map(|_| sock.recv_from(&mut buf).map(|(len, from)| (buf[..len].to_vec(), from)).expect("a datagram")).collect()
}

#[test]
fn gso_trains_pass_through_whole_and_arrive_as_their_datagrams() {
    // An upstream that answers each datagram it receives with a GSO train of three copies.
    let up = UdpSocket::bind("127.0.0.1:0").unwrap();
    let up_addr = up.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok((n, from)) = up.recv_from(&mut buf) {
            let train: Vec<u8> = buf[..n].repeat(3);
            use reactor_core::sys::mmsg::{send_many, Outgoing};
            let to = SockAddr::from(from);
            let _ = send_many(up.as_raw_fd(), &[Outgoing { to: Some(&to), bytes: &train, segment: n as u16 }]);
        }
    });
    // The listening socket has UDP_GRO on: the client's train arrives as one buffer.
    let (l, at) = listening();
    udp_offload::set_gro(l.as_raw_fd(), true).unwrap();
    let h = Harness::new();
    let id = h.reactor.adopt_datagram_proxy(l.as_raw_fd(), INET, config(DatagramRoute::Upstreams(vec![up_addr.into()]))).unwrap();
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    send_train(&c, at, 10, 64);
    let got = receive(&c, 30);
    // The upstream saw ten datagrams (the kernel cut the forwarded train for it), and answered each
    // with three; every answer reached the client as a datagram of 64 bytes, from the port.
    assert!(got.iter().all(|(d, from)| d.len() == 64 && *from == at));
    let mut firsts: Vec<u8> = got.iter().map(|(d, _)| d[0]).collect();
    firsts.sort();
    assert_eq!(firsts, (0..10u8).flat_map(|k| [k, k, k]).collect::<Vec<_>>());
    let s = stats_until(&h, id, |s| s.datagrams_to_clients == 30);
    assert_eq!((s.datagrams_from_clients, s.datagrams_to_upstreams, s.datagrams_from_upstreams), (10, 10, 30));
    assert_eq!((s.bytes_from_clients, s.bytes_to_clients, s.datagrams_dropped), (640, 1920, 0));
}
