//! The control messages of one `recvmsg` on an AF_UNIX socket, read from a plain byte buffer.
//!
//! Pure (no syscall, no `unsafe`), so that it can be tested on arbitrary bytes: [`parse`] never
//! panics, whatever the buffer holds, and accounts for every descriptor number it finds — each is
//! either handed to the caller or listed for closing.
//!
//! What the kernel writes, in this order (net/core/scm.c, `scm_recv_unix`), and what it costs:
//!
//! | message | when | room | carries an fd |
//! | --- | --- | --- | --- |
//! | `SCM_CREDENTIALS` | `SO_PASSCRED` (systemd's `PassCredentials=yes`) | `space(12)` | no |
//! | `SCM_SECURITY` | `SO_PASSSEC` and an LSM | `space(label)` | no |
//! | `SCM_RIGHTS` | the sender passed descriptors | `space(4 × n)`, n ≤ 253 | n |
//! | `SCM_PIDFD` | `SO_PASSPIDFD` (Linux ≥ 6.5) | `space(4)` | 1 (the sender's pidfd) |
//!
//! A buffer too small for all of it is cut where it ends and `MSG_CTRUNC` is set; so is a
//! receiver that ran out of descriptors while the kernel installed the passed ones. [`RECEIVE_ROOM`]
//! holds all of the above with a label of up to [`SECURITY_LABEL_ROOM`] bytes, so truncation
//! means a lost descriptor in practice; [`parse`] still tells the two apart where it can.

use std::mem;
use std::os::fd::RawFd;

/// The kernel's limit on descriptors in one message (`SCM_MAX_FD`).
pub const MAX_FDS: usize = 253;

/// `SCM_SECURITY` (include/linux/socket.h; not in the libc crate).
pub const SCM_SECURITY: i32 = 3;
/// `SCM_PIDFD` (Linux ≥ 6.5; include/linux/socket.h; not in the libc crate).
pub const SCM_PIDFD: i32 = 4;

/// The bytes of a `cmsghdr` as the kernel writes it: `size_t cmsg_len; int level; int type`.
pub const HEADER: usize = mem::size_of::<usize>() + 2 * mem::size_of::<i32>();
const LEVEL_AT: usize = mem::size_of::<usize>();
const TYPE_AT: usize = LEVEL_AT + mem::size_of::<i32>();
const FD_BYTES: usize = mem::size_of::<RawFd>();
// The layout above is libc's (glibc, and musl's padded one on little-endian machines).
const _: () = assert!(HEADER == mem::size_of::<libc::cmsghdr>());

/// Room kept for a security label (`SO_PASSSEC`: an LSM's context string, far shorter in practice).
pub const SECURITY_LABEL_ROOM: usize = 4096;

/// A receive buffer's size: credentials, a security label, 253 descriptors and a pidfd.
pub const RECEIVE_ROOM: usize = space(mem::size_of::<libc::ucred>())
    + space(SECURITY_LABEL_ROOM)
    + space(MAX_FDS * FD_BYTES)
    + space(FD_BYTES);

/// `CMSG_ALIGN`: control messages start at multiples of a `long`.
pub const fn align(n: usize) -> usize {
    (n + mem::size_of::<usize>() - 1) & !(mem::size_of::<usize>() - 1)
}

const fn align_down(n: usize) -> usize {
    n & !(mem::size_of::<usize>() - 1)
}

/// `CMSG_SPACE`: the room a message with `data` bytes takes, padding included.
pub const fn space(data: usize) -> usize {
    HEADER + align(data)
}

/// `CMSG_LEN`: the `cmsg_len` of a message with `data` bytes.
pub const fn len(data: usize) -> usize {
    HEADER + data
}

/// What one receive's control messages hold.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The passed descriptors (`SCM_RIGHTS`), in order, for the caller to own. Empty when
    /// [`rights_lost`](Parsed::rights_lost).
    pub rights: Vec<RawFd>,
    /// Descriptors the caller must close at once: pidfds (`SCM_PIDFD`), and the passed ones when
    /// some were lost or there were more than the caller takes.
    pub to_close: Vec<RawFd>,
    /// Passed descriptors were lost (or more came than the caller takes): the stream of
    /// descriptors is broken, and the connection with it.
    pub rights_lost: bool,
}

/// Reads the control messages in `control` (the `msg_controllen` bytes the kernel wrote).
/// `truncated`: `MSG_CTRUNC` was set. `max_fds`: how many passed descriptors the caller takes.
///
/// The walk is `CMSG_NXTHDR`'s: a header whose length is shorter than a header ends it, a
/// message that runs past the end is cut there, and only whole descriptor numbers count.
///
/// Truncation costs passed descriptors unless a later stage shows it did not: a complete
/// `SCM_PIDFD` (the kernel installs it after every passed descriptor, so there was room and a
/// free slot for them) or a full `SCM_RIGHTS` of 253 (nothing more can be passed). Otherwise the
/// descriptors are taken as lost, since credentials and labels come first and a cut there leaves
/// no room for any descriptor after them, and a receiver out of descriptors gets fewer than sent.
pub fn parse(control: &[u8], truncated: bool, max_fds: usize) -> Parsed {
    let mut parsed = Parsed::default();
    let mut rights_cut = false;
    let mut pidfd_after_rights_stage = false;
    let mut at = 0usize;
    while let Some(header) = control.get(at..).filter(|rest| rest.len() >= HEADER) {
        let claimed = read_usize(header, 0);
        if claimed < HEADER {
            break; // not a message: the kernel never writes one, CMSG_NXTHDR stops here too
        }
        let end = at.saturating_add(claimed).min(control.len());
        let data = &control[at + HEADER..end];
        let cut = at.checked_add(claimed).is_none_or(|claimed_end| claimed_end > control.len());
        let (level, kind) = (read_i32(header, LEVEL_AT), read_i32(header, TYPE_AT));
        if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
            parsed.rights.extend(fds_in(data));
            rights_cut |= cut || !data.len().is_multiple_of(FD_BYTES);
        } else if level == libc::SOL_SOCKET && kind == SCM_PIDFD {
            let before = parsed.to_close.len();
            parsed.to_close.extend(fds_in(data));
            pidfd_after_rights_stage |= !cut && parsed.to_close.len() > before;
        }
        // A length near usize::MAX (never the kernel's) must end the walk, not overflow.
        match claimed.checked_add(mem::size_of::<usize>() - 1).and_then(|padded| at.checked_add(align_down(padded))) {
            Some(next) => at = next,
            None => break,
        }
    }
    let rights_complete = !rights_cut && (pidfd_after_rights_stage || parsed.rights.len() >= MAX_FDS);
    parsed.rights_lost = (truncated && !rights_complete) || rights_cut || parsed.rights.len() > max_fds;
    if parsed.rights_lost {
        parsed.to_close.append(&mut parsed.rights);
    }
    parsed
}

/// The whole descriptor numbers in a message's data.
fn fds_in(data: &[u8]) -> impl Iterator<Item = RawFd> + '_ {
    data.chunks_exact(FD_BYTES).map(|bytes| RawFd::from_ne_bytes(bytes.try_into().expect("chunks of FD_BYTES")))
}

fn read_usize(bytes: &[u8], at: usize) -> usize {
    usize::from_ne_bytes(bytes[at..at + mem::size_of::<usize>()].try_into().expect("a usize's bytes"))
}

fn read_i32(bytes: &[u8], at: usize) -> i32 {
    i32::from_ne_bytes(bytes[at..at + mem::size_of::<i32>()].try_into().expect("an i32's bytes"))
}

#[cfg(test)]
mod tests;
