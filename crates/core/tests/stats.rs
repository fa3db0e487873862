//! `stats()` on real sockets: the counters match what the test did, in both drivers.

use reactor_core::{wire::kind, Batch};
use reactor_core::Consumer;
use reactor_core::Stats;
use reactor_core::wire::bits;
use reactor_core::{Adopt, Notify, Reactor, StreamInput};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const INET: i32 = libc::AF_INET;

/// Counts announcements as the consumer receives them.
struct Counted(Mutex<Sender<()>>, Arc<AtomicU64>);

impl Notify for Counted {
    fn batch_ready(&self) {
        self.1.fetch_add(1, Ordering::SeqCst);
        let _ = self.0.lock().unwrap().send(());
    }
}

struct Harness {
    reactor: Reactor,
    ready: Receiver<()>,
    announced: Arc<AtomicU64>,
    /// Records and stream bytes taken so far.
    records: u64,
    batches: u64,
    stream_bytes: u64,
    datagrams: u64,
}

impl Harness {
    fn new() -> Harness {
        let (tx, rx) = channel();
        let announced = Arc::new(AtomicU64::new(0));
        let reactor = Reactor::start(Box::new(Counted(Mutex::new(tx), announced.clone()))).unwrap();
        Harness { reactor, ready: rx, announced, records: 0, batches: 0, stream_bytes: 0, datagrams: 0 }
    }

    fn count(&mut self, batch: &Batch) {
        self.batches += 1;
        self.records += batch.len() as u64;
        for (k, _, _, b) in batch.records() {
            match k {
                kind::DATA | kind::DATA_CHUNK => self.stream_bytes += u64::from(b),
                kind::DATAGRAM => self.datagrams += 1,
                _ => {}
            }
        }
    }

    /// Takes batches until `done` holds for the stats (bounded).
    fn until(&mut self, what: &str, mut done: impl FnMut(&Stats) -> bool) -> Stats {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            while let Some(batch) = self.reactor.take_batch() {
                self.count(&batch);
            }
            let s = self.reactor.stats();
            if done(&s) {
                return s;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out waiting for {what}; stats {s:?}");
            let _ = self.ready.recv_timeout(left.min(Duration::from_millis(50)));
        }
    }
}

#[test]
fn stream_counters_match_what_the_peers_did() {
    let mut h = Harness::new();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    h.reactor.adopt(l.as_raw_fd(), INET, Adopt::Listener).unwrap();
    drop(l);
    let mut clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.write_all(&vec![b'x'; 1000 * (i + 1)]).unwrap();
    }
    let s = h.until("3 accepts and 6000 bytes", |s| s.connections_accepted == 3 && s.bytes_in == 6000);
    assert_eq!(s.connections_open, 3);
    assert_eq!(h.stream_bytes, 6000, "bytes_in is what the batches carried");
    assert_eq!((s.batches, s.events), (h.batches, h.records), "batches and events are the ones taken");
    assert!(s.batches >= 1 && s.events >= 6, "3 accepts and at least 3 data records");
    assert!(s.wakeups >= 1 && s.wakeups >= h.announced.load(Ordering::SeqCst));
    assert_eq!(s.wakeups_by_io_thread, s.wakeups, "no host assists: the I/O thread announced every batch");
    assert_eq!((s.bytes_out, s.bytes_queued), (0, 0));

    // Connections 2, 3 and 4 (the listener is 1) answer; 4's peer does not read, so bytes queue.
    assert_eq!(h.reactor.write(2, b"hello"), 0);
    let big = vec![b'y'; 8 << 20];
    let queued = h.reactor.write(4, &big);
    assert!(queued > 0, "8 MiB to a peer that does not read fills the kernel's buffers");
    let s = h.reactor.stats();
    assert_eq!(s.bytes_queued, queued as u64);
    assert_eq!(s.bytes_out, 5 + (big.len() - queued) as u64);

    // The peer reads everything: the queue drains to 0 and every byte counts as sent.
    let mut reader = clients.remove(2);
    let got = std::thread::spawn(move || {
        let mut buf = vec![0u8; 8 << 20];
        reader.read_exact(&mut buf).map(|_| reader)
    });
    let s = h.until("the queue to drain", |s| s.bytes_queued == 0);
    assert_eq!(s.bytes_out, 5 + big.len() as u64);
    let _reader = got.join().unwrap().unwrap();

    // Closing connections: open goes down; totals stay.
    for id in [2, 3] {
        h.reactor.stream_input(id, StreamInput::LoseConnection);
        assert_eq!(h.reactor.stream_input(id, StreamInput::ReleaseClose), bits::CLOSED);
    }
    let s = h.reactor.stats();
    assert_eq!((s.connections_open, s.connections_accepted, s.bytes_in), (1, 3, 6000));
    h.reactor.close();
    let s = h.reactor.stats();
    assert_eq!((s.connections_open, s.bytes_queued), (0, 0));
}

#[test]
fn a_connection_closed_with_bytes_queued_leaves_the_running_total() {
    let mut h = Harness::new();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    h.reactor.adopt(l.as_raw_fd(), INET, Adopt::Listener).unwrap();
    let _client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    h.until("the accept", |s| s.connections_open == 1);
    let queued = h.reactor.write(2, &vec![0u8; 8 << 20]);
    assert!(queued > 0);
    assert_eq!(h.reactor.stats().bytes_queued, queued as u64);
    h.reactor.abort(2);
    assert_eq!(h.reactor.stats().bytes_queued, 0);
    assert_eq!(h.reactor.stats().connections_open, 0);
}

#[test]
fn datagram_counters_count_receives_sends_and_the_kernels_drops() {
    let (tx, rx) = channel();
    let core = Arc::new(Reactor::start(Box::new(Counted(Mutex::new(tx), Arc::default()))).unwrap());
    let mut consumer = Consumer::new(core.clone());
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = udp.local_addr().unwrap();
    let id = core.adopt(udp.as_raw_fd(), INET, Adopt::Datagram { max_packet: 2048 }).unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..5 {
        peer.send_to(b"hello", to).unwrap();
    }
    let mut events = vec![0u32; 2 + 4 * 4096];
    let mut received = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    let peer_port = peer.local_addr().unwrap().port();
    while received < 5 {
        assert!(Instant::now() < deadline, "timed out; got {received}");
        if consumer.take_batch(&mut events).is_some() {
            let n = events[0] as usize;
            let got = (0..n).filter(|i| events[2 + 4 * i] == kind::DATAGRAM).count();
            received += got;
            // Answers written while a batch is handled leave together with the next take: three
            // of one size to one peer go as one GSO message where the kernel takes it.
            for _ in 0..3 * got {
                consumer.send_to(id, b"reply", "127.0.0.1", peer_port).unwrap();
            }
        } else {
            let _ = rx.recv_timeout(Duration::from_millis(50));
        }
    }
    assert!(consumer.take_batch(&mut events).is_none()); // sends the last batch's replies
    // Sends outside a batch leave at once.
    for _ in 0..4 {
        consumer.send_to(id, b"answer", "127.0.0.1", peer_port).unwrap();
    }
    let s = consumer.stats();
    assert_eq!((s.datagrams_in, s.datagrams_out, s.datagrams_dropped), (5, 19, 0));
    let mut buf = [0u8; 64];
    let lens: Vec<usize> = (0..19).map(|_| peer.recv(&mut buf).unwrap()).collect();
    assert_eq!(lens.iter().filter(|&&n| n == 5).count(), 15, "every reply arrived as its own datagram");
    assert_eq!(lens.iter().filter(|&&n| n == 6).count(), 4);

    // A burst far larger than the receive queue while nobody takes batches: the kernel drops.
    let payload = [0u8; 1024];
    for _ in 0..20_000 {
        let _ = peer.send_to(&payload, to);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        while consumer.take_batch(&mut events).is_some() {}
        let s = consumer.stats();
        if s.datagrams_in + s.datagrams_dropped_by_kernel >= 20_005 {
            break;
        }
        assert!(Instant::now() < deadline, "timed out; {s:?}");
        let _ = rx.recv_timeout(Duration::from_millis(50));
    }
    let s = consumer.stats();
    assert_eq!(s.datagrams_in + s.datagrams_dropped_by_kernel, 20_005, "every datagram delivered or counted");
    assert_eq!(s.datagrams_out, 19);
    assert!(s.datagrams_dropped_by_kernel > 0);
    assert_eq!(s.datagrams_dropped, s.datagrams_dropped_by_kernel, "no send was dropped");
    // A closed port's counts stay in the totals.
    consumer.close_port(id);
    assert_eq!(consumer.stats(), s);
    consumer.close();
}

#[test]
fn a_hosted_reactor_counts_the_turns_that_announced() {
    use reactor_core::socket2::{Domain, Socket, Type};
    let r = Reactor::start_hosted().unwrap();
    let fd = r.poll_fd().unwrap();
    let (a, mut b) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    r.adopt(a.as_raw_fd(), libc::AF_UNIX, Adopt::Connection).unwrap();
    let mut announced = 0;
    let mut taken = 0;
    for round in 0..3u64 {
        b.write_all(b"ping").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            assert!(Instant::now() < deadline, "no announcement");
            let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd for the call.
            if unsafe { libc::poll(&mut p, 1, 100) } == 1 && r.turn_hosted().unwrap().announce {
                announced += 1;
                break;
            }
        }
        while let Some(batch) = r.take_batch() {
            taken += batch.len() as u64;
        }
        let s = r.stats();
        assert_eq!((s.wakeups, s.batches, s.bytes_in), (announced, round + 1, 4 * (round + 1)));
        assert_eq!(s.wakeups_by_io_thread, 0, "a hosted reactor has no I/O thread");
        assert_eq!(s.events, taken);
    }
}

#[test]
fn an_assisted_threaded_reactor_counts_host_turns_and_io_thread_announcements_apart() {
    use reactor_core::socket2::{Domain, Socket, Type};
    let (tx, rx) = channel();
    let notified = Arc::new(AtomicU64::new(0));
    let r = Reactor::start(Box::new(Counted(Mutex::new(tx), notified.clone()))).unwrap();
    r.attach_host();
    let fd = r.poll_fd().unwrap();
    let (a, mut b) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    r.adopt(a.as_raw_fd(), libc::AF_UNIX, Adopt::Connection).unwrap();
    let (mut host_announced, mut bytes) = (0, 0u64);
    for round in 1..=20u64 {
        b.write_all(b"ping").unwrap();
        // As Node's loop would: turn while the fd is readable. The I/O thread steps in when the
        // host is late; its announcements are counted apart.
        let deadline = Instant::now() + Duration::from_secs(5);
        while bytes < 4 * round {
            assert!(Instant::now() < deadline, "no batch in round {round}");
            let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd for the call.
            if unsafe { libc::poll(&mut p, 1, 10) } == 1 && r.turn_hosted().unwrap().announce {
                host_announced += 1;
            }
            while rx.try_recv().is_ok() {}
            while let Some(batch) = r.take_batch() {
                bytes += batch.records().filter(|r| r.0 == kind::DATA).map(|r| u64::from(r.3)).sum::<u64>();
            }
        }
        let s = r.stats();
        assert_eq!(s.wakeups - s.wakeups_by_io_thread, host_announced, "every host turn that announced is counted");
        assert!(s.wakeups_by_io_thread >= notified.load(Ordering::SeqCst));
    }
    assert!(host_announced >= 1, "a host that keeps up takes batches itself");
    r.close();
}
