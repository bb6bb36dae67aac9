//! Destination NAT for new flows: port forwards and the DNS redirect. Both apply to flows
//! addressed to the appliance itself, before routing and the policy (pf's `rdr`
//! semantics: the rules see the translated flow).

use smoltcp::wire::{IpProtocol, Ipv4Address};

use super::policy_match::nic_in;
use crate::policy::{DnsUpstream, Policy, PortForward};
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
/// address is `appliance`: the flow redirected to the forward's target address and port
/// (`target_port + (port - ports.first)`), or `None` when no forward applies.
pub fn port_forward(
    forwards: &[PortForward],
    in_nic: u8,
    appliance: Ipv4Address,
    flow: &FlowTuple,
) -> Option<Redirected> {
    if flow.dst != appliance || !carries_ports(flow) {
        return None;
    }
    let port = flow.dst_port;
    let (rule, forward) = forwards.iter().enumerate().find(|(_, f)| {
        f.in_nic == in_nic
            && f.protocol == u8::from(flow.protocol)
            && f.ports.first <= port
            && port <= f.ports.last
    })?;
    let target_port = forward
        .target_port
        .checked_add(port - forward.ports.first)?;
    Some(Redirected {
        rule,
        flow: flow.with_destination(Ipv4Address::from_bits(forward.target), target_port),
    })
}

/// `flow`, a DNS query (UDP or TCP port 53) that arrived on `in_nic` addressed to the
/// appliance (`appliance`, its address on that NIC, or one of the redirect's further `at`
/// addresses), redirected to the **first** upstream
/// resolver — of the policy's static list, or of `learned` (the resolvers learned on the
/// uplink, by DHCP or its static `dns` list) — when a `dns` rule covers `in_nic`. `None`
/// when no redirect applies or no resolver is known. The other resolvers of a list are not
/// used: every query goes to the first.
pub fn dns_redirect(
    policy: &Policy,
    in_nic: u8,
    appliance: Ipv4Address,
    flow: &FlowTuple,
    learned: &[Ipv4Address],
) -> Option<Redirected> {
    if flow.dst_port != DNS_PORT || !carries_ports(flow) {
        return None;
    }
    let (rule, redirect) = policy
        .dns
        .iter()
        .enumerate()
        .find(|(_, d)| nic_in(policy, d.in_nic, in_nic))?;
    let addressed = flow.dst == appliance
        || redirect
            .at
            .of(policy.ipv4_addrs)
            .contains(&flow.dst.to_bits());
    if !addressed {
        return None;
    }
    let resolver = match redirect.upstream {
        DnsUpstream::Learned => learned.first().copied()?,
        DnsUpstream::Static(span) => Ipv4Address::from_bits(*span.of(policy.ipv4_addrs).first()?),
    };
    Some(Redirected {
        rule,
        flow: flow.with_destination(resolver, DNS_PORT),
    })
}
