//! The flat integer form of a compiled policy's records (every list of the [`Policy`]: rules,
//! interfaces, clients, the default, NAT, forwards, DNS redirects), and the functions that
//! read the typed records back from it; [`walk`] visits a policy in that form, once, for
//! everything that needs it in a canonical order — the policy blob
//! ([`blob`](super::blob)) and the ruleset compiler's digest.
//!
//! Each packing function (`*_words`) has its unpacking twin (`*_at`) next to it, so the two
//! cannot drift apart. The unpacking functions take words from outside (a policy blob read
//! at boot): they check every word and answer one that no packing function writes with a
//! [`BadWord`], never a panic.

use core::fmt;

use super::super::model::{
    Action, AddressPool, Client, DefaultRule, DhcpServer, DnsRedirect, DnsUpstream, Interface,
    Ipv4Config, Ipv6Config, Masquerade, Policy, PortForward, PortRange, Rule, SourcePos, Span,
    StateLimits, MAX_MTU, MAX_NICS,
};

/// The lists of a policy, in the order [`walk`] visits them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum List {
    /// `Policy::interfaces`, [`INTERFACE_WORDS`] words each.
    Interfaces,
    /// `Policy::clients`, [`CLIENT_WORDS`] words each.
    Clients,
    /// `Policy::rules`, [`RULE_WORDS`] words each.
    Rules,
    /// `Policy::default`, one record of [`DEFAULT_WORDS`] words.
    Default,
    /// `Policy::masquerade`, [`MASQUERADE_WORDS`] words each.
    Masquerade,
    /// `Policy::forwards`, [`FORWARD_WORDS`] words each.
    Forwards,
    /// `Policy::dns`, [`DNS_WORDS`] words each.
    Dns,
    /// `Policy::dhcp_servers`, [`DHCP_SERVER_WORDS`] words each.
    DhcpServers,
    /// `Policy::names`: text.
    Names,
    /// `Policy::addr_ranges`: two `u128` bounds each.
    AddrRanges,
    /// `Policy::port_ranges`: two `u16` bounds each.
    PortRanges,
    /// `Policy::byte_ranges`: two `u8` bounds each.
    ByteRanges,
    /// `Policy::ipv4_addrs`: one word each.
    Ipv4Addrs,
}

/// What [`walk`] reports, list by list.
pub trait PolicyWalker {
    /// List `list` begins; `count` records (or values, or bytes of text) follow.
    fn begin(&mut self, list: List, count: usize);
    /// A word of a record (or an IPv4 address of `Ipv4Addrs`).
    fn word(&mut self, word: u32);
    /// A bound of an address range.
    fn addr(&mut self, bound: u128);
    /// A bound of a port range.
    fn port(&mut self, bound: u16);
    /// A bound of a one-byte range.
    fn byte(&mut self, bound: u8);
    /// The name pool.
    fn text(&mut self, text: &str);
}

/// Visits every list of `policy` in the flat form, in [`List`] order. The source name, the
/// digest and the match index are not visited: they describe the policy, they are not it.
pub fn walk(policy: &Policy, walker: &mut impl PolicyWalker) {
    fn records<T, const W: usize>(
        walker: &mut impl PolicyWalker,
        list: List,
        items: &[T],
        words: impl Fn(&T) -> [u32; W],
    ) {
        walker.begin(list, items.len());
        for item in items {
            words(item).into_iter().for_each(|w| walker.word(w));
        }
    }
    records(walker, List::Interfaces, policy.interfaces, interface_words);
    records(walker, List::Clients, policy.clients, client_words);
    records(walker, List::Rules, policy.rules, rule_words);
    records(walker, List::Default, &[policy.default], default_words);
    records(
        walker,
        List::Masquerade,
        policy.masquerade,
        masquerade_words,
    );
    records(walker, List::Forwards, policy.forwards, forward_words);
    records(walker, List::Dns, policy.dns, dns_words);
    records(
        walker,
        List::DhcpServers,
        policy.dhcp_servers,
        dhcp_server_words,
    );
    walker.begin(List::Names, policy.names.len());
    walker.text(policy.names);
    walker.begin(List::AddrRanges, policy.addr_ranges.len());
    for r in policy.addr_ranges {
        walker.addr(r.first);
        walker.addr(r.last);
    }
    walker.begin(List::PortRanges, policy.port_ranges.len());
    for r in policy.port_ranges {
        walker.port(r.first);
        walker.port(r.last);
    }
    walker.begin(List::ByteRanges, policy.byte_ranges.len());
    for r in policy.byte_ranges {
        walker.byte(r.first);
        walker.byte(r.last);
    }
    walker.begin(List::Ipv4Addrs, policy.ipv4_addrs.len());
    policy.ipv4_addrs.iter().for_each(|&a| walker.word(a));
}

/// A word of a record that no packing function writes (an unknown kind, a flag that is
/// neither 0 nor 1, a value too large for its field, a NIC the appliance cannot drive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadWord {
    /// The field the word belongs to (`"action"`, `"NIC"`, `"MTU"`, ...).
    pub field: &'static str,
    /// The word found.
    pub word: u32,
}

impl fmt::Display for BadWord {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "bad {} word {}", self.field, self.word)
    }
}

/// What an unpacking function gives: the record, or the first word it cannot read.
pub type Unpacked<T> = Result<T, BadWord>;

/// The smallest MTU an interface may have (IPv4's minimum).
const MIN_MTU: u16 = 68;

const fn span_words(span: Span) -> [u32; 2] {
    [span.start, span.len]
}

const fn span_of(start: u32, len: u32) -> Span {
    Span { start, len }
}

const fn pos_words(pos: SourcePos) -> [u32; 2] {
    [pos.line, pos.column]
}

const fn pos_of(line: u32, column: u32) -> SourcePos {
    SourcePos { line, column }
}

/// An optional value as a flag word and the value (`0` when absent).
const fn option_words(value: Option<u32>) -> [u32; 2] {
    match value {
        Some(v) => [1, v],
        None => [0, 0],
    }
}

/// A `u128` as four words, most significant first.
const fn u128_words(v: u128) -> [u32; 4] {
    [
        (v >> 96) as u32,
        (v >> 64) as u32,
        (v >> 32) as u32,
        v as u32,
    ]
}

const fn u128_of([a, b, c, d]: [u32; 4]) -> u128 {
    (a as u128) << 96 | (b as u128) << 64 | (c as u128) << 32 | d as u128
}

/// A flag word: `0` or `1`.
fn flag_at(field: &'static str, word: u32) -> Unpacked<bool> {
    match word {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(BadWord { field, word }),
    }
}

/// An optional value from its flag word and value (see [`option_words`]).
fn option_at<T>(field: &'static str, flag: u32, value: T) -> Unpacked<Option<T>> {
    Ok(flag_at(field, flag)?.then_some(value))
}

/// A word that must fit a byte.
fn byte_at(field: &'static str, word: u32) -> Unpacked<u8> {
    u8::try_from(word).map_err(|_| BadWord { field, word })
}

/// A word that must fit 16 bits.
fn u16_at(field: &'static str, word: u32) -> Unpacked<u16> {
    u16::try_from(word).map_err(|_| BadWord { field, word })
}

/// A NIC index: below [`MAX_NICS`].
fn nic_at(word: u32) -> Unpacked<u8> {
    match byte_at("NIC", word)? {
        nic if usize::from(nic) < MAX_NICS => Ok(nic),
        _ => Err(BadWord { field: "NIC", word }),
    }
}

/// A prefix length of at most `bits`.
fn prefix_len_at(field: &'static str, word: u32, bits: u8) -> Unpacked<u8> {
    match byte_at(field, word)? {
        len if len <= bits => Ok(len),
        _ => Err(BadWord { field, word }),
    }
}

/// Copies `part` into `words` at `at`; returns the position after it.
const fn put(words: &mut [u32], at: usize, part: &[u32]) -> usize {
    let mut i = 0;
    while i < part.len() {
        words[at + i] = part[i];
        i += 1;
    }
    at + part.len()
}

/// Words per interface: name (2), NIC, IPv4 kind, address, prefix length, gateway (2),
/// DNS servers (2), uplink, MTU, position (2), IPv6 kind, address (4), prefix length,
/// gateway flag and gateway (4), router advertisements.
pub const INTERFACE_WORDS: usize = 26;

const IPV4_NONE: u32 = 0;
const IPV4_STATIC: u32 = 1;
const IPV4_DHCP: u32 = 2;
const IPV6_NONE: u32 = 0;
const IPV6_STATIC: u32 = 1;
const IPV6_SLAAC: u32 = 2;

/// An interface as [`INTERFACE_WORDS`] words.
pub const fn interface_words(i: &Interface) -> [u32; INTERFACE_WORDS] {
    let (kind, address, prefix_len, gateway) = match i.ipv4 {
        Ipv4Config::None => (IPV4_NONE, 0, 0, None),
        Ipv4Config::Static {
            address,
            prefix_len,
            gateway,
        } => (IPV4_STATIC, address, prefix_len as u32, gateway),
        Ipv4Config::Dhcp => (IPV4_DHCP, 0, 0, None),
    };
    let mut w = [0; INTERFACE_WORDS];
    let at = put(&mut w, 0, &span_words(i.name));
    let at = put(&mut w, at, &[i.nic as u32, kind, address, prefix_len]);
    let at = put(&mut w, at, &option_words(gateway));
    let at = put(&mut w, at, &span_words(i.dns_servers));
    let at = put(&mut w, at, &[i.uplink as u32, i.mtu as u32]);
    let at = put(&mut w, at, &pos_words(i.pos));
    let (kind6, address6, prefix_len6, gateway6) = match i.ipv6 {
        Ipv6Config::None => (IPV6_NONE, 0, 0, None),
        Ipv6Config::Static {
            address,
            prefix_len,
            gateway,
        } => (IPV6_STATIC, address, prefix_len as u32, gateway),
        Ipv6Config::Slaac => (IPV6_SLAAC, 0, 0, None),
    };
    let at = put(&mut w, at, &[kind6]);
    let at = put(&mut w, at, &u128_words(address6));
    let at = put(&mut w, at, &[prefix_len6]);
    let (has_gateway6, gateway6) = match gateway6 {
        Some(g) => (1, g),
        None => (0, 0),
    };
    let at = put(&mut w, at, &[has_gateway6]);
    let at = put(&mut w, at, &u128_words(gateway6));
    put(&mut w, at, &[i.router_adverts as u32]);
    w
}

/// An interface from its [`INTERFACE_WORDS`] words.
pub fn interface_at(w: &[u32; INTERFACE_WORDS]) -> Unpacked<Interface> {
    #[rustfmt::skip]
    let [
        name, name_len, nic,
        kind, address, prefix_len, has_gateway, gateway,
        dns, dns_len, uplink, mtu, line, column,
        kind6, a0, a1, a2, a3, prefix_len6, has_gateway6, g0, g1, g2, g3,
        router_adverts,
    ] = *w;
    let ipv4 = match kind {
        IPV4_NONE => Ipv4Config::None,
        IPV4_STATIC => Ipv4Config::Static {
            address,
            prefix_len: prefix_len_at("IPv4 prefix length", prefix_len, 32)?,
            gateway: option_at("IPv4 gateway flag", has_gateway, gateway)?,
        },
        IPV4_DHCP => Ipv4Config::Dhcp,
        word => {
            return Err(BadWord {
                field: "IPv4 addressing",
                word,
            })
        }
    };
    let ipv6 = match kind6 {
        IPV6_NONE => Ipv6Config::None,
        IPV6_STATIC => Ipv6Config::Static {
            address: u128_of([a0, a1, a2, a3]),
            prefix_len: prefix_len_at("IPv6 prefix length", prefix_len6, 128)?,
            gateway: option_at("IPv6 gateway flag", has_gateway6, u128_of([g0, g1, g2, g3]))?,
        },
        IPV6_SLAAC => Ipv6Config::Slaac,
        word => {
            return Err(BadWord {
                field: "IPv6 addressing",
                word,
            })
        }
    };
    let mtu = match u16_at("MTU", mtu)? {
        fits if (MIN_MTU..=MAX_MTU).contains(&fits) => fits,
        _ => {
            return Err(BadWord {
                field: "MTU",
                word: mtu,
            })
        }
    };
    Ok(Interface {
        name: span_of(name, name_len),
        nic: nic_at(nic)?,
        ipv4,
        ipv6,
        router_adverts: flag_at("router advertisement flag", router_adverts)?,
        dns_servers: span_of(dns, dns_len),
        uplink: flag_at("uplink flag", uplink)?,
        mtu,
        pos: pos_of(line, column),
    })
}

/// Words per client: name (2), NIC, IPv4 (flag and value), IPv6 (flag and four words), state limit,
/// position (2), pinned MAC (flag, then its first two bytes and its last four, big-endian).
pub const CLIENT_WORDS: usize = 16;

/// A client as [`CLIENT_WORDS`] words.
pub const fn client_words(c: &Client) -> [u32; CLIENT_WORDS] {
    let mut w = [0; CLIENT_WORDS];
    let at = put(&mut w, 0, &span_words(c.name));
    let at = put(&mut w, at, &[c.nic as u32]);
    let at = put(&mut w, at, &option_words(c.ipv4));
    let (has_v6, v6) = match c.ipv6 {
        Some(v6) => (1, v6),
        None => (0, 0),
    };
    let at = put(&mut w, at, &[has_v6]);
    let at = put(&mut w, at, &u128_words(v6));
    let at = put(&mut w, at, &[c.max_states]);
    let at = put(&mut w, at, &pos_words(c.pos));
    let mac = match c.mac {
        Some([a, b, c, d, e, f]) => [
            1,
            u16::from_be_bytes([a, b]) as u32,
            u32::from_be_bytes([c, d, e, f]),
        ],
        None => [0, 0, 0],
    };
    put(&mut w, at, &mac);
    w
}

/// A client from its [`CLIENT_WORDS`] words.
pub fn client_at(w: &[u32; CLIENT_WORDS]) -> Unpacked<Client> {
    #[rustfmt::skip]
    let [
        name, name_len, nic,
        has_v4, v4, has_v6, a0, a1, a2, a3,
        max_states, line, column,
        has_mac, mac_high, mac_low,
    ] = *w;
    let [a, b] = u16_at("MAC", mac_high)?.to_be_bytes();
    let [c, d, e, f] = mac_low.to_be_bytes();
    Ok(Client {
        name: span_of(name, name_len),
        nic: nic_at(nic)?,
        ipv4: option_at("IPv4 flag", has_v4, v4)?,
        ipv6: option_at("IPv6 flag", has_v6, u128_of([a0, a1, a2, a3]))?,
        mac: option_at("MAC flag", has_mac, [a, b, c, d, e, f])?,
        max_states,
        pos: pos_of(line, column),
    })
}

/// Words of the default rule: position (2), reject, log.
pub const DEFAULT_WORDS: usize = 4;

/// The default rule as [`DEFAULT_WORDS`] words.
pub const fn default_words(d: &DefaultRule) -> [u32; DEFAULT_WORDS] {
    [d.pos.line, d.pos.column, d.reject as u32, d.log as u32]
}

/// The default rule from its [`DEFAULT_WORDS`] words.
pub fn default_at(w: &[u32; DEFAULT_WORDS]) -> Unpacked<DefaultRule> {
    let [line, column, reject, log] = *w;
    Ok(DefaultRule {
        pos: pos_of(line, column),
        reject: flag_at("reject flag", reject)?,
        log: flag_at("log flag", log)?,
    })
}

/// Words per `nat` rule: ingress NICs (2), sources (2), egress NIC, position (2).
pub const MASQUERADE_WORDS: usize = 7;

/// A `nat` rule as [`MASQUERADE_WORDS`] words.
pub const fn masquerade_words(m: &Masquerade) -> [u32; MASQUERADE_WORDS] {
    let mut w = [0; MASQUERADE_WORDS];
    let at = put(&mut w, 0, &span_words(m.in_nic));
    let at = put(&mut w, at, &span_words(m.src));
    let at = put(&mut w, at, &[m.out_nic as u32]);
    put(&mut w, at, &pos_words(m.pos));
    w
}

/// A `nat` rule from its [`MASQUERADE_WORDS`] words.
pub fn masquerade_at(w: &[u32; MASQUERADE_WORDS]) -> Unpacked<Masquerade> {
    let [in_nic, in_nic_len, src, src_len, out_nic, line, column] = *w;
    Ok(Masquerade {
        in_nic: span_of(in_nic, in_nic_len),
        src: span_of(src, src_len),
        out_nic: nic_at(out_nic)?,
        pos: pos_of(line, column),
    })
}

/// Words per port forward: ingress NIC, protocol, ports (2), target (4, most significant
/// first), target port, position (2).
pub const FORWARD_WORDS: usize = 11;

/// A port forward as [`FORWARD_WORDS`] words.
pub const fn forward_words(f: &PortForward) -> [u32; FORWARD_WORDS] {
    let mut w = [0; FORWARD_WORDS];
    let at = put(&mut w, 0, &[f.in_nic as u32, f.protocol as u32]);
    let at = put(&mut w, at, &[f.ports.first as u32, f.ports.last as u32]);
    let at = put(&mut w, at, &u128_words(f.target));
    let at = put(&mut w, at, &[f.target_port as u32]);
    put(&mut w, at, &pos_words(f.pos));
    w
}

/// A port forward from its [`FORWARD_WORDS`] words.
pub fn forward_at(w: &[u32; FORWARD_WORDS]) -> Unpacked<PortForward> {
    let [in_nic, protocol, first, last, t0, t1, t2, t3, target_port, line, column] = *w;
    Ok(PortForward {
        in_nic: nic_at(in_nic)?,
        protocol: byte_at("protocol", protocol)?,
        ports: PortRange {
            first: u16_at("port", first)?,
            last: u16_at("port", last)?,
        },
        target: u128_of([t0, t1, t2, t3]),
        target_port: u16_at("target port", target_port)?,
        pos: pos_of(line, column),
    })
}

/// Words per DNS redirect: ingress NICs (2), upstream kind, static resolvers (2),
/// position (2), further addresses (2).
pub const DNS_WORDS: usize = 9;

const UPSTREAM_LEARNED: u32 = 0;
const UPSTREAM_STATIC: u32 = 1;

/// A DNS redirect as [`DNS_WORDS`] words.
pub const fn dns_words(d: &DnsRedirect) -> [u32; DNS_WORDS] {
    let (kind, resolvers) = match d.upstream {
        DnsUpstream::Learned => (UPSTREAM_LEARNED, Span::EMPTY),
        DnsUpstream::Static(span) => (UPSTREAM_STATIC, span),
    };
    let mut w = [0; DNS_WORDS];
    let at = put(&mut w, 0, &span_words(d.in_nic));
    let at = put(&mut w, at, &[kind]);
    let at = put(&mut w, at, &span_words(resolvers));
    let at = put(&mut w, at, &pos_words(d.pos));
    put(&mut w, at, &span_words(d.at));
    w
}

/// A DNS redirect from its [`DNS_WORDS`] words.
pub fn dns_at(w: &[u32; DNS_WORDS]) -> Unpacked<DnsRedirect> {
    let [in_nic, in_nic_len, kind, resolvers, resolvers_len, line, column, at, at_len] = *w;
    let upstream = match kind {
        UPSTREAM_LEARNED => DnsUpstream::Learned,
        UPSTREAM_STATIC => DnsUpstream::Static(span_of(resolvers, resolvers_len)),
        word => {
            return Err(BadWord {
                field: "DNS upstream",
                word,
            })
        }
    };
    Ok(DnsRedirect {
        in_nic: span_of(in_nic, in_nic_len),
        upstream,
        pos: pos_of(line, column),
        at: span_of(at, at_len),
    })
}

/// Words per DHCP server: NIC, pool (flag, first, last), lease seconds, state limit,
/// position (2).
pub const DHCP_SERVER_WORDS: usize = 8;

/// A DHCP server as [`DHCP_SERVER_WORDS`] words.
pub const fn dhcp_server_words(d: &DhcpServer) -> [u32; DHCP_SERVER_WORDS] {
    let (has_pool, first, last) = match d.pool {
        Some(pool) => (1, pool.first, pool.last),
        None => (0, 0, 0),
    };
    let mut w = [0; DHCP_SERVER_WORDS];
    let at = put(&mut w, 0, &[d.nic as u32, has_pool, first, last]);
    let at = put(&mut w, at, &[d.lease_secs, d.max_states]);
    put(&mut w, at, &pos_words(d.pos));
    w
}

/// A DHCP server from its [`DHCP_SERVER_WORDS`] words.
pub fn dhcp_server_at(w: &[u32; DHCP_SERVER_WORDS]) -> Unpacked<DhcpServer> {
    let [nic, has_pool, first, last, lease_secs, max_states, line, column] = *w;
    Ok(DhcpServer {
        nic: nic_at(nic)?,
        pool: option_at("pool flag", has_pool, AddressPool { first, last })?,
        lease_secs,
        max_states,
        pos: pos_of(line, column),
    })
}

/// Words per rule in the flat form: position (2), action, flags (bit 0 `log`, bit 1
/// `allow_opts`), limits (2), then the ten field spans (start, len) in [`Rule`] field
/// order.
pub const RULE_WORDS: usize = 26;

const ACTION_PASS: u32 = 0;
const ACTION_BLOCK: u32 = 1;
const ACTION_REJECT: u32 = 2;

const RULE_LOG: u32 = 1;
const RULE_ALLOW_OPTS: u32 = 2;

/// A rule as [`RULE_WORDS`] words.
pub const fn rule_words(rule: &Rule) -> [u32; RULE_WORDS] {
    let action = match rule.action {
        Action::Pass => ACTION_PASS,
        Action::Block => ACTION_BLOCK,
        Action::Reject => ACTION_REJECT,
    };
    let s = [
        rule.in_nic,
        rule.out,
        rule.protocol,
        rule.src,
        rule.dst,
        rule.src_port,
        rule.dst_port,
        rule.icmp_type,
        rule.icmp_code,
        rule.redirect,
    ];
    let mut words = [0; RULE_WORDS];
    words[0] = rule.pos.line;
    words[1] = rule.pos.column;
    words[2] = action;
    words[3] = (rule.log as u32 * RULE_LOG) | (rule.allow_opts as u32 * RULE_ALLOW_OPTS);
    words[4] = rule.limits.max_states;
    words[5] = rule.limits.max_states_per_source;
    let mut i = 0;
    while i < s.len() {
        words[6 + 2 * i] = s[i].start;
        words[7 + 2 * i] = s[i].len;
        i += 1;
    }
    words
}

/// A rule from its [`RULE_WORDS`] words.
pub fn rule_at(w: &[u32; RULE_WORDS]) -> Unpacked<Rule> {
    let [line, column, action, flags, max_states, max_states_per_source, spans @ ..] = *w;
    let action = match action {
        ACTION_PASS => Action::Pass,
        ACTION_BLOCK => Action::Block,
        ACTION_REJECT => Action::Reject,
        word => {
            return Err(BadWord {
                field: "action",
                word,
            })
        }
    };
    if flags & !(RULE_LOG | RULE_ALLOW_OPTS) != 0 {
        return Err(BadWord {
            field: "rule flags",
            word: flags,
        });
    }
    let spans: [Span; 10] = core::array::from_fn(|i| span_of(spans[2 * i], spans[2 * i + 1]));
    let [in_nic, out, protocol, src, dst, src_port, dst_port, icmp_type, icmp_code, redirect] =
        spans;
    Ok(Rule {
        pos: pos_of(line, column),
        action,
        log: flags & RULE_LOG != 0,
        allow_opts: flags & RULE_ALLOW_OPTS != 0,
        limits: StateLimits {
            max_states,
            max_states_per_source,
        },
        in_nic,
        out,
        protocol,
        src,
        dst,
        src_port,
        dst_port,
        icmp_type,
        icmp_code,
        redirect,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ipv4_to_flow_addr;

    fn span(start: u32, len: u32) -> Span {
        Span { start, len }
    }

    fn rule(action: Action, log: bool, allow_opts: bool) -> Rule {
        Rule {
            pos: SourcePos {
                line: 14,
                column: 3,
            },
            action,
            log,
            allow_opts,
            limits: StateLimits {
                max_states: 100,
                max_states_per_source: 7,
            },
            in_nic: span(1, 2),
            out: span(3, 4),
            protocol: span(5, 6),
            src: span(7, 8),
            dst: span(9, 10),
            src_port: span(11, 12),
            dst_port: span(13, 14),
            icmp_type: span(15, 16),
            icmp_code: span(17, 18),
            redirect: span(19, 20),
        }
    }

    fn interfaces() -> [Interface; 2] {
        [
            Interface {
                name: span(0, 6),
                nic: 0,
                ipv4: Ipv4Config::Static {
                    address: 0x0a00_020f,
                    prefix_len: 24,
                    gateway: Some(0x0a00_0202),
                },
                ipv6: Ipv6Config::Static {
                    address: 0x2001_0db8 << 96 | 2,
                    prefix_len: 64,
                    gateway: Some(0xfe80 << 112 | 1),
                },
                router_adverts: false,
                dns_servers: span(0, 1),
                uplink: true,
                mtu: 1400,
                pos: SourcePos { line: 1, column: 1 },
            },
            Interface {
                name: span(6, 7),
                nic: 7,
                ipv4: Ipv4Config::Dhcp,
                ipv6: Ipv6Config::Slaac,
                router_adverts: true,
                dns_servers: Span::EMPTY,
                uplink: false,
                mtu: 1500,
                pos: SourcePos { line: 2, column: 1 },
            },
        ]
    }

    #[test]
    fn a_rule_survives_its_flat_form() {
        for action in [Action::Pass, Action::Block, Action::Reject] {
            for (log, allow_opts) in [(false, false), (true, false), (false, true), (true, true)] {
                let rule = rule(action, log, allow_opts);
                assert_eq!(rule_at(&rule_words(&rule)), Ok(rule));
            }
        }
    }

    #[test]
    fn every_record_survives_its_flat_form() {
        for interface in interfaces() {
            assert_eq!(interface_at(&interface_words(&interface)), Ok(interface));
        }
        let client = Client {
            name: span(13, 4),
            nic: 1,
            ipv4: Some(0x0a89_010a),
            ipv6: Some(0xfd00 << 112 | 0x10),
            mac: Some([0x00, 0x16, 0x3e, 0x5e, 0x6c, 0x00]),
            max_states: 5000,
            pos: SourcePos { line: 3, column: 1 },
        };
        assert_eq!(client_at(&client_words(&client)), Ok(client));
        let bare = Client {
            ipv4: None,
            ipv6: None,
            mac: None,
            ..client
        };
        assert_eq!(client_at(&client_words(&bare)), Ok(bare));
        let default = DefaultRule {
            pos: SourcePos { line: 9, column: 1 },
            reject: true,
            log: true,
        };
        assert_eq!(default_at(&default_words(&default)), Ok(default));
        let nat = Masquerade {
            in_nic: span(1, 1),
            src: span(2, 3),
            out_nic: 0,
            pos: SourcePos { line: 4, column: 1 },
        };
        assert_eq!(masquerade_at(&masquerade_words(&nat)), Ok(nat));
        let forward = PortForward {
            in_nic: 0,
            protocol: 6,
            ports: PortRange {
                first: 2200,
                last: 2207,
            },
            target: ipv4_to_flow_addr(0x0a02_000b),
            target_port: 22,
            pos: SourcePos { line: 5, column: 1 },
        };
        assert_eq!(forward_at(&forward_words(&forward)), Ok(forward));
        let forward6 = PortForward {
            target: 0xfd00_0137_0001_0000_0000_0000_0000_0010,
            ..forward
        };
        assert_eq!(forward_at(&forward_words(&forward6)), Ok(forward6));
        for upstream in [DnsUpstream::Learned, DnsUpstream::Static(span(1, 2))] {
            let dns = DnsRedirect {
                at: span(4, 2),
                in_nic: span(3, 1),
                upstream,
                pos: SourcePos { line: 6, column: 1 },
            };
            assert_eq!(dns_at(&dns_words(&dns)), Ok(dns));
        }
        for pool in [
            None,
            Some(AddressPool {
                first: 0x0a89_0164,
                last: 0x0a89_01c8,
            }),
        ] {
            let server = DhcpServer {
                nic: 1,
                pool,
                lease_secs: 3600,
                max_states: 4096,
                pos: SourcePos { line: 7, column: 1 },
            };
            assert_eq!(dhcp_server_at(&dhcp_server_words(&server)), Ok(server));
        }
    }

    /// `words` with word `at` replaced by `word`.
    fn with<const N: usize>(mut words: [u32; N], at: usize, word: u32) -> [u32; N] {
        words[at] = word;
        words
    }

    /// The refusal of word `word` of field `field`.
    fn bad<T>(field: &'static str, word: u32) -> Unpacked<T> {
        Err(BadWord { field, word })
    }

    #[test]
    fn a_word_no_packing_function_writes_is_refused() {
        let rule = rule_words(&rule(Action::Pass, true, true));
        assert_eq!(rule_at(&with(rule, 2, 3)), bad("action", 3));
        assert_eq!(rule_at(&with(rule, 3, 4)), bad("rule flags", 4));
        let [uplink, _] = interfaces().map(|i| interface_words(&i));
        assert_eq!(interface_at(&with(uplink, 2, 8)), bad("NIC", 8));
        assert_eq!(interface_at(&with(uplink, 3, 3)), bad("IPv4 addressing", 3));
        assert_eq!(
            interface_at(&with(uplink, 5, 33)),
            bad("IPv4 prefix length", 33)
        );
        assert_eq!(
            interface_at(&with(uplink, 6, 2)),
            bad("IPv4 gateway flag", 2)
        );
        assert_eq!(interface_at(&with(uplink, 10, 2)), bad("uplink flag", 2));
        assert_eq!(interface_at(&with(uplink, 11, 67)), bad("MTU", 67));
        assert_eq!(interface_at(&with(uplink, 11, 1501)), bad("MTU", 1501));
        assert_eq!(
            interface_at(&with(uplink, 14, 9)),
            bad("IPv6 addressing", 9)
        );
        assert_eq!(
            interface_at(&with(uplink, 19, 129)),
            bad("IPv6 prefix length", 129)
        );
        let default = default_words(&DefaultRule {
            pos: SourcePos::default(),
            reject: false,
            log: false,
        });
        assert_eq!(default_at(&with(default, 3, 7)), bad("log flag", 7));
        let forward = forward_words(&PortForward {
            in_nic: 0,
            protocol: 6,
            ports: PortRange { first: 1, last: 2 },
            target: 0,
            target_port: 22,
            pos: SourcePos::default(),
        });
        assert_eq!(forward_at(&with(forward, 1, 256)), bad("protocol", 256));
        assert_eq!(
            forward_at(&with(forward, 8, 65536)),
            bad("target port", 65536)
        );
    }

    #[test]
    fn a_bad_word_names_its_field_and_value() {
        let bad = BadWord {
            field: "action",
            word: 9,
        };
        assert_eq!(alloc::format!("{bad}"), "bad action word 9");
    }
}
