//! Named socket options through the reactor: set on the core's duplicate by id, seen on the
//! caller's descriptor of the same socket, and refused for ids the core does not hold.

mod common;

use common::{listener, Harness};

use reactor_core::socket2::SockRef;
use reactor_core::sys::sockopt::{self, SocketOption, Value};
use reactor_core::Adopt;
use std::net::TcpStream;
use std::os::fd::AsRawFd;

#[test]
fn options_set_by_id_act_on_the_shared_socket() {
    let h = Harness::new();
    let (l, addr) = listener();
    let client = TcpStream::connect(addr).unwrap();
    let (server, _) = l.accept().unwrap();
    let id = h.reactor.adopt(server.as_raw_fd(), libc::AF_INET, Adopt::Connection).unwrap();
    h.reactor.set_socket_option(id, SocketOption::TcpKeepidle, &Value::Int(42)).unwrap();
    assert_eq!(h.reactor.socket_option(id, SocketOption::TcpKeepidle).unwrap(), Value::Int(42));
    // The caller's fd names the same socket.
    assert_eq!(sockopt::get(&SockRef::from(&server), SocketOption::TcpKeepidle).unwrap(), Value::Int(42));
    h.reactor.set_socket_option(id, SocketOption::TcpCongestion, &Value::Name("reno".into())).unwrap();
    assert_eq!(h.reactor.socket_option(id, SocketOption::TcpCongestion).unwrap(), Value::Name("reno".into()));
    // A value the option does not take is refused before the kernel is asked.
    let err = h.reactor.set_socket_option(id, SocketOption::IpTtl, &Value::Int(0)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    drop(client);
}

#[test]
fn unknown_ids_are_ebadf() {
    let h = Harness::new();
    let err = h.reactor.socket_option(9999, SocketOption::TcpNodelay).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    let err = h.reactor.set_socket_option(9999, SocketOption::TcpNodelay, &Value::Bool(true)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBADF));
}
