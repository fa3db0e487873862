//! Options → configs: every bad input is a typed error naming its field; every key encoding
//! the brief lists loads and signs a real handshake.

use crate::test_support::certs::need_material;
use super::harness::Harness;
use crate::tls::resolver::{NameProblem, SniResolver};
use crate::tls::{CertKeyPem, ClientAuth, ClientTlsOptions, ConfigError, ServerTlsOptions, SniCertificate, TlsVersion};

fn server_with(cert: &CertKeyPem) -> ServerTlsOptions {
    ServerTlsOptions { default_cert: Some(cert.clone()), ..Default::default() }
}

fn client_trusting(ca: &[u8]) -> ClientTlsOptions {
    ClientTlsOptions { ca: Some(ca.to_vec()), session_cache_size: 0, ..Default::default() }
}

fn server_err(o: &ServerTlsOptions) -> ConfigError {
    o.build().expect_err("the options should be refused")
}

fn client_err(o: &ClientTlsOptions) -> ConfigError {
    o.build().expect_err("the options should be refused")
}

#[test]
fn bad_certificate_pem_is_err_tls_cert() {
    let m = need_material!();
    let garbage = CertKeyPem { cert_chain: b"not pem at all".to_vec(), key: m.server.key.clone() };
    let e = server_err(&server_with(&garbage));
    assert_eq!((e.code(), e.field.as_str()), ("ERR_TLS_CERT", "cert"));
    assert!(e.to_string().starts_with("tls.cert: "), "{e}");

    let broken = CertKeyPem {
        cert_chain: b"-----BEGIN CERTIFICATE-----\nAAAA\n".to_vec(), // no END line
        key: m.server.key.clone(),
    };
    let e = server_err(&server_with(&broken));
    assert_eq!(e.code(), "ERR_TLS_CERT", "{e}");

    // Base64 that is not X.509.
    let not_x509 = CertKeyPem {
        cert_chain: b"-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n".to_vec(),
        key: m.server.key.clone(),
    };
    let e = server_err(&server_with(&not_x509));
    assert_eq!(e.code(), "ERR_TLS_CERT", "{e}");
}

#[test]
fn empty_chain_is_err_tls_cert() {
    let m = need_material!();
    // A key alone: no CERTIFICATE block.
    let e = server_err(&server_with(&CertKeyPem { cert_chain: m.server.key.clone(), key: m.server.key.clone() }));
    assert_eq!((e.code(), e.field.as_str()), ("ERR_TLS_CERT", "cert"));
    assert!(e.detail.contains("no CERTIFICATE"), "{e}");
    // No certificate at all.
    let e = server_err(&ServerTlsOptions::default());
    assert_eq!(e.code(), "ERR_TLS_CERT", "{e}");
}

#[test]
fn bad_or_missing_key_is_err_tls_key() {
    let m = need_material!();
    let e = server_err(&server_with(&CertKeyPem { cert_chain: m.server.cert_chain.clone(), key: b"junk".to_vec() }));
    assert_eq!((e.code(), e.field.as_str()), ("ERR_TLS_KEY", "key"));
    // A certificate where the key should be.
    let e = server_err(&server_with(&CertKeyPem {
        cert_chain: m.server.cert_chain.clone(),
        key: m.server.cert_chain.clone(),
    }));
    assert_eq!(e.code(), "ERR_TLS_KEY", "{e}");
    let e =
        server_err(&server_with(&CertKeyPem { cert_chain: m.server.cert_chain.clone(), key: m.encrypted_key.clone() }));
    assert_eq!(e.code(), "ERR_TLS_KEY");
    assert!(e.detail.contains("encrypted"), "{e}");
}

#[test]
fn key_not_matching_cert_is_err_tls_key_mismatch() {
    let m = need_material!();
    let wrong = CertKeyPem { cert_chain: m.server.cert_chain.clone(), key: m.client.key.clone() };
    let e = server_err(&server_with(&wrong));
    assert_eq!((e.code(), e.field.as_str()), ("ERR_TLS_KEY_MISMATCH", "key"));

    // In an SNI entry, the field says which one.
    let o = ServerTlsOptions {
        default_cert: Some(m.server.clone()),
        sni: vec![
            SniCertificate { names: vec!["a.test".into()], cert: m.a_test.clone() },
            SniCertificate { names: vec!["b.test".into()], cert: wrong.clone() },
        ],
        ..Default::default()
    };
    let e = server_err(&o);
    assert_eq!((e.code(), e.field.as_str()), ("ERR_TLS_KEY_MISMATCH", "sni[1].key"));
    assert!(e.to_string().starts_with("tls.sni[1].key: "), "{e}");

    // And for a client certificate.
    let o = ClientTlsOptions { client_cert: Some(wrong), ..client_trusting(&m.ca) };
    assert_eq!(client_err(&o).code(), "ERR_TLS_KEY_MISMATCH");
}

#[test]
fn versions_unknown_unsupported_or_inverted_are_err_tls_version() {
    let m = need_material!();
    for (min, max) in [(Some("TLSv1.4"), None), (Some("TLSv1.1"), None), (Some("tls1.3"), None), (None, Some("SSLv3"))]
    {
        let o = ServerTlsOptions {
            min_version: min.map(str::to_string),
            max_version: max.map(str::to_string),
            ..server_with(&m.server)
        };
        let e = server_err(&o);
        assert_eq!(e.code(), "ERR_TLS_VERSION", "{min:?} {max:?}");
        assert_eq!(e.field, if min.is_some() { "minVersion" } else { "maxVersion" });
    }
    let o = ServerTlsOptions {
        min_version: Some("TLSv1.3".into()),
        max_version: Some("TLSv1.2".into()),
        ..server_with(&m.server)
    };
    assert_eq!(server_err(&o).code(), "ERR_TLS_VERSION");
    let o = ClientTlsOptions { min_version: Some("1.0".into()), ..client_trusting(&m.ca) };
    assert_eq!(client_err(&o).code(), "ERR_TLS_VERSION");
    assert_eq!(TlsVersion::parse("minVersion", "1.3").unwrap(), TlsVersion::Tls13);
}

#[test]
fn ca_bundles_bad_or_missing_are_err_tls_ca() {
    let m = need_material!();
    let e = client_err(&ClientTlsOptions { session_cache_size: 0, ..Default::default() });
    assert_eq!((e.code(), e.field.as_str()), ("ERR_TLS_CA", "ca"));
    assert!(e.detail.contains("verify: false"), "{e}");
    let e = client_err(&client_trusting(b"garbage"));
    assert_eq!(e.code(), "ERR_TLS_CA");
    let e = client_err(&client_trusting(b"-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n"));
    assert_eq!(e.code(), "ERR_TLS_CA", "{e}");
    let o = ServerTlsOptions { client_auth: ClientAuth::Required { ca: b"nope".to_vec() }, ..server_with(&m.server) };
    let e = server_err(&o);
    assert_eq!((e.code(), e.field.as_str()), ("ERR_TLS_CA", "ca"));
}

#[test]
fn contradicting_or_malformed_options_are_refused() {
    let m = need_material!();
    // verify: false with a CA bundle.
    let o = ClientTlsOptions { verify: false, ..client_trusting(&m.ca) };
    assert_eq!(client_err(&o).code(), "ERR_TLS_OPTION");
    // ALPN names must be 1..=255 bytes.
    let o = ServerTlsOptions { alpn_protocols: vec![b"h2".to_vec(), Vec::new()], ..server_with(&m.server) };
    let e = server_err(&o);
    assert_eq!((e.code(), e.field.as_str()), ("ERR_TLS_ALPN", "ALPNProtocols[1]"));
    let o = ClientTlsOptions { alpn_protocols: vec![vec![b'x'; 256]], ..client_trusting(&m.ca) };
    assert_eq!(client_err(&o).code(), "ERR_TLS_ALPN");
    // Server names.
    let o = ClientTlsOptions { server_name: Some("not a name!".into()), ..client_trusting(&m.ca) };
    assert_eq!(client_err(&o).code(), "ERR_TLS_SERVERNAME");
    for names in [vec!["bad name".to_string()], vec!["a.*.test".into()], vec![]] {
        let o = ServerTlsOptions {
            sni: vec![SniCertificate { names: names.clone(), cert: m.a_test.clone() }],
            ..server_with(&m.server)
        };
        assert_eq!(server_err(&o).code(), "ERR_TLS_SERVERNAME", "{names:?}");
    }
    let o = ServerTlsOptions {
        sni: vec![
            SniCertificate { names: vec!["a.test".into()], cert: m.a_test.clone() },
            SniCertificate { names: vec!["A.test.".into()], cert: m.wild_test.clone() },
        ],
        ..server_with(&m.server)
    };
    let e = server_err(&o);
    assert_eq!((e.code(), e.field.as_str()), ("ERR_TLS_SERVERNAME", "sni[1].names[0]"));
}

/// RSA (PKCS#8 and PKCS#1), ECDSA P-256 (PKCS#8) and P-384 (SEC1), Ed25519 (PKCS#8): each
/// loads, matches its certificate, and signs a handshake the client verifies.
#[test]
fn every_key_encoding_loads_and_signs_a_handshake() {
    let m = need_material!();
    let client = client_trusting(&m.ca).build().unwrap();
    for (label, pair) in [
        ("ECDSA P-256 PKCS#8", &m.server),
        ("RSA PKCS#8", &m.server_rsa),
        ("RSA PKCS#1", &m.server_rsa_pkcs1),
        ("ECDSA P-384 SEC1", &m.server_p384_sec1),
        ("Ed25519 PKCS#8", &m.server_ed25519),
    ] {
        for max in ["TLSv1.3", "TLSv1.2"] {
            let server = ServerTlsOptions { max_version: Some(max.into()), ..server_with(pair) }.build();
            let server = server.unwrap_or_else(|e| panic!("{label}: {e}"));
            let mut h = Harness::connect(&client, "localhost", &server);
            assert!(h.handshake(), "{label} over {max}: client {:?} server {:?}", h.client.end, h.server.end);
            assert_eq!(h.client.session.info().protocol, Some(max));
        }
    }
}

#[test]
fn a_chain_with_an_intermediate_verifies_and_is_reported() {
    let m = need_material!();
    let client = client_trusting(&m.ca).build().unwrap();
    let server = server_with(&m.server_chained).build().unwrap();
    let mut h = Harness::connect(&client, "localhost", &server);
    assert!(h.handshake(), "{:?}", h.client.end);
    assert_eq!(h.client.session.info().peer_certificates.len(), 2);
}

#[test]
fn the_resolver_matches_exact_then_wildcard_then_default() {
    let m = need_material!();
    let key = |p: &CertKeyPem| crate::tls::pem::certified_key("", p).unwrap();
    let (default, a, wild) = (key(&m.server), key(&m.a_test), key(&m.wild_test));
    let mut r = SniResolver::new(Some(default.clone()));
    r.add("a.test", a.clone()).unwrap();
    r.add("*.wild.test", wild.clone()).unwrap();
    assert_eq!(r.add("A.TEST.", a.clone()), Err(NameProblem::Duplicate));
    assert_eq!(r.add("x.*.test", a.clone()), Err(NameProblem::Invalid));
    assert_eq!(r.add("*", a.clone()), Err(NameProblem::Invalid));
    let is = |got: Option<std::sync::Arc<rustls::sign::CertifiedKey>>,
              want: &std::sync::Arc<rustls::sign::CertifiedKey>| {
        std::sync::Arc::ptr_eq(&got.unwrap(), want)
    };
    assert!(is(r.lookup(Some("a.test")), &a));
    assert!(is(r.lookup(Some("A.Test.")), &a));
    assert!(is(r.lookup(Some("x.wild.test")), &wild));
    assert!(is(r.lookup(Some("wild.test")), &default), "a wildcard does not cover its parent");
    assert!(is(r.lookup(Some("y.x.wild.test")), &default), "a wildcard covers one label only");
    assert!(is(r.lookup(None), &default));
    let bare = SniResolver::new(None);
    assert!(bare.lookup(Some("a.test")).is_none());
    assert!(bare.lookup(None).is_none());
}

#[test]
fn the_key_stays_out_of_debug_output() {
    let m = need_material!();
    let shown = format!("{:?}", m.server);
    assert!(shown.contains("redacted") && !shown.contains("PRIVATE"), "{shown}");
}

/// What needs no certificate at all (runs without openssl too): codes, messages, versions,
/// CA bundle errors, alert names.
#[test]
fn codes_and_messages_without_certificates() {
    use crate::tls::{alert_name, AlertDescription as A, TlsError};
    let e = client_err(&ClientTlsOptions { session_cache_size: 0, ..Default::default() });
    assert_eq!(e.code(), "ERR_TLS_CA");
    assert!(e.to_string().starts_with("tls.ca: "), "{e}");
    assert_eq!(client_err(&client_trusting(b"-----BEGIN CERTIFICATE-----\n")).code(), "ERR_TLS_CA");
    let e = TlsVersion::parse("minVersion", "TLSv1.4").unwrap_err();
    assert_eq!((e.code(), e.to_string().starts_with("tls.minVersion: ")), ("ERR_TLS_VERSION", true));
    let o = ClientTlsOptions { verify: false, session_cache_size: 0, ..Default::default() };
    assert!(o.build().is_ok(), "verify: false needs no CA");
    assert_eq!(TlsError::truncated().code(), "ERR_TLS_TRUNCATED");
    assert_eq!(TlsError::timeout().code(), "ERR_TLS_TIMEOUT");
    for (alert, name) in [
        (A::BadCertificate, "bad_certificate"),
        (A::UnknownCA, "unknown_ca"),
        (A::CertificateExpired, "certificate_expired"),
        (A::HandshakeFailure, "handshake_failure"),
        (A::NoApplicationProtocol, "no_application_protocol"),
        (A::UnrecognisedName, "unrecognized_name"),
        (A::CertificateRequired, "certificate_required"),
    ] {
        assert_eq!(alert_name(alert), name);
    }
    let e = TlsError::from_rustls(rustls::Error::AlertReceived(A::UnknownCA), rustls::Side::Client);
    assert_eq!((e.code(), e.alert_name()), ("ERR_TLS_ALERT", Some("unknown_ca")));
    assert!(e.to_string().contains("alert unknown_ca from the peer"), "{e}");
}
