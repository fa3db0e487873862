//! JS errors with a `code` ('EBADF', 'ERR_OUT_OF_RANGE', ...), as Node's own errors have.
//!
//! How to use (in any `#[napi]` function or method returning `napi::Result<T>`, on the JS thread):
//!
//! ```ignore
//! let n = sock.send(data).map_err(|e| error::os_error(e, "write"))?;   // Error, code 'EPIPE', errno -32, syscall 'write'
//! return Err(error::coded_error("ERR_INVALID_ADDRESS", "host is not an IP literal"));
//! return Err(error::range_error("ERR_OUT_OF_RANGE", "..."));           // a RangeError with code
//! return Err(error::type_error("ERR_INVALID_ARG_TYPE", "..."));        // a TypeError with code
//! ```
//!
//! Why it is built this way (napi 3.16, src/error.rs): a returned `napi::Error<S>` is thrown by
//! `JsError::from(err).throw_into(env)`, which calls `napi_create_error(env, code, msg)` with
//! `code = err.status.as_ref()`. With the default `S = Status` that is always a Status name
//! ('GenericFailure', ...): `Status` is a closed enum and `Error` has no code field. Only one path
//! keeps a custom code while staying a plain `napi::Error`: an Error made from a JS error object
//! (`napi::Error::from(Unknown)`) holds a reference to that object and throws the object itself.
//! So these functions build the JS error object at once (napi sets `code`; we add `errno` and
//! `syscall`) and wrap it. That needs the thread's `napi_env`, which is recorded when the addon
//! registers on a thread (main thread or a worker; see `remember_env`) and forgotten by that env's
//! cleanup hook.
//!
//! Rules that follow:
//! - Call these on the JS thread (inside a `#[napi]` call or a threadsafe-function callback). On
//!   any other thread, or if building the object fails, you get a plain `GenericFailure` error whose
//!   message still starts with the code ("EBADF: bad file descriptor, info"), so JS can recover it.
//! - napi keeps ONE `#[napi(module_exports)]` hook per addon (`register_module_export_hook` stores
//!   a single Option; a second one silently replaces the first). `remember_env` below is that hook.
//!   If you need your own, call `error::remember_env(env)` from it and delete the one here.
//!
//! `errno` follows Node: negative (-9 for EBADF), so `util.getSystemErrorName(err.errno)` works.
//! Messages follow Node's fs errors: "<CODE>: <description>, <syscall>".

use napi::bindgen_prelude::{JsError, JsObjectValue, JsRangeError, JsTypeError, Object, Unknown};
use napi::{sys, Env, Status};
use napi_derive::napi;
use reactor_core::sys::errno;
use std::cell::Cell;
use std::io;

thread_local! {
    /// The env of the JS environment this thread runs, or null (I/O threads, after teardown).
    static JS_ENV: Cell<sys::napi_env> = const { Cell::new(std::ptr::null_mut()) };
}

/// Records the env of the thread the addon registers on; runs once per JS environment.
#[napi(module_exports)]
pub fn remember_env(env: Env) -> napi::Result<()> {
    let raw = env.raw();
    JS_ENV.with(|cell| cell.set(raw));
    // Forget the env when it is torn down, so nothing builds values in a dead environment.
    env.add_env_cleanup_hook(raw as usize, |raw| {
        let _ = JS_ENV.try_with(|cell| {
            if cell.get() as usize == raw {
                cell.set(std::ptr::null_mut());
            }
        });
    })?;
    Ok(())
}

/// An `Error` for a failed syscall: `code` 'EBADF', `errno` -9, `syscall`, and the message
/// "EBADF: bad file descriptor, <syscall>".
pub fn os_error(err: io::Error, syscall: &str) -> napi::Error {
    let (code, message) = os_message(&err, syscall);
    let extra = Extra { errno: errno::number(&err), syscall: Some(syscall) };
    build(Class::Error, &code, &message, &extra)
}

/// The code and message of a failed syscall: ("EBADF", "EBADF: bad file descriptor, <syscall>").
/// The one format of the binding's syscall errors (js/errors.ts `atTarget` appends the address or
/// path a call was about).
pub fn os_message(err: &io::Error, syscall: &str) -> (String, String) {
    let code = errno::number(err).map_or_else(|| "EUNKNOWN".to_owned(), errno_name);
    let message = format!("{code}: {}, {syscall}", errno::message(err));
    (code, message)
}

/// Node's name for a (positive) errno: libuv's `uv_err_name`, which `util.getSystemErrorName`
/// also uses, so codes match Node's own errors (95 is 'ENOTSUP', as in Node).
pub fn errno_name(errno: i32) -> String {
    // SAFETY: uv_err_name accepts any int and returns a pointer to a static NUL-terminated string
    // (for unknown numbers it leaks a small allocated one, which libuv documents).
    let name = unsafe { std::ffi::CStr::from_ptr(crate::uv::uv_err_name(-errno)) };
    name.to_string_lossy().into_owned()
}

/// An `Error` with `code` (for codes that are not errno names, e.g. 'ERR_INVALID_ADDRESS').
pub fn coded_error(code: &str, msg: &str) -> napi::Error {
    build(Class::Error, code, msg, &Extra::NONE)
}

/// A `RangeError` with `code`, e.g. 'ERR_OUT_OF_RANGE'.
pub fn range_error(code: &str, msg: &str) -> napi::Error {
    build(Class::Range, code, msg, &Extra::NONE)
}

/// A `TypeError` with `code`, e.g. 'ERR_INVALID_ARG_TYPE'.
pub fn type_error(code: &str, msg: &str) -> napi::Error {
    build(Class::Type, code, msg, &Extra::NONE)
}

#[derive(Clone, Copy)]
enum Class {
    Error,
    Range,
    Type,
}

/// Properties besides `code` and `message`.
struct Extra<'a> {
    errno: Option<i32>,
    syscall: Option<&'a str>,
}

impl Extra<'_> {
    const NONE: Extra<'static> = Extra { errno: None, syscall: None };
}

fn build(class: Class, code: &str, msg: &str, extra: &Extra<'_>) -> napi::Error {
    let env = JS_ENV.try_with(Cell::get).unwrap_or(std::ptr::null_mut());
    if !env.is_null() {
        if let Some(err) = js_error(env, class, code, msg, extra) {
            return err;
        }
    }
    // No JS environment here: JS sees code 'GenericFailure', but the message starts with the code.
    let msg = if msg.starts_with(code) { msg.to_owned() } else { format!("{code}: {msg}") };
    napi::Error::new(Status::GenericFailure, msg)
}

/// Builds the JS error object and wraps it; None if the env refuses (e.g. an exception is pending).
fn js_error(env: sys::napi_env, class: Class, code: &str, msg: &str, extra: &Extra<'_>) -> Option<napi::Error> {
    // napi_create_*_error(env, code, msg) sets `code`; a String status is how napi passes one through.
    let template = napi::Error::new(code.to_owned(), msg);
    // SAFETY: `env` is this thread's live env (JS_ENV is set on registration and cleared by the
    // env's cleanup hook) and we run on its thread; into_value returns null instead of failing.
    let value = unsafe {
        match class {
            Class::Error => JsError::from(template).into_value(env),
            Class::Range => JsRangeError::from(template).into_value(env),
            Class::Type => JsTypeError::from(template).into_value(env),
        }
    };
    if value.is_null() {
        return None;
    }
    let mut object = Object::from_raw(env, value);
    if let Some(errno) = extra.errno {
        object.set_named_property("errno", -errno).ok()?;
    }
    if let Some(syscall) = extra.syscall {
        object.set_named_property("syscall", syscall).ok()?;
    }
    // SAFETY: `value` is a live error object created above in this env, on this thread.
    let unknown = unsafe { Unknown::from_raw_unchecked(env, value) };
    Some(napi::Error::from(unknown))
}

/// Panics on purpose. The package's tests call it to show that a panic in the binding reaches JS
/// as an `Error` (every exported function is built with napi's `catch_unwind`) instead of
/// aborting Node.
#[napi(catch_unwind)]
pub fn check_panic_boundary() -> napi::Result<()> {
    panic!("reactor-socket: a panic crossed into the binding on purpose (checkPanicBoundary)")
}
