//! UDP segmentation offloads on loopback: a `UDP_GRO` socket's coalesced buffers reach the
//! consumer as the datagrams that were sent; queued sends leave with `UDP_SEGMENT` (GSO) and the
//! peer receives the same datagrams as without it.

use reactor_core::wire::kind;
use reactor_core::sys::mmsg::RecvBatch;
use reactor_core::Outbox;
use reactor_core::socket2::{SockAddr, Socket};
use reactor_core::{sys::udp_offload, wire::address, Adopt, Notify, Reactor};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const INET: i32 = libc::AF_INET;

struct Channel(Mutex<Sender<()>>);

impl Notify for Channel {
    fn batch_ready(&self) {
        let _ = self.0.lock().unwrap().send(());
    }
}

/// A received datagram: its payload and its sender as the core encoded it.
#[derive(Debug, PartialEq)]
struct Datagram {
    bytes: Vec<u8>,
    from: SocketAddr,
}

struct Harness {
    reactor: Reactor,
    ready: Receiver<()>,
}

impl Harness {
    fn new() -> Harness {
        let (tx, rx) = channel();
        Harness { reactor: Reactor::start(Box::new(Channel(Mutex::new(tx)))).unwrap(), ready: rx }
    }

    /// The datagrams of port `id` taken from batches until there are `n` (bounded in time).
    fn datagrams(&self, id: u32, n: usize) -> Vec<Datagram> {
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while out.len() < n {
            while let Some(batch) = self.reactor.take_batch() {
                for (k, rid, a, b) in batch.records() {
                    assert_ne!(k, kind::DATAGRAM_ERROR, "a receive failed: errno {a}");
                    if k != kind::DATAGRAM || rid != id {
                        continue;
                    }
                    let (record, record_len) = address::decode(&batch.data, a as usize).unwrap();
                    let at = a as usize + record_len;
                    let host: std::net::IpAddr = std::str::from_utf8(&record.host).unwrap().parse().unwrap();
                    out.push(Datagram {
                        bytes: batch.data[at..at + b as usize].to_vec(),
                        from: SocketAddr::new(host, record.port),
                    });
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero() || out.len() >= n, "timed out with {} of {n} datagrams", out.len());
            if out.len() < n {
                let _ = self.ready.recv_timeout(left.min(Duration::from_millis(100)));
            }
        }
        out
    }
}

fn set_udp_option(sock: &impl AsRawFd, option: libc::c_int, value: libc::c_int) {
    // SAFETY: the value is a c_int alive across the call, passed with its size.
    let rc = unsafe {
        libc::setsockopt(sock.as_raw_fd(), libc::SOL_UDP, option, (&value as *const libc::c_int).cast(), 4)
    };
    assert_eq!(rc, 0, "setsockopt: {}", std::io::Error::last_os_error());
}

fn get_udp_option(sock: &impl AsRawFd, option: libc::c_int) -> libc::c_int {
    let mut value: libc::c_int = -1;
    let mut len = 4 as libc::socklen_t;
    // SAFETY: `value` is a writable c_int, `len` its size.
    let rc = unsafe { libc::getsockopt(sock.as_raw_fd(), libc::SOL_UDP, option, (&mut value as *mut libc::c_int).cast(), &mut len) };
    assert_eq!(rc, 0, "getsockopt: {}", std::io::Error::last_os_error());
    value
}

/// `count` datagrams of distinct bytes: datagram k is `len(k)` bytes of k + 1 (and then k + 2, ...).
fn payloads(sizes: &[usize]) -> Vec<Vec<u8>> {
    sizes.iter().enumerate().map(|(k, &n)| (0..n).map(|i| (k + 1 + i) as u8).collect()).collect()
}

/// Sends `datagrams` as one buffer with the socket option UDP_SEGMENT = `segment` (the kernel
/// cuts it; a GRO receiver on loopback gets it whole).
fn send_segmented(to: SocketAddr, segment: usize, datagrams: &[Vec<u8>]) -> UdpSocket {
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    set_udp_option(&sender, libc::UDP_SEGMENT, segment as libc::c_int);
    sender.send_to(&datagrams.concat(), to).unwrap();
    sender
}

fn gro_socket() -> UdpSocket {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp_offload::set_gro(udp.as_raw_fd(), true).unwrap();
    udp
}

#[test]
fn loopback_hands_a_gro_socket_the_segmented_buffer_whole() {
    // The premise of the tests below, checked with a plain recvmsg of our own.
    let udp = gro_socket();
    let sent = payloads(&[64; 10]);
    let _sender = send_segmented(udp.local_addr().unwrap(), 64, &sent);
    let mut recv = RecvBatch::new(udp_offload::GRO_BUFFER, 1);
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1];
    udp.peek(&mut buf).unwrap(); // waits for it
    assert_eq!(recv.recv(udp.as_raw_fd()).unwrap(), 1);
    let (bytes, _, segment) = recv.message(0);
    assert_eq!((bytes.len(), segment), (640, 64));
    assert_eq!(bytes, sent.concat().as_slice());
}

#[test]
fn a_coalesced_buffer_reaches_the_consumer_as_its_datagrams() {
    let h = Harness::new();
    let udp = gro_socket();
    let id = h.reactor.adopt(udp.as_raw_fd(), INET, Adopt::Datagram { max_packet: 8192 }).unwrap();
    let sent = payloads(&[64; 10]);
    let sender = send_segmented(udp.local_addr().unwrap(), 64, &sent);
    let got = h.datagrams(id, 10);
    let from = sender.local_addr().unwrap();
    assert_eq!(got, sent.into_iter().map(|bytes| Datagram { bytes, from }).collect::<Vec<_>>());
}

#[test]
fn a_shorter_last_segment_and_several_senders_keep_their_lengths_and_addresses() {
    let h = Harness::new();
    let udp = gro_socket();
    let id = h.reactor.adopt(udp.as_raw_fd(), INET, Adopt::Datagram { max_packet: 8192 }).unwrap();
    let to = udp.local_addr().unwrap();
    let first = payloads(&[64, 64, 22]);
    let second = payloads(&[100, 100, 100, 1]);
    let a = send_segmented(to, 64, &first);
    let got_a = h.datagrams(id, 3);
    let b = send_segmented(to, 100, &second);
    let got_b = h.datagrams(id, 4);
    let expect = |sent: Vec<Vec<u8>>, from: SocketAddr| sent.into_iter().map(|bytes| Datagram { bytes, from }).collect::<Vec<_>>();
    assert_eq!(got_a, expect(first, a.local_addr().unwrap()));
    assert_eq!(got_b, expect(second, b.local_addr().unwrap()));
}

#[test]
fn each_datagram_of_a_coalesced_buffer_is_truncated_to_max_packet() {
    let h = Harness::new();
    let udp = gro_socket();
    let id = h.reactor.adopt(udp.as_raw_fd(), INET, Adopt::Datagram { max_packet: 40 }).unwrap();
    let sent = payloads(&[64, 64, 30]);
    let _sender = send_segmented(udp.local_addr().unwrap(), 64, &sent);
    let got: Vec<Vec<u8>> = h.datagrams(id, 3).into_iter().map(|d| d.bytes).collect();
    assert_eq!(got, vec![sent[0][..40].to_vec(), sent[1][..40].to_vec(), sent[2].clone()]);
}

#[test]
fn without_gro_the_reactor_leaves_the_option_off_and_the_callers_fd_gets_whole_datagrams() {
    let h = Harness::new();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let id = h.reactor.adopt(udp.as_raw_fd(), INET, Adopt::Datagram { max_packet: 8192 }).unwrap();
    assert_eq!(get_udp_option(&udp, libc::UDP_GRO), 0, "adoption must not turn GRO on");
    // Both the caller (on its own fd) and the reactor read the same queue: every datagram goes to
    // one of them, and each must be one whole datagram.
    let sent = payloads(&[64; 10]);
    let _sender = send_segmented(udp.local_addr().unwrap(), 64, &sent);
    let mut caller = Vec::new();
    let mut reactor = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while caller.len() + reactor.len() < sent.len() {
        assert!(Instant::now() < deadline, "timed out: caller {caller:?}, reactor {reactor:?}");
        let mut buf = [0u8; 2048];
        match udp.recv(&mut buf) {
            Ok(n) => caller.push(buf[..n].to_vec()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {} // non-blocking since adoption
            Err(e) => panic!("recv: {e}"),
        }
        while let Some(batch) = h.reactor.take_batch() {
            for (k, rid, a, b) in batch.records() {
                if k == kind::DATAGRAM && rid == id {
                    let (_, record_len) = address::decode(&batch.data, a as usize).unwrap();
                    let at = a as usize + record_len;
                    reactor.push(batch.data[at..at + b as usize].to_vec());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut all: Vec<Vec<u8>> = caller.into_iter().chain(reactor).collect();
    all.sort();
    let mut expected = sent.clone();
    expected.sort();
    assert_eq!(all, expected);
}

#[test]
fn gro_turned_on_after_adoption_is_noticed() {
    let h = Harness::new();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let id = h.reactor.adopt(udp.as_raw_fd(), INET, Adopt::Datagram { max_packet: 8192 }).unwrap();
    udp_offload::set_gro(udp.as_raw_fd(), true).unwrap();
    let sent = payloads(&[64; 10]);
    let sender = send_segmented(udp.local_addr().unwrap(), 64, &sent);
    let from = sender.local_addr().unwrap();
    assert_eq!(h.datagrams(id, 10), sent.into_iter().map(|bytes| Datagram { bytes, from }).collect::<Vec<_>>());
}

// ---- GSO on send ----

fn outbox() -> (Outbox, UdpSocket) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mine = sock.try_clone().unwrap();
    mine.set_nonblocking(true).unwrap();
    (Outbox::new(Arc::new(Socket::from(std::os::fd::OwnedFd::from(mine))), INET), sock)
}

/// Every message waiting on `sock` as (bytes, GRO segment size), until `n` datagrams' worth.
fn receive(sock: &UdpSocket, n: usize) -> Vec<(Vec<u8>, usize)> {
    sock.set_nonblocking(true).unwrap();
    let mut recv = RecvBatch::new(udp_offload::GRO_BUFFER, 8);
    let mut out = Vec::new();
    let mut datagrams = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while datagrams < n {
        assert!(Instant::now() < deadline, "timed out with {out:?}");
        match recv.recv(sock.as_raw_fd()) {
            Ok(k) => {
                for i in 0..k {
                    let (bytes, _, segment) = recv.message(i);
                    datagrams += udp_offload::segments(bytes.len(), segment).count();
                    out.push((bytes.to_vec(), segment));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("recvmmsg: {e}"),
        }
    }
    out
}

#[test]
fn queued_datagrams_of_one_size_to_one_peer_leave_as_one_gso_send() {
    let (mut out, _) = outbox();
    let gro_peer = gro_socket();
    let to = SockAddr::from(gro_peer.local_addr().unwrap());
    let sent = payloads(&[64; 10]);
    for d in &sent {
        out.send(d, Some(to.clone()), true).unwrap();
    }
    assert!(out.flush().is_empty());
    // A GRO receiver on loopback gets a GSO send whole: one message of ten segments.
    assert_eq!(receive(&gro_peer, 10), vec![(sent.concat(), 64)]);
}

#[test]
fn a_plain_peer_receives_the_same_datagrams_in_order_with_and_without_gso() {
    let (mut out, _) = outbox();
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (to_a, to_b) = (SockAddr::from(a.local_addr().unwrap()), SockAddr::from(b.local_addr().unwrap()));
    // Runs broken by size, by destination, by a shorter datagram, an empty one, and a run
    // longer than a GSO send may carry.
    let for_a = payloads(&[64, 64, 64, 20, 100, 100, 0, 7, 7, 7]);
    let for_b = payloads(&[64; 70]);
    let mut b_sent = 0;
    for (k, d) in for_a.iter().enumerate() {
        out.send(d, Some(to_a.clone()), true).unwrap();
        // Interleave: the datagrams to b split a's runs.
        if k % 3 == 2 {
            for d in &for_b[b_sent..b_sent + 20] {
                out.send(d, Some(to_b.clone()), true).unwrap();
            }
            b_sent += 20;
        }
    }
    for d in &for_b[b_sent..] {
        out.send(d, Some(to_b.clone()), true).unwrap();
    }
    assert!(out.flush().is_empty());
    let plain = |got: Vec<(Vec<u8>, usize)>| got.into_iter().map(|(bytes, segment)| { assert_eq!(segment, 0); bytes }).collect::<Vec<_>>();
    assert_eq!(plain(receive(&a, for_a.len())), for_a);
    assert_eq!(plain(receive(&b, for_b.len())), for_b);
    assert_eq!(out.dropped, 0);
}

#[test]
fn a_connected_port_sends_gso_runs_to_its_peer() {
    let (mut out, sock) = outbox();
    let peer = gro_socket();
    sock.connect(peer.local_addr().unwrap()).unwrap();
    let sent = payloads(&[1200, 1200, 1200, 500]);
    for d in &sent {
        out.send(d, None, true).unwrap();
    }
    assert!(out.flush().is_empty());
    assert_eq!(receive(&peer, 4), vec![(sent.concat(), 1200)]);
}

#[test]
fn a_kernel_that_refuses_gso_gets_the_datagrams_one_by_one() {
    let (mut out, sock) = outbox();
    // Without UDP checksums (SO_NO_CHECK) the kernel refuses GSO sends with EINVAL.
    let on: libc::c_int = 1;
    // SAFETY: the value is a c_int alive across the call, passed with its size.
    let rc = unsafe { libc::setsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_NO_CHECK, (&on as *const libc::c_int).cast(), 4) };
    assert_eq!(rc, 0);
    let peer = gro_socket();
    let to = SockAddr::from(peer.local_addr().unwrap());
    for round in 0..2 {
        let sent = payloads(&[64; 10]);
        for d in &sent {
            out.send(d, Some(to.clone()), true).unwrap();
        }
        assert!(out.flush().is_empty(), "round {round}");
        let got = receive(&peer, 10);
        assert_eq!(got, sent.into_iter().map(|d| (d, 0)).collect::<Vec<_>>(), "round {round}");
    }
    assert_eq!(out.dropped, 0);
}

#[test]
fn gro_turned_on_unnoticed_loses_no_datagram_silently() {
    // A coalesced buffer larger than the receive slot (max_packet, before GRO is noticed): the
    // kernel cuts it; what is lost is counted, and from then on buffers are received whole.
    let h = Harness::new();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let id = h.reactor.adopt(udp.as_raw_fd(), INET, Adopt::Datagram { max_packet: 100 }).unwrap();
    udp_offload::set_gro(udp.as_raw_fd(), true).unwrap();
    let first = payloads(&[64; 10]);
    let sender = send_segmented(udp.local_addr().unwrap(), 64, &first);
    let got = h.datagrams(id, 1);
    assert_eq!(got[0].bytes, first[0]);
    // The second datagram was only half received: it counts as lost with the eight after it.
    assert_eq!(h.reactor.dropped_datagrams(id), 9);
    let second = payloads(&[64; 10]);
    sender.send_to(&second.concat(), udp.local_addr().unwrap()).unwrap();
    let got: Vec<Vec<u8>> = h.datagrams(id, 10).into_iter().map(|d| d.bytes).collect();
    assert_eq!(got, second);
    assert_eq!(h.reactor.dropped_datagrams(id), 9);
}

#[test]
fn ipv6_coalesced_buffers_and_gso_sends_work_alike() {
    let h = Harness::new();
    let udp = UdpSocket::bind("[::1]:0").unwrap();
    udp_offload::set_gro(udp.as_raw_fd(), true).unwrap();
    let id = h.reactor.adopt(udp.as_raw_fd(), libc::AF_INET6, Adopt::Datagram { max_packet: 8192 }).unwrap();
    let sender = UdpSocket::bind("[::1]:0").unwrap();
    set_udp_option(&sender, libc::UDP_SEGMENT, 100);
    let sent = payloads(&[100, 100, 100, 100, 3]);
    sender.send_to(&sent.concat(), udp.local_addr().unwrap()).unwrap();
    let from = sender.local_addr().unwrap();
    assert_eq!(h.datagrams(id, 5), sent.into_iter().map(|bytes| Datagram { bytes, from }).collect::<Vec<_>>());

    let mine = UdpSocket::bind("[::1]:0").unwrap();
    mine.set_nonblocking(true).unwrap();
    let mut out = Outbox::new(Arc::new(Socket::from(std::os::fd::OwnedFd::from(mine))), libc::AF_INET6);
    let peer = UdpSocket::bind("[::1]:0").unwrap();
    udp_offload::set_gro(peer.as_raw_fd(), true).unwrap();
    let replies = payloads(&[1000; 8]);
    for d in &replies {
        out.send(d, Some(SockAddr::from(peer.local_addr().unwrap())), true).unwrap();
    }
    assert!(out.flush().is_empty());
    assert_eq!(receive(&peer, 8), vec![(replies.concat(), 1000)]);
}
