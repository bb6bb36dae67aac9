//! Moat side by side with the Linux comparator VM ([`crate::linux_vm`]) on the same
//! topology, for `scripts/bench compare`: the rulesets both enforce ([`rulesets`]), one
//! firewall booted between real hosts ([`bed`]), a check that it enforces the ruleset
//! ([`policy_check`]), and repeated figures summarised ([`samples`]).

pub mod bed;
pub mod policy_check;
pub mod rulesets;
pub mod samples;
