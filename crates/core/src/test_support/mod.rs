//! Helpers shared by the core's unit tests and, through the `test-support` feature (its own
//! dev-dependency turns it on), by its integration tests: one maker of test certificates.

pub mod certs;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A unique path in the temp dir (for a UNIX socket), removed when dropped.
pub struct TempPath(pub PathBuf);

impl TempPath {
    pub fn new(label: &str) -> TempPath {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("reactor-core-{}-{label}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        TempPath(path)
    }

    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A small deterministic random generator (xorshift64*) for the property tests: no dependency, and
/// a failing case is replayed from the seed its message prints. `REACTOR_PROPERTY_SEED` picks
/// another seed; `REACTOR_PROPERTY_CASES` more or fewer cases.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The seed of run `case` of a property: from the environment, or fixed.
    pub fn seed_for(case: u64) -> u64 {
        let base: u64 = std::env::var("REACTOR_PROPERTY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_cafe_f00d);
        base.wrapping_add(case.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    /// How many cases a property runs (`default` unless the environment says otherwise).
    pub fn cases(default: u64) -> u64 {
        std::env::var("REACTOR_PROPERTY_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }

    /// True with probability 1/`n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}
