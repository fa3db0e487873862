//! Numbers from JS, converted once. They arrive as f64 (a JS number) rather than through napi's
//! u32/i32 conversions, which wrap modulo 2^32 (`2**32 + 1` would become 1): a value that does not
//! fit exactly is an error here, never a different number. Policy (what range an argument may
//! have, what Infinity means) is the TypeScript layer's (js/validate.ts); this module only refuses
//! what cannot be represented.

use crate::error;
use std::io;
use std::os::fd::RawFd;

/// Numbers arrive as f64 so that 1.5 or 2**40 are refused rather than silently truncated.
pub fn integer(value: f64) -> Option<i64> {
    (value.is_finite() && value.fract() == 0.0 && value.abs() < 2f64.powi(53)).then_some(value as i64)
}

/// A descriptor number: TypeError unless an integer; EBADF when negative or past any fd.
pub fn fd(fd: f64, syscall: &str) -> napi::Result<RawFd> {
    let fd = integer(fd).ok_or_else(|| {
        error::type_error("ERR_INVALID_ARG_TYPE", &format!("The \"fd\" argument must be an integer. Received {fd}"))
    })?;
    RawFd::try_from(fd)
        .ok()
        .filter(|fd| *fd >= 0)
        .ok_or_else(|| error::os_error(io::Error::from_raw_os_error(libc::EBADF), syscall))
}

/// A port: an integer in 0..=65535, else a RangeError 'ERR_OUT_OF_RANGE' (Node's wording).
pub fn port(port: f64) -> napi::Result<u16> {
    integer(port).and_then(|port| u16::try_from(port).ok()).ok_or_else(|| {
        error::range_error(
            "ERR_OUT_OF_RANGE",
            &format!("The value of \"port\" is out of range. It must be an integer >= 0 and <= 65535. Received {port}"),
        )
    })
}

/// A listen backlog: a non-negative integer; above i32::MAX it is clamped (the kernel caps it at
/// somaxconn anyway).
pub fn backlog(backlog: f64) -> napi::Result<i32> {
    match integer(backlog) {
        Some(n) if n >= 0 => Ok(i32::try_from(n).unwrap_or(i32::MAX)),
        _ => Err(error::range_error(
            "ERR_OUT_OF_RANGE",
            &format!("The value of \"backlog\" is out of range. It must be an integer >= 0. Received {backlog}"),
        )),
    }
}

/// A u32 that the caller means exactly (an id, a size): a RangeError when it does not fit.
pub fn u32_exact(value: f64, name: &str) -> napi::Result<u32> {
    integer(value).and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
        error::range_error(
            "ERR_OUT_OF_RANGE",
            &format!("The value of \"{name}\" is out of range. It must be an integer >= 0 and <= 4294967295. Received {value}"),
        )
    })
}

/// A kernel buffer size (SO_RCVBUF, SO_SNDBUF): an integer in 0..=2^31-1, the kernel's C int,
/// else a RangeError.
/// The `recvBufferSize` / `sendBufferSize` pair of every helper that makes a socket (listenTcp,
/// listenUnix, bindUdp, listenDatagramProxy): undefined leaves the system's default.
pub fn buffer_sizes(receive: Option<f64>, send: Option<f64>) -> napi::Result<reactor_core::sys::buffers::BufferSizes> {
    Ok(reactor_core::sys::buffers::BufferSizes {
        receive: receive.map(|v| buffer_size(v, "recvBufferSize")).transpose()?,
        send: send.map(|v| buffer_size(v, "sendBufferSize")).transpose()?,
    })
}

pub fn buffer_size(value: f64, name: &str) -> napi::Result<i32> {
    integer(value).and_then(|n| i32::try_from(n).ok()).filter(|n| *n >= 0).ok_or_else(|| {
        error::range_error(
            "ERR_OUT_OF_RANGE",
            &format!("The value of \"{name}\" is out of range. It must be an integer >= 0 and <= 2147483647. Received {value}"),
        )
    })
}

/// A duration in milliseconds: a finite integer >= 0 (JS turns Infinity into "none" before it gets
/// here), else a RangeError.
pub fn duration_ms(value: f64, name: &str) -> napi::Result<std::time::Duration> {
    integer(value).and_then(|n| u64::try_from(n).ok()).map(std::time::Duration::from_millis).ok_or_else(|| {
        error::range_error(
            "ERR_OUT_OF_RANGE",
            &format!("The value of \"{name}\" is out of range. It must be a finite integer >= 0 (milliseconds). Received {value}"),
        )
    })
}

/// A socket option's integer (or a buffer size): exact, within i64, else a RangeError. The
/// option's own range is the core's check.
pub fn option_integer(value: f64, name: &str) -> napi::Result<i64> {
    integer(value).ok_or_else(|| {
        error::range_error(
            "ERR_OUT_OF_RANGE",
            &format!("The value of \"{name}\" is out of range. It must be an integer. Received {value}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_exact_or_refused() {
        assert_eq!(integer(3.0), Some(3));
        assert_eq!(integer(-1.0), Some(-1));
        for bad in [1.5, f64::NAN, f64::INFINITY, 1e300, 2f64.powi(53)] {
            assert_eq!(integer(bad), None, "{bad}");
        }
    }
}
