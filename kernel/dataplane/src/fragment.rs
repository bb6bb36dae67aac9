//! IPv4 fragments: the stated policy, and the table that carries it out.
//!
//! Moat does not reassemble. It classifies each datagram by its **first fragment** and lets
//! the rest of the datagram follow that decision:
//!
//! - A packet that is not a fragment, and a **first fragment** (offset 0, more-fragments
//!   set), carry the transport header: they go through the state table and the policy like
//!   any packet ([`FragmentKind::Whole`], [`FragmentKind::First`]). The parser has already
//!   refused a first fragment too short to hold its transport header (RFC 1858's tiny
//!   fragment) and a TCP fragment at offset 8 that would overwrite the flags.
//! - When a first fragment is **forwarded**, the caller records what it did with it
//!   ([`FragmentTable::record_first`]): the egress, the address translation — any `T`.
//! - A **later fragment** (offset > 0) has no ports, so it is never classified on its own:
//!   [`FragmentTable::follow`] returns the first fragment's recorded decision, and the caller
//!   applies the same address translation and sends it the same way. A later fragment whose
//!   first fragment was not seen, was not forwarded (blocked, rejected, dropped as invalid),
//!   or was recorded too long ago is **dropped**: no later fragment bypasses the policy.
//! - **Out of order**: a later fragment that arrives *before* its first fragment is dropped
//!   (its first fragment was not seen yet). Senders that emit fragments last-first lose those
//!   datagrams through Moat; Linux, the BSDs and Windows send them in order.
//!
//! Datagrams are identified as they arrive — before any NAT — by (source, destination,
//! protocol, identification), RFC 791's reassembly key. The table is bounded:
//! [`MAX_DATAGRAMS`] datagrams, each remembered for at most [`LIFETIME`]; when full, the
//! oldest datagram is forgotten (its remaining fragments are then dropped). A datagram is
//! forgotten early once fragments adding up to its whole length have been forwarded (a
//! duplicated fragment counts too, so its datagram may be forgotten one fragment early: that
//! fragment is then dropped — the table errs towards dropping, never towards passing). A new
//! first fragment with the key of a remembered datagram (the sender's identification
//! wrapped around) replaces it.
//!
//! Overlapping fragments are not detected: Moat does not reassemble, so the end host
//! resolves overlaps; since every later fragment follows an allowed first fragment between
//! the same endpoints, and the parser refuses the overlaps that could rewrite a TCP header,
//! overlaps cannot change the decision Moat took.

use alloc::collections::{BTreeMap, VecDeque};

use smoltcp::time::{Duration, Instant};

use crate::packet::Ipv4Summary;

/// Most datagrams remembered at once.
pub const MAX_DATAGRAMS: usize = 1024;

/// How long after its first fragment a datagram's later fragments are still let through
/// (RFC 791 suggests 15 s for reassembly; Linux waits 30 s).
pub const LIFETIME: Duration = Duration::from_secs(30);

/// What a packet is, fragment-wise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FragmentKind {
    /// A whole datagram: classify it.
    Whole,
    /// The first fragment of a datagram: classify it, and record the decision if it is
    /// forwarded.
    First,
    /// A later fragment: it follows its first fragment's decision, or is dropped.
    Later,
}

impl FragmentKind {
    /// The kind of the packet `summary` describes.
    pub fn of(summary: &Ipv4Summary) -> FragmentKind {
        match (summary.fragment_offset, summary.more_fragments) {
            (0, false) => FragmentKind::Whole,
            (0, true) => FragmentKind::First,
            _ => FragmentKind::Later,
        }
    }
}

/// A datagram's identity: RFC 791's reassembly key (source, destination, protocol,
/// identification) as the datagram arrived, packed into one integer so that the table
/// compares keys in one instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct DatagramKey(u128);

impl DatagramKey {
    /// The key of the datagram `summary` is (a fragment of).
    fn of(summary: &Ipv4Summary) -> DatagramKey {
        DatagramKey(
            (summary.src.to_bits() as u128) << 64
                | (summary.dst.to_bits() as u128) << 32
                | (u8::from(summary.protocol) as u128) << 16
                | summary.ident as u128,
        )
    }
}

#[derive(Debug)]
struct Datagram<T> {
    decision: T,
    /// Tells this datagram's record in `order` from stale records of the same key.
    generation: u64,
    expires: Instant,
    /// Payload bytes forwarded so far (first fragment included).
    forwarded: u32,
    /// The datagram's payload length, once its last fragment has been seen.
    length: Option<u32>,
}

/// Counters of what the table did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragmentCounters {
    /// Later fragments let through.
    pub followed: u64,
    /// Later fragments dropped: first fragment not seen, not forwarded, or forgotten.
    pub orphans_dropped: u64,
    /// Datagrams forgotten to make room for a new one.
    pub evicted: u64,
}

/// The datagrams whose first fragment was forwarded. See the module documentation.
///
/// `T` is whatever the caller needs to send a later fragment the way its first fragment
/// went (egress NIC, next hop, rewritten addresses); it is cloned once per later fragment.
#[derive(Debug)]
pub struct FragmentTable<T> {
    datagrams: BTreeMap<DatagramKey, Datagram<T>>,
    /// Keys in insertion (hence expiry) order, with the generation they were inserted as.
    order: VecDeque<(u64, DatagramKey)>,
    next_generation: u64,
    counters: FragmentCounters,
}

impl<T> Default for FragmentTable<T> {
    fn default() -> Self {
        FragmentTable {
            datagrams: BTreeMap::new(),
            order: VecDeque::new(),
            next_generation: 0,
            counters: FragmentCounters::default(),
        }
    }
}

fn payload_len(summary: &Ipv4Summary) -> u32 {
    summary.total_len.saturating_sub(summary.header_len) as u32
}

impl<T: Clone> FragmentTable<T> {
    /// An empty table.
    pub fn new() -> FragmentTable<T> {
        FragmentTable::default()
    }

    /// Datagrams remembered now (expired ones included until the next call that sweeps).
    pub fn len(&self) -> usize {
        self.datagrams.len()
    }

    /// Whether no datagram is remembered.
    pub fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
    }

    /// What the table has done so far.
    pub fn counters(&self) -> FragmentCounters {
        self.counters
    }

    /// Records that the first fragment `summary` was forwarded with `decision`, so that the
    /// rest of its datagram follows. Ignored unless `summary` is a first fragment.
    pub fn record_first(&mut self, summary: &Ipv4Summary, decision: T, now: Instant) {
        if FragmentKind::of(summary) != FragmentKind::First {
            return;
        }
        self.expire(now);
        let key = DatagramKey::of(summary);
        if !self.datagrams.contains_key(&key) && self.datagrams.len() >= MAX_DATAGRAMS {
            self.evict_oldest();
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        let datagram = Datagram {
            decision,
            generation,
            expires: now + LIFETIME,
            forwarded: payload_len(summary),
            length: None,
        };
        self.datagrams.insert(key, datagram);
        self.order.push_back((generation, key));
        self.compact_order();
    }

    /// The decision recorded for the later fragment `summary`'s first fragment, or `None` if
    /// the fragment must be dropped (see the module documentation). Not meant for whole
    /// packets or first fragments, which get `None`.
    pub fn follow(&mut self, summary: &Ipv4Summary, now: Instant) -> Option<T> {
        if FragmentKind::of(summary) != FragmentKind::Later {
            return None;
        }
        self.expire(now);
        let key = DatagramKey::of(summary);
        let Some(datagram) = self.datagrams.get_mut(&key) else {
            self.counters.orphans_dropped += 1;
            return None;
        };
        let decision = datagram.decision.clone();
        datagram.forwarded = datagram.forwarded.saturating_add(payload_len(summary));
        if !summary.more_fragments {
            datagram.length = Some(summary.fragment_offset as u32 + payload_len(summary));
        }
        if datagram
            .length
            .is_some_and(|length| datagram.forwarded >= length)
        {
            self.datagrams.remove(&key);
        }
        self.counters.followed += 1;
        Some(decision)
    }

    /// Forgets every datagram (their recorded decisions no longer hold: the addressing they
    /// were made for changed).
    pub fn clear(&mut self) {
        self.datagrams.clear();
        self.order.clear();
    }

    /// Forgets every datagram whose lifetime ended by `now` (also done by the other calls;
    /// call it from a periodic timer so that an idle table empties).
    pub fn expire(&mut self, now: Instant) {
        while let Some(&(generation, key)) = self.order.front() {
            match self.datagrams.get(&key) {
                Some(d) if d.generation == generation => {
                    if d.expires > now {
                        break;
                    }
                    self.datagrams.remove(&key);
                }
                _ => {} // A stale record: the datagram completed or was replaced.
            }
            self.order.pop_front();
        }
    }

    fn evict_oldest(&mut self) {
        while let Some((generation, key)) = self.order.pop_front() {
            if self
                .datagrams
                .get(&key)
                .is_some_and(|d| d.generation == generation)
            {
                self.datagrams.remove(&key);
                self.counters.evicted += 1;
                return;
            }
        }
    }

    /// Drops stale records once they outnumber live ones, so `order` stays within twice the
    /// table's bound whatever the traffic.
    fn compact_order(&mut self) {
        if self.order.len() > 2 * MAX_DATAGRAMS {
            let datagrams = &self.datagrams;
            self.order.retain(|(generation, key)| {
                datagrams
                    .get(key)
                    .is_some_and(|d| d.generation == *generation)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::packets;
    use smoltcp::wire::{IpProtocol, Ipv4Packet};

    /// A 3000-byte UDP datagram from a client cut the way Linux cuts it for a 1500 MTU:
    /// payload bytes 0..1480, 1480..2960, 2960..3008 (8 UDP header + 3000 data).
    fn udp_fragments(ident: u16) -> [alloc::vec::Vec<u8>; 3] {
        let whole = packets::udp(
            [10, 137, 1, 10],
            40000,
            [203, 0, 113, 5],
            9000,
            &[0x5a; 3000],
        );
        let payload = &whole[20..];
        let cut = |range: core::ops::Range<usize>, more: bool| {
            let mut fragment = whole[..20].to_vec();
            fragment.extend_from_slice(&payload[range.clone()]);
            Ipv4Packet::new_unchecked(&mut fragment[..]).set_ident(ident);
            packets::set_fragment(&mut fragment, more, range.start as u16);
            fragment
        };
        [
            cut(0..1480, true),
            cut(1480..2960, true),
            cut(2960..3008, false),
        ]
    }

    fn parsed(bytes: &[u8]) -> Ipv4Summary {
        Ipv4Summary::parse(bytes).expect("valid fragment")
    }

    fn at(ms: i64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn fragments_are_told_apart_from_whole_packets() {
        let [first, middle, last] = udp_fragments(7);
        assert_eq!(FragmentKind::of(&parsed(&first)), FragmentKind::First);
        assert_eq!(FragmentKind::of(&parsed(&middle)), FragmentKind::Later);
        assert_eq!(FragmentKind::of(&parsed(&last)), FragmentKind::Later);
        let whole = packets::udp([10, 137, 1, 10], 40000, [203, 0, 113, 5], 9000, b"x");
        assert_eq!(FragmentKind::of(&parsed(&whole)), FragmentKind::Whole);
    }

    #[test]
    fn later_fragments_follow_a_forwarded_first_fragment() {
        let [first, middle, last] = udp_fragments(7);
        let mut table = FragmentTable::new();
        table.record_first(&parsed(&first), "nic0 via 10.0.2.2, src 10.0.2.15", at(0));
        assert_eq!(
            table.follow(&parsed(&middle), at(1)),
            Some("nic0 via 10.0.2.2, src 10.0.2.15")
        );
        assert_eq!(
            table.follow(&parsed(&last), at(2)),
            Some("nic0 via 10.0.2.2, src 10.0.2.15")
        );
        assert_eq!(table.counters().followed, 2);
    }

    #[test]
    fn non_first_fragment_without_first_is_dropped() {
        let [_, middle, _] = udp_fragments(7);
        let mut table: FragmentTable<u8> = FragmentTable::new();
        assert_eq!(table.follow(&parsed(&middle), at(0)), None);
        assert_eq!(table.counters().orphans_dropped, 1);
    }

    #[test]
    fn later_fragment_before_its_first_is_dropped() {
        let [first, middle, last] = udp_fragments(7);
        let mut table = FragmentTable::new();
        assert_eq!(
            table.follow(&parsed(&last), at(0)),
            None,
            "arrived before the first"
        );
        table.record_first(&parsed(&first), 1u8, at(1));
        assert_eq!(table.follow(&parsed(&middle), at(2)), Some(1));
    }

    #[test]
    fn fragment_of_another_datagram_does_not_follow() {
        let [first, _, _] = udp_fragments(7);
        let [_, other_middle, _] = udp_fragments(8);
        let mut table = FragmentTable::new();
        table.record_first(&parsed(&first), 1u8, at(0));
        assert_eq!(table.follow(&parsed(&other_middle), at(1)), None);
        // Same identification, other protocol: another datagram too.
        let mut tcp_like = udp_fragments(7)[1].clone();
        Ipv4Packet::new_unchecked(&mut tcp_like[..]).set_next_header(IpProtocol::Tcp);
        packets::set_fragment(&mut tcp_like, true, 1480);
        assert_eq!(table.follow(&parsed(&tcp_like), at(1)), None);
    }

    #[test]
    fn datagram_is_forgotten_after_its_lifetime() {
        let [first, middle, _] = udp_fragments(7);
        let mut table = FragmentTable::new();
        table.record_first(&parsed(&first), 1u8, at(0));
        let lifetime_ms = LIFETIME.total_millis() as i64;
        assert_eq!(table.follow(&parsed(&middle), at(lifetime_ms - 1)), Some(1));
        assert_eq!(table.follow(&parsed(&middle), at(lifetime_ms)), None);
        assert!(table.is_empty());
    }

    #[test]
    fn periodic_expiry_empties_an_idle_table() {
        let mut table = FragmentTable::new();
        for ident in 0..10 {
            table.record_first(&parsed(&udp_fragments(ident)[0]), ident, at(ident as i64));
        }
        table.expire(at(LIFETIME.total_millis() as i64 + 4));
        assert_eq!(table.len(), 5);
        table.expire(at(LIFETIME.total_millis() as i64 + 100));
        assert!(table.is_empty());
    }

    #[test]
    fn completed_datagram_is_forgotten_at_once() {
        let [first, middle, last] = udp_fragments(7);
        let mut table = FragmentTable::new();
        table.record_first(&parsed(&first), 1u8, at(0));
        // Last before middle: length known, not yet covered.
        table.follow(&parsed(&last), at(1));
        assert_eq!(table.len(), 1);
        table.follow(&parsed(&middle), at(2));
        assert!(table.is_empty(), "every byte forwarded");
        assert_eq!(
            table.follow(&parsed(&middle), at(3)),
            None,
            "a late duplicate is dropped"
        );
    }

    #[test]
    fn full_table_forgets_the_oldest_datagram() {
        let mut table = FragmentTable::new();
        let firsts: alloc::vec::Vec<_> = (0..=MAX_DATAGRAMS as u16)
            .map(|ident| parsed(&udp_fragments(ident)[0]))
            .collect();
        for (i, first) in firsts.iter().enumerate() {
            table.record_first(first, i, at(i as i64));
        }
        assert_eq!(table.len(), MAX_DATAGRAMS);
        assert_eq!(table.counters().evicted, 1);
        let middle_of = |ident: u16| parsed(&udp_fragments(ident)[1]);
        assert_eq!(
            table.follow(&middle_of(0), at(2000)),
            None,
            "the oldest was evicted"
        );
        assert_eq!(table.follow(&middle_of(1), at(2000)), Some(1));
        assert_eq!(
            table.follow(&middle_of(MAX_DATAGRAMS as u16), at(2000)),
            Some(MAX_DATAGRAMS)
        );
    }

    #[test]
    fn bookkeeping_stays_bounded_under_a_stream_of_completed_datagrams() {
        let mut table = FragmentTable::new();
        for ident in 0..(10 * MAX_DATAGRAMS) as u16 {
            let [first, middle, last] = udp_fragments(ident);
            table.record_first(&parsed(&first), (), at(0));
            table.follow(&parsed(&middle), at(0));
            table.follow(&parsed(&last), at(0));
        }
        assert!(table.is_empty());
        assert!(
            table.order.len() <= 2 * MAX_DATAGRAMS + 1,
            "order holds {}",
            table.order.len()
        );
        assert_eq!(table.counters().evicted, 0);
    }

    #[test]
    fn reused_identification_replaces_the_old_datagram() {
        let [first, middle, _] = udp_fragments(7);
        let mut table = FragmentTable::new();
        table.record_first(&parsed(&first), "old", at(0));
        table.record_first(&parsed(&first), "new", at(10_000));
        assert_eq!(table.len(), 1);
        // The old record's expiry must not forget the new datagram.
        assert_eq!(table.follow(&parsed(&middle), at(35_000)), Some("new"));
    }

    #[test]
    fn whole_packets_and_first_fragments_are_not_followed_or_recorded() {
        let whole = parsed(&packets::udp([10, 137, 1, 10], 1, [1, 1, 1, 1], 2, b"x"));
        let [first, _, _] = udp_fragments(7);
        let mut table = FragmentTable::new();
        table.record_first(&whole, 1u8, at(0));
        assert!(table.is_empty());
        assert_eq!(table.follow(&parsed(&first), at(0)), None);
    }
}
