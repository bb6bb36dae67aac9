//! Interfaces, clients and tables.

use std::net::{IpAddr, Ipv4Addr};

use dataplane::policy::{ipv4_to_flow_addr, MAX_NICS};
use ipnetwork::IpNetwork;
use smoltcp::wire::EthernetAddress;

use super::{Checker, Entity, TableDef};
use crate::ast::{
    self, ClientDecl, InterfaceDecl, Located, Ruleset, Statement, TableDecl, TableEntry,
};
use crate::checked::{network_of, Addressing, Addressing6, ClientDef, InterfaceDef};
use crate::describe::mac_text;
use crate::diag::Diagnostic;
use crate::ranges::RangeSet;
use crate::source::Loc;

/// The flow-address range of a network.
pub(super) fn net_range(net: &IpNetwork) -> (u128, u128) {
    match net {
        IpNetwork::V4(n) => (
            ipv4_to_flow_addr(n.network().into()),
            ipv4_to_flow_addr(n.broadcast().into()),
        ),
        IpNetwork::V6(n) => {
            let first = u128::from(n.network());
            let host_bits = 128 - u32::from(n.prefix());
            let last = if host_bits == 128 {
                u128::MAX
            } else {
                first | ((1u128 << host_bits) - 1)
            };
            (first, last)
        }
    }
}

/// The broadcast address of a network.
fn broadcast_of(network: Ipv4Addr, prefix_len: u8) -> Ipv4Addr {
    let host = if prefix_len == 0 {
        u32::MAX
    } else {
        u32::MAX >> u32::from(prefix_len)
    };
    Ipv4Addr::from(u32::from(network) | host)
}

/// Why `addr` cannot be a host on `network/prefix_len` (network or broadcast address).
fn reserved_host(addr: Ipv4Addr, network: Ipv4Addr, prefix_len: u8) -> Option<&'static str> {
    if prefix_len > 30 {
        None
    } else if addr == network {
        Some("the network address")
    } else if addr == broadcast_of(network, prefix_len) {
        Some("the broadcast address")
    } else {
        None
    }
}

/// Checks that a client's address `addr` is in its interface's subnet (`inside`) and not
/// the appliance's own (`own`); `subnet` is what the message calls it, its first address
/// and its prefix length.
pub(super) fn client_on_subnet<A: std::fmt::Display>(
    iface: &InterfaceDef,
    loc: Loc,
    addr: A,
    inside: bool,
    own: bool,
    subnet: (&str, A, u8),
) -> Result<(), Diagnostic> {
    let (what, first, len) = subnet;
    if !inside {
        return Err(Diagnostic::error(
            loc,
            format!(
                "{addr} is outside interface '{}''s {what} {first}/{len}",
                iface.name
            ),
        )
        .with_note(iface.name_loc, "the interface is declared here"));
    }
    if own {
        return Err(Diagnostic::error(
            loc,
            format!("{addr} is the appliance's own address on '{}'", iface.name),
        ));
    }
    Ok(())
}

impl Checker<'_> {
    /// Checks all interface, client and table declarations (before any rule uses them).
    pub(super) fn declarations(&mut self, ruleset: &Ruleset) {
        for statement in &ruleset.statements {
            if let Statement::Interface(decl) = statement {
                if let Err(d) = self.interface(decl) {
                    self.error(d);
                }
            }
        }
        self.single_uplink();
        for statement in &ruleset.statements {
            match statement {
                Statement::Client(decl) => {
                    if let Err(d) = self.client(decl) {
                        self.error(d);
                    }
                }
                Statement::Table(decl) => {
                    if let Err(d) = self.table(decl) {
                        self.error(d);
                    }
                }
                _ => {}
            }
        }
    }

    /// Records `name` in the interface/client namespace, or reports the earlier declaration.
    fn declare(&mut self, name: &ast::Name, entity: Entity) -> Result<(), Diagnostic> {
        if let Some(&(earlier, loc)) = self.names.get(&name.value) {
            let kind = match earlier {
                Entity::Interface(_) => "an interface",
                Entity::Client(_) => "a client",
            };
            let pos = self.pos(loc);
            return Err(Diagnostic::error(
                name.loc,
                format!(
                    "'{}' is already declared as {kind} at {}:{}",
                    name.value, pos.line, pos.column
                ),
            )
            .with_note(loc, "the first declaration is here"));
        }
        self.names.insert(name.value.clone(), (entity, name.loc));
        Ok(())
    }

    fn interface(&mut self, decl: &InterfaceDecl) -> Result<(), Diagnostic> {
        let nic = decl.nic.value;
        if nic as usize >= MAX_NICS {
            return Err(
                Diagnostic::error(decl.nic.loc, format!("nic{nic} is out of range"))
                    .with_hint(format!("the appliance drives nic0 .. nic{}", MAX_NICS - 1)),
            );
        }
        let nic = nic as u8;
        if let Some(other) = self.out.interfaces.iter().find(|i| i.nic == nic) {
            return Err(Diagnostic::error(
                decl.nic.loc,
                format!("nic{nic} is already used by interface '{}'", other.name),
            )
            .with_note(other.name_loc, "declared here"));
        }
        let addressing = match &decl.addressing {
            ast::Addressing::None => Addressing::None,
            ast::Addressing::Dhcp(_) => Addressing::Dhcp,
            ast::Addressing::Static {
                address,
                prefix_len,
                gateway,
            } => {
                self.static_address(address.value, *prefix_len, address.loc, gateway.as_ref())?;
                Addressing::Static {
                    address: address.value,
                    prefix_len: *prefix_len,
                    gateway: gateway.as_ref().map(|g| g.value),
                }
            }
        };
        let addressing6 = self.addressing6(decl)?;
        let uplink = matches!(
            addressing,
            Addressing::Dhcp
                | Addressing::Static {
                    gateway: Some(_),
                    ..
                }
        ) || matches!(
            addressing6,
            Addressing6::Slaac
                | Addressing6::Static {
                    gateway: Some(_),
                    ..
                }
        );
        let router_adverts = self.router_adverts(decl, addressing6, uplink)?;
        if let (Some(first), false) = (decl.dns.first(), uplink) {
            self.diags.push(
                Diagnostic::warning(first.loc, "DNS servers on an interface that is not the uplink are not used")
                    .with_hint("resolvers are only learned on the uplink (the interface with 'dhcp' or a 'gateway')"),
            );
        } else if let (Some(first), Addressing::Dhcp) = (decl.dns.first(), addressing) {
            self.diags.push(
                Diagnostic::warning(first.loc, "DNS servers on a DHCP interface are not used")
                    .with_hint("with 'dhcp' the resolvers are learned; give 'address' and 'gateway' to use static ones"),
            );
        }
        if addressing == Addressing::None && addressing6 == Addressing6::None {
            self.diags.push(
                Diagnostic::warning(
                    decl.name.loc,
                    format!("interface '{}' has no IPv4 address", decl.name.value),
                )
                .with_hint("add 'dhcp' or 'address A/P'; without one it forwards nothing on IPv4"),
            );
        }
        self.declare(&decl.name, Entity::Interface(self.out.interfaces.len()))?;
        self.out.interfaces.push(InterfaceDef {
            name: decl.name.value.clone(),
            name_loc: decl.name.loc,
            pos: self.pos(decl.loc),
            nic,
            addressing,
            dns: decl.dns.iter().map(|d| d.value).collect(),
            uplink,
            mtu: decl
                .mtu
                .as_ref()
                .map_or(dataplane::policy::MAX_MTU, |m| m.value as u16),
            addressing6,
            router_adverts,
        });
        Ok(())
    }

    /// Checks `address/prefix_len [gateway G]` against itself and earlier interfaces.
    fn static_address(
        &self,
        address: Ipv4Addr,
        prefix_len: u8,
        loc: Loc,
        gateway: Option<&ast::Located<Ipv4Addr>>,
    ) -> Result<(), Diagnostic> {
        if prefix_len == 0 {
            return Err(Diagnostic::error(loc, "a connected network cannot be /0"));
        }
        let network = network_of(address, prefix_len);
        if let Some(what) = reserved_host(address, network, prefix_len) {
            return Err(Diagnostic::error(
                loc,
                format!("{address} is {what} of {network}/{prefix_len}"),
            )
            .with_hint("give the appliance a host address inside the network"));
        }
        if let Some(g) = gateway {
            if network_of(g.value, prefix_len) != network {
                return Err(Diagnostic::error(
                    g.loc,
                    format!(
                        "gateway {} is outside the network {network}/{prefix_len}",
                        g.value
                    ),
                ));
            }
            if g.value == address {
                return Err(Diagnostic::error(
                    g.loc,
                    "the gateway is the interface's own address",
                ));
            }
        }
        for other in &self.out.interfaces {
            if let Some((net, len)) = other.network() {
                let shorter = len.min(prefix_len);
                if network_of(net, shorter) == network_of(network, shorter) {
                    return Err(Diagnostic::error(
                        loc,
                        format!(
                            "network {network}/{prefix_len} overlaps interface '{}''s {net}/{len}",
                            other.name
                        ),
                    )
                    .with_note(other.name_loc, "declared here"));
                }
            }
        }
        Ok(())
    }

    /// Reports every uplink after the first.
    fn single_uplink(&mut self) {
        let uplinks: Vec<&InterfaceDef> = self.out.interfaces.iter().filter(|i| i.uplink).collect();
        let Some(first) = uplinks.first() else { return };
        let errors: Vec<Diagnostic> = uplinks[1..]
            .iter()
            .map(|second| {
                Diagnostic::error(
                    second.name_loc,
                    format!(
                        "two uplinks: '{}' and '{}' both have a default route",
                        first.name, second.name
                    ),
                )
                .with_hint("exactly one interface, the uplink, has 'dhcp', 'slaac', a 'gateway' or a 'gateway6'")
                .with_note(first.name_loc, "the first uplink is declared here")
            })
            .collect();
        for e in errors {
            self.error(e);
        }
    }

    fn client(&mut self, decl: &ClientDecl) -> Result<(), Diagnostic> {
        let iface = self.interface_named(&decl.on.value, decl.on.loc)?.clone();
        let (mut ipv4, mut ipv6) = (None, None);
        for address in &decl.addresses {
            match address.value {
                IpAddr::V4(a) => {
                    if ipv4.replace(a).is_some() {
                        return Err(Diagnostic::error(address.loc, format!("client '{}' has two IPv4 addresses", decl.name.value))
                            .with_hint("a client has at most one IPv4 and one IPv6 address; declare another client"));
                    }
                    self.client_address_on(a, &iface, address.loc)?;
                }
                IpAddr::V6(a) => {
                    if ipv6.replace(a).is_some() {
                        return Err(Diagnostic::error(address.loc, format!("client '{}' has two IPv6 addresses", decl.name.value))
                            .with_hint("a client has at most one IPv4 and one IPv6 address; declare another client"));
                    }
                    self.client_address6_on(a, &iface, address.loc)?;
                }
            }
            let value = address.value;
            let owner = self.out.clients.iter().find(|c| {
                c.ipv4.map(IpAddr::V4) == Some(value) || c.ipv6.map(IpAddr::V6) == Some(value)
            });
            if let Some(owner) = owner {
                return Err(Diagnostic::error(
                    address.loc,
                    format!("{value} is already the address of client '{}'", owner.name),
                )
                .with_note(owner.name_loc, "declared here"));
            }
        }
        if let Some(mac) = &decl.mac {
            self.client_mac(mac, iface.nic)?;
        }
        self.declare(&decl.name, Entity::Client(self.out.clients.len()))?;
        self.out.clients.push(ClientDef {
            name: decl.name.value.clone(),
            name_loc: decl.name.loc,
            pos: self.pos(decl.loc),
            nic: iface.nic,
            ipv4,
            ipv6,
            mac: decl.mac.as_ref().map(|m| m.value),
            max_states: decl.max_states.as_ref().map_or(0, |m| m.value),
        });
        Ok(())
    }

    /// Checks a client's pinned MAC: one a station can have, and no other client's on the
    /// same interface.
    fn client_mac(&self, mac: &Located<[u8; 6]>, nic: u8) -> Result<(), Diagnostic> {
        let station = EthernetAddress(mac.value);
        let text = mac_text(mac.value);
        if !dataplane::arp::is_station(station) {
            let what = if station.is_broadcast() {
                "the broadcast address"
            } else if station.is_multicast() {
                "a multicast address"
            } else {
                "all zeros"
            };
            return Err(Diagnostic::error(
                mac.loc,
                format!("{text} is {what}, not a station's MAC"),
            )
            .with_hint("a client's MAC is an individual address: its first byte is even"));
        }
        let owner = self
            .out
            .clients
            .iter()
            .find(|c| c.nic == nic && c.mac == Some(mac.value));
        if let Some(owner) = owner {
            return Err(Diagnostic::error(
                mac.loc,
                format!("{text} is already the MAC of client '{}'", owner.name),
            )
            .with_note(owner.name_loc, "declared here"));
        }
        Ok(())
    }

    /// Checks that a client's IPv4 address is a host on its interface's network.
    fn client_address_on(
        &self,
        addr: Ipv4Addr,
        iface: &InterfaceDef,
        loc: Loc,
    ) -> Result<(), Diagnostic> {
        match iface.addressing {
            Addressing::None => Err(Diagnostic::error(
                loc,
                format!(
                    "interface '{}' has no IPv4 address for clients to use",
                    iface.name
                ),
            )),
            Addressing::Dhcp => Ok(()),
            Addressing::Static {
                address,
                prefix_len,
                ..
            } => {
                let network = network_of(address, prefix_len);
                client_on_subnet(
                    iface,
                    loc,
                    addr,
                    iface.contains(addr),
                    addr == address,
                    ("network", network, prefix_len),
                )?;
                if let Some(what) = reserved_host(addr, network, prefix_len) {
                    return Err(Diagnostic::error(
                        loc,
                        format!("{addr} is {what} of {network}/{prefix_len}"),
                    ));
                }
                Ok(())
            }
        }
    }

    fn table(&mut self, decl: &TableDecl) -> Result<(), Diagnostic> {
        if let Some(other) = self.tables.iter().find(|t| t.name == decl.name.value) {
            return Err(Diagnostic::error(
                decl.name.loc,
                format!("table '{}' is already declared", decl.name.value),
            )
            .with_note(other.name_loc, "the first declaration is here"));
        }
        let mut ranges = Vec::new();
        for entry in &decl.entries {
            match entry {
                TableEntry::Net(net) => ranges.push(net_range(&net.value)),
                TableEntry::Table(name) => {
                    let set = self.table_named(&name.value, name.loc).map_err(|d| {
                        if d.hint.is_none() {
                            d.with_hint("a table can only use tables declared above it")
                        } else {
                            d
                        }
                    })?;
                    ranges.extend(set.ranges().iter().copied());
                }
            }
        }
        self.tables.push(TableDef {
            name: decl.name.value.clone(),
            name_loc: decl.name.loc,
            addrs: RangeSet::from_ranges(ranges),
            used: false,
        });
        Ok(())
    }
}
