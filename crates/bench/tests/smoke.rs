//! In-process smoke tests: the load generator against the echo server (threads, loopback),
//! and against deliberately broken servers, which must never look fast.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, UdpSocket as StdUdp};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use mio::net::{TcpListener, UdpSocket};
use mio::Waker;
use reactor_bench::args::{Config, Workload};
use reactor_bench::report::Report;
use reactor_bench::server::{EchoServer, WAKE};

/// The echo server on a thread; stops and joins on drop.
struct Server {
    tcp: SocketAddr,
    udp: SocketAddr,
    waker: Arc<Waker>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let l = StdListener::bind("127.0.0.1:0").unwrap();
        let u = StdUdp::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        u.set_nonblocking(true).unwrap();
        let (tcp, udp) = (l.local_addr().unwrap(), u.local_addr().unwrap());
        let mut server =
            EchoServer::new(Some(TcpListener::from_std(l)), Some(UdpSocket::from_std(u))).unwrap();
        let waker = Arc::new(Waker::new(server.registry(), WAKE).unwrap());
        let thread = thread::spawn(move || server.run(|_| true).unwrap());
        Server {
            tcp,
            udp,
            waker,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.waker.wake().unwrap();
        self.thread.take().unwrap().join().unwrap();
    }
}

fn quick(workload: Workload, addr: SocketAddr) -> Config {
    let mut c = Config::new(workload, addr);
    c.warmup = Duration::from_millis(20);
    c.duration = Duration::from_millis(100);
    c.grace = Duration::from_millis(300);
    c
}

fn assert_clean(r: &Report) {
    assert!(r.is_clean(), "{}", r.to_json());
    assert!(r.rate > 0.0 && r.bytes > 0, "{}", r.to_json());
}

#[test]
fn every_workload_runs_clean_against_the_echo_server() {
    let s = Server::start();
    for (w, conns, size) in [
        (Workload::Stream, 4, 16384),
        (Workload::Pingpong, 4, 64),
        (Workload::Connect, 4, 64),
        (Workload::Udp, 1, 1200),
    ] {
        let mut c = quick(w, if w == Workload::Udp { s.udp } else { s.tcp });
        c.conns = conns;
        c.size = size;
        let r = reactor_bench::run(&c);
        assert_clean(&r);
        assert_eq!(r.workload, w.name());
        assert!(
            (r.seconds - c.duration.as_secs_f64()).abs() < 1e-9,
            "{}",
            r.to_json()
        );
        let latency = matches!(w, Workload::Pingpong | Workload::Connect);
        assert_eq!(r.p50_us.is_some(), latency, "{}", r.to_json());
        if w == Workload::Stream {
            assert_eq!(r.bytes, r.ops * size as u64 + r.bytes % size as u64);
        }
    }
    // The server keeps serving after clients come and go.
    let r = reactor_bench::run(&quick(Workload::Pingpong, s.tcp));
    assert_clean(&r);
}

/// An echo server that flips one bit in everything it returns.
fn corrupting_tcp_server() -> SocketAddr {
    let l = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { return };
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    buf[n - 1] ^= 1;
                    if conn.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn corrupted_echoes_are_errors_not_throughput() {
    let addr = corrupting_tcp_server();
    for w in [Workload::Stream, Workload::Pingpong, Workload::Connect] {
        let mut c = quick(w, addr);
        c.conns = 2;
        let r = reactor_bench::run(&c);
        assert!(!r.is_clean() && r.errors > 0, "{}", r.to_json());
        assert_eq!((r.ops, r.bytes), (0, 0), "{}", r.to_json());
    }
}

#[test]
fn a_silent_udp_server_means_lost_datagrams_and_no_rate() {
    // Bound but never answering: every window times out; the run still ends on time.
    let u = StdUdp::bind("127.0.0.1:0").unwrap();
    let c = quick(Workload::Udp, u.local_addr().unwrap());
    let r = reactor_bench::run(&c);
    assert!(!r.is_clean(), "{}", r.to_json());
    assert_eq!((r.ops, r.rate), (0, 0.0));
    assert!(r.lost >= 64, "{}", r.to_json());
}

#[test]
fn a_stalled_tcp_server_hits_the_hard_deadline() {
    // Accepts (via the backlog) but never reads: echoes stay outstanding past the grace.
    let l = StdListener::bind("127.0.0.1:0").unwrap();
    let mut c = quick(Workload::Pingpong, l.local_addr().unwrap());
    c.conns = 2;
    let start = std::time::Instant::now();
    let r = reactor_bench::run(&c);
    assert!(start.elapsed() < Duration::from_millis(1000));
    assert_eq!(r.ops, 0);
    assert!(
        r.error.as_deref().unwrap_or("").contains("hard deadline"),
        "{}",
        r.to_json()
    );
    drop(l);
}

#[test]
fn refused_connections_are_counted_not_fatal() {
    // A port with no listener: connect refuses every attempt.
    let port = StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut c = quick(Workload::Connect, port);
    c.conns = 2;
    let r = reactor_bench::run(&c);
    assert!(
        r.errors > 0 && r.ops == 0 && !r.is_clean(),
        "{}",
        r.to_json()
    );
}
