//! Who the fragment table's datagrams are charged to, so that a full table makes room at
//! the expense of the biggest consumer (DESIGN: one client never hurts another).
//!
//! A datagram is charged to its [`Consumer`]: the NIC it arrived on and its source address
//! (anti-spoofing binds a client's source to its NIC). When the table is full,
//! [`Shares::victim`] names the consumer to take from: on the NIC holding the most
//! datagrams (one NIC's flood, a random-source flood from the uplink among them, never
//! evicts another NIC's datagrams), the consumer holding the most; among equally big
//! ones, the one whose oldest datagram is oldest. A quiet client with one datagram in
//! flight keeps it while anyone on its NIC holds more.
//!
//! Every operation is a few ordered-map updates (O(log n)), and the memory is bounded by
//! the table's: a consumer is known only while it has datagrams, and its records of them
//! are compacted to at most twice its live count (plus a few).

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use core::cmp::Reverse;
use smoltcp::wire::{IpAddress, Ipv4Address, Ipv6Address};

use super::DatagramKey;

/// Whom a datagram is charged to: the NIC it arrived on and its source address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Consumer {
    pub nic: u8,
    pub src: IpAddress,
}

/// The first and last address in `IpAddress`'s order (IPv4 before IPv6).
const LOWEST_ADDRESS: IpAddress = IpAddress::Ipv4(Ipv4Address::UNSPECIFIED);
const HIGHEST_ADDRESS: IpAddress = IpAddress::Ipv6(Ipv6Address::from_bits(u128::MAX));

/// A datagram as a consumer's record: its generation and key.
pub(super) type Record = (u64, DatagramKey);

/// Records a consumer keeps beyond twice its live datagrams before they are compacted.
const SLACK: usize = 8;

#[derive(Debug, Default)]
struct Share {
    /// Datagrams charged now.
    live: u32,
    /// Records of its datagrams, oldest first; the front one is always live, the others may
    /// be stale (their datagram completed or was forgotten).
    records: VecDeque<Record>,
}

/// How the consumers rank for eviction: NIC, then the most datagrams, then the oldest one.
type Rank = (u8, u32, Reverse<u64>, IpAddress);

/// The consumers and what each holds. See the module documentation.
#[derive(Debug, Default)]
pub(super) struct Shares {
    shares: BTreeMap<Consumer, Share>,
    ranked: BTreeSet<Rank>,
    per_nic: BTreeMap<u8, u32>,
}

impl Shares {
    /// Forgets every consumer.
    pub fn clear(&mut self) {
        *self = Shares::default();
    }

    /// Datagrams charged to `consumer`.
    #[cfg(test)]
    pub fn live(&self, consumer: Consumer) -> u32 {
        self.shares.get(&consumer).map_or(0, |s| s.live)
    }

    /// Consumers known (each has at least one datagram).
    #[cfg(test)]
    pub fn consumers(&self) -> usize {
        self.shares.len()
    }

    /// Records kept, live and stale, over every consumer.
    #[cfg(test)]
    pub fn records(&self) -> usize {
        self.shares.values().map(|s| s.records.len()).sum()
    }

    /// Charges `consumer` with the datagram `record` (its newest).
    pub fn charge(&mut self, consumer: Consumer, record: Record) {
        let share = self.shares.entry(consumer).or_default();
        if let Some(rank) = rank_of(consumer, share) {
            self.ranked.remove(&rank);
        }
        share.live += 1;
        share.records.push_back(record);
        self.ranked.extend(rank_of(consumer, share));
        *self.per_nic.entry(consumer.nic).or_default() += 1;
    }

    /// Releases one datagram of `consumer`, which the table no longer holds; `is_live`
    /// says which records still stand for a datagram the table holds.
    pub fn release(&mut self, consumer: Consumer, is_live: impl Fn(&Record) -> bool) {
        let Some(share) = self.shares.get_mut(&consumer) else {
            return;
        };
        if let Some(rank) = rank_of(consumer, share) {
            self.ranked.remove(&rank);
        }
        share.live = share.live.saturating_sub(1);
        while share.records.front().is_some_and(|r| !is_live(r)) {
            share.records.pop_front();
        }
        if share.records.len() > 2 * share.live as usize + SLACK {
            share.records.retain(|r| is_live(r));
        }
        if share.live == 0 {
            self.shares.remove(&consumer);
        } else {
            self.ranked.extend(rank_of(consumer, share));
        }
        if let Some(count) = self.per_nic.get_mut(&consumer.nic) {
            *count -= 1;
            if *count == 0 {
                self.per_nic.remove(&consumer.nic);
            }
        }
    }

    /// The oldest datagram of the consumer to take from when the table is full and
    /// `arriving` brings a new one: see the module documentation.
    pub fn victim(&self, arriving: Consumer) -> Option<(Consumer, Record)> {
        let busiest = self.per_nic.values().copied().max()?;
        let nic = if self.per_nic.get(&arriving.nic) == Some(&busiest) {
            arriving.nic
        } else {
            *self.per_nic.iter().find(|(_, &count)| count == busiest)?.0
        };
        let lowest = (nic, 0, Reverse(u64::MAX), LOWEST_ADDRESS);
        let highest = (nic, u32::MAX, Reverse(0), HIGHEST_ADDRESS);
        let &(_, _, _, src) = self.ranked.range(lowest..=highest).next_back()?;
        let consumer = Consumer { nic, src };
        let oldest = *self.shares.get(&consumer)?.records.front()?;
        Some((consumer, oldest))
    }
}

/// Where `share` of `consumer` ranks, while it holds a datagram.
fn rank_of(consumer: Consumer, share: &Share) -> Option<Rank> {
    let &(oldest, _) = share.records.front()?;
    (share.live > 0).then_some((consumer.nic, share.live, Reverse(oldest), consumer.src))
}
