//! errno numbers → their names ("EBADF", "ECONNRESET", ...), the `code` JS errors carry.
//!
//! Names come from the libc constants, so the numbers are right on every Linux architecture.
//! Aliases are left out because they share a number with a listed name: EWOULDBLOCK (EAGAIN),
//! ENOTSUP (EOPNOTSUPP) and, on x86/ARM, EDEADLOCK (EDEADLK). 95 is named EOPNOTSUPP, the kernel's
//! name, where Node's libuv says ENOTSUP.

use std::fmt;
use std::io;

/// The code for an errno without a name (or no errno at all).
pub const UNKNOWN: &str = "EUNKNOWN";

macro_rules! errno_names {
    ($($name:ident)*) => {
        /// The name of a Linux errno number, `"EUNKNOWN"` for anything else.
        pub fn code(errno: i32) -> &'static str {
            match errno {
                $(libc::$name => stringify!($name),)*
                _ => UNKNOWN,
            }
        }

        #[cfg(test)]
        const ALL: &[(i32, &str)] = &[$((libc::$name, stringify!($name)),)*];
    };
}

errno_names! {
    EPERM ENOENT ESRCH EINTR EIO ENXIO E2BIG ENOEXEC EBADF ECHILD EAGAIN ENOMEM EACCES EFAULT
    ENOTBLK EBUSY EEXIST EXDEV ENODEV ENOTDIR EISDIR EINVAL ENFILE EMFILE ENOTTY ETXTBSY EFBIG
    ENOSPC ESPIPE EROFS EMLINK EPIPE EDOM ERANGE EDEADLK ENAMETOOLONG ENOLCK ENOSYS ENOTEMPTY
    ELOOP ENOMSG EIDRM ECHRNG EL2NSYNC EL3HLT EL3RST ELNRNG EUNATCH ENOCSI EL2HLT EBADE EBADR
    EXFULL ENOANO EBADRQC EBADSLT EBFONT ENOSTR ENODATA ETIME ENOSR ENONET ENOPKG EREMOTE
    ENOLINK EADV ESRMNT ECOMM EPROTO EMULTIHOP EDOTDOT EBADMSG EOVERFLOW ENOTUNIQ EBADFD EREMCHG
    ELIBACC ELIBBAD ELIBSCN ELIBMAX ELIBEXEC EILSEQ ERESTART ESTRPIPE EUSERS ENOTSOCK
    EDESTADDRREQ EMSGSIZE EPROTOTYPE ENOPROTOOPT EPROTONOSUPPORT ESOCKTNOSUPPORT EOPNOTSUPP
    EPFNOSUPPORT EAFNOSUPPORT EADDRINUSE EADDRNOTAVAIL ENETDOWN ENETUNREACH ENETRESET
    ECONNABORTED ECONNRESET ENOBUFS EISCONN ENOTCONN ESHUTDOWN ETOOMANYREFS ETIMEDOUT
    ECONNREFUSED EHOSTDOWN EHOSTUNREACH EALREADY EINPROGRESS ESTALE EUCLEAN ENOTNAM ENAVAIL
    EISNAM EREMOTEIO EDQUOT ENOMEDIUM EMEDIUMTYPE ECANCELED ENOKEY EKEYEXPIRED EKEYREVOKED
    EKEYREJECTED EOWNERDEAD ENOTRECOVERABLE ERFKILL EHWPOISON
}

/// The errno behind `err`: its raw OS error, or the number of an error made by [`error`].
pub fn number(err: &io::Error) -> Option<i32> {
    err.raw_os_error().or_else(|| {
        err.get_ref()
            .and_then(|inner| inner.downcast_ref::<Detailed>())
            .map(|detailed| detailed.errno)
    })
}

/// The code for `err` ("EBADF", ...); `"EUNKNOWN"` when it carries no errno.
pub fn of(err: &io::Error) -> &'static str {
    number(err).map_or(UNKNOWN, code)
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

/// An io::Error that carries `errno` (so [`of`] names it) with a message more precise than
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
    fn names_the_common_socket_errors() {
        assert_eq!(code(libc::EBADF), "EBADF");
        assert_eq!(code(libc::ENOTSOCK), "ENOTSOCK");
        assert_eq!(code(libc::ECONNRESET), "ECONNRESET");
        assert_eq!(code(libc::EADDRINUSE), "EADDRINUSE");
        assert_eq!(code(libc::EMSGSIZE), "EMSGSIZE");
        assert_eq!(code(libc::EISCONN), "EISCONN");
        assert_eq!(code(libc::EAGAIN), "EAGAIN");
        assert_eq!(code(libc::EWOULDBLOCK), "EAGAIN");
        assert_eq!(code(libc::ENOTSUP), "EOPNOTSUPP");
    }

    #[test]
    fn every_number_from_1_to_133_but_the_gaps_has_a_name() {
        // Linux leaves 41 and 58 unused (EWOULDBLOCK and EDEADLOCK were aliases there).
        for errno in (1..=133).filter(|n| *n != 41 && *n != 58) {
            assert_ne!(code(errno), UNKNOWN, "errno {errno}");
        }
        assert_eq!(ALL.len(), 131);
    }

    #[test]
    fn names_are_unique_and_look_like_errno_names() {
        let mut seen = std::collections::HashSet::new();
        for &(errno, name) in ALL {
            assert!(seen.insert(errno), "{name} repeats {errno}");
            assert!(name.starts_with('E') && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
            assert_eq!(code(errno), name);
        }
    }

    #[test]
    fn unknown_numbers_and_errors_without_errno() {
        assert_eq!(code(0), UNKNOWN);
        assert_eq!(code(-1), UNKNOWN);
        assert_eq!(code(4096), UNKNOWN);
        assert_eq!(of(&io::Error::other("no errno")), UNKNOWN);
    }

    #[test]
    fn of_reads_raw_os_errors_and_detailed_errors() {
        assert_eq!(of(&io::Error::from_raw_os_error(libc::ENOTCONN)), "ENOTCONN");
        let detailed = error(libc::EINVAL, "host is not an IP address literal");
        assert_eq!(of(&detailed), "EINVAL");
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
