//! The registry on its own: dispatch, the steps it carries out, deferral and the batch bound.

use super::State;
use crate::entry::Entry;
use crate::service::Ready;
use crate::stream::listener::Listener;
use crate::stream::state::Input;
use crate::stream::Stream;
use crate::wire::{bits, kind};
use mio::Poll;
use socket2::{Domain, SockAddr, Socket, Type};
use std::io::Write;
use std::os::unix::net::UnixStream;

fn pair() -> (Socket, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    (Socket::from(std::os::fd::OwnedFd::from(a)), b)
}

fn records(st: &State) -> Vec<(u32, u32, u32, u32)> {
    st.batch.records().collect()
}

#[test]
fn a_new_entry_is_looked_at_once_and_ids_are_never_reused() {
    let poll = Poll::new().unwrap();
    let mut st = State::new().unwrap();
    let (sock, _peer) = pair();
    let id = st.insert(poll.registry(), Entry::Stream(Stream::new(sock, true))).unwrap();
    assert!(st.is_deferred(id));
    assert!(st.remove(poll.registry(), id).is_some());
    let (sock, _peer2) = pair();
    let next = st.insert(poll.registry(), Entry::Stream(Stream::new(sock, true))).unwrap();
    assert_ne!(next, id);
    assert_eq!(st.stream_bits(id), bits::GONE, "a stale id finds nothing");
}

#[test]
fn a_deferred_read_lands_in_the_batch() {
    let poll = Poll::new().unwrap();
    let mut st = State::new().unwrap();
    let (sock, mut peer) = pair();
    peer.write_all(b"hello").unwrap();
    let id = st.insert(poll.registry(), Entry::Stream(Stream::new(sock, false))).unwrap();
    st.run_deferred(poll.registry());
    assert_eq!(records(&st), [(kind::DATA, id, 0, 5)]);
    assert_eq!(&st.batch.data[..5], b"hello");
    assert!(st.should_announce());
}

#[test]
fn a_full_batch_stalls_the_loop_and_keeps_the_work() {
    let poll = Poll::new().unwrap();
    let mut st = State::new().unwrap();
    let (sock, mut peer) = pair();
    peer.write_all(b"later").unwrap();
    let id = st.insert(poll.registry(), Entry::Stream(Stream::new(sock, false))).unwrap();
    while !st.batch.is_full() {
        st.batch.push(kind::NONE, 0, 0, 0);
    }
    st.run_deferred(poll.registry());
    assert!(st.stalled, "taking the batch must wake the loop");
    assert!(st.is_deferred(id), "the read waits for room");
    st.on_event(poll.registry(), id, Ready { readable: true, ..Ready::default() });
    assert!(!records(&st).iter().any(|r| r.0 == kind::DATA), "nothing is read past the bound");
}

#[test]
fn a_failure_reports_its_errno_once() {
    let poll = Poll::new().unwrap();
    let mut st = State::new().unwrap();
    let (sock, _peer) = pair();
    let id = st.insert(poll.registry(), Entry::Stream(Stream::new(sock, false))).unwrap();
    let reset = || std::io::Error::from_raw_os_error(libc::ECONNRESET);
    st.fail(poll.registry(), id, reset());
    st.fail(poll.registry(), id, reset());
    assert_eq!(records(&st), [(kind::CLOSED, id, libc::ECONNRESET as u32, 0)]);
    assert_eq!(st.stats().connections_open, 0);
}

#[test]
fn a_close_the_consumer_asked_for_is_returned_not_reported() {
    let poll = Poll::new().unwrap();
    let mut st = State::new().unwrap();
    let (sock, _peer) = pair();
    let id = st.insert(poll.registry(), Entry::Stream(Stream::new(sock, false))).unwrap();
    st.stream_input(poll.registry(), id, Input::LoseConnection);
    assert_eq!(st.stream_input(poll.registry(), id, Input::ReleaseClose), bits::CLOSED);
    assert!(records(&st).is_empty());
    assert_eq!(st.stream_bits(id), bits::GONE);
}

#[test]
fn a_listener_registers_and_reports_what_it_accepts() {
    let poll = Poll::new().unwrap();
    let mut st = State::new().unwrap();
    let l = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    l.bind(&SockAddr::from("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())).unwrap();
    l.listen(8).unwrap();
    l.set_nonblocking(true).unwrap();
    let to = l.local_addr().unwrap();
    let lid = st.insert(poll.registry(), Entry::Listener(Box::new(Listener::new(l)))).unwrap();
    let clients: Vec<_> = (0..3).map(|_| std::net::TcpStream::connect(to.as_socket().unwrap()).unwrap()).collect();
    st.run_deferred(poll.registry());
    let accepts: Vec<_> = records(&st).into_iter().filter(|r| r.0 == kind::ACCEPT).collect();
    assert_eq!(accepts.len(), clients.len());
    for (_, port, conn, _) in accepts {
        assert_eq!(port, lid);
        assert!(st.entries.stream(conn).is_some(), "each accepted connection is registered");
    }
    assert_eq!(st.stats().connections_accepted, 3);
}
