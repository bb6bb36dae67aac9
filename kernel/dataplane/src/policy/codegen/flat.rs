//! The flat integer form of the policy's large pools (rules and ranges), and the `const fn`s
//! that rebuild the typed pools from it inside the emitted Rust source.
//!
//! Each packing function has its unpacking twin next to it, so the two cannot drift apart.
//! The unpacking functions run in `const` context: a word they cannot decode (which
//! [`emit_policy`](super::emit_policy) never writes) stops the build with a message, it
//! never reaches a running appliance.

use super::super::model::{
    Action, AddrRange, ByteRange, PortRange, Rule, SourcePos, Span, StateLimits,
};

/// Words per rule in the flat form: position (2), action, log, limits (2), then the nine
/// field spans (start, len) in [`Rule`] field order.
pub const RULE_WORDS: usize = 24;

const ACTION_PASS: u32 = 0;
const ACTION_BLOCK: u32 = 1;
const ACTION_REJECT: u32 = 2;

/// A rule as [`RULE_WORDS`] words.
pub const fn rule_words(rule: &Rule) -> [u32; RULE_WORDS] {
    let action = match rule.action {
        Action::Pass => ACTION_PASS,
        Action::Block => ACTION_BLOCK,
        Action::Reject => ACTION_REJECT,
    };
    let s = [
        rule.in_nic,
        rule.out,
        rule.protocol,
        rule.src,
        rule.dst,
        rule.src_port,
        rule.dst_port,
        rule.icmp_type,
        rule.icmp_code,
    ];
    let mut words = [0; RULE_WORDS];
    words[0] = rule.pos.line;
    words[1] = rule.pos.column;
    words[2] = action;
    words[3] = rule.log as u32;
    words[4] = rule.limits.max_states;
    words[5] = rule.limits.max_states_per_source;
    let mut i = 0;
    while i < s.len() {
        words[6 + 2 * i] = s[i].start;
        words[7 + 2 * i] = s[i].len;
        i += 1;
    }
    words
}

const fn span_at(words: &[u32], at: usize) -> Span {
    Span {
        start: words[at],
        len: words[at + 1],
    }
}

const fn rule_at(words: &[u32], base: usize) -> Rule {
    let action = match words[base + 2] {
        ACTION_PASS => Action::Pass,
        ACTION_BLOCK => Action::Block,
        ACTION_REJECT => Action::Reject,
        _ => panic!("emitted policy: unknown rule action word"),
    };
    let fields = base + 6;
    Rule {
        pos: SourcePos {
            line: words[base],
            column: words[base + 1],
        },
        action,
        log: words[base + 3] != 0,
        limits: StateLimits {
            max_states: words[base + 4],
            max_states_per_source: words[base + 5],
        },
        in_nic: span_at(words, fields),
        out: span_at(words, fields + 2),
        protocol: span_at(words, fields + 4),
        src: span_at(words, fields + 6),
        dst: span_at(words, fields + 8),
        src_port: span_at(words, fields + 10),
        dst_port: span_at(words, fields + 12),
        icmp_type: span_at(words, fields + 14),
        icmp_code: span_at(words, fields + 16),
    }
}

const NO_RULE: Rule = Rule {
    pos: SourcePos { line: 0, column: 0 },
    action: Action::Block,
    log: false,
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
};

/// `N` rules from their `N * RULE_WORDS` flat words.
pub const fn rules<const N: usize>(words: &[u32]) -> [Rule; N] {
    assert!(
        words.len() == N * RULE_WORDS,
        "emitted policy: rule words do not match the rule count"
    );
    let mut rules = [NO_RULE; N];
    let mut i = 0;
    while i < N {
        rules[i] = rule_at(words, i * RULE_WORDS);
        i += 1;
    }
    rules
}

/// Defines the `const fn` that rebuilds a range pool from its flat bounds.
macro_rules! range_pool {
    ($(#[$doc:meta])* $name:ident, $range:ident, $bound:ty, $mismatch:literal) => {
        $(#[$doc])*
        pub const fn $name<const N: usize>(bounds: &[$bound]) -> [$range; N] {
            assert!(bounds.len() == 2 * N, $mismatch);
            let mut ranges = [$range { first: 0, last: 0 }; N];
            let mut i = 0;
            while i < N {
                ranges[i] = $range { first: bounds[2 * i], last: bounds[2 * i + 1] };
                i += 1;
            }
            ranges
        }
    };
}

range_pool!(
    /// `N` address ranges from their `2 * N` bounds (`first`, `last`, ...).
    addr_ranges, AddrRange, u128, "emitted policy: address bounds do not match the range count"
);
range_pool!(
    /// `N` port ranges from their `2 * N` bounds (`first`, `last`, ...).
    port_ranges, PortRange, u16, "emitted policy: port bounds do not match the range count"
);
range_pool!(
    /// `N` one-byte ranges from their `2 * N` bounds (`first`, `last`, ...).
    byte_ranges, ByteRange, u8, "emitted policy: byte bounds do not match the range count"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: u32, len: u32) -> Span {
        Span { start, len }
    }

    #[test]
    fn a_rule_survives_its_flat_form() {
        for (i, action) in [Action::Pass, Action::Block, Action::Reject]
            .into_iter()
            .enumerate()
        {
            let rule = Rule {
                pos: SourcePos {
                    line: 14,
                    column: 3,
                },
                action,
                log: i == 1,
                limits: StateLimits {
                    max_states: 100,
                    max_states_per_source: 7,
                },
                in_nic: span(1, 2),
                out: span(3, 4),
                protocol: span(5, 6),
                src: span(7, 8),
                dst: span(9, 10),
                src_port: span(11, 12),
                dst_port: span(13, 14),
                icmp_type: span(15, 16),
                icmp_code: span(17, 18),
            };
            let words = rule_words(&rule);
            assert_eq!(rules::<1>(&words), [rule]);
        }
    }

    #[test]
    fn range_pools_survive_their_flat_form() {
        assert_eq!(
            addr_ranges::<2>(&[0, u128::MAX, 5, 9]),
            [
                AddrRange {
                    first: 0,
                    last: u128::MAX
                },
                AddrRange { first: 5, last: 9 }
            ]
        );
        assert_eq!(
            port_ranges::<1>(&[22, 65535]),
            [PortRange {
                first: 22,
                last: 65535
            }]
        );
        assert_eq!(
            byte_ranges::<1>(&[0, 255]),
            [ByteRange {
                first: 0,
                last: 255
            }]
        );
    }

    #[test]
    #[should_panic(expected = "rule words do not match")]
    fn a_truncated_rule_pool_is_refused() {
        let _ = rules::<1>(&[0; RULE_WORDS - 1]);
    }
}
