//! The syntax tree: statements as written, with the location of every part.
//!
//! Nothing here is resolved yet: names are text, and ICMP types stay names until the
//! checker knows the protocol family they belong to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dataplane::drops::DropReason;

use dataplane::policy::Action;
use ipnetwork::IpNetwork;

use crate::source::Loc;

/// A value and where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub loc: Loc,
}

/// A name as written (of an interface, client or table).
pub type Name = Located<String>;

/// A parsed ruleset: its statements in source order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// The statements.
    pub statements: Vec<Statement>,
}

/// One statement (one logical line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Statement {
    /// `interface NAME nicN ...`
    Interface(InterfaceDecl),
    /// `client NAME ADDR[, ADDR6] [mac MAC] on IFACE ...`
    Client(ClientDecl),
    /// `table NAME { ... }`
    Table(TableDecl),
    /// `nat from SCOPE to IFACE`
    Nat(NatDecl),
    /// `forward IFACE PROTO port P[-Q] to TARGET [port R]`
    Forward(ForwardDecl),
    /// `dns from IFACE to upstream | to ADDR, ...`
    Dns(DnsDecl),
    /// `pass | block | reject ...`
    Filter(FilterRule),
    /// `default block | reject [log]`
    Default(DefaultDecl),
    /// `test VERDICT PACKET`
    Test(TestDecl),
}

/// `interface NAME nicN (dhcp | address A/P [gateway G]) [dns A, ...]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceDecl {
    /// The whole statement.
    pub loc: Loc,
    /// The interface's name.
    pub name: Name,
    /// The NIC number (`nicN`).
    pub nic: Located<u32>,
    /// How it gets its IPv4 address.
    pub addressing: Addressing,
    /// Static DNS servers (`dns A, ...`).
    pub dns: Vec<Located<Ipv4Addr>>,
    /// `mtu N`, if given.
    pub mtu: Option<Located<u32>>,
    /// How it gets its IPv6 address (`address6`, `gateway6`, `slaac`).
    pub addressing6: Addressing6,
    /// `ra`: the appliance sends router advertisements on the interface.
    pub ra: Option<Loc>,
}

/// How an interface is addressed, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addressing {
    /// Nothing was said: no IPv4 address.
    None,
    /// `dhcp`
    Dhcp(Loc),
    /// `address A/P [gateway G]`
    Static {
        /// The appliance's address on the interface.
        address: Located<Ipv4Addr>,
        /// Prefix length of the connected network.
        prefix_len: u8,
        /// `gateway G`
        gateway: Option<Located<Ipv4Addr>>,
    },
}

/// How an interface is addressed on IPv6, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addressing6 {
    /// Nothing was said: no IPv6 on the interface.
    None,
    /// `slaac`
    Slaac(Loc),
    /// `address6 A/P [gateway6 G]`
    Static {
        /// The appliance's address on the interface.
        address: Located<Ipv6Addr>,
        /// Prefix length of the on-link prefix.
        prefix_len: u8,
        /// `gateway6 G`
        gateway: Option<Located<Ipv6Addr>>,
    },
}

/// `client NAME ADDR[, ADDR6] [mac MAC] on IFACE [max-states N]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientDecl {
    /// The whole statement.
    pub loc: Loc,
    /// The client's name.
    pub name: Name,
    /// Its addresses (at most one per family after checking).
    pub addresses: Vec<Located<IpAddr>>,
    /// `mac MAC`: its MAC, pinned.
    pub mac: Option<Located<[u8; 6]>>,
    /// The interface it sits behind.
    pub on: Name,
    /// `max-states N`
    pub max_states: Option<Located<u32>>,
}

/// `table NAME { ENTRY, ... }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDecl {
    /// The whole statement.
    pub loc: Loc,
    /// The table's name.
    pub name: Name,
    /// Its entries.
    pub entries: Vec<TableEntry>,
}

/// One entry of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableEntry {
    /// An address or CIDR.
    Net(Located<IpNetwork>),
    /// `<other>`: the entries of another (earlier) table.
    Table(Name),
}

/// `nat from SCOPE to IFACE`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatDecl {
    /// The whole statement.
    pub loc: Loc,
    /// Whose traffic is masqueraded.
    pub from: Scope,
    /// The interface it leaves through (the uplink).
    pub to: Name,
}

/// `forward IFACE PROTO port P[-Q] to TARGET [port R]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardDecl {
    /// The whole statement.
    pub loc: Loc,
    /// The interface the forwarded traffic arrives on.
    pub on: Name,
    /// `tcp`, `udp` or `{ tcp, udp }`.
    pub protocols: ProtoSpec,
    /// The external ports.
    pub ports: Located<(u16, u16)>,
    /// Where it goes.
    pub target: ForwardTarget,
    /// `port R`: the internal port of the first external port.
    pub target_port: Option<Located<u16>>,
}

/// The target of a port forward.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForwardTarget {
    /// A client by name.
    Client(Name),
    /// A client by address.
    Address(Located<IpAddr>),
}

/// `dns from SCOPE to upstream | to ADDR, ...`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsDecl {
    /// The whole statement.
    pub loc: Loc,
    /// The interfaces whose clients' DNS is redirected.
    pub from: Scope,
    /// Where it goes.
    pub upstream: Upstream,
}

/// Where redirected DNS goes, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upstream {
    /// `upstream`: the resolvers learned on the uplink.
    Learned(Loc),
    /// A list of resolvers.
    Static(Vec<Located<Ipv4Addr>>),
}

/// A filter rule: `ACTION [log] [forwarded] [from SCOPE [port P]] [to SCOPE [port P]]
/// [PROTO [port P] [type T [code C]]] [allow-opts] [max-states N] [max-src-states N]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterRule {
    /// The whole statement (its start is the rule's position).
    pub loc: Loc,
    /// `pass`, `block` or `reject`.
    pub action: Located<Action>,
    /// `log`
    pub log: Option<Loc>,
    /// `from SCOPE`; absent means from anywhere.
    pub from: Option<Scope>,
    /// `to SCOPE`; absent means to anywhere.
    pub to: Option<Scope>,
    /// The protocols; absent means any.
    pub protocols: Option<ProtoSpec>,
    /// `from ... port P`
    pub src_ports: Option<PortSpec>,
    /// `to ... port P` or `PROTO port P`
    pub dst_ports: Option<PortSpec>,
    /// `type T [code C]`
    pub icmp: Option<IcmpSpec>,
    /// `max-states N`
    pub max_states: Option<Located<u32>>,
    /// `max-src-states N`
    pub max_src_states: Option<Located<u32>>,
    /// `allow-opts`: the flows it passes may carry IPv4 options.
    pub allow_opts: Option<Loc>,
    /// `forwarded`: it matches only packets a port forward translated.
    pub forwarded: Option<Loc>,
}

/// The address/interface part of `from` and `to`: one item, a `{ }` list, or `!ITEM`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    /// The whole scope.
    pub loc: Loc,
    /// `!ITEM`
    pub negated: bool,
    /// The items (one unless written as a list).
    pub items: Vec<ScopeItem>,
}

/// One element of a scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeItem {
    /// `any`
    Any(Loc),
    /// `self`: the appliance itself.
    SelfRef(Loc),
    /// An interface or client.
    Name(Name),
    /// `<table>`
    Table(Name),
    /// An address or CIDR.
    Net(Located<IpNetwork>),
}

impl ScopeItem {
    /// Where the item was written.
    pub fn loc(&self) -> Loc {
        match self {
            ScopeItem::Any(loc) | ScopeItem::SelfRef(loc) => *loc,
            ScopeItem::Name(n) | ScopeItem::Table(n) => n.loc,
            ScopeItem::Net(n) => n.loc,
        }
    }
}

/// Protocols, resolved to numbers at parse time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtoSpec {
    /// The whole clause.
    pub loc: Loc,
    /// The protocol numbers.
    pub items: Vec<Located<u8>>,
}

/// Ports: single ports and inclusive ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    /// The whole clause.
    pub loc: Loc,
    /// The ranges (`(p, p)` for a single port).
    pub items: Vec<Located<(u16, u16)>>,
}

/// `type T [code C]` or `type { T [code C], ... }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IcmpSpec {
    /// The whole clause.
    pub loc: Loc,
    /// The types, each with an optional code.
    pub items: Vec<IcmpItem>,
}

/// One ICMP type with an optional code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IcmpItem {
    /// The type, by name or number.
    pub ty: Located<IcmpWord>,
    /// The code, by name or number.
    pub code: Option<Located<IcmpWord>>,
}

/// An ICMP type or code as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IcmpWord {
    /// A number.
    Number(u8),
    /// A name, resolved once the family is known.
    Name(String),
}

/// `default block | reject [log]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultDecl {
    /// The whole statement.
    pub loc: Loc,
    /// `reject` rather than `block`.
    pub reject: bool,
    /// `log`
    pub log: bool,
}

/// `test pass | block | reject [log] PACKET`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestDecl {
    /// The whole statement.
    pub loc: Loc,
    /// The expected verdict.
    pub expect: Located<Action>,
    /// `log`: the packet must also be logged.
    pub log: bool,
    /// `because REASON` (only with `block`): the data plane must drop the packet for this
    /// reason (`policy` for a `block` rule or the default).
    pub because: Option<Located<DropReason>>,
    /// The packet.
    pub packet: PacketSpec,
}

/// `PROTO SRC[:PORT] -> DST[:PORT] [on IFACE] [type T [code C]] [options OPTS] [mac MAC]
/// [broadcast]`: a packet for tests and `explain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketSpec {
    /// The whole packet description.
    pub loc: Loc,
    /// The IP protocol.
    pub protocol: Located<u8>,
    /// Source.
    pub src: Endpoint,
    /// Destination.
    pub dst: Endpoint,
    /// The interface it arrives on.
    pub on: Option<Name>,
    /// ICMP type and code.
    pub icmp: Option<IcmpItem>,
    /// `options { NAME, ... }`: the IPv4 options it carries (option numbers).
    pub options: Vec<Located<u8>>,
    /// `mac MAC`: the sender's Ethernet address.
    pub mac: Option<Located<[u8; 6]>>,
    /// `broadcast`: sent to the link's broadcast address whatever its IP destination.
    pub broadcast: Option<Loc>,
}

/// One end of a test packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The whole endpoint.
    pub loc: Loc,
    /// The host.
    pub host: Located<Host>,
    /// The port, if given.
    pub port: Option<Located<u16>>,
}

/// A host in a test packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// A literal address.
    Addr(IpAddr),
    /// A client by name.
    Client(String),
    /// `self`: the appliance's address on the interface the packet arrives on.
    SelfRef,
}
