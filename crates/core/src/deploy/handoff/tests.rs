//! Offer and take between threads of this process, over real UNIX sockets.

use super::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::thread;

use crate::test_support::TempPath;

fn inode(fd: RawFd) -> u64 {
    std::fs::metadata(format!("/proc/self/fd/{fd}")).unwrap().ino()
}

fn code(err: &io::Error) -> i32 {
    errno_number(err)
}

fn soon() -> Option<Instant> {
    Some(Instant::now() + Duration::from_secs(10))
}

fn tcp_listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

#[test]
fn the_successor_gets_the_same_listening_socket_and_the_offer_goes_away() {
    let path = TempPath::new("basic");
    let listener = tcp_listener();
    let offer = Offer::new(path.as_str(), &[("web".into(), listener.as_raw_fd())], &[]).unwrap();
    let server = thread::spawn(move || offer.serve(|_| panic!("nobody is refused")));
    let taken = take(path.as_str(), &[], soon(), None).unwrap();
    assert_eq!(taken.listeners.len(), 1);
    assert_eq!(taken.listeners[0].name, "web");
    let received = taken.listeners[0].fd.as_raw_fd();
    assert_eq!(inode(received), inode(listener.as_raw_fd()));
    let info = sockets::info(received).unwrap();
    assert!(info.listening);
    // SAFETY: F_GETFD only reads the flags of a descriptor we own.
    assert_ne!(unsafe { libc::fcntl(received, libc::F_GETFD) } & libc::FD_CLOEXEC, 0);
    // A connection made now is accepted through the received descriptor.
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let successor = TcpListener::from(taken.listeners.into_iter().next().unwrap().fd);
    let (mut accepted, _) = successor.accept().unwrap();
    client.write_all(b"hi").unwrap();
    let mut buf = [0u8; 2];
    accepted.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hi");
    confirm_ready(taken.control, soon(), None).unwrap();
    server.join().unwrap().unwrap();
    assert!(!path.0.exists(), "the offer's path is removed once taken");
}

#[test]
fn the_socket_file_is_created_0600() {
    let path = TempPath::new("mode");
    let listener = tcp_listener();
    let offer = Offer::new(path.as_str(), &[("a".into(), listener.as_raw_fd())], &[]).unwrap();
    let mode = std::fs::symlink_metadata(&path.0).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    offer.canceller().cancel();
    assert_eq!(code(&offer.serve(|_| {}).unwrap_err()), libc::ECANCELED);
    assert!(!path.0.exists());
}

#[test]
fn no_offer_is_enoent_or_econnrefused() {
    let path = TempPath::new("none");
    assert_eq!(code(&take(path.as_str(), &[], soon(), None).unwrap_err()), libc::ENOENT);
    // A socket file nobody listens on any more.
    drop(std::os::unix::net::UnixListener::bind(&path.0).unwrap());
    assert_eq!(code(&take(path.as_str(), &[], soon(), None).unwrap_err()), libc::ECONNREFUSED);
}

#[test]
fn a_silent_listener_is_etimedout() {
    let path = TempPath::new("silent");
    let _silent = std::os::unix::net::UnixListener::bind(&path.0).unwrap();
    let started = Instant::now();
    let err = take(path.as_str(), &[], Some(Instant::now() + Duration::from_millis(200)), None).unwrap_err();
    assert_eq!(code(&err), libc::ETIMEDOUT);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn cancelling_wakes_a_waiting_offer_and_removes_the_path() {
    let path = TempPath::new("cancel");
    let listener = tcp_listener();
    let offer = Offer::new(path.as_str(), &[("a".into(), listener.as_raw_fd())], &[]).unwrap();
    let cancel = offer.canceller();
    let server = thread::spawn(move || offer.serve(|_| {}));
    thread::sleep(Duration::from_millis(50)); // let it block in poll (the test holds either way)
    cancel.cancel();
    let err = server.join().unwrap().unwrap_err();
    assert_eq!(code(&err), libc::ECANCELED);
    assert!(!path.0.exists());
    assert!(sockets::info(listener.as_raw_fd()).unwrap().listening, "the caller's listener is untouched");
}

#[test]
fn a_taker_that_leaves_before_ready_does_not_end_the_offer() {
    let path = TempPath::new("leave");
    let listener = tcp_listener();
    let offer = Offer::new(path.as_str(), &[("a".into(), listener.as_raw_fd())], &[]).unwrap();
    let server = thread::spawn(move || offer.serve(|_| {}));
    let first = take(path.as_str(), &[], soon(), None).unwrap();
    drop(first); // took the descriptors, never said ready
    let second = take(path.as_str(), &[], soon(), None).unwrap();
    assert_eq!(inode(second.listeners[0].fd.as_raw_fd()), inode(listener.as_raw_fd()));
    confirm_ready(second.control, soon(), None).unwrap();
    server.join().unwrap().unwrap();
}

#[test]
fn a_successor_can_offer_at_the_same_path_once_ready_returns() {
    let path = TempPath::new("chain");
    let listener = tcp_listener();
    let mut current = listener.as_raw_fd();
    let mut keep = Vec::new();
    for _ in 0..3 {
        let offer = Offer::new(path.as_str(), &[("web".into(), current)], &[]).unwrap();
        let server = thread::spawn(move || offer.serve(|_| {}));
        let taken = take(path.as_str(), &[], soon(), None).unwrap();
        confirm_ready(taken.control, soon(), None).unwrap();
        server.join().unwrap().unwrap();
        let fd = taken.listeners.into_iter().next().unwrap().fd;
        assert_eq!(inode(fd.as_raw_fd()), inode(listener.as_raw_fd()));
        current = fd.as_raw_fd();
        keep.push(fd);
    }
}

#[test]
fn a_live_offer_keeps_its_path_and_a_stale_one_is_replaced() {
    let path = TempPath::new("busy");
    let listener = tcp_listener();
    let first = Offer::new(path.as_str(), &[("a".into(), listener.as_raw_fd())], &[]).unwrap();
    let err = Offer::new(path.as_str(), &[("a".into(), listener.as_raw_fd())], &[]).unwrap_err();
    assert_eq!(code(&err), libc::EADDRINUSE);
    // The first offer's socket closes without removing its file (as when a process dies).
    let Offer { socket, .. } = first;
    drop(socket);
    assert!(path.0.exists());
    let second = Offer::new(path.as_str(), &[("a".into(), listener.as_raw_fd())], &[]).unwrap();
    second.canceller().cancel();
    second.serve(|_| {}).unwrap_err();
    // A regular file is never replaced.
    std::fs::write(&path.0, b"not a socket").unwrap();
    let err = Offer::new(path.as_str(), &[("a".into(), listener.as_raw_fd())], &[]).unwrap_err();
    assert_eq!(code(&err), libc::EADDRINUSE);
    assert_eq!(std::fs::read(&path.0).unwrap(), b"not a socket");
}

#[test]
fn removing_the_path_spares_a_successors_file() {
    let path = TempPath::new("spare");
    let listener = tcp_listener();
    let offer = Offer::new(path.as_str(), &[("a".into(), listener.as_raw_fd())], &[]).unwrap();
    let guard = offer.path();
    // Someone else's file now sits at the path.
    std::fs::remove_file(&path.0).unwrap();
    std::fs::write(&path.0, b"successor").unwrap();
    guard.remove();
    assert_eq!(std::fs::read(&path.0).unwrap(), b"successor");
}

#[test]
fn bad_offers_are_refused_and_leave_nothing() {
    let path = TempPath::new("bad");
    assert_eq!(code(&Offer::new(path.as_str(), &[], &[]).unwrap_err()), libc::EINVAL);
    assert_eq!(code(&Offer::new(path.as_str(), &[("a".into(), -1)], &[]).unwrap_err()), libc::EBADF);
    assert_eq!(code(&Offer::new(path.as_str(), &[("a".into(), RawFd::MAX)], &[]).unwrap_err()), libc::EBADF);
    assert!(!path.0.exists());
    let listener = tcp_listener();
    let too_many: Vec<(String, RawFd)> = (0..=scm::MAX_FDS).map(|i| (i.to_string(), listener.as_raw_fd())).collect();
    assert_eq!(code(&Offer::new(path.as_str(), &too_many, &[]).unwrap_err()), libc::EINVAL);
    let err = Offer::new("\0abstract-offer", &[("a".into(), listener.as_raw_fd())], &[]).unwrap_err();
    assert_eq!(code(&err), libc::EINVAL);
    let err = Offer::new("/nonexistent-dir/offer.sock", &[("a".into(), listener.as_raw_fd())], &[]).unwrap_err();
    assert_eq!(code(&err), libc::ENOENT);
}

#[test]
fn many_listeners_with_names_arrive_in_order() {
    let path = TempPath::new("many");
    let listeners: Vec<TcpListener> = (0..5).map(|_| tcp_listener()).collect();
    let offered: Vec<(String, RawFd)> =
        listeners.iter().enumerate().map(|(i, l)| (format!("name-{i}-é"), l.as_raw_fd())).collect();
    let offer = Offer::new(path.as_str(), &offered, &[]).unwrap();
    let server = thread::spawn(move || offer.serve(|_| {}));
    let taken = take(path.as_str(), &[], soon(), None).unwrap();
    for ((name, fd), got) in offered.iter().zip(&taken.listeners) {
        assert_eq!(&got.name, name);
        assert_eq!(inode(got.fd.as_raw_fd()), inode(*fd));
    }
    confirm_ready(taken.control, soon(), None).unwrap();
    server.join().unwrap().unwrap();
}

#[test]
fn peer_cred_is_our_own_on_a_pair() {
    let (a, _b) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    let cred = peer_cred(a.as_fd()).unwrap();
    // SAFETY: getpid/geteuid/getegid cannot fail.
    let ours = unsafe { (libc::getpid(), libc::geteuid(), libc::getegid()) };
    assert_eq!((cred.pid, cred.uid, cred.gid), ours);
}

#[test]
fn messages_decode_only_when_whole() {
    let listeners = [("web".to_owned(), tcp_listener()), ("x".to_owned(), tcp_listener())];
    let listeners: Vec<Listener> =
        listeners.into_iter().map(|(name, l)| Listener { name, fd: OwnedFd::from(l) }).collect();
    let message = encode_offer(&listeners);
    for end in 0..message.len() {
        assert!(decode_offer(&message[..end]).unwrap().is_none(), "prefix of {end} bytes");
    }
    assert_eq!(decode_offer(&message).unwrap().unwrap(), ["web", "x"]);
    let mut longer = message.clone();
    longer.push(0);
    assert_eq!(code(&decode_offer(&longer).unwrap_err()), libc::EPROTO);
    assert_eq!(code(&decode_offer(b"R").unwrap_err()), libc::EACCES);
    assert_eq!(code(&decode_offer(b"HTTP/1.1").unwrap_err()), libc::EPROTO);
}

#[test]
fn closing_during_a_handover_ends_both_sides() {
    let path = TempPath::new("midway");
    let listener = tcp_listener();
    let offer = Offer::new(path.as_str(), &[("a".into(), listener.as_raw_fd())], &[]).unwrap();
    let cancel = offer.canceller();
    let server = thread::spawn(move || offer.serve(|_| {}));
    let taken = take(path.as_str(), &[], soon(), None).unwrap(); // the offer now waits for 'K'
    cancel.cancel();
    assert_eq!(code(&server.join().unwrap().unwrap_err()), libc::ECANCELED);
    assert!(!path.0.exists());
    let err = confirm_ready(taken.control, soon(), None).unwrap_err();
    assert!([libc::ECONNRESET, libc::EPIPE].contains(&code(&err)), "{err}");
}

#[test]
fn a_take_can_be_cancelled_and_a_weak_canceller_outlives_nothing() {
    let path = TempPath::new("cancel-take");
    let _silent = std::os::unix::net::UnixListener::bind(&path.0).unwrap();
    let cancel = Canceller::new().unwrap();
    let weak = cancel.downgrade();
    let waiting = cancel.clone();
    let taker = thread::spawn(move || take(path.as_str(), &[], None, Some(&waiting)).map(|_| ()));
    weak.cancel();
    assert_eq!(code(&taker.join().unwrap().unwrap_err()), libc::ECANCELED);
    drop(cancel);
    assert!(weak.0.upgrade().is_none(), "the weak handle does not keep the eventfd open");
    weak.cancel(); // nothing left to cancel: a no-op
}

#[test]
fn deadlines_never_panic_and_too_far_is_none() {
    let now = Instant::now();
    assert_eq!(deadline_after_ms(now, 1500.0), Some(now + Duration::from_millis(1500)));
    assert_eq!(deadline_after_ms(now, 0.0), Some(now));
    // Too far away to represent: no deadline (Duration::from_secs_f64 would panic on the first,
    // Instant + Duration on the second: 1e19 s converts, and overflows the clock).
    for far in [1e300, f64::MAX, 1e22, f64::INFINITY] {
        assert_eq!(deadline_after_ms(now, far), None, "{far}");
    }
    for none in [-1.0, -0.5, f64::NEG_INFINITY, f64::NAN] {
        assert_eq!(deadline_after_ms(now, none), None, "{none}");
    }
    let mut rng = crate::test_support::Rng::new(crate::test_support::Rng::seed_for(1));
    for _ in 0..10_000 {
        let _ = deadline_after_ms(now, f64::from_bits(rng.next_u64()));
    }
}

#[test]
fn a_silent_client_delays_no_taker() {
    let path = TempPath::new("silent-client");
    let listener = tcp_listener();
    let offer = Offer::new(path.as_str(), &[("web".into(), listener.as_raw_fd())], &[]).unwrap();
    let server = thread::spawn(move || offer.serve(|_| {}));
    // Same uid, connects, never reads nor writes: the old offer waited for its 'K' for ever.
    let _silent = std::os::unix::net::UnixStream::connect(&path.0).unwrap();
    thread::sleep(Duration::from_millis(50)); // let the offer accept it first (the test holds either way)
    let started = Instant::now();
    let taken = take(path.as_str(), &[], Some(Instant::now() + Duration::from_secs(3)), None).unwrap();
    confirm_ready(taken.control, soon(), None).unwrap();
    server.join().unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[test]
fn a_taker_that_hangs_after_the_descriptors_delays_nobody() {
    let path = TempPath::new("hanging-taker");
    let listener = tcp_listener();
    let offer = Offer::new(path.as_str(), &[("web".into(), listener.as_raw_fd())], &[]).unwrap();
    let server = thread::spawn(move || offer.serve(|_| {}));
    let hanging = take(path.as_str(), &[], soon(), None).unwrap(); // never says ready
    let started = Instant::now();
    let taken = take(path.as_str(), &[], Some(Instant::now() + Duration::from_secs(3)), None).unwrap();
    confirm_ready(taken.control, soon(), None).unwrap();
    server.join().unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    // The offer is over: the hanging taker's ready() is refused.
    assert!(confirm_ready(hanging.control, soon(), None).is_err());
}

#[test]
fn a_huge_offer_and_a_client_that_never_reads_it_delay_nobody() {
    // 253 names of 65535 bytes: a 16 MiB offer, far more than a socket buffer holds.
    let path = TempPath::new("huge-offer");
    let listener = tcp_listener();
    let name = "n".repeat(usize::from(u16::MAX));
    let listeners: Vec<(String, RawFd)> = (0..scm::MAX_FDS).map(|_| (name.clone(), listener.as_raw_fd())).collect();
    let offer = Offer::new(path.as_str(), &listeners, &[]).unwrap();
    let server = thread::spawn(move || offer.serve(|_| {}));
    let _silent = std::os::unix::net::UnixStream::connect(&path.0).unwrap();
    thread::sleep(Duration::from_millis(50));
    let taken = take(path.as_str(), &[], Some(Instant::now() + Duration::from_secs(20)), None).unwrap();
    assert_eq!(taken.listeners.len(), scm::MAX_FDS);
    assert!(taken.listeners.iter().all(|l| l.name == name));
    confirm_ready(taken.control, soon(), None).unwrap();
    server.join().unwrap().unwrap();
}

#[test]
fn a_taker_past_its_timeout_is_dropped_and_more_silent_clients_than_slots_delay_a_taker_by_one_timeout() {
    let path = TempPath::new("taker-timeout");
    let listener = tcp_listener();
    let offer = Offer::new(path.as_str(), &[("web".into(), listener.as_raw_fd())], &[])
        .unwrap()
        .with_taker_timeout(Duration::from_millis(300));
    let server = thread::spawn(move || offer.serve(|_| {}));
    let mut silent: Vec<std::os::unix::net::UnixStream> =
        (0..MAX_TAKERS + 4).map(|_| std::os::unix::net::UnixStream::connect(&path.0).unwrap()).collect();
    // The first silent client gets the offer, then EOF once its time is up.
    silent[0].set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut everything = Vec::new();
    silent[0].read_to_end(&mut everything).unwrap();
    assert_eq!(everything[0], OFFER);
    let started = Instant::now();
    let taken = take(path.as_str(), &[], Some(Instant::now() + Duration::from_secs(5)), None).unwrap();
    confirm_ready(taken.control, soon(), None).unwrap();
    server.join().unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    silent.clear();
}

#[test]
fn offers_are_trusted_from_our_uid_root_and_trust_uids_only() {
    // SAFETY: geteuid cannot fail.
    let ours = unsafe { libc::geteuid() };
    assert!(trusts(ours, &[]));
    assert!(trusts(0, &[]));
    let stranger = if ours == 65534 { 65533 } else { 65534 };
    assert!(!trusts(stranger, &[]));
    assert!(trusts(stranger, &[stranger]));
}

#[test]
fn a_hostile_offer_message_is_eproto_without_waiting_for_more() {
    let mut too_many = vec![OFFER];
    too_many.extend_from_slice(&u16::MAX.to_le_bytes());
    assert_eq!(code(&decode_offer(&too_many).unwrap_err()), libc::EPROTO);
    let mut not_utf8 = vec![OFFER, 1, 0, 1, 0];
    not_utf8.push(0xff);
    assert_eq!(code(&decode_offer(&not_utf8).unwrap_err()), libc::EPROTO);
}

/// The errno an error carries (tests compare numbers; naming them is the binding's business).
fn errno_number(err: &io::Error) -> i32 {
    crate::sys::errno::number(err).expect("an errno")
}
