//! [`Translation`]: how a packet's tuple changes as it crosses the appliance.

use crate::state::FlowTuple;

/// A packet that arrives as `before` leaves as `after`. The state table hands one out for
/// every packet it recognises; [`apply`](super::apply) makes the packet match it.
///
/// For an ICMP error related to a state, `before` is the tuple of the direction the error
/// travels in (the reverse of the quoted packet's), and `after` what that direction becomes:
/// the quoted packet is rewritten to the reverse of `after`, and the error's own addresses
/// follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The tuple as the packet arrives.
    pub before: FlowTuple,
    /// The tuple as the packet leaves.
    pub after: FlowTuple,
}

impl Translation {
    /// No change.
    pub fn identity(tuple: FlowTuple) -> Translation {
        Translation {
            before: tuple,
            after: tuple,
        }
    }

    /// Whether the packet leaves unchanged.
    pub fn is_identity(&self) -> bool {
        self.before == self.after
    }

    /// Whether the source address or port changes (source NAT).
    pub fn changes_source(&self) -> bool {
        self.before.src != self.after.src || self.before.src_port != self.after.src_port
    }

    /// Whether the destination address or port changes (destination NAT).
    pub fn changes_destination(&self) -> bool {
        self.before.dst != self.after.dst || self.before.dst_port != self.after.dst_port
    }
}
