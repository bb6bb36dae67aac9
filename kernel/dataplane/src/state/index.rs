//! [`FlowIndex`]: the hash index from a [`FlowTuple`] to the state that owns it.
//!
//! Every state is reachable under two tuples (its original and its reply direction), so the
//! index holds two entries per state. It is an open-addressing table with linear probing,
//! sized once at construction to at least twice the number of entries it can ever hold
//! (load factor ≤ ½), and deletes by backward shifting, so it never accumulates tombstones,
//! never rehashes and never allocates after construction. Lookups cost one keyed hash and,
//! on average, under two probes. Its memory is written page by page as entries arrive
//! ([`Buckets`]), so a large index costs nothing to create.
//!
//! The hash is SipHash-1-3 under a 128-bit key the caller provides (the kernel seeds it at
//! boot): tuples come from the network, and a keyed hash keeps an attacker from choosing
//! tuples that pile up in one probe chain (hash flooding).
//!
//! Each bucket is a `u32`: the state's slot (24 bits), the direction (1 bit), and 7 bits of
//! the hash as a tag, so most non-matching buckets are skipped without reading the state.

use siphasher::sip::SipHasher13;

use super::buckets::Buckets;
use super::tuple::{Direction, FlowTuple};

/// Largest number of states an index can serve (slots are 24-bit).
pub const MAX_STATES: usize = (1 << SLOT_BITS) - 1;

const SLOT_BITS: u32 = 24;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;
const DIRECTION_BIT: u32 = 1 << SLOT_BITS;
const TAG_SHIFT: u32 = SLOT_BITS + 1;
/// No entry. Never a valid entry: its slot bits equal [`MAX_STATES`], one past the last slot.
const EMPTY: u32 = u32::MAX;

/// One side of a state: its slot and the direction whose tuple the entry is filed under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexKey {
    /// Slot of the state.
    pub slot: u32,
    /// Which of the state's tuples.
    pub direction: Direction,
}

/// The index. See the module documentation.
pub struct FlowIndex {
    hasher: SipHasher13,
    buckets: Buckets,
    mask: usize,
}

impl FlowIndex {
    /// An empty index for up to `states` states (clamped to [`MAX_STATES`]), hashing under
    /// `key`.
    pub fn new(states: usize, key: [u8; 16]) -> FlowIndex {
        let buckets = Self::buckets_for(states);
        FlowIndex {
            hasher: SipHasher13::new_with_key(&key),
            buckets: Buckets::new(buckets, EMPTY),
            mask: buckets - 1,
        }
    }

    /// Buckets for `states` states: a power of two of at least four per state (two entries
    /// per state, load factor ≤ ½).
    pub const fn buckets_for(states: usize) -> usize {
        let states = if states > MAX_STATES {
            MAX_STATES
        } else {
            states
        };
        let wanted = if states < 2 { 8 } else { states * 4 };
        wanted.next_power_of_two()
    }

    /// Bytes an index for `states` states occupies.
    pub const fn bytes_for(states: usize) -> usize {
        Buckets::bytes_for(Self::buckets_for(states))
    }

    /// The keyed hash of a tuple.
    pub fn hash(&self, tuple: &FlowTuple) -> u64 {
        self.hasher.hash(&tuple.to_bytes())
    }

    fn home(&self, hash: u64) -> usize {
        hash as usize & self.mask
    }

    fn tag(hash: u64) -> u32 {
        (hash >> 57) as u32
    }

    fn encode(key: IndexKey, hash: u64) -> u32 {
        let direction = match key.direction {
            Direction::Original => 0,
            Direction::Reply => DIRECTION_BIT,
        };
        (Self::tag(hash) << TAG_SHIFT) | direction | (key.slot & SLOT_MASK)
    }

    fn decode(entry: u32) -> IndexKey {
        let direction = if entry & DIRECTION_BIT == 0 {
            Direction::Original
        } else {
            Direction::Reply
        };
        IndexKey {
            slot: entry & SLOT_MASK,
            direction,
        }
    }

    /// The entry filed under the tuple whose hash is `hash`. `is_filed_under` says whether
    /// a candidate entry (whose hash tag matches) really belongs to that tuple.
    pub fn find(&self, hash: u64, is_filed_under: impl Fn(IndexKey) -> bool) -> Option<IndexKey> {
        let tag = Self::tag(hash);
        let mut at = self.home(hash);
        loop {
            let entry = self.buckets.get(at);
            if entry == EMPTY {
                return None;
            }
            if entry >> TAG_SHIFT == tag {
                let key = Self::decode(entry);
                if is_filed_under(key) {
                    return Some(key);
                }
            }
            at = (at + 1) & self.mask;
        }
    }

    /// Files `key` under a tuple whose hash is `hash`. The caller guarantees the tuple is not
    /// already filed and that the index holds fewer entries than two per state it was sized
    /// for (so a free bucket always exists).
    pub fn insert(&mut self, key: IndexKey, hash: u64) {
        let mut at = self.home(hash);
        while self.buckets.get(at) != EMPTY {
            at = (at + 1) & self.mask;
        }
        self.buckets.set(at, Self::encode(key, hash));
    }

    /// Removes the entry of `key`, filed under a tuple whose hash is `hash`. `tuple_of`
    /// reads the tuples of the entries that move to close the gap (their states must still
    /// be readable). Returns whether the entry was there.
    pub fn remove(
        &mut self,
        key: IndexKey,
        hash: u64,
        tuple_of: impl Fn(IndexKey) -> FlowTuple,
    ) -> bool {
        let wanted = Self::encode(key, hash);
        let mut at = self.home(hash);
        loop {
            match self.buckets.get(at) {
                EMPTY => return false,
                entry if entry == wanted => break,
                _ => at = (at + 1) & self.mask,
            }
        }
        // Backward-shift deletion: move later entries of the probe run into the gap when
        // their home bucket does not lie cyclically in (gap, their position].
        let mut gap = at;
        let mut next = at;
        loop {
            next = (next + 1) & self.mask;
            let entry = self.buckets.get(next);
            if entry == EMPTY {
                break;
            }
            let home = self.home(self.hash(&tuple_of(Self::decode(entry))));
            let stays = if gap <= next {
                gap < home && home <= next
            } else {
                gap < home || home <= next
            };
            if !stays {
                self.buckets.set(gap, entry);
                gap = next;
            }
        }
        self.buckets.set(gap, EMPTY);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::vec::Vec;
    use proptest::prelude::*;
    use smoltcp::wire::Ipv4Address;

    fn tuple(n: u32) -> FlowTuple {
        FlowTuple {
            protocol: smoltcp::wire::IpProtocol::Udp,
            src: smoltcp::wire::IpAddress::from(Ipv4Address::from_bits(0x0a00_0000 | (n >> 8))),
            dst: Ipv4Address::new(1, 1, 1, 1).into(),
            src_port: n as u16,
            dst_port: 53,
            echo: None,
        }
    }

    /// A model of the slab: the tuple each (slot, direction) was filed under.
    struct Model {
        index: FlowIndex,
        filed: BTreeMap<(u32, bool), FlowTuple>,
    }

    impl Model {
        fn new(states: usize) -> Model {
            Model {
                index: FlowIndex::new(states, [7; 16]),
                filed: BTreeMap::new(),
            }
        }

        fn tuple_of(
            filed: &BTreeMap<(u32, bool), FlowTuple>,
        ) -> impl Fn(IndexKey) -> FlowTuple + '_ {
            move |k| filed[&(k.slot, k.direction == Direction::Reply)]
        }

        fn insert(&mut self, slot: u32, direction: Direction, t: FlowTuple) {
            self.filed.insert((slot, direction == Direction::Reply), t);
            let hash = self.index.hash(&t);
            self.index.insert(IndexKey { slot, direction }, hash);
        }

        fn remove(&mut self, slot: u32, direction: Direction) -> bool {
            let t = self.filed[&(slot, direction == Direction::Reply)];
            let hash = self.index.hash(&t);
            let removed = self.index.remove(
                IndexKey { slot, direction },
                hash,
                Self::tuple_of(&self.filed),
            );
            self.filed.remove(&(slot, direction == Direction::Reply));
            removed
        }

        fn find(&self, t: &FlowTuple) -> Option<IndexKey> {
            let tuple_of = Self::tuple_of(&self.filed);
            self.index.find(self.index.hash(t), |k| tuple_of(k) == *t)
        }
    }

    #[test]
    fn filed_tuples_are_found_in_both_directions_and_others_are_not() {
        let mut m = Model::new(16);
        m.insert(3, Direction::Original, tuple(1));
        m.insert(3, Direction::Reply, tuple(1).reversed());
        assert_eq!(
            m.find(&tuple(1)),
            Some(IndexKey {
                slot: 3,
                direction: Direction::Original
            })
        );
        assert_eq!(
            m.find(&tuple(1).reversed()),
            Some(IndexKey {
                slot: 3,
                direction: Direction::Reply
            })
        );
        assert_eq!(m.find(&tuple(2)), None);
    }

    #[test]
    fn sizing_keeps_the_load_factor_at_most_one_half() {
        for states in [0, 1, 2, 3, 1000, 1024, 65_536] {
            assert!(
                FlowIndex::buckets_for(states) >= 4 * states.max(2),
                "{states}"
            );
            assert!(FlowIndex::buckets_for(states).is_power_of_two());
        }
    }

    #[test]
    fn different_keys_hash_differently() {
        let a = FlowIndex::new(4, [1; 16]);
        let b = FlowIndex::new(4, [2; 16]);
        assert_ne!(a.hash(&tuple(1)), b.hash(&tuple(1)));
    }

    proptest! {
        /// Any sequence of inserts and removes on a full-size index leaves exactly the
        /// filed tuples findable, each under its own slot (backward shifting never loses or
        /// misfiles an entry).
        #[test]
        fn index_agrees_with_a_model(ops in proptest::collection::vec((0u32..48, any::<bool>()), 1..400)) {
            const STATES: usize = 24;
            let mut m = Model::new(STATES);
            let mut live: BTreeMap<u32, u32> = BTreeMap::new(); // slot -> tuple number
            for (n, remove) in ops {
                if remove {
                    if let Some((&slot, _)) = live.iter().nth(n as usize % live.len().max(1)) {
                        prop_assert!(m.remove(slot, Direction::Original));
                        prop_assert!(m.remove(slot, Direction::Reply));
                        live.remove(&slot);
                    }
                } else if live.len() < STATES && !live.values().any(|&v| v == n) {
                    let slot = (0..STATES as u32).find(|s| !live.contains_key(s)).unwrap();
                    m.insert(slot, Direction::Original, tuple(n));
                    m.insert(slot, Direction::Reply, tuple(n).reversed());
                    live.insert(slot, n);
                }
                for n in 0..48u32 {
                    let expected = live.iter().find(|(_, &v)| v == n).map(|(&s, _)| s);
                    prop_assert_eq!(m.find(&tuple(n)).map(|k| k.slot), expected);
                    prop_assert_eq!(m.find(&tuple(n).reversed()).map(|k| (k.slot, k.direction)),
                        expected.map(|s| (s, Direction::Reply)));
                }
            }
            let filled: Vec<_> = m.index.buckets.filled().collect();
            prop_assert_eq!(filled.len(), live.len() * 2);
        }
    }
}
