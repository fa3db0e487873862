//! The wire format between the core and its consumer (the Node binding, then `js/wire.ts`): every
//! constant, record layout and payload encoder, written here once. The binding exports the
//! constants by name; the TypeScript side reads them from the binding and decodes records in one
//! module. `__test__` ties the two sides together (a test fails when they disagree).
//!
//! A batch is an array of records `[kind, id, a, b]` (`STRIDE` u32s) and a byte buffer `data` the
//! records point into (payloads, address records, descriptor lists, relay counts).

pub mod address;
mod stats;

pub use stats::{DatagramProxyStats, PortStats, Stats};

/// Kinds of event records; the meaning of `a` and `b` is given per kind.
pub mod kind {
    /// A blanked record: the consumer skips it.
    pub const NONE: u32 = 0;
    /// id = listening port; a = new connection id; b = offset of the peer's address record.
    pub const ACCEPT: u32 = 1;
    /// id = connection; a = offset; b = length.
    pub const DATA: u32 = 2;
    /// id = connection: the peer sent FIN; the core stopped reading it.
    pub const EOF: u32 = 3;
    /// id = connection: closed by the core; a = errno (0: orderly close after a flush).
    pub const CLOSED: u32 = 4;
    /// id = connection: its write queue became empty.
    pub const DRAINED: u32 = 5;
    /// id = connection: FIN sent once the queue drained after a shutdown_write.
    pub const WRITE_CLOSED: u32 = 6;
    /// id = datagram port; a = offset of the sender's address record; b = payload length
    /// (the payload follows the record).
    pub const DATAGRAM: u32 = 7;
    /// id = datagram port; a = errno from a receive.
    pub const DATAGRAM_ERROR: u32 = 8;
    /// id = connection; a = index into `chunks`; b = length (a large read, handed over whole).
    pub const DATA_CHUNK: u32 = 9;
    /// id = connection: its outbound connect completed; a = offset of the peer's address record.
    /// (A connect that fails is reported as CLOSED with the errno.)
    pub const CONNECTED: u32 = 10;
    /// id = relay; a = offset in data of two u64 (LE): bytes moved a→b, then b→a. Follows the
    /// CLOSED records of both connections.
    pub const RELAY_ENDED: u32 = 11;
    /// id = connection; a = offset in data of `b` descriptor numbers (u32 LE) received with the
    /// data that follows (SCM_RIGHTS); the consumer owns them.
    pub const FDS: u32 = 12;
    /// id = connection or proxy session; a = offset of its PROXY header's payload (`push_proxy_info`),
    /// b = its length. Comes just before the ACCEPT or ROUTE record of that id.
    pub const PROXY_INFO: u32 = 13;
    /// id = proxy session waiting for a route; a = offset of the client's address record; b = the
    /// proxy port. The consumer answers with `Reactor::route`.
    pub const ROUTE: u32 = 14;
    /// id = proxy port whose drain finished; a = offset of three u64 (LE): sessions that ended by
    /// themselves, idle ones closed at the start, active ones closed at the deadline.
    pub const PORT_DRAINED: u32 = 15;
    /// id = datagram proxy port; a = offset of its new client's datagram (`push_datagram_route`),
    /// b = the datagram's length. The consumer answers with `Reactor::route_datagrams`.
    pub const DATAGRAM_ROUTE: u32 = 16;
    /// id = datagram proxy port whose stop finished: its last session ended and its socket is
    /// closed (its final figures wait in `Reactor::datagram_proxy_stats`).
    pub const DATAGRAM_PROXY_CLOSED: u32 = 17;
    /// id = connection: its TLS handshake completed; a = offset of the session's `push_tls_info`
    /// payload, b = its length. Comes before the ACCEPT or CONNECTED record of that id (a port or
    /// a connect with TLS), or on its own after `startTLS`.
    pub const TLS_READY: u32 = 20;
    /// id = connection (or a connect in progress): its TLS session failed; a = offset of the
    /// `push_tls_error` payload, b = its length. Comes just before the CLOSED record of that id
    /// (whose errno is EPROTO).
    pub const TLS_ERROR: u32 = 21;
}

/// u32s per record: `[kind, id, a, b]`.
pub const STRIDE: usize = 4;
/// A taken batch is copied into the consumer's array after a header `[records, chunks]`.
pub const BATCH_HEADER: usize = 2;
/// `records` in the header when the records did not fit the consumer's array.
pub const RECORDS_OVERFLOW: u32 = u32::MAX;

/// A stream connection's state as the consumer sees it: a bit set (`stream::state` decides it;
/// every state-changing call returns it).
pub mod bits {
    pub const PAUSED: u32 = 1;
    /// The peer's FIN was read.
    pub const READ_EOF: u32 = 2;
    /// Reading stopped for a close (`loseConnection`).
    pub const READ_STOPPED: u32 = 4;
    /// FIN asked for, not yet sent (queue not flushed).
    pub const WRITE_CLOSING: u32 = 8;
    /// FIN sent.
    pub const WRITE_CLOSED: u32 = 16;
    /// Closing after the flush (`loseConnection`); writes may still be accepted.
    pub const DISCONNECTING: u32 = 32;
    /// The call that returned this closed the connection.
    pub const CLOSED: u32 = 64;
    /// The core does not know the id (any more): its close, if it made one, is reported by an event.
    pub const GONE: u32 = 128;
    /// An outbound connect in progress.
    pub const CONNECTING: u32 = 256;
    /// Relaying to another connection inside the core.
    pub const RELAYING: u32 = 512;
}

/// What to adopt (`Adopt::from_wire`): 1 listener, 2 connection, 3 datagram.
pub const ADOPT_LISTENER: u32 = 1;
pub const ADOPT_CONNECTION: u32 = 2;
pub const ADOPT_DATAGRAM: u32 = 3;

/// Why an adoption was refused, on the wire (the consumer builds its typed error from this, the
/// errno and the socket's actual type or family).
pub mod refusal {
    /// A syscall failed (EBADF, ENOTSOCK, ...): see the errno.
    pub const OS: u32 = 1;
    /// The socket's type is not the one the method needs: see the socket type.
    pub const SOCKET_TYPE: u32 = 2;
    /// The socket's family differs from the one given: see the actual family.
    pub const FAMILY: u32 = 3;
    pub const NOT_LISTENING: u32 = 4;
    pub const NOT_CONNECTED: u32 = 5;
}

/// Address families the package names (Linux's numbers, from libc).
pub mod family {
    pub const UNIX: i32 = libc::AF_UNIX;
    pub const INET: i32 = libc::AF_INET;
    pub const INET6: i32 = libc::AF_INET6;
}

/// Socket types (`SO_TYPE`) the package names.
pub mod socket_type {
    pub const STREAM: i32 = libc::SOCK_STREAM;
    pub const DGRAM: i32 = libc::SOCK_DGRAM;
    pub const SEQPACKET: i32 = libc::SOCK_SEQPACKET;
    pub const RAW: i32 = libc::SOCK_RAW;
}

/// Appends the payload of an FDS record: the descriptor numbers as u32 LE. Returns its offset.
pub fn push_fds(data: &mut Vec<u8>, fds: impl IntoIterator<Item = i32>) -> usize {
    let offset = data.len();
    for fd in fds {
        data.extend_from_slice(&(fd as u32).to_le_bytes());
    }
    offset
}

/// The descriptor numbers of an FDS record whose payload is `count` numbers at `offset`.
pub fn read_fds(data: &[u8], offset: usize, count: usize) -> impl Iterator<Item = i32> + '_ {
    let end = offset.saturating_add(count.saturating_mul(4)).min(data.len());
    data.get(offset..end).unwrap_or(&[]).chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i32)
}

/// Appends the payload of a RELAY_ENDED record: bytes moved a→b, then b→a, as u64 LE. Returns its
/// offset.
pub fn push_relay_counts(data: &mut Vec<u8>, ab: u64, ba: u64) -> usize {
    let offset = data.len();
    data.extend_from_slice(&ab.to_le_bytes());
    data.extend_from_slice(&ba.to_le_bytes());
    offset
}

/// Appends the payload of a PROXY_INFO record for `header`; returns (offset, length). Layout: u8
/// version (1, 2), u8 command (0 LOCAL, 1 PROXY), u8 transport (the v2 family/protocol byte), then
/// the source and the destination as u16 (LE) length + address record (length 0: none), then the
/// TLVs as the header carried them (v2 wire form: u8 type, u16 BE length, value).
pub fn push_proxy_info(data: &mut Vec<u8>, header: &crate::proxy_protocol::Header) -> (usize, usize) {
    use crate::proxy_protocol::{Addresses, Command, Version};
    let offset = data.len();
    data.push(if header.version == Version::V1 { 1 } else { 2 });
    data.push(if header.command == Command::Proxy { 1 } else { 0 });
    data.push(header.transport().v2_byte());
    let (src, dst) = match header.addresses {
        Addresses::Ip { source, destination, .. } => (Some(socket2::SockAddr::from(source)), Some(socket2::SockAddr::from(destination))),
        Addresses::Unix { source, destination, .. } => (unix_record(source.path()), unix_record(destination.path())),
        Addresses::Unspecified => (None, None),
    };
    for addr in [src, dst] {
        let at = data.len();
        data.extend_from_slice(&[0, 0]);
        if let Some(a) = addr {
            let start = data.len();
            address::encode(&a, data);
            let len = (data.len() - start) as u16;
            data[at..at + 2].copy_from_slice(&len.to_le_bytes());
        }
    }
    data.extend_from_slice(header.tlvs.as_bytes());
    (offset, data.len() - offset)
}

fn unix_record(path: &[u8]) -> Option<socket2::SockAddr> {
    use std::os::unix::ffi::OsStrExt;
    socket2::SockAddr::unix(std::ffi::OsStr::from_bytes(path)).ok()
}

/// Appends the payload of a DATAGRAM_ROUTE record: the client's token (u32 LE: the answer names
/// it), the client's address record, then the datagram. Returns the offset.
pub fn push_datagram_route(data: &mut Vec<u8>, token: u32, client: &socket2::SockAddr, datagram: &[u8]) -> usize {
    let offset = data.len();
    data.extend_from_slice(&token.to_le_bytes());
    address::encode(client, data);
    data.extend_from_slice(datagram);
    offset
}

/// Appends the payload of a DRAINED record; returns its offset.
pub fn push_drain_counts(data: &mut Vec<u8>, ended: u64, idle_closed: u64, closed_at_deadline: u64) -> usize {
    let offset = data.len();
    for n in [ended, idle_closed, closed_at_deadline] {
        data.extend_from_slice(&n.to_le_bytes());
    }
    offset
}

/// Appends the payload of a TLS_READY record; returns (offset, length). Layout: u8 flags (bit 0:
/// resumed), then protocol, cipher suite, key exchange group, ALPN protocol and server name, each
/// as u8 length + bytes (length 0: none), then u16 LE count of peer certificates and each as u32
/// LE length + DER (leaf first).
pub fn push_tls_info(data: &mut Vec<u8>, info: &crate::tls::TlsInfo) -> (usize, usize) {
    let offset = data.len();
    data.push(u8::from(info.resumed));
    let short = |data: &mut Vec<u8>, bytes: Option<&[u8]>| {
        let bytes = bytes.unwrap_or(&[]);
        let n = bytes.len().min(255);
        data.push(n as u8);
        data.extend_from_slice(&bytes[..n]);
    };
    short(data, info.protocol.map(str::as_bytes));
    short(data, info.cipher_suite.map(str::as_bytes));
    short(data, info.key_exchange_group.map(str::as_bytes));
    short(data, info.alpn_protocol.as_deref());
    short(data, info.server_name.as_deref().map(str::as_bytes));
    let certs = &info.peer_certificates[..info.peer_certificates.len().min(u16::MAX as usize)];
    data.extend_from_slice(&(certs.len() as u16).to_le_bytes());
    for cert in certs {
        data.extend_from_slice(&(cert.len() as u32).to_le_bytes());
        data.extend_from_slice(cert);
    }
    (offset, data.len() - offset)
}

/// Appends the payload of a TLS_ERROR record; returns (offset, length). Layout: code, alert name
/// (length 0: no alert) as u8 length + ASCII, u8 1 when the peer sent the alert (0 when we did),
/// then the message as u16 LE length + UTF-8.
pub fn push_tls_error(data: &mut Vec<u8>, err: &crate::tls::TlsError) -> (usize, usize) {
    let offset = data.len();
    for text in [err.code(), err.alert_name().unwrap_or("")] {
        data.push(text.len() as u8);
        data.extend_from_slice(text.as_bytes());
    }
    data.push(u8::from(err.alert.is_some_and(|a| a.received)));
    let mut message = err.to_string();
    let mut end = message.len().min(u16::MAX as usize);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    let message = message.as_bytes();
    data.extend_from_slice(&(message.len() as u16).to_le_bytes());
    data.extend_from_slice(message);
    (offset, data.len() - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fds_round_trip_and_a_short_payload_reads_what_is_there() {
        let mut data = vec![9u8];
        let at = push_fds(&mut data, [3, 70000]);
        assert_eq!(read_fds(&data, at, 2).collect::<Vec<_>>(), [3, 70000]);
        assert_eq!(read_fds(&data, at, 5).count(), 2);
        assert_eq!(read_fds(&data, 1000, 1).count(), 0);
    }

    #[test]
    fn relay_counts_are_two_u64() {
        let mut data = Vec::new();
        let at = push_relay_counts(&mut data, 1 << 40, 7);
        assert_eq!(&data[at..at + 8], &(1u64 << 40).to_le_bytes());
        assert_eq!(data.len(), 16);
    }
}
