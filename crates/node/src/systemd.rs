//! `systemd.*`: socket activation, notification and the watchdog, over reactor_core::systemd.
//! JS reads the environment (`process.env` owns it) and passes the values in.

use crate::error;
use crate::numbers;
use napi_derive::napi;
use reactor_core::{sys::errno, sys::sockets, sys::validate, systemd};
use std::io;
use std::os::fd::BorrowedFd;

/// One inherited descriptor, as `systemd.listenFds()` returns it.
#[napi(object, namespace = "systemd")]
pub struct ListenFd {
    pub fd: i32,
    pub name: String,
    /// AF_* of a socket; 0 for a descriptor that is not a socket (systemd can pass FIFOs too).
    pub family: i32,
    /// SOCK_* of a socket; 0 for a descriptor that is not a socket.
    #[napi(js_name = "type")]
    pub socket_type: i32,
    pub listening: bool,
    /// Whether the descriptor is a socket. When LISTEN_FDS overstates what was passed, the
    /// numbers past the real ones may be Node's own descriptors: close only what you adopted.
    pub is_socket: bool,
}

/// The descriptors passed to this process (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES), made
/// close-on-exec.
#[napi(namespace = "systemd", catch_unwind)]
pub fn listen_fds(pid: Option<String>, fds: Option<String>, names: Option<String>) -> napi::Result<Vec<ListenFd>> {
    let env = systemd::ListenEnv { pid: pid.as_deref(), fds: fds.as_deref(), names: names.as_deref() };
    let listed = systemd::listen_fds(env, std::process::id()).map_err(|e| error::os_error(e, "listenFds"))?;
    Ok(listed
        .into_iter()
        .map(|listen| {
            let info = sockets::info(listen.fd).ok();
            ListenFd {
                fd: listen.fd,
                name: listen.name,
                family: info.as_ref().map_or(0, |i| i.family),
                socket_type: info.as_ref().map_or(0, |i| i.socket_type),
                listening: info.as_ref().is_some_and(|i| i.listening),
                is_socket: info.is_some(),
            }
        })
        .collect())
}

/// The pid LISTEN_PID names when it is not this process's (the descriptors went to another
/// process, e.g. a wrapper that spawned us), else null.
#[napi(namespace = "systemd", catch_unwind)]
pub fn listen_pid_elsewhere(pid: Option<String>) -> napi::Result<Option<u32>> {
    systemd::listen_pid_elsewhere(pid.as_deref(), std::process::id()).map_err(|e| error::os_error(e, "listenFds"))
}

/// Sends `state` with `fds` to the socket named by NOTIFY_SOCKET, without waiting: a manager
/// whose queue is full is an error with code EAGAIN (nothing was sent).
#[napi(namespace = "systemd", catch_unwind)]
pub fn notify(notify_socket: String, state: String, fds: Vec<f64>) -> napi::Result<()> {
    let mut numbers = Vec::with_capacity(fds.len());
    for fd in fds {
        let fd = numbers::fd(fd, "notify")?;
        // Any open descriptor may go to the fd store, sockets or not.
        validate::check_open(fd).map_err(|e| {
            // Name the descriptor: the caller may pass several.
            let number = errno::number(&e).unwrap_or(libc::EBADF);
            error::os_error(errno::error(number, format!("{} (fd {fd})", errno::message(&e))), "notify")
        })?;
        numbers.push(fd);
    }
    // SAFETY: each number was just checked to be open; the borrows last only for this call, on
    // the JS thread, while no JS code can close them.
    let borrowed: Vec<BorrowedFd<'_>> = numbers.iter().map(|fd| unsafe { BorrowedFd::borrow_raw(*fd) }).collect();
    systemd::notify(&notify_socket, state.as_bytes(), &borrowed).map_err(|e| error::os_error(e, "notify"))
}

/// WATCHDOG_USEC when WATCHDOG_PID is unset or ours, else null.
#[napi(namespace = "systemd", catch_unwind)]
pub fn watchdog_usec(usec: Option<String>, pid: Option<String>) -> napi::Result<Option<f64>> {
    systemd::watchdog_usec(usec.as_deref(), pid.as_deref(), std::process::id())
        .map(|usec| usec.map(|u| u as f64))
        .map_err(|e: io::Error| error::os_error(e, "watchdogInterval"))
}
