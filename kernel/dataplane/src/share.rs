//! One client never hurts another: who a packet's source is, as every shared resource's
//! per-source share sees it.
//!
//! Each resource the appliance shares between its users — the packets waiting for ARP
//! ([`crate::neighbor`]), the state table's early drop ([`crate::state`]), the ICMP-error
//! and reset budgets ([`crate::icmp_error`]), the drop log ([`crate::drops`]) — charges what
//! it gives to a [`Source`], takes back from the biggest consumer first, and never lets one
//! source use up what the others need.
//!
//! # What a source is
//! A source is the address a packet came from on the NIC it arrived on. A **neighbour** —
//! an address on that NIC's own network, or a client the ruleset declares there — is a
//! host the appliance can tell apart from others (the clients; hosts on the uplink's
//! network): each is a class of its own. Addresses **behind a router** (the uplink's
//! internet) are many and free to forge: together they are one class per NIC, the NIC's
//! *remote side*, which gets one share, divided among its addresses where the resource
//! keeps them apart. So a flood from random internet addresses competes with itself, not
//! with the clients.

use smoltcp::wire::Ipv4Address;

/// Who sent a packet, for the shares of shared resources. See the module documentation.
/// `A` is the address family (IPv4 by default; IPv6 neighbour discovery uses
/// `Source<Ipv6Address>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Source<A = Ipv4Address> {
    /// The NIC the packet arrived on.
    pub nic: u8,
    /// Its source address.
    pub addr: A,
    /// Whether the address is behind a router on that NIC (not a neighbour).
    pub remote: bool,
}

/// A class of sources that share one share: a neighbour alone, or a NIC's remote side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceClass<A = Ipv4Address> {
    /// One neighbour on a NIC.
    Neighbour(u8, A),
    /// Every address behind a router on a NIC.
    Remote(u8),
}

impl<A: Copy> Source<A> {
    /// A neighbour `addr` on `nic`.
    pub const fn neighbour(nic: u8, addr: A) -> Source<A> {
        Source {
            nic,
            addr,
            remote: false,
        }
    }

    /// An address `addr` behind a router on `nic`.
    pub const fn remote(nic: u8, addr: A) -> Source<A> {
        Source {
            nic,
            addr,
            remote: true,
        }
    }

    /// The class whose share the source uses.
    pub fn class(&self) -> SourceClass<A> {
        if self.remote {
            SourceClass::Remote(self.nic)
        } else {
            SourceClass::Neighbour(self.nic, self.addr)
        }
    }
}

impl Source {
    /// An IPv6 sender on `nic` that is no client the appliance knows, in the IPv4-keyed
    /// shares (replies, drop log, early drop): every such sender on a NIC shares that NIC's
    /// remote class, so they never take more than one class's share there together. A
    /// declared or DHCP pool client's IPv6 packets take that client's own class instead
    /// (the appliance's `sources` stage names them). (The IPv6 neighbour queues have
    /// per-source shares of their own, in [`crate::ndp`].)
    pub const fn ipv6_sender(nic: u8) -> Source {
        Source::remote(nic, Ipv4Address::UNSPECIFIED)
    }
}

impl<A: Copy> From<Source<A>> for SourceClass<A> {
    fn from(source: Source<A>) -> SourceClass<A> {
        source.class()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_addresses_of_a_nic_share_one_class_and_neighbours_have_their_own() {
        let a = Ipv4Address::new(203, 0, 113, 9);
        let b = Ipv4Address::new(198, 51, 100, 1);
        assert_eq!(Source::remote(0, a).class(), Source::remote(0, b).class());
        assert_ne!(Source::remote(0, a).class(), Source::remote(1, a).class());
        assert_ne!(
            Source::neighbour(1, a).class(),
            Source::neighbour(1, b).class()
        );
        assert_ne!(
            Source::neighbour(0, a).class(),
            Source::remote(0, a).class()
        );
    }
}
