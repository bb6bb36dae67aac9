//! One state: a flow's two tuples, the NICs it crosses, who created it, its protocol
//! tracking and when it expires. [`StateInfo`] is its public view.

use smoltcp::time::Instant;

use super::limits::{Held, LimitSource, Owner};
use super::shares::AccountId;
use super::slab::{QueueLinks, Queued};
use super::tracking::{ProtocolState, Tracking};
use super::tuple::{Direction, FlowTuple};
use crate::nat::Translation;

/// A state as stored in the table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct State {
    /// The tuple of the initiator's packets as they arrive on `in_nic` (before NAT).
    pub original: FlowTuple,
    /// The tuple of the responder's packets as they arrive on `out_nic` (after NAT: the
    /// reverse of the initiator's packets as they leave).
    pub reply: FlowTuple,
    pub in_nic: u8,
    pub out_nic: u8,
    pub rule: Option<u32>,
    pub client: Option<u32>,
    pub held: Held,
    pub tracking: Tracking,
    pub expires: Instant,
    pub queue: QueueLinks,
    /// The account its share is charged to ([`super::shares`]).
    pub account: AccountId,
}

impl Queued for State {
    fn links(&self) -> &QueueLinks {
        &self.queue
    }

    fn links_mut(&mut self) -> &mut QueueLinks {
        &mut self.queue
    }
}

impl State {
    /// The tuple filed for `direction`.
    pub fn tuple(&self, direction: Direction) -> FlowTuple {
        match direction {
            Direction::Original => self.original,
            Direction::Reply => self.reply,
        }
    }

    /// How a packet travelling in `direction` is translated.
    pub fn translation(&self, direction: Direction) -> Translation {
        match direction {
            Direction::Original => Translation {
                before: self.original,
                after: self.reply.reversed(),
            },
            Direction::Reply => Translation {
                before: self.reply,
                after: self.original.reversed(),
            },
        }
    }

    /// The NIC packets travelling in `direction` arrive on.
    pub fn ingress(&self, direction: Direction) -> u8 {
        match direction {
            Direction::Original => self.in_nic,
            Direction::Reply => self.out_nic,
        }
    }

    /// The NIC packets travelling in `direction` leave through.
    pub fn egress(&self, direction: Direction) -> u8 {
        self.ingress(direction.opposite())
    }

    /// Whether the initiator's source is translated (it holds a NAT port).
    pub fn translates_source(&self) -> bool {
        self.translation(Direction::Original).changes_source()
    }

    /// Whose limit counts the state holds.
    pub fn owner(&self) -> Owner {
        Owner {
            rule: self.rule,
            source: LimitSource::of(self.original.src, self.client),
            client: self.client,
        }
    }

    /// Whether the state has timed out at `now`.
    pub fn expired(&self, now: Instant) -> bool {
        now >= self.expires
    }

    /// The public view.
    pub fn info(&self) -> StateInfo {
        StateInfo {
            original: self.original,
            reply: self.reply,
            in_nic: self.in_nic,
            out_nic: self.out_nic,
            rule: self.rule,
            client: self.client,
            protocol_state: self.tracking.protocol_state(),
            established: self.tracking.established(),
            expires: self.expires,
        }
    }
}

/// What the table knows about one state (for logs, statistics and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateInfo {
    /// The initiator's packets as they arrive on `in_nic` (before NAT).
    pub original: FlowTuple,
    /// The responder's packets as they arrive on `out_nic` (after NAT).
    pub reply: FlowTuple,
    /// NIC the flow was initiated on.
    pub in_nic: u8,
    /// NIC the initiator's packets leave through.
    pub out_nic: u8,
    /// Index of the rule that created the state, if any.
    pub rule: Option<u32>,
    /// Index of the client the state belongs to, if any.
    pub client: Option<u32>,
    /// How far the protocol has come.
    pub protocol_state: ProtocolState,
    /// Whether the flow is past its opening (never dropped early).
    pub established: bool,
    /// When the state times out unless another packet refreshes it.
    pub expires: Instant,
}
