//! The appliance's machine-readable counter lines, parsed: one per ruleset rule and one per
//! drop reason, `key=value` words after `moat: stats ` (the format is the data plane's
//! `appliance::counter_lines`; the README documents it).
//!
//! ```text
//! moat: stats rule=4 line=26 packets=3 bytes=120 states=0
//! moat: stats rule=default line=29 packets=1 bytes=40 states=0
//! moat: stats drop reason=spoofed count=1
//! moat: stats pcap captured=5 dropped=0
//! ```

use std::collections::BTreeMap;

use crate::stats_line::STATS_PREFIX;

/// One rule's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleStats {
    /// `3` for the third filter rule, `default` for the default.
    pub rule: String,
    /// The rule's line in the ruleset.
    pub line: usize,
    /// Packets it accounted for.
    pub packets: u64,
    /// Their IP bytes.
    pub bytes: u64,
    /// States it created.
    pub states: u64,
}

/// The `key=value` words after `moat: stats ` and a first word `first`, if the line has
/// that shape.
fn words<'a>(line: &'a str, first: &str) -> Option<BTreeMap<&'a str, &'a str>> {
    let rest = line.strip_prefix(STATS_PREFIX)?;
    let head = rest.split(' ').next()?;
    if head.split('=').next() != Some(first) {
        return None;
    }
    // `drop reason=…`: the first word is a bare name; `rule=3 …`: a pair like the rest.
    let pairs = if head.contains('=') {
        rest
    } else {
        rest[head.len()..].trim_start()
    };
    pairs.split(' ').map(|word| word.split_once('=')).collect()
}

impl RuleStats {
    /// Reads a `moat: stats rule=…` line; `None` for any other line.
    pub fn parse(line: &str) -> Option<RuleStats> {
        let w = words(line, "rule")?;
        Some(RuleStats {
            rule: w.get("rule")?.to_string(),
            line: w.get("line")?.parse().ok()?,
            packets: w.get("packets")?.parse().ok()?,
            bytes: w.get("bytes")?.parse().ok()?,
            states: w.get("states")?.parse().ok()?,
        })
    }
}

/// Reads a `moat: stats drop reason=R count=N` line into `(R, N)`.
pub fn parse_drop(line: &str) -> Option<(String, u64)> {
    let w = words(line, "drop")?;
    Some((w.get("reason")?.to_string(), w.get("count")?.parse().ok()?))
}

/// Reads a `moat: stats pcap captured=N dropped=M` line into `(N, M)`.
pub fn parse_capture(line: &str) -> Option<(u64, u64)> {
    let w = words(line, "pcap")?;
    Some((
        w.get("captured")?.parse().ok()?,
        w.get("dropped")?.parse().ok()?,
    ))
}

/// The latest counters of each rule among `lines` (later lines are newer totals), by the
/// rule's ruleset line.
pub fn latest_rules(lines: &[String]) -> BTreeMap<usize, RuleStats> {
    lines
        .iter()
        .filter_map(|line| RuleStats::parse(line))
        .map(|stats| (stats.line, stats))
        .collect()
}

/// The latest count of each drop reason among `lines`.
pub fn latest_drops(lines: &[String]) -> BTreeMap<String, u64> {
    lines.iter().filter_map(|line| parse_drop(line)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_lines_parse_and_other_stats_lines_do_not() {
        assert_eq!(
            RuleStats::parse("moat: stats rule=default line=29 packets=1 bytes=40 states=0"),
            Some(RuleStats {
                rule: "default".into(),
                line: 29,
                packets: 1,
                bytes: 40,
                states: 0
            })
        );
        assert_eq!(
            RuleStats::parse("moat: stats nic0 rx 1 tx 2 drop 0, states 0/10"),
            None
        );
        assert_eq!(
            RuleStats::parse("moat: stats drop reason=policy count=2"),
            None
        );
    }

    #[test]
    fn drop_and_capture_lines_parse() {
        assert_eq!(
            parse_drop("moat: stats drop reason=spoofed count=3"),
            Some(("spoofed".into(), 3))
        );
        assert_eq!(
            parse_capture("moat: stats pcap captured=5 dropped=1"),
            Some((5, 1))
        );
        assert_eq!(parse_drop("moat: stats pcap captured=5 dropped=1"), None);
    }

    #[test]
    fn the_latest_line_of_a_rule_wins() {
        let lines = [
            "moat: stats rule=2 line=7 packets=1 bytes=40 states=1",
            "moat: stats rule=2 line=7 packets=4 bytes=200 states=1",
        ]
        .map(String::from);
        assert_eq!(latest_rules(&lines)[&7].packets, 4);
    }
}
