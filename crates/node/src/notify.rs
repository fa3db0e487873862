//! How the I/O thread tells JS that a batch is ready: one weak threadsafe function per reactor,
//! called with no payload (JS pulls the batch with `takeBatch`), at most one call in flight.

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use reactor_core::Notify;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Weak (does not hold the loop open by itself) and without a queue of payloads.
type ReadyFn = ThreadsafeFunction<(), (), (), Status, false, true>;

pub struct BatchReady {
    tsfn: ReadyFn,
    held: AtomicBool,
}

impl BatchReady {
    pub fn new(_env: &Env, on_ready: Function<(), ()>) -> Result<BatchReady> {
        let tsfn = on_ready.build_threadsafe_function::<()>().callee_handled::<false>().weak::<true>().build()?;
        Ok(BatchReady { tsfn, held: AtomicBool::new(false) })
    }

    /// Refs (true) or unrefs the threadsafe function: whether it keeps Node's loop alive.
    /// Must run on the JS thread, which `&Env` witnesses.
    pub fn hold(&self, env: &Env, on: bool) -> Result<()> {
        if self.held.swap(on, Ordering::Relaxed) == on || self.tsfn.aborted() {
            return Ok(());
        }
        // SAFETY: called on the JS thread that owns `env`; the tsfn is alive (not aborted) and
        // owned by `self` for the duration of the call.
        let status = unsafe {
            if on {
                napi::sys::napi_ref_threadsafe_function(env.raw(), self.tsfn.raw())
            } else {
                napi::sys::napi_unref_threadsafe_function(env.raw(), self.tsfn.raw())
            }
        };
        if status != napi::sys::Status::napi_ok {
            return Err(Error::from_reason("napi_ref/unref_threadsafe_function failed"));
        }
        Ok(())
    }
}

/// The core's side of the announcement.
pub struct TsfnNotify(Arc<BatchReady>);

impl TsfnNotify {
    pub fn new(ready: Arc<BatchReady>) -> TsfnNotify {
        TsfnNotify(ready)
    }
}

impl Notify for TsfnNotify {
    fn batch_ready(&self) {
        // Closing (environment teardown) means nobody will take the batch: nothing to do.
        let _ = self.0.tsfn.call((), ThreadsafeFunctionCallMode::NonBlocking);
    }
}
