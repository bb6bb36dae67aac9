//! The machine-readable counter lines: one line per ruleset rule and per drop reason, each
//! a set of `key=value` words after `stats `, so a program reads them with a split:
//!
//! ```text
//! moat: stats rule=2 line=7 packets=31 bytes=2604 states=3
//! moat: stats rule=default line=8 packets=4 bytes=240 states=0
//! moat: stats drop reason=spoofed count=5
//! moat: stats pcap captured=9 dropped=0
//! ```
//!
//! `rule=N` is the N-th filter rule of the ruleset (from 1), `line` its line in the ruleset
//! file; a rule the compiler split into several (one per address family or list entry) is
//! one line with their sums. Values are totals since boot, so the latest line for a key
//! is its current value: on a schedule only what changed is printed, at shutdown every
//! non-zero counter.

use alloc::vec::Vec;
use core::fmt;

use crate::capture::CaptureStats;
use crate::drops::{DropCounters, DropReason};
use crate::policy::Policy;
use crate::rule_counters::{RuleCount, RuleCounters, RuleId};

/// One ruleset rule (or the default) and what it accounted for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleLine {
    /// The rule's number in the ruleset, from 1; `None` for the default.
    pub number: Option<u32>,
    /// Its line in the ruleset file.
    pub line: u32,
    /// Its counters (summed over the compiled rules it became).
    pub count: RuleCount,
}

impl fmt::Display for RuleLine {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.number {
            Some(n) => write!(f, "rule={n}")?,
            None => f.write_str("rule=default")?,
        }
        let c = &self.count;
        write!(
            f,
            " line={} packets={} bytes={} states={}",
            self.line, c.packets, c.bytes, c.states
        )
    }
}

/// Every ruleset rule's line, in ruleset order, then the default's: compiled rules from the
/// same source rule (same position) are summed into one.
pub fn rule_lines(policy: &Policy, counters: &RuleCounters) -> Vec<RuleLine> {
    let mut lines: Vec<RuleLine> = Vec::new();
    let mut last_pos = None;
    for (id, count) in counters.iter() {
        let (number, pos) = match id {
            RuleId::Rule(index) => match policy.rules.get(index as usize) {
                Some(rule) => (Some(()), rule.pos),
                None => continue,
            },
            RuleId::Default => (None, policy.default.pos),
        };
        match (lines.last_mut(), number) {
            (Some(previous), Some(())) if last_pos == Some(pos) => {
                previous.count.packets += count.packets;
                previous.count.bytes += count.bytes;
                previous.count.states += count.states;
            }
            _ => {
                let rules_so_far = lines.iter().filter(|l| l.number.is_some()).count() as u32;
                lines.push(RuleLine {
                    number: number.map(|()| rules_so_far + 1),
                    line: pos.line,
                    count,
                });
            }
        }
        last_pos = number.map(|()| pos);
    }
    lines
}

/// One drop reason's line: `drop reason=spoofed count=5`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DropLine {
    /// The reason.
    pub reason: DropReason,
    /// Drops counted for it since boot.
    pub count: u64,
}

impl fmt::Display for DropLine {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "drop reason={} count={}", self.reason, self.count)
    }
}

/// The drop reasons whose count differs between `now` and `before`.
pub fn changed_drops<'a>(
    now: &'a DropCounters,
    before: &'a DropCounters,
) -> impl Iterator<Item = DropLine> + 'a {
    DropReason::ALL
        .into_iter()
        .filter(move |r| now.get(*r) != before.get(*r))
        .map(move |reason| DropLine {
            reason,
            count: now.get(reason),
        })
}

/// The packet capture's line: `pcap captured=9 dropped=0` (records not made because of
/// the rate limit or a full buffer are `dropped`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureLine(pub CaptureStats);

impl fmt::Display for CaptureLine {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "pcap captured={} dropped={}",
            self.0.captured, self.0.dropped
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_lines_read_as_key_value_words() {
        let line = RuleLine {
            number: Some(3),
            line: 12,
            count: RuleCount {
                packets: 5,
                bytes: 420,
                states: 2,
            },
        };
        assert_eq!(
            alloc::format!("{line}"),
            "rule=3 line=12 packets=5 bytes=420 states=2"
        );
        let default = RuleLine {
            number: None,
            ..line
        };
        assert!(alloc::format!("{default}").starts_with("rule=default line=12 "));
    }

    #[test]
    fn only_changed_drop_reasons_are_listed() {
        let mut before = DropCounters::default();
        before.count(DropReason::Policy);
        let mut now = before;
        now.count(DropReason::Spoofed);
        let changed: Vec<_> = changed_drops(&now, &before).collect();
        assert_eq!(
            changed,
            [DropLine {
                reason: DropReason::Spoofed,
                count: 1
            }]
        );
        assert_eq!(
            alloc::format!("{}", changed[0]),
            "drop reason=spoofed count=1"
        );
    }
}
