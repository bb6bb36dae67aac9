//! [`ApplianceKeys`]: the appliance's secrets, one per purpose, each drawn from entropy of
//! its own.
//!
//! Whoever learns one of these keys can attack what it protects: the state table's hash
//! key lets a sender craft tuples that collide (hash flooding); the NAT port seed lets it
//! predict the ports masqueraded flows get (and so spoof their replies); the DHCP seed lets
//! it forge answers to the uplink's DHCP client. So no key is computed from another: each
//! is drawn separately from the boot's entropy ([`ApplianceKeys::draw`]), and learning one
//! tells nothing about the others. The kernel's entropy comes from RDSEED or RDRAND when the
//! CPU has them, always mixed with TSC jitter (`kernel/src/entropy.rs`).
//!
//! Tests and the ruleset compiler's dry runs use [`ApplianceKeys::FIXED`], so that what
//! they see is reproducible.

use crate::rng::mix;

/// The appliance's keys. See the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplianceKeys {
    /// SipHash-1-3 key of the state table's index (128 bits).
    pub state_hash: [u8; 16],
    /// Seed of the generator that picks masqueraded flows' ports.
    pub nat_ports: u64,
    /// Seed of the DHCP clients' transaction ids and retransmission jitter.
    pub dhcp: u64,
    /// Seed of the local stacks (smoltcp's `random_seed`: its ephemeral ports, TCP initial
    /// sequence numbers).
    pub local_stack: u64,
    /// Key of the hash that files sources in the per-source share tables (ICMP-error and
    /// reset budgets, the drop log).
    pub shares: u64,
}

/// Domain constants: each key's words are conditioned with its own, so that even a
/// degenerate entropy source (one that repeats a word) never gives two purposes the same
/// key.
const STATE_HASH: [u64; 2] = [0x7374_6174_652d_6c6f, 0x7374_6174_652d_6869];
const NAT_PORTS: u64 = 0x6e61_742d_706f_7274;
const DHCP: u64 = 0x6468_6370_2d78_6964;
const LOCAL_STACK: u64 = 0x6c6f_6361_6c2d_7374;
const SHARES: u64 = 0x7368_6172_652d_6b65;

impl ApplianceKeys {
    /// Fixed keys, for tests and dry runs: never for a running appliance.
    pub const FIXED: ApplianceKeys = ApplianceKeys {
        state_hash: *b"moat-fixed-state",
        nat_ports: 0x6d6f_6174_0000_0001,
        dhcp: 0x6d6f_6174_0000_0002,
        local_stack: 0x6d6f_6174_0000_0003,
        shares: 0x6d6f_6174_0000_0004,
    };

    /// Draws every key from `entropy`, which returns a fresh 64-bit word at each call:
    /// six words, each used by exactly one key (two for the 128-bit state hash key), each
    /// conditioned with its purpose's own constant.
    pub fn draw(mut entropy: impl FnMut() -> u64) -> ApplianceKeys {
        let mut word = |domain: u64| mix(entropy() ^ domain);
        let low = word(STATE_HASH[0]);
        let high = word(STATE_HASH[1]);
        let mut state_hash = [0u8; 16];
        state_hash[..8].copy_from_slice(&low.to_le_bytes());
        state_hash[8..].copy_from_slice(&high.to_le_bytes());
        ApplianceKeys {
            state_hash,
            nat_ports: word(NAT_PORTS),
            dhcp: word(DHCP),
            local_stack: word(LOCAL_STACK),
            shares: word(SHARES),
        }
    }

    /// A per-NIC seed from one of the keys (`key`), different for every NIC.
    pub fn for_nic(key: u64, nic: u8) -> u64 {
        mix(key ^ mix(u64::from(nic) + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// The keys as six words: the two halves of the state key, then the others.
    fn words(keys: &ApplianceKeys) -> [u64; 6] {
        let (low, high) = keys.state_hash.split_at(8);
        let half = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
        [
            half(low),
            half(high),
            keys.nat_ports,
            keys.dhcp,
            keys.local_stack,
            keys.shares,
        ]
    }

    /// Keys drawn from the entropy words `source`, in order.
    fn drawn_from(source: &[u64]) -> ApplianceKeys {
        let mut next = source.iter().copied();
        ApplianceKeys::draw(|| next.next().unwrap_or(0))
    }

    #[test]
    fn each_key_takes_words_of_its_own() {
        let mut drawn = 0;
        ApplianceKeys::draw(|| {
            drawn += 1;
            drawn
        });
        assert_eq!(drawn, 6, "one word per 64 bits of key, none shared");
    }

    #[test]
    fn changing_one_entropy_word_changes_exactly_one_key_word() {
        let source: Vec<u64> = (1..=6).map(|i| mix(i * 0x1234_5678)).collect();
        let base = words(&drawn_from(&source));
        for changed in 0..6 {
            let mut other = source.clone();
            other[changed] ^= 1;
            let keys = words(&drawn_from(&other));
            let differing: Vec<usize> = (0..6).filter(|&k| keys[k] != base[k]).collect();
            assert_eq!(
                differing,
                [changed],
                "entropy word {changed} feeds only its own key"
            );
        }
    }

    #[test]
    fn keys_differ_even_from_a_source_that_repeats_itself() {
        let keys = words(&drawn_from(&[42; 6]));
        for a in 0..6 {
            for b in a + 1..6 {
                assert_ne!(keys[a], keys[b], "key words {a} and {b}");
            }
        }
    }

    #[test]
    fn no_key_is_a_function_of_another() {
        // Two draws that agree on the NAT seed's word and differ elsewhere: the NAT seed is
        // the same, every other key differs — so knowing it tells nothing about them.
        let a = words(&drawn_from(&[1, 2, 3, 4, 5, 6]));
        let b = words(&drawn_from(&[7, 8, 3, 10, 11, 12]));
        assert_eq!(a[2], b[2]);
        for k in [0, 1, 3, 4, 5] {
            assert_ne!(a[k], b[k], "key word {k}");
        }
    }

    #[test]
    fn per_nic_seeds_differ() {
        let seeds: Vec<u64> = (0..8)
            .map(|nic| ApplianceKeys::for_nic(ApplianceKeys::FIXED.dhcp, nic))
            .collect();
        for a in 0..seeds.len() {
            for b in a + 1..seeds.len() {
                assert_ne!(seeds[a], seeds[b]);
            }
        }
    }
}
