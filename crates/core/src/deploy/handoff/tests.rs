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
    let taken = take(path.as_str(), soon(), None).unwrap();
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
    assert_eq!(code(&take(path.as_str(), soon(), None).unwrap_err()), libc::ENOENT);
    // A socket file nobody listens on any more.
    drop(std::os::unix::net::UnixListener::bind(&path.0).unwrap());
    assert_eq!(code(&take(path.as_str(), soon(), None).unwrap_err()), libc::ECONNREFUSED);
}

#[test]
fn a_silent_listener_is_etimedout() {
    let path = TempPath::new("silent");
    let _silent = std::os::unix::net::UnixListener::bind(&path.0).unwrap();
    let started = Instant::now();
    let err = take(path.as_str(), Some(Instant::now() + Duration::from_millis(200)), None).unwrap_err();
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
    let first = take(path.as_str(), soon(), None).unwrap();
    drop(first); // took the descriptors, never said ready
    let second = take(path.as_str(), soon(), None).unwrap();
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
        let taken = take(path.as_str(), soon(), None).unwrap();
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
    let taken = take(path.as_str(), soon(), None).unwrap();
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
    let taken = take(path.as_str(), soon(), None).unwrap(); // the offer now waits for 'K'
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
    let taker = thread::spawn(move || take(path.as_str(), None, Some(&waiting)).map(|_| ()));
    weak.cancel();
    assert_eq!(code(&taker.join().unwrap().unwrap_err()), libc::ECANCELED);
    drop(cancel);
    assert!(weak.0.upgrade().is_none(), "the weak handle does not keep the eventfd open");
    weak.cancel(); // nothing left to cancel: a no-op
}

/// The errno an error carries (tests compare numbers; naming them is the binding's business).
fn errno_number(err: &io::Error) -> i32 {
    crate::sys::errno::number(err).expect("an errno")
}
