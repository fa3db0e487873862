//! `udp`: each socket (one by default), connected to the server, keeps `inflight`
//! datagrams outstanding. A datagram is an 8-byte little-endian sequence number followed
//! by pattern bytes that depend on it; every echo is verified and replaced by a new one.
//!
//! Datagrams go out and come back in batches (`sendmmsg`/`recvmmsg`, up to 64 per
//! syscall), so the load generator spends far less per datagram than a server answering
//! one at a time. Echoes are replaced once an eighth of the window is owed, not one by
//! one (so between 7/8 of `inflight` and `inflight` are in flight): a server that echoes
//! datagram by datagram would otherwise make every send a batch of one. With `--gso`,
//! each batch of equal-size datagrams leaves as one `UDP_SEGMENT` send that the kernel
//! cuts apart, and echoes are received with `UDP_GRO`, so a server that answers with GSO
//! too has its echoes delivered as one buffer (split here by the segment size).
//!
//! UDP may drop datagrams. A lost datagram would silently shrink the window (and a run
//! that lost all of them would stall), so a datagram not echoed within `LOSS_TIMEOUT` is
//! counted as lost and replaced. In particular, when no echo arrives for `LOSS_TIMEOUT`
//! the whole window is counted lost and refilled. Late echoes of datagrams already
//! counted as lost are ignored.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};

use super::Workload;
use crate::args::Config;
use crate::mmsg::{self, MAX_BATCH};
use crate::pattern::Pattern;
use crate::schedule::Schedule;
use crate::stats::Stats;

const LOSS_TIMEOUT: Duration = Duration::from_millis(50);
const SEQ_LEN: usize = 8;
const RCVBUF: usize = 1 << 20;

pub struct Udp {
    addr: SocketAddr,
    socks_wanted: usize,
    size: usize,
    inflight: usize,
    /// Datagrams per send with GSO (1 without).
    segments: usize,
    /// Datagrams owed before a batch is sent (see the module comment).
    batch_min: usize,
    socks: Vec<Sock>,
    pattern: Pattern,
    /// Datagrams being sent, back to back (`size` bytes each).
    out: Vec<u8>,
    /// Echoes received, one slot each: `size + 1` bytes (so an oversized echo shows), or
    /// with GRO a whole coalesced buffer.
    slot: usize,
    inbuf: Vec<u8>,
    lens: [usize; MAX_BATCH],
    /// With GRO: each received buffer's segment size (0: a single datagram).
    gro: [usize; MAX_BATCH],
}

struct Sock {
    sock: UdpSocket,
    win: Window,
    /// Datagrams owed to the window (not sent yet because the socket would block).
    to_send: usize,
}

/// The datagrams of one socket that are in flight.
#[derive(Default)]
struct Window {
    /// Send times of sequence numbers `base..next_seq`; `None` once echoed or lost.
    /// Sequence numbers are sent in order, so the oldest (first to time out) is in front.
    sent: VecDeque<Option<Instant>>,
    base: u64,
    next_seq: u64,
    /// Datagrams sent and not yet echoed or counted lost.
    outstanding: usize,
}

impl Window {
    /// Records that datagram `next_seq` was sent at `at`.
    fn sent(&mut self, at: Instant) {
        self.sent.push_back(Some(at));
        self.next_seq += 1;
        self.outstanding += 1;
    }

    /// Send time of the oldest datagram in flight.
    fn oldest(&self) -> Option<Instant> {
        self.sent.iter().flatten().next().copied()
    }

    /// Marks `seq` answered; false if it is not outstanding (late, duplicate).
    fn answer(&mut self, seq: u64) -> bool {
        let Some(slot) = seq
            .checked_sub(self.base)
            .and_then(|i| self.sent.get_mut(i as usize))
        else {
            return false;
        };
        if slot.take().is_none() {
            return false;
        }
        self.outstanding -= 1;
        while let Some(None) = self.sent.front() {
            self.sent.pop_front();
            self.base += 1;
        }
        true
    }

    /// Gives up on datagrams sent before `cutoff`; returns how many.
    fn expire(&mut self, cutoff: Instant) -> usize {
        let mut lost = 0;
        while let Some(&front) = self.sent.front() {
            match front {
                Some(t) if t > cutoff => break,
                Some(_) => lost += 1,
                None => {}
            }
            self.sent.pop_front();
            self.base += 1;
        }
        self.outstanding -= lost;
        lost
    }
}

impl Udp {
    pub fn new(cfg: &Config) -> Udp {
        let segments = if cfg.gso {
            mmsg::MAX_SEGMENTS
                .min(mmsg::MAX_GSO_BYTES / cfg.size)
                .max(1)
        } else {
            1
        };
        let slot = if cfg.gso { 65_536 } else { cfg.size + 1 };
        Udp {
            addr: cfg.addr,
            socks_wanted: cfg.conns,
            size: cfg.size,
            inflight: cfg.inflight,
            segments,
            batch_min: cfg.inflight.div_ceil(8),
            socks: Vec::new(),
            // One pattern for all sockets: the sequence numbers are per socket, but the
            // bytes after them depend on the number, so a stray datagram still fails
            // unless it is an exact copy of one this socket sent.
            pattern: Pattern::new(0),
            out: Vec::new(),
            slot,
            inbuf: vec![0; slot * MAX_BATCH],
            lens: [0; MAX_BATCH],
            gro: [0; MAX_BATCH],
        }
    }

    /// Sends what the window is owed, a batch per syscall, until the socket would block.
    fn send_owed(&mut self, i: usize, sched: &Schedule, stats: &mut Stats) {
        if !sched.issuing(Instant::now()) {
            return;
        }
        let size = self.size;
        // Less than `batch_min` owed means the rest of the window is in flight: its
        // echoes or their loss timeouts make up the batch.
        while self.socks[i].to_send >= self.batch_min {
            let owed = self.socks[i].to_send.min(MAX_BATCH * self.segments);
            // Sequence numbers are only taken by datagrams actually sent: what the kernel
            // refuses is built again, with the same numbers, next time.
            let first = self.socks[i].win.next_seq;
            self.out.resize(owed * size, 0);
            for k in 0..owed {
                let seq = first + k as u64;
                let offset = payload_offset(size, seq);
                let d = &mut self.out[k * size..(k + 1) * size];
                d[..SEQ_LEN].copy_from_slice(&seq.to_le_bytes());
                self.pattern.fill(offset, &mut d[SEQ_LEN..]);
            }
            let msgs: Vec<IoSlice> = self
                .out
                .chunks(size * self.segments)
                .map(IoSlice::new)
                .collect();
            let s = &mut self.socks[i];
            match mmsg::send_batch(s.sock.as_fd(), &msgs) {
                Ok(0) => return, // wait for writable
                Ok(m) => {
                    let sent: usize = msgs[..m].iter().map(|d| d.len() / size).sum();
                    let now = Instant::now();
                    for _ in 0..sent {
                        s.win.sent(now);
                    }
                    s.to_send -= sent;
                    if m < msgs.len() {
                        return; // the socket buffer is full
                    }
                }
                // E.g. ECONNREFUSED reported from an earlier ICMP error: retried on the timer.
                Err(e) => {
                    stats.error(format_args!("udp socket {i}: send: {e}"));
                    return;
                }
            }
        }
    }

    fn receive(&mut self, i: usize, sched: &Schedule, stats: &mut Stats) {
        let slot = self.slot;
        let gro = self.segments > 1;
        loop {
            let n = match mmsg::recv_batch(
                self.socks[i].sock.as_fd(),
                &mut self.inbuf,
                slot,
                &mut self.lens,
                gro.then_some(&mut self.gro[..]),
            ) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) => {
                    // Pending ICMP errors surface here once each; keep draining.
                    stats.error(format_args!("udp socket {i}: recv: {e}"));
                    continue;
                }
            };
            let counting = sched.counting(Instant::now());
            for k in 0..n {
                let message = &self.inbuf[k * slot..k * slot + self.lens[k]];
                // A GRO buffer holds several echoes of `segment` bytes each.
                let segment = if gro && self.gro[k] > 0 {
                    self.gro[k]
                } else {
                    message.len().max(1)
                };
                // `loop`, not `chunks`: an empty datagram must still be checked (and fail).
                let mut at = 0;
                loop {
                    let end = (at + segment).min(message.len());
                    let echo = &message[at..end];
                    match self.socks[i].take_echo(echo, self.size, &self.pattern) {
                        Ok(true) if counting => {
                            stats.ops += 1;
                            stats.bytes += echo.len() as u64;
                        }
                        Ok(_) => {}
                        Err(why) => stats.error(format_args!("udp socket {i}: {why}")),
                    }
                    at = end;
                    if at >= message.len() {
                        break;
                    }
                }
            }
            if n < self.lens.len() {
                return; // a short batch emptied the socket
            }
        }
    }
}

impl Sock {
    /// Checks one echo; `Ok(true)` if it answers a datagram in flight (which is then owed
    /// again), `Ok(false)` if it is late (already counted lost) or a duplicate: neither
    /// counted nor an error.
    fn take_echo(&mut self, data: &[u8], size: usize, pattern: &Pattern) -> Result<bool, String> {
        if data.len() != size {
            return Err(format!(
                "echo of {} bytes, expected {size}",
                if data.len() == size + 1 {
                    format!("more than {size}")
                } else {
                    data.len().to_string()
                }
            ));
        }
        let seq = u64::from_le_bytes(data[..SEQ_LEN].try_into().expect("8 bytes"));
        if seq >= self.win.next_seq {
            return Err(format!("echo with sequence {seq}, never sent"));
        }
        pattern
            .verify(payload_offset(size, seq), &data[SEQ_LEN..])
            .map_err(|m| format!("echo mismatch in datagram {seq}: {m}"))?;
        if !self.win.answer(seq) {
            return Ok(false);
        }
        self.to_send += 1;
        Ok(true)
    }
}

/// Stream offset of datagram `seq`'s pattern bytes (after its sequence number).
fn payload_offset(size: usize, seq: u64) -> u64 {
    seq.wrapping_mul(size as u64) + SEQ_LEN as u64
}

impl Workload for Udp {
    fn start(
        &mut self,
        registry: &Registry,
        sched: &Schedule,
        stats: &mut Stats,
    ) -> io::Result<()> {
        let any: SocketAddr = match self.addr {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        for i in 0..self.socks_wanted {
            let mut sock = UdpSocket::bind(any)?;
            // Room for the whole window's echoes even while this process is descheduled,
            // so that datagrams lost are the server's (a full buffer drops silently).
            // Best effort: capped by net.core.rmem_max.
            let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(RCVBUF);
            sock.connect(self.addr)?;
            if self.segments > 1 {
                mmsg::set_udp_segment(sock.as_fd(), self.size)
                    .map_err(|e| io::Error::new(e.kind(), format!("--gso: UDP_SEGMENT: {e}")))?;
                mmsg::set_udp_gro(sock.as_fd())
                    .map_err(|e| io::Error::new(e.kind(), format!("--gso: UDP_GRO: {e}")))?;
            }
            registry.register(&mut sock, Token(i), Interest::READABLE | Interest::WRITABLE)?;
            self.socks.push(Sock {
                sock,
                win: Window::default(),
                to_send: self.inflight,
            });
            self.send_owed(i, sched, stats);
        }
        Ok(())
    }

    fn on_event(
        &mut self,
        _registry: &Registry,
        event: &Event,
        sched: &Schedule,
        stats: &mut Stats,
    ) {
        let i = event.token().0;
        if event.is_readable() {
            self.receive(i, sched, stats);
        }
        self.send_owed(i, sched, stats);
    }

    fn on_tick(
        &mut self,
        _registry: &Registry,
        sched: &Schedule,
        stats: &mut Stats,
    ) -> Option<Instant> {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for i in 0..self.socks.len() {
            let lost = now
                .checked_sub(LOSS_TIMEOUT)
                .map_or(0, |cutoff| self.socks[i].win.expire(cutoff));
            if lost > 0 {
                if sched.counting(now) {
                    stats.lost += lost as u64;
                }
                self.socks[i].to_send += lost;
            }
            // Also retries sends that failed or would have blocked.
            self.send_owed(i, sched, stats);
            let s = &self.socks[i];
            let due = match s.win.oldest() {
                Some(oldest) => oldest + LOSS_TIMEOUT,
                // Nothing in flight (every send failed): retry after a timeout's pause.
                None if s.to_send > 0 => now + LOSS_TIMEOUT,
                None => continue,
            };
            next = Some(next.map_or(due, |n| n.min(due)));
        }
        next
    }

    fn outstanding(&self) -> (u64, &'static str) {
        (
            self.socks.iter().map(|s| s.win.outstanding as u64).sum(),
            "datagrams",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_answers_expires_and_ignores_late_echoes() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut w = Window::default();
        for n in 0..4 {
            w.sent(ms(n)); // seq n sent at t0 + n ms
        }
        assert_eq!(w.outstanding, 4);
        assert!(w.answer(1));
        assert!(!w.answer(1), "duplicate");
        assert!(!w.answer(9), "never sent");
        assert_eq!(w.oldest(), Some(ms(0)));
        // Seq 0 and 2 were sent by t0 + 2 ms; 1 is already answered.
        assert_eq!(w.expire(ms(2)), 2);
        assert_eq!((w.outstanding, w.base, w.oldest()), (1, 3, Some(ms(3))));
        assert!(!w.answer(0), "late echo of a lost datagram");
        assert!(w.answer(3));
        assert_eq!((w.outstanding, w.oldest(), w.sent.len()), (0, None, 0));
        w.sent(ms(10));
        assert_eq!(w.next_seq, 5);
        assert!(w.answer(4));
    }
}
