//! An adopted datagram socket: receives into the batch with the sender's address record.

use crate::address;
use crate::batch::{kind, Batch};
use socket2::Socket;
use std::io;
use std::mem::MaybeUninit;

/// Datagrams per socket per loop turn before other sockets get a go.
const DATAGRAMS_PER_TURN: usize = 256;

#[derive(Debug)]
pub struct Datagram {
    pub sock: Socket,
    pub max_packet: usize,
    pub pending: bool,
    /// Datagrams read while the batch was full and dropped, as a kernel drops on a full queue.
    pub dropped: u64,
}

impl Datagram {
    pub fn new(sock: Socket, max_packet: usize) -> Datagram {
        Datagram { sock, max_packet, pending: true, dropped: 0 }
    }

    /// Receives into the batch; returns true when more may be waiting (budget spent).
    pub fn recv_into(&mut self, id: u32, batch: &mut Batch, scratch: &mut Vec<u8>) -> bool {
        if scratch.len() < self.max_packet {
            scratch.resize(self.max_packet, 0);
        }
        for _ in 0..DATAGRAMS_PER_TURN {
            let buf = as_uninit(&mut scratch[..self.max_packet]);
            match self.sock.recv_from(buf) {
                Ok((n, from)) => {
                    if batch.is_full() {
                        self.dropped += 1;
                        continue;
                    }
                    let n = n.min(self.max_packet);
                    let record = address::encode(&from, &mut batch.data);
                    batch.data.extend_from_slice(&scratch[..n]);
                    batch.push(kind::DATAGRAM, id, record as u32, n as u32);
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

fn as_uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: initialised bytes are valid MaybeUninit<u8>; recv only writes bytes into it.
    unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) }
}
