//! In-process smoke tests: the load generator against the echo server (threads, loopback),
//! and against deliberately broken servers, which must never look fast.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, UdpSocket as StdUdp};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use mio::net::{TcpListener, UdpSocket};
use mio::Waker;
use reactor_loadgen::args::{Config, Workload};
use reactor_loadgen::proxy::SpliceProxy;
use reactor_loadgen::report::Report;
use reactor_loadgen::server::{EchoServer, WAKE};

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
    // Long enough that a busy shared machine still completes some operations.
    c.warmup = Duration::from_millis(50);
    c.duration = Duration::from_millis(250);
    c.grace = Duration::from_millis(500);
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
        let r = reactor_loadgen::run(&c);
        assert_clean(&r);
        assert_eq!(r.workload, w.name());
        assert!(
            (r.seconds - c.duration.as_secs_f64()).abs() < 1e-9,
            "{}",
            r.to_json()
        );
        assert!(r.cpu_share.is_some_and(|c| c > 0.0), "{}", r.to_json());
        let latency = matches!(w, Workload::Pingpong | Workload::Connect);
        assert_eq!(r.p50_us.is_some(), latency, "{}", r.to_json());
        if w == Workload::Stream {
            assert_eq!(r.bytes, r.ops * size as u64 + r.bytes % size as u64);
        }
    }
    // The server keeps serving after clients come and go.
    let r = reactor_loadgen::run(&quick(Workload::Pingpong, s.tcp));
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
        let r = reactor_loadgen::run(&c);
        assert!(!r.is_clean() && r.errors > 0, "{}", r.to_json());
        assert_eq!((r.ops, r.bytes), (0, 0), "{}", r.to_json());
    }
}

#[test]
fn a_silent_udp_server_means_lost_datagrams_and_no_rate() {
    // Bound but never answering: every window times out; the run still ends on time.
    let u = StdUdp::bind("127.0.0.1:0").unwrap();
    let c = quick(Workload::Udp, u.local_addr().unwrap());
    let r = reactor_loadgen::run(&c);
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
    let r = reactor_loadgen::run(&c);
    assert!(start.elapsed() < c.warmup + c.duration + c.grace + Duration::from_millis(500));
    assert_eq!(r.ops, 0);
    assert!(
        r.error.as_deref().unwrap_or("").contains("hard deadline"),
        "{}",
        r.to_json()
    );
    drop(l);
}

/// The splice proxy on a thread, relaying to `upstream`; stops and joins on drop.
struct Proxy {
    addr: SocketAddr,
    open_pairs: Arc<AtomicUsize>,
    waker: Arc<Waker>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        let l = StdListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let mut proxy = SpliceProxy::new(TcpListener::from_std(l), upstream).unwrap();
        let waker = Arc::new(Waker::new(proxy.registry(), reactor_loadgen::proxy::WAKE).unwrap());
        let open_pairs = proxy.open_pairs();
        let thread = thread::spawn(move || proxy.run(|_| true).unwrap());
        Proxy {
            addr,
            open_pairs,
            waker,
            thread: Some(thread),
        }
    }
}

impl Proxy {
    /// Waits (with a deadline) until the proxy has closed every pair.
    fn assert_all_pairs_close(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while self.open_pairs.load(Ordering::Relaxed) > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{} pairs still open",
                self.open_pairs.load(Ordering::Relaxed)
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.waker.wake().unwrap();
        self.thread.take().unwrap().join().unwrap();
    }
}

#[test]
fn proxy_workloads_run_clean_through_the_splice_proxy() {
    let s = Server::start();
    let p = Proxy::start(s.tcp);
    for (w, conns) in [(Workload::Proxy, 4), (Workload::ProxyConnect, 8)] {
        let mut c = quick(w, p.addr);
        c.conns = conns;
        let r = reactor_loadgen::run(&c);
        assert_clean(&r);
        assert_eq!(r.workload, w.name());
    }
    // A 1 MiB message each way through the pipes, half-closed at the end.
    let mut conn = std::net::TcpStream::connect(p.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let sent: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 253) as u8).collect();
    let writer = {
        let mut conn = conn.try_clone().unwrap();
        let sent = sent.clone();
        thread::spawn(move || {
            conn.write_all(&sent).unwrap();
            conn.shutdown(std::net::Shutdown::Write).unwrap();
        })
    };
    let mut got = Vec::new();
    conn.read_to_end(&mut got).unwrap(); // EOF only after the echo of every byte
    writer.join().unwrap();
    assert!(
        got == sent,
        "echo through the proxy differs ({} bytes)",
        got.len()
    );
    drop(conn);
    // Every client's close (the load generator's and this one) was passed on upstream and
    // the echo server's close back: no pair is left behind.
    p.assert_all_pairs_close();
}

#[test]
fn a_refused_upstream_closes_the_client() {
    let closed = StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let p = Proxy::start(closed);
    let mut conn = std::net::TcpStream::connect(p.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = conn.write_all(b"hello");
    let mut buf = [0u8; 16];
    match conn.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("{n} bytes from a proxy with no upstream"),
        Err(e) => assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the client was left hanging: {e}"
        ),
    }
    // The loadgen sees it as errors, not throughput.
    let mut c = quick(Workload::ProxyConnect, p.addr);
    c.conns = 2;
    let r = reactor_loadgen::run(&c);
    assert!(r.errors > 0 && r.ops == 0, "{}", r.to_json());
    p.assert_all_pairs_close();
}

/// How the test HTTP server answers a request for `path`.
#[derive(Clone, Copy)]
enum Answer {
    Url,
    WrongBody,
    Close,
}

/// A thread-per-connection HTTP/1.1 server that answers every request as `answer` says.
fn http_server(answer: Answer) -> SocketAddr {
    let l = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { return };
            thread::spawn(move || {
                let mut pending = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&pending[..end]).into_owned();
                        pending.drain(..end + 4);
                        let path = head.split(' ').nth(1).unwrap_or("").to_string();
                        let reply = match answer {
                            Answer::Url => format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{path}",
                                path.len()
                            ),
                            Answer::WrongBody => {
                                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n/0/".to_string()
                            }
                            Answer::Close => format!(
                                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{path}",
                                path.len()
                            ),
                        };
                        if conn.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn http_workload_counts_only_correct_keep_alive_responses() {
    let mut c = quick(Workload::Http, http_server(Answer::Url));
    c.conns = 4;
    let r = reactor_loadgen::run(&c);
    assert_clean(&r);
    assert!(r.p50_us.is_some(), "{}", r.to_json());
    for bad in [Answer::WrongBody, Answer::Close] {
        let mut c = quick(Workload::Http, http_server(bad));
        c.conns = 2;
        let r = reactor_loadgen::run(&c);
        assert!(!r.is_clean() && r.errors > 0, "{}", r.to_json());
        assert_eq!(r.ops, 0, "{}", r.to_json());
    }
}

/// A UDP echo server that answers each batch it reads with one GSO send (the way a
/// server using `UDP_SEGMENT` does), so the load generator's GRO socket gets coalesced
/// echoes. Serves the first client only; ends a second after the last datagram.
fn gso_echo_server(size: usize) -> SocketAddr {
    use reactor_loadgen::mmsg::{recv_batch, send_batch, set_udp_segment, MAX_BATCH};
    use std::io::IoSlice;
    use std::os::fd::AsFd;
    let sock = StdUdp::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    thread::spawn(move || {
        sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        set_udp_segment(sock.as_fd(), size).unwrap();
        let mut first = vec![0u8; size + 1];
        let Ok((_, peer)) = sock.peek_from(&mut first) else {
            return;
        };
        sock.connect(peer).unwrap();
        let slot = size + 1;
        let mut buf = vec![0u8; slot * MAX_BATCH];
        let mut lens = [0usize; MAX_BATCH];
        let mut train = Vec::new();
        // Block for the first datagram of a batch (peek), then take all that wait.
        while sock.peek(&mut first).is_ok() {
            let n = recv_batch(sock.as_fd(), &mut buf, slot, &mut lens, None).unwrap();
            train.clear();
            for k in 0..n {
                train.extend_from_slice(&buf[k * slot..k * slot + lens[k]]);
            }
            let _ = send_batch(sock.as_fd(), &[IoSlice::new(&train)]);
        }
    });
    addr
}

#[test]
fn udp_gso_mode_splits_coalesced_echoes() {
    let mut c = quick(Workload::Udp, gso_echo_server(64));
    c.gso = true;
    let r = reactor_loadgen::run(&c);
    assert_clean(&r);
}

#[test]
fn udp_gso_mode_runs_clean_and_reports_cpu() {
    let s = Server::start();
    let mut c = quick(Workload::Udp, s.udp);
    c.gso = true;
    let r = reactor_loadgen::run(&c);
    assert_clean(&r);
    let (cpu, share) = (r.cpu_s.unwrap(), r.cpu_share.unwrap());
    assert!(cpu > 0.0 && share > 0.0 && share < 1.5, "{}", r.to_json());
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
    let r = reactor_loadgen::run(&c);
    assert!(
        r.errors > 0 && r.ops == 0 && !r.is_clean(),
        "{}",
        r.to_json()
    );
}
