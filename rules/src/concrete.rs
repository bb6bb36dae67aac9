//! A packet description (a `test` line or an `explain` argument) made concrete: the
//! interface it arrives on, its addresses, ports and ICMP type. What the appliance then does
//! with it is for the data plane to say ([`crate::dryrun`]).

use std::net::IpAddr;

use crate::ast::{Host, IcmpWord, PacketSpec};
use crate::checked::{Addressing, Addressing6, Checked, InterfaceDef};
use crate::diag::Diagnostic;
use crate::names::{self, has_ports, is_icmp};

/// Source port of a test packet that does not give one.
pub const DEFAULT_SRC_PORT: u16 = 49152;

/// Where a described packet is addressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// A known address.
    Addr(IpAddr),
    /// The appliance's address on the arrival interface, which DHCP gives it: not known at
    /// build time.
    LearnedSelf,
    /// The appliance's IPv6 address on the arrival interface, which it forms by SLAAC from
    /// its router's advertisements: not known at build time.
    LearnedSelf6,
}

/// A packet made concrete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConcretePacket {
    /// The NIC it arrives on.
    pub in_nic: u8,
    /// Its IP protocol.
    pub protocol: u8,
    /// Its source.
    pub src: IpAddr,
    /// Its destination.
    pub dst: Destination,
    /// Source port (0 for protocols without ports).
    pub src_port: u16,
    /// Destination port (0 for protocols without ports).
    pub dst_port: u16,
    /// ICMP type and code (zeros for other protocols).
    pub icmp: (u8, u8),
    /// The IPv4 options it carries.
    pub options: IpOptionSet,
    /// The sender's MAC, if the description gives one (else the host's own, or a client's
    /// pinned MAC).
    pub mac: Option<[u8; 6]>,
    /// Whether it is sent to the link's broadcast address whatever its IP destination.
    pub broadcast: bool,
}

/// The IPv4 options of a described packet: a set of the options of
/// [`IP_OPTIONS`](names::IP_OPTIONS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpOptionSet(u8);

impl IpOptionSet {
    /// The set with option number `kind` added (one of `names::IP_OPTIONS`).
    fn with(self, kind: u8) -> IpOptionSet {
        let bit = names::IP_OPTIONS.iter().position(|&(_, k)| k == kind);
        IpOptionSet(self.0 | bit.map_or(0, |b| 1 << b))
    }

    /// Whether `kind` is in the set.
    fn contains(self, kind: u8) -> bool {
        self.with(kind) == self
    }

    /// The option numbers in the set, in the order of `names::IP_OPTIONS`.
    pub fn kinds(self) -> impl Iterator<Item = u8> {
        names::IP_OPTIONS
            .iter()
            .enumerate()
            .filter(move |(b, _)| self.0 & (1 << b) != 0)
            .map(|(_, &(_, kind))| kind)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Makes a packet description concrete against the ruleset.
pub fn concrete(checked: &Checked, spec: &PacketSpec) -> Result<ConcretePacket, Diagnostic> {
    let protocol = spec.protocol.value;
    let iface = arrival(checked, spec)?;
    let src = host_address(
        checked,
        &spec.src.host.value,
        iface,
        spec.src.host.loc,
        family_hint(&spec.dst.host.value).or((protocol == names::ICMP6).then_some(true)),
    )?
    .ok_or_else(|| {
        Diagnostic::error(
            spec.src.host.loc,
            "the appliance's own traffic is not filtered",
        )
        .with_hint("test packets come from a client or from the network")
    })?;
    let dst = match host_address(
        checked,
        &spec.dst.host.value,
        iface,
        spec.dst.host.loc,
        family_of(src),
    )? {
        Some(addr) => Destination::Addr(addr),
        None if !src.is_ipv6() && iface.addressing == Addressing::Dhcp => Destination::LearnedSelf,
        None if src.is_ipv6() && iface.addressing6 == Addressing6::Slaac => {
            Destination::LearnedSelf6
        }
        None => {
            return Err(Diagnostic::error(
                spec.dst.host.loc,
                match src {
                    IpAddr::V6(_) => {
                        format!("'{}' has no IPv6 address to send to", iface.name)
                    }
                    IpAddr::V4(_) => format!("'{}' has no IPv4 address to send to", iface.name),
                },
            ))
        }
    };
    let (src_port, dst_port) = ports(spec, protocol)?;
    let icmp = icmp_fields(spec, protocol)?;
    let mut options = IpOptionSet::default();
    for option in &spec.options {
        if src.is_ipv6() {
            return Err(Diagnostic::error(
                option.loc,
                "IPv4 options on an IPv6 packet",
            ));
        }
        if options.contains(option.value) {
            return Err(Diagnostic::error(option.loc, "an option given twice"));
        }
        options = options.with(option.value);
    }
    Ok(ConcretePacket {
        in_nic: iface.nic,
        protocol,
        src,
        dst,
        src_port,
        dst_port,
        icmp,
        options,
        mac: spec.mac.as_ref().map(|m| m.value),
        broadcast: spec.broadcast.is_some(),
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
        Host::SelfRef if want_v6 == Some(true) => Ok(iface.address6().map(IpAddr::V6)),
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
