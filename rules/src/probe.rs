//! From a packet description (a `test` line or an `explain` argument) to the flow key(s)
//! the matcher sees: the arrival interface, the destination NAT the appliance applies
//! first (port forwards, DNS redirects), and the egress found by routing.
//!
//! Usually one key results. When the translated destination is not fixed at build time (a
//! DNS redirect to resolvers learned by DHCP) or is one of several (a resolver list), the
//! probe holds one key per distinct case the policy can tell apart, and a test must hold
//! for all of them.

use std::net::{IpAddr, Ipv4Addr};

use dataplane::policy::{ipv4_to_flow_addr, FlowKey, Policy, OUT_SELF};

use crate::ast::{Host, IcmpWord, PacketSpec};
use crate::checked::{Checked, DnsTarget, InterfaceDef};
use crate::diag::Diagnostic;
use crate::names::{self, has_ports, is_icmp};
use crate::ranges::RangeSet;
use crate::routing::{egress_name, route};

/// Source port of a test packet that does not give one.
pub const DEFAULT_SRC_PORT: u16 = 49152;

/// What the appliance did to the packet before the rules saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Translation {
    /// Nothing.
    None,
    /// A port forward rewrote the destination.
    Forward {
        /// The original destination.
        from: (IpAddr, u16),
        /// The client it goes to.
        to: (IpAddr, u16),
        /// Where the forward is.
        pos: dataplane::policy::SourcePos,
    },
    /// A DNS redirect sent the query to a resolver.
    Dns {
        /// The original destination.
        from: IpAddr,
        /// Where the redirect is.
        pos: dataplane::policy::SourcePos,
        /// The resolvers, or `None` if they are learned by DHCP.
        resolvers: Option<Vec<Ipv4Addr>>,
    },
}

/// A packet made concrete.
#[derive(Clone, Debug)]
pub struct Probe {
    /// The keys the matcher decides (see the module doc).
    pub keys: Vec<FlowKey>,
    /// What was translated.
    pub translation: Translation,
    /// The egress, as a name.
    pub egress: String,
}

/// Resolves a packet description against the ruleset.
pub fn probe(
    checked: &Checked,
    policy: &Policy,
    file: &crate::source::SourceFile,
    spec: &PacketSpec,
) -> Result<Probe, Diagnostic> {
    let protocol = spec.protocol.value;
    let iface = arrival(checked, spec)?;
    let src = host_address(
        checked,
        &spec.src.host.value,
        iface,
        spec.src.host.loc,
        family_hint(&spec.dst.host.value),
    )?
    .ok_or_else(|| {
        Diagnostic::error(
            spec.src.host.loc,
            "the appliance's own traffic is not filtered",
        )
        .with_hint("test packets come from a client or from the network")
    })?;
    let dst = host_address(
        checked,
        &spec.dst.host.value,
        iface,
        spec.dst.host.loc,
        family_of(src),
    )?;
    let (src_port, dst_port) = ports(spec, protocol)?;
    let icmp = icmp_fields(spec, protocol)?;
    let to_self = match (&spec.dst.host.value, dst) {
        (Host::SelfRef, _) => true,
        (_, Some(IpAddr::V4(v4))) => iface.address() == Some(v4),
        _ => false,
    };
    let key = |out: u8, dst: u128, dst_port: u16| FlowKey {
        in_nic: iface.nic,
        out,
        protocol,
        src: flow_addr(src),
        dst,
        src_port,
        dst_port,
        icmp_type: icmp.0,
        icmp_code: icmp.1,
    };
    if to_self {
        let original = dst.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        if let Some(f) = checked.forwards.iter().find(|f| {
            f.in_nic == iface.nic
                && f.protocol == protocol
                && f.ports.0 <= dst_port
                && dst_port <= f.ports.1
        }) {
            let port = f.translate_port(dst_port);
            let out = route(checked, IpAddr::V4(f.target))
                .map_err(|e| Diagnostic::error(spec.dst.loc, e))?;
            return Ok(Probe {
                keys: vec![key(out, ipv4_to_flow_addr(f.target.into()), port)],
                translation: Translation::Forward {
                    from: (original, dst_port),
                    to: (IpAddr::V4(f.target), port),
                    pos: file.position(f.loc.start),
                },
                egress: egress_name(checked, out),
            });
        }
        let dns_query = (protocol == names::UDP || protocol == names::TCP) && dst_port == 53;
        if let Some(redirect) = checked
            .dns
            .iter()
            .find(|d| dns_query && d.in_nics.contains(iface.nic.into()))
        {
            let resolvers = match &redirect.target {
                DnsTarget::Static(list) | DnsTarget::Learned(Some(list)) => Some(list.clone()),
                DnsTarget::Learned(None) => None,
            };
            let mut keys = Vec::new();
            let mut egress = String::new();
            match &resolvers {
                Some(list) => {
                    for &r in list {
                        let out = route(checked, IpAddr::V4(r))
                            .map_err(|e| Diagnostic::error(spec.dst.loc, e))?;
                        egress = egress_name(checked, out);
                        keys.push(key(out, ipv4_to_flow_addr(r.into()), dst_port));
                    }
                }
                None => {
                    let uplink = checked.uplink().map_or(OUT_SELF, |u| u.nic);
                    egress = egress_name(checked, uplink);
                    for addr in representatives(&uplink_space(checked), policy) {
                        keys.push(key(uplink, addr, dst_port));
                    }
                }
            }
            return Ok(Probe {
                keys,
                translation: Translation::Dns {
                    from: original,
                    pos: file.position(redirect.loc.start),
                    resolvers,
                },
                egress,
            });
        }
        // The appliance's address on a DHCP interface is learned: decide every case.
        let keys = match dst {
            Some(dst) => vec![key(OUT_SELF, flow_addr(dst), dst_port)],
            None => representatives(&uplink_space(checked), policy)
                .into_iter()
                .map(|d| key(OUT_SELF, d, dst_port))
                .collect(),
        };
        return Ok(Probe {
            keys,
            translation: Translation::None,
            egress: "self".into(),
        });
    }
    let dst = dst.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let out = route(checked, dst).map_err(|e| Diagnostic::error(spec.dst.loc, e))?;
    Ok(Probe {
        keys: vec![key(out, flow_addr(dst), dst_port)],
        translation: Translation::None,
        egress: egress_name(checked, out),
    })
}

/// The interface the packet arrives on: `on IFACE`, or the source client's.
fn arrival<'a>(checked: &'a Checked, spec: &PacketSpec) -> Result<&'a InterfaceDef, Diagnostic> {
    if let Some(on) = &spec.on {
        return checked.interface(&on.value).ok_or_else(|| {
            Diagnostic::error(on.loc, format!("unknown interface '{}'", on.value)).with_hint_opt(
                names::did_you_mean(
                    &on.value,
                    checked.interfaces.iter().map(|i| i.name.as_str()),
                ),
            )
        });
    }
    let client = match &spec.src.host.value {
        Host::Client(name) => Some(
            checked
                .client(name)
                .ok_or_else(|| unknown_client(checked, name, spec.src.host.loc))?,
        ),
        Host::Addr(IpAddr::V4(a)) => checked.clients.iter().find(|c| c.ipv4 == Some(*a)),
        Host::Addr(IpAddr::V6(a)) => checked.clients.iter().find(|c| c.ipv6 == Some(*a)),
        Host::SelfRef => None,
    };
    client
        .and_then(|c| checked.interface_on(c.nic))
        .ok_or_else(|| {
            Diagnostic::error(spec.loc, "say which interface the packet arrives on")
                .with_hint("add 'on IFACE'")
        })
}

fn unknown_client(checked: &Checked, name: &str, loc: crate::source::Loc) -> Diagnostic {
    Diagnostic::error(loc, format!("unknown client '{name}'")).with_hint_opt(names::did_you_mean(
        name,
        checked.clients.iter().map(|c| c.name.as_str()),
    ))
}

/// The address family a client name should resolve to, from the other end of the packet.
fn family_hint(other: &Host) -> Option<bool> {
    match other {
        Host::Addr(a) => Some(a.is_ipv6()),
        _ => None,
    }
}

fn family_of(addr: IpAddr) -> Option<bool> {
    Some(addr.is_ipv6())
}

/// The address of a host; `None` for `self` on an interface whose address is learned.
fn host_address(
    checked: &Checked,
    host: &Host,
    iface: &InterfaceDef,
    loc: crate::source::Loc,
    want_v6: Option<bool>,
) -> Result<Option<IpAddr>, Diagnostic> {
    match host {
        Host::Addr(a) => Ok(Some(*a)),
        Host::SelfRef => Ok(iface.address().map(IpAddr::V4)),
        Host::Client(name) => {
            let client = checked
                .client(name)
                .ok_or_else(|| unknown_client(checked, name, loc))?;
            let v4 = client.ipv4.map(IpAddr::V4);
            let v6 = client.ipv6.map(IpAddr::V6);
            let address = if want_v6 == Some(true) {
                v6.or(v4)
            } else {
                v4.or(v6)
            };
            address
                .map(Some)
                .ok_or_else(|| Diagnostic::error(loc, format!("client '{name}' has no address")))
        }
    }
}

/// Source and destination port, checked against the protocol.
fn ports(spec: &PacketSpec, protocol: u8) -> Result<(u16, u16), Diagnostic> {
    if !has_ports(protocol) {
        if let Some(p) = spec.src.port.as_ref().or(spec.dst.port.as_ref()) {
            return Err(Diagnostic::error(p.loc, "port on a portless protocol")
                .with_hint("only tcp, udp and sctp have ports"));
        }
        return Ok((0, 0));
    }
    let Some(dst) = &spec.dst.port else {
        return Err(
            Diagnostic::error(spec.dst.loc, "the destination needs a port")
                .with_hint("write ADDR:PORT"),
        );
    };
    Ok((
        spec.src.port.as_ref().map_or(DEFAULT_SRC_PORT, |p| p.value),
        dst.value,
    ))
}

/// ICMP type and code, checked against the protocol.
fn icmp_fields(spec: &PacketSpec, protocol: u8) -> Result<(u8, u8), Diagnostic> {
    let Some(item) = &spec.icmp else {
        if is_icmp(protocol) {
            return Err(
                Diagnostic::error(spec.protocol.loc, "an ICMP packet needs a type")
                    .with_hint("add e.g. 'type echo-request'"),
            );
        }
        return Ok((0, 0));
    };
    if !is_icmp(protocol) {
        return Err(Diagnostic::error(
            item.ty.loc,
            "only icmp and icmp6 packets have a type",
        ));
    }
    let ty = match &item.ty.value {
        IcmpWord::Number(n) => *n,
        IcmpWord::Name(name) => names::icmp_types(protocol)
            .iter()
            .find(|t| t.name == name.as_str())
            .map(|t| t.number)
            .ok_or_else(|| {
                Diagnostic::error(item.ty.loc, format!("unknown ICMP type '{name}'")).with_hint_opt(
                    names::did_you_mean(name, names::icmp_types(protocol).iter().map(|t| t.name)),
                )
            })?,
    };
    let code = match &item.code {
        None => 0,
        Some(word) => match &word.value {
            IcmpWord::Number(n) => *n,
            IcmpWord::Name(name) => names::icmp_types(protocol)
                .iter()
                .find(|t| t.number == ty)
                .and_then(|t| t.codes.iter().find(|(n, _)| *n == name.as_str()))
                .map(|&(_, c)| c)
                .ok_or_else(|| {
                    Diagnostic::error(word.loc, format!("unknown ICMP code '{name}'"))
                })?,
        },
    };
    Ok((ty, code))
}

/// An address in the flow address space.
pub fn flow_addr(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => ipv4_to_flow_addr(a.into()),
        IpAddr::V6(a) => a.into(),
    }
}

/// Where an address learned on the uplink may be (a resolver, or the appliance's own DHCP
/// address): any unicast IPv4 address that routes out of the uplink — not the appliance's,
/// not a client's, not on another connected network.
fn uplink_space(checked: &Checked) -> RangeSet {
    let v4 = RangeSet::range(ipv4_to_flow_addr(0), ipv4_to_flow_addr(u32::MAX));
    // 0.0.0.0/8, 127.0.0.0/8 and 224.0.0.0/3 (multicast and reserved) are never unicast hosts.
    let special = [
        (0x0000_0000u32, 0x00ff_ffffu32),
        (0x7f00_0000, 0x7fff_ffff),
        (0xe000_0000, 0xffff_ffff),
    ];
    let mut elsewhere: Vec<(u128, u128)> = special
        .iter()
        .map(|&(a, b)| (ipv4_to_flow_addr(a), ipv4_to_flow_addr(b)))
        .collect();
    for iface in checked.interfaces.iter().filter(|i| !i.uplink) {
        if let Some((net, len)) = iface.network() {
            let first = u32::from(net);
            let last = first | (u32::MAX.checked_shr(u32::from(len)).unwrap_or(0));
            elsewhere.push((ipv4_to_flow_addr(first), ipv4_to_flow_addr(last)));
        }
    }
    for iface in &checked.interfaces {
        if let Some(a) = iface.address() {
            elsewhere.push((ipv4_to_flow_addr(a.into()), ipv4_to_flow_addr(a.into())));
        }
    }
    for c in &checked.clients {
        if let Some(a) = c.ipv4 {
            elsewhere.push((ipv4_to_flow_addr(a.into()), ipv4_to_flow_addr(a.into())));
        }
    }
    v4.subtract(&RangeSet::from_ranges(elsewhere))
}

/// One destination address per stretch of `space` over which no rule of `policy` changes
/// its mind: deciding these decides every address of `space`.
fn representatives(space: &RangeSet, policy: &Policy) -> Vec<u128> {
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
