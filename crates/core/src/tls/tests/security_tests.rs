//! The security properties, over real sockets: refused certificates and names with their typed
//! errors and alerts, client certificates, KeyUpdate, renegotiation, resumption, hot reload.

use crate::test_support::certs::{need_material, Material};
use super::harness::{contains, Harness};
use crate::tls::{
    ClientAuth, ClientTlsConfig, ClientTlsOptions, End, ReloadableServerConfig, ServerTlsConfig, ServerTlsOptions,
    SniCertificate, TlsError, TlsErrorKind, TlsSession,
};
use rustls::AlertDescription as A;

fn server(m: &Material, f: impl FnOnce(&mut ServerTlsOptions)) -> ServerTlsConfig {
    let mut o = ServerTlsOptions { default_cert: Some(m.server.clone()), ..Default::default() };
    f(&mut o);
    o.build().unwrap()
}

fn client(m: &Material, f: impl FnOnce(&mut ClientTlsOptions)) -> ClientTlsConfig {
    let mut o = ClientTlsOptions { ca: Some(m.ca.clone()), session_cache_size: 0, ..Default::default() };
    f(&mut o);
    o.build().unwrap()
}

fn failure(end: &Option<End>) -> TlsError {
    match end {
        Some(End::Failed(e)) => e.clone(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// The side that refused (`sent`) and the side refused (`received`) agree on the alert.
fn assert_refused(h: &Harness, refuser_is_client: bool, kind: TlsErrorKind, alert: A) {
    let (refuser, refused) = if refuser_is_client { (&h.client, &h.server) } else { (&h.server, &h.client) };
    let e = failure(&refuser.end);
    assert_eq!(e.kind, kind, "{e}");
    let sent = e.alert.expect("an alert was sent");
    assert_eq!((sent.description, sent.received), (alert, false), "{e}");
    let r = failure(&refused.end);
    assert_eq!(r.code(), "ERR_TLS_ALERT", "{r}");
    let got = r.alert.unwrap();
    assert_eq!((got.description, got.received), (alert, true), "{r}");
    assert_eq!(r.alert_name(), Some(super::super::error::alert_name(alert)));
}

#[test]
fn a_certificate_from_an_unknown_ca_is_refused_with_unknown_ca() {
    let m = need_material!();
    let s = server(m, |o| o.default_cert = Some(m.rogue_server.clone()));
    let mut h = Harness::connect(&client(m, |_| {}), "localhost", &s);
    assert!(!h.handshake());
    assert_refused(&h, true, TlsErrorKind::CertVerify, A::UnknownCA);
    assert_eq!(failure(&h.client.end).code(), "ERR_TLS_CERT_VERIFY");
}

#[test]
fn an_expired_certificate_is_refused_with_certificate_expired() {
    let m = need_material!();
    let s = server(m, |o| o.default_cert = Some(m.expired.clone()));
    let mut h = Harness::connect(&client(m, |_| {}), "localhost", &s);
    assert!(!h.handshake());
    assert_refused(&h, true, TlsErrorKind::CertVerify, A::CertificateExpired);
    assert_eq!(failure(&h.server.end).alert_name(), Some("certificate_expired"));
}

#[test]
fn a_certificate_for_another_name_is_refused_with_bad_certificate() {
    let m = need_material!();
    let s = server(m, |_| {});
    // The server's certificate names localhost; the client expects other.test.
    let c = client(m, |o| o.server_name = Some("other.test".into()));
    let mut h = Harness::connect(&c, "localhost", &s);
    assert!(!h.handshake());
    assert_refused(&h, true, TlsErrorKind::CertVerify, A::BadCertificate);
    // The override was what went out as SNI.
    assert_eq!(h.client.session.info().server_name.as_deref(), Some("other.test"));
}

#[test]
fn verify_false_accepts_any_certificate_but_says_nothing_about_identity() {
    let m = need_material!();
    let s = server(m, |o| o.default_cert = Some(m.expired.clone()));
    let c = ClientTlsOptions { verify: false, session_cache_size: 0, ..Default::default() }.build().unwrap();
    let mut h = Harness::connect(&c, "anything.example", &s);
    assert!(h.handshake(), "{:?}", h.client.end);
}

#[test]
fn sni_picks_exact_then_wildcard_then_default() {
    let m = need_material!();
    let sni = vec![
        SniCertificate { names: vec!["a.test".into()], cert: m.a_test.clone() },
        SniCertificate { names: vec!["*.wild.test".into()], cert: m.wild_test.clone() },
    ];
    let s = server(m, |o| o.sni = sni);
    let leaf = |pem: &[u8]| crate::tls::pem::cert_chain("cert", pem).unwrap()[0].as_ref().to_vec();
    for (name, want) in [("a.test", &m.a_test), ("x.wild.test", &m.wild_test), ("localhost", &m.server)] {
        let mut h = Harness::connect(&client(m, |_| {}), name, &s);
        assert!(h.handshake(), "{name}: {:?}", h.client.end);
        assert_eq!(h.client.session.info().peer_certificates[0], leaf(&want.cert_chain), "{name}");
        assert_eq!(h.server.session.info().server_name.as_deref(), Some(name));
    }
}

/// A name that matches no certificate, on a port without a default: refused with RFC 6066's
/// unrecognized_name. A client sending no name at all gets rustls's own refusal, access_denied.
#[test]
fn a_wrong_sni_without_default_is_refused() {
    let m = need_material!();
    let s = ServerTlsOptions {
        sni: vec![SniCertificate { names: vec!["a.test".into()], cert: m.a_test.clone() }],
        ..Default::default()
    }
    .build()
    .unwrap();
    let c = ClientTlsOptions { verify: false, session_cache_size: 0, ..Default::default() }.build().unwrap();
    let mut h = Harness::connect(&c, "nomatch.test", &s);
    assert!(!h.handshake());
    assert_refused(&h, false, TlsErrorKind::Handshake, A::UnrecognisedName);
    assert_eq!(failure(&h.server.end).code(), "ERR_TLS_HANDSHAKE");
    assert_eq!(failure(&h.client.end).alert_name(), Some("unrecognized_name"));

    // An IP address as the name: no SNI is sent.
    let mut h = Harness::connect(&c, "127.0.0.1", &s);
    assert!(!h.handshake());
    assert_refused(&h, false, TlsErrorKind::Handshake, A::AccessDenied);

    // The same port answers a.test.
    let mut h = Harness::connect(&c, "a.test", &s);
    assert!(h.handshake());
}

#[test]
fn no_common_version_is_refused_with_protocol_version() {
    let m = need_material!();
    for (server_only, client_only) in [("TLSv1.3", "TLSv1.2"), ("TLSv1.2", "TLSv1.3")] {
        let s = server(m, |o| {
            o.min_version = Some(server_only.into());
            o.max_version = Some(server_only.into());
        });
        let c = client(m, |o| {
            o.min_version = Some(client_only.into());
            o.max_version = Some(client_only.into());
        });
        let mut h = Harness::connect(&c, "localhost", &s);
        assert!(!h.handshake());
        assert_refused(&h, false, TlsErrorKind::Handshake, A::ProtocolVersion);
    }
}

#[test]
fn no_common_alpn_protocol_is_refused_with_no_application_protocol() {
    let m = need_material!();
    let s = server(m, |o| o.alpn_protocols = vec![b"h2".to_vec()]);
    let c = client(m, |o| o.alpn_protocols = vec![b"h3".to_vec()]);
    let mut h = Harness::connect(&c, "localhost", &s);
    assert!(!h.handshake());
    assert_refused(&h, false, TlsErrorKind::Handshake, A::NoApplicationProtocol);
}

#[test]
fn a_required_client_certificate_missing_is_refused_with_certificate_required() {
    let m = need_material!();
    let s = server(m, |o| o.client_auth = ClientAuth::Required { ca: m.ca.clone() });
    for max in ["TLSv1.3", "TLSv1.2"] {
        let c = client(m, |o| o.max_version = Some(max.into()));
        let mut h = Harness::connect(&c, "localhost", &s);
        assert!(!h.handshake());
        assert!(!h.server.completed, "{max}: the server never completes");
        assert_refused(&h, false, TlsErrorKind::CertVerify, A::CertificateRequired);
    }
}

#[test]
fn a_client_certificate_from_an_unknown_ca_is_refused_with_unknown_ca() {
    let m = need_material!();
    let s = server(m, |o| o.client_auth = ClientAuth::Required { ca: m.ca.clone() });
    let c = client(m, |o| o.client_cert = Some(m.rogue_client.clone()));
    let mut h = Harness::connect(&c, "localhost", &s);
    assert!(!h.handshake());
    assert_refused(&h, false, TlsErrorKind::CertVerify, A::UnknownCA);
}

#[test]
fn client_certificates_required_and_optional_are_accepted_and_reported() {
    let m = need_material!();
    let leaf = crate::tls::pem::cert_chain("cert", &m.client.cert_chain).unwrap()[0].as_ref().to_vec();
    for auth in [ClientAuth::Required { ca: m.ca.clone() }, ClientAuth::Optional { ca: m.ca.clone() }] {
        let s = server(m, |o| o.client_auth = auth.clone());
        let c = client(m, |o| o.client_cert = Some(m.client.clone()));
        let mut h = Harness::connect(&c, "localhost", &s);
        assert!(h.handshake(), "{auth:?}: {:?}", h.server.end);
        assert_eq!(h.server.session.info().peer_certificates, vec![leaf.clone()]);
    }
    // Optional: a client without a certificate gets in, and none is reported.
    let s = server(m, |o| o.client_auth = ClientAuth::Optional { ca: m.ca.clone() });
    let mut h = Harness::connect(&client(m, |_| {}), "localhost", &s);
    assert!(h.handshake());
    assert!(h.server.session.info().peer_certificates.is_empty());
}

#[test]
fn a_tls13_key_update_from_either_peer_keeps_data_flowing() {
    let m = need_material!();
    let mut h = Harness::connect(&client(m, |_| {}), "localhost", &server(m, |_| {}));
    assert!(h.handshake());
    for round in 0..4 {
        if round % 2 == 0 {
            h.client.session.update_keys().unwrap();
        } else {
            h.server.session.update_keys().unwrap();
        }
        let up = format!("after update {round}, up");
        let down = format!("after update {round}, down");
        assert_eq!(h.client_to_server(up.as_bytes()), up.as_bytes());
        assert_eq!(h.server_to_client(down.as_bytes()), down.as_bytes());
    }
    assert_eq!((h.client.end.clone(), h.server.end.clone()), (None, None));
    assert_eq!((h.client.completions, h.server.completions), (1, 1), "no second handshake");
}

/// A TLS 1.2 client asks to renegotiate (a ClientHello inside the established session). The
/// client's side is played by hand: its keys are extracted after the handshake and the records
/// are sealed here, since no TLS library lets a test send a renegotiation ClientHello to rustls.
/// rustls answers the first with a `no_renegotiation` warning and carries on; a second one ends
/// the session (`ERR_TLS_PROTOCOL`, no alert).
#[test]
fn a_tls12_renegotiation_is_refused_and_the_session_goes_on() {
    let m = need_material!();
    let cfg = renegotiation::client_config(m);
    let s = server(m, |_| {});
    let mut h = Harness::connect(&cfg, "localhost", &s);
    assert!(h.handshake(), "{:?}", h.client.end);
    assert_eq!(h.client_to_server(b"before"), b"before");
    assert_eq!(h.server.session.info().protocol, Some("TLSv1.2"));

    let Harness { client, mut server, mut c2s, mut s2c } = h;
    let client_sock = client.sock;
    let mut keys = renegotiation::Keys::extract(client.session);
    let hello = renegotiation::client_hello(&cfg);

    // First attempt: refused with a warning; the session stays up.
    c2s.inject(&keys.seal(renegotiation::HANDSHAKE, &hello));
    server.step();
    s2c.relay();
    assert_eq!(server.end, None, "a first renegotiation request does not end the session");
    let answer = keys.open_all(&client_sock);
    assert_eq!(answer, vec![(renegotiation::ALERT, vec![1, A::NoRenegotiation.into()])], "warning no_renegotiation");
    assert!(!server.session.is_handshaking(), "no second handshake started");

    // Data still flows both ways.
    c2s.inject(&keys.seal(renegotiation::APPLICATION_DATA, b"still here"));
    server.step();
    assert!(contains(&server.received, b"still here"));
    server.send(b"me too");
    server.step();
    s2c.relay();
    assert_eq!(keys.open_all(&client_sock), vec![(renegotiation::APPLICATION_DATA, b"me too".to_vec())]);

    // A second attempt is the end of the session.
    c2s.inject(&keys.seal(renegotiation::HANDSHAKE, &hello));
    server.step();
    let e = failure(&server.end);
    assert_eq!(e.code(), "ERR_TLS_PROTOCOL", "{e}");
    assert!(e.detail.to_lowercase().contains("renegotiation"), "{e}");
}

/// Resumption by ticket (stateless) and by the server's session cache (stateful), in TLS 1.3
/// and 1.2: the second handshake from the same client config resumes.
#[test]
fn resumption_works_with_tickets_and_with_the_session_cache() {
    let m = need_material!();
    for (tickets, cache) in [(true, 0), (false, 64)] {
        for max in ["TLSv1.3", "TLSv1.2"] {
            let label = format!("tickets={tickets} cache={cache} {max}");
            let s = server(m, |o| {
                o.session_tickets = tickets;
                o.session_cache_size = cache;
            });
            let c = client(m, |o| {
                o.session_cache_size = 8;
                o.max_version = Some(max.into());
            });
            let mut first = Harness::connect(&c, "localhost", &s);
            assert!(first.handshake(), "{label}");
            // TLS 1.3 tickets follow the handshake: let the client read them.
            assert_eq!(first.server_to_client(b"x"), b"x");
            assert!(!first.client.session.info().resumed, "{label}");
            let mut second = Harness::connect(&c, "localhost", &s);
            assert!(second.handshake(), "{label}");
            assert!(second.client.session.info().resumed, "{label}: client");
            assert!(second.server.session.info().resumed, "{label}: server");
            assert_eq!(second.client.session.info().peer_certificates.len(), 1, "{label}");
            assert_eq!(second.client_to_server(b"resumed"), b"resumed");
        }
    }
    // Neither: every handshake is full.
    let s = server(m, |o| {
        o.session_tickets = false;
        o.session_cache_size = 0;
    });
    let c = client(m, |o| o.session_cache_size = 8);
    for _ in 0..2 {
        let mut h = Harness::connect(&c, "localhost", &s);
        assert!(h.handshake());
        h.server_to_client(b"x");
        assert!(!h.server.session.info().resumed);
    }
}

/// `setSecureContext`: after a reload new handshakes get the new certificate; a session
/// established before keeps its keys and goes on working.
#[test]
fn a_hot_reload_changes_new_handshakes_only() {
    let m = need_material!();
    let leaf = |pem: &[u8]| crate::tls::pem::cert_chain("cert", pem).unwrap()[0].as_ref().to_vec();
    let port = ReloadableServerConfig::new(server(m, |_| {}));
    let c = client(m, |_| {});
    let connect = |port: &ReloadableServerConfig| {
        let name = c.server_name_for("localhost").unwrap();
        Harness::new(TlsSession::client(&c, name).unwrap(), TlsSession::server(&port.current()).unwrap())
    };
    let mut old = connect(&port);
    assert!(old.handshake());
    assert_eq!(old.client.session.info().peer_certificates[0], leaf(&m.server.cert_chain));

    // Reload while `old` is established, and while `mid` is half-way through its handshake.
    let mut mid = connect(&port);
    mid.turn();
    let before = port.current();
    let replaced = port.replace(server(m, |o| o.default_cert = Some(m.server_rsa.clone())));
    assert!(std::sync::Arc::ptr_eq(&replaced.rustls, &before.rustls));

    let mut new = connect(&port);
    assert!(new.handshake());
    assert_eq!(new.client.session.info().peer_certificates[0], leaf(&m.server_rsa.cert_chain));
    assert!(mid.handshake(), "a handshake under way finishes with the config it began with");
    assert_eq!(mid.client.session.info().peer_certificates[0], leaf(&m.server.cert_chain));
    assert_eq!(old.client_to_server(b"still the old session"), b"still the old session");
    assert_eq!(old.server_to_client(b"and it answers"), b"and it answers");
}

/// A TLS 1.2 client's records sealed by hand (AES-128-GCM, RFC 5288): the renegotiation test.
mod renegotiation {
    use crate::test_support::certs::Material;
    use crate::tls::{pem, ClientTlsConfig, TlsSession};
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
    use rustls::client::Resumption;
    use rustls::{CipherSuite, ClientConfig, ConnectionTrafficSecrets};
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;

    pub const ALERT: u8 = 21;
    pub const HANDSHAKE: u8 = 22;
    pub const APPLICATION_DATA: u8 = 23;

    /// TLS 1.2 only, AES-128-GCM only, keys extractable.
    pub fn client_config(m: &Material) -> ClientTlsConfig {
        let mut provider = (**crate::tls::provider::provider()).clone();
        provider.cipher_suites.retain(|s| s.suite() == CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256);
        let mut cfg = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(pem::root_store("ca", &m.ca).unwrap())
            .with_no_client_auth();
        cfg.enable_secret_extraction = true;
        cfg.resumption = Resumption::disabled();
        ClientTlsConfig {
            rustls: Arc::new(cfg),
            server_name: None,
            handshake_timeout: crate::tls::DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// A real ClientHello handshake message (from a fresh connection's first record).
    pub fn client_hello(cfg: &ClientTlsConfig) -> Vec<u8> {
        let mut conn = rustls::ClientConnection::new(cfg.rustls.clone(), "localhost".try_into().unwrap()).unwrap();
        let mut record = Vec::new();
        conn.write_tls(&mut record).unwrap();
        assert_eq!(record[0], HANDSHAKE);
        record[5..].to_vec()
    }

    pub struct Keys {
        tx: (LessSafeKey, [u8; 4], u64),
        rx: (LessSafeKey, [u8; 4], u64),
    }

    impl Keys {
        pub fn extract(session: TlsSession) -> Keys {
            let secrets = session.into_connection().unwrap().dangerous_extract_secrets().unwrap();
            let key = |(seq, s): (u64, ConnectionTrafficSecrets)| match s {
                ConnectionTrafficSecrets::Aes128Gcm { key, iv } => {
                    let k = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, key.as_ref()).unwrap());
                    (k, iv.as_ref()[..4].try_into().unwrap(), seq)
                }
                _ => panic!("AES-128-GCM was asked for"),
            };
            Keys { tx: key(secrets.tx), rx: key(secrets.rx) }
        }

        /// One record: type, version, length, explicit nonce, ciphertext, tag.
        pub fn seal(&mut self, content_type: u8, plaintext: &[u8]) -> Vec<u8> {
            let (key, salt, seq) = &mut self.tx;
            let explicit = seq.to_be_bytes();
            let mut body = plaintext.to_vec();
            let tag = key
                .seal_in_place_separate_tag(nonce(salt, &explicit), aad(*seq, content_type, plaintext.len()), &mut body)
                .unwrap();
            *seq += 1;
            let len = (8 + body.len() + tag.as_ref().len()) as u16;
            let mut record = vec![content_type, 3, 3];
            record.extend_from_slice(&len.to_be_bytes());
            record.extend_from_slice(&explicit);
            record.extend_from_slice(&body);
            record.extend_from_slice(tag.as_ref());
            record
        }

        /// Every record waiting on the socket, opened: (type, plaintext).
        pub fn open_all(&mut self, sock: &UnixStream) -> Vec<(u8, Vec<u8>)> {
            let mut bytes = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match (&*sock).read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => bytes.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
            let mut records = Vec::new();
            let mut rest = &bytes[..];
            while rest.len() >= 5 {
                let len = u16::from_be_bytes([rest[3], rest[4]]) as usize;
                let (content_type, explicit, sealed) = (rest[0], &rest[5..13], &rest[13..5 + len]);
                let (key, salt, seq) = &mut self.rx;
                let mut body = sealed.to_vec();
                let plain_len = body.len() - 16;
                let plain = key
                    .open_in_place(nonce(salt, explicit), aad(*seq, content_type, plain_len), &mut body)
                    .expect("a record the server sealed");
                *seq += 1;
                records.push((content_type, plain.to_vec()));
                rest = &rest[5 + len..];
            }
            records
        }
    }

    fn nonce(salt: &[u8; 4], explicit: &[u8]) -> Nonce {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(salt);
        n[4..].copy_from_slice(explicit);
        Nonce::assume_unique_for_key(n)
    }

    fn aad(seq: u64, content_type: u8, len: usize) -> Aad<[u8; 13]> {
        let mut a = [0u8; 13];
        a[..8].copy_from_slice(&seq.to_be_bytes());
        a[8] = content_type;
        a[9..11].copy_from_slice(&[3, 3]);
        a[11..].copy_from_slice(&(len as u16).to_be_bytes());
        Aad::from(a)
    }
}
