//! Rulesets and keys for the matcher's benchmark and tests.
//!
//! - Realistic and wildcard-heavy rulesets are ruleset *text* from `rules::generate`,
//!   compiled by the `rules` crate: what the kernel would embed, not an imitation of it.
//! - [`RuleSpec`] and [`policy_of`] build policies the compiler never would (inverted,
//!   empty and arbitrary ranges of both families), for the tests that hold the matcher to
//!   the linear reference on adversarial input.
//! - [`key_sets`] and [`random_key`] draw keys: first matched early, late, or by the default.
//!
//! Everything comes from seeded generators, so a size and a seed always give the same set.

// Each user of this module (the benchmark, several tests) uses a different part of it.
#![allow(dead_code)]

use dataplane::policy::index::Dim;
use dataplane::policy::{
    ipv4_to_flow_addr, reference, Action, AddrRange, ByteRange, FlowKey, Policy, PolicyBuf,
    PortRange, Rule, SourcePos, StateLimits, OUT_SELF,
};
use rules::generate::Shape;

/// The project's seeded generator.
pub use dataplane::rng::SplitMix64 as Rng;

/// A value in `lo..=hi`.
pub fn between(rng: &mut Rng, lo: u128, hi: u128) -> u128 {
    let span = hi.wrapping_sub(lo).wrapping_add(1);
    let r = ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128;
    if span == 0 {
        r
    } else {
        lo + r % span
    }
}

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;
const SCTP: u8 = 132;
/// One rule before it goes into the pools: every field a list of inclusive ranges.
#[derive(Clone, Debug)]
pub struct RuleSpec {
    /// What the rule does.
    pub action: Action,
    /// Whether it logs.
    pub log: bool,
    /// Ingress NICs.
    pub in_nic: Vec<(u8, u8)>,
    /// Egress NICs / `OUT_SELF`.
    pub out: Vec<(u8, u8)>,
    /// IP protocols.
    pub protocol: Vec<(u8, u8)>,
    /// Source addresses.
    pub src: Vec<(u128, u128)>,
    /// Destination addresses.
    pub dst: Vec<(u128, u128)>,
    /// Source ports.
    pub src_port: Vec<(u16, u16)>,
    /// Destination ports.
    pub dst_port: Vec<(u16, u16)>,
    /// ICMP types.
    pub icmp_type: Vec<(u8, u8)>,
    /// ICMP codes.
    pub icmp_code: Vec<(u8, u8)>,
}

impl RuleSpec {
    /// A rule matching every packet.
    pub fn any(action: Action) -> RuleSpec {
        RuleSpec {
            action,
            log: false,
            in_nic: vec![(0, 255)],
            out: vec![(0, 255)],
            protocol: vec![(0, 255)],
            src: vec![(0, u128::MAX)],
            dst: vec![(0, u128::MAX)],
            src_port: vec![(0, 65535)],
            dst_port: vec![(0, 65535)],
            icmp_type: vec![(0, 255)],
            icmp_code: vec![(0, 255)],
        }
    }

    /// Adds the rule to `buf` (written at `line`:1).
    pub fn push_to(&self, buf: &mut PolicyBuf, line: u32) {
        let bytes = |buf: &mut PolicyBuf, ranges: &[(u8, u8)]| {
            buf.add_byte_ranges(&pool(ranges, |first, last| ByteRange { first, last }))
        };
        let ports = |buf: &mut PolicyBuf, ranges: &[(u16, u16)]| {
            buf.add_port_ranges(&pool(ranges, |first, last| PortRange { first, last }))
        };
        let addrs = |buf: &mut PolicyBuf, ranges: &[(u128, u128)]| {
            buf.add_addr_ranges(&pool(ranges, |first, last| AddrRange { first, last }))
        };
        let rule = Rule {
            pos: SourcePos { line, column: 1 },
            action: self.action,
            log: self.log,
            allow_opts: false,
            limits: StateLimits::default(),
            in_nic: bytes(buf, &self.in_nic),
            out: bytes(buf, &self.out),
            protocol: bytes(buf, &self.protocol),
            src: addrs(buf, &self.src),
            dst: addrs(buf, &self.dst),
            src_port: ports(buf, &self.src_port),
            dst_port: ports(buf, &self.dst_port),
            icmp_type: bytes(buf, &self.icmp_type),
            icmp_code: bytes(buf, &self.icmp_code),
            redirect: bytes(buf, &[(0, 255)]),
        };
        buf.rules.push(rule);
    }
}

/// Ranges of one pool's type from `(first, last)` pairs.
fn pool<T: Copy, R>(ranges: &[(T, T)], range: fn(T, T) -> R) -> Vec<R> {
    ranges
        .iter()
        .map(|&(first, last)| range(first, last))
        .collect()
}

/// The flow addresses of an IPv4 CIDR.
pub fn cidr4(addr: u32, len: u32) -> (u128, u128) {
    let host = if len >= 32 { 0 } else { u32::MAX >> len };
    (
        ipv4_to_flow_addr(addr & !host),
        ipv4_to_flow_addr(addr | host),
    )
}

/// The flow addresses of an IPv6 CIDR.
pub fn cidr6(addr: u128, len: u32) -> (u128, u128) {
    let host = if len >= 128 { 0 } else { u128::MAX >> len };
    (addr & !host, addr | host)
}

/// The complement of a set of disjoint, sorted ranges within `0..=u128::MAX`.
pub fn complement(ranges: &[(u128, u128)]) -> Vec<(u128, u128)> {
    let mut out = Vec::new();
    let mut next = Some(0u128);
    for &(first, last) in ranges {
        if let Some(start) = next {
            if first > start {
                out.push((start, first - 1));
            }
        }
        next = last.checked_add(1);
    }
    if let Some(start) = next {
        out.push((start, u128::MAX));
    }
    out
}

/// `10/8, 172.16/12, 192.168/16`, sorted.
pub fn rfc1918() -> Vec<(u128, u128)> {
    vec![
        cidr4(0x0a00_0000, 8),
        cidr4(0xac10_0000, 12),
        cidr4(0xc0a8_0000, 16),
    ]
}

/// A compiled ruleset of `rule_count` rules of `shape`, generated from `seed`.
fn generated(rule_count: usize, seed: u64, shape: Shape) -> PolicyBuf {
    let text = rules::generate::generate_shaped(rule_count, seed, shape);
    match rules::compile(&format!("generated-{rule_count}-{seed}.rules"), &text) {
        Ok(compiled) => compiled.policy,
        Err(error) => panic!("a generated ruleset does not compile:\n{}", error.render()),
    }
}

/// A realistic ruleset of `rule_count` rules (`rules generate`): rules mostly about one
/// client or network, over clients, tables, CIDRs, port lists and ranges, ICMP types.
pub fn realistic_policy(rule_count: usize, seed: u64) -> PolicyBuf {
    generated(rule_count, seed, Shape::Realistic)
}

/// A wildcard-heavy ruleset of `rule_count` rules: half the rules with an `any` or
/// interface-wide source. A stress case, not a model of real rulesets: every region of the
/// rule space is crossed by many wide rules.
pub fn wildcard_heavy_policy(rule_count: usize, seed: u64) -> PolicyBuf {
    generated(rule_count, seed, Shape::WildcardHeavy)
}

/// A policy of these rules (written at lines 1, 2, ...), index built.
pub fn policy_of(specs: &[RuleSpec]) -> PolicyBuf {
    let mut buf = PolicyBuf::default();
    for (i, spec) in specs.iter().enumerate() {
        spec.push_to(&mut buf, i as u32 + 1);
    }
    buf.build_index();
    buf
}

/// A value inside one of `ranges`, often on an edge.
fn value_in(rng: &mut Rng, ranges: &[(u128, u128)]) -> u128 {
    let (first, last) = ranges[rng.below(ranges.len() as u64) as usize];
    match rng.below(4) {
        0 => first,
        1 => last,
        _ => between(rng, first, last),
    }
}

/// A key inside rule `rule` of `policy` (it may still be decided by an earlier rule).
pub fn key_in_rule(rng: &mut Rng, policy: &Policy, rule: &Rule) -> FlowKey {
    let mut value = |dim: Dim| {
        let ranges: Vec<(u128, u128)> = dim.ranges(policy, rule).collect();
        value_in(rng, &ranges)
    };
    let mut key = FlowKey {
        in_nic: value(Dim::InNic) as u8,
        out: value(Dim::Out) as u8,
        protocol: value(Dim::Protocol) as u8,
        src: value(Dim::Src),
        dst: value(Dim::Dst),
        src_port: value(Dim::SrcPort) as u16,
        dst_port: value(Dim::DstPort) as u16,
        icmp_type: value(Dim::IcmpType) as u8,
        icmp_code: value(Dim::IcmpCode) as u8,
        redirect: value(Dim::Redirect) as u8,
    };
    // What the data plane fills in: zero for the fields the protocol does not have.
    if !matches!(key.protocol, TCP | UDP | SCTP) {
        key.src_port = 0;
        key.dst_port = 0;
    }
    if !matches!(key.protocol, ICMP | ICMPV6) {
        key.icmp_type = 0;
        key.icmp_code = 0;
    }
    key
}

/// Keys to look up, grouped by where their first match is.
pub struct KeySets {
    /// First match in the first tenth of the rules.
    pub early: Vec<FlowKey>,
    /// First match in the last tenth of the rules.
    pub late: Vec<FlowKey>,
    /// No rule matches: the default decides.
    pub default: Vec<FlowKey>,
}

/// `per_set` keys of each kind for `policy` (classified by the reference interpreter).
pub fn key_sets(policy: &Policy, per_set: usize, seed: u64) -> KeySets {
    let mut rng = Rng::new(seed);
    let n = policy.rules.len();
    let tenth = (n / 10).max(1);
    let mut sets = KeySets {
        early: Vec::new(),
        late: Vec::new(),
        default: Vec::new(),
    };
    let mut attempts = 0;
    while (sets.early.len() < per_set || sets.late.len() < per_set) && attempts < 1000 * per_set {
        attempts += 1;
        let from_late =
            sets.early.len() >= per_set || (sets.late.len() < per_set && rng.chance(50));
        let rule = if from_late {
            n - 1 - rng.below(tenth as u64) as usize
        } else {
            rng.below(tenth as u64) as usize
        };
        let key = key_in_rule(&mut rng, policy, &policy.rules[rule]);
        match reference::first_match(policy, &key) {
            Some(i) if (i as usize) < tenth && sets.early.len() < per_set => sets.early.push(key),
            Some(i) if i as usize >= n - tenth && sets.late.len() < per_set => sets.late.push(key),
            _ => {}
        }
    }
    while sets.default.len() < per_set && attempts < 2000 * per_set {
        attempts += 1;
        let key = random_key(&mut rng);
        if reference::first_match(policy, &key).is_none() {
            sets.default.push(key);
        }
    }
    sets
}

/// A plausible packet no ruleset author had in mind.
pub fn random_key(rng: &mut Rng) -> FlowKey {
    let protocol = *rng.pick(&[TCP, TCP, UDP, ICMP, 47]);
    let v6 = rng.chance(20);
    let address = |rng: &mut Rng| {
        if v6 {
            (0x2000u128 | rng.below(0x1000) as u128) << 112 | between(rng, 0, u128::MAX >> 16)
        } else {
            ipv4_to_flow_addr(rng.next_u64() as u32)
        }
    };
    let ports = matches!(protocol, TCP | UDP | SCTP);
    FlowKey {
        in_nic: rng.below(8) as u8,
        out: *rng.pick(&[0, 0, 1, 2, 3, OUT_SELF]),
        protocol,
        src: address(rng),
        dst: address(rng),
        src_port: if ports { rng.below(65536) as u16 } else { 0 },
        dst_port: if ports { rng.below(65536) as u16 } else { 0 },
        icmp_type: if protocol == ICMP {
            rng.below(20) as u8
        } else {
            0
        },
        icmp_code: 0,
        redirect: rng.below(3) as u8,
    }
}
