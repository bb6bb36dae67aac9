//! Why packets are dropped: one reason enum, counters by reason, and the rate-limited drop
//! log.
//!
//! Every drop is counted. A drop is also *logged* — one console line with the interface,
//! the reason or deciding rule, and the 5-tuple — when its rule says `log`, or when its
//! reason is security-relevant ([`DropReason::always_logged`]). Log lines pass a
//! [`SharedBudget`] ([`LOG_SHARES`]) so that a flood cannot turn the console into a denial
//! of service, and so that one sender's noise cannot hide everyone else's drops: each
//! sender gets its share of lines, the addresses behind a NIC's router one share together,
//! everyone [`LOG_RATE`] per second in bursts of [`LOG_BURST`], and a sender that was quiet
//! still gets its line from a reserve when the rest is spent. The number of lines
//! suppressed is reported on the next line that gets through, and counted.

use core::fmt;

use crate::budget::{Rate, SharedBudget, Shares};
use crate::ratelimit::Admission;
use crate::share::Source;
use smoltcp::time::Instant;

/// Log lines per second allowed through, everyone's together (the reserve apart).
pub const LOG_RATE: u32 = 20;
/// Log lines allowed in one burst, everyone's together.
pub const LOG_BURST: u32 = 50;

/// The drop log's budget: one sender 5 lines per second (bursts of 10), the addresses
/// behind a NIC's router together 10 (bursts of 20), everyone [`LOG_RATE`] (bursts of
/// [`LOG_BURST`]), and a reserve of 5 per second for senders that were quiet. At most 25
/// lines per second reach the console.
pub const LOG_SHARES: Shares = Shares {
    per_source: Rate {
        per_second: 5,
        burst: 10,
    },
    per_remote_side: Rate {
        per_second: 10,
        burst: 20,
    },
    total: Rate {
        per_second: LOG_RATE,
        burst: LOG_BURST,
    },
    reserve: Rate {
        per_second: 5,
        burst: 10,
    },
};

/// Why a frame or packet went no further.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Not a frame or packet the appliance can parse (short, bad lengths, bad checksum,
    /// impossible TCP flags, tiny or overlapping fragments).
    Malformed,
    /// Addressed to another MAC.
    NotForUs,
    /// An EtherType the appliance does not route (IPv6, VLAN tags, ...).
    UnsupportedEtherType,
    /// Arrived on a NIC without an address.
    NicUnconfigured,
    /// A source address that may never appear (0/8, 127/8, multicast, broadcast).
    MartianSource,
    /// A destination that may never be forwarded to.
    MartianDestination,
    /// A source address not allowed on the NIC it arrived on (anti-spoofing).
    Spoofed,
    /// Refused by a rule or by the default.
    Policy,
    /// The TTL ran out (an ICMP time-exceeded was sent, rate permitting).
    TtlExceeded,
    /// No route to the destination.
    NoRoute,
    /// Too big for the egress MTU with DF set (an ICMP fragmentation-needed was sent).
    TooBig,
    /// A later fragment whose first fragment was not seen or not allowed.
    OrphanFragment,
    /// Outside the TCP window of its connection, or otherwise invalid for its state.
    InvalidState,
    /// The state table is full of established flows.
    StateTableFull,
    /// A rule's or client's state limit was reached.
    StateLimit,
    /// No free NAT port.
    NatExhausted,
    /// The next hop did not answer ARP, or too many packets were waiting for it.
    NeighborUnreachable,
    /// The NIC's transmit ring was full.
    TransmitFull,
    /// IPv4 options the deciding rule does not allow (`allow-opts`), or a source route or
    /// route recording, which nothing allows.
    IpOptions,
    /// A unicast IP packet that arrived in a link-layer broadcast or multicast frame: a
    /// router must not forward it (RFC 1812 §5.3.4).
    LinkBroadcast,
    /// A neighbour discovery message refused: invalid (RFC 4861), a router advertisement
    /// from a client (RA guard), a client claiming an address not its own.
    NeighborDiscovery,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 21] = [
        DropReason::Malformed,
        DropReason::NotForUs,
        DropReason::UnsupportedEtherType,
        DropReason::NicUnconfigured,
        DropReason::MartianSource,
        DropReason::MartianDestination,
        DropReason::Spoofed,
        DropReason::Policy,
        DropReason::TtlExceeded,
        DropReason::NoRoute,
        DropReason::TooBig,
        DropReason::OrphanFragment,
        DropReason::InvalidState,
        DropReason::StateTableFull,
        DropReason::StateLimit,
        DropReason::NatExhausted,
        DropReason::NeighborUnreachable,
        DropReason::TransmitFull,
        DropReason::IpOptions,
        DropReason::LinkBroadcast,
        DropReason::NeighborDiscovery,
    ];

    /// A short name for log lines and statistics.
    pub fn as_str(&self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::NotForUs => "not-for-us",
            DropReason::UnsupportedEtherType => "ethertype",
            DropReason::NicUnconfigured => "unconfigured",
            DropReason::MartianSource => "martian-source",
            DropReason::MartianDestination => "martian-destination",
            DropReason::Spoofed => "spoofed",
            DropReason::Policy => "policy",
            DropReason::TtlExceeded => "ttl-exceeded",
            DropReason::NoRoute => "no-route",
            DropReason::TooBig => "too-big",
            DropReason::OrphanFragment => "orphan-fragment",
            DropReason::InvalidState => "invalid-state",
            DropReason::StateTableFull => "state-table-full",
            DropReason::StateLimit => "state-limit",
            DropReason::NatExhausted => "nat-exhausted",
            DropReason::NeighborUnreachable => "neighbor-unreachable",
            DropReason::TransmitFull => "tx-full",
            DropReason::IpOptions => "ip-options",
            DropReason::LinkBroadcast => "link-broadcast",
            DropReason::NeighborDiscovery => "neighbor-discovery",
        }
    }

    /// What the reason means, in words (for reports such as `rules test`).
    pub fn meaning(&self) -> &'static str {
        match self {
            DropReason::Malformed => "not a packet the appliance can parse",
            DropReason::NotForUs => "addressed to another MAC",
            DropReason::UnsupportedEtherType => {
                "a protocol the appliance does not forward (IPv6 among them, for now)"
            }
            DropReason::NicUnconfigured => {
                "it arrived on an interface without an address of its family"
            }
            DropReason::MartianSource => "its source can never be a host's address",
            DropReason::MartianDestination => "its destination can never be forwarded to",
            DropReason::Spoofed => "its source may not send from the interface it arrived on",
            DropReason::Policy => "refused by a rule or by the default",
            DropReason::TtlExceeded => "its TTL ran out",
            DropReason::NoRoute => "there is no route to its destination",
            DropReason::TooBig => "too big for the egress MTU, and DF is set",
            DropReason::OrphanFragment => "a fragment whose first fragment was not let through",
            DropReason::InvalidState => "it belongs to no known flow and cannot open one",
            DropReason::StateTableFull => "the state table is full",
            DropReason::StateLimit => "a state limit was reached",
            DropReason::NatExhausted => "no NAT port was free",
            DropReason::NeighborUnreachable => "the next hop did not answer ARP",
            DropReason::TransmitFull => "the NIC's transmit ring was full",
            DropReason::IpOptions => "it carries IP options that are not allowed",
            DropReason::LinkBroadcast => {
                "a unicast packet sent to the link's broadcast or a multicast address"
            }
            DropReason::NeighborDiscovery => {
                "a neighbour discovery message the appliance refuses (RA guard, a claim on another's address, invalid)"
            }
        }
    }

    /// The reason called `name` (as [`DropReason::as_str`] writes it).
    pub fn from_name(name: &str) -> Option<DropReason> {
        DropReason::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Whether every drop for this reason is logged: the security-relevant ones (malformed
    /// packets, martian and spoofed sources, a full state table, state limits reached, NAT
    /// ports exhausted, IP options, unicast packets in link-layer broadcasts). Drops by the policy are logged when their rule says `log`; the
    /// others (unrouteable, TTL, fragments without their first, full rings, ...) are only
    /// counted. The appliance's one drop path asks this for every drop.
    pub fn always_logged(&self) -> bool {
        matches!(
            self,
            DropReason::Malformed
                | DropReason::MartianSource
                | DropReason::Spoofed
                | DropReason::StateTableFull
                | DropReason::StateLimit
                | DropReason::NatExhausted
                | DropReason::IpOptions
                | DropReason::LinkBroadcast
                | DropReason::NeighborDiscovery
        )
    }

    fn index(&self) -> usize {
        DropReason::ALL.iter().position(|r| r == self).unwrap_or(0)
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Drops counted by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounters {
    counts: [u64; DropReason::ALL.len()],
}

impl DropCounters {
    /// Counts one drop.
    pub fn count(&mut self, reason: DropReason) {
        self.counts[reason.index()] += 1;
    }

    /// Drops counted for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts[reason.index()]
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// `(reason, count)` for every reason with a non-zero count.
    pub fn nonzero(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .zip(self.counts.iter())
            .filter(|(_, c)| **c > 0)
            .map(|(r, c)| (*r, *c))
    }
}

/// The rate-limited drop log.
#[derive(Clone, Debug)]
pub struct DropLog {
    budget: SharedBudget,
}

impl Default for DropLog {
    fn default() -> Self {
        DropLog::new(0)
    }
}

impl DropLog {
    /// A drop log of [`LOG_SHARES`], filing senders under a hash keyed by `key`.
    pub fn new(key: u64) -> DropLog {
        DropLog {
            budget: SharedBudget::new(LOG_SHARES, key),
        }
    }

    /// Emits `line` (prefixed `drop `) about a drop of `sender`'s if its share allows;
    /// returns whether it was emitted.
    pub fn log(&mut self, now: Instant, sender: Source, line: fmt::Arguments) -> bool {
        match self.budget.admit(sender, now) {
            Admission::Admitted { suppressed: 0 } => {
                log::info!("drop {line}");
                true
            }
            Admission::Admitted { suppressed } => {
                log::info!("drop {line} ({suppressed} earlier drop lines suppressed)");
                true
            }
            Admission::Refused => false,
        }
    }

    /// Log lines suppressed so far.
    pub fn suppressed_total(&self) -> u64 {
        self.budget.refused_total()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_count_by_reason() {
        let mut c = DropCounters::default();
        c.count(DropReason::Spoofed);
        c.count(DropReason::Spoofed);
        c.count(DropReason::Policy);
        assert_eq!(c.get(DropReason::Spoofed), 2);
        assert_eq!(c.total(), 3);
        assert_eq!(c.nonzero().count(), 2);
    }

    #[test]
    fn every_reason_has_its_own_counter() {
        let mut c = DropCounters::default();
        for r in DropReason::ALL {
            c.count(r);
        }
        for r in DropReason::ALL {
            assert_eq!(c.get(r), 1, "{r}");
        }
    }

    #[test]
    fn a_flood_of_log_lines_is_cut_to_the_senders_share_and_the_total() {
        let mut log = DropLog::default();
        let now = Instant::from_secs(10);
        let sender = |i: u8| Source::neighbour(1, smoltcp::wire::Ipv4Address::new(10, 0, 0, i));
        let one = (0..1000)
            .filter(|_| log.log(now, sender(1), format_args!("x")))
            .count();
        assert_eq!(one, LOG_SHARES.per_source.burst as usize);
        let many = (0..1000)
            .filter(|&i| log.log(now, sender(2 + (i % 100) as u8), format_args!("x")))
            .count();
        assert_eq!(
            one + many,
            (LOG_BURST + LOG_SHARES.reserve.burst) as usize,
            "the total, and the reserve for the quiet ones"
        );
    }
}
