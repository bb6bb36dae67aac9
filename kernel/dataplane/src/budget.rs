//! [`SharedBudget`]: a rate limit that every source shares, with a share per source.
//!
//! The appliance's replies to dropped packets (ICMP errors, TCP resets) and its drop-log
//! lines are rate-limited, so that a flood never turns into a flood of its own. One limit
//! for everyone lets one noisy sender use it all up: sixty traceroute probes and another
//! client's fragmentation-needed is never sent; one client's port scan and nobody else's
//! drop is ever logged. A shared budget admits an event only within four token buckets:
//!
//! - the **source's** own ([`Shares::per_source`]), so no one source takes more than its
//!   share;
//! - for an address behind a router, its NIC's **remote side**'s
//!   ([`Shares::per_remote_side`]): the internet's addresses, however many, share one
//!   share ([`crate::share`]);
//! - the **total** ([`Shares::total`]), which bounds the sum;
//! - and when the total is spent, a **reserve** ([`Shares::reserve`]) that only a quiet
//!   source may draw on — one whose own bucket (and remote side's) is full, having asked
//!   for nothing lately. So however many sources are noisy, a source that was quiet still
//!   gets its event through.
//!
//! Events refused are counted, and the next admitted one learns how many there were since
//! the previous (a log line says "N earlier lines suppressed").
//!
//! # Memory
//! Sources are kept in a fixed table of [`SOURCE_SETS`] × [`SOURCE_WAYS`] buckets, filed by
//! a keyed hash of the source; a newcomer whose set is full takes the place of the set's
//! least recently used source. So a flood from random addresses costs no memory and only
//! ever *resets* other sources' buckets to full (it can never make them stricter), while
//! the remote side's and the total's buckets still bound it. About 20 KiB per budget.

use alloc::vec::Vec;

use smoltcp::time::Instant;
use smoltcp::wire::Ipv4Address;

use crate::ratelimit::{Admission, TokenBucket};
use crate::rng::mix;
use crate::share::Source;

/// Sets of the source table (a power of two).
pub const SOURCE_SETS: usize = 64;
/// Sources per set.
pub const SOURCE_WAYS: usize = 4;

/// A token bucket's shape: `per_second` events sustained, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Events per second, sustained.
    pub per_second: u32,
    /// Events at once.
    pub burst: u32,
}

impl Rate {
    fn bucket(&self) -> TokenBucket {
        TokenBucket::new(self.per_second, self.burst)
    }
}

/// The four buckets of a [`SharedBudget`] (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shares {
    /// Each source's.
    pub per_source: Rate,
    /// Each NIC's remote side's (all addresses behind a router on it).
    pub per_remote_side: Rate,
    /// Everyone's together.
    pub total: Rate,
    /// Drawn on by quiet sources when the total is spent.
    pub reserve: Rate,
}

#[derive(Clone, Debug)]
struct SourceBucket {
    /// `(nic, address)`, or `None` for a free way.
    source: Option<(u8, Ipv4Address)>,
    bucket: TokenBucket,
    used: Instant,
}

/// The budget. See the module documentation.
#[derive(Clone, Debug)]
pub struct SharedBudget {
    shares: Shares,
    key: u64,
    sources: Vec<SourceBucket>,
    remote_sides: Vec<(u8, TokenBucket)>,
    total: TokenBucket,
    reserve: TokenBucket,
    /// Refusals since the last admission.
    suppressed: u64,
    /// Refusals since the budget was made.
    refused_total: u64,
}

impl SharedBudget {
    /// A budget of `shares`, filing sources under a hash keyed by `key`.
    pub fn new(shares: Shares, key: u64) -> SharedBudget {
        let free = SourceBucket {
            source: None,
            bucket: shares.per_source.bucket(),
            used: Instant::ZERO,
        };
        SharedBudget {
            shares,
            key,
            sources: alloc::vec![free; SOURCE_SETS * SOURCE_WAYS],
            remote_sides: Vec::new(),
            total: shares.total.bucket(),
            reserve: shares.reserve.bucket(),
            suppressed: 0,
            refused_total: 0,
        }
    }

    /// Asks for one event of `source` at `now`. Asking takes from the source's share (and
    /// its remote side's) even when the total then refuses: a source that keeps asking is
    /// never quiet.
    pub fn admit(&mut self, source: Source, now: Instant) -> Admission {
        let own = self.source_bucket(source, now);
        let own = &mut self.sources[own].bucket;
        let mut quiet = own.is_full(now);
        if own.tokens(now) == 0 {
            return self.refuse();
        }
        own.spend();
        if source.remote {
            let side = self.remote_side(source.nic);
            let side = &mut self.remote_sides[side].1;
            quiet &= side.is_full(now);
            if side.tokens(now) == 0 {
                return self.refuse();
            }
            side.spend();
        }
        if self.total.tokens(now) > 0 {
            self.total.spend();
        } else if quiet && self.reserve.tokens(now) > 0 {
            self.reserve.spend();
        } else {
            return self.refuse();
        }
        Admission::Admitted {
            suppressed: core::mem::take(&mut self.suppressed),
        }
    }

    /// Whether an event of `source` may happen at `now` (and it is counted).
    pub fn try_take(&mut self, source: Source, now: Instant) -> bool {
        matches!(self.admit(source, now), Admission::Admitted { .. })
    }

    /// Events refused since the budget was made.
    pub fn refused_total(&self) -> u64 {
        self.refused_total
    }

    /// Sources being tracked (at most [`SOURCE_SETS`] × [`SOURCE_WAYS`]).
    pub fn sources_tracked(&self) -> usize {
        self.sources.iter().filter(|s| s.source.is_some()).count()
    }

    fn refuse(&mut self) -> Admission {
        self.suppressed += 1;
        self.refused_total += 1;
        Admission::Refused
    }

    /// The index of `source`'s bucket: its own, or a new one in place of its set's least
    /// recently used source.
    fn source_bucket(&mut self, source: Source, now: Instant) -> usize {
        let wanted = Some((source.nic, source.addr));
        let set = (mix(self.key ^ (u64::from(source.nic) << 32 | u64::from(source.addr.to_bits())))
            as usize
            & (SOURCE_SETS - 1))
            * SOURCE_WAYS;
        let ways = set..set + SOURCE_WAYS;
        let index = match ways.clone().find(|&i| self.sources[i].source == wanted) {
            Some(index) => index,
            None => {
                let index = ways
                    .min_by_key(|&i| (self.sources[i].source.is_some(), self.sources[i].used))
                    .unwrap_or(set);
                self.sources[index] = SourceBucket {
                    source: wanted,
                    bucket: self.shares.per_source.bucket(),
                    used: now,
                };
                index
            }
        };
        self.sources[index].used = now;
        index
    }

    /// The index of `nic`'s remote side's bucket, created if needed.
    fn remote_side(&mut self, nic: u8) -> usize {
        match self.remote_sides.iter().position(|(n, _)| *n == nic) {
            Some(index) => index,
            None => {
                self.remote_sides
                    .push((nic, self.shares.per_remote_side.bucket()));
                self.remote_sides.len() - 1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The drop log's shares: 5/s per source (bursts of 10), 10/s per remote side (bursts
    /// of 20), 20/s in all (bursts of 50), a reserve of 5/s (bursts of 10).
    const SHARES: Shares = crate::drops::LOG_SHARES;

    fn at(ms: i64) -> Instant {
        Instant::from_millis(ms)
    }

    fn client(i: u8) -> Source {
        Source::neighbour(1, Ipv4Address::new(10, 137, 1, i))
    }

    fn remote(n: u32) -> Source {
        Source::remote(0, Ipv4Address::from_bits(0xc612_0000 + n))
    }

    fn admitted(budget: &mut SharedBudget, source: Source, now: Instant, tries: usize) -> usize {
        (0..tries).filter(|_| budget.try_take(source, now)).count()
    }

    #[test]
    fn one_source_gets_its_share_and_no_more() {
        let mut budget = SharedBudget::new(SHARES, 7);
        assert_eq!(admitted(&mut budget, client(10), at(0), 100), 10);
        assert_eq!(
            admitted(&mut budget, client(11), at(0), 1),
            1,
            "another still can"
        );
        assert_eq!(budget.refused_total(), 90);
    }

    #[test]
    fn a_quiet_source_gets_through_when_noisy_ones_spent_the_total() {
        let mut budget = SharedBudget::new(SHARES, 7);
        // Ten noisy clients, for ten seconds: the total is spent all along.
        for ms in (0..=10_000).step_by(10) {
            for i in 0..10 {
                budget.try_take(client(i), at(ms));
            }
        }
        assert_eq!(budget.total.tokens(at(10_000)), 0);
        assert!(
            budget.try_take(client(100), at(10_000)),
            "the quiet client's event"
        );
        assert!(
            !budget.try_take(client(3), at(10_000)),
            "a noisy one's is not"
        );
    }

    #[test]
    fn addresses_behind_a_router_share_one_share() {
        let mut budget = SharedBudget::new(SHARES, 7);
        let from_the_internet: usize = (0..1000)
            .map(|n| admitted(&mut budget, remote(n), at(0), 1))
            .sum();
        assert_eq!(from_the_internet, 20, "the remote side's burst");
        assert_eq!(admitted(&mut budget, client(10), at(0), 100), 10);
    }

    #[test]
    fn a_random_source_flood_keeps_the_table_bounded_and_only_frees_room() {
        let mut budget = SharedBudget::new(SHARES, 7);
        // A client uses up its share...
        assert_eq!(admitted(&mut budget, client(10), at(0), 10), 10);
        for n in 0..100_000 {
            budget.try_take(remote(n), at(1 + i64::from(n / 1000)));
        }
        assert_eq!(budget.sources_tracked(), SOURCE_SETS * SOURCE_WAYS);
        assert!(budget.remote_sides.len() == 1);
        // ...and, whether it was displaced (a fresh share) or not (its own, refilled), it
        // has events again a second later.
        assert!(budget.try_take(client(10), at(1_100)));
    }

    #[test]
    fn the_next_admitted_event_learns_how_many_were_refused() {
        let mut budget = SharedBudget::new(SHARES, 7);
        admitted(&mut budget, client(10), at(0), 13);
        assert_eq!(
            budget.admit(client(11), at(0)),
            Admission::Admitted { suppressed: 3 }
        );
    }
}
