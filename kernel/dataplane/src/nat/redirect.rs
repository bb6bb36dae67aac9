//! Destination NAT for new flows: port forwards and the DNS redirect. Both apply to flows
//! addressed to the appliance itself, before routing and the policy (pf's `rdr`
//! semantics: the rules see the translated flow).

use smoltcp::wire::{IpAddress, IpProtocol, IpVersion, Ipv4Address, Ipv6Address};

use super::policy_match::nic_in;
use crate::policy::{flow_addr_to_ipv4, DnsUpstream, Policy, PortForward};
use crate::state::FlowTuple;

/// The DNS port.
pub const DNS_PORT: u16 = 53;

/// A first packet's flow redirected by a port forward or the DNS redirect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Redirected {
    /// The index of the rule that redirected it (in `policy.forwards` or `policy.dns`).
    pub rule: usize,
    /// The flow with its new destination.
    pub flow: FlowTuple,
}

fn carries_ports(flow: &FlowTuple) -> bool {
    matches!(flow.protocol, IpProtocol::Tcp | IpProtocol::Udp)
}

/// The first port forward for `flow`, which arrived on `in_nic` where the appliance's
/// address (of the flow's family) is `appliance`: the flow redirected to the forward's
/// target address — one of the flow's family: a forward to a client with both addresses
/// is one per family — and port (`target_port + (port - ports.first)`), or `None` when no
/// forward applies.
pub fn port_forward(
    forwards: &[PortForward],
    in_nic: u8,
    appliance: IpAddress,
    flow: &FlowTuple,
) -> Option<Redirected> {
    if flow.dst != appliance || !carries_ports(flow) {
        return None;
    }
    let ipv4 = flow.dst.version() == IpVersion::Ipv4;
    let port = flow.dst_port;
    let (rule, forward) = forwards.iter().enumerate().find(|(_, f)| {
        f.in_nic == in_nic
            && f.protocol == u8::from(flow.protocol)
            && flow_addr_to_ipv4(f.target).is_some() == ipv4
            && f.ports.first <= port
            && port <= f.ports.last
    })?;
    let target_port = forward
        .target_port
        .checked_add(port - forward.ports.first)?;
    let target = match flow_addr_to_ipv4(forward.target) {
        Some(v4) => IpAddress::Ipv4(Ipv4Address::from_bits(v4)),
        None => IpAddress::Ipv6(Ipv6Address::from_bits(forward.target)),
    };
    Some(Redirected {
        rule,
        flow: flow.with_destination(target, target_port),
    })
}

/// `flow`, a DNS query (UDP or TCP port 53) that arrived on `in_nic` addressed to the
/// appliance (`appliance`, its address on that NIC, or one of the redirect's further `at`
/// addresses), redirected to the **first** upstream
/// resolver — of the policy's static list, or of `learned` (the resolvers learned on the
/// uplink, by DHCP or its static `dns` list) — when a `dns` rule covers `in_nic`. `None`
/// when no redirect applies or no resolver is known. The other resolvers of a list are not
/// used: every query goes to the first.
///
/// The resolver is the first of the query's family; without one, the first of the other
/// family — the query then crosses families on its way ([`super::across_families`]): a
/// client that learned the appliance's IPv6 address as its resolver is answered even
/// where the upstream resolvers are IPv4 only.
pub fn dns_redirect(
    policy: &Policy,
    in_nic: u8,
    appliance: IpAddress,
    flow: &FlowTuple,
    learned: &[IpAddress],
) -> Option<Redirected> {
    if flow.dst_port != DNS_PORT || !carries_ports(flow) {
        return None;
    }
    let (rule, redirect) = policy
        .dns
        .iter()
        .enumerate()
        .find(|(_, d)| nic_in(policy, d.in_nic, in_nic))?;
    // The `at` addresses are IPv4 (the virtual DNS servers of a Qubes import).
    let addressed = flow.dst == appliance
        || matches!(flow.dst, IpAddress::Ipv4(dst)
            if redirect.at.of(policy.ipv4_addrs).contains(&dst.to_bits()));
    if !addressed {
        return None;
    }
    let first_of = |resolvers: &mut dyn Iterator<Item = IpAddress>| {
        let mut other = None;
        for resolver in resolvers {
            if resolver.version() == flow.dst.version() {
                return Some(resolver);
            }
            other = other.or(Some(resolver));
        }
        other
    };
    let resolver = match redirect.upstream {
        DnsUpstream::Learned => first_of(&mut learned.iter().copied())?,
        DnsUpstream::Static(span) => first_of(
            &mut span
                .of(policy.ipv4_addrs)
                .iter()
                .map(|a| IpAddress::Ipv4(Ipv4Address::from_bits(*a))),
        )?,
    };
    Some(Redirected {
        rule,
        flow: flow.with_destination(resolver, DNS_PORT),
    })
}
