//! Refused adoptions leave no descriptor behind.
//!
//! A binary of its own with a single test: it counts the process's descriptors, and in a
//! binary whose tests run on parallel threads any other test's sockets would change the
//! count (and could take the number of the closed fd it adopts). Add no other test here.

mod common;

use common::Harness;
use reactor_core::socket2::{Domain, Socket, Type};
use reactor_core::{Adopt, AdoptError};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, IntoRawFd};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn refused_adoptions_leave_nothing_behind() {
    let h = Harness::new();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let unbound = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let client = TcpStream::connect(tcp.local_addr().unwrap()).unwrap();
    let (pipe_r, pipe_w) = {
        let mut fds = [0; 2];
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        (fds[0], fds[1])
    };
    let closed = UdpSocket::bind("127.0.0.1:0").unwrap().into_raw_fd();
    unsafe { libc::close(closed) };
    let before = open_fds();

    let inet = libc::AF_INET;
    assert!(matches!(h.reactor.adopt(udp.as_raw_fd(), inet, Adopt::Listener), Err(AdoptError::SocketType(2))));
    assert!(matches!(h.reactor.adopt(tcp.as_raw_fd(), inet, Adopt::Datagram { max_packet: 10 }), Err(AdoptError::SocketType(1))));
    assert!(matches!(h.reactor.adopt(tcp.as_raw_fd(), libc::AF_INET6, Adopt::Listener), Err(AdoptError::Family(2))));
    assert!(matches!(h.reactor.adopt(unbound.as_raw_fd(), inet, Adopt::Listener), Err(AdoptError::NotListening)));
    assert!(matches!(h.reactor.adopt(unbound.as_raw_fd(), inet, Adopt::Connection), Err(AdoptError::NotConnected)));
    assert!(matches!(h.reactor.adopt(pipe_r, inet, Adopt::Connection), Err(AdoptError::Os(_))));
    assert!(matches!(h.reactor.adopt(closed, inet, Adopt::Datagram { max_packet: 10 }), Err(AdoptError::Os(_))));

    assert_eq!(open_fds(), before, "a refused adoption left a descriptor open");
    drop(client);
    unsafe {
        libc::close(pipe_r);
        libc::close(pipe_w);
    }
}
