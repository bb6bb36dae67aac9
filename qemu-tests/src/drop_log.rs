//! The appliance's drop log, as the console shows it:
//!
//! ```text
//! moat: drop <nic> <reason | rule L:C | default L:C> <proto> <src>[:port] -> <dst>[:port]
//! ```
//!
//! optionally followed by `(N earlier drop lines suppressed)` when the rate limit held lines
//! back. [`DropLine::parse`] reads one line; [`rule_position`] finds where a rule sits in a
//! ruleset file, so a test can insist that a drop names exactly the rule that decided it.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::console::Console;
use crate::{Failure, Outcome};

/// What every drop line starts with.
pub const DROP_PREFIX: &str = "moat: drop ";

/// A line and column in a ruleset file (both from 1), as the compiler and the drop log
/// print them: `26:1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RulePosition {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl fmt::Display for RulePosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

impl RulePosition {
    fn parse(text: &str) -> Option<RulePosition> {
        let (line, column) = text.split_once(':')?;
        Some(RulePosition {
            line: line.parse().ok()?,
            column: column.parse().ok()?,
        })
    }
}

/// Why the appliance dropped a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropCause {
    /// A `block` or `reject` rule at this position.
    Rule(RulePosition),
    /// The ruleset's `default` (at this position).
    Default(RulePosition),
    /// A reason that is not the policy's (`spoofed`, `ttl-exceeded`, ...).
    Reason(String),
}

impl fmt::Display for DropCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropCause::Rule(position) => write!(f, "rule {position}"),
            DropCause::Default(position) => write!(f, "default {position}"),
            DropCause::Reason(reason) => f.write_str(reason),
        }
    }
}

/// One end of a dropped packet: an address, and a port for protocols that have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropEndpoint {
    /// Address.
    pub address: Ipv4Addr,
    /// Port (TCP, UDP).
    pub port: Option<u16>,
}

impl DropEndpoint {
    fn parse(text: &str) -> Option<DropEndpoint> {
        match text.split_once(':') {
            Some((address, port)) => Some(DropEndpoint {
                address: address.parse().ok()?,
                port: Some(port.parse().ok()?),
            }),
            None => Some(DropEndpoint {
                address: text.parse().ok()?,
                port: None,
            }),
        }
    }
}

impl fmt::Display for DropEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.address),
            None => write!(f, "{}", self.address),
        }
    }
}

/// One parsed drop line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropLine {
    /// The NIC the packet arrived on, as the line names it (`nic1`).
    pub nic: String,
    /// For a policy drop, the verdict when the line states it (`block`, `reject`).
    pub verdict: Option<String>,
    /// Why it was dropped.
    pub cause: DropCause,
    /// A parenthesised detail after the reason (`spoofed (spoofed-not-a-client)`).
    pub detail: Option<String>,
    /// Protocol name (`tcp`, `udp`, `icmp`, or `proto N`).
    pub protocol: String,
    /// Source.
    pub src: DropEndpoint,
    /// Destination.
    pub dst: DropEndpoint,
    /// For ICMP, the type and code when the line states them (`type 8 code 0`).
    pub icmp: Option<(u8, u8)>,
}

impl DropLine {
    /// Parses a console line; `None` unless it is a well-formed drop line with a 5-tuple.
    pub fn parse(line: &str) -> Option<DropLine> {
        let rest = line.strip_prefix(DROP_PREFIX)?;
        // A rate-limited log appends how many lines it held back.
        let rest = match rest.rsplit_once(" (") {
            Some((kept, note)) if note.ends_with("suppressed)") => kept,
            _ => rest,
        };
        let mut words = rest.split_whitespace().peekable();
        let nic = words.next()?.to_string();
        let verdict = words
            .next_if(|word| matches!(*word, "block" | "reject"))
            .map(str::to_string);
        let cause = match words.next()? {
            kind @ ("rule" | "default") => {
                let position = RulePosition::parse(words.next()?)?;
                if kind == "rule" {
                    DropCause::Rule(position)
                } else {
                    DropCause::Default(position)
                }
            }
            reason => DropCause::Reason(reason.to_string()),
        };
        let detail = words.next_if(|word| word.starts_with('(')).map(|word| {
            word.trim_start_matches('(')
                .trim_end_matches(')')
                .to_string()
        });
        let protocol = match words.next()? {
            "proto" => format!("proto {}", words.next()?),
            name => name.to_string(),
        };
        let src = DropEndpoint::parse(words.next()?)?;
        if words.next()? != "->" {
            return None;
        }
        let dst = DropEndpoint::parse(words.next()?)?;
        let icmp = match (words.next(), words.next(), words.next(), words.next()) {
            (Some("type"), Some(kind), Some("code"), Some(code)) => {
                Some((kind.parse().ok()?, code.parse().ok()?))
            }
            (None, ..) | (Some("fragment"), None, ..) => None,
            _ => return None,
        };
        Some(DropLine {
            nic,
            verdict,
            cause,
            detail,
            protocol,
            src,
            dst,
            icmp,
        })
    }

    /// Whether this line reports the drop `expected` describes: the same NIC, cause,
    /// protocol and endpoints. The verdict, the detail and the ICMP type and code are
    /// compared only where both lines state them.
    pub fn describes(&self, expected: &DropLine) -> bool {
        fn agree<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
        }
        self.nic == expected.nic
            && self.cause == expected.cause
            && self.protocol == expected.protocol
            && self.src == expected.src
            && self.dst == expected.dst
            && agree(&self.verdict, &expected.verdict)
            && agree(&self.detail, &expected.detail)
            && agree(&self.icmp, &expected.icmp)
    }
}

impl fmt::Display for DropLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{DROP_PREFIX}{}", self.nic)?;
        if let Some(verdict) = &self.verdict {
            write!(f, " {verdict}")?;
        }
        write!(f, " {}", self.cause)?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        write!(f, " {} {} -> {}", self.protocol, self.src, self.dst)?;
        if let Some((kind, code)) = self.icmp {
            write!(f, " type {kind} code {code}")?;
        }
        Ok(())
    }
}

/// Waits for a drop line that `wanted` accepts and returns it; on timeout the failure lists
/// the drop lines that did appear.
pub fn wait_for_drop(
    console: &Console,
    what: &str,
    timeout: Duration,
    wanted: impl Fn(&DropLine) -> bool,
) -> Outcome<DropLine> {
    let found = console.wait_until(what, timeout, |snapshot| {
        snapshot
            .lines
            .iter()
            .filter_map(|line| DropLine::parse(line))
            .find(|line| wanted(line))
            .map(Ok)
    });
    found.map_err(|failure| with_drop_lines(console, failure))
}

/// Waits for a drop line whose text `wanted` accepts — for the lines [`DropLine::parse`]
/// does not read (IPv6 addresses) — and returns it; on timeout the failure lists the drop
/// lines that did appear.
pub fn wait_for_drop_text(
    console: &Console,
    what: &str,
    timeout: Duration,
    wanted: impl Fn(&str) -> bool,
) -> Outcome<String> {
    let found = console.wait_until(what, timeout, |snapshot| {
        snapshot
            .lines
            .iter()
            .find(|line| line.starts_with(DROP_PREFIX) && wanted(line))
            .map(|line| Ok(line.clone()))
    });
    found.map_err(|failure| with_drop_lines(console, failure))
}

/// `failure`, followed by the drop lines on the console.
fn with_drop_lines(console: &Console, failure: Failure) -> Failure {
    let seen: Vec<String> = console
        .lines()
        .into_iter()
        .filter(|line| line.starts_with(DROP_PREFIX))
        .collect();
    Failure::new(format!(
        "{failure}; drop lines on the console: {}",
        if seen.is_empty() {
            "none".to_string()
        } else {
            seen.join(" | ")
        }
    ))
}

/// Where the statement `rule` (its exact text, after any indentation) starts in `ruleset`.
/// Fails unless exactly one line holds it, so a test cannot silently pin the wrong rule.
pub fn rule_position(ruleset: &str, rule: &str) -> Outcome<RulePosition> {
    let mut found = ruleset.lines().enumerate().filter_map(|(index, line)| {
        let code = line.split('#').next().unwrap_or_default();
        let start = code.len() - code.trim_start().len();
        (code.trim() == rule).then_some(RulePosition {
            line: index + 1,
            column: start + 1,
        })
    });
    match (found.next(), found.next()) {
        (Some(position), None) => Ok(position),
        (None, _) => Err(Failure::new(format!("the ruleset has no line `{rule}`"))),
        (Some(_), Some(_)) => Err(Failure::new(format!(
            "the ruleset has `{rule}` on more than one line"
        ))),
    }
}

/// Where the ruleset's `default` statement starts.
pub fn default_position(ruleset: &str) -> Outcome<RulePosition> {
    let defaults: Vec<&str> = ruleset
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|code| code.starts_with("default "))
        .collect();
    match defaults.as_slice() {
        [statement] => rule_position(ruleset, statement),
        _ => Err(Failure::new(format!(
            "expected one `default` statement in the ruleset, found {}",
            defaults.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_drops_default_drops_and_reasons_are_parsed() {
        let line = DropLine::parse(
            "moat: drop nic1 block rule 26:1 tcp 10.137.1.2:40002 -> 198.51.100.80:82",
        )
        .unwrap();
        assert_eq!(line.nic, "nic1");
        assert_eq!(line.verdict.as_deref(), Some("block"));
        assert_eq!(
            line.cause,
            DropCause::Rule(RulePosition {
                line: 26,
                column: 1
            })
        );
        assert_eq!(line.protocol, "tcp");
        assert_eq!(line.src.to_string(), "10.137.1.2:40002");
        assert_eq!(line.dst.port, Some(82));
        assert_eq!(
            line.to_string(),
            "moat: drop nic1 block rule 26:1 tcp 10.137.1.2:40002 -> 198.51.100.80:82"
        );

        let line = DropLine::parse(
            "moat: drop nic0 default 29:1 icmp 10.0.2.2 -> 10.0.2.15 type 8 code 0",
        )
        .unwrap();
        assert_eq!(
            line.cause,
            DropCause::Default(RulePosition {
                line: 29,
                column: 1
            })
        );
        assert_eq!(line.verdict, None);
        assert_eq!(line.src.port, None);
        assert_eq!(line.icmp, Some((8, 0)));

        let line = DropLine::parse(
            "moat: drop nic1 spoofed (spoofed-not-a-client) tcp 10.137.1.77:1 -> 198.51.100.80:80 (12 earlier drop lines suppressed)",
        )
        .unwrap();
        assert_eq!(line.cause, DropCause::Reason("spoofed".into()));
        assert_eq!(line.detail.as_deref(), Some("spoofed-not-a-client"));
        assert_eq!(line.dst.address, Ipv4Addr::new(198, 51, 100, 80));

        let line =
            DropLine::parse("moat: drop nic1 policy proto 47 10.137.1.2 -> 1.2.3.4").unwrap();
        assert_eq!(line.protocol, "proto 47");
    }

    #[test]
    fn a_line_describes_a_drop_whatever_details_it_leaves_out() {
        let full = DropLine::parse(
            "moat: drop nic1 reject rule 25:1 tcp 10.137.1.2:40002 -> 198.51.100.80:81",
        )
        .unwrap();
        let plain = DropLine {
            verdict: None,
            ..full.clone()
        };
        assert!(full.describes(&plain) && plain.describes(&full));
        let blocked = DropLine {
            verdict: Some("block".into()),
            ..full.clone()
        };
        assert!(!full.describes(&blocked));
        let other_port = DropLine {
            dst: DropEndpoint {
                port: Some(82),
                ..full.dst
            },
            ..full.clone()
        };
        assert!(!full.describes(&other_port));
    }

    #[test]
    fn lines_that_are_not_drop_lines_are_not_parsed() {
        for line in [
            "moat: ready",
            "moat: drop nic1",
            "moat: drop nic1 malformed (bad-checksum)",
            "moat: drop nic1 rule x:1 tcp 1.2.3.4:1 -> 5.6.7.8:2",
            "moat: drop nic1 policy tcp 1.2.3.4:1 5.6.7.8:2",
            "moat: drop nic1 policy tcp 1.2.3.4:99999 -> 5.6.7.8:2",
            "moat: drop nic1 policy icmp 1.2.3.4 -> 5.6.7.8 type x code 0",
        ] {
            assert_eq!(DropLine::parse(line), None, "{line}");
        }
    }

    #[test]
    fn rules_are_found_by_their_text_and_only_once() {
        let ruleset =
            "# block log from a\ninterface x nic0\n  block log from a  # why\ndefault block log\n";
        assert_eq!(
            rule_position(ruleset, "block log from a").unwrap(),
            RulePosition { line: 3, column: 3 }
        );
        assert_eq!(
            default_position(ruleset).unwrap(),
            RulePosition { line: 4, column: 1 }
        );
        assert!(rule_position(ruleset, "pass from a").is_err());
        assert!(rule_position("pass\npass\n", "pass").is_err());
    }
}
