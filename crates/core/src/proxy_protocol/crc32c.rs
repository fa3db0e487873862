//! CRC-32C of a v2 header, as the CRC32C TLV defines it (RFC 4960 appendix B: Castagnoli, the
//! parameters the `crc` crate names CRC-32/ISCSI). The arithmetic is the `crc` crate's.

use crc::{Crc, CRC_32_ISCSI};

const CASTAGNOLI: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// The checksum of `header` computed as if its 4 bytes at `field` (the CRC32C TLV's value) were
/// zero, which is how both sender and receiver define it. Reads in three pieces instead of
/// copying the header, so it allocates nothing.
pub(crate) fn with_field_zeroed(header: &[u8], field: usize) -> u32 {
    let mut digest = CASTAGNOLI.digest();
    digest.update(&header[..field]);
    digest.update(&[0u8; 4]);
    digest.update(&header[field + 4..]);
    digest.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The standard check value of CRC-32C over "123456789".
        assert_eq!(CASTAGNOLI.checksum(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn field_is_read_as_zero() {
        let plain = [1u8, 2, 3, 0, 0, 0, 0, 7, 8];
        let filled = [1u8, 2, 3, 0xAA, 0xBB, 0xCC, 0xDD, 7, 8];
        assert_eq!(with_field_zeroed(&filled, 3), CASTAGNOLI.checksum(&plain));
    }
}
