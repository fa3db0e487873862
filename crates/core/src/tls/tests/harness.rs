//! Two sessions over real non-blocking loopback sockets, in one thread, with a tap in the
//! middle that records every byte crossing the wire (and can cut it):
//!
//! client session ⇄ [UnixStream pair] ⇄ tap ⇄ [UnixStream pair] ⇄ server session

use crate::tls::{ClientTlsConfig, End, ServerTlsConfig, TlsSession};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

/// One side: its session, its socket (a UnixStream here, a TcpStream in the interop tests),
/// and what it has seen.
pub struct Peer<S: AsFd = UnixStream> {
    pub session: TlsSession,
    pub sock: S,
    pub received: Vec<u8>,
    pub completed: bool,
    /// How many times a read reported `handshake_completed` (must never exceed 1).
    pub completions: u32,
    pub end: Option<End>,
    pub io_error: Option<io::Error>,
}

impl<S: AsFd> Peer<S> {
    pub fn new(session: TlsSession, sock: S) -> Peer<S> {
        socket2::SockRef::from(&sock).set_nonblocking(true).unwrap();
        Peer { session, sock, received: Vec::new(), completed: false, completions: 0, end: None, io_error: None }
    }

    /// What the event loop would do on a readable and a writable edge. True if anything moved.
    pub fn step(&mut self) -> bool {
        if self.io_error.is_some() {
            return false;
        }
        let mut moved = false;
        match self.session.write_tls_to(&self.sock) {
            Ok(w) => moved |= w.written > 0,
            Err(e) => {
                self.io_error = Some(e);
                return true;
            }
        }
        loop {
            match self.session.read_tls_from(&self.sock) {
                Ok(out) => {
                    if out.handshake_completed {
                        self.completed = true;
                        self.completions += 1;
                        moved = true;
                    }
                    if out.plaintext {
                        moved |= self.session.take_plaintext(&mut self.received) > 0;
                    }
                    if out.end.is_some() && self.end.is_none() {
                        self.end = out.end.clone();
                        moved = true;
                    }
                    if !out.more {
                        break;
                    }
                }
                Err(e) => {
                    self.io_error = Some(e);
                    return true;
                }
            }
        }
        // Answers (handshake flights, KeyUpdate replies, alerts) go out in the same turn.
        match self.session.write_tls_to(&self.sock) {
            Ok(w) => moved |= w.written > 0,
            Err(e) => self.io_error = Some(e),
        }
        moved
    }

    pub fn send(&mut self, data: &[u8]) -> usize {
        self.session.write_plaintext(data)
    }
}

/// One direction of the tap: bytes read from `from`, kept in `log`, written to `to`.
pub struct Tap {
    pub from: UnixStream,
    pub to: UnixStream,
    pub log: Vec<u8>,
    pending: Vec<u8>,
    pub cut: bool,
}

impl Tap {
    fn new(from: UnixStream, to: UnixStream) -> Tap {
        from.set_nonblocking(true).unwrap();
        to.set_nonblocking(true).unwrap();
        Tap { from, to, log: Vec::new(), pending: Vec::new(), cut: false }
    }

    /// Moves what has arrived on. True if anything moved.
    pub fn relay(&mut self) -> bool {
        let mut moved = false;
        let mut buf = [0u8; 16 * 1024];
        while !self.cut && self.pending.len() < 256 * 1024 {
            match self.from.read(&mut buf) {
                Ok(0) => {
                    // The sender shut its side (or closed): pass the EOF on once all is written.
                    self.cut = true;
                    moved = true;
                }
                Ok(n) => {
                    self.log.extend_from_slice(&buf[..n]);
                    self.pending.extend_from_slice(&buf[..n]);
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("tap read: {e}"),
            }
        }
        while !self.pending.is_empty() {
            match self.to.write(&self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    self.pending.clear();
                    break;
                }
                Err(e) => panic!("tap write: {e}"),
            }
        }
        if self.cut && self.pending.is_empty() {
            let _ = self.to.shutdown(Shutdown::Write);
        }
        moved
    }

    /// Passes raw bytes on as if the sender had written them (a forged record, say).
    pub fn inject(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        self.relay();
    }

    /// Ends this direction now: what is pending is dropped and the receiver sees EOF, as when a
    /// connection is cut by something in between.
    pub fn cut_now(&mut self) {
        self.pending.clear();
        self.cut = true;
        let _ = self.to.shutdown(Shutdown::Write);
    }
}

pub struct Harness {
    pub client: Peer,
    pub server: Peer,
    /// client → server, and server → client.
    pub c2s: Tap,
    pub s2c: Tap,
}

impl Harness {
    pub fn new(client: TlsSession, server: TlsSession) -> Harness {
        let (client_sock, tap_client_side) = UnixStream::pair().unwrap();
        let (tap_server_side, server_sock) = UnixStream::pair().unwrap();
        let c2s = Tap::new(tap_client_side.try_clone().unwrap(), tap_server_side.try_clone().unwrap());
        let s2c = Tap::new(tap_server_side, tap_client_side);
        Harness { client: Peer::new(client, client_sock), server: Peer::new(server, server_sock), c2s, s2c }
    }

    /// Sessions from configs, the client asking for `name`.
    pub fn connect(client: &ClientTlsConfig, name: &str, server: &ServerTlsConfig) -> Harness {
        let name = client.server_name_for(name).expect("server name");
        Harness::new(
            TlsSession::client(client, name).expect("client session"),
            TlsSession::server(server).expect("server session"),
        )
    }

    /// One turn of everything. True if anything moved.
    pub fn turn(&mut self) -> bool {
        let mut moved = self.client.step();
        moved |= self.c2s.relay();
        moved |= self.server.step();
        moved |= self.s2c.relay();
        moved |= self.client.step();
        moved
    }

    /// Turns until nothing moves (the system is quiet).
    pub fn settle(&mut self) {
        for _ in 0..100_000 {
            if !self.turn() && !self.turn() {
                return;
            }
        }
        panic!("the sessions never settled");
    }

    /// Settles, then says whether both completed their handshake.
    pub fn handshake(&mut self) -> bool {
        self.settle();
        self.client.completed && self.server.completed
    }

    /// Sends `data` from one side and settles; returns what the other side received in that time.
    pub fn client_to_server(&mut self, data: &[u8]) -> Vec<u8> {
        let before = self.server.received.len();
        self.send_all(true, data);
        self.server.received[before..].to_vec()
    }

    pub fn server_to_client(&mut self, data: &[u8]) -> Vec<u8> {
        let before = self.client.received.len();
        self.send_all(false, data);
        self.client.received[before..].to_vec()
    }

    fn send_all(&mut self, from_client: bool, mut data: &[u8]) {
        for _ in 0..100_000 {
            let peer = if from_client { &mut self.client } else { &mut self.server };
            let n = peer.send(data);
            data = &data[n..];
            if data.is_empty() {
                break;
            }
            if !self.turn() && n == 0 {
                panic!("no progress sending: {} bytes left", data.len());
            }
        }
        self.settle();
    }
}

/// `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
