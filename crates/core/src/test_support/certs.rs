//! Test certificates, made once per test process with the `openssl` command in a temporary
//! folder that is removed as soon as the PEM text is read. Nothing is committed. Without
//! `openssl`, tests that need certificates say so on stderr and return (`skip`).

use crate::tls::CertKeyPem;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

pub struct Material {
    /// The test CA (ECDSA P-256), PEM.
    pub ca: Vec<u8>,
    /// `localhost` (SAN DNS:localhost, IP:127.0.0.1), ECDSA P-256 PKCS#8, signed by `ca`.
    pub server: CertKeyPem,
    /// A second `localhost` certificate (RSA 2048, PKCS#8), for reloads.
    pub server_rsa: CertKeyPem,
    /// The same RSA key in PKCS#1 (`RSA PRIVATE KEY`) with the same certificate.
    pub server_rsa_pkcs1: CertKeyPem,
    /// `localhost`, ECDSA P-384 in SEC1 (`EC PRIVATE KEY`, after an `EC PARAMETERS` block).
    pub server_p384_sec1: CertKeyPem,
    /// `localhost`, Ed25519 PKCS#8.
    pub server_ed25519: CertKeyPem,
    /// `localhost` issued by an intermediate CA; the chain PEM is leaf then intermediate.
    pub server_chained: CertKeyPem,
    /// `a.test`, and `*.wild.test`.
    pub a_test: CertKeyPem,
    pub wild_test: CertKeyPem,
    /// `localhost`, valid from 2020-01-01 to 2020-02-01.
    pub expired: CertKeyPem,
    /// A client certificate (EKU clientAuth) signed by `ca`.
    pub client: CertKeyPem,
    /// Certificates signed by another CA (`localhost`, and a client).
    pub rogue_server: CertKeyPem,
    pub rogue_client: CertKeyPem,
    /// `server`'s key encrypted with a password (PKCS#8 `ENCRYPTED PRIVATE KEY`).
    pub encrypted_key: Vec<u8>,
}

/// The material, or None (with the reason printed once) when `openssl` is missing or fails.
pub fn material() -> Option<&'static Material> {
    static MATERIAL: OnceLock<Option<Material>> = OnceLock::new();
    MATERIAL
        .get_or_init(|| match make() {
            Ok(m) => Some(m),
            Err(why) => {
                let _ = writeln!(std::io::stderr(), "test certificates unavailable: {why}");
                None
            }
        })
        .as_ref()
}

/// Says on stderr that the running test is skipped, and why. Written straight to the process's
/// stderr so that the test harness's output capture does not swallow it.
pub fn skip(reason: &str) {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("?");
    let _ = writeln!(std::io::stderr(), "SKIPPED {name}: {reason}");
}

/// `let m = need_material!();` at the top of a unit test: the material, or skip the test.
#[cfg(test)]
macro_rules! need_material {
    () => {
        match $crate::test_support::certs::material() {
            Some(m) => m,
            None => {
                $crate::test_support::certs::skip("openssl is not available to make test certificates");
                return;
            }
        }
    };
}
#[cfg(test)]
pub(crate) use need_material;

/// The `openssl` binary, if it runs.
pub fn openssl() -> Option<&'static str> {
    static FOUND: OnceLock<bool> = OnceLock::new();
    let found = *FOUND.get_or_init(|| {
        Command::new("openssl")
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    });
    found.then_some("openssl")
}

/// A folder under the system's temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> std::io::Result<TempDir> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("reactor-tls-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).expect("write test file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn make() -> Result<Material, String> {
    openssl().ok_or("the openssl command was not found")?;
    let dir = TempDir::new("certs").map_err(|e| e.to_string())?;
    let d = &dir.0;
    let mut serial = 1u32;

    ca(d, "ca", "reactor test CA")?;
    ca(d, "rogue", "rogue test CA")?;
    // An intermediate: a CA certificate signed by `ca`.
    key(d, "inter", KeyKind::P256)?;
    sign(d, "inter", "reactor test intermediate", "ca", Ext::Ca, &mut serial)?;

    let localhost = Ext::Server("DNS:localhost,IP:127.0.0.1");
    key(d, "server", KeyKind::P256)?;
    sign(d, "server", "localhost", "ca", localhost, &mut serial)?;
    key(d, "rsa", KeyKind::Rsa)?;
    sign(d, "rsa", "localhost", "ca", localhost, &mut serial)?;
    run(d, &["rsa", "-in", "rsa.key", "-traditional", "-out", "rsa1.key"])?;
    key(d, "p384", KeyKind::P384Sec1)?;
    sign(d, "p384", "localhost", "ca", localhost, &mut serial)?;
    key(d, "ed", KeyKind::Ed25519)?;
    sign(d, "ed", "localhost", "ca", localhost, &mut serial)?;
    key(d, "chained", KeyKind::P256)?;
    sign(d, "chained", "localhost", "inter", localhost, &mut serial)?;
    key(d, "a", KeyKind::P256)?;
    sign(d, "a", "a.test", "ca", Ext::Server("DNS:a.test"), &mut serial)?;
    key(d, "wild", KeyKind::P256)?;
    sign(d, "wild", "*.wild.test", "ca", Ext::Server("DNS:*.wild.test"), &mut serial)?;
    key(d, "client", KeyKind::P256)?;
    sign(d, "client", "test client", "ca", Ext::Client, &mut serial)?;
    key(d, "rogue_server", KeyKind::P256)?;
    sign(d, "rogue_server", "localhost", "rogue", localhost, &mut serial)?;
    key(d, "rogue_client", KeyKind::P256)?;
    sign(d, "rogue_client", "rogue client", "rogue", Ext::Client, &mut serial)?;
    key(d, "expired", KeyKind::P256)?;
    expired(d)?;
    run(d, &["pkcs8", "-topk8", "-in", "server.key", "-v2", "aes256", "-passout", "pass:secret", "-out", "enc.key"])?;

    let read = |name: &str| std::fs::read(d.join(name)).map_err(|e| format!("{name}: {e}"));
    let pair = |cert: &str, key: &str| -> Result<CertKeyPem, String> {
        Ok(CertKeyPem { cert_chain: read(cert)?, key: read(key)? })
    };
    let mut chained = pair("chained.pem", "chained.key")?;
    chained.cert_chain.extend(read("inter.pem")?);
    Ok(Material {
        ca: read("ca.pem")?,
        server: pair("server.pem", "server.key")?,
        server_rsa: pair("rsa.pem", "rsa.key")?,
        server_rsa_pkcs1: pair("rsa.pem", "rsa1.key")?,
        server_p384_sec1: pair("p384.pem", "p384.key")?,
        server_ed25519: pair("ed.pem", "ed.key")?,
        server_chained: chained,
        a_test: pair("a.pem", "a.key")?,
        wild_test: pair("wild.pem", "wild.key")?,
        expired: pair("expired.pem", "expired.key")?,
        client: pair("client.pem", "client.key")?,
        rogue_server: pair("rogue_server.pem", "rogue_server.key")?,
        rogue_client: pair("rogue_client.pem", "rogue_client.key")?,
        encrypted_key: read("enc.key")?,
    })
}

#[derive(Clone, Copy)]
enum KeyKind {
    /// PKCS#8.
    P256,
    /// SEC1, with the EC PARAMETERS block openssl puts before it.
    P384Sec1,
    /// PKCS#8.
    Rsa,
    Ed25519,
}

#[derive(Clone, Copy)]
enum Ext {
    Ca,
    Server(&'static str),
    Client,
}

fn key(d: &Path, name: &str, kind: KeyKind) -> Result<(), String> {
    let out = format!("{name}.key");
    match kind {
        KeyKind::P256 => run(d, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", &out]),
        KeyKind::P384Sec1 => run(d, &["ecparam", "-name", "secp384r1", "-genkey", "-out", &out]),
        KeyKind::Rsa => run(d, &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", &out]),
        KeyKind::Ed25519 => run(d, &["genpkey", "-algorithm", "ed25519", "-out", &out]),
    }
}

fn ca(d: &Path, name: &str, cn: &str) -> Result<(), String> {
    key(d, name, KeyKind::P256)?;
    run(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            &format!("/CN={cn}"),
            "-days",
            "3",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            &format!("{name}.pem"),
        ],
    )
}

fn extensions(ext: Ext) -> String {
    match ext {
        Ext::Ca => "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n".into(),
        Ext::Server(san) => format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\nsubjectAltName={san}\n"
        ),
        Ext::Client => "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                        extendedKeyUsage=clientAuth\n"
            .into(),
    }
}

fn sign(d: &Path, name: &str, cn: &str, issuer: &str, ext: Ext, serial: &mut u32) -> Result<(), String> {
    let ext_file = format!("{name}.ext");
    std::fs::write(d.join(&ext_file), extensions(ext)).map_err(|e| e.to_string())?;
    run(
        d,
        &["req", "-new", "-key", &format!("{name}.key"), "-subj", &format!("/CN={cn}"), "-out", &format!("{name}.csr")],
    )?;
    *serial += 1;
    run(
        d,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{issuer}.pem"),
            "-CAkey",
            &format!("{issuer}.key"),
            "-set_serial",
            &serial.to_string(),
            "-days",
            "3",
            "-extfile",
            &ext_file,
            "-out",
            &format!("{name}.pem"),
        ],
    )
}

/// `openssl x509` cannot put dates in the past; `openssl ca` can.
fn expired(d: &Path) -> Result<(), String> {
    std::fs::write(d.join("index.txt"), b"").map_err(|e| e.to_string())?;
    std::fs::write(d.join("serial"), b"7F01\n").map_err(|e| e.to_string())?;
    let conf = format!(
        "[ca]\ndefault_ca = c\n[c]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
         default_md = sha256\npolicy = p\ncopy_extensions = none\n[p]\ncommonName = supplied\n[x]\n{}",
        extensions(Ext::Server("DNS:localhost,IP:127.0.0.1"))
    );
    std::fs::write(d.join("ca.cnf"), conf).map_err(|e| e.to_string())?;
    run(d, &["req", "-new", "-key", "expired.key", "-subj", "/CN=localhost", "-out", "expired.csr"])?;
    run(
        d,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-cert",
            "ca.pem",
            "-keyfile",
            "ca.key",
            "-in",
            "expired.csr",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200201000000Z",
            "-extensions",
            "x",
            "-notext",
            "-out",
            "expired.pem",
        ],
    )
}

fn run(d: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(d)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("openssl {}: {e}", args[0]))?;
    if !out.status.success() {
        return Err(format!("openssl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}
