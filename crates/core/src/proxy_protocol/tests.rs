//! Fixed cases: wire fixtures, one round trip per family and version, every refusal, and the bug
//! shapes other PROXY parsers shipped with.

use super::tlv::{self, Tlv, Tlvs};
use super::*;
use std::net::SocketAddr;

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn parse_default(buf: &[u8]) -> Result<Parsed, ProxyError> {
    parse(buf, &ParseOptions::default())
}

fn complete(buf: &[u8]) -> (Header, usize) {
    match parse_default(buf) {
        Ok(Parsed::Complete { header, consumed }) => (header, consumed),
        other => panic!("{} -> {other:?}", buf.escape_ascii()),
    }
}

fn error(buf: &[u8]) -> ProxyError {
    match parse_default(buf) {
        Err(err) => err,
        other => panic!("{} -> {other:?}", buf.escape_ascii()),
    }
}

fn v1_bytes(header: &Header) -> Vec<u8> {
    let mut out = Vec::new();
    encode_v1(header, &mut out);
    out
}

fn v2_bytes(header: &Header) -> Vec<u8> {
    let mut out = Vec::new();
    encode_v2(header, &mut out).unwrap();
    out
}

/// The v2 fixed part for a family byte and length.
fn v2_fixed(version_command: u8, family: u8, length: u16) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.extend_from_slice(&[version_command, family]);
    out.extend_from_slice(&length.to_be_bytes());
    out
}

/// A TLV region with its checksum value zeroed, to compare a built header (whose CRC32C is a
/// placeholder until encoded) with its parsed copy.
pub(super) fn checksum_zeroed(tlvs: &Tlvs) -> Vec<u8> {
    let mut bytes = tlvs.as_bytes().to_vec();
    if let Some(at) = tlvs.crc32c_offset() {
        bytes[at..at + 4].fill(0);
    }
    bytes
}

fn unix(path: &[u8]) -> UnixAddress {
    UnixAddress::new(path).unwrap()
}

/// A header carrying every registered TLV, with a checksum.
fn header_with_all_tlvs() -> Header {
    let mut header = Header::tcp(Version::V2, addr("[2001:db8::1]:40000"), addr("[2001:db8::2]:443"));
    header.tlvs.push(tlv::ALPN, b"h2").unwrap();
    header.tlvs.push(tlv::AUTHORITY, b"example.com").unwrap();
    header.tlvs.push(tlv::NOOP, &[0; 5]).unwrap();
    header.tlvs.push(tlv::UNIQUE_ID, b"connection-42").unwrap();
    let subs = [
        Tlv { kind: tlv::SSL_VERSION, value: b"TLSv1.3" },
        Tlv { kind: tlv::SSL_CN, value: b"client.example" },
        Tlv { kind: tlv::SSL_CIPHER, value: b"TLS_AES_128_GCM_SHA256" },
        Tlv { kind: tlv::SSL_SIG_ALG, value: b"RSA-SHA256" },
        Tlv { kind: tlv::SSL_KEY_ALG, value: b"RSA2048" },
    ];
    header.tlvs.push_ssl(tlv::CLIENT_SSL | tlv::CLIENT_CERT_CONN, 0, &subs).unwrap();
    header.tlvs.push(tlv::NETNS, b"blue").unwrap();
    header.tlvs.push(0xE1, b"app-specific").unwrap();
    header.tlvs.push_crc32c();
    header
}

// --- Fixtures -----------------------------------------------------------------------------------

/// What HAProxy's `server ... send-proxy-v2` (no `proxy-v2-options`, so no TLVs) sends for a TCP
/// connection over IPv4, built by hand from the spec (section 2.2) for the addresses of the spec's
/// own v1 example (192.168.0.1:56324 -> 192.168.0.11:443). Checked once against HAProxy 2.6.12 on
/// loopback: its bytes for a 127.0.0.1 connection were the same as `encode_v2`'s.
const HAPROXY_SEND_PROXY_V2_TCP4: [u8; 28] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, // signature
    0x21, // version 2, command PROXY
    0x11, // AF_INET, STREAM
    0x00, 0x0C, // 12 bytes of addresses follow
    192, 168, 0, 1, // source address
    192, 168, 0, 11, // destination address
    0xDC, 0x04, // source port 56324
    0x01, 0xBB, // destination port 443
];

/// What nginx's `proxy_protocol on;` (stream or mail module, v1 only) and HAProxy's `send-proxy`
/// send for the same connection: the spec's own v1 example line (section 2.1). Checked once
/// against nginx 1.22.1 and HAProxy 2.6.12 on loopback, byte for byte.
const NGINX_PROXY_PROTOCOL_V1_TCP4: &[u8] = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";

#[test]
fn haproxy_send_proxy_v2_fixture() {
    let header = Header::tcp(Version::V2, addr("192.168.0.1:56324"), addr("192.168.0.11:443"));
    assert_eq!(v2_bytes(&header), HAPROXY_SEND_PROXY_V2_TCP4);
    assert_eq!(complete(&HAPROXY_SEND_PROXY_V2_TCP4), (header.clone(), 28));
    assert_eq!(header.transport(), Transport::Tcp4);
    assert_eq!(header.source(), Some(addr("192.168.0.1:56324")));
    assert_eq!(header.destination(), Some(addr("192.168.0.11:443")));
}

#[test]
fn nginx_proxy_protocol_v1_fixture() {
    let header = Header::tcp(Version::V1, addr("192.168.0.1:56324"), addr("192.168.0.11:443"));
    assert_eq!(v1_bytes(&header), NGINX_PROXY_PROTOCOL_V1_TCP4);
    assert_eq!(complete(NGINX_PROXY_PROTOCOL_V1_TCP4), (header, NGINX_PROXY_PROTOCOL_V1_TCP4.len()));
}

/// Captured from HAProxy 2.6.12 (`send-proxy-v2 proxy-v2-options crc32c,unique-id`, frontend
/// `unique-id-format conn-%ci-%cp`) relaying 127.0.0.1:35262 -> 127.0.0.1:19013: a checksum made by
/// another implementation, so the CRC32C check is not only tested against our own encoder.
const HAPROXY_CRC32C_UNIQUE_ID_CAPTURE: &[u8] = b"\
\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a\x21\x11\x00\x2a\
\x7f\x00\x00\x01\x7f\x00\x00\x01\x89\xbe\x4a\x45\
\x03\x00\x04\xdb\xfc\x91\x7b\
\x05\x00\x14conn-127.0.0.1-35262";

#[test]
fn haproxy_crc32c_capture() {
    let (header, consumed) = complete(HAPROXY_CRC32C_UNIQUE_ID_CAPTURE);
    assert_eq!(consumed, 58);
    assert_eq!(header.source(), Some(addr("127.0.0.1:35262")));
    assert_eq!(header.destination(), Some(addr("127.0.0.1:19013")));
    assert_eq!(header.tlvs.crc32c(), Some(0xDBFC_917B));
    assert_eq!(header.tlvs.unique_id(), Some(&b"conn-127.0.0.1-35262"[..]));
    // The same TLVs in the same order encode to the same bytes.
    let mut ours = Header::tcp(Version::V2, addr("127.0.0.1:35262"), addr("127.0.0.1:19013"));
    ours.tlvs.push_crc32c();
    ours.tlvs.push(tlv::UNIQUE_ID, b"conn-127.0.0.1-35262").unwrap();
    assert_eq!(v2_bytes(&ours), HAPROXY_CRC32C_UNIQUE_ID_CAPTURE);
    // One bit off anywhere in the addresses and the checksum says so.
    let mut corrupt = HAPROXY_CRC32C_UNIQUE_ID_CAPTURE.to_vec();
    corrupt[19] ^= 0x01;
    assert_eq!(error(&corrupt), ProxyError::Crc32cMismatch);
}

#[test]
fn haproxy_local_health_check_fixture() {
    // LOCAL, AF_UNSPEC, no addresses: what a v2 sender's health check looks like.
    let bytes = v2_fixed(0x20, 0x00, 0);
    assert_eq!(v2_bytes(&Header::local(Version::V2)), bytes);
    let (header, consumed) = complete(&bytes);
    assert_eq!((header.command, header.addresses, consumed), (Command::Local, Addresses::Unspecified, 16));
    assert_eq!(header.source(), None);
}

// --- Round trips, every family in both versions -------------------------------------------------

fn every_family() -> Vec<(Transport, Header)> {
    let ip = |socket_type, source: &str, destination: &str| Addresses::Ip {
        socket_type,
        source: addr(source),
        destination: addr(destination),
    };
    let unix = |socket_type| Addresses::Unix {
        socket_type,
        source: unix(b"/run/client.sock"),
        destination: unix(b"\0abstract-server"),
    };
    let v2 = |addresses| Header::proxy(Version::V2, addresses);
    vec![
        (Transport::Tcp4, v2(ip(SocketType::Stream, "10.0.0.1:1234", "10.0.0.2:80"))),
        (Transport::Tcp6, v2(ip(SocketType::Stream, "[::1]:1234", "[fe80::1:2]:80"))),
        (Transport::Udp4, v2(ip(SocketType::Datagram, "10.0.0.1:53", "10.0.0.2:5353"))),
        (Transport::Udp6, v2(ip(SocketType::Datagram, "[2001:db8::53]:53", "[2001:db8::1]:0"))),
        (Transport::UnixStream, v2(unix(SocketType::Stream))),
        (Transport::UnixDgram, v2(unix(SocketType::Datagram))),
        (Transport::Unspec, v2(Addresses::Unspecified)),
    ]
}

#[test]
fn v2_round_trip_every_family() {
    for (transport, header) in every_family() {
        assert_eq!(header.transport(), transport);
        let bytes = v2_bytes(&header);
        assert_eq!(bytes[13], transport.v2_byte());
        assert_eq!(bytes.len(), V2_FIXED_LEN + transport.v2_address_len());
        assert_eq!(complete(&bytes), (header.clone(), bytes.len()), "{transport:?}");

        let mut with_tlvs = header_with_all_tlvs();
        with_tlvs.addresses = header.addresses;
        let bytes = v2_bytes(&with_tlvs);
        let (parsed, consumed) = complete(&bytes);
        assert_eq!(consumed, bytes.len());
        assert_eq!(parsed.addresses, header.addresses);
        assert_eq!(parsed.tlvs.iter().count(), with_tlvs.tlvs.iter().count());
        assert_eq!(parsed.tlvs.as_bytes()[..], bytes[V2_FIXED_LEN + transport.v2_address_len()..]);
    }
}

#[test]
fn v1_round_trip_every_family() {
    for (transport, header) in every_family() {
        let v1 = Header { version: Version::V1, ..header };
        let bytes = v1_bytes(&v1);
        let (parsed, consumed) = complete(&bytes);
        assert_eq!(consumed, bytes.len());
        match transport {
            // The two families v1 has.
            Transport::Tcp4 | Transport::Tcp6 => assert_eq!(parsed, v1, "{transport:?}"),
            // The rest has no v1 form and goes as UNKNOWN.
            _ => {
                assert_eq!(bytes, b"PROXY UNKNOWN\r\n", "{transport:?}");
                assert_eq!(parsed, Header::proxy(Version::V1, Addresses::Unspecified));
            }
        }
    }
    assert_eq!(v1_bytes(&Header::local(Version::V1)), b"PROXY UNKNOWN\r\n");
    // TLVs have no v1 form.
    assert_eq!(v1_bytes(&header_with_all_tlvs())[..11], b"PROXY TCP6 "[..]);
}

#[test]
fn mixed_families_go_as_ipv6() {
    let header = Header::tcp(Version::V2, addr("192.0.2.1:1000"), addr("[2001:db8::1]:2000"));
    assert_eq!(header.transport(), Transport::Tcp6);
    let expected = Header::tcp(Version::V2, addr("[::ffff:192.0.2.1]:1000"), addr("[2001:db8::1]:2000"));
    assert_eq!(complete(&v2_bytes(&header)).0, expected);
    assert_eq!(v1_bytes(&header), b"PROXY TCP6 ::ffff:192.0.2.1 2001:db8::1 1000 2000\r\n");
    assert_eq!(complete(&v1_bytes(&header)).0, Header { version: Version::V1, ..expected });
}

#[test]
fn local_sends_no_addresses_and_keeps_tlvs() {
    let mut header = header_with_all_tlvs();
    header.command = Command::Local;
    let bytes = v2_bytes(&header);
    assert_eq!((bytes[12], bytes[13]), (0x20, 0x00));
    let (parsed, _) = complete(&bytes);
    assert_eq!(parsed.addresses, Addresses::Unspecified);
    assert_eq!(checksum_zeroed(&parsed.tlvs), checksum_zeroed(&header.tlvs));
    assert_eq!(parsed.source(), None);
}

#[test]
fn registered_tlvs_read_back() {
    let (parsed, _) = complete(&v2_bytes(&header_with_all_tlvs()));
    let tlvs = &parsed.tlvs;
    assert_eq!(tlvs.alpn(), Some(&b"h2"[..]));
    assert_eq!(tlvs.authority(), Some(&b"example.com"[..]));
    assert_eq!(tlvs.noop_count(), 1);
    assert_eq!(tlvs.unique_id(), Some(&b"connection-42"[..]));
    assert_eq!(tlvs.netns(), Some(&b"blue"[..]));
    assert_eq!(tlvs.get(0xE1), Some(&b"app-specific"[..]));
    assert!(tlvs.crc32c().is_some_and(|crc| crc != 0));
    let ssl = tlvs.ssl().unwrap();
    assert!(ssl.over_tls() && ssl.certificate_verified());
    assert_eq!(ssl.version(), Some(&b"TLSv1.3"[..]));
    assert_eq!(ssl.common_name(), Some(&b"client.example"[..]));
    assert_eq!(ssl.cipher(), Some(&b"TLS_AES_128_GCM_SHA256"[..]));
    assert_eq!(ssl.signature_algorithm(), Some(&b"RSA-SHA256"[..]));
    assert_eq!(ssl.key_algorithm(), Some(&b"RSA2048"[..]));
}

#[test]
fn unix_address_paths() {
    assert_eq!(unix(b"/run/a.sock").path(), b"/run/a.sock");
    assert_eq!(unix(b"\0name").path(), b"\0name");
    assert_eq!(unix(b"").path(), b"");
    assert_eq!(UnixAddress::new(&[b'x'; 108]).unwrap().path(), &[b'x'; 108][..]);
    assert_eq!(UnixAddress::new(&[b'x'; 109]), None);
}

// --- The bug shapes of other parsers ------------------------------------------------------------

#[test]
fn unbounded_v1_line_is_an_error_not_incomplete_forever() {
    // No CRLF in the first 107 bytes: refused as soon as the 107th byte is in.
    let mut line = b"PROXY UNKNOWN ".to_vec();
    line.resize(106, b'a');
    assert_eq!(parse_default(&line), Ok(Parsed::Incomplete));
    line.push(b'a');
    assert_eq!(error(&line), ProxyError::V1LineTooLong);
    line.resize(4096, b'a');
    assert_eq!(error(&line), ProxyError::V1LineTooLong);
    // A CRLF just past the limit does not save it.
    line.truncate(106);
    line.extend_from_slice(b"\r\n");
    assert_eq!(error(&line), ProxyError::V1LineTooLong);
}

#[test]
fn v1_longest_lines_are_accepted() {
    // The spec's worst cases: 104 bytes for TCP6, 107 for UNKNOWN with addresses.
    let full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let tcp6 = format!("PROXY TCP6 {full} {full} 65535 65535\r\n");
    assert_eq!(tcp6.len(), 104);
    assert_eq!(complete(tcp6.as_bytes()).1, 104);
    let unknown = format!("PROXY UNKNOWN {full} {full} 65535 65535\r\n");
    assert_eq!(unknown.len(), V1_MAX_LINE_LEN);
    assert_eq!(complete(unknown.as_bytes()), (Header::proxy(Version::V1, Addresses::Unspecified), 107));
    let tcp4 = "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    assert_eq!(complete(tcp4.as_bytes()).1, 56);
}

#[test]
fn no_header_at_all_is_refused_at_once() {
    assert_eq!(error(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), ProxyError::NotProxy);
    // Decided by the first byte that disagrees, without waiting for more.
    assert_eq!(error(b"G"), ProxyError::NotProxy);
    assert_eq!(error(b"PROXZ"), ProxyError::NotProxy);
    assert_eq!(error(b"PROXY\t"), ProxyError::NotProxy);
    assert_eq!(error(b"proxy TCP4"), ProxyError::NotProxy);
    assert_eq!(error(b"\r\n\r\n\0\r\nQUIZ"), ProxyError::NotProxy);
    assert_eq!(error(&[0x16, 0x03, 0x01, 0x02, 0x00]), ProxyError::NotProxy); // a TLS ClientHello
    assert_eq!(error(b"SSH-2.0-OpenSSH_9.2\r\n"), ProxyError::NotProxy);
    assert_eq!(parse_default(b""), Ok(Parsed::Incomplete));
    assert_eq!(parse_default(b"PROX"), Ok(Parsed::Incomplete));
    assert_eq!(parse_default(b"\r\n\r\n\0"), Ok(Parsed::Incomplete));
}

#[test]
fn truncated_v2_address_block() {
    for (family, needed) in [(0x11u8, 12u16), (0x12, 12), (0x21, 36), (0x22, 36), (0x31, 216), (0x32, 216)] {
        let mut bytes = v2_fixed(0x21, family, needed - 1);
        // Refused from the length field alone, before the block arrives.
        assert_eq!(error(&bytes), ProxyError::V2AddressTruncated, "{family:#x}");
        bytes.resize(V2_FIXED_LEN + usize::from(needed) - 1, 0);
        assert_eq!(error(&bytes), ProxyError::V2AddressTruncated, "{family:#x}");
    }
    assert_eq!(error(&v2_fixed(0x21, 0x11, 0)), ProxyError::V2AddressTruncated);
}

#[test]
fn tlv_length_past_the_header() {
    let mut bytes = v2_fixed(0x21, 0x11, 12 + 3 + 4);
    bytes.extend_from_slice(&HAPROXY_SEND_PROXY_V2_TCP4[16..]);
    bytes.extend_from_slice(&[tlv::AUTHORITY, 0x00, 0x0A, b'a', b'b', b'c', b'd']); // claims 10, has 4
    bytes.extend_from_slice(b"GET / HTTP/1.1\r\n"); // application data must not be read as TLV
    assert_eq!(error(&bytes), ProxyError::TlvOverrun);

    // 1 or 2 bytes after the last TLV: a TLV header cut short.
    for tail in [&[tlv::NOOP][..], &[tlv::NOOP, 0]] {
        let mut bytes = v2_fixed(0x21, 0x11, 12 + 3 + tail.len() as u16);
        bytes.extend_from_slice(&HAPROXY_SEND_PROXY_V2_TCP4[16..]);
        bytes.extend_from_slice(&[tlv::NOOP, 0, 0]);
        bytes.extend_from_slice(tail);
        assert_eq!(error(&bytes), ProxyError::TlvOverrun);
    }

    // An SSL sub-TLV running past its SSL TLV.
    let mut bytes = v2_fixed(0x21, 0x00, 3 + 5 + 4);
    bytes.extend_from_slice(&[tlv::SSL, 0, 9, tlv::CLIENT_SSL, 0, 0, 0, 0, tlv::SSL_VERSION, 0, 9, b'x']);
    assert_eq!(error(&bytes), ProxyError::TlvOverrun);
}

#[test]
fn registered_tlv_of_the_wrong_shape() {
    let with_tlv_region = |region: &[u8]| {
        let mut bytes = v2_fixed(0x21, 0x00, region.len() as u16);
        bytes.extend_from_slice(region);
        bytes
    };
    assert_eq!(error(&with_tlv_region(&[tlv::CRC32C, 0, 2, 0, 0])), ProxyError::TlvMalformed);
    let mut long_id = vec![tlv::UNIQUE_ID, 0, 129];
    long_id.resize(3 + 129, b'i');
    assert_eq!(error(&with_tlv_region(&long_id)), ProxyError::TlvMalformed);
    assert_eq!(error(&with_tlv_region(&[tlv::SSL, 0, 4, 1, 0, 0, 0])), ProxyError::TlvMalformed);
}

#[test]
fn split_at_every_byte_boundary() {
    let data = b"GET / HTTP/1.1\r\n\r\n";
    let unix_header = every_family().remove(4).1;
    let cases: Vec<Vec<u8>> = vec![
        NGINX_PROXY_PROTOCOL_V1_TCP4.to_vec(),
        b"PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 0 65535\r\n".to_vec(),
        b"PROXY UNKNOWN whatever \xff\r\n".to_vec(),
        HAPROXY_SEND_PROXY_V2_TCP4.to_vec(),
        v2_bytes(&header_with_all_tlvs()),
        v2_bytes(&unix_header),
    ];
    for header_bytes in cases {
        let mut stream = header_bytes.clone();
        stream.extend_from_slice(data);
        let whole = complete(&stream);
        assert_eq!(whole.1, header_bytes.len());
        // Reads that end anywhere inside the header: wait, never fail.
        for end in 0..header_bytes.len() {
            assert_eq!(
                parse_default(&stream[..end]),
                Ok(Parsed::Incomplete),
                "{} at {end}",
                header_bytes.escape_ascii()
            );
        }
        // Reads that end anywhere after it: the same header, the same count.
        for end in header_bytes.len()..=stream.len() {
            assert_eq!(complete(&stream[..end]), whole);
        }
    }
}

#[test]
fn crc32c_is_checked() {
    let bytes = v2_bytes(&header_with_all_tlvs());
    assert!(complete(&bytes).0.tlvs.crc32c().is_some());
    // Any changed address byte, or the checksum itself, breaks it.
    for at in [16, 20, 47, 51, bytes.len() - 1] {
        let mut corrupt = bytes.clone();
        corrupt[at] ^= 0x01;
        assert_eq!(error(&corrupt), ProxyError::Crc32cMismatch, "at {at}");
    }
    // A checksum field left zero (sender forgot to fill it) does not match either.
    let mut unfilled = Tlvs::new();
    unfilled.push(tlv::CRC32C, &[0; 4]).unwrap();
    let mut header = Header::tcp(Version::V2, addr("10.0.0.1:1"), addr("10.0.0.2:2"));
    header.tlvs = unfilled;
    let mut bytes = v2_bytes(&header);
    let field = bytes.len() - 4;
    bytes[field..].copy_from_slice(&[0; 4]);
    assert_eq!(error(&bytes), ProxyError::Crc32cMismatch);
    // A LOCAL header with a wrong checksum is refused too: the checksum outranks "accept LOCAL".
    let mut local = header_with_all_tlvs();
    local.command = Command::Local;
    let mut bytes = v2_bytes(&local);
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    assert_eq!(error(&bytes), ProxyError::Crc32cMismatch);
}

#[test]
fn crc32c_known_header() {
    // Checksum over the HAProxy fixture followed by a CRC32C TLV, computed independently of the
    // encoder: CRC-32C of the bytes with the field zero, placed big-endian.
    let mut header = Header::tcp(Version::V2, addr("192.168.0.1:56324"), addr("192.168.0.11:443"));
    header.tlvs.push_crc32c();
    let bytes = v2_bytes(&header);
    assert_eq!(bytes.len(), 28 + 7);
    assert_eq!(bytes[15], 12 + 7);
    assert_eq!(bytes[16..28], HAPROXY_SEND_PROXY_V2_TCP4[16..]);
    assert_eq!(bytes[28..31], [tlv::CRC32C, 0, 4]);
    let mut zeroed = bytes.clone();
    zeroed[31..].copy_from_slice(&[0; 4]);
    let expected = ::crc::Crc::<u32>::new(&::crc::CRC_32_ISCSI).checksum(&zeroed);
    assert_eq!(bytes[31..], expected.to_be_bytes());
}

#[test]
fn bytes_after_the_header_are_left_to_the_caller() {
    let data = b"\x16\x03\x01 tls or anything, even PROXY TCP4 1.1.1.1 2.2.2.2 1 2\r\n";
    for header_bytes in
        [NGINX_PROXY_PROTOCOL_V1_TCP4.to_vec(), HAPROXY_SEND_PROXY_V2_TCP4.to_vec(), v2_bytes(&header_with_all_tlvs())]
    {
        let mut stream = header_bytes.clone();
        stream.extend_from_slice(data);
        let (_, consumed) = complete(&stream);
        assert_eq!(consumed, header_bytes.len());
        assert_eq!(&stream[consumed..], data);
    }
    // A v2 header larger than its addresses: the length decides, not the family.
    let mut bytes = v2_fixed(0x21, 0x11, 12 + 3);
    bytes.extend_from_slice(&HAPROXY_SEND_PROXY_V2_TCP4[16..]);
    bytes.extend_from_slice(&[tlv::NOOP, 0, 0]);
    bytes.extend_from_slice(b"data");
    assert_eq!(complete(&bytes).1, 16 + 15);
}

// --- v1 grammar ---------------------------------------------------------------------------------

#[test]
fn v1_malformed_lines() {
    for line in [
        &b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n"[..], // LF alone does not end a line
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\r\n",
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 \r\n",
        b"PROXY TCP4 192.168.0.1  192.168.0.11 56324 443\r\n",
        b"PROXY  TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n",
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 1\r\n",
        b"PROXY TCP4 192.168.0.1 192.168.0.11 056324 443\r\n",
        b"PROXY TCP4 192.168.0.1 192.168.0.11 00 443\r\n",
        b"PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n",
        b"PROXY TCP4 192.168.0.1 192.168.0.11 -1 443\r\n",
        b"PROXY TCP4 192.168.00.1 192.168.0.11 1 443\r\n",
        b"PROXY TCP4 192.168.0.256 192.168.0.11 1 443\r\n",
        b"PROXY TCP4 192.168.0 192.168.0.11 1 443\r\n",
        b"PROXY TCP4 ::1 ::1 1 443\r\n",
        b"PROXY TCP6 192.168.0.1 192.168.0.11 1 443\r\n",
        b"PROXY TCP6 [::1] ::1 1 443\r\n",
        b"PROXY TCP6 fe80::1%1 ::1 1 443\r\n",
        b"PROXY TCP6 1::2::3 ::1 1 443\r\n",
        b"PROXY UDP4 192.168.0.1 192.168.0.11 1 443\r\n",
        b"PROXY tcp4 192.168.0.1 192.168.0.11 1 443\r\n",
        b"PROXY TCP4\r\n",
        b"PROXY UNKNOWNX\r\n",
        b"PROXY \r\n",
    ] {
        assert_eq!(error(line), ProxyError::V1Malformed, "{}", line.escape_ascii());
    }
}

#[test]
fn v1_unknown_ignores_the_rest_of_the_line() {
    for line in [&b"PROXY UNKNOWN\r\n"[..], b"PROXY UNKNOWN \r\n", b"PROXY UNKNOWN \xff\x00\n\r junk\r\n"] {
        let (header, consumed) = complete(line);
        assert_eq!(header, Header::proxy(Version::V1, Addresses::Unspecified));
        assert_eq!(consumed, line.len());
    }
}

#[test]
fn v1_fails_early_on_bytes_no_line_can_hold() {
    assert_eq!(error(b"PROXY TCP4 1.2.3.4\x00"), ProxyError::V1Malformed);
    assert_eq!(error(b"PROXY TCP4 1.2.3.4\n"), ProxyError::V1Malformed);
    assert_eq!(error(b"PROXY HTTP"), ProxyError::V1Malformed);
    assert_eq!(parse_default(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"), Ok(Parsed::Incomplete));
}

// --- v2 fields ----------------------------------------------------------------------------------

#[test]
fn v2_bad_version_command_family() {
    for version_command in [0x01u8, 0x11, 0x31, 0xF1] {
        let mut bytes = V2_SIGNATURE.to_vec();
        bytes.push(version_command);
        assert_eq!(error(&bytes), ProxyError::V2BadVersion, "{version_command:#x}");
    }
    for version_command in [0x22u8, 0x2F] {
        let mut bytes = V2_SIGNATURE.to_vec();
        bytes.push(version_command);
        assert_eq!(error(&bytes), ProxyError::V2BadCommand, "{version_command:#x}");
    }
    for family in [0x01u8, 0x02, 0x10, 0x13, 0x23, 0x40, 0xFF] {
        let mut bytes = V2_SIGNATURE.to_vec();
        bytes.extend_from_slice(&[0x21, family]);
        assert_eq!(error(&bytes), ProxyError::V2BadFamily, "{family:#x}");
    }
}

#[test]
fn v2_local_is_accepted_with_any_block() {
    // Unknown family, addresses of another family, junk that is no TLV: all ignored.
    for (family, block) in
        [(0xFFu8, &b"anything"[..]), (0x11, &[1u8; 12][..]), (0x00, &[0xFF, 0xFF][..]), (0x31, &[7u8; 5][..])]
    {
        let mut bytes = v2_fixed(0x20, family, block.len() as u16);
        bytes.extend_from_slice(block);
        let (header, consumed) = complete(&bytes);
        assert_eq!((header.command, header.addresses, consumed), (Command::Local, Addresses::Unspecified, bytes.len()));
        assert!(header.tlvs.is_empty());
    }
}

#[test]
fn v2_proxy_unspec_is_accepted() {
    let mut bytes = v2_fixed(0x21, 0x00, 3);
    bytes.extend_from_slice(&[tlv::NOOP, 0, 0]);
    let (header, _) = complete(&bytes);
    assert_eq!((header.command, header.addresses), (Command::Proxy, Addresses::Unspecified));
    assert_eq!(header.source(), None);
}

// --- Options ------------------------------------------------------------------------------------

#[test]
fn too_large() {
    // v2: judged from the length field, before the body arrives.
    assert_eq!(error(&v2_fixed(0x21, 0x11, 536 - 16 + 1)), ProxyError::TooLarge);
    assert!(matches!(parse_default(&v2_fixed(0x21, 0x11, 536 - 16)), Ok(Parsed::Incomplete)));
    let small = ParseOptions { max_size: 28, ..ParseOptions::default() };
    assert!(matches!(parse(&HAPROXY_SEND_PROXY_V2_TCP4, &small), Ok(Parsed::Complete { .. })));
    let smaller = ParseOptions { max_size: 27, ..ParseOptions::default() };
    assert_eq!(parse(&HAPROXY_SEND_PROXY_V2_TCP4, &smaller), Err(ProxyError::TooLarge));
    // v1 under a max_size below 107.
    let tight = ParseOptions { max_size: 20, ..ParseOptions::default() };
    assert_eq!(parse(NGINX_PROXY_PROTOCOL_V1_TCP4, &tight), Err(ProxyError::TooLarge));
    assert_eq!(parse(&NGINX_PROXY_PROTOCOL_V1_TCP4[..20], &tight), Err(ProxyError::TooLarge));
    assert_eq!(parse(&NGINX_PROXY_PROTOCOL_V1_TCP4[..19], &tight), Ok(Parsed::Incomplete));
}

#[test]
fn versions_not_allowed() {
    let v1_only = ParseOptions { versions: Versions::V1_ONLY, ..ParseOptions::default() };
    let v2_only = ParseOptions { versions: Versions::V2_ONLY, ..ParseOptions::default() };
    assert_eq!(parse(&HAPROXY_SEND_PROXY_V2_TCP4, &v1_only), Err(ProxyError::VersionNotAllowed));
    assert_eq!(parse(NGINX_PROXY_PROTOCOL_V1_TCP4, &v2_only), Err(ProxyError::VersionNotAllowed));
    // A signature still partial cannot start an allowed header either.
    assert_eq!(parse(b"PRO", &v2_only), Err(ProxyError::NotProxy));
    assert_eq!(parse(&HAPROXY_SEND_PROXY_V2_TCP4[..3], &v1_only), Err(ProxyError::NotProxy));
    assert_eq!(parse(b"", &v2_only), Ok(Parsed::Incomplete));
    assert!(matches!(parse(NGINX_PROXY_PROTOCOL_V1_TCP4, &v1_only), Ok(Parsed::Complete { .. })));
    assert!(matches!(parse(&HAPROXY_SEND_PROXY_V2_TCP4, &v2_only), Ok(Parsed::Complete { .. })));
}

// --- Encoding -----------------------------------------------------------------------------------

#[test]
fn encode_v2_refuses_what_the_length_cannot_say() {
    let mut header = Header::proxy(
        Version::V2,
        Addresses::Unix { socket_type: SocketType::Stream, source: unix(b"/a"), destination: unix(b"/b") },
    );
    let fits = u16::MAX as usize - 216 - 3;
    header.tlvs.push(tlv::NOOP, &vec![0; fits]).unwrap();
    let mut out = b"kept".to_vec();
    encode_v2(&header, &mut out).unwrap();
    assert_eq!(out.len(), 4 + 16 + u16::MAX as usize);
    assert_eq!(error(&out[4..]), ProxyError::TooLarge); // for the default options, not for these:
    let roomy = ParseOptions { max_size: usize::MAX, ..ParseOptions::default() };
    match parse(&out[4..], &roomy) {
        Ok(Parsed::Complete { header: parsed, consumed }) => {
            assert_eq!((parsed, consumed), (header.clone(), out.len() - 4))
        }
        other => panic!("{other:?}"),
    }
    header.tlvs.push(tlv::NOOP, &[]).unwrap();
    let mut out = b"kept".to_vec();
    assert_eq!(encode_v2(&header, &mut out), Err(ProxyError::TooLarge));
    assert_eq!(out, b"kept");
}

#[test]
fn encode_appends_without_touching_what_is_there() {
    let header = Header::tcp(Version::V2, addr("192.168.0.1:56324"), addr("192.168.0.11:443"));
    let mut out = b"before".to_vec();
    encode_v2(&header, &mut out).unwrap();
    encode_v1(&header, &mut out);
    assert_eq!(&out[..6], b"before");
    assert_eq!(&out[6..34], HAPROXY_SEND_PROXY_V2_TCP4);
    assert_eq!(&out[34..], NGINX_PROXY_PROTOCOL_V1_TCP4);
}

#[test]
fn error_codes_are_short_names() {
    let all = [
        ProxyError::NotProxy,
        ProxyError::VersionNotAllowed,
        ProxyError::TooLarge,
        ProxyError::V1LineTooLong,
        ProxyError::V1Malformed,
        ProxyError::V2BadVersion,
        ProxyError::V2BadCommand,
        ProxyError::V2BadFamily,
        ProxyError::V2AddressTruncated,
        ProxyError::TlvOverrun,
        ProxyError::TlvMalformed,
        ProxyError::Crc32cMismatch,
    ];
    for err in all {
        assert_eq!(format!("{err:?}"), err.code());
        assert!(err.to_string().ends_with(&format!("({})", err.code())));
    }
}
