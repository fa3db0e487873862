//! The deterministic byte pattern every workload sends and verifies.
//!
//! The byte at stream offset `o` of a stream keyed `key` is `(o * 31 + key) % 251`.
//! 251 is prime and coprime with 31, so the sequence repeats only every 251 bytes and
//! that period shares no factor with typical buffer sizes (powers of two): an echo that
//! drops, duplicates, reorders or shifts bytes, or mixes two connections' data, shows up
//! as a mismatch instead of passing by accident.
//!
//! Generating the pattern byte by byte would make the load generator the bottleneck of
//! the stream workload, so each `Pattern` precomputes a tile a little longer than a
//! 16 KiB message: filling and verifying are then `memcpy`/`memcmp` of tile slices.

use std::fmt;

/// Period of the pattern (a prime).
pub const PERIOD: usize = 251;

/// Tile length: 66 periods (16 566 bytes), so a whole 16 KiB message is one slice
/// comparison whatever offset it starts at.
const TILE_LEN: usize = PERIOD * 66;

/// Longest run one tile slice covers from any starting phase.
const CHUNK: usize = TILE_LEN - (PERIOD - 1);

/// The reference definition; the tile is built from it and tests check against it.
pub fn byte_at(key: u64, offset: u64) -> u8 {
    (((offset % PERIOD as u64) * 31 + key % PERIOD as u64) % PERIOD as u64) as u8
}

/// Where echoed data first differs from the pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    /// Stream offset of the first wrong byte.
    pub offset: u64,
    pub expected: u8,
    pub got: u8,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "byte at stream offset {} is {:#04x}, expected {:#04x}",
            self.offset, self.got, self.expected
        )
    }
}

/// The pattern of one stream key, with its precomputed tile.
pub struct Pattern {
    key: u64,
    tile: Box<[u8]>,
}

impl Pattern {
    pub fn new(key: u64) -> Self {
        let tile = (0..TILE_LEN as u64).map(|i| byte_at(key, i)).collect();
        Pattern { key, tile }
    }

    pub fn key(&self) -> u64 {
        self.key
    }

    /// Fills `out` with the pattern bytes for stream offsets `offset..offset + out.len()`.
    pub fn fill(&self, offset: u64, out: &mut [u8]) {
        let mut offset = offset;
        for chunk in out.chunks_mut(CHUNK) {
            let phase = (offset % PERIOD as u64) as usize;
            chunk.copy_from_slice(&self.tile[phase..phase + chunk.len()]);
            offset += chunk.len() as u64;
        }
    }

    /// The pattern bytes for stream offsets `offset..offset + len`, as slices of the tile
    /// (at most `CHUNK` bytes each): a `writev` can send them without filling a buffer.
    pub fn slices(&self, offset: u64, len: u64) -> impl Iterator<Item = &[u8]> + '_ {
        let end = offset + len;
        let mut at = offset;
        std::iter::from_fn(move || {
            if at >= end {
                return None;
            }
            let phase = (at % PERIOD as u64) as usize;
            let n = (end - at).min(CHUNK as u64) as usize;
            at += n as u64;
            Some(&self.tile[phase..phase + n])
        })
    }

    /// Checks that `data` is exactly the pattern at stream offsets `offset..`.
    pub fn verify(&self, offset: u64, data: &[u8]) -> Result<(), Mismatch> {
        let mut offset = offset;
        for chunk in data.chunks(CHUNK) {
            let phase = (offset % PERIOD as u64) as usize;
            let want = &self.tile[phase..phase + chunk.len()];
            if chunk != want {
                // Slow path only on failure: locate the first differing byte for the report.
                let i = chunk
                    .iter()
                    .zip(want)
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                return Err(Mismatch {
                    offset: offset + i as u64,
                    expected: want[i],
                    got: chunk[i],
                });
            }
            offset += chunk.len() as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_matches_reference_at_any_offset_and_length() {
        for key in [0u64, 1, 7, 250, 251, 1000] {
            let p = Pattern::new(key);
            for offset in [0u64, 1, 250, 251, 16384, 123_456_789, u64::MAX / 2] {
                for len in [0usize, 1, 64, 1200, CHUNK - 1, CHUNK, CHUNK + 1, 70_000] {
                    let mut buf = vec![0u8; len];
                    p.fill(offset, &mut buf);
                    for (i, b) in buf.iter().enumerate() {
                        assert_eq!(
                            *b,
                            byte_at(key, offset + i as u64),
                            "key {key} off {offset} i {i}"
                        );
                    }
                    assert_eq!(p.verify(offset, &buf), Ok(()));
                }
            }
        }
    }

    #[test]
    fn slices_concatenate_to_the_pattern() {
        let p = Pattern::new(9);
        for offset in [0u64, 250, 16384, 999_999] {
            for len in [0u64, 1, CHUNK as u64, CHUNK as u64 + 1, 65_536, 200_000] {
                let joined: Vec<u8> = p.slices(offset, len).flatten().copied().collect();
                let mut want = vec![0u8; len as usize];
                p.fill(offset, &mut want);
                assert_eq!(joined, want, "offset {offset} len {len}");
                assert!(p
                    .slices(offset, len)
                    .all(|s| !s.is_empty() && s.len() <= CHUNK));
            }
        }
    }

    #[test]
    fn verify_reports_first_wrong_byte() {
        let p = Pattern::new(3);
        let mut buf = vec![0u8; 40_000];
        p.fill(1000, &mut buf);
        buf[30_000] ^= 0x40;
        buf[30_001] ^= 0x40;
        let m = p.verify(1000, &buf).unwrap_err();
        assert_eq!(m.offset, 31_000);
        assert_eq!(m.expected, byte_at(3, 31_000));
        assert_eq!(m.got, byte_at(3, 31_000) ^ 0x40);
    }

    #[test]
    fn catches_shifted_duplicated_and_cross_connection_data() {
        let p = Pattern::new(5);
        let mut buf = vec![0u8; 4096];
        p.fill(0, &mut buf);
        // Shift by one byte (a lost byte), by a power of two, by a whole message.
        for shift in [1u64, 2, 64, 1024, 4096] {
            assert!(p.verify(shift, &buf).is_err(), "shift {shift} not detected");
        }
        // Another connection's bytes at the same offset.
        assert!(Pattern::new(6).verify(0, &buf).is_err());
        // Only a whole-period shift is invisible, which is the pattern's documented limit.
        assert!(p.verify(PERIOD as u64, &buf).is_ok());
    }
}
