//! An adopted or accepted stream connection: its socket, write queue and reading state.

pub mod admission;
pub mod listener;
mod service;
pub mod state;
pub mod tls;
mod tls_service;
pub mod write_queue;

use crate::{batch::Batch, wire::kind};
use crate::service::ReadEdges;
use crate::sys::scm;
use admission::Ticket;
use std::os::fd::{AsFd, OwnedFd};
use tls::TlsLayer;
use crate::stream::state::{Input, StreamState};
use crate::stream::write_queue::{send_now, Flush, WriteQueue};
use socket2::Socket;
use std::io;
use std::mem::MaybeUninit;
use std::net::Shutdown;

/// Bytes asked of the kernel per read.
const READ_CHUNK: usize = 64 * 1024;
/// Reads at least this large stay in their own buffer until the consumer copies them out (and
/// gives the buffer back); smaller ones are copied into the batch's shared buffer at once.
const OWN_BUFFER_MIN: usize = 16 * 1024;
/// Reads per connection per loop turn before others get a go (fairness under edge triggering).
const READS_PER_TURN: usize = 4;

#[derive(Debug)]
pub struct Stream {
    pub sock: Socket,
    pub queue: WriteQueue,
    /// What the edges said of its read side (the short-read rules of `read_into` and the relay).
    pub edges: ReadEdges,
    /// Where the connection is in its life (the only record of it).
    pub state: StreamState,
    /// An AF_UNIX connection: reads use recvmsg to receive descriptors (SCM_RIGHTS).
    unix: bool,
    /// Descriptors to send with the first byte of the next write.
    outgoing_fds: Vec<OwnedFd>,
    /// The listener that accepted it and what it counts against there (released on removal).
    pub origin: Option<(u32, Ticket)>,
    /// Its TLS layer (a TLS port's connection, a connect with TLS, `startTLS`): reads and writes
    /// go through its session. None for a plain connection, whose paths never look further.
    pub tls: Option<Box<TlsLayer>>,
    /// The core made this socket (accepted or connected it) and holds its only descriptor, so
    /// closing it takes it out of epoll: no deregistration call is needed.
    pub only_descriptor: bool,
}

/// What reading left behind.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadState {
    /// Nothing more to read until the next edge.
    Idle,
    /// More may be waiting: the turn's budget or the batch ran out.
    More,
    /// The peer sent FIN (an EOF record was pushed).
    Eof,
}

impl Stream {
    pub fn new(sock: Socket, unix: bool) -> Stream {
        Stream {
            sock,
            queue: WriteQueue::default(),
            edges: ReadEdges::UNKNOWN,
            state: StreamState::default(),
            unix,
            outgoing_fds: Vec::new(),
            origin: None,
            tls: None,
            only_descriptor: false,
        }
    }

    /// A connection whose bytes go through `tls` from the start.
    pub fn with_tls(sock: Socket, unix: bool, tls: Box<TlsLayer>) -> Stream {
        Stream { tls: Some(tls), ..Stream::new(sock, unix) }
    }

    /// An outbound connection whose `connect` is in progress.
    pub fn connecting(sock: Socket, unix: bool) -> Stream {
        Stream { state: StreamState::connecting(), only_descriptor: true, ..Stream::new(sock, unix) }
    }

    /// Queues a duplicate of `fd` to go with the first byte of the next write (UNIX only: ENOTSUP
    /// otherwise; EBADF for a bad fd; ETOOMANYREFS past the kernel's limit per message).
    pub fn send_file_descriptor(&mut self, fd: std::os::fd::RawFd) -> io::Result<()> {
        if !self.unix || self.tls.is_some() {
            return Err(io::Error::from_raw_os_error(libc::ENOTSUP));
        }
        if self.outgoing_fds.len() >= scm::MAX_FDS {
            return Err(io::Error::from_raw_os_error(libc::ETOOMANYREFS));
        }
        self.outgoing_fds.push(crate::sys::fd::duplicate_cloexec(fd)?);
        Ok(())
    }

    /// Descriptors wait to go with the next write (`send_file_descriptor`).
    pub fn has_fds_to_send(&self) -> bool {
        !self.outgoing_fds.is_empty()
    }

    /// What the entry the socket came from (a proxy session's client or upstream) learnt of its
    /// read side. A TLS session may hold bytes its handshake read: then the stream reads anyway.
    pub fn take_edges(&mut self, mut edges: ReadEdges) {
        edges.readable |= self.tls.is_some();
        self.edges = edges;
    }

    pub fn wants_read(&self) -> bool {
        // A TLS session may hold plaintext that no edge will announce: look on every resume.
        (self.edges.readable || self.tls.is_some()) && self.state.reads()
    }

    /// Bytes `write` accepted that have not left yet (for TLS, an upper bound: see `TlsLayer`).
    pub fn buffered(&self) -> usize {
        match &self.tls {
            None => self.queue.len(),
            Some(tls) => tls.pending(&self.queue),
        }
    }

    /// Nothing written waits to be sent (for TLS: the session has sent everything, and its
    /// handshake is over).
    pub fn is_flushed(&self) -> bool {
        match &self.tls {
            None => self.queue.is_empty(),
            Some(tls) => tls.is_flushed(&self.queue),
        }
    }

    /// Reads into the batch until the kernel is drained, the batch is full or the budget is spent.
    /// `buf` is a read buffer of READ_CHUNK capacity that the caller keeps between reads.
    pub fn read_into(&mut self, id: u32, batch: &mut Batch, buf: &mut Vec<u8>) -> io::Result<ReadState> {
        for _ in 0..READS_PER_TURN {
            if batch.is_full() {
                return Ok(ReadState::More);
            }
            match self.recv(id, batch, buf) {
                Ok(0) => {
                    self.edges.drained();
                    self.state.on(Input::PeerEof, self.queue.is_empty());
                    batch.push(kind::EOF, id, 0, 0);
                    return Ok(ReadState::Eof);
                }
                Ok(n) => {
                    if n >= OWN_BUFFER_MIN {
                        let next = batch.pooled_buffer().unwrap_or_else(|| Vec::with_capacity(READ_CHUNK));
                        let mut chunk = std::mem::replace(buf, next);
                        chunk.truncate(n);
                        batch.push_chunk(id, chunk);
                    } else {
                        let offset = batch.data.len();
                        batch.data.extend_from_slice(&buf[..n]);
                        batch.push_data(id, offset, n);
                    }
                    if n < READ_CHUNK {
                        self.edges.short_read();
                        if !self.edges.worth_reading() {
                            return Ok(ReadState::Idle);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.edges.drained();
                    return Ok(ReadState::Idle);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ReadState::More)
    }

    /// One read into `buf` (which then holds at least the `n` bytes returned). A UNIX connection
    /// reads with recvmsg: descriptors that came along are handed over in an FDS record before the
    /// data they came with; a control message the kernel truncated ends the connection (EMSGSIZE).
    fn recv(&mut self, id: u32, batch: &mut Batch, buf: &mut Vec<u8>) -> io::Result<usize> {
        if !self.unix {
            buf.clear();
            buf.reserve(READ_CHUNK);
            let n = recv(&self.sock, &mut buf.spare_capacity_mut()[..READ_CHUNK])?;
            // SAFETY: recv initialised the first `n` bytes of the spare capacity.
            unsafe { buf.set_len(n) };
            return Ok(n);
        }
        if buf.len() != READ_CHUNK {
            buf.clear();
            buf.resize(READ_CHUNK, 0); // recvmsg writes into initialised memory; kept between reads
        }
        let got = scm::recv_with_fds(self.sock.as_fd(), &mut buf[..], scm::MAX_FDS)?;
        if got.truncated {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        if !got.fds.is_empty() {
            batch.push_fds(id, got.fds);
        }
        Ok(got.bytes)
    }

    /// `write` from the consumer: straight to the socket (one `sendmsg` for all the chunks) when
    /// nothing is queued; what the kernel does not take is queued in order. Returns the bytes
    /// queued afterwards. Writes the state no longer accepts are dropped.
    pub fn write_vectored(&mut self, chunks: &[&[u8]]) -> io::Result<usize> {
        if !self.state.accepts_writes() {
            return Ok(self.buffered());
        }
        if let Some(tls) = &mut self.tls {
            let pending = tls.write(&self.sock, &mut self.queue, chunks)?;
            if pending > 0 {
                self.state.on(Input::Queued, false);
            }
            return Ok(pending);
        }
        if !self.outgoing_fds.is_empty() {
            if let Some(first) = chunks.iter().position(|c| !c.is_empty()) {
                return self.write_with_fds(&chunks[first..]);
            }
        }
        let mut skip = if self.queue.is_empty() { send_now(&self.sock, chunks)? } else { 0 };
        self.queue.count_sent_directly(skip);
        for chunk in chunks {
            if skip >= chunk.len() {
                skip -= chunk.len();
                continue;
            }
            self.queue.push(&chunk[skip..]);
            skip = 0;
        }
        if !self.queue.is_empty() {
            self.state.on(Input::Queued, false);
        }
        Ok(self.queue.len())
    }

    /// A write that carries the descriptors queued by `send_file_descriptor` with its first byte:
    /// through the queue, which sends them in their own sendmsg.
    fn write_with_fds(&mut self, chunks: &[&[u8]]) -> io::Result<usize> {
        let was_empty = self.queue.is_empty();
        let fds = std::mem::take(&mut self.outgoing_fds);
        self.queue.push_with_fds(chunks[0], fds);
        for chunk in &chunks[1..] {
            self.queue.push(chunk);
        }
        if was_empty {
            self.queue.flush(&self.sock)?;
        }
        if !self.queue.is_empty() {
            self.state.on(Input::Queued, false);
        }
        Ok(self.queue.len())
    }

    /// A relay's read: plaintext, through the session for TLS. Ok(0) is the peer's end.
    pub fn recv_plain(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.tls {
            Some(tls) => tls.recv_plain(&self.sock, buf),
            None => std::io::Read::read(&mut &self.sock, buf),
        }
    }

    /// A relay's write of plaintext, through the session for TLS; returns how many bytes were
    /// taken (0 or WouldBlock: wait for the writable edge).
    pub fn send_plain(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match &mut self.tls {
            Some(tls) => tls.send_plain(&self.sock, bytes),
            None => self.sock.send_with_flags(bytes, libc::MSG_NOSIGNAL),
        }
    }

    /// Sends queued bytes after a writable edge; returns true when the queue is now empty (for
    /// TLS: when everything written has left, see `is_flushed`).
    pub fn flush(&mut self) -> io::Result<bool> {
        if let Some(tls) = &mut self.tls {
            return tls.flush(&self.sock, &mut self.queue);
        }
        if self.queue.is_empty() {
            return Ok(true);
        }
        Ok(matches!(self.queue.flush(&self.sock)?, Flush::Done))
    }

    /// The FIN of a half-close (the state decided it is due). With TLS, close_notify goes first
    /// and the FIN follows once it has left (see `TlsLayer::shutdown_write`).
    pub fn send_fin(&mut self) -> io::Result<()> {
        if let Some(tls) = &mut self.tls {
            return tls.shutdown_write(&self.sock, &mut self.queue);
        }
        ignore_not_connected(self.sock.shutdown(Shutdown::Write))
    }

    /// Orderly close: SHUT_RDWR so the peer sees EOF even while another fd holds the socket. With
    /// TLS, close_notify first.
    pub fn shutdown_both(&mut self) {
        if let Some(tls) = &mut self.tls {
            tls.close(&self.sock);
        }
        let _ = self.sock.shutdown(Shutdown::Both);
    }

    /// Abortive close: discard queued bytes; the close that follows (dropping `sock`) sends RST when
    /// this duplicate is the socket's last reference.
    pub fn prepare_abort(&mut self) {
        self.queue.clear();
        let _ = self.sock.set_linger(Some(std::time::Duration::ZERO));
        let _ = self.sock.shutdown(Shutdown::Both); // no close_notify: an abort
    }
}

fn recv(sock: &Socket, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    sock.recv(buf)
}

fn ignore_not_connected(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(()),
        other => other,
    }
}
