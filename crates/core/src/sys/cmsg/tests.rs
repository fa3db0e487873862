//! The parser on hand-made buffers, and properties over random ones: whatever the bytes, it never
//! panics, and every descriptor number the kernel could have written is returned or listed for
//! closing, exactly once.

use super::*;
use crate::test_support::Rng;

/// One control message as a test writes it.
#[derive(Debug, Clone)]
enum Message {
    Credentials,
    Security(usize),
    Rights(Vec<RawFd>),
    Pidfd(RawFd),
    /// Another level or type, with `n` bytes of data.
    Other { level: i32, kind: i32, n: usize },
    /// A header whose length is shorter than a header (ends the walk).
    Bogus(usize),
    /// A header that claims `extra` more bytes than follow (and than the buffer holds).
    Overlong { kind: i32, n: usize, extra: usize },
}

fn header(out: &mut Vec<u8>, cmsg_len: usize, level: i32, kind: i32) {
    out.extend_from_slice(&cmsg_len.to_ne_bytes());
    out.extend_from_slice(&level.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
}

fn message(out: &mut Vec<u8>, level: i32, kind: i32, data: &[u8]) {
    header(out, len(data.len()), level, kind);
    out.extend_from_slice(data);
    out.resize(out.len() + align(data.len()) - data.len(), 0);
}

fn fd_bytes(fds: &[RawFd]) -> Vec<u8> {
    fds.iter().flat_map(|fd| fd.to_ne_bytes()).collect()
}

fn encode(messages: &[Message]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        match m {
            Message::Credentials => message(&mut out, libc::SOL_SOCKET, libc::SCM_CREDENTIALS, &[7u8; 12]),
            Message::Security(n) => message(&mut out, libc::SOL_SOCKET, SCM_SECURITY, &vec![b's'; *n]),
            Message::Rights(fds) => message(&mut out, libc::SOL_SOCKET, libc::SCM_RIGHTS, &fd_bytes(fds)),
            Message::Pidfd(fd) => message(&mut out, libc::SOL_SOCKET, SCM_PIDFD, &fd.to_ne_bytes()),
            Message::Other { level, kind, n } => message(&mut out, *level, *kind, &vec![0xee; *n]),
            Message::Bogus(claimed) => header(&mut out, *claimed, libc::SOL_SOCKET, libc::SCM_RIGHTS),
            Message::Overlong { kind, n, extra } => {
                header(&mut out, len(*n).saturating_add(*extra), libc::SOL_SOCKET, *kind);
                out.extend(std::iter::repeat_n(0xab, *n));
            }
        }
    }
    out
}

/// The descriptor numbers a correct walk of the first `cut` bytes finds: (passed, pidfds).
fn model(messages: &[Message], cut: usize) -> (Vec<RawFd>, Vec<RawFd>) {
    let (mut rights, mut pidfds) = (Vec::new(), Vec::new());
    let mut at = 0;
    for m in messages {
        if at + HEADER > cut {
            break;
        }
        let data_at = at + HEADER;
        let whole = |fds: &[RawFd]| -> Vec<RawFd> {
            fds.iter().enumerate().filter(|(i, _)| data_at + (i + 1) * FD_BYTES <= cut).map(|(_, fd)| *fd).collect()
        };
        match m {
            Message::Rights(fds) => {
                rights.extend(whole(fds));
                at = data_at + align(fds.len() * FD_BYTES);
            }
            Message::Pidfd(fd) => {
                pidfds.extend(whole(&[*fd]));
                at = data_at + align(FD_BYTES);
            }
            Message::Credentials => at = data_at + align(12),
            Message::Security(n) | Message::Other { n, .. } => at = data_at + align(*n),
            Message::Bogus(_) => break,
            Message::Overlong { .. } => break, // its kinds carry no descriptor; it runs to the end
        }
    }
    (rights, pidfds)
}

fn random_message(rng: &mut Rng, next_fd: &mut RawFd) -> Message {
    let mut fd = || {
        *next_fd += 1;
        *next_fd
    };
    match rng.below(10) {
        0 | 1 => {
            let n = if rng.one_in(4) { MAX_FDS } else { rng.below(MAX_FDS + 1) };
            Message::Rights((0..n).map(|_| fd()).collect())
        }
        2 | 3 => Message::Pidfd(fd()),
        4 => Message::Credentials,
        5 => Message::Security(rng.below(300)),
        6 => Message::Other { level: *rng.pick(&[libc::SOL_SOCKET, libc::SOL_IP, 0, -1]), kind: rng.below(40) as i32 + 5, n: rng.below(64) },
        7 => Message::Other { level: libc::SOL_IP, kind: libc::SCM_RIGHTS, n: rng.below(64) },
        8 => Message::Bogus(rng.below(HEADER)),
        _ => Message::Overlong {
            kind: *rng.pick(&[libc::SCM_CREDENTIALS, SCM_SECURITY, 99]),
            n: rng.below(32),
            extra: if rng.one_in(3) { usize::MAX } else { rng.below(10_000) + 1 },
        },
    }
}

#[test]
fn property_every_descriptor_is_returned_or_closed_exactly_once() {
    for case in 0..Rng::cases(3000) {
        let seed = Rng::seed_for(case);
        let mut rng = Rng::new(seed);
        let mut next_fd = 1000;
        let mut messages = Vec::new();
        for _ in 0..rng.below(6) {
            messages.push(random_message(&mut rng, &mut next_fd));
            if matches!(messages.last(), Some(Message::Overlong { .. })) {
                break; // it claims the rest of the buffer
            }
        }
        let bytes = encode(&messages);
        let cut = if rng.one_in(3) { rng.below(bytes.len() + 1) } else { bytes.len() };
        let truncated = cut < bytes.len() || rng.one_in(4);
        let max_fds = if rng.one_in(4) { rng.below(MAX_FDS + 1) } else { MAX_FDS };
        let parsed = parse(&bytes[..cut], truncated, max_fds);
        let (rights, pidfds) = model(&messages, cut);
        let context = format!("seed {seed}: {messages:?} cut at {cut} of {}, truncated {truncated}, max {max_fds}", bytes.len());

        let mut seen: Vec<RawFd> = parsed.rights.iter().chain(&parsed.to_close).copied().collect();
        seen.sort_unstable();
        let mut expected: Vec<RawFd> = rights.iter().chain(&pidfds).copied().collect();
        expected.sort_unstable();
        assert_eq!(seen, expected, "every descriptor returned or closed, once: {context}");
        if parsed.rights_lost {
            assert!(parsed.rights.is_empty(), "{context}");
        } else {
            assert_eq!(parsed.rights, rights, "the passed descriptors, in order: {context}");
            assert!(parsed.rights.len() <= max_fds, "{context}");
        }
        assert!(pidfds.iter().all(|fd| parsed.to_close.contains(fd)), "pidfds are closed: {context}");
        if !truncated && rights.len() <= max_fds && !messages.iter().any(|m| matches!(m, Message::Rights(_))) {
            assert!(!parsed.rights_lost, "nothing passed, nothing lost: {context}");
        }
    }
}

#[test]
fn property_arbitrary_bytes_never_panic_and_stay_bounded() {
    for case in 0..Rng::cases(5000) {
        let seed = Rng::seed_for(case);
        let mut rng = Rng::new(seed);
        let length = rng.below(2 * RECEIVE_ROOM);
        let mut bytes = rng.bytes(length);
        // Plausible headers at aligned places make the walk go further than noise alone would.
        let mut at = 0;
        while at + HEADER <= bytes.len() && !rng.one_in(8) {
            let claimed = match rng.below(4) {
                0 => rng.below(HEADER),
                1 => usize::MAX - rng.below(16),
                _ => HEADER + rng.below(64),
            };
            bytes[at..LEVEL_AT + at].copy_from_slice(&claimed.to_ne_bytes());
            bytes[at + LEVEL_AT..at + TYPE_AT].copy_from_slice(&libc::SOL_SOCKET.to_ne_bytes());
            let kind = *rng.pick(&[libc::SCM_RIGHTS, SCM_PIDFD, libc::SCM_CREDENTIALS, SCM_SECURITY]);
            bytes[at + TYPE_AT..at + HEADER].copy_from_slice(&kind.to_ne_bytes());
            at += align(claimed.min(bytes.len()).max(HEADER));
        }
        let parsed = parse(&bytes, rng.one_in(2), rng.below(MAX_FDS + 1));
        let found = parsed.rights.len() + parsed.to_close.len();
        assert!(found <= bytes.len() / FD_BYTES, "seed {seed}: {found} descriptors from {} bytes", bytes.len());
    }
}

#[test]
fn the_kernels_full_message_fits_the_receive_room() {
    let label = vec![b'x'; SECURITY_LABEL_ROOM];
    let mut bytes = Vec::new();
    message(&mut bytes, libc::SOL_SOCKET, libc::SCM_CREDENTIALS, &[0; 12]);
    message(&mut bytes, libc::SOL_SOCKET, SCM_SECURITY, &label);
    let fds: Vec<RawFd> = (100..100 + MAX_FDS as RawFd).collect();
    message(&mut bytes, libc::SOL_SOCKET, libc::SCM_RIGHTS, &fd_bytes(&fds));
    message(&mut bytes, libc::SOL_SOCKET, SCM_PIDFD, &7i32.to_ne_bytes());
    assert_eq!(bytes.len(), RECEIVE_ROOM);
    let parsed = parse(&bytes, false, MAX_FDS);
    assert_eq!(parsed, Parsed { rights: fds, to_close: vec![7], rights_lost: false });
}

#[test]
fn credentials_and_a_pidfd_around_passed_descriptors() {
    let bytes = encode(&[Message::Credentials, Message::Rights(vec![10, 11]), Message::Pidfd(12)]);
    assert_eq!(parse(&bytes, false, MAX_FDS), Parsed { rights: vec![10, 11], to_close: vec![12], rights_lost: false });
}

#[test]
fn truncation_after_the_descriptors_keeps_them() {
    // A pidfd came after the passed descriptors: there was room and a free slot for all of them.
    let bytes = encode(&[Message::Rights(vec![10, 11]), Message::Pidfd(12)]);
    assert_eq!(parse(&bytes, true, MAX_FDS), Parsed { rights: vec![10, 11], to_close: vec![12], rights_lost: false });
    // 253 is all a message can carry: whatever was cut came after them.
    let all: Vec<RawFd> = (100..100 + MAX_FDS as RawFd).collect();
    let bytes = encode(&[Message::Credentials, Message::Rights(all.clone())]);
    assert_eq!(parse(&bytes, true, MAX_FDS), Parsed { rights: all, to_close: vec![], rights_lost: false });
}

#[test]
fn truncation_that_may_have_cost_descriptors_closes_those_that_came() {
    // Credentials took the room: fewer descriptors than sent, and no pidfd after them.
    let bytes = encode(&[Message::Credentials, Message::Rights(vec![10, 11, 12])]);
    assert_eq!(parse(&bytes, true, MAX_FDS), Parsed { rights: vec![], to_close: vec![10, 11, 12], rights_lost: true });
    // Only a cut label: descriptors after it, if any, cannot have fitted.
    let mut bytes = encode(&[Message::Credentials, Message::Security(100)]);
    bytes.truncate(bytes.len() - 50);
    assert!(parse(&bytes, true, MAX_FDS).rights_lost);
    // A pidfd cut short proves nothing.
    let mut bytes = encode(&[Message::Rights(vec![10]), Message::Pidfd(12)]);
    bytes.truncate(bytes.len() - align(FD_BYTES));
    assert_eq!(parse(&bytes, true, MAX_FDS), Parsed { rights: vec![], to_close: vec![10], rights_lost: true });
}

#[test]
fn more_than_the_caller_takes_is_closed() {
    let bytes = encode(&[Message::Rights(vec![10, 11, 12]), Message::Pidfd(13)]);
    assert_eq!(parse(&bytes, false, 2), Parsed { rights: vec![], to_close: vec![13, 10, 11, 12], rights_lost: true });
    assert_eq!(parse(&bytes, false, 3).rights, vec![10, 11, 12]);
}

#[test]
fn bogus_headers_end_the_walk() {
    assert_eq!(parse(&[], false, MAX_FDS), Parsed::default());
    assert_eq!(parse(&[0; HEADER - 1], true, MAX_FDS), Parsed { rights_lost: true, ..Parsed::default() });
    let mut bytes = encode(&[Message::Pidfd(5), Message::Bogus(0), Message::Rights(vec![6])]);
    assert_eq!(parse(&bytes, false, MAX_FDS).to_close, vec![5]);
    bytes = encode(&[Message::Overlong { kind: 99, n: 4, extra: usize::MAX }, Message::Rights(vec![6])]);
    assert_eq!(parse(&bytes, false, MAX_FDS), Parsed::default());
    // A passed-descriptor message that claims more than there is: what is whole is closed.
    let mut bytes = encode(&[Message::Rights(vec![6, 7])]);
    bytes.truncate(bytes.len() - 2);
    assert_eq!(parse(&bytes, false, MAX_FDS), Parsed { rights: vec![], to_close: vec![6], rights_lost: true });
}
