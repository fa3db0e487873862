//! Network interfaces by name and by index (`if_nametoindex`, `if_indextoname`).

use std::io::{self, Write};

/// The index of a network interface given by name (`lo`) or as a number (`1`).
pub fn index(name: &str) -> io::Result<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    let c = std::ffi::CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::ENODEV))?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(index)
}

/// Appends the interface's name to `out` (its number when it has none).
pub fn push_name(index: u32, out: &mut Vec<u8>) {
    let mut buf = [0u8; libc::IF_NAMESIZE];
    // SAFETY: `buf` is IF_NAMESIZE bytes, the size if_indextoname requires; it NUL-terminates on success.
    let name = unsafe { libc::if_indextoname(index, buf.as_mut_ptr() as *mut libc::c_char) };
    if name.is_null() {
        let _ = write!(out, "{index}");
    } else {
        let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        out.extend_from_slice(&buf[..len]);
    }
}
