//! The fast matcher's lookup structure.
//!
//! PLACEHOLDER: a linear scan until the indexed matcher lands (issue 3).

use super::{FlowKey, Policy};

/// Precomputed lookup structure over a policy's rules.
#[derive(Clone, Copy, Debug, Default)]
pub struct MatchIndex<'a> {
    _unused: core::marker::PhantomData<&'a ()>,
}

impl MatchIndex<'_> {
    /// An index with no precomputed data.
    pub const EMPTY: MatchIndex<'static> = MatchIndex { _unused: core::marker::PhantomData };

    /// Index of the first rule of `policy` that matches `key`.
    pub fn first_match(&self, policy: &Policy, key: &FlowKey) -> Option<u32> {
        policy.rules.iter().position(|r| policy.rule_matches(r, key)).map(|i| i as u32)
    }
}
