//! Generated, realistic rulesets (and keys to look up in them) for the matcher's benchmark
//! and tests.
//!
//! The shape follows what the `rules` compiler makes of a Qubes-style ruleset on an
//! appliance with seven client segments: per-client egress rules to CIDRs of mixed lengths
//! and tables, segment-wide rules, `!<rfc1918>` compiled to complemented ranges, port
//! forwards from the uplink, ICMP and services on the appliance itself, blocks of private
//! ranges, and a few broad rules at the end; IPv4 and IPv6; single ports, lists and ranges;
//! `any` fields. The compiler's guarantees hold: a rule with ports constrains the protocol
//! to TCP/UDP, an ICMP rule has full port ranges and a non-ICMP rule full ICMP ranges.
//! Everything comes from a seeded generator, so a size and a seed always give the same set.

// Each user of this module (the benchmark, several tests) uses a different part of it.
#![allow(dead_code)]

use dataplane::policy::index::Dim;
use dataplane::policy::{
    ipv4_to_flow_addr, reference, Action, AddrRange, ByteRange, FlowKey, Policy, PolicyBuf,
    PortRange, Rule, SourcePos, StateLimits, OUT_SELF,
};

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
/// Client-facing NICs (`nic0` is the uplink).
const CLIENT_NICS: u8 = 7;
const CLIENTS_PER_NIC: u32 = 200;
/// Rules of one segment's skeleton (see `Generator::skeleton`).
const SKELETON_RULES: usize = 10;
const WELL_KNOWN_PORTS: [u16; 18] = [
    22, 25, 53, 80, 110, 123, 143, 443, 465, 587, 993, 995, 1194, 3306, 5432, 6379, 8080, 8443,
];
const PORT_RANGES: [(u16, u16); 5] = [
    (1024, 65535),
    (6000, 6063),
    (60000, 61000),
    (8000, 8999),
    (49152, 65535),
];

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

fn segment_v4(nic: u8) -> u32 {
    0x0a89_0000 | (nic as u32) << 8
}

fn segment_v6(nic: u8) -> u128 {
    0xfd00_0000_0000_0000u128 << 64 | (nic as u128) << 64
}

fn client_v4(nic: u8, i: u32) -> u128 {
    ipv4_to_flow_addr(segment_v4(nic) | (10 + i))
}

fn client_v6(nic: u8, i: u32) -> u128 {
    segment_v6(nic) | (0x10 + i as u128)
}

struct Generator {
    rng: Rng,
}

impl Generator {
    fn client_nic(&mut self, segments: u8) -> u8 {
        1 + self.rng.below(segments as u64) as u8
    }

    /// A client address (IPv6 one time in five) behind one of the first `segments` NICs.
    fn client(&mut self, segments: u8) -> (u8, u128, bool) {
        let nic = self.client_nic(segments);
        let client = self.rng.below(CLIENTS_PER_NIC as u64) as u32;
        let v6 = self.rng.chance(20);
        (
            nic,
            if v6 {
                client_v6(nic, client)
            } else {
                client_v4(nic, client)
            },
            v6,
        )
    }

    /// A public IPv4 CIDR of a realistic length.
    fn internet_v4(&mut self) -> (u128, u128) {
        let len = match self.rng.below(100) {
            0..=1 => 8,
            2..=11 => 12 + self.rng.below(5) as u32,
            12..=51 => 20 + self.rng.below(5) as u32,
            _ => 28 + self.rng.below(5) as u32,
        };
        let addr = loop {
            let a = self.rng.next_u64() as u32;
            if !matches!(a >> 24, 0 | 10 | 127 | 172 | 192 | 224..=255) {
                break a;
            }
        };
        cidr4(addr, len)
    }

    /// A global IPv6 CIDR of a realistic length.
    fn internet_v6(&mut self) -> (u128, u128) {
        let len = *self.rng.pick(&[32, 40, 48, 48, 56, 64, 64, 128]);
        let addr = (0x2000u128 | self.rng.below(0x1000) as u128) << 112
            | between(&mut self.rng, 0, u128::MAX >> 16);
        cidr6(addr, len)
    }

    fn internet(&mut self, v6: bool) -> (u128, u128) {
        if v6 {
            self.internet_v6()
        } else {
            self.internet_v4()
        }
    }

    /// Destination ports: single, list, range or any (TCP/UDP rules).
    fn dst_ports(&mut self) -> Vec<(u16, u16)> {
        match self.rng.below(100) {
            0..=49 => {
                let p = *self.rng.pick(&WELL_KNOWN_PORTS);
                vec![(p, p)]
            }
            50..=64 => {
                let p = 1024 + self.rng.below(64000) as u16;
                vec![(p, p)]
            }
            65..=84 => {
                let mut ports: Vec<u16> = (0..2 + self.rng.below(3))
                    .map(|_| *self.rng.pick(&WELL_KNOWN_PORTS))
                    .collect();
                ports.sort_unstable();
                ports.dedup();
                ports.into_iter().map(|p| (p, p)).collect()
            }
            85..=94 => vec![*self.rng.pick(&PORT_RANGES)],
            _ => vec![(0, 65535)],
        }
    }

    fn transport(&mut self, spec: &mut RuleSpec) {
        spec.protocol = match self.rng.below(10) {
            0..=5 => vec![(TCP, TCP)],
            6..=8 => vec![(UDP, UDP)],
            _ => vec![(TCP, TCP), (UDP, UDP)],
        };
        spec.dst_port = self.dst_ports();
        if self.rng.chance(5) {
            spec.src_port = vec![(1024, 65535)];
        }
    }

    fn verdict(&mut self, spec: &mut RuleSpec) {
        spec.action = match self.rng.below(10) {
            0..=7 => Action::Pass,
            8 => Action::Block,
            _ => Action::Reject,
        };
        spec.log = self.rng.chance(20);
    }

    /// `pass from <client> to <CIDR | table | !<rfc1918> | any> tcp port ...`
    fn client_egress(&mut self, segments: u8) -> RuleSpec {
        let mut spec = RuleSpec::any(Action::Pass);
        let (nic, src, v6) = self.client(segments);
        spec.in_nic = vec![(nic, nic)];
        spec.src = vec![(src, src)];
        spec.out = vec![(0, 0)];
        spec.dst = match self.rng.below(10) {
            0 => vec![(0, u128::MAX)],
            1 => complement(&rfc1918()),
            2..=7 => vec![self.internet(v6)],
            _ => self.table(v6),
        };
        self.transport(&mut spec);
        self.verdict(&mut spec);
        spec
    }

    /// `block log from <client> to <CIDR | table>` (any protocol).
    fn client_block(&mut self, segments: u8) -> RuleSpec {
        let mut spec = RuleSpec::any(Action::Block);
        let (nic, src, v6) = self.client(segments);
        spec.in_nic = vec![(nic, nic)];
        spec.src = vec![(src, src)];
        spec.dst = if self.rng.chance(70) {
            vec![self.internet(v6)]
        } else {
            self.table(v6)
        };
        spec.log = true;
        if self.rng.chance(30) {
            spec.action = Action::Reject;
        }
        spec
    }

    /// ICMP from a client to some destinations.
    fn client_icmp(&mut self, segments: u8) -> RuleSpec {
        let mut spec = RuleSpec::any(Action::Pass);
        let (nic, src, v6) = self.client(segments);
        spec.in_nic = vec![(nic, nic)];
        spec.src = vec![(src, src)];
        spec.out = vec![(0, 0)];
        spec.protocol = if v6 {
            vec![(ICMPV6, ICMPV6)]
        } else {
            vec![(ICMP, ICMP)]
        };
        spec.dst = if self.rng.chance(30) {
            vec![(0, u128::MAX)]
        } else {
            vec![self.internet(v6)]
        };
        let echo = if v6 { 128 } else { 8 };
        spec.icmp_type = if self.rng.chance(70) {
            vec![(echo, echo)]
        } else {
            vec![(0, 0), (3, 3), (11, 11)]
        };
        self.verdict(&mut spec);
        spec
    }

    /// A service on the appliance for one client (`pass from <client> to self tcp port 22`).
    fn client_service(&mut self, segments: u8) -> RuleSpec {
        let mut spec = RuleSpec::any(Action::Pass);
        let (nic, src, _) = self.client(segments);
        spec.in_nic = vec![(nic, nic)];
        spec.src = vec![(src, src)];
        spec.out = vec![(OUT_SELF, OUT_SELF)];
        let (protocol, ports) = *self.rng.pick(&[
            (TCP, (22, 22)),
            (TCP, (8080, 8080)),
            (UDP, (5353, 5353)),
            (UDP, (67, 68)),
        ]);
        spec.protocol = vec![(protocol, protocol)];
        spec.dst_port = vec![ports];
        spec
    }

    /// A segment's share of the segment-wide policy: isolation and services on the
    /// appliance go before the per-client rules (`top`), default egress and the final
    /// block after them (`bottom`).
    fn skeleton(&mut self, nic: u8, top: &mut Vec<RuleSpec>, bottom: &mut Vec<RuleSpec>) {
        let v4 = vec![cidr4(segment_v4(nic), 24)];
        let v6 = vec![cidr6(segment_v6(nic), 64)];
        let segment = |action: Action, src: &[(u128, u128)]| {
            let mut spec = RuleSpec::any(action);
            spec.in_nic = vec![(nic, nic)];
            spec.src = src.to_vec();
            spec
        };
        // Clients never reach each other's networks.
        let mut isolate = segment(Action::Block, &v4);
        isolate.dst = rfc1918();
        isolate.out = vec![(0, CLIENT_NICS)];
        isolate.log = true;
        top.push(isolate);
        // DNS and ping to the appliance.
        for (protocol, port) in [(UDP, 53), (TCP, 53)] {
            let mut dns = segment(Action::Pass, &v4);
            dns.out = vec![(OUT_SELF, OUT_SELF)];
            dns.protocol = vec![(protocol, protocol)];
            dns.dst_port = vec![(port, port)];
            top.push(dns);
        }
        for (src, protocol, echo) in [(&v4, ICMP, 8), (&v6, ICMPV6, 128)] {
            let mut ping = segment(Action::Pass, src);
            ping.out = vec![(OUT_SELF, OUT_SELF)];
            ping.protocol = vec![(protocol, protocol)];
            ping.icmp_type = vec![(echo, echo)];
            top.push(ping);
        }
        // Default egress: web, NTP and ping to the internet, then nothing else.
        for src in [&v4, &v6] {
            let mut web = segment(Action::Pass, src);
            web.out = vec![(0, 0)];
            web.dst = complement(&rfc1918());
            web.protocol = vec![(TCP, TCP)];
            web.dst_port = vec![(80, 80), (443, 443)];
            bottom.push(web);
        }
        let mut ntp = segment(Action::Pass, &v4);
        ntp.out = vec![(0, 0)];
        ntp.protocol = vec![(UDP, UDP)];
        ntp.dst_port = vec![(123, 123)];
        bottom.push(ntp);
        let mut ping = segment(Action::Pass, &v4);
        ping.out = vec![(0, 0)];
        ping.protocol = vec![(ICMP, ICMP)];
        ping.icmp_type = vec![(8, 8)];
        bottom.push(ping);
        let mut rest = segment(Action::Block, &[(0, u128::MAX)]);
        rest.log = true;
        bottom.push(rest);
    }

    /// A table of 2–5 CIDRs, sorted and merged.
    fn table(&mut self, v6: bool) -> Vec<(u128, u128)> {
        let mut ranges: Vec<(u128, u128)> = (0..2 + self.rng.below(4))
            .map(|_| self.internet(v6))
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u128, u128)> = Vec::new();
        for (first, last) in ranges {
            match merged.last_mut() {
                Some(prev) if first <= prev.1 => prev.1 = prev.1.max(last),
                _ => merged.push((first, last)),
            }
        }
        merged
    }

    /// `pass from <segment> to <CIDR | !<rfc1918>> ...`
    fn segment_egress(&mut self) -> RuleSpec {
        let mut spec = RuleSpec::any(Action::Pass);
        let nic = self.client_nic(CLIENT_NICS);
        let v6 = self.rng.chance(20);
        spec.in_nic = vec![(nic, nic)];
        spec.src = match self.rng.below(3) {
            0 => vec![(0, u128::MAX)],
            _ if v6 => vec![cidr6(segment_v6(nic), 64)],
            _ => vec![cidr4(segment_v4(nic), 24)],
        };
        spec.out = vec![(0, 0)];
        spec.dst = if self.rng.chance(40) {
            complement(&rfc1918())
        } else {
            vec![self.internet(v6)]
        };
        self.transport(&mut spec);
        self.verdict(&mut spec);
        spec
    }

    /// A port forward's filter rule: `pass in on uplink from <any | CIDR> to <client> tcp port P`.
    fn inbound_forward(&mut self, segments: u8) -> RuleSpec {
        let mut spec = RuleSpec::any(Action::Pass);
        let nic = self.client_nic(segments);
        let client = self.rng.below(CLIENTS_PER_NIC as u64) as u32;
        spec.in_nic = vec![(0, 0)];
        spec.out = vec![(nic, nic)];
        if self.rng.chance(50) {
            spec.src = vec![self.internet_v4()];
        }
        let dst = client_v4(nic, client);
        spec.dst = vec![(dst, dst)];
        spec.protocol = vec![(TCP, TCP)];
        let port = *self.rng.pick(&WELL_KNOWN_PORTS);
        spec.dst_port = vec![(port, port)];
        spec
    }

    /// ICMP echo (and a few error types) to the appliance or through it.
    fn icmp(&mut self) -> RuleSpec {
        let mut spec = RuleSpec::any(Action::Pass);
        let v6 = self.rng.chance(30);
        let nic = self.client_nic(CLIENT_NICS);
        spec.in_nic = vec![(nic, nic)];
        spec.protocol = if v6 {
            vec![(ICMPV6, ICMPV6)]
        } else {
            vec![(ICMP, ICMP)]
        };
        spec.out = if self.rng.chance(50) {
            vec![(OUT_SELF, OUT_SELF)]
        } else {
            vec![(0, 0)]
        };
        if self.rng.chance(70) {
            let echo = if v6 { 128 } else { 8 };
            spec.icmp_type = vec![(echo, echo)];
        } else {
            spec.icmp_type = if v6 {
                vec![(1, 4)]
            } else {
                vec![(0, 0), (3, 3), (11, 11)]
            };
            if self.rng.chance(50) {
                spec.icmp_code = vec![(0, 1)];
            }
        }
        self.verdict(&mut spec);
        spec
    }

    /// DNS, SSH or DHCP to the appliance from a segment.
    fn segment_service(&mut self) -> RuleSpec {
        let mut spec = RuleSpec::any(Action::Pass);
        let nic = self.client_nic(CLIENT_NICS);
        spec.in_nic = vec![(nic, nic)];
        spec.src = vec![cidr4(segment_v4(nic), 24)];
        spec.out = vec![(OUT_SELF, OUT_SELF)];
        let (protocol, ports) = *self.rng.pick(&[
            (UDP, (53, 53)),
            (TCP, (53, 53)),
            (TCP, (22, 22)),
            (UDP, (67, 68)),
        ]);
        spec.protocol = vec![(protocol, protocol)];
        spec.dst_port = vec![ports];
        spec
    }

    /// `block log from <segment | client> to <rfc1918>`
    fn private_block(&mut self) -> RuleSpec {
        let mut spec = RuleSpec::any(Action::Block);
        let nic = self.client_nic(CLIENT_NICS);
        spec.in_nic = vec![(nic, nic)];
        if self.rng.chance(50) {
            let src = client_v4(nic, self.rng.below(CLIENTS_PER_NIC as u64) as u32);
            spec.src = vec![(src, src)];
        }
        spec.dst = rfc1918();
        spec.log = true;
        if self.rng.chance(30) {
            spec.action = Action::Reject;
        }
        spec
    }

    /// A broad rule: a whole segment, or a destination blocked for everyone.
    fn broad(&mut self) -> RuleSpec {
        if self.rng.chance(50) {
            let mut spec = RuleSpec::any(Action::Block);
            spec.dst = vec![self.internet_v4()];
            spec.log = true;
            spec
        } else {
            let mut spec = RuleSpec::any(Action::Pass);
            let nic = self.client_nic(CLIENT_NICS);
            spec.in_nic = vec![(nic, nic)];
            spec.out = vec![(0, 0)];
            spec.protocol = vec![(TCP, TCP)];
            spec.dst_port = vec![(443, 443)];
            spec
        }
    }
}

/// A realistic policy of `rule_count` rules (index built): a fixed segment-wide skeleton
/// per client segment (isolation, services on the appliance, default egress, a final
/// block), and per-client rules for the rest — which is how large rulesets grow: by
/// clients and destinations, not by segment-wide policy.
pub fn realistic_policy(rule_count: usize, seed: u64) -> PolicyBuf {
    let mut generator = Generator {
        rng: Rng::new(seed),
    };
    let segments = (rule_count / 100).clamp(1, CLIENT_NICS as usize) as u8;
    let mut top = Vec::new();
    let mut bottom = Vec::new();
    for nic in 1..=segments {
        if top.len() + bottom.len() + SKELETON_RULES > rule_count {
            break;
        }
        generator.skeleton(nic, &mut top, &mut bottom);
    }
    let specific = rule_count - top.len() - bottom.len();
    let mut specs = top;
    for _ in 0..specific {
        let spec = match generator.rng.below(100) {
            0..=64 => generator.client_egress(segments),
            65..=74 => generator.inbound_forward(segments),
            75..=84 => generator.client_block(segments),
            85..=94 => generator.client_icmp(segments),
            _ => generator.client_service(segments),
        };
        specs.push(spec);
    }
    specs.extend(bottom);
    named(
        policy_of(&specs),
        format!("realistic-{rule_count}-{seed}.rules"),
    )
}

/// A wildcard-heavy policy of `rule_count` rules (index built): about half the rules are
/// segment-wide (any source), spread through the whole ruleset. A stress case, not a
/// model of real rulesets: every region of the rule space is crossed by many wide rules.
pub fn wildcard_heavy_policy(rule_count: usize, seed: u64) -> PolicyBuf {
    let mut generator = Generator {
        rng: Rng::new(seed),
    };
    let broad_from = rule_count - rule_count / 20;
    let specs: Vec<RuleSpec> = (0..rule_count)
        .map(|i| {
            if i >= broad_from {
                return generator.broad();
            }
            match generator.rng.below(100) {
                0..=39 => generator.client_egress(CLIENT_NICS),
                40..=54 => generator.segment_egress(),
                55..=64 => generator.inbound_forward(CLIENT_NICS),
                65..=74 => generator.icmp(),
                75..=84 => generator.segment_service(),
                _ => generator.private_block(),
            }
        })
        .collect();
    named(
        policy_of(&specs),
        format!("wildcard-heavy-{rule_count}-{seed}.rules"),
    )
}

/// `buf` with a source name and a logged default.
fn named(mut buf: PolicyBuf, source_name: String) -> PolicyBuf {
    buf.source_name = source_name;
    buf.default.log = true;
    buf
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
    };
    // What the data plane fills in: zero for the fields the protocol does not have.
    if !matches!(key.protocol, TCP | UDP) {
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
    let ports = matches!(protocol, TCP | UDP);
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
    }
}
