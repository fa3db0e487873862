//! What `stream` and `tls-stream` share: one connection's echoed byte stream (the pattern it
//! writes, how much the window admitted, wrote and got back verified) and the window rule. They
//! differ only in how bytes reach the socket (`writev` of the pattern's tiles, or a TLS session).

use std::io;
use std::time::Instant;

use crate::conn::ConnTable;
use crate::pattern::Pattern;
use crate::schedule::Schedule;
use crate::stats::Stats;
use crate::tcp::invalid;

pub struct EchoWindow {
    pub pattern: Pattern,
    /// Stream bytes issued: whole messages the window admitted (written or not yet).
    pub queued: u64,
    /// Stream bytes written (to the socket, or taken by the TLS session).
    pub written: u64,
    /// Stream bytes echoed and verified.
    pub received: u64,
}

impl EchoWindow {
    /// Connection `i`'s stream (each its own pattern).
    pub fn new(i: usize) -> EchoWindow {
        EchoWindow { pattern: Pattern::new(i as u64), queued: 0, written: 0, received: 0 }
    }

    /// Verifies an echoed chunk and counts it (bytes, and the `size`-byte messages it completes)
    /// while the schedule counts. A chunk with any wrong byte counts nothing, and the connection
    /// is dropped: after one wrong byte the stream cannot be trusted.
    pub fn echoed(&mut self, chunk: &[u8], size: u64, sched: &Schedule, stats: &mut Stats) -> io::Result<()> {
        let n = chunk.len() as u64;
        if self.received + n > self.written {
            return Err(invalid(format!("server echoed more than the {} bytes sent", self.written)));
        }
        self.pattern.verify(self.received, chunk).map_err(|m| invalid(format!("echo mismatch: {m}")))?;
        if sched.counting(Instant::now()) {
            stats.bytes += n;
            stats.ops += (self.received + n) / size - self.received / size;
        }
        self.received += n;
        Ok(())
    }

    /// Admits the whole messages the window (`window` bytes unanswered at most) has room for,
    /// while the schedule issues.
    pub fn admit(&mut self, size: u64, window: u64, sched: &Schedule) {
        if sched.issuing(Instant::now()) {
            while self.queued - self.received + size <= window {
                self.queued += size;
            }
        }
    }
}

/// Echo bytes still owed over the open connections of `table` (the report's "outstanding").
pub fn outstanding<'a>(table: &ConnTable, windows: impl Iterator<Item = &'a EchoWindow>) -> u64 {
    windows.enumerate().filter(|&(i, _)| table.is_open(i)).map(|(_, w)| w.queued - w.received).sum()
}
