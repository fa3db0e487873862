//! An adopted datagram socket: receives many datagrams per syscall into the batch, each after its
//! sender's address record. A socket whose owner turned `UDP_GRO` on may receive several datagrams
//! as one buffer: they are cut apart here, so the consumer sees the same datagrams either way.

pub mod options;
pub mod outbox;
pub mod send_queue;

use crate::wire::address;
use crate::service::Step;
use crate::{batch::Batch, wire::kind};
use crate::sys::mmsg::RecvBatch;
use crate::sys::{meminfo, udp_offload};
use socket2::Socket;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

/// Datagrams per socket per loop turn before other sockets get a go.
const DATAGRAMS_PER_TURN: usize = 256;
/// Receive buffers per port: at most this many datagrams per `recvmmsg`, and at most this many bytes.
const RECV_SLOTS: usize = 32;
const RECV_BYTES: usize = 1 << 20;

pub struct Datagram {
    /// Shared with the consumer's thread, which sends on it without taking the reactor's lock.
    pub sock: Arc<Socket>,
    pub family: i32,
    pub max_packet: usize,
    pub pending: bool,
    /// `UDP_GRO` is on: receive buffers must hold a whole coalesced buffer, whatever `max_packet`.
    gro: bool,
    /// The kernel's drop count for this socket when it was adopted (see `kernel_drops`).
    kernel_drops_at_adoption: u32,
    /// Datagrams of coalesced buffers that did not fit a receive buffer (before GRO was noticed).
    cut_by_the_kernel: u64,
    recv: Option<RecvBatch>,
}

impl std::fmt::Debug for Datagram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Datagram").field("fd", &self.sock.as_raw_fd()).field("max_packet", &self.max_packet).finish()
    }
}

impl Datagram {
    pub fn new(sock: Socket, max_packet: usize) -> io::Result<Datagram> {
        let family = i32::from(sock.domain()?);
        let kernel_drops_at_adoption = meminfo::kernel_drops(&sock).unwrap_or(0);
        let gro = udp_offload::gro_enabled(&sock);
        Ok(Datagram { sock: Arc::new(sock), family, max_packet, pending: true, gro, kernel_drops_at_adoption, cut_by_the_kernel: 0, recv: None })
    }

    /// Datagrams lost on the way to the consumer since adoption. The core never throws away what
    /// it read (a full batch leaves datagrams in the kernel's queue), so floods overflow there, and
    /// the kernel counts them.
    pub fn dropped_total(&self) -> u64 {
        let kernel = meminfo::kernel_drops(&self.sock).map_or(0, |n| u64::from(n.wrapping_sub(self.kernel_drops_at_adoption)));
        kernel + self.cut_by_the_kernel
    }

    /// Receives what is waiting into the batch.
    pub fn service(&mut self, id: u32, batch: &mut Batch) -> Step {
        if self.pending && self.recv_into(id, batch) {
            Step::More
        } else {
            Step::Idle
        }
    }

    /// Receives into the batch; returns true when more may be waiting (budget spent, or the batch
    /// is full: then the datagrams wait in the kernel's queue, whose drops `dropped_total` counts).
    fn recv_into(&mut self, id: u32, batch: &mut Batch) -> bool {
        let max_packet = self.max_packet;
        // Without GRO a slot of max_packet bytes lets the kernel do the truncation; with it, a slot
        // must hold a whole coalesced buffer, cut apart (and each datagram truncated) below.
        let slot = if self.gro { udp_offload::GRO_BUFFER } else { max_packet };
        let slots = if self.gro { RECV_SLOTS } else { (RECV_BYTES / slot).clamp(1, RECV_SLOTS) };
        // Buffers are made on first use, so an idle port costs nothing.
        let recv = self.recv.get_or_insert_with(|| RecvBatch::new(slot, slots));
        let mut received = 0;
        while received < DATAGRAMS_PER_TURN {
            if batch.is_full() {
                return true;
            }
            match recv.recv(self.sock.as_raw_fd()) {
                Ok(n) => {
                    // All of one receive goes in, even past the cap: it overshoots by at most one
                    // receive's worth (up to 32 × 64 KiB with GRO), and nothing read is thrown away.
                    let mut coalesced = false;
                    for i in 0..n {
                        let (bytes, from, segment, length) = recv.message_and_length(i);
                        coalesced |= segment > 0;
                        let message = Message { bytes, from: &from, segment, length };
                        received += message.push_into(id, batch, max_packet, &mut self.cut_by_the_kernel);
                    }
                    if coalesced && !self.gro {
                        // UDP_GRO was turned on after adoption (or the kernel could not tell):
                        // from now on receive into slots that hold a whole coalesced buffer.
                        self.gro = true;
                        self.recv = None;
                        return true;
                    }
                    if n < recv.capacity() {
                        // The queue is drained; the next datagram raises a new edge.
                        self.pending = false;
                        return false;
                    }
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => {
                        self.pending = false;
                        return false;
                    }
                    io::ErrorKind::Interrupted => {}
                    // An ICMP error queued on the socket (ECONNREFUSED in connected mode, ...).
                    _ => batch.push(kind::DATAGRAM_ERROR, id, e.raw_os_error().unwrap_or(0) as u32, 0),
                },
            }
        }
        true
    }
}

/// One received message: a datagram, or several coalesced by the kernel (`segment` > 0), of
/// `length` bytes of which `bytes` were received (less when the receive buffer was too short).
struct Message<'a> {
    bytes: &'a [u8],
    from: &'a socket2::SockAddr,
    segment: usize,
    length: usize,
}

impl Message<'_> {
    /// Pushes each datagram, after its sender's record, truncated to `max_packet`; datagrams the
    /// kernel cut off (a coalesced buffer longer than the receive buffer) are added to `cut`.
    /// Returns how many were pushed.
    fn push_into(&self, id: u32, batch: &mut Batch, max_packet: usize, cut: &mut u64) -> usize {
        let record = address::encode(self.from, &mut batch.data);
        let record_len = batch.data.len() - record;
        let whole = |r: &std::ops::Range<usize>| r.start == 0 || r.end <= self.bytes.len();
        *cut += udp_offload::segments(self.length, self.segment).filter(|r| !whole(r)).count() as u64;
        let mut pushed = 0;
        for range in udp_offload::segments(self.length, self.segment).filter(whole) {
            // Each datagram has its own copy of the sender's record (the wire format puts the
            // payload right after it): the first uses the one just encoded, the others copy it.
            let at = if pushed == 0 {
                record
            } else {
                let at = batch.data.len();
                batch.data.extend_from_within(record..record + record_len);
                at
            };
            let end = range.end.min(range.start + max_packet).min(self.bytes.len());
            let datagram = &self.bytes[range.start..end];
            batch.data.extend_from_slice(datagram);
            batch.push(kind::DATAGRAM, id, at as u32, datagram.len() as u32);
            pushed += 1;
        }
        pushed
    }
}

