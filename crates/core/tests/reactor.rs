//! The core on real sockets over loopback and UNIX pairs: adopt, accept, read, write, close.

mod common;

use common::{listener, Event, Harness};

use reactor_core::wire::kind;
use reactor_core::socket2::{Domain, Socket, Type};
use reactor_core::wire::bits;
use reactor_core::{Adopt, Reactor, RelayOptions, StreamInput};
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const INET: i32 = libc::AF_INET;


#[test]
fn accepts_echoes_and_sees_eof() {
    let mut h = Harness::new();
    let (l, addr) = listener();
    let port = h.reactor.adopt(l.as_raw_fd(), INET, Adopt::Listener).unwrap();
    drop(l); // the caller may close its fd at once
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"ping").unwrap();
    let ev = h.until(|ev| Harness::data_of(ev, 2) == b"ping");
    assert_eq!((ev[0].kind, ev[0].id, ev[0].a), (kind::ACCEPT, port, 2));
    assert_eq!(h.reactor.write(2, b"pong"), 0, "a write the kernel takes at once queues nothing");
    let mut buf = [0u8; 4];
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong");
    drop(client);
    h.until(|ev| ev.iter().any(|e| e.kind == kind::EOF && e.id == 2));
    assert!(lose_connection(&h.reactor, 2));
}

#[test]
fn stopping_a_port_leaves_the_callers_fd_listening() {
    let h = Harness::new();
    let (l, addr) = listener();
    let port = h.reactor.adopt(l.as_raw_fd(), INET, Adopt::Listener).unwrap();
    h.reactor.close_port(port);
    let _client = TcpStream::connect(addr).unwrap();
    l.set_nonblocking(false).unwrap();
    let (_conn, _) = l.accept().unwrap();
}

#[test]
fn a_ports_socket_can_be_duplicated_after_the_callers_fd_closed_and_not_after_its_close() {
    let h = Harness::new();
    let (l, addr) = listener();
    let port = h.reactor.adopt(l.as_raw_fd(), INET, Adopt::Listener).unwrap();
    drop(l);
    let dup = h.reactor.duplicate_socket(port).unwrap();
    // SAFETY: F_GETFD only reads the flags of a descriptor we own.
    let flags = unsafe { libc::fcntl(dup.as_raw_fd(), libc::F_GETFD) };
    assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC, "the duplicate is close-on-exec");
    let dup = Socket::from(dup);
    assert_eq!(dup.local_addr().unwrap().as_socket(), Some(addr), "the same socket");
    h.reactor.close_port(port);
    // The duplicate still listens once the port is closed: it is the caller's.
    let _client = TcpStream::connect(addr).unwrap();
    dup.set_nonblocking(false).unwrap();
    let (_conn, _) = dup.accept().unwrap();
    assert_eq!(h.reactor.duplicate_socket(port).unwrap_err().raw_os_error(), Some(libc::EBADF));
}

#[test]
fn lose_connection_flushes_queued_bytes_then_closes() {
    let mut h = Harness::new();
    let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    let id = h.reactor.adopt(a.as_raw_fd(), libc::AF_UNIX, Adopt::Connection).unwrap();
    drop(a);
    let payload: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    let queued = h.reactor.write(id, &payload);
    assert!(queued > 0, "the peer is not reading, so the kernel cannot take 4 MB at once");
    assert_eq!(h.reactor.buffer_size(id), queued);
    assert!(!lose_connection(&h.reactor, id));
    let mut got = Vec::new();
    (&b).read_to_end(&mut got).unwrap(); // EOF only after every byte
    assert!(got == payload);
    let ev = h.until(|ev| ev.iter().any(|e| e.kind == kind::CLOSED));
    assert_eq!(ev.last().unwrap().a, 0, "orderly close");
}

#[test]
fn paused_connections_are_not_read_until_resumed() {
    let mut h = Harness::new();
    let (a, mut b) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    let id = h.reactor.adopt(a.as_raw_fd(), libc::AF_UNIX, Adopt::Connection).unwrap();
    h.reactor.stream_input(id, StreamInput::Pause);
    b.write_all(b"held").unwrap();
    // A datagram port adopted afterwards proves the loop ran past the paused connection.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dport = h.reactor.adopt(udp.as_raw_fd(), INET, Adopt::Datagram { max_packet: 100 }).unwrap();
    UdpSocket::bind("127.0.0.1:0").unwrap().send_to(b"x", udp.local_addr().unwrap()).unwrap();
    let ev = h.until(|ev| ev.iter().any(|e| e.kind == kind::DATAGRAM && e.id == dport));
    assert!(Harness::data_of(&ev, id).is_empty());
    h.reactor.stream_input(id, StreamInput::Resume);
    h.until(|ev| Harness::data_of(ev, id) == b"held");
}

#[test]
fn datagrams_carry_the_sender_and_are_truncated() {
    let mut h = Harness::new();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let id = h.reactor.adopt(udp.as_raw_fd(), INET, Adopt::Datagram { max_packet: 4 }).unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(b"abcdefgh", udp.local_addr().unwrap()).unwrap();
    let ev = h.until(|ev| !ev.is_empty());
    assert_eq!((ev[0].kind, ev[0].id, ev[0].bytes.as_slice()), (kind::DATAGRAM, id, &b"abcd"[..]));
}

#[test]
fn abort_resets_the_peer_when_ours_is_the_last_reference() {
    let h = Harness::new();
    let (a, mut b) = {
        let (l, addr) = listener();
        let c = TcpStream::connect(addr).unwrap();
        (l.accept().unwrap().0, c)
    };
    let id = h.reactor.adopt(a.as_raw_fd(), INET, Adopt::Connection).unwrap();
    drop(a);
    h.reactor.abort(id);
    let mut buf = [0u8; 16];
    // FIN then RST: the peer's read either reports the reset, or ends and the next one errors.
    let first = b.read(&mut buf);
    let reset = match first {
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => b.write_all(b"x").and_then(|_| b.write_all(b"y")).is_err(),
    };
    assert!(reset, "peer saw a reset");
}

#[test]
fn closing_while_the_caller_holds_its_fd_still_sends_eof() {
    let h = Harness::new();
    let (a, mut b) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    let id = h.reactor.adopt(a.as_raw_fd(), libc::AF_UNIX, Adopt::Connection).unwrap();
    assert!(lose_connection(&h.reactor, id));
    let mut got = Vec::new();
    b.read_to_end(&mut got).unwrap();
    assert!(got.is_empty());
    drop(a);
}

#[test]
fn a_slow_consumer_bounds_what_is_read() {
    let mut h = Harness::new();
    let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    let _id = h.reactor.adopt(a.as_raw_fd(), libc::AF_UNIX, Adopt::Connection).unwrap();
    let total = 16 * 1024 * 1024;
    let writer = std::thread::spawn(move || {
        let chunk = vec![7u8; 64 * 1024];
        let mut sent = 0;
        while sent < total {
            (&b).write_all(&chunk).unwrap();
            sent += chunk.len();
        }
        b
    });
    // Nobody takes batches for a while (no event marks "the loop has stalled", so this one wait is
    // a fixed one): the loop must stop at the batch cap, not read all 16 MiB into memory.
    std::thread::sleep(Duration::from_millis(200));
    let first = h.reactor.take_batch().expect("a batch is waiting");
    let first_len = first.data.len() + first.chunks.iter().map(Vec::len).sum::<usize>();
    assert!(first_len <= reactor_core::DATA_CAP + 64 * 1024, "batch bounded: {first_len}");
    // Count bytes as they come (collecting them all on every batch would cost O(n²)).
    let ev = h.until(|ev| first_len + ev.iter().map(|e| e.bytes.len()).sum::<usize>() >= total);
    assert!(ev.iter().all(|e| e.bytes.iter().all(|&x| x == 7)));
    assert!(first.chunks.iter().all(|c| c.iter().all(|&x| x == 7)));
    let _b = writer.join().unwrap();
}

#[test]
fn eof_that_arrived_while_paused_follows_the_data_after_resume() {
    let mut h = Harness::new();
    let (a, mut b) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    let id = h.reactor.adopt(a.as_raw_fd(), libc::AF_UNIX, Adopt::Connection).unwrap();
    h.reactor.stream_input(id, StreamInput::Pause);
    b.write_all(b"tail").unwrap();
    b.shutdown(std::net::Shutdown::Write).unwrap();
    // Let the loop see both edges while paused: a datagram port adopted afterwards proves it ran.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dport = h.reactor.adopt(udp.as_raw_fd(), INET, Adopt::Datagram { max_packet: 100 }).unwrap();
    UdpSocket::bind("127.0.0.1:0").unwrap().send_to(b"x", udp.local_addr().unwrap()).unwrap();
    h.until(|ev| ev.iter().any(|e| e.kind == kind::DATAGRAM && e.id == dport));
    h.reactor.stream_input(id, StreamInput::Resume);
    let ev = h.until(|ev| ev.iter().any(|e| e.kind == kind::EOF && e.id == id));
    assert_eq!(Harness::data_of(&ev, id), b"tail");
}

#[test]
fn datagrams_the_kernel_drops_while_nobody_reads_are_counted() {
    let mut h = Harness::new();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = udp.local_addr().unwrap();
    let id = h.reactor.adopt(udp.as_raw_fd(), INET, Adopt::Datagram { max_packet: 2048 }).unwrap();
    // A burst far larger than the receive queue, while nobody takes batches: once the batch is
    // full the core stops reading, and the kernel drops the excess at the socket (counted).
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let payload = [0u8; 1024];
    for _ in 0..20_000 {
        let _ = sender.send_to(&payload, to);
    }
    let received = {
        let ev = h.until(|ev| ev.iter().filter(|e| e.kind == kind::DATAGRAM).count() > 0);
        ev.iter().filter(|e| e.kind == kind::DATAGRAM).count() as u64
    };
    // Drain what is left; then the books balance: everything sent was delivered or counted.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut delivered = received;
    loop {
        while let Some(b) = h.reactor.take_batch() {
            delivered += b.records().filter(|r| r.0 == kind::DATAGRAM).count() as u64;
        }
        if delivered + h.reactor.dropped_datagrams(id) >= 20_000 || Instant::now() > deadline {
            break;
        }
        let _ = h.ready.recv_timeout(Duration::from_millis(50));
    }
    assert_eq!(delivered + h.reactor.dropped_datagrams(id), 20_000);
    assert!(h.reactor.dropped_datagrams(id) > 0, "a 20,000-datagram burst overflows the receive queue");
}

/// `loseConnection` as the consumer makes it: asked for, then released at the end of its turn.
/// True when the connection closed at once (nothing was queued).
fn lose_connection(reactor: &Reactor, id: u32) -> bool {
    reactor.stream_input(id, StreamInput::LoseConnection);
    reactor.stream_input(id, StreamInput::ReleaseClose) == bits::CLOSED
}

fn counts_of(ev: &Event) -> (u64, u64) {
    (u64::from_le_bytes(ev.bytes[..8].try_into().unwrap()), u64::from_le_bytes(ev.bytes[8..].try_into().unwrap()))
}

/// Two adopted connections (each one end of a socketpair) and their peers.
fn relay_pair(h: &Harness) -> (u32, Socket, u32, Socket) {
    let (a, a_peer) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    let (b, b_peer) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    let ia = h.reactor.adopt(a.as_raw_fd(), libc::AF_UNIX, Adopt::Connection).unwrap();
    let ib = h.reactor.adopt(b.as_raw_fd(), libc::AF_UNIX, Adopt::Connection).unwrap();
    (ia, a_peer, ib, b_peer)
}

#[test]
fn a_relay_moves_bytes_both_ways_keeps_half_close_and_reuses_its_pipes() {
    let mut h = Harness::new();
    let (ia, a_peer, ib, b_peer) = relay_pair(&h);
    assert_eq!(h.reactor.write(ib, b"queued-before;"), 0);
    let rid = h.reactor.relay(ia, ib, &[b"held-a;"], &[], RelayOptions { cap: 64 * 1024, idle_timeout: None }).unwrap();
    assert!(h.reactor.relay(ia, ib, &[], &[], RelayOptions { cap: 1024, idle_timeout: None }).is_err(), "already relaying");
    let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let writer = {
        let a_peer = a_peer.try_clone().unwrap();
        let payload = payload.clone();
        std::thread::spawn(move || {
            (&a_peer).write_all(&payload).unwrap();
            a_peer.shutdown(std::net::Shutdown::Write).unwrap();
        })
    };
    let mut got = Vec::new();
    (&b_peer).read_to_end(&mut got).unwrap(); // EOF: a's FIN became b's
    writer.join().unwrap();
    assert_eq!(&got[..14], b"queued-before;");
    assert_eq!(&got[14..21], b"held-a;");
    assert!(got[21..] == payload[..], "every byte, in order");
    // The other direction still works after the half-close.
    (&b_peer).write_all(b"reply").unwrap();
    b_peer.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    (&a_peer).read_to_end(&mut back).unwrap();
    assert_eq!(back, b"reply");
    let ev = h.until(|ev| ev.iter().any(|e| e.kind == kind::RELAY_ENDED));
    let closed: Vec<_> = ev.iter().filter(|e| e.kind == kind::CLOSED).map(|e| (e.id, e.a)).collect();
    assert_eq!(closed, vec![(ia, 0), (ib, 0)]);
    let end = ev.iter().find(|e| e.kind == kind::RELAY_ENDED).unwrap();
    assert_eq!(end.id, rid);
    assert_eq!(counts_of(end), (payload.len() as u64 + 7, 5));
    assert!(Harness::data_of(&ev, ia).is_empty() && Harness::data_of(&ev, ib).is_empty(), "nothing reached the consumer");
    // Copy small, splice large: the bulk direction moved to a pipe (kept for the next relay), the
    // five-byte reply was copied (no pipe at all).
    assert_eq!(h.reactor.pooled_pipes(), 1, "one pipe, from the bulk direction");
    let (ia, ap, ib, bp) = relay_pair(&h);
    h.reactor.relay(ia, ib, &[], &[], RelayOptions { cap: 64 * 1024, idle_timeout: None }).unwrap();
    assert_eq!(h.reactor.pooled_pipes(), 1, "a relay starts by copying: no pipe taken");
    let bulk = vec![7u8; 1 << 20];
    let writer = std::thread::spawn(move || (&ap).write_all(&bulk).unwrap());
    let mut got = vec![0u8; 1 << 20];
    (&bp).read_exact(&mut got).unwrap();
    writer.join().unwrap();
    assert_eq!(h.reactor.pooled_pipes(), 0, "bulk bytes take the pooled pipe");
}

#[test]
fn a_reset_on_one_side_ends_the_relay_for_both_with_its_errno() {
    let mut h = Harness::new();
    let (a, a_peer) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    let (ia, _, ib, b_peer) = {
        let (b, b_peer) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
        let ia = h.reactor.adopt(a.as_raw_fd(), libc::AF_UNIX, Adopt::Connection).unwrap();
        let ib = h.reactor.adopt(b.as_raw_fd(), libc::AF_UNIX, Adopt::Connection).unwrap();
        (ia, (), ib, b_peer)
    };
    drop(a);
    h.reactor.relay(ia, ib, &[], &[], RelayOptions { cap: 4096, idle_timeout: None }).unwrap();
    (&a_peer).write_all(b"last words").unwrap();
    // b's peer sends to a, whose peer is gone: the write to a fails (EPIPE / ECONNRESET).
    drop(a_peer);
    (&b_peer).write_all(b"to nobody").unwrap();
    let ev = h.until(|ev| ev.iter().any(|e| e.kind == kind::RELAY_ENDED));
    let closed: Vec<_> = ev.iter().filter(|e| e.kind == kind::CLOSED).collect();
    assert_eq!(closed.len(), 2, "each side is reported once: {ev:?}");
    assert!(closed.iter().all(|e| e.a != 0), "both with the error: {ev:?}");
    let mut got = Vec::new();
    let _ = (&b_peer).read_to_end(&mut got);
    assert_eq!(got, b"last words", "what was read from the side that failed still arrived");
}

#[test]
fn an_outbound_connect_completes_with_the_peer_address_or_fails_with_its_errno() {
    let mut h = Harness::new();
    let (l, addr) = listener();
    let id = h.reactor.connect(&addr.into(), None).unwrap();
    let ev = h.until(|ev| ev.iter().any(|e| e.kind == kind::CONNECTED));
    assert_eq!(ev.last().unwrap().id, id);
    let (mut server, _) = l.accept().unwrap();
    server.write_all(b"hi").unwrap();
    h.until(|ev| Harness::data_of(ev, id) == b"hi");
    drop(l);
    let refused = h.reactor.connect(&addr.into(), None).unwrap();
    let ev = h.until(|ev| ev.iter().any(|e| e.kind == kind::CLOSED && e.id == refused));
    assert_eq!(ev.last().unwrap().a, libc::ECONNREFUSED as u32);
    let missing = reactor_core::socket2::SockAddr::unix("/nonexistent/reactor-socket.sock").unwrap();
    assert_eq!(h.reactor.connect(&missing, None).unwrap_err().raw_os_error(), Some(libc::ENOENT));
}

#[test]
fn descriptors_pass_both_ways_on_a_unix_connection_and_not_on_tcp() {
    use reactor_core::sys::scm;
    use std::os::fd::{AsFd, AsRawFd as _};
    let mut h = Harness::new();
    let (a, peer) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    let id = h.reactor.adopt(a.as_raw_fd(), libc::AF_UNIX, Adopt::Connection).unwrap();
    drop(a);
    let (x, mut x_peer) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    h.reactor.send_file_descriptor(id, x.as_raw_fd()).unwrap();
    drop(x); // the reactor sends its own duplicate
    assert_eq!(h.reactor.write(id, b"F"), 0);
    let mut buf = [0u8; 8];
    let got = scm::recv_with_fds(peer.as_fd(), &mut buf, 4).unwrap();
    assert_eq!((&buf[..got.bytes], got.fds.len()), (&b"F"[..], 1));
    let passed = Socket::from(got.fds.into_iter().next().unwrap());
    (&passed).write_all(b"through the passed fd").unwrap();
    let mut text = [0u8; 21];
    x_peer.read_exact(&mut text).unwrap();
    assert_eq!(&text, b"through the passed fd");

    let (y, _y_peer) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    scm::send_with_fds(peer.as_fd(), b"G", &[y.as_fd()]).unwrap();
    let ev = h.until(|ev| Harness::data_of(ev, id) == b"G");
    let kinds: Vec<u32> = ev.iter().filter(|e| e.id == id).map(|e| e.kind).collect();
    assert_eq!(kinds, vec![kind::FDS, kind::DATA], "the descriptor comes before the data it came with");

    assert_eq!(h.reactor.send_file_descriptor(id, -1).unwrap_err().raw_os_error(), Some(libc::EBADF));
    let (l, addr) = listener();
    let tcp = TcpStream::connect(addr).unwrap();
    let _server = l.accept().unwrap();
    let tid = h.reactor.adopt(tcp.as_raw_fd(), INET, Adopt::Connection).unwrap();
    assert_eq!(h.reactor.send_file_descriptor(tid, 0).unwrap_err().raw_os_error(), Some(libc::ENOTSUP));
}

#[test]
fn descriptors_in_a_batch_nobody_takes_are_closed_with_the_reactor() {
    use reactor_core::sys::scm;
    use std::os::fd::AsFd;
    let h = Harness::new();
    let (a, peer) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    h.reactor.adopt(a.as_raw_fd(), libc::AF_UNIX, Adopt::Connection).unwrap();
    drop(a);
    // `x` travels; `x_peer` reads EOF once the last copy of `x` is closed.
    let (x, x_peer) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    scm::send_with_fds(peer.as_fd(), b"F", &[x.as_fd()]).unwrap();
    drop(x);
    // The announcement says the FDS record is in the loop's batch; nobody takes it.
    h.ready.recv_timeout(Duration::from_secs(20)).expect("a batch is announced");
    h.reactor.close();
    x_peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!((&x_peer).read(&mut buf).expect("EOF, not a timeout: the received copy is closed"), 0);
}

#[test]
fn an_idle_relay_is_aborted_by_the_core_after_its_timeout() {
    let mut h = Harness::new();
    let (a, _a_peer) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    let (b, _b_peer) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    let ia = h.reactor.adopt(a.as_raw_fd(), libc::AF_UNIX, Adopt::Connection).unwrap();
    let ib = h.reactor.adopt(b.as_raw_fd(), libc::AF_UNIX, Adopt::Connection).unwrap();
    drop((a, b));
    let started = Instant::now();
    h.reactor.relay(ia, ib, &[], &[], RelayOptions { cap: 4096, idle_timeout: Some(Duration::from_millis(150)) }).unwrap();
    let ev = h.until(|ev| ev.iter().any(|e| e.kind == kind::RELAY_ENDED));
    assert!(started.elapsed() >= Duration::from_millis(150), "not before the timeout");
    for id in [ia, ib] {
        assert!(ev.iter().any(|e| e.kind == kind::CLOSED && e.id == id && e.a == libc::ETIMEDOUT as u32), "{id} timed out: {ev:?}");
    }
}
