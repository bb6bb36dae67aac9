//! The matcher on the edge cases that break matchers, one behaviour per test. Every
//! decision is also checked against the linear reference interpreter.

#[path = "../benches/support/mod.rs"]
mod support;

use dataplane::policy::index::axis::{Axis, CLASS_TABLE_LEN};
use dataplane::policy::index::layout::{entry, NodeShape, TreeRef};
use dataplane::policy::index::tally::WalkCounts;
use dataplane::policy::index::{MatchIndex, MatchIndexBuf};
use dataplane::policy::*;
use support::{cidr4, cidr6, complement, policy_of, RuleSpec};

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;

/// The rule that decides `key`, after checking that the index and the reference agree.
fn deciding_rule(buf: &PolicyBuf, key: &FlowKey) -> Option<u32> {
    let policy = buf.as_policy();
    let verdict = policy.decide(key);
    assert_eq!(
        verdict,
        reference::decide(&policy, key),
        "index and reference disagree on {key:?}"
    );
    verdict.rule
}

fn pass() -> RuleSpec {
    RuleSpec::any(Action::Pass)
}

/// A key for an IPv4 packet from nic1 leaving through `out`.
fn ipv4_key(out: u8, protocol: u8, ports: (u16, u16), icmp: (u8, u8)) -> FlowKey {
    FlowKey {
        in_nic: 1,
        out,
        protocol,
        src: ipv4_to_flow_addr(1),
        dst: ipv4_to_flow_addr(2),
        src_port: ports.0,
        dst_port: ports.1,
        icmp_type: icmp.0,
        icmp_code: icmp.1,
        redirect: 0,
    }
}

fn tcp(src: u32, dst: u32, dst_port: u16) -> FlowKey {
    FlowKey {
        src: ipv4_to_flow_addr(src),
        dst: ipv4_to_flow_addr(dst),
        ..ipv4_key(0, TCP, (40_000, dst_port), (0, 0))
    }
}

fn tcp6(src: u128, dst: u128, dst_port: u16) -> FlowKey {
    FlowKey {
        in_nic: 1,
        out: 0,
        protocol: TCP,
        src,
        dst,
        src_port: 40_000,
        dst_port,
        icmp_type: 0,
        icmp_code: 0,
        redirect: 0,
    }
}

fn with_dst(dst: Vec<(u128, u128)>) -> RuleSpec {
    RuleSpec { dst, ..pass() }
}

#[test]
fn ipv4_key_never_matches_ipv6_only_rule() {
    let buf = policy_of(&[
        with_dst(vec![cidr6(0x2001_0db8u128 << 96, 32)]),
        with_dst(vec![cidr6(0, 0)]),
    ]);
    // `::/0` is every address, so the second rule matches IPv4 keys too; the first never.
    assert_eq!(
        deciding_rule(&buf, &tcp(0x0a00_0001, 0x0101_0101, 443)),
        Some(1)
    );
    assert_eq!(
        deciding_rule(&buf, &tcp6(1, 0x2001_0db8u128 << 96 | 5, 443)),
        Some(0)
    );
}

#[test]
fn ipv6_key_never_matches_ipv4_only_rule() {
    let everything_v4 = cidr4(0, 0);
    let buf = policy_of(&[with_dst(vec![everything_v4])]);
    assert_eq!(deciding_rule(&buf, &tcp(1, 0xffff_ffff, 443)), Some(0));
    assert_eq!(
        deciding_rule(&buf, &tcp6(1, 0x2001_0db8u128 << 96, 443)),
        None
    );
    // The addresses just outside `::ffff:0:0/96`.
    assert_eq!(
        deciding_rule(&buf, &tcp6(1, everything_v4.0 - 1, 443)),
        None
    );
    assert_eq!(
        deciding_rule(&buf, &tcp6(1, everything_v4.1 + 1, 443)),
        None
    );
}

#[test]
fn port_range_edges_are_inclusive() {
    let buf = policy_of(&[RuleSpec {
        protocol: vec![(TCP, TCP)],
        dst_port: vec![(1024, 2047)],
        ..pass()
    }]);
    let decided = |port| deciding_rule(&buf, &tcp(1, 2, port));
    assert_eq!(
        [decided(1023), decided(1024), decided(2047), decided(2048)],
        [None, Some(0), Some(0), None]
    );
}

#[test]
fn cidr_edges_are_inclusive() {
    let (first, last) = cidr4(0x0a01_0200, 24);
    let buf = policy_of(&[with_dst(vec![(first, last)])]);
    let decided = |dst: u128| deciding_rule(&buf, &tcp6(1, dst, 80));
    assert_eq!(
        [
            decided(first - 1),
            decided(first),
            decided(last),
            decided(last + 1)
        ],
        [None, Some(0), Some(0), None]
    );
}

#[test]
fn lowest_and_highest_values_of_every_dimension_match() {
    let buf = policy_of(&[
        RuleSpec {
            src: vec![(0, 0)],
            src_port: vec![(0, 0)],
            in_nic: vec![(0, 0)],
            ..pass()
        },
        RuleSpec {
            src: vec![(u128::MAX, u128::MAX)],
            dst_port: vec![(65535, 65535)],
            icmp_code: vec![(255, 255)],
            ..pass()
        },
    ]);
    let lowest = FlowKey {
        src: 0,
        src_port: 0,
        ..FlowKey::default()
    };
    let highest = FlowKey {
        src: u128::MAX,
        dst_port: 65535,
        icmp_code: 255,
        in_nic: 255,
        ..FlowKey::default()
    };
    assert_eq!(deciding_rule(&buf, &lowest), Some(0));
    assert_eq!(deciding_rule(&buf, &highest), Some(1));
    assert_eq!(deciding_rule(&buf, &FlowKey { src: 1, ..lowest }), None);
    assert_eq!(
        deciding_rule(
            &buf,
            &FlowKey {
                src: u128::MAX - 1,
                ..highest
            }
        ),
        None
    );
}

#[test]
fn first_matching_rule_wins_over_later_broader_rules() {
    let host = cidr4(0x0a01_0203, 32);
    let buf = policy_of(&[
        RuleSpec {
            action: Action::Block,
            ..with_dst(vec![host])
        },
        with_dst(vec![cidr4(0x0a01_0000, 16)]),
        pass(),
    ]);
    assert_eq!(deciding_rule(&buf, &tcp(1, 0x0a01_0203, 22)), Some(0));
    assert_eq!(deciding_rule(&buf, &tcp(1, 0x0a01_0204, 22)), Some(1));
    assert_eq!(deciding_rule(&buf, &tcp(1, 0x0b00_0000, 22)), Some(2));
}

#[test]
fn a_broad_rule_shadows_every_narrower_rule_after_it() {
    let buf = policy_of(&[pass(), with_dst(vec![cidr4(0x0a01_0203, 32)])]);
    assert_eq!(deciding_rule(&buf, &tcp(1, 0x0a01_0203, 22)), Some(0));
}

#[test]
fn duplicate_rules_decide_by_the_first_copy() {
    let rule = RuleSpec {
        protocol: vec![(UDP, UDP)],
        dst_port: vec![(53, 53)],
        ..pass()
    };
    let buf = policy_of(&[rule.clone(), rule.clone(), rule]);
    let dns = ipv4_key(0, UDP, (5353, 53), (0, 0));
    assert_eq!(deciding_rule(&buf, &dns), Some(0));
}

#[test]
fn negated_table_matches_everything_outside_it_and_nothing_inside() {
    let rfc1918 = support::rfc1918();
    let buf = policy_of(&[with_dst(complement(&rfc1918))]);
    for (first, last) in rfc1918 {
        assert_eq!(deciding_rule(&buf, &tcp6(1, first, 443)), None);
        assert_eq!(deciding_rule(&buf, &tcp6(1, last, 443)), None);
        assert_eq!(deciding_rule(&buf, &tcp6(1, first - 1, 443)), Some(0));
        assert_eq!(deciding_rule(&buf, &tcp6(1, last + 1, 443)), Some(0));
    }
    assert_eq!(deciding_rule(&buf, &tcp6(1, 0, 443)), Some(0));
    assert_eq!(deciding_rule(&buf, &tcp6(1, u128::MAX, 443)), Some(0));
}

#[test]
fn a_port_list_matches_its_ports_only() {
    let buf = policy_of(&[RuleSpec {
        dst_port: vec![(443, 443), (22, 22), (80, 80)],
        ..pass()
    }]);
    let decided: Vec<_> = [21, 22, 23, 80, 443, 444]
        .iter()
        .map(|&p| deciding_rule(&buf, &tcp(1, 2, p)))
        .collect();
    assert_eq!(decided, [None, Some(0), None, Some(0), Some(0), None]);
}

#[test]
fn empty_field_never_matches() {
    let buf = policy_of(&[
        RuleSpec {
            out: vec![],
            ..pass()
        },
        pass(),
    ]);
    assert_eq!(deciding_rule(&buf, &tcp(1, 2, 3)), Some(1));
}

#[test]
fn inverted_range_never_matches() {
    let buf = policy_of(&[
        RuleSpec {
            dst_port: vec![(100, 10)],
            ..pass()
        },
        RuleSpec {
            src_port: vec![(9, 8), (7, 7)],
            ..pass()
        },
    ]);
    assert_eq!(deciding_rule(&buf, &tcp(1, 2, 50)), None);
    assert_eq!(
        deciding_rule(
            &buf,
            &FlowKey {
                src_port: 7,
                ..tcp(1, 2, 50)
            }
        ),
        Some(1)
    );
}

#[test]
fn portless_key_matches_only_rules_open_to_port_zero() {
    let buf = policy_of(&[
        RuleSpec {
            dst_port: vec![(1, 65535)],
            ..pass()
        },
        RuleSpec {
            protocol: vec![(ICMP, ICMP)],
            ..pass()
        },
    ]);
    let ping = ipv4_key(0, ICMP, (0, 0), (8, 0));
    assert_eq!(deciding_rule(&buf, &ping), Some(1));
}

#[test]
fn icmp_type_and_code_select_the_rule() {
    let buf = policy_of(&[
        RuleSpec {
            protocol: vec![(ICMP, ICMP)],
            icmp_type: vec![(3, 3)],
            icmp_code: vec![(4, 4)],
            ..pass()
        },
        RuleSpec {
            protocol: vec![(ICMP, ICMP)],
            icmp_type: vec![(3, 3)],
            ..pass()
        },
        RuleSpec {
            protocol: vec![(ICMP, ICMP)],
            icmp_type: vec![(8, 8)],
            ..pass()
        },
    ]);
    let icmp = |t, c| ipv4_key(0, ICMP, (0, 0), (t, c));
    let decided: Vec<_> = [(3, 4), (3, 3), (8, 0), (0, 0)]
        .iter()
        .map(|&(t, c)| deciding_rule(&buf, &icmp(t, c)))
        .collect();
    assert_eq!(decided, [Some(0), Some(1), Some(2), None]);
}

#[test]
fn traffic_to_the_appliance_is_told_apart_by_its_egress() {
    let buf = policy_of(&[RuleSpec {
        out: vec![(OUT_SELF, OUT_SELF)],
        ..pass()
    }]);
    assert_eq!(
        deciding_rule(&buf, &ipv4_key(OUT_SELF, UDP, (1000, 53), (0, 0))),
        Some(0)
    );
    assert_eq!(
        deciding_rule(&buf, &ipv4_key(0, UDP, (1000, 53), (0, 0))),
        None
    );
}

#[test]
fn the_default_decides_when_no_rule_matches() {
    let mut buf = policy_of(&[with_dst(vec![cidr4(0x0a00_0000, 8)])]);
    buf.default = DefaultRule {
        pos: SourcePos { line: 9, column: 1 },
        reject: true,
        log: true,
    };
    let verdict = buf.as_policy().decide(&tcp(1, 0x0b00_0000, 80));
    assert_eq!(
        verdict,
        Verdict {
            action: Action::Reject,
            log: true,
            rule: None
        }
    );
}

#[test]
fn a_policy_without_rules_decides_by_the_default() {
    let buf = policy_of(&[]);
    assert_eq!(deciding_rule(&buf, &tcp(1, 2, 3)), None);
    assert_eq!(buf.as_policy().index.size_bytes(), 0);
}

#[test]
fn many_rules_through_one_point_are_told_apart() {
    // 200 rules all containing the key, each narrower than the next but for one that
    // excludes the key's port: the first one containing it must win.
    let mut rules: Vec<RuleSpec> = (0..200u32)
        .map(|i| RuleSpec {
            dst: vec![cidr4(0x0a01_0203, 32 - i.min(32))],
            src_port: vec![(0, 65535 - i as u16)],
            ..pass()
        })
        .collect();
    rules[0].dst_port = vec![(1, 79)];
    let buf = policy_of(&rules);
    assert_eq!(deciding_rule(&buf, &tcp(5, 0x0a01_0203, 80)), Some(1));
    assert_eq!(
        deciding_rule(
            &buf,
            &FlowKey {
                src_port: 65535,
                ..tcp(5, 0x0a01_0203, 80)
            }
        ),
        None
    );
}

#[test]
fn an_index_that_was_never_built_still_decides_correctly() {
    let mut buf = PolicyBuf::default();
    with_dst(vec![cidr4(0x0a00_0000, 8)]).push_to(&mut buf, 1);
    assert_eq!(deciding_rule(&buf, &tcp(1, 0x0a00_0001, 80)), Some(0));
}

#[test]
fn rules_added_after_the_index_was_built_are_still_seen() {
    let mut buf = policy_of(&[with_dst(vec![cidr4(0x0a00_0000, 8)])]);
    pass().push_to(&mut buf, 2);
    assert_eq!(deciding_rule(&buf, &tcp(1, 0x0b00_0001, 80)), Some(1));
}

#[test]
fn building_the_index_twice_gives_the_same_words() {
    let buf = support::realistic_policy(300, 4);
    let policy = buf.as_policy();
    assert_eq!(MatchIndexBuf::build(&policy), MatchIndexBuf::build(&policy));
}

#[test]
fn the_index_stays_within_its_memory_budget() {
    // A ruleset where the budget, not the rules, stops the cutting: rules from one /24 to
    // a /8 crossing rules from that /8 to one /24 of another (all alike in width, so in
    // one tree): every cut that tells one half apart copies the other half.
    let specs: Vec<RuleSpec> = (0..1_500u32)
        .map(|i| {
            let narrow = |net: u32| cidr4(net << 24 | (i / 2) << 8, 24);
            let (src, dst) = if i % 2 == 0 {
                (narrow(45), cidr4(46 << 24, 8))
            } else {
                (cidr4(45 << 24, 8), narrow(46))
            };
            RuleSpec {
                src: vec![src],
                dst: vec![dst],
                ..pass()
            }
        })
        .collect();
    let buf = policy_of(&specs);
    let size = buf.as_policy().index.size_bytes();
    // The budget of the compiled rules (a source rule may compile into several).
    let budget = MatchIndexBuf::max_size_bytes(buf.rules.len());
    assert!(size <= budget, "{size} > {budget}");
    assert!(
        size > budget / 2,
        "{size}: the budget was not what stopped the cutting"
    );
}

/// A policy with one rule (matching TCP to 10/8) and the given index instead of its own.
fn decide_with(index: MatchIndex, key: &FlowKey) -> Verdict {
    let buf = policy_of(&[with_dst(vec![cidr4(0x0a00_0000, 8)])]);
    let policy = Policy {
        index,
        ..buf.as_policy()
    };
    policy.decide(key)
}

#[test]
fn a_malformed_index_is_answered_by_a_linear_scan() {
    let classes = [0u8; CLASS_TABLE_LEN];
    let node = |axis, window| {
        NodeShape {
            axis,
            shift: 0,
            window,
        }
        .encode()
    };
    let cyclic = [
        node(Axis::SrcPort, 1),
        0,
        TreeRef::Node(0).encode(),
        TreeRef::Node(0).encode(),
        TreeRef::Node(0).encode(),
    ];
    let out_of_bounds = [
        node(Axis::DstPort, 1),
        0,
        TreeRef::Leaf(1000).encode(),
        TreeRef::Leaf(1000).encode(),
        TreeRef::Leaf(1000).encode(),
    ];
    let missing_rule = [1, entry(7, 0)];
    let bad_axis = [15, 0, 0];
    let bad_kind = [3 << 30];
    let cases: [(&[u32], u32); 5] = [
        (&cyclic, TreeRef::Node(0).encode()),
        (&out_of_bounds, TreeRef::Node(0).encode()),
        (&missing_rule, TreeRef::Leaf(0).encode()),
        (&bad_axis, TreeRef::Node(0).encode()),
        (&bad_kind, TreeRef::Node(0).encode()),
    ];
    for (tree, root) in cases {
        let roots = [0, root];
        let index = MatchIndex {
            rule_count: 1,
            roots: &roots,
            classes: &classes,
            tree,
        };
        assert_eq!(
            decide_with(index, &tcp(1, 0x0a00_0001, 80)).rule,
            Some(0),
            "{tree:?}"
        );
        assert_eq!(
            decide_with(index, &tcp(1, 0x0b00_0001, 80)).rule,
            None,
            "{tree:?}"
        );
    }
    // Roots that no builder writes: an odd number of words, trees out of order. (The leaf
    // would say rule 0 matches every key; the linear scan knows better.)
    let everything_leaf = [1, entry(0, 0)];
    let leaf = TreeRef::Leaf(0).encode();
    for roots in [&[0, leaf, 0][..], &[1, leaf, 0, leaf][..]] {
        let index = MatchIndex {
            rule_count: 1,
            roots,
            classes: &classes,
            tree: &everything_leaf,
        };
        assert_eq!(
            decide_with(index, &tcp(1, 0x0b00_0001, 80)).rule,
            None,
            "{roots:?}"
        );
    }
    let truncated_classes = MatchIndex {
        rule_count: 1,
        roots: &[0, TreeRef::Node(0).encode()],
        classes: &classes[..10],
        tree: &cyclic,
    };
    assert_eq!(
        decide_with(truncated_classes, &tcp(1, 0x0a00_0001, 80)).rule,
        Some(0)
    );
}

#[test]
fn a_malformed_tree_among_several_is_answered_by_a_linear_scan() {
    let classes = [0u8; CLASS_TABLE_LEN];
    let cyclic_node = NodeShape {
        axis: Axis::SrcPort,
        shift: 0,
        window: 1,
    }
    .encode();
    let cycle = TreeRef::Node(0).encode();
    // A cyclic node, then a leaf that says rule 0 matches every key.
    let tree = [cyclic_node, 0, cycle, cycle, cycle, 1, entry(0, 0)];
    let (cyclic, everything) = (TreeRef::Node(0).encode(), TreeRef::Leaf(5).encode());
    let none = TreeRef::NoMatch.encode();
    let (inside, outside) = (tcp(1, 0x0a00_0001, 80), tcp(1, 0x0b00_0001, 80));
    let cases: [(&[u32], &FlowKey); 3] = [
        // A cyclic tree behind one that finds nothing.
        (&[0, none, 0, cyclic], &inside),
        // Trees past the first four are read too.
        (&[0, none, 0, none, 0, none, 0, none, 0, cyclic], &inside),
        // So is their order.
        (
            &[0, none, 0, none, 0, none, 1, none, 0, everything],
            &outside,
        ),
    ];
    for (roots, key) in cases {
        let index = MatchIndex {
            rule_count: 1,
            roots,
            classes: &classes,
            tree: &tree,
        };
        let buf = policy_of(&[with_dst(vec![cidr4(0x0a00_0000, 8)])]);
        let expected = reference::first_match(&buf.as_policy(), key);
        assert_eq!(decide_with(index, key).rule, expected, "{roots:?}");
    }
}

#[test]
fn a_walk_counts_its_trees_nodes_entries_and_checks() {
    let buf = policy_of(&[with_dst(vec![cidr4(0x0a00_0000, 8)])]);
    let policy = buf.as_policy();
    let mut counts = WalkCounts::default();
    let found = policy
        .index
        .first_match_counted(&policy, &tcp(1, 0x0a00_0001, 80), &mut counts);
    assert_eq!(found, Some(0));
    assert_eq!((counts.lookups, counts.trees), (1, 1));
    assert!(counts.entries >= 1 && counts.checks <= 10, "{counts:?}");
    assert_eq!(counts.per_lookup()[0], 1.0);
}

#[test]
fn a_few_rules_through_one_point_make_a_leaf_not_a_chain_of_cuts() {
    // Twelve nested rules: no cut separates them, each one only narrows the region.
    let rules: Vec<RuleSpec> = (0..12u32)
        .map(|i| RuleSpec {
            dst: vec![cidr4(0x0a01_0203, 32 - i)],
            src_port: vec![(0, 65535 - i as u16)],
            ..pass()
        })
        .collect();
    let buf = policy_of(&rules);
    let policy = buf.as_policy();
    let mut counts = WalkCounts::default();
    for src_port in [65535, 65530, 65524, 1] {
        let key = FlowKey {
            src_port,
            ..tcp(5, 0x0a01_0203, 80)
        };
        assert_eq!(
            deciding_rule(&buf, &key),
            reference::first_match(&policy, &key)
        );
        policy.index.first_match_counted(&policy, &key, &mut counts);
    }
    assert!(counts.nodes <= 4, "{counts:?}");
}
