//! Properties over generated input: no input makes the parser panic or over-consume, every
//! header the encoders make parses back, every prefix of one waits, a broken signature fails.

use super::tests::checksum_zeroed;
use super::tlv::{self, Tlv, Tlvs};
use super::*;
use proptest::prelude::*;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

/// Large enough for any header, so only the bytes decide.
const ROOMY: ParseOptions = ParseOptions { versions: Versions::ALL, max_size: usize::MAX };

fn ipv4() -> impl Strategy<Value = SocketAddr> {
    (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::V4(SocketAddrV4::new(ip.into(), port)))
}

/// Flow info and scope id are not carried by the protocol, so they stay 0.
fn ipv6() -> impl Strategy<Value = SocketAddr> {
    (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::V6(SocketAddrV6::new(ip.into(), port, 0, 0)))
}

fn unix_address() -> impl Strategy<Value = UnixAddress> {
    proptest::collection::vec(any::<u8>(), UNIX_ADDRESS_LEN)
        .prop_map(|raw| UnixAddress::from_raw(raw.try_into().expect("108 bytes")))
}

fn socket_type() -> impl Strategy<Value = SocketType> {
    prop_oneof![Just(SocketType::Stream), Just(SocketType::Datagram)]
}

/// Addresses of every family but UNSPEC: the ones with an address block.
fn addresses_with_block() -> impl Strategy<Value = Addresses> {
    prop_oneof![
        (socket_type(), ipv4(), ipv4()).prop_map(|(socket_type, source, destination)| Addresses::Ip {
            socket_type,
            source,
            destination
        }),
        (socket_type(), ipv6(), ipv6()).prop_map(|(socket_type, source, destination)| Addresses::Ip {
            socket_type,
            source,
            destination
        }),
        (socket_type(), unix_address(), unix_address())
            .prop_map(|(socket_type, source, destination)| { Addresses::Unix { socket_type, source, destination } }),
    ]
}

fn addresses() -> impl Strategy<Value = Addresses> {
    prop_oneof![1 => Just(Addresses::Unspecified), 3 => addresses_with_block()]
}

/// Any TLVs a sender may send: unregistered and registered types, an SSL TLV with sub-TLVs, and a
/// checksum request.
fn tlvs() -> impl Strategy<Value = Tlvs> {
    let plain_kind = any::<u8>().prop_filter("built separately", |kind| *kind != tlv::CRC32C && *kind != tlv::SSL);
    let plain = proptest::collection::vec((plain_kind, proptest::collection::vec(any::<u8>(), 0..40)), 0..5);
    let sub_tlv = (tlv::SSL_VERSION..=tlv::SSL_KEY_ALG, proptest::collection::vec(any::<u8>(), 0..20));
    let ssl = proptest::option::of((any::<u8>(), any::<u32>(), proptest::collection::vec(sub_tlv, 0..4)));
    (plain, ssl, any::<bool>()).prop_map(|(plain, ssl, checksum)| {
        let mut tlvs = Tlvs::new();
        for (kind, value) in &plain {
            tlvs.push(*kind, value).expect("values under 128 bytes fit every registered type");
        }
        if let Some((client, verify, subs)) = &ssl {
            let subs: Vec<Tlv<'_>> = subs.iter().map(|(kind, value)| Tlv { kind: *kind, value }).collect();
            tlvs.push_ssl(*client, *verify, &subs).expect("small");
        }
        if checksum {
            tlvs.push_crc32c();
        }
        tlvs
    })
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![Just(Command::Proxy), Just(Command::Local)]
}

fn v2_header() -> impl Strategy<Value = Header> {
    (command(), addresses(), tlvs()).prop_map(|(command, addresses, tlvs)| Header {
        version: Version::V2,
        command,
        addresses,
        tlvs,
    })
}

/// The headers v1 can carry exactly: TCP over one IP family, or UNKNOWN.
fn v1_header() -> impl Strategy<Value = Header> {
    let tcp = |(source, destination)| {
        Header::proxy(Version::V1, Addresses::Ip { socket_type: SocketType::Stream, source, destination })
    };
    prop_oneof![
        Just(Header::proxy(Version::V1, Addresses::Unspecified)),
        (ipv4(), ipv4()).prop_map(tcp),
        (ipv6(), ipv6()).prop_map(tcp),
    ]
}

/// What a header reads as after a v2 trip: LOCAL drops its addresses.
fn after_v2(header: &Header) -> Header {
    let mut expected = header.clone();
    if expected.command == Command::Local {
        expected.addresses = Addresses::Unspecified;
    }
    expected
}

/// What a header reads as after a v1 trip: TCP stays, the rest is UNKNOWN, no TLVs.
fn after_v1(header: &Header) -> Header {
    match (header.command, header.addresses) {
        (Command::Proxy, addresses @ Addresses::Ip { socket_type: SocketType::Stream, .. }) => {
            Header::proxy(Version::V1, addresses)
        }
        _ => Header::proxy(Version::V1, Addresses::Unspecified),
    }
}

fn encoded(header: &Header) -> Vec<u8> {
    let mut out = Vec::new();
    match header.version {
        Version::V1 => encode_v1(header, &mut out),
        Version::V2 => encode_v2(header, &mut out).expect("generated headers fit"),
    }
    out
}

fn options() -> impl Strategy<Value = ParseOptions> {
    let versions = prop_oneof![Just(Versions::ALL), Just(Versions::V1_ONLY), Just(Versions::V2_ONLY)];
    (versions, prop_oneof![Just(DEFAULT_MAX_SIZE), 0usize..700, Just(usize::MAX)])
        .prop_map(|(versions, max_size)| ParseOptions { versions, max_size })
}

/// Bytes that get past the first checks often enough to exercise the deeper ones.
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    let start = prop_oneof![
        Just(Vec::new()),
        Just(b"PROXY ".to_vec()),
        Just(b"PROXY TCP4 ".to_vec()),
        Just(b"PROXY TCP6 ".to_vec()),
        Just(b"PROXY UNKNOWN".to_vec()),
        Just(V2_SIGNATURE.to_vec()),
        Just([&V2_SIGNATURE[..], &[0x21]].concat()),
        Just([&V2_SIGNATURE[..], &[0x21, 0x11]].concat()),
        Just([&V2_SIGNATURE[..], &[0x20, 0x00]].concat()),
    ];
    (start, proptest::collection::vec(any::<u8>(), 0..600)).prop_map(|(mut bytes, tail)| {
        bytes.extend_from_slice(&tail);
        bytes
    })
}

/// Checks the one promise every answer keeps: a header never claims bytes that are not there.
fn check_answer(buf: &[u8], opts: &ParseOptions) -> Result<(), TestCaseError> {
    if let Ok(Parsed::Complete { consumed, header }) = parse(buf, opts) {
        prop_assert!(consumed <= buf.len() && consumed <= opts.max_size);
        // What was accepted is what the header is: parsing exactly those bytes agrees.
        prop_assert_eq!(parse(&buf[..consumed], opts), Ok(Parsed::Complete { header, consumed }));
    }
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_nor_overconsume(buf in proptest::collection::vec(any::<u8>(), 0..700), opts in options()) {
        check_answer(&buf, &opts)?;
    }

    #[test]
    fn hostile_bytes_never_panic_nor_overconsume(buf in hostile_bytes(), opts in options()) {
        check_answer(&buf, &opts)?;
    }

    #[test]
    fn v2_headers_round_trip(header in v2_header(), data in proptest::collection::vec(any::<u8>(), 0..32)) {
        let bytes = encoded(&header);
        let mut stream = bytes.clone();
        stream.extend_from_slice(&data);
        let Ok(Parsed::Complete { header: parsed, consumed }) = parse(&stream, &ROOMY) else {
            return Err(TestCaseError::fail(format!("{:?}", parse(&stream, &ROOMY))));
        };
        prop_assert_eq!(consumed, bytes.len());
        let expected = after_v2(&header);
        prop_assert_eq!(parsed.version, expected.version);
        prop_assert_eq!(parsed.command, expected.command);
        prop_assert_eq!(parsed.addresses, expected.addresses);
        prop_assert_eq!(checksum_zeroed(&parsed.tlvs), checksum_zeroed(&expected.tlvs));
        // Re-encoding what was parsed gives the same bytes (the checksum included).
        prop_assert_eq!(encoded(&parsed), bytes);
    }

    #[test]
    fn v1_headers_round_trip(header in v1_header(), data in proptest::collection::vec(any::<u8>(), 0..32)) {
        let bytes = encoded(&header);
        prop_assert!(bytes.len() <= V1_MAX_LINE_LEN);
        let mut stream = bytes.clone();
        stream.extend_from_slice(&data);
        prop_assert_eq!(parse(&stream, &ParseOptions::default()), Ok(Parsed::Complete { header, consumed: bytes.len() }));
    }

    #[test]
    fn any_header_encodes_as_v1(header in v2_header()) {
        let v1 = Header { version: Version::V1, ..header };
        let bytes = encoded(&v1);
        prop_assert_eq!(parse(&bytes, &ParseOptions::default()), Ok(Parsed::Complete { header: after_v1(&v1), consumed: bytes.len() }));
    }

    #[test]
    fn every_prefix_of_a_header_is_incomplete(v2 in v2_header(), v1 in v1_header()) {
        for header in [v2, v1] {
            let bytes = encoded(&header);
            for end in 0..bytes.len() {
                prop_assert_eq!(parse(&bytes[..end], &ROOMY), Ok(Parsed::Incomplete), "{:?} cut at {}", header, end);
            }
        }
    }

    #[test]
    fn a_corrupt_signature_is_an_error(v2 in v2_header(), v1 in v1_header(), at in 0usize..12, flip in 1u8..=255) {
        for (header, signature_len) in [(v2, V2_SIGNATURE.len()), (v1, b"PROXY ".len())] {
            let mut bytes = encoded(&header);
            let at = at % signature_len;
            bytes[at] ^= flip;
            // Refused as soon as the corrupt byte is in, whatever follows; except that a first byte
            // turned into the other format's first byte ('P' or CR) is refused at the second.
            for end in (at + 1).max(2)..=bytes.len() {
                prop_assert!(parse(&bytes[..end], &ROOMY).is_err(), "{:?}: byte {} flipped, cut at {}", header, at, end);
            }
        }
    }

    #[test]
    fn a_corrupt_checksummed_address_is_caught(
        addresses in addresses_with_block(),
        tlvs in tlvs(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut header = Header { version: Version::V2, command: Command::Proxy, addresses, tlvs };
        header.tlvs.push_crc32c();
        let mut bytes = encoded(&header);
        let block = header.transport().v2_address_len();
        bytes[V2_FIXED_LEN + at.index(block)] ^= flip;
        prop_assert_eq!(parse(&bytes, &ROOMY), Err(ProxyError::Crc32cMismatch));
    }
}
