//! What is not known at build time, and how a test covers it.
//!
//! An interface addressed by `dhcp` (the uplink) learns its address, its gateway and its
//! DNS resolvers at run time. To run a packet through the data plane, the compiler gives
//! the appliance a stand-in lease ([`Case`]). Where the packet's fate cannot depend on the
//! stand-in, one case is enough: the lease is chosen clear of every address the packet and
//! the ruleset name. Where it can — a packet to `self` on that interface, or a DNS query the
//! redirect sends to a resolver DHCP will name — the packet is run once per stretch of
//! addresses over which no rule changes its mind ([`representatives`]), and a test must
//! hold for all of them.
//!
//! An interface addressed by `slaac` learns its IPv6 address, its default router and its
//! resolvers (RDNSS) from its router's advertisements: the compiler gives it a stand-in
//! advertisement ([`Advert`]) the same way — a prefix clear of the packet's addresses, and
//! for a DNS query the redirect sends to a resolver the router will name, one run per
//! stretch of IPv6 addresses ([`representatives6`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dataplane::packet::SPECIAL_PURPOSE;
use dataplane::policy::{flow_addr_to_ipv4, ipv4_to_flow_addr, Policy};

use crate::checked::{Addressing, Addressing6, Checked};
use crate::ranges::RangeSet;

/// A lease on the interface addressed by DHCP: the address, in a /31 with the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The interface's NIC.
    pub nic: u8,
    /// The appliance's address.
    pub address: Ipv4Addr,
    /// The gateway: the other address of the /31 (RFC 3021).
    pub gateway: Ipv4Addr,
}

/// Prefix length of a stand-in lease: a point-to-point /31 holds the address and the
/// gateway and nothing else, so no other address becomes on-link by accident.
pub const LEASE_PREFIX_LEN: u8 = 31;

impl Lease {
    /// A /31 lease of `address` on `nic`, the other half of the pair being the gateway.
    pub fn of(nic: u8, address: Ipv4Addr) -> Lease {
        Lease {
            nic,
            address,
            gateway: Ipv4Addr::from(u32::from(address) ^ 1),
        }
    }
}

/// The unknowns of one run, given values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Case {
    /// The lease of the DHCP interface, if the ruleset has one.
    pub lease: Option<Lease>,
    /// The first resolver DHCP names, if the uplink's resolvers are learned.
    pub resolver: Option<Ipv4Addr>,
    /// The router advertisement the SLAAC interface receives, if the ruleset has one.
    pub advert: Option<Advert>,
}

/// A router advertisement on the interface addressed by SLAAC: an autonomous /64 prefix
/// (the appliance forms its address in it), the advertising router (the default one) and
/// the resolver of its RDNSS option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advert {
    /// The interface's NIC.
    pub nic: u8,
    /// The advertised /64 prefix.
    pub prefix: Ipv6Addr,
    /// The resolver the advertisement names.
    pub resolver: Ipv6Addr,
}

/// The interface addressed by SLAAC, if any.
pub fn slaac_nic(checked: &Checked) -> Option<u8> {
    checked
        .interfaces
        .iter()
        .find(|i| i.addressing6 == Addressing6::Slaac)
        .map(|i| i.nic)
}

/// Where an IPv6 address learned on the uplink may be (its prefix, its resolvers): global
/// unicast space (2000::/3) outside the other interfaces' prefixes, the appliance's static
/// addresses and the clients' addresses.
pub fn learnable_space6(checked: &Checked) -> RangeSet {
    let global = RangeSet::range(0x2000_u128 << 112, (0x4000_u128 << 112) - 1);
    let block = |first: Ipv6Addr, prefix_len: u8| {
        let first = first.to_bits();
        (
            first,
            first | u128::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0),
        )
    };
    let host = |a: Ipv6Addr| (a.to_bits(), a.to_bits());
    let mut elsewhere: Vec<(u128, u128)> = checked
        .interfaces
        .iter()
        .filter(|i| !i.uplink)
        .filter_map(|i| i.prefix6())
        .map(|(net, len)| block(net, len))
        .collect();
    elsewhere.extend(
        checked
            .interfaces
            .iter()
            .filter_map(|i| i.address6())
            .map(host),
    );
    elsewhere.extend(checked.clients.iter().filter_map(|c| c.ipv6).map(host));
    global.subtract(&RangeSet::from_ranges(elsewhere))
}

/// Candidates for a stand-in advertised prefix, tried in order: documentation prefixes
/// (RFC 3849), what no real uplink advertises.
const STAND_IN_PREFIXES: [Ipv6Addr; 3] = [
    Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0x64, 0, 0, 0, 0),
    Ipv6Addr::new(0x2001, 0xdb8, 0xfffe, 0x64, 0, 0, 0, 0),
    Ipv6Addr::new(0x2001, 0xdb8, 0xfffd, 0x64, 0, 0, 0, 0),
];

/// A /64 prefix for a stand-in advertisement that the packet cannot tell from any other:
/// inside the learnable space, clear of `avoid` (the packet's addresses).
pub fn stand_in_prefix(checked: &Checked, avoid: &[IpAddr]) -> Ipv6Addr {
    let space = learnable_space6(checked);
    let clear = |prefix: &Ipv6Addr| {
        space.contains(prefix.to_bits())
            && !avoid.iter().any(|a| match a {
                IpAddr::V6(v6) => v6.to_bits() >> 64 == prefix.to_bits() >> 64,
                IpAddr::V4(_) => false,
            })
    };
    STAND_IN_PREFIXES
        .iter()
        .copied()
        .find(clear)
        .unwrap_or(STAND_IN_PREFIXES[0])
}

/// The interface addressed by DHCP, if any (at most the uplink).
pub fn dhcp_nic(checked: &Checked) -> Option<u8> {
    checked
        .interfaces
        .iter()
        .find(|i| i.addressing == Addressing::Dhcp)
        .map(|i| i.nic)
}

/// Whether the uplink's resolvers are learned by DHCP (a `dns ... to upstream` redirect
/// then sends queries to an address not known at build time).
pub fn resolvers_learned(checked: &Checked) -> bool {
    checked
        .uplink()
        .is_some_and(|u| u.addressing == Addressing::Dhcp)
}

/// Where an address learned on the uplink may be (its own address, its resolvers): any
/// unicast IPv4 address outside the data plane's special-purpose blocks, the other
/// interfaces' networks, the appliance's static addresses and the clients' addresses.
pub fn learnable_space(checked: &Checked) -> RangeSet {
    let v4 = RangeSet::range(ipv4_to_flow_addr(0), ipv4_to_flow_addr(u32::MAX));
    let block = |first: u32, prefix_len: u8| {
        let last = first | u32::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0);
        (ipv4_to_flow_addr(first), ipv4_to_flow_addr(last))
    };
    let host = |a: Ipv4Addr| (ipv4_to_flow_addr(a.into()), ipv4_to_flow_addr(a.into()));
    let mut elsewhere: Vec<(u128, u128)> = SPECIAL_PURPOSE
        .iter()
        .map(|cidr| block(cidr.network().address().to_bits(), cidr.prefix_len()))
        .collect();
    for iface in checked.interfaces.iter().filter(|i| !i.uplink) {
        if let Some((net, len)) = iface.network() {
            elsewhere.push(block(net.into(), len));
        }
    }
    elsewhere.extend(
        checked
            .interfaces
            .iter()
            .filter_map(|i| i.address())
            .map(host),
    );
    elsewhere.extend(checked.clients.iter().filter_map(|c| c.ipv4).map(host));
    v4.subtract(&RangeSet::from_ranges(elsewhere))
}

/// One IPv4 address per stretch of `space` over which no rule of `policy` changes its mind
/// about the destination: running these decides every address of `space`.
pub fn representatives(space: &RangeSet, policy: &Policy) -> Vec<Ipv4Addr> {
    cut_points(space, policy)
        .into_iter()
        .filter_map(flow_addr_to_ipv4)
        .map(Ipv4Addr::from)
        .collect()
}

/// [`representatives`] for IPv6 addresses.
pub fn representatives6(space: &RangeSet, policy: &Policy) -> Vec<Ipv6Addr> {
    cut_points(space, policy)
        .into_iter()
        .filter(|&a| flow_addr_to_ipv4(a).is_none())
        .map(Ipv6Addr::from)
        .collect()
}

/// The first address of `space` and every address of it where a rule's destination starts
/// or stops.
fn cut_points(space: &RangeSet, policy: &Policy) -> Vec<u128> {
    let mut cuts: Vec<u128> = Vec::new();
    for rule in policy.rules {
        for r in rule.dst.of(policy.addr_ranges) {
            cuts.push(r.first);
            if let Some(after) = r.last.checked_add(1) {
                cuts.push(after);
            }
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut points = Vec::new();
    for &(first, last) in space.ranges() {
        points.push(first);
        let start = cuts.partition_point(|&c| c <= first);
        points.extend(cuts[start..].iter().take_while(|&&c| c <= last));
    }
    points
}

/// Candidates for a stand-in lease, tried in order: shared address space (RFC 6598), what
/// an ISP's DHCP typically hands out, then the benchmarking and documentation blocks.
const STAND_IN_LEASES: [Ipv4Addr; 6] = [
    Ipv4Addr::new(100, 64, 0, 2),
    Ipv4Addr::new(100, 100, 100, 2),
    Ipv4Addr::new(100, 127, 255, 2),
    Ipv4Addr::new(198, 18, 0, 2),
    Ipv4Addr::new(198, 19, 255, 2),
    Ipv4Addr::new(192, 0, 2, 2),
];

/// A lease on `nic` that the packet cannot tell from any other: inside the learnable space,
/// clear of `avoid` (the packet's addresses, the resolver).
pub fn stand_in_lease(checked: &Checked, nic: u8, avoid: &[IpAddr]) -> Lease {
    let space = learnable_space(checked);
    let usable = |lease: &Lease| {
        [lease.address, lease.gateway].iter().all(|&a| {
            space.contains(ipv4_to_flow_addr(a.into())) && !avoid.contains(&IpAddr::V4(a))
        })
    };
    STAND_IN_LEASES
        .iter()
        .map(|&a| Lease::of(nic, a))
        .find(usable)
        .unwrap_or_else(|| Lease::of(nic, STAND_IN_LEASES[0]))
}
