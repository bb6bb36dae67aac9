//! The neighbour table: IP address → MAC per NIC, with a bounded queue of packets waiting
//! for a neighbour to answer. One implementation serves both families: ARP's table is
//! `NeighborTable<Ipv4Address>` (the default), IPv6 neighbour discovery's (RFC 4861's
//! neighbour cache, [`crate::ndp`]) is `NeighborTable<Ipv6Address>` — the states below
//! are RFC 4861's REACHABLE, STALE, DELAY/PROBE and INCOMPLETE, and "ARP request" reads
//! "neighbour solicitation" there (a broadcast is a solicitation to the solicited-node
//! multicast group).
//!
//! # Reachability (Linux's NUD states, simplified)
//! An entry learned or confirmed by ARP is **reachable** for [`REACHABLE_TIME`]: packets go
//! to its MAC without question. After that it is **stale** until [`LIFETIME`]: packets still
//! go to its MAC, but the first one sent ([`NeighborTable::resolve`]) starts a **probe** —
//! [`UNICAST_PROBES`] ARP requests sent to the known MAC, [`REQUEST_INTERVAL`] apart, packets
//! still flowing meanwhile. A neighbour that answers is reachable again (at whatever MAC it
//! answers from); one that does not is asked by broadcast ([`MAX_REQUESTS`] times, packets
//! now queued), in case it moved to another MAC, and then given up: its queue is dropped.
//! An entry past its [`LIFETIME`] is resolved again by broadcast on its next use. The caller
//! can also start a probe itself ([`NeighborTable::probe`]), e.g. for a gateway that has
//! gone silent. An ARP message from the neighbour (a reply, a request, a gratuitous ARP)
//! confirms it at once, with the MAC it carries.
//!
//! # Bounds
//! A flood of packets to unresolvable addresses must not eat memory: at most
//! [`MAX_PENDING_PER_NEIGHBOR`] packets wait for one neighbour and [`MAX_PENDING_TOTAL`]
//! for all of them. At most [`MAX_ENTRIES`] entries exist; when full, the stalest resolved
//! entry makes room. Entries unused for twice their lifetime are removed by
//! [`NeighborTable::poll`].

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, Ipv4Address};

/// How long a confirmed MAC is used without question.
pub const REACHABLE_TIME: Duration = Duration::from_secs(30);
/// How long a MAC is trusted at all after its last confirmation (stale entries are verified
/// on use until then; afterwards they are resolved again).
pub const LIFETIME: Duration = Duration::from_secs(60);
/// Time between ARP requests (unicast probes and broadcasts alike).
pub const REQUEST_INTERVAL: Duration = Duration::from_millis(1000);
/// ARP requests sent to a stale entry's MAC before asking by broadcast.
pub const UNICAST_PROBES: u8 = 3;
/// Broadcast ARP requests sent before giving up on a neighbour.
pub const MAX_REQUESTS: u8 = 3;
/// Packets queued for one unresolved neighbour.
pub const MAX_PENDING_PER_NEIGHBOR: usize = 4;
/// Packets queued for all unresolved neighbours together.
pub const MAX_PENDING_TOTAL: usize = 64;
/// Entries in the table.
pub const MAX_ENTRIES: usize = 4096;

/// A neighbour is identified by the NIC it is on and its address.
pub type NeighborKey<A = Ipv4Address> = (u8, A);

#[derive(Debug)]
enum Entry {
    Resolved {
        mac: EthernetAddress,
        /// When an ARP message from the neighbour last confirmed `mac`.
        confirmed: Instant,
        /// When a packet was last sent to it.
        used: Instant,
        /// Unicast probes sent so far and when the next one is due, while verifying.
        probe: Option<(u8, Instant)>,
    },
    Incomplete {
        queue: VecDeque<Vec<u8>>,
        requests_sent: u8,
        next_request: Instant,
    },
}

/// What happened to a packet handed to [`NeighborTable::enqueue`].
#[derive(Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// Queued, and an ARP request should be sent now (first packet for this neighbour).
    SendRequest,
    /// Queued behind an outstanding request.
    Queued,
    /// Dropped: a queue bound was reached.
    Dropped,
}

/// Where to send a packet for a neighbour ([`NeighborTable::resolve`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// To this MAC.
    Known(EthernetAddress),
    /// To this MAC, which is stale: also send it an ARP request (unicast) to verify it.
    Verify(EthernetAddress),
    /// Unknown: queue the packet ([`NeighborTable::enqueue`]) and ask.
    Unknown,
}

/// The ARP requests [`NeighborTable::poll`] wants sent, and the neighbours it gave up on.
#[derive(Debug, PartialEq, Eq)]
pub struct NeighborWork<A = Ipv4Address> {
    /// Neighbours to ask for by broadcast.
    pub broadcast: Vec<NeighborKey<A>>,
    /// Neighbours to ask at the MAC they had (probes).
    pub unicast: Vec<(NeighborKey<A>, EthernetAddress)>,
    /// Neighbours that never answered, with how many packets were waiting for them.
    pub gave_up: Vec<(NeighborKey<A>, usize)>,
}

impl<A> Default for NeighborWork<A> {
    fn default() -> Self {
        NeighborWork {
            broadcast: Vec::new(),
            unicast: Vec::new(),
            gave_up: Vec::new(),
        }
    }
}

/// The table. See the module documentation.
#[derive(Debug)]
pub struct NeighborTable<A = Ipv4Address> {
    entries: BTreeMap<NeighborKey<A>, Entry>,
    pending_total: usize,
}

impl<A> Default for NeighborTable<A> {
    fn default() -> Self {
        NeighborTable {
            entries: BTreeMap::new(),
            pending_total: 0,
        }
    }
}

impl<A: Copy + Ord> NeighborTable<A> {
    /// An empty table.
    pub fn new() -> NeighborTable<A> {
        NeighborTable::default()
    }

    /// The MAC of a resolved neighbour confirmed within its [`LIFETIME`] (reachable or
    /// stale). Changes nothing: what the appliance believes, without asking.
    pub fn lookup(&self, key: NeighborKey<A>, now: Instant) -> Option<EthernetAddress> {
        match self.entries.get(&key) {
            Some(Entry::Resolved { mac, confirmed, .. }) if now < *confirmed + LIFETIME => {
                Some(*mac)
            }
            _ => None,
        }
    }

    /// The MAC last learned for `key`, however old.
    pub fn mac_of(&self, key: NeighborKey<A>) -> Option<EthernetAddress> {
        match self.entries.get(&key) {
            Some(Entry::Resolved { mac, .. }) => Some(*mac),
            _ => None,
        }
    }

    /// Where to send a packet for `key` now (see [`Resolution`]); records the use. The first
    /// use of a stale entry starts its probe.
    pub fn resolve(&mut self, key: NeighborKey<A>, now: Instant) -> Resolution {
        let Some(Entry::Resolved {
            mac,
            confirmed,
            used,
            probe,
        }) = self.entries.get_mut(&key)
        else {
            return Resolution::Unknown;
        };
        if probe.is_some() || now < *confirmed + REACHABLE_TIME {
            *used = now;
            Resolution::Known(*mac)
        } else if now < *confirmed + LIFETIME {
            *used = now;
            *probe = Some((1, now + REQUEST_INTERVAL));
            Resolution::Verify(*mac)
        } else {
            Resolution::Unknown
        }
    }

    /// Starts verifying `key` now, whatever its age: returns the MAC to send a unicast ARP
    /// request to, or `None` if the entry is not resolved, past its lifetime, or already
    /// being verified. Packets keep going to the MAC meanwhile.
    pub fn probe(&mut self, key: NeighborKey<A>, now: Instant) -> Option<EthernetAddress> {
        match self.entries.get_mut(&key) {
            Some(Entry::Resolved {
                mac,
                confirmed,
                probe: probe @ None,
                ..
            }) if now < *confirmed + LIFETIME => {
                *probe = Some((1, now + REQUEST_INTERVAL));
                Some(*mac)
            }
            _ => None,
        }
    }

    /// Whether a packet was sent to `key` after `since`.
    pub fn used_since(&self, key: NeighborKey<A>, since: Instant) -> bool {
        matches!(self.entries.get(&key), Some(Entry::Resolved { used, .. }) if *used > since)
    }

    /// Records `mac` for `key` (confirmed now); returns the packets that were waiting for
    /// it, in order.
    pub fn learn(
        &mut self,
        key: NeighborKey<A>,
        mac: EthernetAddress,
        now: Instant,
    ) -> Vec<Vec<u8>> {
        if !self.entries.contains_key(&key) && self.entries.len() >= MAX_ENTRIES {
            self.evict_stalest();
        }
        let used = match self.entries.get(&key) {
            Some(Entry::Resolved { used, .. }) => *used,
            _ => now,
        };
        let resolved = Entry::Resolved {
            mac,
            confirmed: now,
            used,
            probe: None,
        };
        match self.entries.insert(key, resolved) {
            Some(Entry::Incomplete { queue, .. }) => {
                self.pending_total -= queue.len();
                queue.into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    /// Confirms a resolved entry from traffic the neighbour sent from `mac` (an IP packet,
    /// as Linux's upper-layer reachability confirmation): still at that MAC, it is
    /// reachable again, its binding renewed for another [`LIFETIME`]. Nothing happens for
    /// another MAC, an unresolved or an unknown neighbour.
    pub fn confirm(&mut self, key: NeighborKey<A>, mac: EthernetAddress, now: Instant) {
        if let Some(Entry::Resolved {
            mac: known,
            confirmed,
            probe,
            ..
        }) = self.entries.get_mut(&key)
        {
            if *known == mac {
                *confirmed = now;
                *probe = None;
            }
        }
    }

    /// Updates an existing entry's MAC (from traffic the neighbour sent us) without creating
    /// new entries; returns packets released if it was waiting.
    pub fn refresh(
        &mut self,
        key: NeighborKey<A>,
        mac: EthernetAddress,
        now: Instant,
    ) -> Vec<Vec<u8>> {
        if self.entries.contains_key(&key) {
            self.learn(key, mac, now)
        } else {
            Vec::new()
        }
    }

    /// Queues `packet` (an IP packet without link header) until `key` is resolved.
    pub fn enqueue(&mut self, key: NeighborKey<A>, packet: &[u8], now: Instant) -> Enqueued {
        if self.pending_total >= MAX_PENDING_TOTAL {
            return Enqueued::Dropped;
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= MAX_ENTRIES {
            self.evict_stalest();
        }
        let entry = self
            .entries
            .entry(key)
            .or_insert_with(|| Entry::Incomplete {
                queue: VecDeque::new(),
                requests_sent: 0,
                next_request: now,
            });
        if let Entry::Resolved { confirmed, .. } = entry {
            if now < *confirmed + LIFETIME {
                // Caller raced a resolution: it should have sent directly; let it retry.
                return Enqueued::Dropped;
            }
            *entry = Entry::Incomplete {
                queue: VecDeque::new(),
                requests_sent: 0,
                next_request: now,
            };
        }
        let Entry::Incomplete {
            queue,
            requests_sent,
            next_request,
        } = entry
        else {
            return Enqueued::Dropped;
        };
        if queue.len() >= MAX_PENDING_PER_NEIGHBOR {
            return Enqueued::Dropped;
        }
        queue.push_back(packet.to_vec());
        self.pending_total += 1;
        if *requests_sent == 0 {
            *requests_sent = 1;
            *next_request = now + REQUEST_INTERVAL;
            Enqueued::SendRequest
        } else {
            Enqueued::Queued
        }
    }

    /// Housekeeping: the ARP requests to send now (probes of stale entries, broadcasts for
    /// unresolved ones), the neighbours given up on (their queues dropped), and old entries
    /// removed.
    pub fn poll(&mut self, now: Instant) -> NeighborWork<A> {
        let mut work = NeighborWork::default();
        let mut gave_up = Vec::new();
        for (key, entry) in self.entries.iter_mut() {
            match entry {
                Entry::Resolved {
                    mac,
                    probe: Some((sent, next)),
                    ..
                } if *next <= now => {
                    if *sent < UNICAST_PROBES {
                        *sent += 1;
                        *next = now + REQUEST_INTERVAL;
                        work.unicast.push((*key, *mac));
                    } else {
                        // Silent at its MAC: ask everyone, in case it moved.
                        *entry = Entry::Incomplete {
                            queue: VecDeque::new(),
                            requests_sent: 1,
                            next_request: now + REQUEST_INTERVAL,
                        };
                        work.broadcast.push(*key);
                    }
                }
                Entry::Incomplete {
                    requests_sent,
                    next_request,
                    ..
                } if *next_request <= now => {
                    if *requests_sent >= MAX_REQUESTS {
                        gave_up.push(*key);
                    } else {
                        *requests_sent += 1;
                        *next_request = now + REQUEST_INTERVAL;
                        work.broadcast.push(*key);
                    }
                }
                _ => {}
            }
        }
        for key in gave_up {
            if let Some(Entry::Incomplete { queue, .. }) = self.entries.remove(&key) {
                work.gave_up.push((key, queue.len()));
                self.pending_total -= queue.len();
            }
        }
        // Entries unconfirmed for twice their lifetime go, to keep the table small.
        self.entries.retain(|_, e| {
            !matches!(e, Entry::Resolved { confirmed, probe: None, .. }
                if *confirmed + LIFETIME * 2 <= now)
        });
        work
    }

    /// The earliest time [`NeighborTable::poll`] has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter_map(|e| match e {
                Entry::Incomplete { next_request, .. } => Some(*next_request),
                Entry::Resolved { probe, .. } => probe.map(|(_, next)| next),
            })
            .min()
    }

    /// Forgets every neighbour on `nic` (its network changed); returns how many queued
    /// packets were dropped with them.
    pub fn flush_nic(&mut self, nic: u8) -> usize {
        let mut dropped = 0;
        self.entries.retain(|(on, _), entry| {
            if *on != nic {
                return true;
            }
            if let Entry::Incomplete { queue, .. } = entry {
                dropped += queue.len();
            }
            false
        });
        self.pending_total -= dropped;
        dropped
    }

    /// Packets currently waiting for resolution.
    pub fn pending(&self) -> usize {
        self.pending_total
    }

    /// Entries in the table.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn evict_stalest(&mut self) {
        let stalest = self
            .entries
            .iter()
            .filter_map(|(k, e)| match e {
                Entry::Resolved { confirmed, .. } => Some((*confirmed, *k)),
                Entry::Incomplete { .. } => None,
            })
            .min();
        if let Some((_, key)) = stalest {
            self.entries.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    const HOST: Ipv4Address = Ipv4Address::new(10, 137, 1, 10);

    fn t(ms: i64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn first_packet_for_unknown_neighbor_asks_and_queues() {
        let mut table = NeighborTable::new();
        assert_eq!(table.enqueue((1, HOST), b"p1", t(0)), Enqueued::SendRequest);
        assert_eq!(table.enqueue((1, HOST), b"p2", t(1)), Enqueued::Queued);
        assert_eq!(table.pending(), 2);
        assert_eq!(table.lookup((1, HOST), t(2)), None);
    }

    #[test]
    fn learning_releases_queued_packets_in_order() {
        let mut table = NeighborTable::new();
        table.enqueue((1, HOST), b"p1", t(0));
        table.enqueue((1, HOST), b"p2", t(0));
        let released = table.learn((1, HOST), MAC, t(5));
        assert_eq!(released, vec![b"p1".to_vec(), b"p2".to_vec()]);
        assert_eq!(table.pending(), 0);
        assert_eq!(table.lookup((1, HOST), t(6)), Some(MAC));
    }

    #[test]
    fn per_neighbor_queue_is_bounded() {
        let mut table = NeighborTable::new();
        for _ in 0..MAX_PENDING_PER_NEIGHBOR {
            assert_ne!(table.enqueue((1, HOST), b"p", t(0)), Enqueued::Dropped);
        }
        assert_eq!(table.enqueue((1, HOST), b"p", t(0)), Enqueued::Dropped);
    }

    #[test]
    fn total_queue_is_bounded_across_neighbors() {
        let mut table = NeighborTable::new();
        let mut queued = 0;
        for host in 0..=255u8 {
            for _ in 0..MAX_PENDING_PER_NEIGHBOR {
                if table.enqueue((1, Ipv4Address::new(10, 0, 0, host)), b"p", t(0))
                    != Enqueued::Dropped
                {
                    queued += 1;
                }
            }
        }
        assert_eq!(queued, MAX_PENDING_TOTAL);
        assert_eq!(table.pending(), MAX_PENDING_TOTAL);
    }

    #[test]
    fn unanswered_neighbor_is_asked_again_then_dropped() {
        let mut table = NeighborTable::new();
        table.enqueue((1, HOST), b"p", t(0));
        assert_eq!(table.poll(t(500)), NeighborWork::default());
        assert_eq!(table.poll(t(1000)), broadcast(&[(1, HOST)]));
        assert_eq!(table.poll(t(2000)), broadcast(&[(1, HOST)]));
        let work = table.poll(t(3000));
        assert_eq!(work.gave_up, [((1, HOST), 1)]);
        assert_eq!(table.pending(), 0);
        assert!(table.is_empty());
    }

    fn broadcast(keys: &[NeighborKey]) -> NeighborWork {
        NeighborWork {
            broadcast: keys.to_vec(),
            ..NeighborWork::default()
        }
    }

    const NEW_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x99]);

    #[test]
    fn a_reachable_entry_is_used_without_question() {
        let mut table = NeighborTable::new();
        table.learn((1, HOST), MAC, t(0));
        assert_eq!(table.resolve((1, HOST), t(29_999)), Resolution::Known(MAC));
        assert_eq!(table.poll(t(29_999)), NeighborWork::default());
        assert_eq!(table.next_deadline(), None);
    }

    #[test]
    fn a_stale_entry_in_use_is_probed_at_its_mac_then_by_broadcast_then_given_up() {
        let mut table = NeighborTable::new();
        table.learn((1, HOST), MAC, t(0));
        assert_eq!(table.resolve((1, HOST), t(30_000)), Resolution::Verify(MAC));
        // Packets keep going to the MAC while it is probed.
        assert_eq!(table.resolve((1, HOST), t(30_100)), Resolution::Known(MAC));
        assert_eq!(table.next_deadline(), Some(t(31_000)));
        for at in [31_000, 32_000] {
            let work = table.poll(t(at));
            assert_eq!(work.unicast, [((1, HOST), MAC)], "at {at} ms");
        }
        assert_eq!(table.poll(t(33_000)), broadcast(&[(1, HOST)]));
        // Now unresolved: packets wait for an answer.
        assert_eq!(table.resolve((1, HOST), t(33_100)), Resolution::Unknown);
        assert_eq!(table.enqueue((1, HOST), b"p", t(33_100)), Enqueued::Queued);
        assert_eq!(table.poll(t(34_000)), broadcast(&[(1, HOST)]));
        assert_eq!(table.poll(t(35_000)), broadcast(&[(1, HOST)]));
        assert_eq!(table.poll(t(36_000)).gave_up, [((1, HOST), 1)]);
        assert!(table.is_empty());
    }

    #[test]
    fn a_probed_neighbor_that_answers_from_a_new_mac_is_used_there() {
        let mut table = NeighborTable::new();
        table.learn((1, HOST), MAC, t(0));
        assert_eq!(table.probe((1, HOST), t(5_000)), Some(MAC));
        assert_eq!(
            table.probe((1, HOST), t(5_100)),
            None,
            "one probe at a time"
        );
        table.refresh((1, HOST), NEW_MAC, t(5_200));
        assert_eq!(
            table.resolve((1, HOST), t(5_300)),
            Resolution::Known(NEW_MAC)
        );
        assert_eq!(table.next_deadline(), None);
    }

    #[test]
    fn an_entry_past_its_lifetime_is_resolved_again() {
        let mut table = NeighborTable::new();
        table.learn((1, HOST), MAC, t(0));
        assert_eq!(table.resolve((1, HOST), t(60_000)), Resolution::Unknown);
        assert_eq!(table.probe((1, HOST), t(60_000)), None);
        assert_eq!(
            table.enqueue((1, HOST), b"p", t(60_000)),
            Enqueued::SendRequest
        );
    }

    #[test]
    fn uses_are_recorded_but_probes_are_not_uses() {
        let mut table = NeighborTable::new();
        table.learn((1, HOST), MAC, t(0));
        assert!(!table.used_since((1, HOST), t(0)));
        table.probe((1, HOST), t(1_000));
        assert!(!table.used_since((1, HOST), t(0)));
        table.resolve((1, HOST), t(2_000));
        assert!(table.used_since((1, HOST), t(1_999)));
        assert!(!table.used_since((1, HOST), t(2_000)));
    }

    #[test]
    fn flushing_a_nic_forgets_its_neighbors_and_drops_their_queues() {
        let mut table = NeighborTable::new();
        table.learn((0, HOST), MAC, t(0));
        table.enqueue((0, Ipv4Address::new(10, 0, 2, 9)), b"p", t(0));
        table.learn((1, HOST), MAC, t(0));
        assert_eq!(table.flush_nic(0), 1);
        assert_eq!((table.len(), table.pending()), (1, 0));
        assert_eq!(table.mac_of((1, HOST)), Some(MAC));
    }

    #[test]
    fn learned_entries_expire() {
        let mut table = NeighborTable::new();
        table.learn((1, HOST), MAC, t(0));
        assert_eq!(table.lookup((1, HOST), t(59_999)), Some(MAC));
        assert_eq!(table.lookup((1, HOST), t(60_000)), None);
    }

    #[test]
    fn traffic_from_the_known_mac_renews_an_entry_and_ends_its_probe() {
        let mut table = NeighborTable::new();
        table.learn((1, HOST), MAC, t(0));
        assert_eq!(table.resolve((1, HOST), t(40_000)), Resolution::Verify(MAC));
        table.confirm((1, HOST), MAC, t(55_000));
        assert_eq!(table.lookup((1, HOST), t(114_999)), Some(MAC));
        assert_eq!(table.next_deadline(), None, "no probe left");
        // Another MAC confirms nothing.
        table.confirm((1, HOST), NEW_MAC, t(100_000));
        assert_eq!(table.lookup((1, HOST), t(115_000)), None);
        // Nor does traffic create an entry.
        table.confirm((1, Ipv4Address::new(10, 137, 1, 99)), MAC, t(0));
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn refresh_does_not_create_entries() {
        let mut table = NeighborTable::new();
        table.refresh((1, HOST), MAC, t(0));
        assert!(table.is_empty());
    }
}
