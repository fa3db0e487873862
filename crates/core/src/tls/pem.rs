//! PEM text → the DER items rustls takes, with errors that name the option. Runs once per config
//! (never per connection).

use super::error::{ConfigError, ConfigErrorKind};
use super::provider::provider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use std::sync::Arc;

/// A certificate chain (leaf first, then intermediates) and its private key, both PEM.
#[derive(Clone, Default)]
pub struct CertKeyPem {
    pub cert_chain: Vec<u8>,
    /// PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`); not encrypted.
    pub key: Vec<u8>,
}

impl std::fmt::Debug for CertKeyPem {
    // The key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertKeyPem")
            .field("cert_chain", &format_args!("{} bytes", self.cert_chain.len()))
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Every CERTIFICATE block, in order. Other blocks (a key in the same file) are skipped.
pub fn cert_chain(field: &str, pem_text: &[u8]) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let chain = CertificateDer::pem_slice_iter(pem_text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::new(ConfigErrorKind::Cert, field, pem_problem(&e)))?;
    if chain.is_empty() {
        return Err(ConfigError::new(ConfigErrorKind::Cert, field, "no CERTIFICATE block in the PEM text"));
    }
    Ok(chain)
}

/// The first private key block of any supported encoding.
pub fn private_key(field: &str, pem_text: &[u8]) -> Result<PrivateKeyDer<'static>, ConfigError> {
    PrivateKeyDer::from_pem_slice(pem_text).map_err(|e| {
        let detail = match e {
            pem::Error::NoItemsFound if has_section(pem_text, "ENCRYPTED PRIVATE KEY") => {
                "the key is encrypted: give it decrypted (PKCS#8, SEC1 or PKCS#1)".to_string()
            }
            pem::Error::NoItemsFound => {
                "no PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY block in the PEM text".to_string()
            }
            other => pem_problem(&other),
        };
        ConfigError::new(ConfigErrorKind::Key, field, detail)
    })
}

/// A chain and its key, checked to belong together, ready for the resolver.
/// `prefix` is the option's path (`""` for the top level, `"sni[2]."` for an SNI entry).
pub fn certified_key(prefix: &str, pair: &CertKeyPem) -> Result<Arc<CertifiedKey>, ConfigError> {
    let cert_field = format!("{prefix}cert");
    let key_field = format!("{prefix}key");
    let chain = cert_chain(&cert_field, &pair.cert_chain)?;
    let key_der = private_key(&key_field, &pair.key)?;
    let signing_key = provider().key_provider.load_private_key(key_der).map_err(|e| {
        ConfigError::new(
            ConfigErrorKind::Key,
            &key_field,
            format!("not a usable RSA, ECDSA (P-256, P-384) or Ed25519 key: {e}"),
        )
    })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => Err(ConfigError::new(
            ConfigErrorKind::KeyMismatch,
            &key_field,
            format!("the key does not match the public key of {cert_field}'s first certificate"),
        )),
        // ring always knows its public key; "unknown" cannot happen with this provider.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(Arc::new(certified)),
        Err(e) => Err(ConfigError::new(
            ConfigErrorKind::Cert,
            &cert_field,
            format!("the first certificate is not valid X.509: {e}"),
        )),
    }
}

/// A CA bundle as a trust store. Every certificate must parse: a bundle silently missing one CA
/// would fail later, and far from its cause.
pub fn root_store(field: &str, pem_text: &[u8]) -> Result<Arc<RootCertStore>, ConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem_text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::new(ConfigErrorKind::Ca, field, pem_problem(&e)))?;
    if certs.is_empty() {
        return Err(ConfigError::new(ConfigErrorKind::Ca, field, "no CERTIFICATE block in the CA bundle"));
    }
    let mut store = RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        store.add(cert).map_err(|e| {
            ConfigError::new(
                ConfigErrorKind::Ca,
                field,
                format!("certificate #{i} of the bundle is not a usable CA: {e}"),
            )
        })?;
    }
    Ok(Arc::new(store))
}

fn has_section(pem_text: &[u8], label: &str) -> bool {
    let begin = format!("-----BEGIN {label}-----");
    pem_text.windows(begin.len()).any(|w| w == begin.as_bytes())
}

fn pem_problem(e: &pem::Error) -> String {
    format!("not valid PEM: {e}")
}
