//! Per-rule counters, as pf keeps them: for each rule of the policy (and its default), the
//! packets and bytes it accounts for and the states it created.
//!
//! A rule accounts for every packet it decided (the first packet of a flow, passed or
//! refused, and every packet addressed to the appliance it decided) and for every later
//! packet of the states it created, in both directions. Bytes are IP bytes (from the IP
//! header on, without the Ethernet header). Counting is an index into a vector: it costs
//! the same at 10 and at 10,000 rules.
//!
//! ```
//! use dataplane::rule_counters::{RuleCounters, RuleId};
//!
//! let mut counters = RuleCounters::new(2);
//! counters.decided(RuleId::Rule(1), 60);
//! counters.state_created(RuleId::Rule(1));
//! counters.decided(RuleId::Default, 40);
//! let rule = counters.get(RuleId::Rule(1));
//! assert_eq!((rule.packets, rule.bytes, rule.states), (1, 60, 1));
//! assert_eq!(counters.get(RuleId::Default).packets, 1);
//! ```

use alloc::vec;
use alloc::vec::Vec;

/// Which rule a counter belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleId {
    /// The rule at this index of `Policy::rules` (`Verdict::rule`).
    Rule(u32),
    /// The policy's default.
    Default,
}

impl RuleId {
    /// The rule a verdict's `rule` field names (`None` is the default).
    pub fn of_verdict(rule: Option<u32>) -> RuleId {
        rule.map_or(RuleId::Default, RuleId::Rule)
    }
}

/// What one rule accounts for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleCount {
    /// Packets: decided by the rule, or carried by a state it created.
    pub packets: u64,
    /// Their IP bytes.
    pub bytes: u64,
    /// States the rule created.
    pub states: u64,
}

/// Counters for every rule of one policy, and its default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleCounters {
    /// By rule index; the last entry is the default's.
    counts: Vec<RuleCount>,
}

impl RuleCounters {
    /// Zeroed counters for a policy of `rules` rules.
    pub fn new(rules: usize) -> RuleCounters {
        RuleCounters {
            counts: vec![RuleCount::default(); rules + 1],
        }
    }

    fn slot(&mut self, rule: RuleId) -> Option<&mut RuleCount> {
        let default = self.counts.len() - 1;
        match rule {
            RuleId::Rule(index) if (index as usize) < default => {
                self.counts.get_mut(index as usize)
            }
            RuleId::Rule(_) => None,
            RuleId::Default => self.counts.get_mut(default),
        }
    }

    /// Counts a packet of `bytes` IP bytes that `rule` decided or whose state it created.
    /// A rule the policy does not have is not counted.
    pub fn decided(&mut self, rule: RuleId, bytes: usize) {
        if let Some(count) = self.slot(rule) {
            count.packets += 1;
            count.bytes += bytes as u64;
        }
    }

    /// Counts a state `rule` created.
    pub fn state_created(&mut self, rule: RuleId) {
        if let Some(count) = self.slot(rule) {
            count.states += 1;
        }
    }

    /// The counters of `rule` (zero for a rule the policy does not have).
    pub fn get(&self, rule: RuleId) -> RuleCount {
        self.iter()
            .find(|(id, _)| *id == rule)
            .map_or(RuleCount::default(), |(_, count)| count)
    }

    /// Every rule's counters, in ruleset order, then the default's.
    pub fn iter(&self) -> impl Iterator<Item = (RuleId, RuleCount)> + '_ {
        let default = self.counts.len() - 1;
        self.counts.iter().enumerate().map(move |(i, count)| {
            let id = if i == default {
                RuleId::Default
            } else {
                RuleId::Rule(i as u32)
            };
            (id, *count)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_counts_its_own_packets_bytes_and_states() {
        let mut counters = RuleCounters::new(3);
        counters.decided(RuleId::Rule(0), 100);
        counters.decided(RuleId::Rule(2), 60);
        counters.decided(RuleId::Rule(2), 40);
        counters.state_created(RuleId::Rule(2));
        assert_eq!(
            counters.get(RuleId::Rule(2)),
            RuleCount {
                packets: 2,
                bytes: 100,
                states: 1
            }
        );
        assert_eq!(counters.get(RuleId::Rule(0)).bytes, 100);
        assert_eq!(counters.get(RuleId::Rule(1)), RuleCount::default());
        assert_eq!(counters.get(RuleId::Default), RuleCount::default());
    }

    #[test]
    fn the_default_has_its_own_counter_after_the_rules() {
        let mut counters = RuleCounters::new(1);
        counters.decided(RuleId::Default, 28);
        let ids: Vec<RuleId> = counters.iter().map(|(id, _)| id).collect();
        assert_eq!(ids, [RuleId::Rule(0), RuleId::Default]);
        assert_eq!(counters.get(RuleId::Default).packets, 1);
        assert_eq!(counters.get(RuleId::Rule(0)).packets, 0);
    }

    #[test]
    fn a_rule_the_policy_does_not_have_is_not_counted() {
        let mut counters = RuleCounters::new(1);
        counters.decided(RuleId::Rule(1), 10);
        counters.state_created(RuleId::Rule(7));
        assert!(counters.iter().all(|(_, c)| c == RuleCount::default()));
    }
}
