//! `pingpong`: every connection sends one `size`-byte message, waits for the whole echo,
//! verifies it and records the round trip, then sends the next (the loop is
//! `RoundTrips`). With `--conns 1` this is the server's latency; with many connections,
//! its rate for small messages.

use std::io;

use super::roundtrip::{Exchange, RoundTrips};
use crate::args::Config;
use crate::conn::ConnTable;
use crate::pattern::Pattern;
use crate::tcp::invalid;

pub fn workload(cfg: &Config) -> RoundTrips<Echo> {
    let exchanges = (0..cfg.conns)
        .map(|i| Echo {
            pattern: Pattern::new(i as u64),
            msg: vec![0; cfg.size],
            got: 0,
            offset: 0,
        })
        .collect();
    RoundTrips::new("pingpong", ConnTable::new(cfg.addr, cfg.conns), exchanges)
}

pub struct Echo {
    pattern: Pattern,
    msg: Vec<u8>,
    /// Echo bytes of the current message received so far.
    got: usize,
    /// Stream offset of the current message (each message has different bytes).
    offset: u64,
}

impl Exchange for Echo {
    fn prepare(&mut self) {
        if self.got == self.msg.len() {
            self.offset += self.msg.len() as u64;
        }
        self.pattern.fill(self.offset, &mut self.msg);
        self.got = 0;
    }

    fn request(&self) -> &[u8] {
        &self.msg
    }

    fn take(&mut self, echoed: &[u8], written: usize) -> io::Result<Option<u64>> {
        let n = echoed.len();
        if self.got + n > written {
            return Err(invalid(format!(
                "server echoed {} bytes, only {written} were sent",
                self.got + n
            )));
        }
        self.pattern
            .verify(self.offset + self.got as u64, echoed)
            .map_err(|m| invalid(format!("echo mismatch: {m}")))?;
        self.got += n;
        Ok((self.got == self.msg.len()).then_some(self.got as u64))
    }
}
