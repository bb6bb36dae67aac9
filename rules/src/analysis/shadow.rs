//! Rules that are never reached, and earlier rules that take part of a later rule's
//! packets with the opposite verdict.

use dataplane::policy::Action;

use super::Remainder;
use crate::checked::{Checked, NormRule};
use crate::describe::packet_text;
use crate::diag::{Diagnostic, Diagnostics};
use crate::outcome::action_word;
use crate::source::pos_str;
use crate::space::{Field, KeySet, FIELDS};

/// Most pieces a rule's remainder may break into before the analysis of that rule stops
/// (it is then assumed reachable and no conflict is reported).
const PIECE_LIMIT: usize = 4096;

/// Most earlier rules a "never reached" error names (and points at).
const NAMED_RULES: usize = 6;

/// Most "conflicting overlap" warnings reported for one ruleset.
const CONFLICT_WARNINGS: usize = 20;

/// The smallest and largest value of each field over a rule's parts: a cheap first test
/// of whether two rules can overlap at all.
#[derive(Clone, Copy, Debug)]
struct Bounds([(u128, u128); FIELDS]);

/// Fields in the order the bounds test checks them: the ones that tell rules apart most
/// often first.
const TEST_ORDER: [Field; FIELDS] = [
    Field::Dst,
    Field::DstPort,
    Field::Src,
    Field::Protocol,
    Field::InNic,
    Field::Out,
    Field::SrcPort,
    Field::IcmpType,
    Field::IcmpCode,
    Field::Redirect,
];

impl Bounds {
    fn of(rule: &NormRule) -> Bounds {
        let mut b = [(u128::MAX, 0u128); FIELDS];
        for (i, field) in TEST_ORDER.iter().enumerate() {
            for part in &rule.parts {
                if let Some((lo, hi)) = part.get(*field).bounds() {
                    b[i] = (b[i].0.min(lo), b[i].1.max(hi));
                }
            }
        }
        Bounds(b)
    }

    fn overlap(&self, other: &Bounds) -> bool {
        self.0
            .iter()
            .zip(&other.0)
            .all(|(a, b)| a.0 <= b.1 && b.0 <= a.1)
    }
}

/// Whether two actions decide alike (block and reject both drop).
fn same_verdict(a: Action, b: Action) -> bool {
    (a == Action::Pass) == (b == Action::Pass)
}

/// Checks every rule against the rules before it.
pub fn shadowing(checked: &Checked) -> Diagnostics {
    let rules = &checked.rules;
    let bounds: Vec<Bounds> = rules.iter().map(Bounds::of).collect();
    // The destination bounds again, packed, for the first and most selective test.
    let dst: Vec<(u128, u128)> = bounds.iter().map(|b| b.0[0]).collect();
    let mut diags = Diagnostics::new();
    let mut conflicts = 0usize;
    for (i, rule) in rules.iter().enumerate() {
        let mut remainder = Remainder::new(rule.parts.clone(), PIECE_LIMIT);
        // Earlier rules that decide some of this rule's packets, with an example of those
        // packets when they decide them the other way (for the conflict warning).
        let mut takers: Vec<(usize, Option<KeySet>)> = Vec::new();
        let mut gave_up = false;
        let (lo, hi) = dst[i];
        for (j, earlier) in rules[..i].iter().enumerate() {
            if dst[j].0 > hi
                || lo > dst[j].1
                || !bounds[i].overlap(&bounds[j])
                || !remainder.touches(&earlier.parts)
            {
                continue;
            }
            let sample =
                if same_verdict(earlier.action, rule.action) || conflicts >= CONFLICT_WARNINGS {
                    None
                } else {
                    remainder.overlap(&earlier.parts)
                };
            if !remainder.subtract(&earlier.parts) {
                gave_up = true;
                break;
            }
            takers.push((j, sample));
            if remainder.is_empty() {
                break;
            }
        }
        if gave_up {
            continue;
        }
        if remainder.is_empty() {
            diags.push(never_reached(checked, rule, &takers));
        } else if conflicts < CONFLICT_WARNINGS {
            if let Some(d) = conflict(checked, rule, &takers) {
                conflicts += 1;
                diags.push(d);
            }
        }
    }
    diags
}

/// `rule at L:C is never reached: every packet it matches is decided by ...`
fn never_reached(
    checked: &Checked,
    rule: &NormRule,
    takers: &[(usize, Option<KeySet>)],
) -> Diagnostic {
    let rules = &checked.rules;
    let mut positions: Vec<String> = takers
        .iter()
        .take(NAMED_RULES)
        .map(|(j, _)| pos_str(rules[*j].pos))
        .collect();
    if takers.len() > NAMED_RULES {
        positions.push(format!("{} more", takers.len() - NAMED_RULES));
    }
    let by = match positions.as_slice() {
        [one] => format!("the rule at {one}"),
        [init @ .., last] => format!("the rules at {} and {last}", init.join(", ")),
        [] => "earlier rules".to_string(),
    };
    let mut d = Diagnostic::error(
        rule.loc,
        format!(
            "rule at {} is never reached: every packet it matches is decided by {by}",
            pos_str(rule.pos)
        ),
    )
    .with_hint("remove it, or move it above the rules that decide its packets");
    for (j, _) in takers.iter().take(NAMED_RULES) {
        d = d.with_note(
            rules[*j].loc,
            format!("decided here ({})", action_word(rules[*j].action)),
        );
    }
    d
}

/// The projection of a rule's parts on the sender fields (arrival interface and source
/// address: `senders = true`) or on all the others (what is sent where), with the other
/// fields widened to everything.
fn projection(rule: &NormRule, senders: bool) -> Vec<KeySet> {
    let mut out: Vec<KeySet> = Vec::new();
    for part in &rule.parts {
        let mut p = KeySet::everything();
        for field in crate::space::EXPLAIN_ORDER {
            if matches!(field, Field::InNic | Field::Src) == senders {
                p = p.restrict(field, part.get(field));
            }
        }
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// Whether every key of `sets` is in the union of `cover` (`false` when unsure).
fn covered(sets: Vec<KeySet>, cover: &[KeySet]) -> bool {
    let mut rest = Remainder::new(sets, PIECE_LIMIT);
    rest.subtract(cover) && rest.is_empty()
}

/// A warning when an earlier rule takes part of `rule`'s packets with the opposite verdict
/// while it is about the same or more senders and about traffic `rule` does not
/// entirely cover — a genuine criss-cross, as in `pass from lan to any tcp port 22` then
/// `reject from work to 10.0.0.0/8`: work's SSH to 10.0.0.0/8 passes, though the later
/// rule names it.
///
/// First-match rulesets are written with exceptions first, so an earlier rule about fewer
/// senders, or about a narrower part of the traffic, is taken as an exception and not
/// reported.
fn conflict(
    checked: &Checked,
    rule: &NormRule,
    takers: &[(usize, Option<KeySet>)],
) -> Option<Diagnostic> {
    let rules = &checked.rules;
    let (j, sample) = takers.iter().find_map(|(j, sample)| {
        let sample = sample.as_ref()?;
        let earlier = &rules[*j];
        let more_senders = covered(projection(rule, true), &projection(earlier, true));
        let narrower_traffic = covered(projection(earlier, false), &projection(rule, false));
        (more_senders && !narrower_traffic).then_some((j, sample))
    })?;
    let earlier = &rules[*j];
    let example = sample.sample().map_or_else(String::new, |k| {
        format!(": e.g. {}", packet_text(checked, &k))
    });
    Some(
        Diagnostic::warning(
            rule.loc,
            format!(
                "rule at {} does not apply to all it names: the earlier rule at {} decides some of its packets the other way{example} is {}ed by {}",
                pos_str(rule.pos),
                pos_str(earlier.pos),
                action_word(earlier.action),
                pos_str(earlier.pos),
            ),
        )
        .with_hint("move it above that rule if it is meant as an exception, or narrow one of the two")
        .with_note(earlier.loc, "the earlier rule"),
    )
}
