//! The one crypto provider every config shares: rustls's *ring* provider, built once.

use rustls::crypto::CryptoProvider;
use std::sync::{Arc, OnceLock};

/// ring's cipher suites (TLS 1.3: AES-256-GCM, AES-128-GCM, ChaCha20-Poly1305; TLS 1.2: the
/// ECDHE AEAD suites) and signature algorithms, with the key exchanges in the order OpenSSL and
/// browsers prefer: X25519, P-256, P-384. (rustls 0.23.48 lists ring's P-384 first; ring's P-384
/// is several times slower than X25519, and a client's first key share is made for the first
/// group, so that order would make every handshake, ours and our clients', cost more.)
///
/// rustls 0.23.48 marks `ring::default_provider` deprecated because ring has no post-quantum
/// key exchange (X25519MLKEM768 needs aws-lc-rs). We take ring all the same for the reason in
/// Cargo.toml (it cross-builds to aarch64 and musl with `cc` alone); the cost is classical key
/// exchange only, as with OpenSSL 3.0 on this machine.
pub fn provider() -> &'static Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    #[allow(deprecated)]
    PROVIDER.get_or_init(|| {
        use rustls::crypto::ring::{default_provider, kx_group};
        let mut provider = default_provider();
        provider.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1];
        Arc::new(provider)
    })
}
