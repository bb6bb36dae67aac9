//! The indexed matcher decides exactly like the plain linear interpreter, on randomised
//! rulesets built to break matchers (overlapping and nested CIDRs of both families, single
//! ports and ranges, negations compiled to complements, boundary values, empty fields,
//! inverted ranges, duplicate rules) and on keys taken on and next to the rules' edges.
//!
//! Each proptest case checks `KEYS_PER_RULESET` keys against one ruleset: 1,600 cases, so
//! over 100,000 keys per run.

#[path = "../benches/support/mod.rs"]
mod support;

use dataplane::policy::index::Dim;
use dataplane::policy::{ipv4_to_flow_addr, reference, Action, FlowKey, Policy};
use proptest::prelude::*;
use support::{cidr4, cidr6, complement, policy_of, Rng, RuleSpec};

const CASES: u32 = 1_600;
const KEYS_PER_RULESET: usize = 64;

/// How one field is drawn: a kind and two picks (small integers, so that proptest shrinks a
/// failing ruleset towards `any` fields and the first values of each pool).
type FieldSeed = (u8, u16, u16);

fn field_seed() -> impl Strategy<Value = FieldSeed> {
    (0u8..16, any::<u16>(), any::<u16>())
}

/// What kind of field a seed's kind draws.
enum Kind {
    Any,
    One,
    Range,
    Negation,
    List,
    Nothing,
    Inverted,
}

fn kind(k: u8) -> Kind {
    match k {
        0..=5 => Kind::Any,
        6..=8 => Kind::One,
        9..=10 => Kind::Range,
        11..=12 => Kind::Negation,
        13 => Kind::List,
        14 => Kind::Nothing,
        _ => Kind::Inverted,
    }
}

/// A field over a numeric dimension up to `max`, with values from `value(pick)`: any, one
/// value, a range, a negation (its complement), a list, nothing, or an inverted range
/// (which matches nothing).
fn field(seed: FieldSeed, max: u128, value: impl Fn(u16) -> u128) -> Vec<(u128, u128)> {
    let (k, a, b) = seed;
    let (x, y) = (value(a), value(b));
    let (lo, hi) = (x.min(y), x.max(y));
    match kind(k) {
        Kind::Any => vec![(0, max)],
        Kind::One => vec![(x, x)],
        Kind::Range => vec![(lo, hi)],
        Kind::Negation => complement(&[(lo, hi)])
            .into_iter()
            .filter(|&(f, _)| f <= max)
            .map(|(f, l)| (f, l.min(max)))
            .collect(),
        Kind::List => vec![(x, x), (y, y), (lo / 2, lo / 2)],
        Kind::Nothing => vec![],
        Kind::Inverted => vec![(hi, lo)],
    }
}

/// One-byte values that matter (0, ICMP, TCP, UDP, ICMPv6, the top) or any other.
fn byte_value(pick: u16) -> u128 {
    const INTERESTING: [u128; 8] = [0, 1, 6, 8, 17, 58, 254, 255];
    INTERESTING
        .get(pick as usize % 16)
        .copied()
        .unwrap_or((pick >> 4) as u128 & 0xff)
}

/// Ports that matter (0, well known, the 1023/1024 edge, the top) or any other.
fn port_value(pick: u16) -> u128 {
    const INTERESTING: [u128; 9] = [0, 1, 22, 53, 443, 1023, 1024, 65534, 65535];
    INTERESTING
        .get(pick as usize % 16)
        .copied()
        .unwrap_or(pick as u128)
}

/// Address ranges that nest and overlap, in both families, with the edges of the space; or
/// a CIDR derived from the pick.
fn address_block(pick: u16) -> (u128, u128) {
    let blocks = [
        cidr4(0x0a00_0000, 8),
        cidr4(0x0a01_0000, 16),
        cidr4(0x0a01_0200, 24),
        cidr4(0x0a01_0203, 32),
        cidr4(0x0a01_0280, 25),
        cidr4(0, 0),
        cidr4(0, 32),
        cidr4(0xffff_ffff, 32),
        cidr4(0xc0a8_0000, 16),
        cidr6(0x2001_0db8u128 << 96, 32),
        cidr6(0x2001_0db8u128 << 96, 64),
        cidr6(0x2001_0db8u128 << 96 | 1, 128),
        cidr6(0xfd00u128 << 112, 8),
        cidr6(0, 128),
        cidr6(u128::MAX, 128),
        cidr6(0, 1),
    ];
    let mut rng = Rng::new(pick as u64);
    match blocks.get(pick as usize % 32) {
        Some(&block) => block,
        None if pick % 2 == 0 => cidr4(rng.next_u64() as u32, rng.below(33) as u32),
        None => cidr6(
            support::between(&mut rng, 0, u128::MAX),
            rng.below(129) as u32,
        ),
    }
}

/// An address field: like [`field`], with the bounds of blocks as values, and tables of
/// several blocks as lists.
fn address_field(seed: FieldSeed) -> Vec<(u128, u128)> {
    let (k, a, b) = seed;
    let (x, y) = (address_block(a), address_block(b));
    match kind(k) {
        Kind::One => vec![x],
        Kind::Range => vec![(x.0.min(y.0), x.1.max(y.1))],
        Kind::Negation => complement(&[x]),
        Kind::List => vec![x, y],
        _ => vec![(0, u128::MAX)],
    }
}

fn bytes(seed: FieldSeed) -> Vec<(u8, u8)> {
    field(seed, 255, byte_value)
        .into_iter()
        .map(|(a, b)| (a as u8, b as u8))
        .collect()
}

fn ports(seed: FieldSeed) -> Vec<(u16, u16)> {
    field(seed, 65535, port_value)
        .into_iter()
        .map(|(a, b)| (a as u16, b as u16))
        .collect()
}

fn rule() -> impl Strategy<Value = RuleSpec> {
    (
        0u8..3,
        any::<bool>(),
        proptest::array::uniform9(field_seed()),
    )
        .prop_map(|(action, log, f)| RuleSpec {
            action: [Action::Pass, Action::Block, Action::Reject][action as usize],
            log,
            in_nic: bytes(f[0]),
            out: bytes(f[1]),
            protocol: bytes(f[2]),
            src: address_field(f[3]),
            dst: address_field(f[4]),
            src_port: ports(f[5]),
            dst_port: ports(f[6]),
            icmp_type: bytes(f[7]),
            icmp_code: bytes(f[8]),
        })
}

/// 1–40 rules, some of them copies of earlier ones.
fn ruleset() -> impl Strategy<Value = Vec<RuleSpec>> {
    (
        prop::collection::vec(rule(), 1..40),
        prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    )
        .prop_map(|(mut rules, copies)| {
            for copy in copies {
                let rule = copy.get(&rules).clone();
                let at = copy.index(rules.len() + 1);
                rules.insert(at, rule);
            }
            rules
        })
}

/// Values worth probing in one dimension: every rule edge, one step either side, and the
/// ends of the space.
fn edges(ranges: impl Iterator<Item = (u128, u128)>, max: u128) -> Vec<u128> {
    let mut values = vec![0, max];
    for (first, last) in ranges {
        values.extend([
            first,
            last,
            first.saturating_sub(1),
            last.saturating_add(1).min(max),
        ]);
    }
    values.sort_unstable();
    values.dedup();
    values
}

/// Keys on and next to the edges of the policy's rules, with some random coordinates.
fn probing_keys(policy: &Policy, seed: u64, count: usize) -> Vec<FlowKey> {
    let edges_of =
        |dim: Dim, max: u128| edges(policy.rules.iter().flat_map(|r| dim.ranges(policy, r)), max);
    let values: Vec<(Vec<u128>, u128)> = [
        (Dim::InNic, 255),
        (Dim::Out, 255),
        (Dim::Protocol, 255),
        (Dim::Src, u128::MAX),
        (Dim::Dst, u128::MAX),
        (Dim::SrcPort, 65535),
        (Dim::DstPort, 65535),
        (Dim::IcmpType, 255),
        (Dim::IcmpCode, 255),
        (Dim::Redirect, 255),
    ]
    .into_iter()
    .map(|(dim, max)| (edges_of(dim, max), max))
    .collect();
    let mut rng = Rng::new(seed);
    let mut pick = |d: usize| {
        let (values, max) = (&values[d].0, values[d].1);
        if rng.chance(85) {
            values[rng.below(values.len() as u64) as usize]
        } else if max == u128::MAX && rng.chance(50) {
            ipv4_to_flow_addr(rng.next_u64() as u32)
        } else {
            support::between(&mut rng, 0, max)
        }
    };
    (0..count)
        .map(|_| FlowKey {
            in_nic: pick(0) as u8,
            out: pick(1) as u8,
            protocol: pick(2) as u8,
            src: pick(3),
            dst: pick(4),
            src_port: pick(5) as u16,
            dst_port: pick(6) as u16,
            icmp_type: pick(7) as u8,
            icmp_code: pick(8) as u8,
            redirect: pick(9) as u8,
        })
        .collect()
}

fn assert_agrees(policy: &Policy, keys: &[FlowKey]) -> Result<(), TestCaseError> {
    for key in keys {
        let indexed = policy.decide(key);
        let linear = reference::decide(policy, key);
        prop_assert_eq!(indexed, linear, "key {:?}", key);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn indexed_matcher_decides_like_the_linear_interpreter(rules in ruleset(), seed in any::<u64>()) {
        let buf = policy_of(&rules);
        let policy = buf.as_policy();
        prop_assert_eq!(policy.index.rule_count as usize, policy.rules.len());
        let keys = probing_keys(&policy, seed, KEYS_PER_RULESET);
        assert_agrees(&policy, &keys)?;
    }
}

#[test]
fn indexed_matcher_decides_like_the_linear_interpreter_on_generated_rulesets() {
    for generate in [support::realistic_policy, support::wildcard_heavy_policy] {
        let buf = generate(600, 3);
        let policy = buf.as_policy();
        let mut keys = probing_keys(&policy, 11, 2_000);
        let sets = support::key_sets(&policy, 300, 5);
        keys.extend(sets.early.into_iter().chain(sets.late).chain(sets.default));
        assert_agrees(&policy, &keys).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Above 64 rules the index is a forest of trees, one per group of rules alike in
    /// width: the earliest match over all of them is still the first match.
    #[test]
    fn a_forest_of_trees_decides_like_the_linear_interpreter(
        rules in prop::collection::vec(rule(), 65..160),
        seed in any::<u64>(),
    ) {
        let buf = policy_of(&rules);
        let policy = buf.as_policy();
        prop_assert!(policy.index.roots.len() >= 2);
        let keys = probing_keys(&policy, seed, KEYS_PER_RULESET);
        assert_agrees(&policy, &keys)?;
    }
}
