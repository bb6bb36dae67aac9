//! Destination NAT for new flows: port forwards and the DNS redirect. Both apply to flows
//! addressed to the appliance itself, before routing and the policy (pf's `rdr`
//! semantics: the rules see the translated flow).

use smoltcp::wire::{IpProtocol, Ipv4Address};

use super::policy_match::nic_in;
use crate::policy::{DnsUpstream, Policy, PortForward};
use crate::state::FlowTuple;

/// The DNS port.
pub const DNS_PORT: u16 = 53;

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
) -> Option<FlowTuple> {
    if flow.dst != appliance || !carries_ports(flow) {
        return None;
    }
    let port = flow.dst_port;
    let forward = forwards.iter().find(|f| {
        f.in_nic == in_nic
            && f.protocol == u8::from(flow.protocol)
            && f.ports.first <= port
            && port <= f.ports.last
    })?;
    let target_port = forward
        .target_port
        .checked_add(port - forward.ports.first)?;
    Some(flow.with_destination(Ipv4Address::from_bits(forward.target), target_port))
}

/// `flow`, a DNS query (UDP or TCP port 53) that arrived on `in_nic` addressed to the
/// appliance (`appliance`, its address on that NIC), redirected to the first upstream
/// resolver — the policy's static list, or `learned` (the resolvers learned on the uplink,
/// by DHCP or its static `dns` list) — when a `dns` rule covers `in_nic`. `None` when no
/// redirect applies or no resolver is known.
pub fn dns_redirect(
    policy: &Policy,
    in_nic: u8,
    appliance: Ipv4Address,
    flow: &FlowTuple,
    learned: &[Ipv4Address],
) -> Option<FlowTuple> {
    if flow.dst != appliance || flow.dst_port != DNS_PORT || !carries_ports(flow) {
        return None;
    }
    let redirect = policy
        .dns
        .iter()
        .find(|d| nic_in(policy, d.in_nic, in_nic))?;
    let resolver = match redirect.upstream {
        DnsUpstream::Learned => learned.first().copied()?,
        DnsUpstream::Static(span) => Ipv4Address::from_bits(*span.of(policy.ipv4_addrs).first()?),
    };
    Some(flow.with_destination(resolver, DNS_PORT))
}
