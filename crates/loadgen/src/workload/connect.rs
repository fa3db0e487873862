//! `connect` (and `proxy-connect`, the same through a proxy): `conns` concurrent loops,
//! each doing non-blocking connect → write a `size`-byte message → read and verify its
//! echo → close, and starting over at once. Measures accept + short-lived-connection
//! cost. Refused or reset connections are counted as errors and the slot simply starts
//! a new connection.

use std::io;

use mio::event::Event;

use super::per_connection::{PerConnection, Slots};
use crate::args::Config;
use crate::conn::read_chunks;
use crate::tcp::write_pending;

pub struct Connect {
    slots: Slots,
}

impl Connect {
    pub fn new(cfg: &Config) -> Connect {
        Connect { slots: Slots::new(cfg) }
    }
}

impl PerConnection for Connect {
    const NAME: &'static str = "connect";
    fn slots(&self) -> &Slots {
        &self.slots
    }
    fn slots_mut(&mut self) -> &mut Slots {
        &mut self.slots
    }

    /// `drain` when the event reported a close or error: read to the end even after a short read.
    fn advance(&mut self, i: usize, event: &Event) -> io::Result<bool> {
        let drain = event.is_read_closed() || event.is_error();
        let Slots { table, echoes, scratch } = &mut self.slots;
        let Some(sock) = table.ready(i)? else {
            return Ok(false);
        };
        let echo = &mut echoes[i];
        write_pending(sock, &echo.msg, &mut echo.wpos)?;
        read_chunks(sock, scratch, drain, |chunk| {
            echo.echoed(chunk)?;
            Ok(!echo.complete())
        })
        .map_err(|e| echo.failed(e))?;
        Ok(echo.complete())
    }
}
