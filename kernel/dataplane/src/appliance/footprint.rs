//! [`Footprint`]: how full the appliance's bounded tables are, for tests and the fuzz
//! target to hold against their bounds ([`Footprint::within_bounds`]).

use super::Appliance;
use crate::fragment;
use crate::neighbor;

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
    /// Fragmented datagrams whose first fragment's decision is remembered.
    pub fragments: usize,
}

impl Footprint {
    /// The first table that is over its bound, with its size and bound, or `None`.
    pub fn over_bound(&self) -> Option<(&'static str, usize, usize)> {
        [
            ("states", self.states, self.state_capacity),
            ("neighbors", self.neighbors, neighbor::MAX_ENTRIES),
            ("queued packets", self.queued, neighbor::MAX_PENDING_TOTAL),
            (
                "fragmented datagrams",
                self.fragments,
                fragment::MAX_DATAGRAMS,
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
        Footprint {
            states: self.states.len(),
            state_capacity: self.states.capacity(),
            neighbors: self.neighbors.len(),
            queued: self.neighbors.pending(),
            fragments: self.fragments.len(),
        }
    }
}
