//! The neighbour table: IP address → MAC per NIC, with a bounded queue of packets waiting
//! for a neighbour to answer. One implementation serves both families: ARP's table is
//! `NeighborTable<Ipv4Address>` (the default), IPv6 neighbour discovery's (RFC 4861's
//! neighbour cache, [`crate::ndp`]) is `NeighborTable<Ipv6Address>` — the states below
//! are RFC 4861's REACHABLE, STALE, DELAY/PROBE and INCOMPLETE, "ARP request" reads
//! "neighbour solicitation" there, and a broadcast is a solicitation to the
//! solicited-node multicast group. The shares are the same too.
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
//! A router is also confirmed by the frames it forwards ([`NeighborTable::saw_frame_from`]):
//! their source addresses are other hosts', so without this only ARP would keep it
//! reachable — and a flood on its link can drop the replies to every probe of a router that
//! never stopped forwarding, after which the appliance would give it up and hold everyone's
//! traffic for it until a later request got through.
//!
//! # Bounds and shares
//! A flood of packets to unresolvable addresses must neither eat memory nor starve anyone
//! else's resolution ([`crate::share`]):
//! - at most [`MAX_PENDING_PER_NEIGHBOR`] packets wait for one neighbour, and
//!   [`MAX_PENDING_TOTAL`] for all of them (the newest is dropped beyond either);
//! - at most [`MAX_RESOLVING`] neighbours are being resolved at once for the sources whose
//!   packets go to them, of which one source (a client, or a NIC's remote side) holds at most
//!   [`MAX_RESOLVING_PER_SOURCE`]. A source over its share gives up its own oldest resolution
//!   for a new one — at most that many new ones per [`REQUEST_INTERVAL`] — and when all
//!   are taken, the source holding the most gives up its oldest. So a new destination is
//!   always asked for at once, unless its own source is asking too fast;
//! - the **configured next hops** ([`NeighborTable::set_configured`]: the gateways, the
//!   upstream resolvers, DHCP servers, declared clients) are outside every share: their
//!   resolution is never refused or displaced, they queue up to [`MAX_PENDING_PER_NEXT_HOP`]
//!   packets of their own, and their entries are never evicted. Refreshing a known entry
//!   (probes, and the broadcasts that follow them) never depends on queue space either.
//!
//! At most [`MAX_ENTRIES`] entries exist; when full, the stalest resolved entry that is not
//! a configured next hop makes room. Entries unused for twice their lifetime are removed by
//! [`NeighborTable::poll`].

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, Ipv4Address};

use crate::share::SourceClass;

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
/// Packets queued for one unresolved configured next hop (everyone's traffic waits there).
pub const MAX_PENDING_PER_NEXT_HOP: usize = 16;
/// Neighbours being resolved at once for sources (configured next hops not counted).
pub const MAX_RESOLVING: usize = 32;
/// Of [`MAX_RESOLVING`], what one source class may hold.
pub const MAX_RESOLVING_PER_SOURCE: usize = 8;
/// Packets queued for all neighbours that are not configured next hops, together.
pub const MAX_PENDING_TOTAL: usize = MAX_RESOLVING * MAX_PENDING_PER_NEIGHBOR;
/// Entries in the table.
pub const MAX_ENTRIES: usize = 4096;
/// How often frames from a router's MAC confirm it, at most.
pub const ROUTER_SIGHTING_INTERVAL: Duration = Duration::from_secs(1);

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
        /// Whether it is a configured next hop (its queue is outside the shared bound).
        next_hop: bool,
    },
}

impl Entry {
    /// A new unresolved entry whose first request is sent now (`requests_sent` 1).
    fn asking(now: Instant, next_hop: bool) -> Entry {
        Entry::Incomplete {
            queue: VecDeque::new(),
            requests_sent: 1,
            next_request: now + REQUEST_INTERVAL,
            next_hop,
        }
    }
}

/// What happened to a packet handed to [`NeighborTable::enqueue`].
#[derive(Debug, PartialEq, Eq)]
pub enum Enqueued<A = Ipv4Address> {
    /// An ARP request should be sent now (a new resolution); the packet was queued unless
    /// the shared queue bound was reached (`queued`). `displaced`: another resolution was
    /// given up to make room, with this many packets that were waiting for it.
    SendRequest {
        /// Whether the packet was queued.
        queued: bool,
        /// The resolution given up, and its dropped packets.
        displaced: Option<(NeighborKey<A>, usize)>,
    },
    /// Queued behind an outstanding request.
    Queued,
    /// Dropped: a queue bound was reached, or the packet's source starts resolutions
    /// faster than its share allows.
    Dropped,
}

/// A resolution started for a source (see the module documentation).
#[derive(Clone, Copy, Debug)]
struct Resolving<A> {
    key: NeighborKey<A>,
    class: SourceClass<A>,
    since: Instant,
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
    /// The configured next hops, sorted.
    configured: Vec<NeighborKey<A>>,
    /// Resolutions started for sources, oldest first (at most [`MAX_RESOLVING`]).
    resolving: Vec<Resolving<A>>,
    /// Packets waiting, for neighbours that are not configured next hops.
    pending_shared: usize,
    /// Packets waiting for configured next hops.
    pending_next_hops: usize,
    /// The routers ([`NeighborTable::set_routers`]), each with when a frame from its MAC
    /// last confirmed it.
    routers: Vec<(NeighborKey<A>, Option<Instant>)>,
}

impl<A> Default for NeighborTable<A> {
    fn default() -> Self {
        NeighborTable {
            entries: BTreeMap::new(),
            configured: Vec::new(),
            resolving: Vec::new(),
            pending_shared: 0,
            pending_next_hops: 0,
            routers: Vec::new(),
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
            Some(Entry::Incomplete {
                queue, next_hop, ..
            }) => {
                self.forget_resolving(key);
                self.count_pending(next_hop, -(queue.len() as isize));
                queue.into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    /// Confirms a resolved entry from traffic the neighbour sent from `mac` (an IP packet,
    /// as Linux's upper-layer reachability confirmation): still at that MAC, it is
    /// reachable again, its binding renewed for another [`LIFETIME`]. Nothing happens for
    /// another MAC, an unresolved or an unknown neighbour. Returns whether it confirmed.
    pub fn confirm(&mut self, key: NeighborKey<A>, mac: EthernetAddress, now: Instant) -> bool {
        match self.entries.get_mut(&key) {
            Some(Entry::Resolved {
                mac: known,
                confirmed,
                probe,
                ..
            }) if *known == mac => {
                *confirmed = now;
                *probe = None;
                true
            }
            _ => false,
        }
    }

    /// Makes `keys` the routers: the neighbours that forward other hosts' packets to the
    /// appliance (each NIC's gateway, the next hops toward the resolvers), which frames
    /// from their MAC confirm ([`NeighborTable::saw_frame_from`]).
    pub fn set_routers(&mut self, mut keys: Vec<NeighborKey<A>>) {
        keys.sort_unstable();
        keys.dedup();
        let before = core::mem::take(&mut self.routers);
        self.routers = keys
            .into_iter()
            .map(|key| {
                let seen = before.iter().find(|(k, _)| *k == key).and_then(|r| r.1);
                (key, seen)
            })
            .collect();
    }

    /// A frame carrying an IP packet came in on `nic` from `mac` (and passed the source
    /// checks): a router resolved at that MAC is there, and is confirmed as
    /// [`NeighborTable::confirm`] does — at most once per [`ROUTER_SIGHTING_INTERVAL`].
    pub fn saw_frame_from(&mut self, nic: u8, mac: EthernetAddress, now: Instant) {
        for index in 0..self.routers.len() {
            let (key, seen) = self.routers[index];
            if key.0 != nic || seen.is_some_and(|at| now < at + ROUTER_SIGHTING_INTERVAL) {
                continue;
            }
            if self.confirm(key, mac, now) {
                self.routers[index].1 = Some(now);
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

    /// Makes `keys` the configured next hops (see the module documentation): the gateways,
    /// upstream resolvers, DHCP servers and declared clients the appliance knows of now.
    pub fn set_configured(&mut self, mut keys: Vec<NeighborKey<A>>) {
        keys.sort_unstable();
        keys.dedup();
        self.configured = keys;
        let configured = &self.configured;
        self.resolving
            .retain(|r| configured.binary_search(&r.key).is_err());
    }

    /// Whether `key` is a configured next hop.
    pub fn is_configured(&self, key: NeighborKey<A>) -> bool {
        self.configured.binary_search(&key).is_ok()
    }

    /// Starts resolving the configured next hop `key` before any packet needs it (at boot,
    /// after an address change), so that the first packet through finds its MAC known.
    /// Returns whether to send a broadcast request now: not if `key` is not a configured
    /// next hop, or is known (within its lifetime) or being asked for already. Retries and
    /// giving up follow [`NeighborTable::poll`], as for a resolution a packet started.
    pub fn solicit(&mut self, key: NeighborKey<A>, now: Instant) -> bool {
        if !self.is_configured(key) {
            return false;
        }
        match self.entries.get(&key) {
            Some(Entry::Incomplete { .. }) => return false,
            Some(Entry::Resolved { confirmed, .. }) if now < *confirmed + LIFETIME => return false,
            _ => {}
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= MAX_ENTRIES {
            self.evict_stalest();
        }
        self.entries.insert(key, Entry::asking(now, true));
        true
    }

    /// Queues `packet` (an IP packet without link header), which `source` sent, until `key`
    /// is resolved; starts resolving `key` if nobody is (within `source`'s share, see the
    /// module documentation).
    pub fn enqueue(
        &mut self,
        key: NeighborKey<A>,
        packet: &[u8],
        now: Instant,
        source: impl Into<SourceClass<A>>,
    ) -> Enqueued<A> {
        match self.entries.get(&key) {
            Some(Entry::Incomplete { .. }) => {
                return if self.queue(key, packet) {
                    Enqueued::Queued
                } else {
                    Enqueued::Dropped
                };
            }
            // Caller raced a resolution: it should have sent directly; let it retry.
            Some(Entry::Resolved { confirmed, .. }) if now < *confirmed + LIFETIME => {
                return Enqueued::Dropped;
            }
            _ => {}
        }
        let next_hop = self.is_configured(key);
        let mut displaced = None;
        if !next_hop {
            let class = source.into();
            match self.make_room(class, now) {
                Room::Refused => return Enqueued::Dropped,
                Room::Free => {}
                Room::Displaced(victim, dropped) => displaced = Some((victim, dropped)),
            }
            self.resolving.push(Resolving {
                key,
                class,
                since: now,
            });
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= MAX_ENTRIES {
            self.evict_stalest();
        }
        self.entries.insert(key, Entry::asking(now, next_hop));
        let queued = self.queue(key, packet);
        Enqueued::SendRequest { queued, displaced }
    }

    /// Appends `packet` to `key`'s queue (an unresolved entry) if the bounds allow.
    fn queue(&mut self, key: NeighborKey<A>, packet: &[u8]) -> bool {
        let shared_full = self.pending_shared >= MAX_PENDING_TOTAL;
        let Some(Entry::Incomplete {
            queue, next_hop, ..
        }) = self.entries.get_mut(&key)
        else {
            return false;
        };
        let next_hop = *next_hop;
        let limit = if next_hop {
            MAX_PENDING_PER_NEXT_HOP
        } else {
            MAX_PENDING_PER_NEIGHBOR
        };
        if queue.len() >= limit || (!next_hop && shared_full) {
            return false;
        }
        queue.push_back(packet.to_vec());
        self.count_pending(next_hop, 1);
        true
    }

    /// Makes room for one more resolution for `class` (see the module documentation).
    fn make_room(&mut self, class: SourceClass<A>, now: Instant) -> Room<A> {
        let own = self.resolving.iter().filter(|r| r.class == class).count();
        let victim = if own >= MAX_RESOLVING_PER_SOURCE {
            let oldest = self.resolving.iter().find(|r| r.class == class);
            match oldest {
                Some(oldest) if now < oldest.since + REQUEST_INTERVAL => return Room::Refused,
                Some(oldest) => oldest.key,
                None => return Room::Free,
            }
        } else if self.resolving.len() >= MAX_RESOLVING {
            let biggest = self
                .resolving
                .iter()
                .map(|r| r.class)
                .max_by_key(|c| self.resolving.iter().filter(|r| r.class == *c).count());
            match biggest.and_then(|c| self.resolving.iter().find(|r| r.class == c)) {
                Some(oldest) => oldest.key,
                None => return Room::Free,
            }
        } else {
            return Room::Free;
        };
        let dropped = self.abandon(victim);
        Room::Displaced(victim, dropped)
    }

    /// Gives up resolving `key`: its entry and its queue go. Returns how many packets
    /// were dropped.
    fn abandon(&mut self, key: NeighborKey<A>) -> usize {
        self.forget_resolving(key);
        if !matches!(self.entries.get(&key), Some(Entry::Incomplete { .. })) {
            return 0;
        }
        let Some(Entry::Incomplete {
            queue, next_hop, ..
        }) = self.entries.remove(&key)
        else {
            return 0;
        };
        self.count_pending(next_hop, -(queue.len() as isize));
        queue.len()
    }

    fn forget_resolving(&mut self, key: NeighborKey<A>) {
        self.resolving.retain(|r| r.key != key);
    }

    fn count_pending(&mut self, next_hop: bool, change: isize) {
        let counter = if next_hop {
            &mut self.pending_next_hops
        } else {
            &mut self.pending_shared
        };
        *counter = counter.saturating_add_signed(change);
    }

    /// Housekeeping: the ARP requests to send now (probes of stale entries, broadcasts for
    /// unresolved ones), the neighbours given up on (their queues dropped), and old entries
    /// removed.
    pub fn poll(&mut self, now: Instant) -> NeighborWork<A> {
        let mut work = NeighborWork::default();
        let mut gave_up = Vec::new();
        let configured = &self.configured;
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
                        let next_hop = configured.binary_search(key).is_ok();
                        *entry = Entry::asking(now, next_hop);
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
            work.gave_up.push((key, self.abandon(key)));
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
        let keys: Vec<NeighborKey<A>> = self
            .entries
            .keys()
            .filter(|(on, _)| *on == nic)
            .copied()
            .collect();
        let dropped = keys.iter().map(|&key| self.abandon(key)).sum();
        self.entries.retain(|(on, _), _| *on != nic);
        dropped
    }

    /// Packets currently waiting for resolution.
    pub fn pending(&self) -> usize {
        self.pending_shared + self.pending_next_hops
    }

    /// Neighbours being resolved for sources (configured next hops not counted).
    pub fn resolving(&self) -> usize {
        self.resolving.len()
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
        let configured = &self.configured;
        let stalest = self
            .entries
            .iter()
            .filter(|(k, _)| configured.binary_search(k).is_err())
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

/// What [`NeighborTable::make_room`] did.
enum Room<A> {
    /// There was room.
    Free,
    /// This resolution was given up, with this many packets.
    Displaced(NeighborKey<A>, usize),
    /// The source starts resolutions faster than its share allows.
    Refused,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share::Source;

    const MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    const HOST: Ipv4Address = Ipv4Address::new(10, 137, 1, 10);
    /// The sender of the packets in these tests, unless said otherwise: a client.
    const CLIENT: Source = Source::neighbour(2, Ipv4Address::new(10, 137, 2, 10));
    /// A new resolution whose first packet was queued and that displaced nothing.
    const ASKED: Enqueued = Enqueued::SendRequest {
        queued: true,
        displaced: None,
    };

    fn t(ms: i64) -> Instant {
        Instant::from_millis(ms)
    }

    /// The `i`-th client of network 10.137.2.0/24 (on nic 2).
    fn client(i: u8) -> Source {
        Source::neighbour(2, Ipv4Address::new(10, 137, 2, i))
    }

    /// The `i`-th address of the uplink's network (on nic 0).
    fn uplink_host(i: u8) -> NeighborKey {
        (0, Ipv4Address::new(10, 0, 2, i))
    }

    impl NeighborTable {
        /// `enqueue` of a packet from [`CLIENT`].
        fn ask(&mut self, key: NeighborKey, packet: &[u8], now: Instant) -> Enqueued {
            self.enqueue(key, packet, now, CLIENT)
        }
    }

    #[test]
    fn first_packet_for_unknown_neighbor_asks_and_queues() {
        let mut table = NeighborTable::new();
        assert_eq!(table.ask((1, HOST), b"p1", t(0)), ASKED);
        assert_eq!(table.ask((1, HOST), b"p2", t(1)), Enqueued::Queued);
        assert_eq!(table.pending(), 2);
        assert_eq!(table.lookup((1, HOST), t(2)), None);
    }

    #[test]
    fn learning_releases_queued_packets_in_order() {
        let mut table = NeighborTable::new();
        table.ask((1, HOST), b"p1", t(0));
        table.ask((1, HOST), b"p2", t(0));
        let released = table.learn((1, HOST), MAC, t(5));
        assert_eq!(released, vec![b"p1".to_vec(), b"p2".to_vec()]);
        assert_eq!(table.pending(), 0);
        assert_eq!(table.lookup((1, HOST), t(6)), Some(MAC));
    }

    #[test]
    fn per_neighbor_queue_is_bounded() {
        let mut table = NeighborTable::new();
        for _ in 0..MAX_PENDING_PER_NEIGHBOR {
            assert_ne!(table.ask((1, HOST), b"p", t(0)), Enqueued::Dropped);
        }
        assert_eq!(table.ask((1, HOST), b"p", t(0)), Enqueued::Dropped);
    }

    #[test]
    fn total_queue_is_bounded_across_neighbors_and_sources() {
        let mut table = NeighborTable::new();
        for host in 0..=255u8 {
            for _ in 0..MAX_PENDING_PER_NEIGHBOR {
                table.enqueue(uplink_host(host), b"p", t(0), client(host));
            }
        }
        assert_eq!(table.resolving(), MAX_RESOLVING);
        assert_eq!(table.pending(), MAX_PENDING_TOTAL);
    }

    #[test]
    fn a_source_holds_its_share_of_resolutions_and_then_gives_up_its_own_oldest() {
        let mut table = NeighborTable::new();
        for host in 0..MAX_RESOLVING_PER_SOURCE as u8 {
            assert_eq!(table.ask(uplink_host(host), b"p", t(0)), ASKED);
        }
        // One more at once is refused: no request, nothing displaced.
        assert_eq!(table.ask(uplink_host(100), b"p", t(500)), Enqueued::Dropped);
        // Once its oldest has been asked for a while, it makes way for the new one.
        assert_eq!(
            table.ask(uplink_host(100), b"p", t(1000)),
            Enqueued::SendRequest {
                queued: true,
                displaced: Some((uplink_host(0), 1)),
            }
        );
        assert_eq!(table.resolving(), MAX_RESOLVING_PER_SOURCE);
        // Another source is not affected by any of this.
        assert_eq!(
            table.enqueue(uplink_host(200), b"p", t(1000), client(99)),
            ASKED
        );
    }

    #[test]
    fn when_every_resolution_is_taken_the_source_holding_most_gives_up_its_oldest() {
        let mut table = NeighborTable::new();
        // CLIENT holds 8; four others 6 each: 32 in all.
        for host in 0..8 {
            table.ask(uplink_host(host), b"p", t(0));
        }
        for other in 1..=4u8 {
            for n in 0..6 {
                table.enqueue(uplink_host(other * 10 + n), b"p", t(0), client(other));
            }
        }
        assert_eq!(table.resolving(), MAX_RESOLVING);
        assert_eq!(
            table.enqueue(uplink_host(200), b"p", t(1), client(50)),
            Enqueued::SendRequest {
                queued: true,
                displaced: Some((uplink_host(0), 1)),
            }
        );
    }

    #[test]
    fn configured_next_hops_are_resolved_outside_every_share() {
        let mut table = NeighborTable::new();
        let gateway = uplink_host(2);
        table.set_configured(vec![gateway]);
        for host in 0..=250u8 {
            for _ in 0..MAX_PENDING_PER_NEIGHBOR {
                table.enqueue(uplink_host(host + 3), b"p", t(0), client(host));
            }
        }
        assert_eq!(
            table.pending(),
            MAX_PENDING_TOTAL,
            "the shared bound is reached"
        );
        assert_eq!(table.ask(gateway, b"p", t(0)), ASKED);
        for _ in 1..MAX_PENDING_PER_NEXT_HOP {
            assert_eq!(table.ask(gateway, b"p", t(0)), Enqueued::Queued);
        }
        assert_eq!(table.ask(gateway, b"p", t(0)), Enqueued::Dropped);
        assert_eq!(
            table.resolving(),
            MAX_RESOLVING,
            "the gateway takes no share"
        );
        assert_eq!(
            table.learn(gateway, MAC, t(10)).len(),
            MAX_PENDING_PER_NEXT_HOP
        );
    }

    #[test]
    fn a_full_table_never_evicts_a_configured_next_hop() {
        let mut table = NeighborTable::new();
        let gateway = uplink_host(2);
        table.set_configured(vec![gateway]);
        table.learn(gateway, MAC, t(0));
        for n in 0..MAX_ENTRIES as u32 {
            let host = Ipv4Address::from_bits(0x0a00_0000 + n);
            table.learn((1, host), MAC, t(1 + i64::from(n)));
        }
        assert_eq!(table.len(), MAX_ENTRIES);
        assert_eq!(table.mac_of(gateway), Some(MAC));
    }

    #[test]
    fn unanswered_neighbor_is_asked_again_then_dropped() {
        let mut table = NeighborTable::new();
        table.ask((1, HOST), b"p", t(0));
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
        assert_eq!(table.ask((1, HOST), b"p", t(33_100)), Enqueued::Queued);
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
        assert_eq!(table.ask((1, HOST), b"p", t(60_000)), ASKED);
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
        table.ask((0, Ipv4Address::new(10, 0, 2, 9)), b"p", t(0));
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

    /// A gateway learned at `t(0)`, a router of the table.
    fn table_with_router() -> (NeighborTable, NeighborKey) {
        let mut table = NeighborTable::new();
        let gateway = uplink_host(2);
        table.set_configured(vec![gateway]);
        table.set_routers(vec![gateway]);
        table.learn(gateway, MAC, t(0));
        (table, gateway)
    }

    /// Milliseconds of a duration, for `t`.
    fn ms(duration: Duration) -> i64 {
        duration.total_millis() as i64
    }

    #[test]
    fn frames_from_a_routers_mac_keep_it_reachable_without_arp() {
        let (mut table, gateway) = table_with_router();
        let step = ms(REACHABLE_TIME) / 2;
        let mut now = 0;
        // Well past its lifetime, never asked, never answering ARP: it forwards.
        while now < 3 * ms(LIFETIME) {
            now += step;
            table.saw_frame_from(0, MAC, t(now));
            assert_eq!(table.resolve(gateway, t(now)), Resolution::Known(MAC));
            assert_eq!(table.poll(t(now)), NeighborWork::default());
        }
    }

    #[test]
    fn a_router_being_probed_is_confirmed_by_its_next_frame() {
        let (mut table, gateway) = table_with_router();
        let stale = ms(REACHABLE_TIME);
        assert_eq!(table.resolve(gateway, t(stale)), Resolution::Verify(MAC));
        // Its replies are lost; a frame it forwards still comes in.
        table.saw_frame_from(0, MAC, t(stale + 10));
        let later = stale + ms(REQUEST_INTERVAL) * i64::from(UNICAST_PROBES + MAX_REQUESTS);
        assert_eq!(
            table.poll(t(later)),
            NeighborWork::default(),
            "no probe, no broadcast"
        );
        assert_eq!(table.resolve(gateway, t(later)), Resolution::Known(MAC));
    }

    #[test]
    fn only_a_router_at_its_own_mac_on_its_own_nic_is_confirmed() {
        let (mut table, gateway) = table_with_router();
        let stale = ms(REACHABLE_TIME);
        table.saw_frame_from(0, NEW_MAC, t(stale)); // another host on the link
        table.saw_frame_from(1, MAC, t(stale)); // the same MAC on another NIC
        assert_eq!(table.resolve(gateway, t(stale)), Resolution::Verify(MAC));
        // A neighbour that is not a router is not confirmed by its frames either.
        let host = uplink_host(9);
        table.learn(host, NEW_MAC, t(0));
        table.saw_frame_from(0, NEW_MAC, t(stale));
        assert_eq!(table.resolve(host, t(stale)), Resolution::Verify(NEW_MAC));
    }

    #[test]
    fn routers_frames_confirm_at_most_once_a_sighting_interval() {
        let (mut table, gateway) = table_with_router();
        table.saw_frame_from(0, MAC, t(1_000));
        // A frame within the interval changes nothing: the entry was confirmed at 1 s.
        table.saw_frame_from(0, MAC, t(1_000 + ms(ROUTER_SIGHTING_INTERVAL) - 1));
        let stale = 1_000 + ms(REACHABLE_TIME);
        assert_eq!(table.resolve(gateway, t(stale)), Resolution::Verify(MAC));
    }

    #[test]
    fn a_router_that_stopped_forwarding_is_still_given_up() {
        let (mut table, gateway) = table_with_router();
        let stale = ms(REACHABLE_TIME);
        assert_eq!(table.resolve(gateway, t(stale)), Resolution::Verify(MAC));
        let mut now = stale;
        for _ in 1..UNICAST_PROBES {
            now += ms(REQUEST_INTERVAL);
            assert_eq!(table.poll(t(now)).unicast, [(gateway, MAC)]);
        }
        for _ in 0..MAX_REQUESTS {
            now += ms(REQUEST_INTERVAL);
            assert_eq!(table.poll(t(now)).broadcast, [gateway]);
        }
        now += ms(REQUEST_INTERVAL);
        assert_eq!(table.poll(t(now)).gave_up, [(gateway, 0)]);
        // Its MAC is forgotten: a late frame from it does not bring it back.
        table.saw_frame_from(0, MAC, t(now + 1));
        assert_eq!(table.resolve(gateway, t(now + 1)), Resolution::Unknown);
    }

    #[test]
    fn routers_keep_their_sightings_when_the_routers_are_set_again() {
        let (mut table, gateway) = table_with_router();
        table.saw_frame_from(0, MAC, t(1_000));
        table.set_routers(vec![uplink_host(3), gateway]);
        table.saw_frame_from(0, MAC, t(1_500)); // within the interval of the first sighting
        let stale = 1_000 + ms(REACHABLE_TIME);
        assert_eq!(table.resolve(gateway, t(stale)), Resolution::Verify(MAC));
    }
}
