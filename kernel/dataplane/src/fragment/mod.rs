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
//! Datagrams are identified as they arrive — before any NAT — by the NIC they arrive on and
//! (source, destination, protocol, identification), RFC 791's reassembly key. The table is
//! bounded: [`MAX_DATAGRAMS`] datagrams, each remembered for at most [`LIFETIME`]. When it
//! is full, each NIC and source has its share: room is made by forgetting the oldest
//! datagram of the biggest consumer — on the NIC holding the most, the source holding the
//! most (see `shares.rs`) — so one client's flood of first fragments costs its own datagrams,
//! never another client's (a forgotten datagram's remaining fragments are dropped). A datagram is
//! forgotten early once fragments adding up to its whole length have been forwarded (a
//! duplicated fragment counts too, so its datagram may be forgotten one fragment early: that
//! fragment is then dropped — the table errs towards dropping, never towards passing). A new
//! first fragment with the key of a remembered datagram (the sender's identification
//! wrapped around) replaces it.
//!
//! **Overlaps** (RFC 1858, RFC 3128): the decision rests on the bytes the first fragment
//! carried — the transport header and whatever followed it. A later fragment that starts
//! inside them could rewrite them at the end host (a TCP fragment at offset 8 or 16
//! reaching the flags or options), so it is refused ([`Refused::Overlap`]) and its whole
//! datagram forgotten: the rest of it is dropped too (Linux likewise discards a datagram
//! with overlapping fragments). Overlaps among later fragments only concern payload, which
//! the end host resolves (or discards); they cannot change the decision Moat took. The
//! parser refuses the other malformed fragments before they get here: one reaching past
//! byte 65,535 of its datagram, one with more to come not ending on an 8-byte boundary.

use alloc::collections::{BTreeMap, VecDeque};

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::IpAddress;

use crate::packet::IpSummary;

mod shares;

use shares::{Consumer, Record, Shares};

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
    pub fn of(summary: &IpSummary) -> FragmentKind {
        match (summary.fragment_offset, summary.more_fragments) {
            (0, false) => FragmentKind::Whole,
            (0, true) => FragmentKind::First,
            _ => FragmentKind::Later,
        }
    }
}

/// A datagram's identity: the NIC it arrived on and RFC 791's (RFC 8200's for IPv6)
/// reassembly key — source, destination, protocol, identification — as the datagram
/// arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct DatagramKey {
    nic: u8,
    src: IpAddress,
    dst: IpAddress,
    protocol: u8,
    ident: u32,
}

impl DatagramKey {
    /// The key of the datagram `summary` is (a fragment of), arrived on `nic`.
    fn of(nic: u8, summary: &IpSummary) -> DatagramKey {
        DatagramKey {
            nic,
            src: summary.src,
            dst: summary.dst,
            protocol: summary.protocol.into(),
            ident: summary.ident,
        }
    }

    /// Whom the datagram is charged to.
    fn consumer(self) -> Consumer {
        Consumer {
            nic: self.nic,
            src: self.src,
        }
    }
}

#[derive(Debug)]
struct Datagram<T> {
    decision: T,
    /// Tells this datagram's records (in `order` and its consumer's share) from stale
    /// records of the same key.
    generation: u64,
    expires: Instant,
    /// Payload bytes the first fragment carried: later fragments must start past them.
    first_len: u32,
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
    /// Later fragments dropped for overlapping their first fragment (their datagram is
    /// forgotten with them).
    pub overlaps_dropped: u64,
    /// Datagrams forgotten to make room for a new one.
    pub evicted: u64,
}

/// Why a later fragment may not follow its first fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Its first fragment was not seen, not forwarded, or was forgotten.
    Orphan,
    /// It starts inside the bytes its first fragment carried (its datagram is forgotten).
    Overlap,
}

/// The datagrams whose first fragment was forwarded. See the module documentation.
///
/// `T` is whatever the caller needs to send a later fragment the way its first fragment
/// went (egress NIC, next hop, rewritten addresses); it is cloned once per later fragment.
#[derive(Debug)]
pub struct FragmentTable<T> {
    datagrams: BTreeMap<DatagramKey, Datagram<T>>,
    /// Records in insertion (hence expiry) order, stale ones included.
    order: VecDeque<Record>,
    /// What each consumer holds, for eviction.
    shares: Shares,
    next_generation: u64,
    counters: FragmentCounters,
}

impl<T> Default for FragmentTable<T> {
    fn default() -> Self {
        FragmentTable {
            datagrams: BTreeMap::new(),
            order: VecDeque::new(),
            shares: Shares::default(),
            next_generation: 0,
            counters: FragmentCounters::default(),
        }
    }
}

fn payload_len(summary: &IpSummary) -> u32 {
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

    /// Records that the first fragment `summary`, which arrived on `nic`, was forwarded
    /// with `decision`, so that the rest of its datagram follows. Ignored unless `summary`
    /// is a first fragment. When the table is full, the biggest consumer's oldest datagram
    /// makes room.
    pub fn record_first(&mut self, nic: u8, summary: &IpSummary, decision: T, now: Instant) {
        if FragmentKind::of(summary) != FragmentKind::First {
            return;
        }
        self.expire(now);
        let key = DatagramKey::of(nic, summary);
        if !self.forget(key) && self.datagrams.len() >= MAX_DATAGRAMS {
            self.evict_for(key.consumer());
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        let datagram = Datagram {
            decision,
            generation,
            expires: now + LIFETIME,
            first_len: payload_len(summary),
            forwarded: payload_len(summary),
            length: None,
        };
        self.datagrams.insert(key, datagram);
        self.order.push_back((generation, key));
        self.shares.charge(key.consumer(), (generation, key));
        self.compact_order();
    }

    /// The decision recorded for the first fragment of the later fragment `summary`, which
    /// arrived on `nic`, or why the fragment must be dropped (see the module
    /// documentation). Not meant for whole packets or first fragments, which are refused
    /// as orphans.
    pub fn follow(&mut self, nic: u8, summary: &IpSummary, now: Instant) -> Result<T, Refused> {
        if FragmentKind::of(summary) != FragmentKind::Later {
            return Err(Refused::Orphan);
        }
        self.expire(now);
        let key = DatagramKey::of(nic, summary);
        let Some(datagram) = self.datagrams.get_mut(&key) else {
            self.counters.orphans_dropped += 1;
            return Err(Refused::Orphan);
        };
        if u32::from(summary.fragment_offset) < datagram.first_len {
            self.forget(key);
            self.counters.overlaps_dropped += 1;
            return Err(Refused::Overlap);
        }
        let decision = datagram.decision.clone();
        datagram.forwarded = datagram.forwarded.saturating_add(payload_len(summary));
        if !summary.more_fragments {
            datagram.length = Some(summary.fragment_offset as u32 + payload_len(summary));
        }
        if datagram
            .length
            .is_some_and(|length| datagram.forwarded >= length)
        {
            self.forget(key);
        }
        self.counters.followed += 1;
        Ok(decision)
    }

    /// Forgets every datagram (their recorded decisions no longer hold: the addressing they
    /// were made for changed).
    pub fn clear(&mut self) {
        self.datagrams.clear();
        self.order.clear();
        self.shares.clear();
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
                    self.forget(key);
                }
                _ => {} // A stale record: the datagram completed or was replaced.
            }
            self.order.pop_front();
        }
    }

    /// Forgets the datagram `key`, releasing its consumer's share; returns whether it was
    /// remembered.
    fn forget(&mut self, key: DatagramKey) -> bool {
        if self.datagrams.remove(&key).is_none() {
            return false;
        }
        let datagrams = &self.datagrams;
        self.shares.release(key.consumer(), |&(generation, key)| {
            datagrams
                .get(&key)
                .is_some_and(|d| d.generation == generation)
        });
        true
    }

    /// Makes room for a datagram of `arriving`: forgets the oldest datagram of the biggest
    /// consumer (see `shares.rs`) — or, should the shares not name a datagram the table
    /// holds, the oldest datagram of all, so that the bound holds whatever happens.
    fn evict_for(&mut self, arriving: Consumer) {
        let chosen = self.shares.victim(arriving).map(|(_, (_, key))| key);
        if chosen.is_some_and(|key| self.forget(key)) {
            self.counters.evicted += 1;
            return;
        }
        while let Some((generation, key)) = self.order.pop_front() {
            if self
                .datagrams
                .get(&key)
                .is_some_and(|d| d.generation == generation)
            {
                self.forget(key);
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

    fn parsed(bytes: &[u8]) -> IpSummary {
        IpSummary::parse(bytes).expect("valid fragment")
    }

    /// The NIC the fragments arrive on.
    const NIC: u8 = 1;

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
        table.record_first(
            NIC,
            &parsed(&first),
            "nic0 via 10.0.2.2, src 10.0.2.15",
            at(0),
        );
        assert_eq!(
            table.follow(NIC, &parsed(&middle), at(1)).ok(),
            Some("nic0 via 10.0.2.2, src 10.0.2.15")
        );
        assert_eq!(
            table.follow(NIC, &parsed(&last), at(2)).ok(),
            Some("nic0 via 10.0.2.2, src 10.0.2.15")
        );
        assert_eq!(table.counters().followed, 2);
    }

    #[test]
    fn non_first_fragment_without_first_is_dropped() {
        let [_, middle, _] = udp_fragments(7);
        let mut table: FragmentTable<u8> = FragmentTable::new();
        assert_eq!(table.follow(NIC, &parsed(&middle), at(0)).ok(), None);
        assert_eq!(table.counters().orphans_dropped, 1);
    }

    #[test]
    fn later_fragment_before_its_first_is_dropped() {
        let [first, middle, last] = udp_fragments(7);
        let mut table = FragmentTable::new();
        assert_eq!(
            table.follow(NIC, &parsed(&last), at(0)).ok(),
            None,
            "arrived before the first"
        );
        table.record_first(NIC, &parsed(&first), 1u8, at(1));
        assert_eq!(table.follow(NIC, &parsed(&middle), at(2)).ok(), Some(1));
    }

    #[test]
    fn fragment_of_another_datagram_does_not_follow() {
        let [first, _, _] = udp_fragments(7);
        let [_, other_middle, _] = udp_fragments(8);
        let mut table = FragmentTable::new();
        table.record_first(NIC, &parsed(&first), 1u8, at(0));
        assert_eq!(table.follow(NIC, &parsed(&other_middle), at(1)).ok(), None);
        // Same identification, other protocol: another datagram too.
        let mut tcp_like = udp_fragments(7)[1].clone();
        Ipv4Packet::new_unchecked(&mut tcp_like[..]).set_next_header(IpProtocol::Tcp);
        packets::set_fragment(&mut tcp_like, true, 1480);
        assert_eq!(table.follow(NIC, &parsed(&tcp_like), at(1)).ok(), None);
    }

    #[test]
    fn datagram_is_forgotten_after_its_lifetime() {
        let [first, middle, _] = udp_fragments(7);
        let mut table = FragmentTable::new();
        table.record_first(NIC, &parsed(&first), 1u8, at(0));
        let lifetime_ms = LIFETIME.total_millis() as i64;
        assert_eq!(
            table
                .follow(NIC, &parsed(&middle), at(lifetime_ms - 1))
                .ok(),
            Some(1)
        );
        assert_eq!(
            table.follow(NIC, &parsed(&middle), at(lifetime_ms)).ok(),
            None
        );
        assert!(table.is_empty());
    }

    #[test]
    fn periodic_expiry_empties_an_idle_table() {
        let mut table = FragmentTable::new();
        for ident in 0..10 {
            table.record_first(
                NIC,
                &parsed(&udp_fragments(ident)[0]),
                ident,
                at(ident as i64),
            );
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
        table.record_first(NIC, &parsed(&first), 1u8, at(0));
        // Last before middle: length known, not yet covered.
        table.follow(NIC, &parsed(&last), at(1)).ok();
        assert_eq!(table.len(), 1);
        table.follow(NIC, &parsed(&middle), at(2)).ok();
        assert!(table.is_empty(), "every byte forwarded");
        assert_eq!(
            table.follow(NIC, &parsed(&middle), at(3)).ok(),
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
            table.record_first(NIC, first, i, at(i as i64));
        }
        assert_eq!(table.len(), MAX_DATAGRAMS);
        assert_eq!(table.counters().evicted, 1);
        let middle_of = |ident: u16| parsed(&udp_fragments(ident)[1]);
        assert_eq!(
            table.follow(NIC, &middle_of(0), at(2000)).ok(),
            None,
            "the oldest was evicted"
        );
        assert_eq!(table.follow(NIC, &middle_of(1), at(2000)).ok(), Some(1));
        assert_eq!(
            table
                .follow(NIC, &middle_of(MAX_DATAGRAMS as u16), at(2000))
                .ok(),
            Some(MAX_DATAGRAMS)
        );
    }

    /// Summaries of the first and middle fragments of datagrams from any source.
    struct Datagrams {
        first: IpSummary,
        middle: IpSummary,
    }

    impl Datagrams {
        fn new() -> Datagrams {
            let [first, middle, _] = udp_fragments(0);
            Datagrams {
                first: parsed(&first),
                middle: parsed(&middle),
            }
        }

        /// The first and middle fragments of datagram `ident` from `src` (the table reads
        /// nothing but their headers).
        fn from(&self, src: [u8; 4], ident: u16) -> (IpSummary, IpSummary) {
            let moved = |summary: IpSummary| IpSummary {
                src: smoltcp::wire::Ipv4Address::from(src).into(),
                ident: ident.into(),
                ..summary
            };
            (moved(self.first), moved(self.middle))
        }
    }

    #[test]
    fn full_table_takes_from_the_biggest_consumer_never_a_quiet_one() {
        let datagrams = Datagrams::new();
        let mut table = FragmentTable::new();
        let (quiet_first, quiet_middle) = datagrams.from([10, 137, 1, 11], 1);
        table.record_first(NIC, &quiet_first, "quiet", at(0));
        let noisy: alloc::vec::Vec<_> = (0..=MAX_DATAGRAMS as u16)
            .map(|ident| datagrams.from([10, 137, 1, 10], ident))
            .collect();
        for (ident, (first, _)) in noisy.iter().enumerate() {
            table.record_first(NIC, first, "noisy", at(1 + ident as i64));
        }
        assert_eq!(table.len(), MAX_DATAGRAMS);
        assert_eq!(table.counters().evicted, 2);
        assert_eq!(table.follow(NIC, &quiet_middle, at(5000)), Ok("quiet"));
        assert_eq!(
            table.follow(NIC, &noisy[0].1, at(5000)),
            Err(Refused::Orphan)
        );
        assert_eq!(
            table.follow(NIC, &noisy[1].1, at(5000)),
            Err(Refused::Orphan)
        );
        assert_eq!(table.follow(NIC, &noisy[2].1, at(5000)), Ok("noisy"));
    }

    #[test]
    fn among_consumers_equally_big_the_oldest_datagram_goes() {
        let datagrams = Datagrams::new();
        let mut table = FragmentTable::new();
        let sources: alloc::vec::Vec<_> = (0..=MAX_DATAGRAMS as u32)
            .map(|i| datagrams.from((0x0a00_0000 + i).to_be_bytes(), 1))
            .collect();
        for (i, (first, _)) in sources.iter().enumerate() {
            table.record_first(NIC, first, i, at(i as i64));
        }
        assert_eq!(
            table.follow(NIC, &sources[0].1, at(5000)),
            Err(Refused::Orphan)
        );
        assert_eq!(table.follow(NIC, &sources[1].1, at(5000)), Ok(1));
    }

    #[test]
    fn a_flood_on_one_nic_never_evicts_another_nics_datagrams() {
        const UPLINK: u8 = 0;
        let datagrams = Datagrams::new();
        let mut table = FragmentTable::new();
        let (client_first, client_middle) = datagrams.from([10, 137, 1, 10], 1);
        table.record_first(NIC, &client_first, "client", at(0));
        // Random sources on the uplink, each with one datagram: individually as small as
        // the client, together the biggest consumer of the table.
        let mut rng = crate::rng::SplitMix64::new(7);
        for i in 0..2 * MAX_DATAGRAMS {
            let src = (rng.next_u64() as u32).to_be_bytes();
            table.record_first(UPLINK, &datagrams.from(src, 1).0, "flood", at(1 + i as i64));
        }
        assert_eq!(table.follow(NIC, &client_middle, at(5000)), Ok("client"));
        // The same datagram key arriving on another NIC is another datagram.
        assert_eq!(
            table.follow(UPLINK, &client_middle, at(5000)),
            Err(Refused::Orphan)
        );
    }

    #[test]
    fn bookkeeping_stays_bounded_under_a_random_source_flood() {
        let datagrams = Datagrams::new();
        let mut table = FragmentTable::new();
        let mut rng = crate::rng::SplitMix64::new(11);
        for i in 0..10 * MAX_DATAGRAMS {
            let src = (rng.next_u64() as u32).to_be_bytes();
            let (first, middle) = datagrams.from(src, i as u16);
            table.record_first(NIC, &first, (), at(i as i64));
            if i % 3 == 0 {
                // Some datagrams complete, leaving stale records behind.
                let _ = table.follow(NIC, &middle, at(i as i64));
            }
        }
        assert!(table.len() <= MAX_DATAGRAMS);
        assert!(table.shares.consumers() <= table.len());
        assert!(
            table.shares.records() <= 3 * table.len(),
            "{} records for {} datagrams",
            table.shares.records(),
            table.len()
        );
        assert!(table.order.len() <= 2 * MAX_DATAGRAMS + 1);
    }

    #[test]
    fn a_consumers_share_is_released_with_its_datagrams() {
        let mut table = FragmentTable::new();
        let client = Consumer {
            nic: NIC,
            src: smoltcp::wire::Ipv4Address::new(10, 137, 1, 10).into(),
        };
        let [first, middle, last] = udp_fragments(7);
        table.record_first(NIC, &parsed(&first), (), at(0));
        assert_eq!(table.shares.live(client), 1);
        let _ = table.follow(NIC, &parsed(&middle), at(1));
        let _ = table.follow(NIC, &parsed(&last), at(2));
        assert_eq!(table.shares.live(client), 0, "completed");
        table.record_first(NIC, &parsed(&first), (), at(3));
        table.expire(at(3) + LIFETIME);
        assert_eq!(table.shares.live(client), 0, "expired");
        assert_eq!(table.shares.consumers(), 0);
    }

    #[test]
    fn bookkeeping_stays_bounded_under_a_stream_of_completed_datagrams() {
        let mut table = FragmentTable::new();
        for ident in 0..(10 * MAX_DATAGRAMS) as u16 {
            let [first, middle, last] = udp_fragments(ident);
            table.record_first(NIC, &parsed(&first), (), at(0));
            table.follow(NIC, &parsed(&middle), at(0)).ok();
            table.follow(NIC, &parsed(&last), at(0)).ok();
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
        table.record_first(NIC, &parsed(&first), "old", at(0));
        table.record_first(NIC, &parsed(&first), "new", at(10_000));
        assert_eq!(table.len(), 1);
        // The old record's expiry must not forget the new datagram.
        assert_eq!(
            table.follow(NIC, &parsed(&middle), at(35_000)).ok(),
            Some("new")
        );
    }

    #[test]
    fn later_fragment_starting_inside_the_first_is_refused_and_its_datagram_forgotten() {
        let [first, middle, last] = udp_fragments(7);
        let mut table = FragmentTable::new();
        table.record_first(NIC, &parsed(&first), 1u8, at(0));
        let mut overlapping = middle.clone();
        packets::set_fragment(&mut overlapping, true, 1472);
        assert_eq!(
            table.follow(NIC, &parsed(&overlapping), at(1)),
            Err(Refused::Overlap)
        );
        assert!(table.is_empty());
        assert_eq!(
            table.follow(NIC, &parsed(&last), at(2)),
            Err(Refused::Orphan)
        );
        assert_eq!(table.counters().overlaps_dropped, 1);
    }

    #[test]
    fn whole_packets_and_first_fragments_are_not_followed_or_recorded() {
        let whole = parsed(&packets::udp([10, 137, 1, 10], 1, [1, 1, 1, 1], 2, b"x"));
        let [first, _, _] = udp_fragments(7);
        let mut table = FragmentTable::new();
        table.record_first(NIC, &whole, 1u8, at(0));
        assert!(table.is_empty());
        assert_eq!(table.follow(NIC, &parsed(&first), at(0)).ok(), None);
    }
}
