//! Environment teardown (process exit, worker exit): stop the I/O thread (or the uv watcher)
//! before Node frees what it calls (Node 20 has a race between threadsafe functions and environment teardown, fixed in Node 24.14 / 25.4).

use napi::bindgen_prelude::*;

/// Runs `stop` on the JS thread when the environment is torn down.
pub fn at_exit(env: &Env, stop: impl FnOnce() + 'static) -> Result<()> {
    env.add_env_cleanup_hook((), move |_| stop())?;
    Ok(())
}
