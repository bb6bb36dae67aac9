//! The neighbour table: IPv4 → MAC per NIC, learned by ARP, with a bounded queue of packets
//! waiting for a neighbour to answer.
//!
//! Bounds (a flood of packets to unresolvable addresses must not eat memory): at most
//! [`MAX_PENDING_PER_NEIGHBOR`] packets wait for one neighbour and [`MAX_PENDING_TOTAL`]
//! for all of them; an unanswered neighbour is asked [`MAX_REQUESTS`] times,
//! [`REQUEST_INTERVAL`] apart, then its queue is dropped. Resolved entries expire after
//! [`REACHABLE_TIME`] and are then resolved again on next use. At most [`MAX_ENTRIES`]
//! entries exist; when full, the stalest resolved entry makes room.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, Ipv4Address};

/// How long a learned MAC is trusted.
pub const REACHABLE_TIME: Duration = Duration::from_secs(60);
/// Time between ARP requests for an unanswered neighbour.
pub const REQUEST_INTERVAL: Duration = Duration::from_millis(1000);
/// ARP requests sent before giving up on a neighbour.
pub const MAX_REQUESTS: u8 = 3;
/// Packets queued for one unresolved neighbour.
pub const MAX_PENDING_PER_NEIGHBOR: usize = 4;
/// Packets queued for all unresolved neighbours together.
pub const MAX_PENDING_TOTAL: usize = 64;
/// Entries in the table.
pub const MAX_ENTRIES: usize = 4096;

/// A neighbour is identified by the NIC it is on and its address.
pub type NeighborKey = (u8, Ipv4Address);

#[derive(Debug)]
enum Entry {
    Resolved {
        mac: EthernetAddress,
        expires: Instant,
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

/// The table. See the module documentation.
#[derive(Debug, Default)]
pub struct NeighborTable {
    entries: BTreeMap<NeighborKey, Entry>,
    pending_total: usize,
}

impl NeighborTable {
    /// An empty table.
    pub fn new() -> NeighborTable {
        NeighborTable::default()
    }

    /// The MAC of a resolved, unexpired neighbour.
    pub fn lookup(&self, key: NeighborKey, now: Instant) -> Option<EthernetAddress> {
        match self.entries.get(&key) {
            Some(Entry::Resolved { mac, expires }) if *expires > now => Some(*mac),
            _ => None,
        }
    }

    /// Records `mac` for `key`; returns the packets that were waiting for it, in order.
    pub fn learn(&mut self, key: NeighborKey, mac: EthernetAddress, now: Instant) -> Vec<Vec<u8>> {
        let resolved = Entry::Resolved {
            mac,
            expires: now + REACHABLE_TIME,
        };
        if !self.entries.contains_key(&key) && self.entries.len() >= MAX_ENTRIES {
            self.evict_stalest();
        }
        match self.entries.insert(key, resolved) {
            Some(Entry::Incomplete { queue, .. }) => {
                self.pending_total -= queue.len();
                queue.into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    /// Updates an existing entry's MAC (from traffic the neighbour sent us) without creating
    /// new entries; returns packets released if it was waiting.
    pub fn refresh(
        &mut self,
        key: NeighborKey,
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
    pub fn enqueue(&mut self, key: NeighborKey, packet: &[u8], now: Instant) -> Enqueued {
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
        if let Entry::Resolved { expires, .. } = entry {
            if *expires > now {
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

    /// Housekeeping: returns the neighbours to send another ARP request to, and drops the
    /// queues of those that never answered (returning each one with how many packets it had
    /// waiting).
    pub fn poll(&mut self, now: Instant) -> (Vec<NeighborKey>, Vec<(NeighborKey, usize)>) {
        let mut ask = Vec::new();
        let mut gave_up = Vec::new();
        for (key, entry) in self.entries.iter_mut() {
            if let Entry::Incomplete {
                requests_sent,
                next_request,
                ..
            } = entry
            {
                if *next_request <= now {
                    if *requests_sent >= MAX_REQUESTS {
                        gave_up.push(*key);
                    } else {
                        *requests_sent += 1;
                        *next_request = now + REQUEST_INTERVAL;
                        ask.push(*key);
                    }
                }
            }
        }
        let mut dropped = Vec::new();
        for key in gave_up {
            if let Some(Entry::Incomplete { queue, .. }) = self.entries.remove(&key) {
                dropped.push((key, queue.len()));
                self.pending_total -= queue.len();
            }
        }
        // Expired resolved entries are removed lazily here, to keep the table small.
        self.entries.retain(|_, e| !matches!(e, Entry::Resolved { expires, .. } if *expires + REACHABLE_TIME <= now));
        (ask, dropped)
    }

    /// The earliest time [`NeighborTable::poll`] has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter_map(|e| match e {
                Entry::Incomplete { next_request, .. } => Some(*next_request),
                Entry::Resolved { .. } => None,
            })
            .min()
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
                Entry::Resolved { expires, .. } => Some((*expires, *k)),
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
        assert_eq!(table.poll(t(500)), (vec![], vec![]));
        assert_eq!(table.poll(t(1000)), (vec![(1, HOST)], vec![]));
        assert_eq!(table.poll(t(2000)), (vec![(1, HOST)], vec![]));
        assert_eq!(table.poll(t(3000)), (vec![], vec![((1, HOST), 1)]));
        assert_eq!(table.pending(), 0);
        assert!(table.is_empty());
    }

    #[test]
    fn learned_entries_expire() {
        let mut table = NeighborTable::new();
        table.learn((1, HOST), MAC, t(0));
        assert_eq!(table.lookup((1, HOST), t(59_999)), Some(MAC));
        assert_eq!(table.lookup((1, HOST), t(60_000)), None);
    }

    #[test]
    fn refresh_does_not_create_entries() {
        let mut table = NeighborTable::new();
        table.refresh((1, HOST), MAC, t(0));
        assert!(table.is_empty());
    }
}
