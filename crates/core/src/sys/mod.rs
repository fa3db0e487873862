//! Every OS call the core makes that socket2 and mio do not wrap, fenced here as mio fences its
//! own: the rest of the core calls these functions. Each `unsafe` block states its invariant.

/// Calls `libc::$fn(args)` and turns its -1 into the thread's errno as an `io::Error`. The call
/// site keeps its own `// SAFETY:` comment: the macro checks results, not arguments.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        #[allow(unused_unsafe)]
        let res = unsafe { libc::$fn($($arg),*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}

pub mod buffers;
pub mod cmsg;
pub mod errno;
pub mod fd;
pub mod interface;
pub mod ktls;
pub mod meminfo;
pub mod mmsg;
pub mod pipe;
pub mod poll;
pub mod scm;
pub mod sockets;
pub mod sockopt;
pub mod udp_offload;
pub mod validate;

use std::io;

/// Runs `call` again while it fails with EINTR (a signal arrived before it did anything): the one
/// retry loop of the core. Not for `close` (on Linux the fd is released even on EINTR).
pub fn retry_interrupted<T>(mut call: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
