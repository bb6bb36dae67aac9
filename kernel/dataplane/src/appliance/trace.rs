//! [`Trace`]: what the data plane did with one received frame, stage by stage, as
//! [`Appliance::receive_traced`](super::Appliance::receive_traced) returns it.
//!
//! The stages fill it in as they decide — the destination NAT, the policy's verdict on the
//! key it saw, the reply sent to the sender — and the last one says where the packet went.
//! The ruleset compiler's `test` lines and `explain` report exactly this, so what they say
//! is what the kernel does: there is no second implementation of the path to disagree.

use smoltcp::wire::IpAddress;

use crate::drops::DropReason;
use crate::nat::Translation;
use crate::policy::{FlowKey, Verdict};

/// What became of a frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fate {
    /// Handled by the appliance itself: ARP, or a packet for its own stack (ICMP echo,
    /// DHCP), which its local stack may answer.
    #[default]
    Local,
    /// Sent on (or queued until its next hop answers ARP).
    Forwarded {
        /// The egress NIC.
        nic: u8,
        /// The neighbour it is sent to.
        next_hop: IpAddress,
        /// How its addresses and ports were translated (`None` for a fragment after the
        /// first, which follows its first fragment's translation without ports).
        translation: Option<Translation>,
    },
    /// Dropped, and counted under this reason.
    Dropped(DropReason),
}

/// Which kind of destination NAT caught a first packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectKind {
    /// A `forward` rule (index into [`Policy::forwards`](crate::policy::Policy::forwards)).
    PortForward,
    /// A `dns` redirect (index into [`Policy::dns`](crate::policy::Policy::dns)).
    Dns,
}

/// A destination NAT applied to a first packet, before routing and the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// Port forward or DNS redirect.
    pub kind: RedirectKind,
    /// The rule's index in its list of the policy.
    pub rule: usize,
    /// The new destination address.
    pub to: IpAddress,
    /// The new destination port.
    pub to_port: u16,
}

/// The policy's decision on a first packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyDecision {
    /// The key the matcher decided: the packet after destination NAT and routing.
    pub key: FlowKey,
    /// Its verdict (as applied: a broadcast to the appliance is never logged).
    pub verdict: Verdict,
}

/// What the sender of a dropped packet was told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// A TCP reset (`reject` of a TCP segment).
    TcpReset,
    /// An ICMP error of this type and code.
    Icmp {
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
    },
}

/// What the data plane did with one frame. See the module documentation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    /// The port forward or DNS redirect that rewrote the destination, if one did.
    pub redirect: Option<Redirect>,
    /// The policy's decision, if the policy was asked (first packets that got as far as
    /// routing; never for packets of a known flow).
    pub decision: Option<PolicyDecision>,
    /// The reply sent to the sender, if any (not counting ones the rate limit withheld).
    pub reply: Option<Reply>,
    /// Whether the drop was written to the drop log (before its rate limit).
    pub logged: bool,
    /// The drop's detail, as its log line gives it (`spoofed-not-a-client`, ...).
    pub detail: Option<&'static str>,
    /// The `nat` rule that masqueraded the packet (index into `Policy::masquerade`).
    pub masquerade: Option<usize>,
    /// Where the packet went.
    pub fate: Fate,
}
