//! Environment teardown (process exit, worker exit): stop the I/O thread before Node frees the
//! threadsafe function it calls (Node 20 has a race there; see FIELD-NOTES).

use napi::bindgen_prelude::*;
use reactor_core::Reactor;
use std::sync::{Arc, Weak};

pub fn close_at_exit(env: &Env, core: &Arc<Reactor>) -> Result<()> {
    let weak: Weak<Reactor> = Arc::downgrade(core);
    env.add_env_cleanup_hook(weak, |weak| {
        if let Some(core) = weak.upgrade() {
            core.close();
        }
    })?;
    Ok(())
}
