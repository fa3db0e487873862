//! A port's server config that can be replaced while the port runs (`port.setSecureContext`).

use super::config::ServerTlsConfig;
use std::sync::{Arc, PoisonError, RwLock};

/// New handshakes take the config current when they start; a session holds its own `Arc` to
/// the config it began with, so established sessions (and handshakes under way) are untouched by
/// a replacement. The lock is held only to clone or swap two `Arc`s.
#[derive(Debug, Clone)]
pub struct ReloadableServerConfig {
    current: Arc<RwLock<ServerTlsConfig>>,
}

impl ReloadableServerConfig {
    pub fn new(config: ServerTlsConfig) -> Self {
        ReloadableServerConfig { current: Arc::new(RwLock::new(config)) }
    }

    /// The config for a handshake starting now.
    pub fn current(&self) -> ServerTlsConfig {
        // A writer cannot panic half-way through a swap, so a poisoned lock still holds a whole config.
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replaces the config for handshakes from now on; returns the one replaced.
    pub fn replace(&self, config: ServerTlsConfig) -> ServerTlsConfig {
        let mut slot = self.current.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *slot, config)
    }
}
