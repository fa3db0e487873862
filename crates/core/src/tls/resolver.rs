//! Picks the server's certificate from the name the client asked for (SNI).

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::Arc;

/// Exact names first, then `*.suffix` wildcards (one label, as in RFC 6125: `*.example.com`
/// matches `a.example.com`, not `example.com` nor `a.b.example.com`), then the default. With no
/// default, a client whose name matches nothing is refused with `unrecognized_name` (checked in
/// `accept.rs` before rustls resolves), and one who sends no SNI with rustls's `access_denied`.
///
/// Lookups are two hash probes on the lower-cased name: nothing here grows with the number of
/// certificates.
#[derive(Debug, Default)]
pub struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Keyed by what follows `*.`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

/// Why a name could not be added.
#[derive(Debug, PartialEq, Eq)]
pub enum NameProblem {
    /// Not a DNS name, or a `*` anywhere but as the whole first label.
    Invalid,
    /// Another certificate already answers for this name.
    Duplicate,
}

impl SniResolver {
    pub fn new(default: Option<Arc<CertifiedKey>>) -> Self {
        SniResolver { default, ..Default::default() }
    }

    /// Answers `name` (`host.example.com` or `*.example.com`) with `key`.
    pub fn add(&mut self, name: &str, key: Arc<CertifiedKey>) -> Result<(), NameProblem> {
        let name = normalize(name);
        let (table, key_name) = match name.strip_prefix("*.") {
            Some(suffix) => (&mut self.wildcard, suffix.to_string()),
            None => (&mut self.exact, name.clone()),
        };
        let valid = rustls::pki_types::DnsName::try_from(key_name.as_str()).is_ok() && !key_name.contains('*');
        if !valid {
            return Err(NameProblem::Invalid);
        }
        if table.contains_key(&key_name) {
            return Err(NameProblem::Duplicate);
        }
        table.insert(key_name, key);
        Ok(())
    }

    /// The certificate for `server_name` (None: no SNI sent).
    pub fn lookup(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = server_name else { return self.default.clone() };
        let name = normalize(name);
        if let Some(key) = self.exact.get(&name) {
            return Some(key.clone());
        }
        if let Some((_, parent)) = name.split_once('.') {
            if let Some(key) = self.wildcard.get(parent) {
                return Some(key.clone());
            }
        }
        self.default.clone()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.lookup(client_hello.server_name())
    }
}

/// DNS names compare without case and without the root's trailing dot.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}
