//! The plain linear interpreter: the specification the fast matcher is tested against.
//!
//! It walks the rules top to bottom and checks each one field by field with
//! [`Policy::rule_matches`] (the model's reference semantics), with no precomputation at
//! all. Tests and benchmarks only (feature `reference`); the data path uses
//! [`Policy::decide`].

use super::{FlowKey, Policy, Verdict};

/// Index of the first rule that matches `key`, found by checking every rule in order.
pub fn first_match(policy: &Policy, key: &FlowKey) -> Option<u32> {
    policy
        .rules
        .iter()
        .position(|rule| policy.rule_matches(rule, key))
        .map(|i| i as u32)
}

/// The verdict for `key`: the first matching rule's, or the default's.
pub fn decide(policy: &Policy, key: &FlowKey) -> Verdict {
    match first_match(policy, key).and_then(|i| Some((i, policy.rules.get(i as usize)?))) {
        Some((i, rule)) => Verdict {
            action: rule.action,
            log: rule.log,
            rule: Some(i),
        },
        None => policy.default_verdict(),
    }
}
