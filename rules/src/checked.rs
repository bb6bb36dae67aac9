//! The checked ruleset: declarations resolved, rules normalised into [`KeySet`]s. This is
//! what the lowering to a [`PolicyBuf`](dataplane::policy::PolicyBuf), the shadowing
//! analysis, the self-tests and `explain` work on.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dataplane::policy::{ipv4_to_flow_addr, Action, DefaultRule, SourcePos, StateLimits};

use crate::ast::TestDecl;
use crate::ranges::RangeSet;
use crate::source::Loc;
use crate::space::KeySet;

/// How a declared interface is addressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addressing {
    /// No IPv4 address.
    None,
    /// Learned by DHCP.
    Dhcp,
    /// A static address.
    Static {
        /// The appliance's address.
        address: Ipv4Addr,
        /// Prefix length of the connected network.
        prefix_len: u8,
        /// Default gateway, if any.
        gateway: Option<Ipv4Addr>,
    },
}

/// How a declared interface is addressed on IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addressing6 {
    /// No IPv6 on the interface.
    None,
    /// Learned from router advertisements (SLAAC).
    Slaac,
    /// A static address.
    Static {
        /// The appliance's address.
        address: Ipv6Addr,
        /// Prefix length of the on-link prefix.
        prefix_len: u8,
        /// Default router, if any (in the prefix, or link-local).
        gateway: Option<Ipv6Addr>,
    },
}

/// The first address of `addr`'s `prefix_len`-bit prefix.
pub fn prefix_of(addr: Ipv6Addr, prefix_len: u8) -> Ipv6Addr {
    let mask = u128::MAX
        .checked_shl(128 - u32::from(prefix_len))
        .unwrap_or(0);
    Ipv6Addr::from(u128::from(addr) & mask)
}

/// Whether `addr` is link-local unicast (`fe80::/10`).
pub fn is_link_local6(addr: Ipv6Addr) -> bool {
    addr.segments()[0] & 0xffc0 == 0xfe80
}

/// A declared interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceDef {
    /// Its name.
    pub name: String,
    /// Where the name was declared.
    pub name_loc: Loc,
    /// Where the declaration starts.
    pub pos: SourcePos,
    /// NIC index.
    pub nic: u8,
    /// IPv4 addressing.
    pub addressing: Addressing,
    /// Static DNS servers.
    pub dns: Vec<Ipv4Addr>,
    /// Whether it carries the default route (it has `dhcp` or a `gateway`).
    pub uplink: bool,
    /// Largest IPv4 packet sent out of it.
    pub mtu: u16,
    /// IPv6 addressing.
    pub addressing6: Addressing6,
    /// Whether the appliance sends router advertisements on it (`ra`).
    pub router_adverts: bool,
}

impl InterfaceDef {
    /// The connected network, `(network address, prefix length)`, if statically addressed.
    pub fn network(&self) -> Option<(Ipv4Addr, u8)> {
        match self.addressing {
            Addressing::Static {
                address,
                prefix_len,
                ..
            } => Some((network_of(address, prefix_len), prefix_len)),
            _ => None,
        }
    }

    /// The appliance's own static address on this interface.
    pub fn address(&self) -> Option<Ipv4Addr> {
        match self.addressing {
            Addressing::Static { address, .. } => Some(address),
            _ => None,
        }
    }

    /// The static IPv6 address (`address6`), if there is one.
    pub fn address6(&self) -> Option<Ipv6Addr> {
        match self.addressing6 {
            Addressing6::Static { address, .. } => Some(address),
            _ => None,
        }
    }

    /// Whether `addr` is inside the connected network.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        self.network()
            .is_some_and(|(net, len)| network_of(addr, len) == net)
    }

    /// The on-link IPv6 prefix, `(first address, prefix length)`, if statically addressed.
    pub fn prefix6(&self) -> Option<(Ipv6Addr, u8)> {
        match self.addressing6 {
            Addressing6::Static {
                address,
                prefix_len,
                ..
            } => Some((prefix_of(address, prefix_len), prefix_len)),
            _ => None,
        }
    }

    /// Whether `addr` is inside the static on-link IPv6 prefix.
    pub fn contains6(&self, addr: Ipv6Addr) -> bool {
        self.prefix6()
            .is_some_and(|(prefix, len)| prefix_of(addr, len) == prefix)
    }
}

/// The network address of `addr` with a `prefix_len`-bit prefix.
pub fn network_of(addr: Ipv4Addr, prefix_len: u8) -> Ipv4Addr {
    let mask = if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len))
    };
    Ipv4Addr::from(u32::from(addr) & mask)
}

/// A declared client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientDef {
    /// Its name.
    pub name: String,
    /// Where the name was declared.
    pub name_loc: Loc,
    /// Where the declaration starts.
    pub pos: SourcePos,
    /// NIC it sits behind.
    pub nic: u8,
    /// IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// IPv6 address.
    pub ipv6: Option<Ipv6Addr>,
    /// Its pinned MAC (`mac`).
    pub mac: Option<[u8; 6]>,
    /// State limit (0 = none).
    pub max_states: u32,
}

impl ClientDef {
    /// The client's addresses as flow-address ranges.
    pub fn addresses(&self) -> RangeSet {
        let v4 = self.ipv4.map(|a| ipv4_to_flow_addr(a.into()));
        let v6 = self.ipv6.map(u128::from);
        RangeSet::from_ranges(v4.into_iter().chain(v6).map(|a| (a, a)))
    }
}

/// A filter rule, normalised: the union of its `parts` is the set of flow keys it matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NormRule {
    /// The source statement.
    pub loc: Loc,
    /// Where it starts.
    pub pos: SourcePos,
    /// Its action.
    pub action: Action,
    /// Whether it logs.
    pub log: bool,
    /// Whether the flows it passes may carry IPv4 options (`allow-opts`).
    pub allow_opts: bool,
    /// Whether it matches only packets a port forward translated (`forwarded`).
    pub forwarded: bool,
    /// State limits.
    pub limits: StateLimits,
    /// The flow keys it matches, as a union of product sets.
    pub parts: Vec<KeySet>,
}

/// A resolved `nat` part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasqueradeDef {
    /// The statement.
    pub loc: Loc,
    /// Arrival NICs.
    pub in_nic: RangeSet,
    /// Source addresses.
    pub src: RangeSet,
    /// NIC whose address becomes the source.
    pub out_nic: u8,
}

/// A resolved port forward (one per protocol and family).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardDef {
    /// The statement.
    pub loc: Loc,
    /// Arrival NIC.
    pub in_nic: u8,
    /// TCP or UDP.
    pub protocol: u8,
    /// External ports.
    pub ports: (u16, u16),
    /// The client's address: of the family of the flows forwarded (a forward to a client
    /// with both addresses is one of these per family).
    pub target: IpAddr,
    /// Internal port of `ports.0`.
    pub target_port: u16,
}

impl ForwardDef {
    /// The internal port that external port `port` maps to.
    pub fn translate_port(&self, port: u16) -> u16 {
        self.target_port
            .wrapping_add(port.wrapping_sub(self.ports.0))
    }
}

/// Where redirected DNS goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsTarget {
    /// The uplink's resolvers (static, or learned by DHCP when `None`).
    Learned(Option<Vec<Ipv4Addr>>),
    /// These resolvers.
    Static(Vec<Ipv4Addr>),
}

/// A resolved `dns` redirect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsDef {
    /// The statement.
    pub loc: Loc,
    /// Arrival NICs.
    pub in_nics: RangeSet,
    /// Further addresses whose queries are redirected (virtual DNS servers).
    pub at: Vec<Ipv4Addr>,
    /// Where the queries go.
    pub target: DnsTarget,
}

/// A resolved `dhcp` statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhcpDef {
    /// The statement.
    pub loc: Loc,
    /// The NIC served.
    pub nic: u8,
    /// The pool, both ends included.
    pub pool: Option<(Ipv4Addr, Ipv4Addr)>,
    /// The lease time, seconds.
    pub lease_secs: u32,
    /// State limit per pool client (0 = none).
    pub max_states: u32,
}

/// A ruleset that passed the checker.
#[derive(Clone, Debug)]
pub struct Checked {
    /// Interfaces in declaration order.
    pub interfaces: Vec<InterfaceDef>,
    /// Clients in declaration order.
    pub clients: Vec<ClientDef>,
    /// Filter rules in evaluation order.
    pub rules: Vec<NormRule>,
    /// The default verdict.
    pub default: DefaultRule,
    /// Masquerade parts.
    pub masquerades: Vec<MasqueradeDef>,
    /// Port forwards.
    pub forwards: Vec<ForwardDef>,
    /// DNS redirects.
    pub dns: Vec<DnsDef>,
    /// DHCP servers.
    pub dhcp: Vec<DhcpDef>,
    /// The `test` lines, evaluated after compilation.
    pub tests: Vec<TestDecl>,
}

impl Checked {
    /// The interface on NIC `nic`.
    pub fn interface_on(&self, nic: u8) -> Option<&InterfaceDef> {
        self.interfaces.iter().find(|i| i.nic == nic)
    }

    /// The interface called `name`.
    pub fn interface(&self, name: &str) -> Option<&InterfaceDef> {
        self.interfaces.iter().find(|i| i.name == name)
    }

    /// The client called `name`.
    pub fn client(&self, name: &str) -> Option<&ClientDef> {
        self.clients.iter().find(|c| c.name == name)
    }

    /// The uplink, if one is declared.
    pub fn uplink(&self) -> Option<&InterfaceDef> {
        self.interfaces.iter().find(|i| i.uplink)
    }

    /// The source rule at `pos`.
    pub fn rule_at(&self, pos: SourcePos) -> Option<&NormRule> {
        self.rules.iter().find(|r| r.pos == pos)
    }
}
