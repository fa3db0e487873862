//! A socket's memory figures (`SO_MEMINFO`), for the kernel's drop counter.

use socket2::Socket;
use std::os::fd::AsRawFd;

/// `SO_MEMINFO` (asm-generic/socket.h; not in the libc crate) and the length of its answer.
const SO_MEMINFO: libc::c_int = 55;
const SK_MEMINFO_VARS: usize = 9;

/// The kernel's count of datagrams dropped at this socket (`SK_MEMINFO_DROPS`: the number
/// /proc/net/udp shows as `drops`), read in O(1) in any network namespace. It is a u32 in the
/// kernel: callers take differences with wrapping arithmetic. None where the kernel does not say.
pub fn kernel_drops(sock: &Socket) -> Option<u32> {
    let mut info = [0u32; SK_MEMINFO_VARS];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: `info` is a writable buffer of `len` bytes; the kernel writes at most `len` bytes and
    // sets `len` to what it wrote. The socket outlives the call (borrowed).
    let rc = unsafe {
        libc::getsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, SO_MEMINFO, info.as_mut_ptr().cast(), &mut len)
    };
    let drops = libc::SK_MEMINFO_DROPS as usize;
    (rc == 0 && len as usize > drops * 4).then(|| info[drops])
}
