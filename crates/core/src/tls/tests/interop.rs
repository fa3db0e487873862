//! Interoperability with OpenSSL: `openssl s_client` against our server, our client against
//! `openssl s_server`, over loopback TCP. Each child runs under a deadline and is killed when its
//! test ends, passed or failed (`Child`'s drop). Skipped, with a printed reason, without openssl.

use crate::test_support::certs::{need_material, Material, TempDir};
use super::harness::{contains, Peer};
use crate::tls::{ClientAuth, ClientTlsOptions, End, ServerTlsConfig, ServerTlsOptions, TlsErrorKind, TlsSession};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Every interop test ends within this, or fails.
const DEADLINE: Duration = Duration::from_secs(20);

/// An openssl child process: its output collected by two threads, killed on drop.
struct Child {
    child: std::process::Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Child {
    fn spawn(dir: &TempDir, args: &[&str]) -> Child {
        let mut child = Command::new("openssl")
            .args(args)
            .current_dir(&dir.0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn openssl");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let collect = |mut pipe: Box<dyn Read + Send>, sink: Arc<Mutex<Vec<u8>>>| {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            })
        };
        let readers = vec![
            collect(Box::new(child.stdout.take().unwrap()), stdout.clone()),
            collect(Box::new(child.stderr.take().unwrap()), stderr.clone()),
        ];
        Child { stdin: child.stdin.take(), child, stdout, stderr, readers }
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits for the process to end by itself, until `deadline`.
    fn wait_exit(&mut self, deadline: Instant) -> Option<std::process::ExitStatus> {
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    /// Waits until stdout contains `needle`.
    fn wait_stdout(&self, needle: &str, deadline: Instant) -> bool {
        self.wait_output(needle, deadline, Self::stdout)
    }

    /// Waits until stderr contains `needle` (s_client reports its commands there).
    fn wait_stderr(&self, needle: &str, deadline: Instant) -> bool {
        self.wait_output(needle, deadline, Self::stderr)
    }

    fn wait_output(&self, needle: &str, deadline: Instant, output: fn(&Self) -> String) -> bool {
        while Instant::now() < deadline {
            if output(self).contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.stdin = None;
        let _ = self.child.kill(); // by its own pid; harmless if it already exited
        let _ = self.child.wait();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }
}

/// Writes the material an openssl command needs into a fresh temp dir.
fn files(m: &Material) -> TempDir {
    let dir = TempDir::new("interop").unwrap();
    dir.write("ca.pem", &m.ca);
    dir.write("server.pem", &m.server.cert_chain);
    dir.write("server.key", &m.server.key);
    dir.write("client.pem", &m.client.cert_chain);
    dir.write("client.key", &m.client.key);
    dir
}

fn leaf(pem: &[u8]) -> Vec<u8> {
    crate::tls::pem::cert_chain("cert", pem).unwrap()[0].as_ref().to_vec()
}

/// Accepts one connection on a non-blocking listener, until `deadline`.
fn accept(listener: &TcpListener, deadline: Instant) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    loop {
        match listener.accept() {
            Ok((s, _)) => return s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2))
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Steps `peer` (as the loop would on its edges) until `done` or the deadline.
fn drive<S: std::os::fd::AsFd>(peer: &mut Peer<S>, deadline: Instant, mut done: impl FnMut(&mut Peer<S>) -> bool) {
    while !done(peer) {
        assert!(Instant::now() < deadline, "timed out: end {:?}, io {:?}", peer.end, peer.io_error);
        if !peer.step() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn our_server(m: &Material, alpn: &[&[u8]]) -> ServerTlsConfig {
    ServerTlsOptions {
        default_cert: Some(m.server.clone()),
        alpn_protocols: alpn.iter().map(|p| p.to_vec()).collect(),
        client_auth: ClientAuth::Required { ca: m.ca.clone() },
        ..Default::default()
    }
    .build()
    .unwrap()
}

/// s_client's options that verify our server as `localhost` against the test CA and present the
/// client certificate.
const VERIFY_AND_PRESENT_CLIENT_CERT: [&str; 9] =
    ["-servername", "localhost", "-CAfile", "ca.pem", "-verify_return_error", "-cert", "client.pem", "-key", "client.key"];

/// An `openssl s_client` with `args` connected to a listener of ours, and our server's side of
/// that connection (a session of `config`), not yet driven.
fn s_client_to_our_server(dir: &TempDir, config: &ServerTlsConfig, args: &[&str], deadline: Instant) -> (Child, Peer<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut all = vec!["s_client", "-connect", target.as_str()];
    all.extend_from_slice(args);
    let openssl = Child::spawn(dir, &all);
    let peer = Peer::new(TlsSession::server(config).unwrap(), accept(&listener, deadline));
    (openssl, peer)
}

/// Our server, `openssl s_client` as the client: TLS 1.3 with ALPN h2, TLS 1.2 with http/1.1,
/// both presenting a client certificate that our server requires and verifies.
#[test]
fn openssl_client_against_our_server_tls13_tls12_alpn_client_cert() {
    let m = need_material!();
    let dir = files(m);
    for (flag, alpn, protocol) in [("-tls1_3", "h2", "TLSv1.3"), ("-tls1_2", "http/1.1", "TLSv1.2")] {
        let deadline = Instant::now() + DEADLINE;
        let config = our_server(m, &[b"h2", b"http/1.1"]);
        let mut args = vec![flag, "-alpn", alpn, "-verify_hostname", "localhost", "-quiet"];
        args.extend_from_slice(&VERIFY_AND_PRESENT_CLIENT_CERT);
        let (mut openssl, mut peer) = s_client_to_our_server(&dir, &config, &args, deadline);
        drive(&mut peer, deadline, |p| p.completed || p.end.is_some());
        assert!(peer.completed, "{flag}: {:?}\n{}", peer.end, openssl.stderr());
        let info = peer.session.info();
        assert_eq!(info.protocol, Some(protocol));
        assert_eq!(info.alpn_protocol.as_deref(), Some(alpn.as_bytes()));
        assert_eq!(info.server_name.as_deref(), Some("localhost"));
        assert_eq!(info.peer_certificates.first(), Some(&leaf(&m.client.cert_chain)), "the client certificate");

        openssl.type_line("hello from openssl\n");
        drive(&mut peer, deadline, |p| contains(&p.received, b"\n"));
        assert_eq!(peer.received, b"hello from openssl\n");
        let reply = format!("rustls says {protocol} {alpn}\n");
        peer.send(reply.as_bytes());
        peer.session.send_close_notify();
        drive(&mut peer, deadline, |p| !p.session.wants_write());
        assert!(openssl.wait_stdout(&reply, deadline), "{flag}: s_client printed {:?}", openssl.stdout());
        drop(peer); // closes the socket: s_client (-quiet) exits on the closed connection
        let status = openssl.wait_exit(deadline).expect("s_client exits");
        assert!(status.success(), "{flag}: s_client failed: {}", openssl.stderr());
    }
}

fn spawn_s_server(dir: &TempDir, extra: &[&str], deadline: Instant) -> (Child, u16) {
    let mut args = vec![
        "s_server",
        "-accept",
        "127.0.0.1:0",
        "-naccept",
        "1",
        "-cert",
        "server.pem",
        "-key",
        "server.key",
        "-CAfile",
        "ca.pem",
        "-rev",
    ];
    args.extend_from_slice(extra);
    let child = Child::spawn(dir, &args);
    assert!(child.wait_stdout("ACCEPT 127.0.0.1:", deadline), "s_server: {}", child.stderr());
    let out = child.stdout();
    let port = out.split("ACCEPT 127.0.0.1:").nth(1).unwrap();
    let port = port.split_whitespace().next().unwrap().parse().unwrap();
    (child, port)
}

fn our_client(m: &Material, port: u16, f: impl FnOnce(&mut ClientTlsOptions)) -> Peer<TcpStream> {
    let mut o = ClientTlsOptions { ca: Some(m.ca.clone()), session_cache_size: 0, ..Default::default() };
    f(&mut o);
    let config = o.build().unwrap();
    let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    Peer::new(TlsSession::client(&config, config.server_name_for("localhost").unwrap()).unwrap(), sock)
}

/// Our client, `openssl s_server` as the server (it requires a client certificate and reverses
/// each line it receives): TLS 1.3 with ALPN h2, TLS 1.2 with http/1.1.
#[test]
fn our_client_against_openssl_server_tls13_tls12_alpn_client_cert() {
    let m = need_material!();
    let dir = files(m);
    for (flag, alpn, protocol) in [("-tls1_3", "h2", "TLSv1.3"), ("-tls1_2", "http/1.1", "TLSv1.2")] {
        let deadline = Instant::now() + DEADLINE;
        let (mut openssl, port) =
            spawn_s_server(&dir, &[flag, "-alpn", "h2,http/1.1", "-Verify", "1", "-verify_return_error"], deadline);
        let mut peer = our_client(m, port, |o| {
            o.alpn_protocols = vec![alpn.as_bytes().to_vec()];
            o.client_cert = Some(m.client.clone());
        });
        drive(&mut peer, deadline, |p| p.completed || p.end.is_some());
        assert!(peer.completed, "{flag}: {:?}\n{}", peer.end, openssl.stdout());
        let info = peer.session.info();
        assert_eq!(info.protocol, Some(protocol));
        assert_eq!(info.alpn_protocol.as_deref(), Some(alpn.as_bytes()));
        assert_eq!(info.peer_certificates.first(), Some(&leaf(&m.server.cert_chain)));

        peer.send(b"hello openssl\n");
        drive(&mut peer, deadline, |p| contains(&p.received, b"\n") || p.end.is_some());
        assert_eq!(peer.received, b"lssnepo olleh\n");
        peer.session.send_close_notify();
        drive(&mut peer, deadline, |p| !p.session.wants_write());
        drop(peer);
        assert!(openssl.wait_exit(deadline).is_some(), "s_server exits after its one connection");
        // s_server's report (on stderr): the protocol, and our client certificate verified.
        assert!(openssl.wait_stderr("CONNECTION CLOSED", deadline), "{}", openssl.stderr());
        let report = openssl.stderr();
        assert!(report.contains(&format!("Protocol version: {protocol}")), "{report}");
        assert!(
            report.contains("Peer certificate: CN = test client") && report.contains("Verification: OK"),
            "{report}"
        );
    }
}

/// `openssl s_server -Verify 1` requires a certificate; our client sends none: the server's
/// alert reaches us typed (TLS 1.3: certificate_required, after our side finished its part;
/// TLS 1.2: handshake_failure, before).
#[test]
fn openssl_server_refuses_our_client_without_certificate() {
    let m = need_material!();
    let dir = files(m);
    for (flag, alert) in [("-tls1_3", "certificate_required"), ("-tls1_2", "handshake_failure")] {
        let deadline = Instant::now() + DEADLINE;
        let (_openssl, port) = spawn_s_server(&dir, &[flag, "-Verify", "1", "-verify_return_error"], deadline);
        let mut peer = our_client(m, port, |_| {});
        drive(&mut peer, deadline, |p| p.end.is_some() || p.io_error.is_some());
        match &peer.end {
            Some(End::Failed(e)) => {
                assert_eq!((e.kind, e.alert_name()), (TlsErrorKind::Alert, Some(alert)), "{flag}: {e}")
            }
            other => panic!("{flag}: expected the server's alert, got {other:?} / {:?}", peer.io_error),
        }
    }
}

/// s_client's `K` command: a TLS 1.3 KeyUpdate asking us to update too. Data flows on in both
/// directions afterwards.
#[test]
fn openssl_client_key_update_keeps_data_flowing() {
    let m = need_material!();
    let dir = files(m);
    let deadline = Instant::now() + DEADLINE;
    let config = our_server(m, &[]);
    let mut args = vec!["-tls1_3"];
    args.extend_from_slice(&VERIFY_AND_PRESENT_CLIENT_CERT);
    let (mut openssl, mut peer) = s_client_to_our_server(&dir, &config, &args, deadline);
    drive(&mut peer, deadline, |p| p.completed || p.end.is_some());
    assert!(peer.completed, "{:?}", peer.end);
    openssl.type_line("before update\n");
    drive(&mut peer, deadline, |p| contains(&p.received, b"before update\n"));
    openssl.type_line("K\n");
    assert!(openssl.wait_stderr("KEYUPDATE", deadline), "{}", openssl.stderr());
    openssl.type_line("after update\n");
    drive(&mut peer, deadline, |p| contains(&p.received, b"after update\n") || p.end.is_some());
    assert_eq!(peer.end, None);
    peer.send(b"reply after update\n");
    drive(&mut peer, deadline, |p| !p.session.wants_write());
    assert!(openssl.wait_stdout("reply after update", deadline), "{}", openssl.stdout());
    assert_eq!(peer.completions, 1);
}

/// s_client's `R` command in TLS 1.2: a client-initiated renegotiation. rustls answers with a
/// `no_renegotiation` warning and no second handshake starts. OpenSSL, as a client, takes that
/// warning as the end of its renegotiation and aborts with a `handshake_failure` alert (its own
/// choice; a client that ignores the warning would carry on, see the security test
/// `a_tls12_renegotiation_is_refused_and_the_session_goes_on`).
#[test]
fn openssl_client_renegotiation_is_refused() {
    let m = need_material!();
    let dir = files(m);
    let deadline = Instant::now() + DEADLINE;
    let config = our_server(m, &[]);
    let mut args = vec!["-tls1_2"];
    args.extend_from_slice(&VERIFY_AND_PRESENT_CLIENT_CERT);
    let (mut openssl, mut peer) = s_client_to_our_server(&dir, &config, &args, deadline);
    drive(&mut peer, deadline, |p| p.completed || p.end.is_some());
    assert!(peer.completed);
    openssl.type_line("before\n");
    drive(&mut peer, deadline, |p| contains(&p.received, b"before\n"));
    openssl.type_line("R\n");
    assert!(openssl.wait_stderr("RENEGOTIATING", deadline), "{}", openssl.stderr());
    drive(&mut peer, deadline, |p| p.end.is_some() || p.io_error.is_some());
    assert_eq!(peer.completions, 1, "no second handshake");
    assert!(!peer.session.is_handshaking());
    match &peer.end {
        Some(End::Failed(e)) => {
            assert_eq!((e.code(), e.alert_name()), ("ERR_TLS_ALERT", Some("handshake_failure")), "{e}")
        }
        other => panic!("expected OpenSSL's alert, got {other:?} / {:?}", peer.io_error),
    }
}

/// A name our SNI-only port has no certificate for: s_client reports the RFC 6066 alert.
#[test]
fn openssl_client_with_an_unknown_sni_gets_unrecognized_name() {
    let m = need_material!();
    let dir = files(m);
    let deadline = Instant::now() + DEADLINE;
    let config = ServerTlsOptions {
        sni: vec![crate::tls::SniCertificate { names: vec!["a.test".into()], cert: m.a_test.clone() }],
        ..Default::default()
    }
    .build()
    .unwrap();
    let (mut openssl, mut peer) = s_client_to_our_server(&dir, &config, &["-servername", "nomatch.test", "-CAfile", "ca.pem"], deadline);
    drive(&mut peer, deadline, |p| p.end.is_some() && !p.session.wants_write());
    match &peer.end {
        Some(End::Failed(e)) => {
            assert_eq!((e.code(), e.alert_name()), ("ERR_TLS_HANDSHAKE", Some("unrecognized_name")))
        }
        other => panic!("{other:?}"),
    }
    drop(peer);
    let status = openssl.wait_exit(deadline).expect("s_client exits");
    assert!(!status.success());
    assert!(openssl.wait_stderr("unrecognized name", deadline), "{}", openssl.stderr());
}
