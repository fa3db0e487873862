//! errno numbers carried by io::Errors, and the words that describe them.
//!
//! The core passes numbers only. Naming them ("EBADF", …) is the host's business: the Node binding
//! names them as Node does (libuv's `uv_err_name`, which is what `util.getSystemErrorName` uses),
//! so every code a JS error carries matches Node's own (95 is `ENOTSUP` there, for instance).

use std::fmt;
use std::io;

/// The errno behind `err`: its raw OS error, or the number of an error made by [`error`].
pub fn number(err: &io::Error) -> Option<i32> {
    err.raw_os_error().or_else(|| {
        err.get_ref()
            .and_then(|inner| inner.downcast_ref::<Detailed>())
            .map(|detailed| detailed.errno)
    })
}

/// The C library's text for an errno, as Node words it: "bad file descriptor".
pub fn describe(errno: i32) -> String {
    // std's Display is "<strerror text> (os error N)"; keep only the text.
    let text = io::Error::from_raw_os_error(errno).to_string();
    let text = text.strip_suffix(&format!(" (os error {errno})")).unwrap_or(&text);
    lowercase_first(text)
}

/// What `err` says, without the errno suffix std adds: "bad file descriptor", or the detail given
/// to [`error`].
pub fn message(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(errno) => describe(errno),
        None => err.get_ref().map_or_else(|| err.to_string(), |inner| inner.to_string()),
    }
}

/// An io::Error that carries `errno` (so [`number`] finds it) with a message more precise than
/// strerror's, e.g. EINVAL "host is not an IP address literal".
pub fn error(errno: i32, detail: impl Into<String>) -> io::Error {
    let kind = io::Error::from_raw_os_error(errno).kind();
    io::Error::new(kind, Detailed { errno, detail: detail.into() })
}

#[derive(Debug)]
struct Detailed {
    errno: i32,
    detail: String,
}

impl fmt::Display for Detailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for Detailed {}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_reads_raw_os_errors_and_detailed_errors() {
        assert_eq!(number(&io::Error::from_raw_os_error(libc::ENOTCONN)), Some(libc::ENOTCONN));
        assert_eq!(number(&io::Error::other("no errno")), None);
        let detailed = error(libc::EINVAL, "host is not an IP address literal");
        assert_eq!(number(&detailed), Some(libc::EINVAL));
        assert_eq!(detailed.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(message(&detailed), "host is not an IP address literal");
    }

    #[test]
    fn describes_like_node() {
        assert_eq!(describe(libc::EBADF), "bad file descriptor");
        assert_eq!(message(&io::Error::from_raw_os_error(libc::ENOTSOCK)), "socket operation on non-socket");
    }
}
