//! The hosted driver, turned by hand as Node's loop turns it: wait for the poller's fd to be
//! readable, run one turn, announce when asked, take batches.

use reactor_core::{wire::kind, Batch};
use reactor_core::socket2::{Domain, Socket, Type};
use reactor_core::{Adopt, Reactor};
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// Whether `fd` is readable within `ms` (what uv_poll waits for).
fn readable(fd: RawFd, ms: i32) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, for the length of the call.
    unsafe { libc::poll(&mut p, 1, ms) == 1 }
}

/// Turns until a turn announces a batch, as the host would (waiting on the fd between turns).
fn turn_until_announced(r: &Reactor) -> usize {
    let fd = r.poll_fd().expect("hosted");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut turns = 0;
    while Instant::now() < deadline {
        if readable(fd, 100) {
            turns += 1;
            if r.turn_hosted().unwrap().announce {
                return turns;
            }
        }
    }
    panic!("no announcement within 5 s");
}

fn data_of(batch: &Batch, id: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, i, a, b) in batch.records() {
        if i != id {
            continue;
        }
        match k {
            kind::DATA => out.extend_from_slice(&batch.data[a as usize..(a + b) as usize]),
            kind::DATA_CHUNK => out.extend_from_slice(&batch.chunks[a as usize][..b as usize]),
            _ => {}
        }
    }
    out
}

#[test]
fn a_hosted_reactor_is_turned_by_its_host_and_announces_once_per_drained_batch() {
    let r = Reactor::start_hosted().unwrap();
    let fd = r.poll_fd().expect("a hosted reactor has a poller fd");
    assert!(!readable(fd, 0), "nothing to do before the first adoption");
    let (a, mut b) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    let id = r.adopt(a.as_raw_fd(), libc::AF_UNIX, Adopt::Connection).unwrap();
    drop(a);

    b.write_all(b"hello").unwrap();
    turn_until_announced(&r);
    let batch = r.take_batch().expect("the announced batch");
    assert_eq!(data_of(&batch, id), b"hello");

    // While an announcement is in flight (JS has not yet found the batches empty), turns read but
    // do not announce again.
    b.write_all(b"more").unwrap();
    assert!(readable(fd, 2000));
    assert!(!r.turn_hosted().unwrap().announce, "one announcement in flight at most");
    let batch = r.take_batch().expect("read by the quiet turn");
    assert_eq!(data_of(&batch, id), b"more");
    assert!(r.take_batch().is_none(), "drained: the next batch is announced again");

    b.write_all(b"again").unwrap();
    turn_until_announced(&r);
    assert_eq!(data_of(&r.take_batch().unwrap(), id), b"again");
    assert!(r.take_batch().is_none());
    r.close();
    assert!(r.poll_fd().is_none(), "close stops the driver");
    assert!(!r.turn_hosted().unwrap().announce);
}

#[test]
fn work_left_for_a_later_turn_rearms_the_fd_without_new_edges() {
    let r = Reactor::start_hosted().unwrap();
    let fd = r.poll_fd().unwrap();
    let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    b.set_send_buffer_size(4 << 20).unwrap();
    let id = r.adopt(a.as_raw_fd(), libc::AF_UNIX, Adopt::Connection).unwrap();
    drop(a);
    // More than one turn's read budget, sent before the loop looks: one edge only.
    let payload = vec![9u8; 1 << 20];
    let mut sent = 0;
    b.set_nonblocking(true).unwrap();
    while sent < payload.len() {
        match (&b).write(&payload[sent..]) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    assert!(sent > 4 * 64 * 1024, "more than one turn's budget is waiting ({sent} bytes)");
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while got < sent && Instant::now() < deadline {
        // Every turn must leave the fd readable while bytes remain: no new edge will come.
        assert!(readable(fd, 1000), "re-armed after {got} of {sent} bytes");
        r.turn_hosted().unwrap();
        while let Some(batch) = r.take_batch() {
            got += data_of(&batch, id).len();
        }
    }
    assert_eq!(got, sent);
    r.close();
}
