//! Stream connections: writes, state inputs, addresses and TCP options, by id.

use crate::error::os_error;
use crate::numbers;
use crate::reactor::NativeReactor;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use reactor_core::wire::bits;
use reactor_core::{wire::address, StreamInput};

#[napi]
impl NativeReactor {
    /// Writes (inline when nothing is queued); returns the bytes still queued (0 for a closed id).
    #[napi(catch_unwind)]
    pub fn write(&self, id: u32, data: Uint8ArraySlice) -> u32 {
        self.live_core().map_or(0, |c| c.write(id, data.as_ref()) as u32)
    }

    #[napi(catch_unwind)]
    pub fn writev(&self, id: u32, chunks: Vec<Uint8ArraySlice>) -> u32 {
        let slices: Vec<&[u8]> = chunks.iter().map(|c| c.as_ref()).collect();
        self.live_core().map_or(0, |c| c.write_vectored(id, &slices) as u32)
    }

    #[napi(catch_unwind)]
    pub fn buffer_size(&self, id: u32) -> u32 {
        self.live_core().map_or(0, |c| c.buffer_size(id) as u32)
    }

    /// The connection's state (STATE_* bits; STATE_GONE once the core no longer knows it).
    #[napi(catch_unwind)]
    pub fn stream_state(&self, id: u32) -> u32 {
        self.live_core().map_or(bits::GONE, |c| c.stream_state(id))
    }

    /// Stops reading; returns the state afterwards.
    #[napi(catch_unwind)]
    pub fn pause_reading(&self, id: u32) -> u32 {
        self.input(id, StreamInput::Pause)
    }

    #[napi(catch_unwind)]
    pub fn resume_reading(&self, id: u32) -> u32 {
        self.input(id, StreamInput::Resume)
    }

    /// Stops reading and closes once the queue is flushed, but not before `releaseClose` (which JS
    /// calls at the end of its turn, so later writes of the same turn still go out).
    #[napi(catch_unwind)]
    pub fn lose_connection(&self, id: u32) -> u32 {
        self.input(id, StreamInput::LoseConnection)
    }

    /// STATE_CLOSED: closed now. Otherwise the core closes after the flush (then EV_CLOSED).
    #[napi(catch_unwind)]
    pub fn release_close(&self, id: u32) -> u32 {
        self.input(id, StreamInput::ReleaseClose)
    }

    /// STATE_WRITE_CLOSED: FIN sent now. Otherwise sent after the flush (then EV_WRITE_CLOSED).
    #[napi(catch_unwind)]
    pub fn shutdown_write(&self, id: u32) -> u32 {
        self.input(id, StreamInput::ShutdownWrite)
    }

    /// Sends a duplicate of `fd` with the first byte of the next write (UNIX connections; errors
    /// ENOTSUP on TCP, EBADF, ETOOMANYREFS past 253 per write).
    #[napi(catch_unwind)]
    pub fn send_file_descriptor(&self, id: u32, fd: f64) -> Result<()> {
        let fd = numbers::fd(fd, "sendmsg")?;
        self.core()?.send_file_descriptor(id, fd).map_err(|e| os_error(e, "sendmsg"))
    }

    /// SO_LINGER 0, shutdown, close: now. Queued data is discarded.
    #[napi(catch_unwind)]
    pub fn abort(&self, id: u32) {
        if let Some(c) = self.live_core() {
            c.abort(id)
        }
    }

    /// Closes the duplicate (no shutdown). For a listening port, returns how many connections it
    /// accepted that JS has not been given yet (they still arrive, as EV_ACCEPT records).
    #[napi(catch_unwind)]
    pub fn close_port(&mut self, id: u32) -> u32 {
        self.consumer.as_mut().map_or(0, |c| c.close_port(id) as u32)
    }

    #[napi(catch_unwind)]
    pub fn local_address(&self, id: u32) -> Option<Buffer> {
        let addr = self.live_core()?.local_address(id).ok()?;
        Some(address::record(&addr).into())
    }

    #[napi(catch_unwind)]
    pub fn peer_address(&self, id: u32) -> Option<Buffer> {
        let addr = self.live_core()?.peer_address(id).ok()?;
        Some(address::record(&addr).into())
    }

    #[napi(catch_unwind)]
    pub fn set_no_delay(&self, id: u32, on: bool) -> Result<()> {
        self.core()?.with_socket(id, |s| s.set_tcp_nodelay(on)).map_err(|e| os_error(e, "setsockopt"))
    }

    #[napi(catch_unwind)]
    pub fn get_no_delay(&self, id: u32) -> Result<bool> {
        self.core()?.with_socket(id, |s| s.tcp_nodelay()).map_err(|e| os_error(e, "getsockopt"))
    }

    #[napi(catch_unwind)]
    pub fn set_keep_alive(&self, id: u32, on: bool) -> Result<()> {
        self.core()?.with_socket(id, |s| s.set_keepalive(on)).map_err(|e| os_error(e, "setsockopt"))
    }

    #[napi(catch_unwind)]
    pub fn get_keep_alive(&self, id: u32) -> Result<bool> {
        self.core()?.with_socket(id, |s| s.keepalive()).map_err(|e| os_error(e, "getsockopt"))
    }
}

impl NativeReactor {
    fn input(&self, id: u32, input: StreamInput) -> u32 {
        self.live_core().map_or(bits::GONE, |c| c.stream_input(id, input))
    }
}
