//! `sockets.*`: make and inspect descriptors from JS (Node cannot create a raw socket fd).
//! Thin wrappers over reactor_core::sys::sockets; they validate numbers and turn io::Errors into JS
//! errors with `code`. Every fd returned belongs to the caller.

use crate::error;
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use reactor_core::sys::sockets;
use std::io;
use std::os::fd::RawFd;

/// What `sockets.info(fd)` returns. `local` / `peer` are address records (see js/native.ts).
#[napi(object, namespace = "sockets", use_nullable = true)]
pub struct SocketInfo {
    pub family: i32,
    #[napi(js_name = "type")]
    pub socket_type: i32,
    pub listening: bool,
    pub non_blocking: bool,
    pub local: Option<Buffer>,
    pub peer: Option<Buffer>,
}

#[napi(namespace = "sockets")]
pub fn listen_tcp(
    host: String,
    port: f64,
    backlog: f64,
    reuse_port: bool,
    ipv6_only: Option<bool>,
) -> napi::Result<i32> {
    let port = port_number(port)?;
    let backlog = backlog_number(backlog)?;
    sockets::listen_tcp(&host, port, backlog, reuse_port, ipv6_only).map_err(|e| error::os_error(e, "listenTcp"))
}

#[napi(namespace = "sockets")]
pub fn bind_udp(host: String, port: f64, reuse_port: bool) -> napi::Result<i32> {
    let port = port_number(port)?;
    sockets::bind_udp(&host, port, reuse_port).map_err(|e| error::os_error(e, "bindUdp"))
}

#[napi(namespace = "sockets")]
pub fn listen_unix(path: String, backlog: f64) -> napi::Result<i32> {
    let backlog = backlog_number(backlog)?;
    sockets::listen_unix(&path, backlog).map_err(|e| error::os_error(e, "listenUnix"))
}

#[napi(namespace = "sockets")]
pub fn connect_tcp(host: String, port: f64) -> napi::Result<i32> {
    let port = port_number(port)?;
    sockets::connect_tcp(&host, port).map_err(|e| error::os_error(e, "connectTcp"))
}

#[napi(namespace = "sockets")]
pub fn socket_pair() -> napi::Result<Vec<i32>> {
    let (a, b) = sockets::socket_pair().map_err(|e| error::os_error(e, "socketPair"))?;
    Ok(vec![a, b])
}

#[napi(namespace = "sockets")]
pub fn close(fd: f64) -> napi::Result<()> {
    let fd = fd_number(fd, "close")?;
    sockets::close(fd).map_err(|e| error::os_error(e, "close"))
}

/// UDP_GRO on or off (the reactor then receives coalesced buffers and cuts them apart).
#[napi(namespace = "sockets")]
pub fn set_udp_gro(fd: f64, on: bool) -> napi::Result<()> {
    let fd = fd_number(fd, "setsockopt")?;
    reactor_core::sys::udp_offload::set_gro(fd, on).map_err(|e| error::os_error(e, "setsockopt"))
}

#[napi(namespace = "sockets")]
pub fn info(fd: f64) -> napi::Result<SocketInfo> {
    let fd = fd_number(fd, "info")?;
    let info = sockets::info(fd).map_err(|e| error::os_error(e, "info"))?;
    Ok(SocketInfo {
        family: info.family,
        socket_type: info.socket_type,
        listening: info.listening,
        non_blocking: info.non_blocking,
        local: info.local.map(Buffer::from),
        peer: info.peer.map(Buffer::from),
    })
}

/// Numbers arrive as f64 so that 1.5 or 2**40 are refused rather than silently truncated.
pub(crate) fn integer(value: f64) -> Option<i64> {
    (value.is_finite() && value.fract() == 0.0 && value.abs() < 2f64.powi(53)).then_some(value as i64)
}

/// A descriptor number: TypeError unless an integer; EBADF when negative or past any fd.
pub(crate) fn fd_number(fd: f64, syscall: &str) -> napi::Result<RawFd> {
    let fd = integer(fd).ok_or_else(|| {
        error::type_error("ERR_INVALID_ARG_TYPE", &format!("The \"fd\" argument must be an integer. Received {fd}"))
    })?;
    RawFd::try_from(fd)
        .ok()
        .filter(|fd| *fd >= 0)
        .ok_or_else(|| error::os_error(io::Error::from_raw_os_error(libc::EBADF), syscall))
}

/// A port: an integer in 0..=65535, else a RangeError 'ERR_OUT_OF_RANGE' (Node's wording).
fn port_number(port: f64) -> napi::Result<u16> {
    integer(port).and_then(|port| u16::try_from(port).ok()).ok_or_else(|| {
        error::range_error(
            "ERR_OUT_OF_RANGE",
            &format!("The value of \"port\" is out of range. It must be an integer >= 0 and <= 65535. Received {port}"),
        )
    })
}

/// A listen backlog: a non-negative integer; above i32::MAX it is clamped (the kernel caps it at
/// somaxconn anyway).
fn backlog_number(backlog: f64) -> napi::Result<i32> {
    match integer(backlog) {
        Some(n) if n >= 0 => Ok(i32::try_from(n).unwrap_or(i32::MAX)),
        _ => Err(error::range_error(
            "ERR_OUT_OF_RANGE",
            &format!("The value of \"backlog\" is out of range. It must be an integer >= 0. Received {backlog}"),
        )),
    }
}
