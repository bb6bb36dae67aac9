//! The flow key: the fields of a packet that the policy decides on.

use super::model::OUT_SELF;

/// What the policy sees of the first packet of a flow, after routing (so the egress is
/// known) and after destination NAT (so port forwards are already translated, and the key
/// says so: a rule can match forwarded packets alone).
///
/// Fields that do not apply to the packet's protocol are zero: ports for portless
/// protocols, ICMP type and code for non-ICMP packets. The compiler guarantees that a rule
/// constraining ports also constrains the protocol to one with ports (and likewise for ICMP),
/// so those zeroes never match by accident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    /// NIC the packet arrived on.
    pub in_nic: u8,
    /// NIC it will leave through, or [`OUT_SELF`] when it is addressed to the appliance.
    pub out: u8,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...).
    pub protocol: u8,
    /// Source address in the unified flow address space.
    pub src: u128,
    /// Destination address in the unified flow address space.
    pub dst: u128,
    /// Source port (TCP/UDP/SCTP), else 0.
    pub src_port: u16,
    /// Destination port (TCP/UDP/SCTP), else 0.
    pub dst_port: u16,
    /// ICMP type (ICMP/ICMPv6), else 0.
    pub icmp_type: u8,
    /// ICMP code (ICMP/ICMPv6), else 0.
    pub icmp_code: u8,
    /// Which destination NAT rewrote the packet: [`REDIRECT_NONE`], [`REDIRECT_FORWARD`]
    /// (a port forward: what `forwarded` rules match) or [`REDIRECT_DNS`].
    pub redirect: u8,
}

/// [`FlowKey::redirect`] of a packet no destination NAT rewrote.
pub const REDIRECT_NONE: u8 = 0;
/// [`FlowKey::redirect`] of a packet a port forward rewrote.
pub const REDIRECT_FORWARD: u8 = 1;
/// [`FlowKey::redirect`] of a DNS query the DNS redirect rewrote.
pub const REDIRECT_DNS: u8 = 2;

impl FlowKey {
    /// Whether the packet is addressed to the appliance itself.
    pub fn is_to_self(&self) -> bool {
        self.out == OUT_SELF
    }
}
