//! The flat integer form of a compiled policy's records (every list of the [`Policy`]: rules,
//! interfaces, clients, the default, NAT, forwards, DNS redirects), and the `const fn`s that
//! rebuild the typed records from it inside the emitted Rust source; [`walk`] visits a
//! policy in that form, once, for everything that needs it in a canonical order — the
//! emitted source ([`emit_policy`](super::emit_policy)) and the ruleset compiler's digest.
//!
//! Each packing function has its unpacking twin next to it, so the two cannot drift apart.
//! The unpacking functions run in `const` context: a word they cannot decode (which
//! [`emit_policy`](super::emit_policy) never writes) stops the build with a message, it
//! never reaches a running appliance. Flat integer arrays also keep rustc fast on big
//! policies: a struct literal per rule is several times slower to compile.

use super::super::model::{
    Action, AddrRange, AddressPool, ByteRange, Client, DefaultRule, DhcpServer, DnsRedirect,
    DnsUpstream, Interface, Ipv4Config, Ipv6Config, Masquerade, Policy, PortForward, PortRange,
    Rule, SourcePos, Span, StateLimits,
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

const fn span_words(span: Span) -> [u32; 2] {
    [span.start, span.len]
}

const fn pos_words(pos: SourcePos) -> [u32; 2] {
    [pos.line, pos.column]
}

const fn pos_at(words: &[u32], at: usize) -> SourcePos {
    SourcePos {
        line: words[at],
        column: words[at + 1],
    }
}

/// An optional value as a flag word and the value (`0` when absent).
const fn option_words(value: Option<u32>) -> [u32; 2] {
    match value {
        Some(v) => [1, v],
        None => [0, 0],
    }
}

const fn option_at(words: &[u32], at: usize) -> Option<u32> {
    match words[at] {
        0 => None,
        1 => Some(words[at + 1]),
        _ => panic!("emitted policy: bad option flag word"),
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

const fn u128_at(words: &[u32], at: usize) -> u128 {
    (words[at] as u128) << 96
        | (words[at + 1] as u128) << 64
        | (words[at + 2] as u128) << 32
        | words[at + 3] as u128
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

const fn interface_at(w: &[u32], base: usize) -> Interface {
    let ipv4 = match w[base + 3] {
        IPV4_NONE => Ipv4Config::None,
        IPV4_STATIC => Ipv4Config::Static {
            address: w[base + 4],
            prefix_len: w[base + 5] as u8,
            gateway: option_at(w, base + 6),
        },
        IPV4_DHCP => Ipv4Config::Dhcp,
        _ => panic!("emitted policy: unknown IPv4 addressing word"),
    };
    let ipv6 = match w[base + 14] {
        IPV6_NONE => Ipv6Config::None,
        IPV6_STATIC => Ipv6Config::Static {
            address: u128_at(w, base + 15),
            prefix_len: w[base + 19] as u8,
            gateway: match w[base + 20] {
                0 => None,
                1 => Some(u128_at(w, base + 21)),
                _ => panic!("emitted policy: bad option flag word"),
            },
        },
        IPV6_SLAAC => Ipv6Config::Slaac,
        _ => panic!("emitted policy: unknown IPv6 addressing word"),
    };
    Interface {
        name: span_at(w, base),
        nic: w[base + 2] as u8,
        ipv4,
        ipv6,
        router_adverts: w[base + 25] != 0,
        dns_servers: span_at(w, base + 8),
        uplink: w[base + 10] != 0,
        mtu: w[base + 11] as u16,
        pos: pos_at(w, base + 12),
    }
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

const fn client_at(w: &[u32], base: usize) -> Client {
    let ipv6 = match w[base + 5] {
        0 => None,
        1 => Some(u128_at(w, base + 6)),
        _ => panic!("emitted policy: bad option flag word"),
    };
    let mac = match w[base + 13] {
        0 => None,
        1 => {
            let [_, _, a, b] = w[base + 14].to_be_bytes();
            let [c, d, e, f] = w[base + 15].to_be_bytes();
            Some([a, b, c, d, e, f])
        }
        _ => panic!("emitted policy: bad option flag word"),
    };
    Client {
        name: span_at(w, base),
        nic: w[base + 2] as u8,
        ipv4: option_at(w, base + 3),
        ipv6,
        mac,
        max_states: w[base + 10],
        pos: pos_at(w, base + 11),
    }
}

/// Words of the default rule: position (2), reject, log.
pub const DEFAULT_WORDS: usize = 4;

/// The default rule as [`DEFAULT_WORDS`] words.
pub const fn default_words(d: &DefaultRule) -> [u32; DEFAULT_WORDS] {
    [d.pos.line, d.pos.column, d.reject as u32, d.log as u32]
}

/// The default rule from its [`DEFAULT_WORDS`] words.
pub const fn default_rule(w: &[u32]) -> DefaultRule {
    assert!(
        w.len() == DEFAULT_WORDS,
        "emitted policy: default words do not match one default rule"
    );
    DefaultRule {
        pos: pos_at(w, 0),
        reject: w[2] != 0,
        log: w[3] != 0,
    }
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

const fn masquerade_at(w: &[u32], base: usize) -> Masquerade {
    Masquerade {
        in_nic: span_at(w, base),
        src: span_at(w, base + 2),
        out_nic: w[base + 4] as u8,
        pos: pos_at(w, base + 5),
    }
}

/// Words per port forward: ingress NIC, protocol, ports (2), target (4, most significant
/// first), target port, position (2).
pub const FORWARD_WORDS: usize = 11;

/// A port forward as [`FORWARD_WORDS`] words.
pub const fn forward_words(f: &PortForward) -> [u32; FORWARD_WORDS] {
    [
        f.in_nic as u32,
        f.protocol as u32,
        f.ports.first as u32,
        f.ports.last as u32,
        (f.target >> 96) as u32,
        (f.target >> 64) as u32,
        (f.target >> 32) as u32,
        f.target as u32,
        f.target_port as u32,
        f.pos.line,
        f.pos.column,
    ]
}

const fn forward_at(w: &[u32], base: usize) -> PortForward {
    PortForward {
        in_nic: w[base] as u8,
        protocol: w[base + 1] as u8,
        ports: PortRange {
            first: w[base + 2] as u16,
            last: w[base + 3] as u16,
        },
        target: (w[base + 4] as u128) << 96
            | (w[base + 5] as u128) << 64
            | (w[base + 6] as u128) << 32
            | w[base + 7] as u128,
        target_port: w[base + 8] as u16,
        pos: pos_at(w, base + 9),
    }
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

const fn dns_at(w: &[u32], base: usize) -> DnsRedirect {
    let upstream = match w[base + 2] {
        UPSTREAM_LEARNED => DnsUpstream::Learned,
        UPSTREAM_STATIC => DnsUpstream::Static(span_at(w, base + 3)),
        _ => panic!("emitted policy: unknown DNS upstream word"),
    };
    DnsRedirect {
        in_nic: span_at(w, base),
        upstream,
        pos: pos_at(w, base + 5),
        at: span_at(w, base + 7),
    }
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

const fn dhcp_server_at(w: &[u32], base: usize) -> DhcpServer {
    let pool = match w[base + 1] {
        0 => None,
        1 => Some(AddressPool {
            first: w[base + 2],
            last: w[base + 3],
        }),
        _ => panic!("emitted policy: bad option flag word"),
    };
    DhcpServer {
        nic: w[base] as u8,
        pool,
        lease_secs: w[base + 4],
        max_states: w[base + 5],
        pos: pos_at(w, base + 6),
    }
}

/// Words per rule in the flat form: position (2), action, flags (bit 0 `log`, bit 1
/// `allow_opts`), limits (2), then the ten field spans (start, len) in [`Rule`] field
/// order.
pub const RULE_WORDS: usize = 26;

const ACTION_PASS: u32 = 0;
const ACTION_BLOCK: u32 = 1;
const ACTION_REJECT: u32 = 2;

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
    words[3] = rule.log as u32 | (rule.allow_opts as u32) << 1;
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

const fn span_at(words: &[u32], at: usize) -> Span {
    Span {
        start: words[at],
        len: words[at + 1],
    }
}

const fn rule_at(words: &[u32], base: usize) -> Rule {
    let action = match words[base + 2] {
        ACTION_PASS => Action::Pass,
        ACTION_BLOCK => Action::Block,
        ACTION_REJECT => Action::Reject,
        _ => panic!("emitted policy: unknown rule action word"),
    };
    let fields = base + 6;
    Rule {
        pos: SourcePos {
            line: words[base],
            column: words[base + 1],
        },
        action,
        log: words[base + 3] & 1 != 0,
        allow_opts: words[base + 3] & 2 != 0,
        limits: StateLimits {
            max_states: words[base + 4],
            max_states_per_source: words[base + 5],
        },
        in_nic: span_at(words, fields),
        out: span_at(words, fields + 2),
        protocol: span_at(words, fields + 4),
        src: span_at(words, fields + 6),
        dst: span_at(words, fields + 8),
        src_port: span_at(words, fields + 10),
        dst_port: span_at(words, fields + 12),
        icmp_type: span_at(words, fields + 14),
        icmp_code: span_at(words, fields + 16),
        redirect: span_at(words, fields + 18),
    }
}

const NO_RULE: Rule = Rule {
    pos: SourcePos { line: 0, column: 0 },
    action: Action::Block,
    log: false,
    allow_opts: false,
    limits: StateLimits {
        max_states: 0,
        max_states_per_source: 0,
    },
    in_nic: Span::EMPTY,
    out: Span::EMPTY,
    protocol: Span::EMPTY,
    src: Span::EMPTY,
    dst: Span::EMPTY,
    src_port: Span::EMPTY,
    dst_port: Span::EMPTY,
    icmp_type: Span::EMPTY,
    icmp_code: Span::EMPTY,
    redirect: Span::EMPTY,
};

/// Defines the `const fn` that rebuilds a list of records from their flat words.
macro_rules! record_list {
    ($(#[$doc:meta])* $name:ident, $record:ty, $width:expr, $at:ident, $empty:expr, $mismatch:literal) => {
        $(#[$doc])*
        pub const fn $name<const N: usize>(words: &[u32]) -> [$record; N] {
            assert!(words.len() == N * $width, $mismatch);
            let mut records = [$empty; N];
            let mut i = 0;
            while i < N {
                records[i] = $at(words, i * $width);
                i += 1;
            }
            records
        }
    };
}

record_list!(
    /// `N` rules from their `N * RULE_WORDS` flat words.
    rules, Rule, RULE_WORDS, rule_at, NO_RULE,
    "emitted policy: rule words do not match the rule count"
);
record_list!(
    /// `N` interfaces from their `N * INTERFACE_WORDS` flat words.
    interfaces, Interface, INTERFACE_WORDS, interface_at, interface_at(&[0; INTERFACE_WORDS], 0),
    "emitted policy: interface words do not match the interface count"
);
record_list!(
    /// `N` clients from their `N * CLIENT_WORDS` flat words.
    clients, Client, CLIENT_WORDS, client_at, client_at(&[0; CLIENT_WORDS], 0),
    "emitted policy: client words do not match the client count"
);
record_list!(
    /// `N` `nat` rules from their `N * MASQUERADE_WORDS` flat words.
    masquerades, Masquerade, MASQUERADE_WORDS, masquerade_at,
    masquerade_at(&[0; MASQUERADE_WORDS], 0),
    "emitted policy: nat words do not match the nat rule count"
);
record_list!(
    /// `N` port forwards from their `N * FORWARD_WORDS` flat words.
    forwards, PortForward, FORWARD_WORDS, forward_at, forward_at(&[0; FORWARD_WORDS], 0),
    "emitted policy: forward words do not match the forward count"
);
record_list!(
    /// `N` DNS redirects from their `N * DNS_WORDS` flat words.
    dns_redirects, DnsRedirect, DNS_WORDS, dns_at, dns_at(&[0; DNS_WORDS], 0),
    "emitted policy: DNS words do not match the redirect count"
);

record_list!(
    /// `N` DHCP servers from their `N * DHCP_SERVER_WORDS` flat words.
    dhcp_servers, DhcpServer, DHCP_SERVER_WORDS, dhcp_server_at,
    dhcp_server_at(&[0; DHCP_SERVER_WORDS], 0),
    "emitted policy: DHCP server words do not match the server count"
);

/// Defines the `const fn` that rebuilds a range pool from its flat bounds.
macro_rules! range_pool {
    ($(#[$doc:meta])* $name:ident, $range:ident, $bound:ty, $mismatch:literal) => {
        $(#[$doc])*
        pub const fn $name<const N: usize>(bounds: &[$bound]) -> [$range; N] {
            assert!(bounds.len() == 2 * N, $mismatch);
            let mut ranges = [$range { first: 0, last: 0 }; N];
            let mut i = 0;
            while i < N {
                ranges[i] = $range { first: bounds[2 * i], last: bounds[2 * i + 1] };
                i += 1;
            }
            ranges
        }
    };
}

range_pool!(
    /// `N` address ranges from their `2 * N` bounds (`first`, `last`, ...).
    addr_ranges, AddrRange, u128, "emitted policy: address bounds do not match the range count"
);
range_pool!(
    /// `N` port ranges from their `2 * N` bounds (`first`, `last`, ...).
    port_ranges, PortRange, u16, "emitted policy: port bounds do not match the range count"
);
range_pool!(
    /// `N` one-byte ranges from their `2 * N` bounds (`first`, `last`, ...).
    byte_ranges, ByteRange, u8, "emitted policy: byte bounds do not match the range count"
);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn span(start: u32, len: u32) -> Span {
        Span { start, len }
    }

    #[test]
    fn a_rule_survives_its_flat_form() {
        for (i, action) in [Action::Pass, Action::Block, Action::Reject]
            .into_iter()
            .enumerate()
        {
            let rule = Rule {
                pos: SourcePos {
                    line: 14,
                    column: 3,
                },
                action,
                log: i == 1,
                allow_opts: i != 1,
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
            };
            let words = rule_words(&rule);
            assert_eq!(rules::<1>(&words), [rule]);
        }
    }

    #[test]
    fn every_record_survives_its_flat_form() {
        let interfaces = [
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
                nic: 1,
                ipv4: Ipv4Config::Dhcp,
                ipv6: Ipv6Config::Slaac,
                router_adverts: true,
                dns_servers: Span::EMPTY,
                uplink: false,
                mtu: 1500,
                pos: SourcePos { line: 2, column: 1 },
            },
        ];
        let words: Vec<u32> = interfaces.iter().flat_map(interface_words).collect();
        assert_eq!(super::interfaces::<2>(&words), interfaces);
        let client = Client {
            name: span(13, 4),
            nic: 1,
            ipv4: Some(0x0a89_010a),
            ipv6: Some(0xfd00 << 112 | 0x10),
            mac: Some([0x00, 0x16, 0x3e, 0x5e, 0x6c, 0x00]),
            max_states: 5000,
            pos: SourcePos { line: 3, column: 1 },
        };
        assert_eq!(clients::<1>(&client_words(&client)), [client]);
        let default = DefaultRule {
            pos: SourcePos { line: 9, column: 1 },
            reject: true,
            log: true,
        };
        assert_eq!(default_rule(&default_words(&default)), default);
        let nat = Masquerade {
            in_nic: span(1, 1),
            src: span(2, 3),
            out_nic: 0,
            pos: SourcePos { line: 4, column: 1 },
        };
        assert_eq!(masquerades::<1>(&masquerade_words(&nat)), [nat]);
        let forward = PortForward {
            in_nic: 0,
            protocol: 6,
            ports: PortRange {
                first: 2200,
                last: 2207,
            },
            target: crate::policy::ipv4_to_flow_addr(0x0a02_000b),
            target_port: 22,
            pos: SourcePos { line: 5, column: 1 },
        };
        assert_eq!(forwards::<1>(&forward_words(&forward)), [forward]);
        let forward6 = PortForward {
            target: 0xfd00_0137_0001_0000_0000_0000_0000_0010,
            ..forward
        };
        assert_eq!(forwards::<1>(&forward_words(&forward6)), [forward6]);
        for upstream in [DnsUpstream::Learned, DnsUpstream::Static(span(1, 2))] {
            let dns = DnsRedirect {
                at: span(4, 2),
                in_nic: span(3, 1),
                upstream,
                pos: SourcePos { line: 6, column: 1 },
            };
            assert_eq!(dns_redirects::<1>(&dns_words(&dns)), [dns]);
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
            assert_eq!(dhcp_servers::<1>(&dhcp_server_words(&server)), [server]);
        }
    }

    #[test]
    fn range_pools_survive_their_flat_form() {
        assert_eq!(
            addr_ranges::<2>(&[0, u128::MAX, 5, 9]),
            [
                AddrRange {
                    first: 0,
                    last: u128::MAX
                },
                AddrRange { first: 5, last: 9 }
            ]
        );
        assert_eq!(
            port_ranges::<1>(&[22, 65535]),
            [PortRange {
                first: 22,
                last: 65535
            }]
        );
        assert_eq!(
            byte_ranges::<1>(&[0, 255]),
            [ByteRange {
                first: 0,
                last: 255
            }]
        );
    }

    #[test]
    #[should_panic(expected = "rule words do not match")]
    fn a_truncated_rule_pool_is_refused() {
        let _ = rules::<1>(&[0; RULE_WORDS - 1]);
    }
}
