//! Taking batches: the core's records go into JS's reusable array, the bytes into V8 buffers.

use crate::reactor::NativeReactor;
use napi::bindgen_prelude::*;
use napi_derive::napi;

#[napi]
impl NativeReactor {
    /// Takes the next batch: the header `[records, chunks]` and the records are copied into
    /// `events` (JS's own reusable array), and the data comes back as a fresh buffer; null when
    /// there is no batch. Records that do not fit: `takeOverflowEvents()`. Large reads: `takeChunks()`.
    #[napi(catch_unwind)]
    pub fn take_batch<'env>(&mut self, env: &'env Env, mut events: Uint32ArraySlice) -> Result<Option<BufferSlice<'env>>> {
        let Some(consumer) = self.consumer.as_mut() else { return Ok(None) };
        // SAFETY: JS is blocked in this call, so nothing else touches the array meanwhile.
        let out = unsafe { events.as_mut() };
        match consumer.take_batch(out) {
            Some(data) => BufferSlice::copy_from(env, data).map(Some),
            None => Ok(None),
        }
    }

    /// JS dispatched a batch that carried descriptors (EV_FDS): they are its own now, delivered or
    /// closed. Until this call, a teardown of this thread's environment closes them.
    #[napi(catch_unwind)]
    pub fn fds_settled(&self) {
        if let Some(core) = self.live_core() {
            core.fds_settled();
        }
    }

    /// The records of the last batch when they did not fit JS's array.
    #[napi(catch_unwind)]
    pub fn take_overflow_events(&mut self) -> Uint32Array {
        Uint32Array::new(self.consumer.as_mut().map(|c| c.take_overflow()).unwrap_or_default())
    }

    /// The large reads of the last batch, copied into buffers V8 allocates (so its GC accounts
    /// for them as for Node's own reads); the core reuses the originals.
    #[napi(catch_unwind)]
    pub fn take_chunks<'env>(&mut self, env: &'env Env) -> Result<Vec<BufferSlice<'env>>> {
        let Some(consumer) = self.consumer.as_mut() else { return Ok(Vec::new()) };
        consumer.take_chunks(|c| BufferSlice::copy_from(env, c)).into_iter().collect()
    }
}
