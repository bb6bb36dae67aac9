//! [`Footprint`]: how full the appliance's bounded tables are, for tests and the fuzz
//! target to hold against their bounds ([`Footprint::within_bounds`]).

use super::Appliance;
use crate::fragment;
use crate::neighbor;
use crate::policy::MAX_NICS;

/// Entries in each of the appliance's tables that grow with traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Live states.
    pub states: usize,
    /// The state table's fixed capacity.
    pub state_capacity: usize,
    /// Neighbour (ARP) entries.
    pub neighbors: usize,
    /// Packets queued until their next hop resolves.
    pub queued: usize,
    /// Neighbours being resolved for sources (configured next hops not counted).
    pub resolving: usize,
    /// Fragmented datagrams whose first fragment's decision is remembered.
    pub fragments: usize,
    /// IPv6 neighbour (ND) entries.
    pub neighbors6: usize,
    /// IPv6 packets queued until their next hop resolves.
    pub queued6: usize,
    /// IPv6 neighbours being resolved for sources.
    pub resolving6: usize,
}

impl Footprint {
    /// The first table that is over its bound, with its size and bound, or `None`.
    pub fn over_bound(&self) -> Option<(&'static str, usize, usize)> {
        [
            ("states", self.states, self.state_capacity),
            ("neighbors", self.neighbors, neighbor::MAX_ENTRIES),
            // Sources share one bound; each NIC's configured next hop has its own queue.
            (
                "queued packets",
                self.queued,
                neighbor::MAX_PENDING_TOTAL + MAX_NICS * neighbor::MAX_PENDING_PER_NEXT_HOP,
            ),
            (
                "neighbours resolving",
                self.resolving,
                neighbor::MAX_RESOLVING,
            ),
            (
                "fragmented datagrams",
                self.fragments,
                fragment::MAX_DATAGRAMS,
            ),
            // The IPv6 neighbour table has the same bounds as ARP's (one `NeighborTable`).
            ("IPv6 neighbours", self.neighbors6, neighbor::MAX_ENTRIES),
            (
                "queued IPv6 packets",
                self.queued6,
                neighbor::MAX_PENDING_TOTAL + MAX_NICS * neighbor::MAX_PENDING_PER_NEXT_HOP,
            ),
            (
                "IPv6 neighbours resolving",
                self.resolving6,
                neighbor::MAX_RESOLVING,
            ),
        ]
        .into_iter()
        .find(|&(_, size, bound)| size > bound)
    }

    /// Whether every table is within its bound.
    pub fn within_bounds(&self) -> bool {
        self.over_bound().is_none()
    }
}

impl Appliance<'_> {
    /// How full the bounded tables are now.
    pub fn footprint(&self) -> Footprint {
        let (neighbors6, queued6, resolving6) = self.ndp.cache_footprint();
        Footprint {
            states: self.states.len(),
            state_capacity: self.states.capacity(),
            neighbors: self.neighbors.len(),
            queued: self.neighbors.pending(),
            resolving: self.neighbors.resolving(),
            fragments: self.fragments.len(),
            neighbors6,
            queued6,
            resolving6,
        }
    }
}
