//! Which rules share a tree (host side): a large ruleset is split by how wide each rule's
//! addresses are, one tree per group, as EffiCuts does for HiCuts.
//!
//! One tree over all the rules must copy a rule into every region it crosses: a rule from
//! `any` to `any` crosses all of them, a rule from one client to the whole uplink crosses
//! every region cut along destinations. With wide and narrow rules mixed, the copies fill
//! the memory budget long before the narrow rules are told apart, and leaves stay long.
//! Grouped by whether the source and the destination are wide, each tree cuts rules of
//! one kind: the narrow ones finely, the wide ones along the fields where they are narrow.
//! A lookup walks each tree (most rulesets leave two to four groups) and keeps the
//! earliest match; a tree whose first rule comes after a match already found is skipped.

use alloc::vec::Vec;

use super::dim::Dim;
use crate::policy::{flow_addr_to_ipv4, Policy, Rule};

/// Rulesets with at most this many rules get one tree: a few leaves scan as fast as any
/// split.
pub(super) const ONE_TREE_RULES: usize = 64;

/// Groups a ruleset can be split into (source wide or not, destination wide or not).
pub(super) const GROUPS: usize = 4;

/// An IPv4 field is wide when it holds more addresses than a /8.
const WIDE_IPV4: u128 = 1 << 24;
/// An IPv6 field is wide when it holds more addresses than a /8's share of IPv6 (a /8).
const WIDE_IPV6: u128 = 1 << 120;

/// Whether the addresses of `dim` in `rule` are wide (see the module doc).
fn wide(policy: &Policy, rule: &Rule, dim: Dim) -> bool {
    let (mut v4, mut v6) = (0u128, 0u128);
    for (first, last) in dim.ranges(policy, rule).filter(|(f, l)| f <= l) {
        let size = (last - first).saturating_add(1);
        match (flow_addr_to_ipv4(first), flow_addr_to_ipv4(last)) {
            (Some(_), Some(_)) => v4 = v4.saturating_add(size),
            _ => v6 = v6.saturating_add(size),
        }
    }
    v4 > WIDE_IPV4 || v6 > WIDE_IPV6
}

/// The rules of each tree, in priority order; the groups in the order of their first
/// rules. Rules not in `live` (those that match nothing) are left out.
pub(super) fn groups(policy: &Policy, live: impl Fn(u32) -> bool) -> Vec<Vec<u32>> {
    let rules = (0..policy.rules.len() as u32).filter(|&rule| live(rule));
    if policy.rules.len() <= ONE_TREE_RULES {
        return Vec::from([rules.collect()]);
    }
    let mut groups: [Vec<u32>; GROUPS] = Default::default();
    for rule in rules {
        let r = &policy.rules[rule as usize];
        let group =
            usize::from(wide(policy, r, Dim::Src)) << 1 | usize::from(wide(policy, r, Dim::Dst));
        groups[group].push(rule);
    }
    let mut groups: Vec<Vec<u32>> = groups.into_iter().filter(|g| !g.is_empty()).collect();
    groups.sort_by_key(|g| g[0]);
    groups
}
