//! `thread: false`: Node's own loop drives the core. libuv watches the core's epoll fd
//! (`uv_poll`); when it is readable the core runs one turn on the JS thread and the batch goes to
//! JS directly, with no thread hop and no threadsafe function.

use crate::uv;
use napi::bindgen_prelude::*;
use napi::sys;
use reactor_core::Reactor;
use std::os::raw::{c_int, c_void};
use std::ptr;
use std::sync::Arc;

/// Lives on the heap at a fixed address (the uv handles point at it) until both handles closed.
struct Watch {
    env: sys::napi_env,
    core: Arc<Reactor>,
    on_ready: sys::napi_ref,
    context: sys::napi_async_context,
    poll: *mut uv::Handle,
    timer: *mut uv::Handle,
    /// Handles still open; the driver is freed when this reaches 0.
    open_handles: u8,
}

/// The JS side's handle on Node's loop watching the core's poller (the core's `Driver` decides
/// what a turn does; this only runs one whenever the poller's fd is readable).
pub struct LoopWatcher {
    driver: *mut Watch,
}

// A Watch is created, used and freed on the JS thread of its env only: uv callbacks run on the
// loop's thread, and LoopWatcher is neither Send nor Sync (it holds a raw pointer).

impl LoopWatcher {
    /// Starts watching `core`'s poller; `on_ready` is called (no arguments) when a batch is ready.
    pub fn start(env: &Env, core: Arc<Reactor>, on_ready: &Function<(), ()>) -> Result<LoopWatcher> {
        let fd = core.poll_fd().ok_or_else(|| Error::from_reason("reactor is not hosted"))?;
        let raw_env = env.raw();
        let mut on_ready_ref = ptr::null_mut();
        let mut context = ptr::null_mut();
        let mut name = ptr::null_mut();
        let mut loop_ = ptr::null_mut();
        // SAFETY: plain napi calls on the JS thread with valid out-pointers.
        unsafe {
            check(sys::napi_create_reference(raw_env, on_ready.raw(), 1, &mut on_ready_ref))?;
            check(sys::napi_create_string_utf8(raw_env, c"reactor-socket".as_ptr(), 14, &mut name))?;
            check(sys::napi_async_init(raw_env, ptr::null_mut(), name, &mut context))?;
            check(sys::napi_get_uv_event_loop(raw_env, &mut loop_))?;
        }
        let poll = uv::alloc_handle(uv::UV_POLL);
        let timer = uv::alloc_handle(uv::UV_TIMER);
        let driver = Box::into_raw(Box::new(Watch {
            env: raw_env,
            core,
            on_ready: on_ready_ref,
            context,
            poll,
            timer,
            open_handles: 2,
        }));
        // SAFETY: `poll` and `timer` are fresh handle memory of the right size; `driver` outlives
        // both handles (freed only after both close callbacks ran). Both start unref'd: JS decides
        // liveness through `hold`. uv_timer_init cannot fail; if the poll handle cannot be set up,
        // what was set up is closed through the normal path (`stop`).
        unsafe {
            uv::uv_timer_init(loop_, timer);
            uv::set_data(timer, driver as *mut c_void);
            uv::uv_unref(timer);
            let rc = uv::uv_poll_init(loop_, poll, fd);
            if rc != 0 {
                uv::free_handle(poll, uv::UV_POLL);
                (*driver).poll = ptr::null_mut();
                (*driver).open_handles = 1;
                LoopWatcher { driver }.stop();
                return Err(Error::from_reason(format!("uv_poll_init failed ({rc})")));
            }
            uv::set_data(poll, driver as *mut c_void);
            uv::uv_unref(poll);
            let rc = uv::uv_poll_start(poll, uv::UV_READABLE, on_poll);
            if rc != 0 {
                LoopWatcher { driver }.stop();
                return Err(Error::from_reason(format!("uv_poll_start failed ({rc})")));
            }
        }
        Ok(LoopWatcher { driver })
    }

    /// Whether the poll handle keeps Node's loop alive.
    pub fn hold(&self, on: bool) {
        // SAFETY: JS thread; the driver is alive until `stop`.
        unsafe {
            let d = &*self.driver;
            if on {
                uv::uv_ref(d.poll)
            } else {
                uv::uv_unref(d.poll)
            }
        }
    }

    /// Stops watching and closes both handles; the driver is freed once libuv is done with them.
    /// The core must be closed only after this (it closes the fd being watched).
    pub fn stop(self) {
        // SAFETY: JS thread; the handles are open (stop consumes the only LoopWatcher). The napi
        // objects are released here, inside a handle scope, and not in the close callbacks: those
        // may run while the environment is being freed, when V8 can no longer be entered.
        unsafe {
            let d = &*self.driver;
            let mut scope = ptr::null_mut();
            if sys::napi_open_handle_scope(d.env, &mut scope) == sys::Status::napi_ok {
                sys::napi_async_destroy(d.env, d.context);
                sys::napi_delete_reference(d.env, d.on_ready);
                sys::napi_close_handle_scope(d.env, scope);
            }
            uv::uv_timer_stop(d.timer);
            uv::uv_close(d.timer, Some(on_close));
            if !d.poll.is_null() {
                uv::uv_poll_stop(d.poll);
                uv::uv_close(d.poll, Some(on_close));
            }
        }
    }
}

fn check(status: sys::napi_status) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(Error::from_reason(format!("napi call failed with status {status}")))
    }
}

unsafe extern "C" fn on_poll(handle: *mut uv::Handle, _status: c_int, _events: c_int) {
    run_turn_caught(uv::data(handle) as *mut Watch);
}

unsafe extern "C" fn on_timer(handle: *mut uv::Handle) {
    run_turn_caught(uv::data(handle) as *mut Watch);
}

/// A panic must not unwind into libuv (an `extern "C"` frame: Node would abort). A turn that
/// panicked is a bug in the core; its state survives (the lock recovers from poisoning) and the
/// next readiness runs a fresh turn.
unsafe fn run_turn_caught(driver: *mut Watch) {
    // SAFETY (for the closure): `driver` is alive while its handles are open (see `Watch`).
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_turn(driver)));
}

unsafe extern "C" fn on_close(handle: *mut uv::Handle) {
    let driver = uv::data(handle) as *mut Watch;
    let kind = if handle == (*driver).poll { uv::UV_POLL } else { uv::UV_TIMER };
    uv::free_handle(handle, kind);
    (*driver).open_handles -= 1;
    if (*driver).open_handles == 0 {
        drop(Box::from_raw(driver));
    }
}

/// One turn on the JS thread; announces a ready batch by calling JS directly.
unsafe fn run_turn(driver: *mut Watch) {
    let d = &*driver;
    // A failing epoll_wait means a broken poller: nothing left to serve, so nothing to announce.
    let Ok(turn) = d.core.turn_hosted() else { return };
    if let Some(delay) = turn.retry_after {
        uv::uv_timer_start(d.timer, on_timer, delay.as_millis() as u64, 0);
    }
    if turn.announce {
        call_on_ready(d);
    }
}

/// Calls JS the way Node calls into JS from its own I/O callbacks (MakeCallback): a handle scope,
/// an async context, and nextTick/microtask processing afterwards. A throw becomes an uncaught
/// exception, as it would from a Node socket's callback.
unsafe fn call_on_ready(d: &Watch) {
    let env = d.env;
    let mut scope = ptr::null_mut();
    if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
        return;
    }
    let mut func = ptr::null_mut();
    let mut recv = ptr::null_mut();
    let mut result = ptr::null_mut();
    sys::napi_get_reference_value(env, d.on_ready, &mut func);
    sys::napi_get_global(env, &mut recv); // MakeCallback wants an object as `this`
    let status = sys::napi_make_callback(env, d.context, recv, func, 0, ptr::null(), &mut result);
    if status == sys::Status::napi_pending_exception {
        let mut err = ptr::null_mut();
        sys::napi_get_and_clear_last_exception(env, &mut err);
        sys::napi_fatal_exception(env, err);
    }
    sys::napi_close_handle_scope(env, scope);
}
