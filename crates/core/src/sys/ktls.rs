//! Whether this kernel can take a TLS session's records over (kTLS): a TCP socket accepts the
//! "tls" upper-layer protocol (`setsockopt(IPPROTO_TCP, TCP_ULP, "tls")`) only where the `tls`
//! module is built and loaded. Probed once per process, on a loopback connection of its own
//! (ULPs attach to established sockets only).

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::OnceLock;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KtlsSupport {
    pub available: bool,
    /// Why not (empty when available).
    pub reason: String,
}

/// The probe's answer (made on first use).
pub fn support() -> &'static KtlsSupport {
    static SUPPORT: OnceLock<KtlsSupport> = OnceLock::new();
    SUPPORT.get_or_init(probe)
}

fn probe() -> KtlsSupport {
    let attempt = || -> std::io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let client = TcpStream::connect(listener.local_addr()?)?;
        let _server = listener.accept()?;
        let name = b"tls";
        // SAFETY: a valid socket, and a pointer to `name.len()` readable bytes.
        let rc = unsafe {
            libc::setsockopt(
                client.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_ULP,
                name.as_ptr().cast(),
                name.len() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    match attempt() {
        Ok(()) => KtlsSupport { available: true, reason: String::new() },
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => KtlsSupport {
            available: false,
            reason: "this kernel has no TLS ULP (setsockopt TCP_ULP \"tls\": ENOENT; the tls module is not built or not loaded)".into(),
        },
        Err(e) => KtlsSupport { available: false, reason: format!("setsockopt TCP_ULP \"tls\" failed: {e}") },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_probe_answers_once_and_says_why_not() {
        let s = super::support();
        assert_eq!(s, super::support());
        assert_eq!(s.available, s.reason.is_empty(), "{s:?}");
    }
}
