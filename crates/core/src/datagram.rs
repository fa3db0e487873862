//! An adopted datagram socket: receives many datagrams per syscall into the batch, each after its
//! sender's address record.

use crate::address;
use crate::batch::{kind, Batch};
use crate::mmsg::RecvBatch;
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
    /// The kernel's drop count for this socket when it was adopted (see `kernel_drops`).
    kernel_drops_at_adoption: u32,
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
        let kernel_drops_at_adoption = kernel_drops(&sock).unwrap_or(0);
        Ok(Datagram { sock: Arc::new(sock), family, max_packet, pending: true, kernel_drops_at_adoption, recv: None })
    }

    /// Datagrams lost on the way to the consumer since adoption. The core never throws away what
    /// it read (a full batch leaves datagrams in the kernel's queue), so floods overflow there, and
    /// the kernel counts them.
    pub fn dropped_total(&self) -> u64 {
        kernel_drops(&self.sock).map_or(0, |n| u64::from(n.wrapping_sub(self.kernel_drops_at_adoption)))
    }

    /// Receives into the batch; returns true when more may be waiting (budget spent, or the batch
    /// is full: then the datagrams wait in the kernel's queue, whose drops `dropped_total` counts).
    pub fn recv_into(&mut self, id: u32, batch: &mut Batch) -> bool {
        let slot = self.max_packet;
        // Buffers are made on first use, so an idle port costs nothing.
        let recv = self.recv.get_or_insert_with(|| RecvBatch::new(slot, (RECV_BYTES / slot).clamp(1, RECV_SLOTS)));
        let mut received = 0;
        while received < DATAGRAMS_PER_TURN {
            if batch.is_full() {
                return true;
            }
            match recv.recv(self.sock.as_raw_fd()) {
                Ok(n) => {
                    // All of one receive goes in, even past the cap: it overshoots by at most
                    // RECV_BYTES, and nothing read is ever thrown away.
                    for i in 0..n {
                        let (bytes, from) = recv.message(i);
                        let record = address::encode(&from, &mut batch.data);
                        batch.data.extend_from_slice(bytes);
                        batch.push(kind::DATAGRAM, id, record as u32, bytes.len() as u32);
                    }
                    received += n;
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

/// `SO_MEMINFO` (asm-generic/socket.h; not in the libc crate) and the length of its answer.
const SO_MEMINFO: libc::c_int = 55;
const SK_MEMINFO_VARS: usize = 9;

/// The kernel's count of datagrams dropped at this socket (`SK_MEMINFO_DROPS`: the number
/// /proc/net/udp shows as `drops`), read in O(1) in any network namespace. It is a u32 in the
/// kernel: callers take differences with wrapping arithmetic. None where the kernel does not say.
pub fn kernel_drops(sock: &Socket) -> Option<u32> {
    let mut info = [0u32; SK_MEMINFO_VARS];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: `info` is a writable buffer of `len` bytes; the kernel writes at most `len` bytes and
    // sets `len` to what it wrote. The socket outlives the call (borrowed).
    let rc = unsafe {
        libc::getsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, SO_MEMINFO, info.as_mut_ptr().cast(), &mut len)
    };
    let drops = libc::SK_MEMINFO_DROPS as usize;
    (rc == 0 && len as usize > drops * 4).then(|| info[drops])
}
