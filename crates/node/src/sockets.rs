//! `sockets.*`: make and inspect descriptors from JS (Node cannot create a raw socket fd).
//! Thin wrappers over reactor_core::sys::sockets; they validate numbers and turn io::Errors into JS
//! errors with `code`. Every fd returned belongs to the caller.

use crate::error;
use crate::numbers;
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use reactor_core::sys::sockets;



/// What `sockets.info(fd)` returns. `local` / `peer` are address records (layout: reactor_core::wire::address).
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

/// What `sockets.bufferSizes(fd)` returns: SO_RCVBUF / SO_SNDBUF as the kernel reports them
/// (bytes, its bookkeeping included: Linux doubles what it is asked for).
#[napi(object, namespace = "sockets")]
pub struct BufferSizesInfo {
    pub recv_buffer_size: i32,
    pub send_buffer_size: i32,
}

#[napi(namespace = "sockets", catch_unwind)]
pub fn listen_tcp(
    host: String,
    port: f64,
    backlog: f64,
    reuse_port: bool,
    ipv6_only: Option<bool>,
    recv_buffer_size: Option<f64>,
    send_buffer_size: Option<f64>,
) -> napi::Result<i32> {
    let port = numbers::port(port)?;
    let backlog = numbers::backlog(backlog)?;
    let buffers = numbers::buffer_sizes(recv_buffer_size, send_buffer_size)?;
    sockets::listen_tcp_sized(&host, port, backlog, reuse_port, ipv6_only, buffers)
        .map_err(|e| error::os_error(e, "listenTcp"))
}

/// `recv_buffer_size` / `send_buffer_size`: SO_RCVBUF / SO_SNDBUF, set before the bind (js/
/// checks them: 1..2^31-1); read what the kernel set with `info`.
#[napi(namespace = "sockets", catch_unwind)]
pub fn bind_udp(host: String, port: f64, reuse_port: bool, recv_buffer_size: Option<f64>, send_buffer_size: Option<f64>) -> napi::Result<i32> {
    let port = numbers::port(port)?;
    let sizes = numbers::buffer_sizes(recv_buffer_size, send_buffer_size)?;
    sockets::bind_udp_sized(&host, port, reuse_port, sizes).map_err(|e| error::os_error(e, "bindUdp"))
}

#[napi(namespace = "sockets", catch_unwind)]
pub fn listen_unix(
    path: String,
    backlog: f64,
    recv_buffer_size: Option<f64>,
    send_buffer_size: Option<f64>,
) -> napi::Result<i32> {
    let backlog = numbers::backlog(backlog)?;
    let buffers = numbers::buffer_sizes(recv_buffer_size, send_buffer_size)?;
    sockets::listen_unix_sized(&path, backlog, buffers).map_err(|e| error::os_error(e, "listenUnix"))
}

#[napi(namespace = "sockets", catch_unwind)]
pub fn connect_tcp(host: String, port: f64) -> napi::Result<i32> {
    let port = numbers::port(port)?;
    sockets::connect_tcp(&host, port).map_err(|e| error::os_error(e, "connectTcp"))
}

#[napi(namespace = "sockets", catch_unwind)]
pub fn socket_pair() -> napi::Result<Vec<i32>> {
    let (a, b) = sockets::socket_pair().map_err(|e| error::os_error(e, "socketPair"))?;
    Ok(vec![a, b])
}

#[napi(namespace = "sockets", catch_unwind)]
pub fn close(fd: f64) -> napi::Result<()> {
    let fd = numbers::fd(fd, "close")?;
    sockets::close(fd).map_err(|e| error::os_error(e, "close"))
}

/// UDP_GRO on or off (the reactor then receives coalesced buffers and cuts them apart).
#[napi(namespace = "sockets", catch_unwind)]
pub fn set_udp_gro(fd: f64, on: bool) -> napi::Result<()> {
    let fd = numbers::fd(fd, "setsockopt")?;
    reactor_core::sys::udp_offload::set_gro(fd, on).map_err(|e| error::os_error(e, "setsockopt"))
}

#[napi(namespace = "sockets", catch_unwind)]
pub fn info(fd: f64) -> napi::Result<SocketInfo> {
    let fd = numbers::fd(fd, "info")?;
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

#[napi(namespace = "sockets", catch_unwind)]
pub fn buffer_sizes(fd: f64) -> napi::Result<BufferSizesInfo> {
    use reactor_core::sys::buffers::{buffer_size, Buffer};
    let fd = numbers::fd(fd, "getsockopt")?;
    let get = |b| buffer_size(fd, b).map_err(|e| error::os_error(e, "getsockopt"));
    Ok(BufferSizesInfo { recv_buffer_size: get(Buffer::Receive)?, send_buffer_size: get(Buffer::Send)? })
}

