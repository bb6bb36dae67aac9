//! Incremental updates of Internet checksums (RFC 1624).
//!
//! When the data plane rewrites a field (TTL, an address under NAT, a port), it does not
//! recompute the checksum over the whole packet: it adjusts the stored checksum by the
//! difference between the old and the new field, `HC' = ~(~HC + ~m + m')` (RFC 1624, eqn. 3),
//! which is exact (it never produces the `0x0000` / `0xffff` ambiguity of eqn. 2).
//! `smoltcp::wire::checksum` computes checksums from scratch (RFC 1071); this incremental
//! form is what it lacks, and what keeps a damaged transport checksum damaged on its way
//! through, as a router must.
//!
//! All values are in host order as read from the wire with big-endian accessors (which is what
//! `smoltcp::wire` accessors return).
//!
//! ```
//! use dataplane::checksum;
//! use smoltcp::wire::checksum::data;
//! // A header whose checksum covers the 16-bit words 0x4001 (TTL 64, protocol 1) and 0x1234...
//! let stored = !data(&[0x40, 0x01, 0x12, 0x34]);
//! // ...becomes TTL 63: adjust instead of recomputing.
//! let adjusted = checksum::update_u16(stored, 0x4001, 0x3f01);
//! assert_eq!(adjusted, !data(&[0x3f, 0x01, 0x12, 0x34]));
//! ```

/// Folds a 32-bit one's-complement accumulator into 16 bits (end-around carry).
const fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Adjusts a stored checksum field after one 16-bit word covered by it changed from `old`
/// to `new` (RFC 1624, eqn. 3).
pub const fn update_u16(checksum: u16, old: u16, new: u16) -> u16 {
    !fold((!checksum) as u32 + (!old) as u32 + new as u32)
}

/// Adjusts a stored checksum after an even-length byte string covered by it (a port, an
/// address, a stretch of header), starting at an even offset of the covered data, changed
/// from `old` to `new`.
///
/// # Panics
/// Never for equal-length, even-length inputs; unequal or odd lengths are a caller bug and
/// are caught by a debug assertion (the result is then meaningless, never a panic in release).
pub fn update_bytes(checksum: u16, old: &[u8], new: &[u8]) -> u16 {
    debug_assert!(old.len() == new.len() && old.len() % 2 == 0);
    let mut acc = (!checksum) as u32;
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        acc += (!u16::from_be_bytes([o[0], o[1]])) as u32;
        acc += u16::from_be_bytes([n[0], n[1]]) as u32;
        acc = fold(acc) as u32;
    }
    !fold(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real IPv4 header (from a Linux ping), checksum field zeroed for recomputation.
    const IPV4_HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x54, 0x8c, 0x4d, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 0x0a, 0x89, 0x00,
        0x0a, 0x01, 0x01, 0x01, 0x01,
    ];

    fn header_checksum(header: &[u8]) -> u16 {
        !smoltcp::wire::checksum::data(header)
    }

    #[test]
    fn full_checksum_of_header_verifies_to_zero() {
        let mut header = IPV4_HEADER;
        let c = header_checksum(&header);
        header[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(header_checksum(&header), 0);
    }

    #[test]
    fn ttl_decrement_matches_full_recompute() {
        let mut header = IPV4_HEADER;
        let stored = header_checksum(&header);
        let old_word = u16::from_be_bytes([header[8], header[9]]);
        header[8] -= 1;
        let new_word = u16::from_be_bytes([header[8], header[9]]);
        assert_eq!(
            update_u16(stored, old_word, new_word),
            header_checksum(&header)
        );
    }

    #[test]
    fn address_rewrite_matches_full_recompute() {
        let mut header = IPV4_HEADER;
        let stored = header_checksum(&header);
        let old = [header[12], header[13], header[14], header[15]];
        header[12..16].copy_from_slice(&[192, 168, 1, 77]);
        assert_eq!(
            update_bytes(stored, &old, &header[12..16]),
            header_checksum(&header)
        );
        let stored = header_checksum(&header);
        let old_bytes = [192, 168, 1, 77];
        header[12..16].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(
            update_bytes(stored, &old_bytes, &header[12..16]),
            header_checksum(&header)
        );
    }

    #[test]
    fn exhaustive_single_word_updates_stay_exact() {
        // Every possible new value of one word, against a fixed rest-of-packet sum.
        let rest = 0xbeefu32 + 0x0102;
        for old in [0u16, 1, 0x7fff, 0xfffe, 0xffff] {
            let stored = !fold(rest + old as u32);
            for new in 0..=u16::MAX {
                let expected = !fold(rest + new as u32);
                let got = update_u16(stored, old, new);
                // 0x0000 and 0xffff are the same value in one's complement.
                assert!(
                    got == expected || (got ^ expected == 0xffff && (got == 0 || expected == 0)),
                    "old {old:#x} new {new:#x}: {got:#x} != {expected:#x}"
                );
            }
        }
    }
}
