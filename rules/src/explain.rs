//! `explain`: how the policy decides one packet — the deciding rule, the verdict, the
//! address translation, and for every earlier rule the fields that kept it from matching.
//!
//! Everything is read from the compiled [`Policy`] and decided by [`Policy::decide`], so
//! the explanation is about what the kernel will do, not about the source.

use std::fmt::Write as _;

use dataplane::policy::{Action, FlowKey, Policy, Rule};

use crate::checked::Checked;
use crate::describe::{packet_text, set_text};
use crate::parser::parse_packet;
use crate::probe::{probe, Probe};
use crate::ranges::RangeSet;
use crate::selftest::{action_word, decider, describe_translation};
use crate::source::{pos_str, SourceFile};
use crate::space::Field;

/// Most cases of one probe that are explained (a DNS redirect to learned resolvers can
/// have many).
const MAX_CASES: usize = 3;

/// Explains `packet` (e.g. `tcp 10.137.0.10:40000 -> 1.1.1.1:443 on lan`) against a
/// compiled ruleset. The `Err` is the rendered diagnostic for a bad packet description.
pub fn explain(
    ruleset: &SourceFile,
    checked: &Checked,
    policy: &Policy,
    packet: &str,
) -> Result<String, String> {
    let packet_file = SourceFile::new("<packet>", packet);
    let spec = parse_packet(&packet_file).map_err(|d| d.render(&packet_file))?;
    let probe = probe(checked, policy, ruleset, &spec).map_err(|d| d.render(&packet_file))?;
    let mut out = String::new();
    for (n, key) in probe.keys.iter().enumerate().take(MAX_CASES) {
        if n > 0 {
            out.push('\n');
        }
        explain_key(&mut out, ruleset, checked, policy, &probe, key);
    }
    if probe.keys.len() > MAX_CASES {
        let _ = writeln!(
            out,
            "\n({} more cases for other resolver addresses)",
            probe.keys.len() - MAX_CASES
        );
    }
    Ok(out)
}

fn explain_key(
    out: &mut String,
    file: &SourceFile,
    checked: &Checked,
    policy: &Policy,
    probe: &Probe,
    key: &FlowKey,
) {
    let verdict = policy.decide(key);
    let _ = writeln!(
        out,
        "packet:  {}{}",
        packet_text(checked, key),
        describe_translation(&probe.translation)
    );
    let log = if verdict.log { " log" } else { "" };
    let _ = writeln!(
        out,
        "verdict: {}{log}, by {}",
        action_word(verdict.action),
        decider(policy, &verdict)
    );
    let line = match verdict.rule.and_then(|i| policy.rules.get(i as usize)) {
        Some(rule) => rule.pos.line,
        None => policy.default.pos.line,
    };
    if line > 0 {
        let _ = writeln!(out, "{line:>7} | {}", file.line_text(line));
    }
    if verdict.action == Action::Pass {
        let _ = writeln!(out, "nat:     {}", masquerade(checked, policy, key));
    }
    let decided = verdict.rule.map_or(policy.rules.len(), |i| i as usize);
    let mut earlier: Vec<(u32, u32)> = Vec::new();
    for rule in &policy.rules[..decided] {
        if earlier.last() != Some(&(rule.pos.line, rule.pos.column)) {
            earlier.push((rule.pos.line, rule.pos.column));
        }
    }
    if earlier.is_empty() {
        return;
    }
    let _ = writeln!(out, "earlier rules that did not match:");
    for (line, column) in earlier {
        let parts: Vec<&Rule> = policy.rules[..decided]
            .iter()
            .filter(|r| (r.pos.line, r.pos.column) == (line, column))
            .collect();
        let _ = writeln!(out, "{line:>7} | {}", file.line_text(line).trim());
        let _ = writeln!(out, "        = {}", why_not(checked, policy, &parts, key));
    }
}

/// The source NAT a passed packet gets.
fn masquerade(checked: &Checked, policy: &Policy, key: &FlowKey) -> String {
    let hit = policy.masquerade.iter().find(|m| {
        m.out_nic == key.out
            && m.in_nic
                .of(policy.byte_ranges)
                .iter()
                .any(|r| r.first <= key.in_nic && key.in_nic <= r.last)
            && m.src
                .of(policy.addr_ranges)
                .iter()
                .any(|r| r.first <= key.src && key.src <= r.last)
    });
    match hit {
        Some(m) => format!(
            "source becomes {}'s address (masquerade at {})",
            crate::describe::nic_text(checked, m.out_nic),
            pos_str(m.pos)
        ),
        None => "none (the source address is kept)".to_string(),
    }
}

/// One field of a compiled rule as a range set.
fn rule_field(policy: &Policy, rule: &Rule, field: Field) -> RangeSet {
    let bytes = |span: dataplane::policy::Span| {
        RangeSet::from_ranges(
            span.of(policy.byte_ranges)
                .iter()
                .map(|r| (r.first.into(), r.last.into())),
        )
    };
    let ports = |span: dataplane::policy::Span| {
        RangeSet::from_ranges(
            span.of(policy.port_ranges)
                .iter()
                .map(|r| (r.first.into(), r.last.into())),
        )
    };
    let addrs = |span: dataplane::policy::Span| {
        RangeSet::from_ranges(
            span.of(policy.addr_ranges)
                .iter()
                .map(|r| (r.first, r.last)),
        )
    };
    match field {
        Field::InNic => bytes(rule.in_nic),
        Field::Out => bytes(rule.out),
        Field::Protocol => bytes(rule.protocol),
        Field::Src => addrs(rule.src),
        Field::Dst => addrs(rule.dst),
        Field::SrcPort => ports(rule.src_port),
        Field::DstPort => ports(rule.dst_port),
        Field::IcmpType => bytes(rule.icmp_type),
        Field::IcmpCode => bytes(rule.icmp_code),
    }
}

/// Why none of a source rule's compiled parts matched `key`: the failing fields of the
/// part that came closest.
fn why_not(checked: &Checked, policy: &Policy, parts: &[&Rule], key: &FlowKey) -> String {
    let failing = |rule: &Rule| -> Vec<(Field, RangeSet)> {
        crate::space::EXPLAIN_ORDER
            .iter()
            .map(|&f| (f, rule_field(policy, rule, f)))
            .filter(|(f, set)| !set.contains(f.of_key(key)))
            .collect()
    };
    let closest = parts
        .iter()
        .map(|r| failing(r))
        .min_by_key(Vec::len)
        .unwrap_or_default();
    let reasons: Vec<String> = closest
        .iter()
        .map(|(field, set)| {
            let value = set_text(checked, *field, &RangeSet::single(field.of_key(key)));
            format!(
                "{} is {value}, the rule wants {}",
                crate::space::describe(*field),
                set_text(checked, *field, set)
            )
        })
        .collect();
    if reasons.is_empty() {
        "it matches (this should not happen: the matcher disagrees with the rule's fields)"
            .to_string()
    } else {
        reasons.join("; ")
    }
}
