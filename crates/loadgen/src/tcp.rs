//! Small helpers for non-blocking TCP sockets (the load generator's clients and the
//! splice proxy's upstream connections).

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;

use mio::net::TcpStream;

/// Starts a non-blocking connect with Nagle off (small messages must leave at once, or
/// ping-pong latency measures Nagle's timer instead of the server).
pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Whether a non-blocking connect has completed: `Ok(false)` while still pending, the
/// connect error (refused, reset, ...) if it failed. This is mio's documented recipe:
/// a writable event alone does not mean the connect succeeded.
pub fn is_connected(s: &TcpStream) -> io::Result<bool> {
    if let Some(e) = s.take_error()? {
        return Err(e);
    }
    match s.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes `buf[*pos..]` until done (`Ok(true)`) or the socket would block (`Ok(false)`).
pub fn write_pending(s: &mut TcpStream, buf: &[u8], pos: &mut usize) -> io::Result<bool> {
    while *pos < buf.len() {
        match s.write(&buf[*pos..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// One `writev` of `slices`: `Ok(None)` if the socket would block, else the bytes written.
pub fn writev_once(s: &mut TcpStream, slices: &[IoSlice<'_>]) -> io::Result<Option<usize>> {
    loop {
        match s.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => return Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// One read: `Ok(None)` when drained (edge-triggered: wait for the next event), `Ok(Some(0))`
/// at EOF.
pub fn read_once(s: &mut impl Read, buf: &mut [u8]) -> io::Result<Option<usize>> {
    loop {
        match s.read(buf) {
            Ok(n) => return Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

pub fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}
