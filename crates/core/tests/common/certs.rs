//! Test certificates for the TLS tests, made once per test process with the `openssl` command in
//! a temporary folder removed as soon as the PEM text is read. `None` (with the reason on stderr)
//! when `openssl` is missing: the tests that need them say so and return.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

pub struct Certs {
    pub ca: Vec<u8>,
    /// `localhost` (DNS:localhost, IP:127.0.0.1), signed by `ca`: cert, key.
    pub server: (Vec<u8>, Vec<u8>),
    /// `other.test`, signed by `ca` (a second certificate, for reloads).
    pub other: (Vec<u8>, Vec<u8>),
    /// A client certificate signed by `ca`.
    pub client: (Vec<u8>, Vec<u8>),
}

pub fn certs() -> Option<&'static Certs> {
    static CERTS: OnceLock<Option<Certs>> = OnceLock::new();
    CERTS
        .get_or_init(|| match make() {
            Ok(c) => Some(c),
            Err(why) => {
                eprintln!("test certificates unavailable: {why}");
                None
            }
        })
        .as_ref()
}

/// `let c = need_certs!();`: the certificates, or skip the test (saying so).
#[macro_export]
macro_rules! need_certs {
    () => {
        match common::certs::certs() {
            Some(c) => c,
            None => {
                eprintln!("SKIPPED: openssl is not available to make test certificates");
                return;
            }
        }
    };
}

fn make() -> Result<Certs, String> {
    let dir = std::env::temp_dir().join(format!("reactor-core-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let result = make_in(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn make_in(d: &Path) -> Result<Certs, String> {
    run(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ca.key",
        ],
    )?;
    run(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-subj",
            "/CN=reactor core test CA",
            "-days",
            "3",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            "ca.pem",
        ],
    )?;
    let server =
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n";
    leaf(
        d,
        "server",
        "localhost",
        &format!("{server}subjectAltName=DNS:localhost,IP:127.0.0.1\n"),
        2,
    )?;
    leaf(
        d,
        "other",
        "other.test",
        &format!("{server}subjectAltName=DNS:other.test,DNS:localhost,IP:127.0.0.1\n"),
        3,
    )?;
    leaf(
        d,
        "client",
        "test client",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
        4,
    )?;
    let read = |n: &str| std::fs::read(d.join(n)).map_err(|e| format!("{n}: {e}"));
    Ok(Certs {
        ca: read("ca.pem")?,
        server: (read("server.pem")?, read("server.key")?),
        other: (read("other.pem")?, read("other.key")?),
        client: (read("client.pem")?, read("client.key")?),
    })
}

fn leaf(d: &Path, name: &str, cn: &str, ext: &str, serial: u32) -> Result<(), String> {
    std::fs::write(d.join(format!("{name}.ext")), ext).map_err(|e| e.to_string())?;
    let (key, csr, pem, extfile) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
    );
    run(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &key,
        ],
    )?;
    run(
        d,
        &["req", "-new", "-key", &key, "-subj", &format!("/CN={cn}"), "-out", &csr],
    )?;
    run(
        d,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            &serial.to_string(),
            "-days",
            "3",
            "-extfile",
            &extfile,
            "-out",
            &pem,
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
        return Err(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}
