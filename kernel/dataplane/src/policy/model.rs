//! The compiled policy: the contract between the `rules` compiler and the data plane.
//!
//! A [`Policy`] is plain data with no pointers between its parts: every variable-length part
//! lives in one of a few flat pools (`addr_ranges`, `port_ranges`, `byte_ranges`,
//! `ipv4_addrs`, `names`) and the records refer to them by [`Span`]. That gives one shape for
//! both sides:
//!
//! - the host compiler builds a [`PolicyBuf`](super::PolicyBuf) (the same pools in `Vec`s)
//!   and borrows it as a `Policy<'_>` to run the ruleset's self-tests through the very
//!   matcher the kernel uses;
//! - the image tool writes that policy into the kernel image as a binary blob
//!   ([`codegen::blob`](super::codegen::blob)), which the kernel decodes and checks once
//!   at boot into the same `PolicyBuf`.
//!
//! Rules are *normalised*: names (interfaces, clients, tables) are resolved, negations are
//! complemented into range lists, and one source rule may become several [`Rule`]s (e.g. an
//! ICMP type list with per-type codes), each carrying the source position it came from.
//! Every rule field is a union of inclusive ranges over one numeric dimension of a
//! [`FlowKey`](super::FlowKey); a rule matches a key when every dimension matches. A field
//! that the source rule did not constrain holds the dimension's full range.
//!
//! Addresses of both families live in one 128-bit space: IPv6 addresses as themselves, IPv4
//! addresses mapped into `::ffff:0:0/96` (see [`ipv4_to_flow_addr`]).

/// Largest number of NICs the appliance drives (`nic0` ..= `nic7`).
pub const MAX_NICS: usize = 8;

/// The pseudo egress "interface" meaning *the appliance itself* (`to self` in the language).
pub const OUT_SELF: u8 = MAX_NICS as u8;

/// Maps an IPv4 address (as a big-endian `u32`) into the unified 128-bit flow address space
/// (`::ffff:a.b.c.d`).
pub const fn ipv4_to_flow_addr(v4: u32) -> u128 {
    0xffff_0000_0000u128 | v4 as u128
}

/// Maps an address of either family into the unified flow address space.
pub fn ip_to_flow_addr(addr: smoltcp::wire::IpAddress) -> u128 {
    match addr {
        smoltcp::wire::IpAddress::Ipv4(v4) => ipv4_to_flow_addr(v4.to_bits()),
        smoltcp::wire::IpAddress::Ipv6(v6) => v6.to_bits(),
    }
}

/// The IPv4 address inside a flow address, if it is an IPv4-mapped one.
pub const fn flow_addr_to_ipv4(addr: u128) -> Option<u32> {
    if addr >> 32 == 0xffff {
        Some(addr as u32)
    } else {
        None
    }
}

/// A slice of one of the policy's pools: `len` items starting at `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// Index of the first item in the pool.
    pub start: u32,
    /// Number of items.
    pub len: u32,
}

impl Span {
    /// The empty span.
    pub const EMPTY: Span = Span { start: 0, len: 0 };

    /// The items of `pool` this span names, or an empty slice if the span is out of range
    /// (which a policy built by the compiler never contains).
    pub fn of<'a, T>(&self, pool: &'a [T]) -> &'a [T] {
        let start = self.start as usize;
        pool.get(start..start + self.len as usize).unwrap_or(&[])
    }

    /// The text of `pool` this span names (for names), or `""` if out of range.
    pub fn str_of<'a>(&self, pool: &'a str) -> &'a str {
        let start = self.start as usize;
        pool.get(start..start + self.len as usize).unwrap_or("")
    }
}

/// An inclusive range of flow addresses (`first <= last`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddrRange {
    /// Lowest address in the range.
    pub first: u128,
    /// Highest address in the range.
    pub last: u128,
}

/// An inclusive range of transport ports (`first <= last`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    /// Lowest port in the range.
    pub first: u16,
    /// Highest port in the range.
    pub last: u16,
}

/// An inclusive range over a one-byte dimension (interface index, IP protocol, ICMP type or
/// code) (`first <= last`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ByteRange {
    /// Lowest value in the range.
    pub first: u8,
    /// Highest value in the range.
    pub last: u8,
}

/// What a rule (or the default) does with the first packet of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Forward it and create state, so that the rest of the flow and its replies pass.
    Pass,
    /// Drop it silently.
    Block,
    /// Drop it and tell the sender: TCP RST for TCP, ICMP unreachable otherwise.
    Reject,
}

/// Per-rule limits on the states the rule may create (0 = no limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct StateLimits {
    /// At most this many live states created by this rule.
    pub max_states: u32,
    /// At most this many live states created by this rule per source address.
    pub max_states_per_source: u32,
}

/// Where in the ruleset source something was written (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SourcePos {
    /// Line number.
    pub line: u32,
    /// Column number.
    pub column: u32,
}

/// One normalised filter rule. Every field is a [`Span`] of ranges in the matching pool of
/// the [`Policy`]; a key matches the rule when each of its dimensions lies in the union of
/// the field's ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    /// Where the source rule starts.
    pub pos: SourcePos,
    /// What to do with a matching packet.
    pub action: Action,
    /// Whether a matching packet is logged.
    pub log: bool,
    /// Whether the flows it passes may carry IPv4 options (`allow-opts`; never source
    /// routes or route recording, see [`crate::ip_options`]).
    pub allow_opts: bool,
    /// State limits for `pass` rules.
    pub limits: StateLimits,
    /// Ingress NIC index ranges (`byte_ranges`).
    pub in_nic: Span,
    /// Egress ranges (`byte_ranges`): a NIC index, or [`OUT_SELF`] for the appliance itself.
    pub out: Span,
    /// IP protocol number ranges (`byte_ranges`).
    pub protocol: Span,
    /// Source address ranges (`addr_ranges`).
    pub src: Span,
    /// Destination address ranges (`addr_ranges`).
    pub dst: Span,
    /// Source port ranges (`port_ranges`); full range for portless protocols.
    pub src_port: Span,
    /// Destination port ranges (`port_ranges`); full range for portless protocols.
    pub dst_port: Span,
    /// ICMP / ICMPv6 type ranges (`byte_ranges`); full range for non-ICMP rules.
    pub icmp_type: Span,
    /// ICMP / ICMPv6 code ranges (`byte_ranges`); full range for non-ICMP rules.
    pub icmp_code: Span,
    /// Destination NAT ranges (`byte_ranges`, see [`FlowKey::redirect`](super::FlowKey)):
    /// `{REDIRECT_FORWARD}` for `forwarded` rules, the full range for the others.
    pub redirect: Span,
}

/// What happens to a packet that no rule matches. `Pass` is deliberately not representable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DefaultRule {
    /// Where `default` was written, or `0:0` if the ruleset relies on the built-in default.
    pub pos: SourcePos,
    /// `true` for `default reject`, `false` for `default block`.
    pub reject: bool,
    /// Whether packets decided by the default are logged.
    pub log: bool,
}

/// How an interface gets its IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ipv4Config {
    /// No IPv4 address: the NIC forwards nothing and answers nothing on IPv4.
    None,
    /// A fixed address, with an optional default gateway on this interface.
    Static {
        /// The appliance's address on this interface (big-endian `u32`).
        address: u32,
        /// Prefix length of the connected network.
        prefix_len: u8,
        /// Default gateway reachable on this interface, if any.
        gateway: Option<u32>,
    },
    /// Address, gateway and DNS servers are learned with a DHCP client.
    Dhcp,
}

/// How an interface gets its IPv6 addresses (besides its link-local address, which every
/// interface with IPv6 makes from its MAC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ipv6Config {
    /// No IPv6: the NIC forwards nothing and answers nothing on IPv6.
    None,
    /// A fixed address and on-link prefix, with an optional default router.
    Static {
        /// The appliance's address on this interface.
        address: u128,
        /// Prefix length of the on-link prefix.
        prefix_len: u8,
        /// Default router reachable on this interface (in the prefix, or link-local).
        gateway: Option<u128>,
    },
    /// Address, prefix, default router and DNS servers come from router advertisements.
    Slaac,
}

/// One declared interface (`interface NAME nicN ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Interface {
    /// The interface's name in the ruleset (`names`).
    pub name: Span,
    /// NIC index (`nicN`).
    pub nic: u8,
    /// IPv4 addressing.
    pub ipv4: Ipv4Config,
    /// IPv6 addressing.
    pub ipv6: Ipv6Config,
    /// Whether the appliance sends router advertisements on this interface (`ra`): the
    /// static IPv6 prefix, the MTU and, when a DNS redirect covers it, itself as resolver.
    pub router_adverts: bool,
    /// Static DNS servers for this interface (`ipv4_addrs`), used as upstream resolvers when
    /// this is the uplink and it is not configured by DHCP.
    pub dns_servers: Span,
    /// `true` for the interface that carries the default route (the uplink).
    pub uplink: bool,
    /// Largest IPv4 packet sent out of this interface (bytes, 68 ..= [`MAX_MTU`]).
    pub mtu: u16,
    /// Where the interface was declared.
    pub pos: SourcePos,
}

/// The default (and largest) interface MTU: the NICs' buffers hold Ethernet frames of
/// 1,500 bytes of IP.
pub const MAX_MTU: u16 = 1500;

/// One named client (`client NAME ADDR on IFACE`): a host behind a client interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Client {
    /// The client's name in the ruleset (`names`).
    pub name: Span,
    /// NIC the client sits behind.
    pub nic: u8,
    /// The client's IPv4 address (big-endian `u32`), if it has one.
    pub ipv4: Option<u32>,
    /// The client's IPv6 address, if it has one.
    pub ipv6: Option<u128>,
    /// The client's MAC, if the ruleset pins it: frames from the client's address with
    /// another MAC are spoofed, and packets to it go to this MAC without ARP.
    pub mac: Option<[u8; 6]>,
    /// At most this many live states with this client as source (0 = no limit).
    pub max_states: u32,
    /// Where the client was declared.
    pub pos: SourcePos,
}

/// Source NAT (masquerade): new flows that match `in_nic` and `src` and leave through
/// `out_nic` get the appliance's address on `out_nic` as source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Masquerade {
    /// Ingress NIC ranges (`byte_ranges`).
    pub in_nic: Span,
    /// Source address ranges (`addr_ranges`).
    pub src: Span,
    /// The NIC whose address replaces the source.
    pub out_nic: u8,
    /// Where the `nat` line was written.
    pub pos: SourcePos,
}

/// A port forward (destination NAT): new flows arriving on `in_nic` for the appliance's
/// address with `protocol` and a destination port in `ports` are redirected to `target`,
/// port `target_port + (port - ports.first)`. The filter rules then see the translated
/// packet (pf's `rdr` semantics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortForward {
    /// NIC the forwarded traffic arrives on.
    pub in_nic: u8,
    /// IP protocol (6 = TCP, 17 = UDP).
    pub protocol: u8,
    /// External destination ports.
    pub ports: PortRange,
    /// Internal address in the unified flow address space ([`ip_to_flow_addr`]): an IPv4
    /// target takes IPv4 flows, an IPv6 target IPv6 ones.
    pub target: u128,
    /// Internal port for `ports.first`.
    pub target_port: u16,
    /// Where the `forward` line was written.
    pub pos: SourcePos,
}

/// Where redirected DNS goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DnsUpstream {
    /// The resolvers learned on the uplink (by DHCP or its static `dns` list).
    Learned,
    /// These resolvers (`ipv4_addrs`).
    Static(Span),
}

/// DNS redirect: clients' DNS queries (UDP and TCP port 53) arriving on `in_nic` and
/// addressed to the appliance are sent to the upstream resolvers instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DnsRedirect {
    /// Ingress NIC ranges (`byte_ranges`).
    pub in_nic: Span,
    /// Further addresses, besides the appliance's own, whose DNS queries are redirected
    /// (`ipv4_addrs`): virtual DNS servers such as Qubes' 10.139.1.1 and 10.139.1.2.
    pub at: Span,
    /// Where the queries go.
    pub upstream: DnsUpstream,
    /// Where the `dns` line was written.
    pub pos: SourcePos,
}

/// The range of addresses a DHCP server hands out to clients it has no declared address
/// for (both ends included, big-endian `u32`s, `first <= last`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddressPool {
    /// Lowest address of the pool.
    pub first: u32,
    /// Highest address of the pool.
    pub last: u32,
}

/// The appliance's DHCP server on one client interface (`dhcp on IFACE ...`): declared
/// clients of the interface get their declared address, others one from `pool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DhcpServer {
    /// The NIC served.
    pub nic: u8,
    /// Addresses for clients that are not declared (`None`: only declared clients are
    /// served).
    pub pool: Option<AddressPool>,
    /// Lease time granted, seconds.
    pub lease_secs: u32,
    /// At most this many live states per pool client (0 = no limit).
    pub max_states: u32,
    /// Where the `dhcp` line was written.
    pub pos: SourcePos,
}

/// A compiled ruleset. See the module documentation for the shape and its guarantees.
///
/// `index` is the fast matcher's precomputed lookup structure over `rules` (see
/// [`MatchIndex`](super::MatchIndex)); it is built by the compiler, never at boot.
#[derive(Clone, Copy, Debug)]
pub struct Policy<'a> {
    /// File name of the ruleset source (for the boot banner and logs).
    pub source_name: &'a str,
    /// Hex digest of the compiled form: the same ruleset always gives the same digest.
    pub digest: &'a str,
    /// Declared interfaces, in declaration order.
    pub interfaces: &'a [Interface],
    /// Declared clients, in declaration order.
    pub clients: &'a [Client],
    /// Filter rules in evaluation order (first match wins).
    pub rules: &'a [Rule],
    /// What happens when no rule matches.
    pub default: DefaultRule,
    /// Source NAT rules, first match wins.
    pub masquerade: &'a [Masquerade],
    /// Port forwards.
    pub forwards: &'a [PortForward],
    /// DNS redirects.
    pub dns: &'a [DnsRedirect],
    /// DHCP servers on client interfaces.
    pub dhcp_servers: &'a [DhcpServer],
    /// Pool of names, concatenated.
    pub names: &'a str,
    /// Pool of address ranges.
    pub addr_ranges: &'a [AddrRange],
    /// Pool of port ranges.
    pub port_ranges: &'a [PortRange],
    /// Pool of one-byte ranges.
    pub byte_ranges: &'a [ByteRange],
    /// Pool of IPv4 addresses (big-endian `u32`s).
    pub ipv4_addrs: &'a [u32],
    /// The fast matcher's lookup structure over `rules`.
    pub index: super::MatchIndex<'a>,
}
