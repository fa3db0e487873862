//! The connection table every TCP workload keeps: slot `i` is registered under
//! `Token(i)`, is connected without blocking, and is closed (deregistered first) in one
//! place. Workloads keep their per-connection state in a parallel vector and use
//! `read_chunks` for the edge-triggered read loop.

use std::io;
use std::net::SocketAddr;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::tcp;

struct Conn {
    sock: TcpStream,
    connected: bool,
}

pub struct ConnTable {
    addr: SocketAddr,
    slots: Vec<Option<Conn>>,
    open: usize,
}

impl ConnTable {
    /// `n` empty slots for connections to `addr`.
    pub fn new(addr: SocketAddr, n: usize) -> ConnTable {
        ConnTable {
            addr,
            slots: (0..n).map(|_| None).collect(),
            open: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Slots with a connection (connecting or connected).
    pub fn open_count(&self) -> usize {
        self.open
    }

    pub fn is_open(&self, i: usize) -> bool {
        self.slots[i].is_some()
    }

    /// Starts a non-blocking connect in slot `i` (closing what was there).
    pub fn open(&mut self, registry: &Registry, i: usize) -> io::Result<()> {
        self.close(registry, i);
        let mut sock = tcp::connect(self.addr)?;
        registry.register(&mut sock, Token(i), Interest::READABLE | Interest::WRITABLE)?;
        self.slots[i] = Some(Conn {
            sock,
            connected: false,
        });
        self.open += 1;
        Ok(())
    }

    /// Closes slot `i`'s connection, if any. Deregistering first keeps nothing stale in
    /// epoll.
    pub fn close(&mut self, registry: &Registry, i: usize) {
        if let Some(mut c) = self.slots[i].take() {
            let _ = registry.deregister(&mut c.sock);
            self.open -= 1;
        }
    }

    /// Slot `i`'s socket once its connect has completed; `Ok(None)` while the connect is
    /// pending or the slot is empty, the connect error if it failed.
    pub fn ready(&mut self, i: usize) -> io::Result<Option<&mut TcpStream>> {
        let Some(c) = self.slots[i].as_mut() else {
            return Ok(None);
        };
        if !c.connected {
            if !tcp::is_connected(&c.sock)? {
                return Ok(None);
            }
            c.connected = true;
        }
        Ok(Some(&mut c.sock))
    }
}

/// Reads into `scratch` until the socket is drained, passing each chunk to `chunk`, which
/// returns `Ok(false)` to stop reading (the rest raises no new edge, so it must only stop
/// when it knows nothing more can be waiting). End of stream is an error: no workload
/// expects the server to close first.
///
/// A short read proves the socket empty (epoll(7)) and ends the loop without the extra
/// `WouldBlock` read, unless `drain` (the event reported a close or an error, which only
/// a read returning 0 or failing surfaces).
pub fn read_chunks(
    sock: &mut TcpStream,
    scratch: &mut [u8],
    drain: bool,
    mut chunk: impl FnMut(&[u8]) -> io::Result<bool>,
) -> io::Result<()> {
    while let Some(n) = tcp::read_once(sock, scratch)? {
        if n == 0 {
            return Err(tcp::invalid("server closed the connection".into()));
        }
        if !chunk(&scratch[..n])? {
            return Ok(());
        }
        if n < scratch.len() && !drain {
            return Ok(());
        }
    }
    Ok(())
}
