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
/// same source rule (same position) are summed into one. Lazy and in one pass over the
/// counters: a report allocates nothing, whatever the number of rules.
pub fn rule_lines<'a>(
    policy: &'a Policy,
    counters: &'a RuleCounters,
) -> impl Iterator<Item = RuleLine> + 'a {
    // Each counter with its rule's source position (`None`: the default).
    let mut entries = counters
        .iter()
        .filter_map(move |(id, count)| match id {
            RuleId::Rule(index) => policy
                .rules
                .get(index as usize)
                .map(|rule| (Some(rule.pos), count)),
            RuleId::Default => Some((None, count)),
        })
        .peekable();
    let mut numbered = 0;
    core::iter::from_fn(move || {
        let (pos, mut count) = entries.next()?;
        let Some(pos) = pos else {
            return Some(RuleLine {
                number: None,
                line: policy.default.pos.line,
                count,
            });
        };
        while let Some(&(Some(next), more)) = entries.peek() {
            if next != pos {
                break;
            }
            count.packets += more.packets;
            count.bytes += more.bytes;
            count.states += more.states;
            entries.next();
        }
        numbered += 1;
        Some(RuleLine {
            number: Some(numbered),
            line: pos.line,
            count,
        })
    })
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

    /// A rule compiled from the source rule at `line` (only its position matters here).
    fn compiled_at(line: u32) -> crate::policy::Rule {
        use crate::policy::{Action, Rule, SourcePos, Span, StateLimits};
        Rule {
            pos: SourcePos { line, column: 1 },
            action: Action::Pass,
            log: false,
            allow_opts: false,
            limits: StateLimits {
                max_states: 0,
                max_states_per_source: 0,
            },
            in_nic: Span::EMPTY,
            out: Span::EMPTY,
            protocol: Span::EMPTY,
            src: Span::EMPTY,
            dst: Span::EMPTY,
            src_port: Span::EMPTY,
            dst_port: Span::EMPTY,
            icmp_type: Span::EMPTY,
            icmp_code: Span::EMPTY,
            redirect: Span::EMPTY,
        }
    }

    #[test]
    fn compiled_rules_of_one_source_rule_make_one_numbered_line_and_the_default_comes_last() {
        let mut buf = crate::policy::PolicyBuf::default();
        buf.rules = [4, 4, 7, 9, 9, 9]
            .into_iter()
            .map(compiled_at)
            .collect::<alloc::vec::Vec<_>>();
        buf.default.pos.line = 12;
        let policy = buf.as_policy();
        let mut counters = RuleCounters::new(policy.rules.len());
        for (rule, bytes) in [(0, 10), (1, 20), (2, 5), (3, 1), (5, 2)] {
            counters.decided(RuleId::Rule(rule), bytes);
        }
        counters.state_created(RuleId::Rule(1));
        counters.decided(RuleId::Default, 40);
        let lines: alloc::vec::Vec<RuleLine> = rule_lines(&policy, &counters).collect();
        let count = |packets, bytes, states| RuleCount {
            packets,
            bytes,
            states,
        };
        assert_eq!(
            lines,
            [
                RuleLine {
                    number: Some(1),
                    line: 4,
                    count: count(2, 30, 1)
                },
                RuleLine {
                    number: Some(2),
                    line: 7,
                    count: count(1, 5, 0)
                },
                RuleLine {
                    number: Some(3),
                    line: 9,
                    count: count(2, 3, 0)
                },
                RuleLine {
                    number: None,
                    line: 12,
                    count: count(1, 40, 0)
                },
            ]
        );
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
