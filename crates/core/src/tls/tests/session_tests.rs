//! The session's life over real sockets: handshake and info, data both ways, bounds,
//! close_notify against truncation, and TCP.

use crate::test_support::certs::need_material;
use super::harness::{contains, Harness};
use crate::tls::{ClientTlsOptions, End, ServerTlsOptions, TlsSession, SEND_BUFFER_LIMIT};
use std::net::{TcpListener, TcpStream};

fn configs(
    m: &crate::test_support::certs::Material,
    server: impl FnOnce(&mut ServerTlsOptions),
    client: impl FnOnce(&mut ClientTlsOptions),
) -> (crate::tls::ClientTlsConfig, crate::tls::ServerTlsConfig) {
    let mut s = ServerTlsOptions { default_cert: Some(m.server.clone()), ..Default::default() };
    server(&mut s);
    let mut c = ClientTlsOptions { ca: Some(m.ca.clone()), session_cache_size: 0, ..Default::default() };
    client(&mut c);
    (c.build().unwrap(), s.build().unwrap())
}

#[test]
fn handshake_reports_tls13_info_on_both_sides() {
    let m = need_material!();
    let (client, server) = configs(
        m,
        |s| s.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        |c| c.alpn_protocols = vec![b"http/1.1".to_vec()],
    );
    let mut h = Harness::connect(&client, "localhost", &server);
    assert!(h.client.session.is_handshaking() && h.client.session.wants_write(), "ClientHello ready at once");
    assert!(h.handshake(), "client {:?} server {:?}", h.client.end, h.server.end);
    assert_eq!((h.client.completions, h.server.completions), (1, 1));
    let (ci, si) = (h.client.session.info(), h.server.session.info());
    assert_eq!(ci.protocol, Some("TLSv1.3"));
    assert_eq!(si.protocol, Some("TLSv1.3"));
    assert!(ci.cipher_suite.unwrap().starts_with("TLS_"), "{:?}", ci.cipher_suite);
    assert_eq!(ci.cipher_suite, si.cipher_suite);
    assert_eq!(ci.key_exchange_group, Some("X25519"));
    assert_eq!(ci.alpn_protocol.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(si.alpn_protocol.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(si.server_name.as_deref(), Some("localhost"));
    assert_eq!(ci.server_name.as_deref(), Some("localhost"));
    assert_eq!(ci.peer_certificates.len(), 1);
    assert!(si.peer_certificates.is_empty(), "no client certificate was asked for");
    assert!(!ci.resumed && !si.resumed);
    assert!(h.server.session.is_server() && !h.client.session.is_server());
}

#[test]
fn tls12_negotiates_an_ecdhe_aead_suite() {
    let m = need_material!();
    let (client, server) = configs(m, |_| {}, |c| c.max_version = Some("TLSv1.2".into()));
    let mut h = Harness::connect(&client, "localhost", &server);
    assert!(h.handshake());
    let info = h.server.session.info();
    assert_eq!(info.protocol, Some("TLSv1.2"));
    let suite = info.cipher_suite.unwrap();
    assert!(suite.starts_with("TLS_ECDHE_ECDSA_WITH_") && !suite.contains("CBC"), "{suite}");
}

#[test]
fn data_flows_both_ways_intact_in_bulk() {
    let m = need_material!();
    let (client, server) = configs(m, |_| {}, |_| {});
    let mut h = Harness::connect(&client, "localhost", &server);
    assert!(h.handshake());
    assert_eq!(h.client_to_server(b"ping"), b"ping");
    assert_eq!(h.server_to_client(b"pong"), b"pong");
    // 3 MiB each way: far beyond every buffer, so back-pressure (write_plaintext taking 0,
    // read_tls_from saying `more`) is exercised.
    let big: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i * 7 + i / 4096) as u8).collect();
    assert!(h.client_to_server(&big) == big);
    assert!(h.server_to_client(&big) == big);
    assert!(!contains(&h.c2s.log, &big[..64]), "plaintext seen on the wire");
}

#[test]
fn writes_are_bounded_by_the_send_buffer() {
    let m = need_material!();
    let (client, server) = configs(m, |_| {}, |_| {});
    let mut h = Harness::connect(&client, "localhost", &server);
    let chunk = vec![b'x'; 1024 * 1024];
    // Before the handshake: held up to the limit, then refused.
    let first = h.client.send(&chunk);
    assert_eq!(first, SEND_BUFFER_LIMIT);
    assert_eq!(h.client.send(&chunk), 0);
    assert!(h.handshake());
    // After: ciphertext waiting to be flushed counts against the same limit.
    let mut taken = 0;
    loop {
        let n = h.client.send(&chunk);
        if n == 0 {
            break;
        }
        taken += n;
    }
    assert!(taken <= SEND_BUFFER_LIMIT, "took {taken} unflushed bytes");
    h.settle();
    assert_eq!(h.server.received.len(), first + taken);
}

#[test]
fn close_notify_is_a_clean_end() {
    let m = need_material!();
    let (client, server) = configs(m, |_| {}, |_| {});
    let mut h = Harness::connect(&client, "localhost", &server);
    assert!(h.handshake());
    h.server.send(b"last words");
    h.server.session.send_close_notify();
    assert_eq!(h.server.send(b"after close"), 0, "writes after close_notify are refused");
    h.settle();
    assert_eq!(h.client.received, b"last words");
    assert_eq!(h.client.end, Some(End::CloseNotify));
    assert_eq!(h.client.end.as_ref().unwrap().error(), None);
    // The client answers with its own close_notify; the server sees a clean end too.
    h.client.session.send_close_notify();
    h.settle();
    assert_eq!(h.server.end, Some(End::CloseNotify));
}

#[test]
fn eof_without_close_notify_is_truncation() {
    let m = need_material!();
    let (client, server) = configs(m, |_| {}, |_| {});
    let mut h = Harness::connect(&client, "localhost", &server);
    assert!(h.handshake());
    assert_eq!(h.server_to_client(b"partial respo"), b"partial respo");
    // Something between the peers cuts the connection (or the peer just closes its socket).
    h.s2c.cut_now();
    h.settle();
    assert_eq!(h.client.received, b"partial respo", "what came before the cut is delivered");
    assert_eq!(h.client.end, Some(End::Truncated));
    let err = h.client.end.as_ref().unwrap().error().unwrap();
    assert_eq!(err.code(), "ERR_TLS_TRUNCATED");
    assert_eq!(err.alert, None);
    // The same is said on every later read (the loop may ask again).
    let again = h.client.session.read_tls_from(&h.client.sock).unwrap();
    assert_eq!(again.end, Some(End::Truncated));
}

#[test]
fn eof_during_the_handshake_is_truncation_without_completion() {
    let m = need_material!();
    let (client, server) = configs(m, |_| {}, |_| {});
    let mut h = Harness::connect(&client, "localhost", &server);
    h.client.step();
    h.c2s.relay();
    h.server.step(); // the server answered with its flight; the client never sees it
    h.s2c.cut_now();
    h.settle();
    assert!(!h.client.completed);
    assert_eq!(h.client.end, Some(End::Truncated));
}

#[test]
fn pre_handshake_plaintext_is_never_on_the_wire() {
    let m = need_material!();
    let (client, server) = configs(m, |_| {}, |_| {});
    let mut h = Harness::connect(&client, "localhost", &server);
    let from_client = b"CLIENT-SECRET-written-before-the-handshake";
    let from_server = b"SERVER-SECRET-written-before-the-handshake";
    // Both sides write before a single byte has moved.
    assert_eq!(h.client.send(from_client), from_client.len());
    assert_eq!(h.server.send(from_server), from_server.len());
    // Step by step, checking the wire after every turn, until both have the other's bytes.
    for _ in 0..1000 {
        h.turn();
        assert!(!contains(&h.c2s.log, b"SECRET"), "client plaintext crossed the wire in the clear");
        assert!(!contains(&h.s2c.log, b"SECRET"), "server plaintext crossed the wire in the clear");
        if h.server.received == from_client && h.client.received == from_server {
            break;
        }
    }
    assert_eq!(h.server.received, from_client);
    assert_eq!(h.client.received, from_server);
    assert!(h.client.completed && h.server.completed);
}

#[test]
fn a_session_runs_over_loopback_tcp() {
    let m = need_material!();
    let (client, server) = configs(m, |_| {}, |_| {});
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client_sock = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server_sock, _) = listener.accept().unwrap();
    client_sock.set_nonblocking(true).unwrap();
    server_sock.set_nonblocking(true).unwrap();
    let mut c = TlsSession::client(&client, client.server_name_for("127.0.0.1").unwrap()).unwrap();
    let mut s = TlsSession::server(&server).unwrap();
    c.write_plaintext(b"over tcp");
    let mut got = Vec::new();
    for _ in 0..10_000 {
        c.write_tls_to(&client_sock).unwrap();
        let out = s.read_tls_from(&server_sock).unwrap();
        assert_eq!(out.end, None);
        s.write_tls_to(&server_sock).unwrap();
        c.read_tls_from(&client_sock).unwrap();
        s.take_plaintext(&mut got);
        if got == b"over tcp" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_micros(100));
    }
    assert_eq!(got, b"over tcp");
    // An IP address is verified against the certificate's IP SAN and not sent as SNI.
    assert_eq!(s.info().server_name, None);
    assert_eq!(c.info().server_name, None);
}

#[test]
fn read_plaintext_fills_a_callers_buffer() {
    let m = need_material!();
    let (client, server) = configs(m, |_| {}, |_| {});
    let mut h = Harness::connect(&client, "localhost", &server);
    assert!(h.handshake());
    h.client.send(b"0123456789");
    // Drive by hand so the plaintext stays in the server session.
    h.client.step();
    h.c2s.relay();
    let out = h.server.session.read_tls_from(&h.server.sock).unwrap();
    assert!(out.plaintext);
    let mut buf = [0u8; 4];
    assert_eq!(h.server.session.read_plaintext(&mut buf), 4);
    assert_eq!(&buf, b"0123");
    let mut rest = Vec::new();
    assert_eq!(h.server.session.take_plaintext(&mut rest), 6);
    assert_eq!(rest, b"456789");
    assert_eq!(h.server.session.read_plaintext(&mut buf), 0);
}
