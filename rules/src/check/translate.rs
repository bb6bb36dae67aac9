//! Address translation statements: `nat`, `forward` and `dns`.

use std::net::IpAddr;

use super::scope::Side;
use super::{Checker, Entity};
use crate::ast::{DnsDecl, ForwardDecl, ForwardTarget, NatDecl, ScopeItem, Upstream};
use crate::checked::{Addressing, Addressing6, DnsDef, DnsTarget, ForwardDef, MasqueradeDef};
use crate::diag::Diagnostic;
use crate::names;
use crate::ranges::RangeSet;
use crate::source::Loc;

/// The hint shared by every statement that needs an uplink.
const DECLARE_UPLINK: &str = "declare the uplink with 'dhcp' or 'address A/P gateway G'";

impl Checker<'_> {
    /// `nat from SCOPE to UPLINK`
    pub(super) fn nat(&mut self, nat: &NatDecl) {
        if let Err(d) = self.try_nat(nat) {
            self.error(d);
        }
    }

    fn try_nat(&mut self, nat: &NatDecl) -> Result<(), Diagnostic> {
        let to = self.interface_named(&nat.to.value, nat.to.loc)?;
        if !to.uplink {
            let hint = match self.out.uplink() {
                Some(uplink) => format!("the uplink is '{}'", uplink.name),
                None => format!("no interface is the uplink: {DECLARE_UPLINK}"),
            };
            return Err(Diagnostic::error(
                nat.to.loc,
                format!(
                    "masquerade leaves through the uplink, and '{}' is not the uplink",
                    nat.to.value
                ),
            )
            .with_hint(hint));
        }
        let out_nic = to.nic;
        for part in self.scope(&nat.from, Side::From)? {
            self.out.masquerades.push(MasqueradeDef {
                loc: nat.loc,
                in_nic: part.nics,
                src: part.addrs,
                out_nic,
            });
        }
        Ok(())
    }

    /// `forward IFACE PROTO port P[-Q] to CLIENT [port R]`
    pub(super) fn forward(&mut self, forward: &ForwardDecl) {
        if let Err(d) = self.try_forward(forward) {
            self.error(d);
        }
    }

    fn try_forward(&mut self, forward: &ForwardDecl) -> Result<(), Diagnostic> {
        let iface = self.interface_named(&forward.on.value, forward.on.loc)?;
        let (has_ipv4, has_ipv6) = (
            iface.addressing != Addressing::None,
            iface.addressing6 != Addressing6::None,
        );
        if !has_ipv4 && !has_ipv6 {
            return Err(Diagnostic::error(
                forward.on.loc,
                format!("interface '{}' has no address to forward from", iface.name),
            ));
        }
        let iface_name = iface.name.clone();
        let in_nic = iface.nic;
        if let Some(p) = forward
            .protocols
            .items
            .iter()
            .find(|p| p.value != names::TCP && p.value != names::UDP)
        {
            return Err(
                Diagnostic::error(p.loc, "port forwards are for tcp and udp")
                    .with_hint("write tcp, udp or { tcp, udp }"),
            );
        }
        // A client by name is forwarded to in each family it has an address of; by address,
        // in that address's family. Only the families the interface has: a flow of another
        // cannot be addressed to the appliance there.
        let (candidates, target_loc): (Vec<IpAddr>, Loc) = match &forward.target {
            ForwardTarget::Client(name) => {
                let client = self.client_named(&name.value, name.loc)?;
                let addresses = client.ipv4.map(IpAddr::V4).into_iter();
                (
                    addresses.chain(client.ipv6.map(IpAddr::V6)).collect(),
                    name.loc,
                )
            }
            ForwardTarget::Address(addr) => {
                let known = self.out.clients.iter().any(|c| {
                    c.ipv4.map(IpAddr::V4) == Some(addr.value)
                        || c.ipv6.map(IpAddr::V6) == Some(addr.value)
                });
                if !known {
                    return Err(Diagnostic::error(
                        addr.loc,
                        format!("forward to {}, which is not a client's address", addr.value),
                    )
                    .with_hint(format!(
                        "declare it first: client NAME {} on IFACE",
                        addr.value
                    )));
                }
                (vec![addr.value], addr.loc)
            }
        };
        let targets: Vec<IpAddr> = candidates
            .iter()
            .copied()
            .filter(|t| if t.is_ipv4() { has_ipv4 } else { has_ipv6 })
            .collect();
        if targets.is_empty() {
            let families = if candidates.iter().all(IpAddr::is_ipv4) {
                "IPv4"
            } else {
                "IPv6"
            };
            return Err(Diagnostic::error(
                target_loc,
                format!("interface '{iface_name}' has no {families} address to forward from"),
            ));
        }
        let (first, last) = forward.ports.value;
        let target_port = forward.target_port.as_ref().map_or(first, |p| p.value);
        if u32::from(target_port) + u32::from(last - first) > u32::from(u16::MAX) {
            let loc = forward.target_port.as_ref().map_or(target_loc, |p| p.loc);
            return Err(Diagnostic::error(
                loc,
                format!("the range {first}-{last} mapped to port {target_port} runs past 65535"),
            ));
        }
        for (p, target) in forward
            .protocols
            .items
            .iter()
            .flat_map(|p| targets.iter().map(move |t| (p, *t)))
        {
            let clash = self.out.forwards.iter().find(|f| {
                f.in_nic == in_nic
                    && f.protocol == p.value
                    && f.target.is_ipv4() == target.is_ipv4()
                    && f.ports.0 <= last
                    && first <= f.ports.1
            });
            if let Some(earlier) = clash {
                let pos = self.pos(earlier.loc);
                return Err(Diagnostic::error(
                    forward.ports.loc,
                    format!(
                        "these ports are already forwarded by the forward at {}:{}",
                        pos.line, pos.column
                    ),
                )
                .with_note(earlier.loc, "the earlier forward"));
            }
            self.out.forwards.push(ForwardDef {
                loc: forward.loc,
                in_nic,
                protocol: p.value,
                ports: (first, last),
                target,
                target_port,
            });
        }
        Ok(())
    }

    /// `dns from IFACES to upstream | to ADDR, ...`
    pub(super) fn dns(&mut self, dns: &DnsDecl) {
        if let Err(d) = self.try_dns(dns) {
            self.error(d);
        }
    }

    fn try_dns(&mut self, dns: &DnsDecl) -> Result<(), Diagnostic> {
        if dns.from.negated {
            return Err(Diagnostic::error(
                dns.from.loc,
                "a DNS redirect names its interfaces; '!' is not allowed here",
            ));
        }
        let mut nics = Vec::new();
        for item in &dns.from.items {
            let ScopeItem::Name(name) = item else {
                return Err(Diagnostic::error(
                    item.loc(),
                    "a DNS redirect applies to whole interfaces",
                )
                .with_hint("write: dns from IFACE to upstream"));
            };
            match self.entity_named(&name.value, name.loc)? {
                Entity::Interface(i) => nics.push(self.out.interfaces[i].nic),
                Entity::Client(_) => {
                    return Err(Diagnostic::error(
                        name.loc,
                        format!(
                            "'{}' is a client; a DNS redirect applies to whole interfaces",
                            name.value
                        ),
                    ))
                }
            }
        }
        let in_nics = RangeSet::from_ranges(nics.iter().map(|&n| (n.into(), n.into())));
        if let Some(earlier) = self.out.dns.iter().find(|d| d.in_nics.intersects(&in_nics)) {
            let pos = self.pos(earlier.loc);
            return Err(Diagnostic::error(
                dns.from.loc,
                format!(
                    "DNS from this interface is already redirected at {}:{}",
                    pos.line, pos.column
                ),
            )
            .with_note(earlier.loc, "the earlier redirect"));
        }
        let target = match &dns.upstream {
            Upstream::Static(addrs) => DnsTarget::Static(addrs.iter().map(|a| a.value).collect()),
            Upstream::Learned(loc) => {
                let Some(uplink) = self.out.uplink() else {
                    return Err(Diagnostic::error(
                        *loc,
                        "'upstream' needs an uplink to learn resolvers on",
                    )
                    .with_hint(DECLARE_UPLINK));
                };
                match uplink.addressing {
                    Addressing::Dhcp => DnsTarget::Learned(None),
                    // SLAAC learns the IPv6 resolvers (RDNSS); IPv4 queries then have none.
                    _ if uplink.dns.is_empty() && uplink.addressing6 == Addressing6::Slaac => {
                        DnsTarget::Learned(None)
                    }
                    _ if uplink.dns.is_empty() => {
                        return Err(Diagnostic::error(*loc, format!("the uplink '{}' has no resolvers", uplink.name))
                            .with_hint("add 'dns A, ...' (or 'slaac', for IPv6 resolvers by RDNSS) to the uplink, or name the resolvers here: dns from IFACE to A, ...")
                            .with_note(uplink.name_loc, "the uplink is declared here"))
                    }
                    _ => DnsTarget::Learned(Some(uplink.dns.clone())),
                }
            }
        };
        self.out.dns.push(DnsDef {
            loc: dns.loc,
            in_nics,
            at: dns.at.iter().map(|a| a.value).collect(),
            target,
        });
        Ok(())
    }
}
