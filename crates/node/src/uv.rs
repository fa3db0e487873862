//! The few libuv calls the hosted driver needs. Node exports libuv's symbols, so an addon links
//! against them at load time (napi-sys does the same for `uv_run`).

use std::os::raw::{c_int, c_void};

pub type Loop = napi::sys::uv_loop_s;
pub type Handle = c_void;

/// `uv_handle_type` values (stable across libuv 1.x).
pub const UV_POLL: c_int = 8;
pub const UV_TIMER: c_int = 13;
/// `uv_poll_event`
pub const UV_READABLE: c_int = 1;

pub type PollCb = unsafe extern "C" fn(handle: *mut Handle, status: c_int, events: c_int);
pub type TimerCb = unsafe extern "C" fn(handle: *mut Handle);
pub type CloseCb = unsafe extern "C" fn(handle: *mut Handle);

extern "C" {
    pub fn uv_err_name(err: c_int) -> *const std::os::raw::c_char;
    pub fn uv_handle_size(kind: c_int) -> usize;
    pub fn uv_poll_init(lp: *mut Loop, handle: *mut Handle, fd: c_int) -> c_int;
    pub fn uv_poll_start(handle: *mut Handle, events: c_int, cb: PollCb) -> c_int;
    pub fn uv_poll_stop(handle: *mut Handle) -> c_int;
    pub fn uv_timer_init(lp: *mut Loop, handle: *mut Handle) -> c_int;
    pub fn uv_timer_start(handle: *mut Handle, cb: TimerCb, timeout: u64, repeat: u64) -> c_int;
    pub fn uv_timer_stop(handle: *mut Handle) -> c_int;
    pub fn uv_close(handle: *mut Handle, cb: Option<CloseCb>);
    pub fn uv_ref(handle: *mut Handle);
    pub fn uv_unref(handle: *mut Handle);
}

/// Memory for one libuv handle of `kind`, 16-byte aligned. Every uv handle starts with
/// `void *data`, which the callbacks use to find their owner.
pub fn alloc_handle(kind: c_int) -> *mut Handle {
    // SAFETY: uv_handle_size only reads a table.
    let size = unsafe { uv_handle_size(kind) };
    let words = size.div_ceil(16);
    let mem: Box<[u128]> = vec![0u128; words].into_boxed_slice();
    Box::into_raw(mem) as *mut u128 as *mut Handle
}

/// Frees memory from `alloc_handle` (call only from the handle's close callback).
///
/// # Safety
/// `handle` came from `alloc_handle(kind)` and libuv no longer references it.
pub unsafe fn free_handle(handle: *mut Handle, kind: c_int) {
    let words = uv_handle_size(kind).div_ceil(16);
    drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(handle as *mut u128, words)));
}

/// # Safety
/// `handle` is a live uv handle.
pub unsafe fn set_data(handle: *mut Handle, data: *mut c_void) {
    *(handle as *mut *mut c_void) = data;
}

/// # Safety
/// `handle` is a live uv handle.
pub unsafe fn data(handle: *mut Handle) -> *mut c_void {
    *(handle as *mut *mut c_void)
}
