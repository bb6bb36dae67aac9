//! Rules that are never reached, and earlier rules that take part of a later rule's
//! packets with the opposite verdict.

use dataplane::policy::Action;

use super::overlap::OverlapIndex;
use super::Remainder;
use crate::checked::{Checked, NormRule};
use crate::describe::packet_text;
use crate::diag::{Diagnostic, Diagnostics};
use crate::outcome::action_word;
use crate::source::pos_str;
use crate::space::{Field, KeySet};

/// Most pieces a rule's remainder may break into before the analysis of that rule stops
/// (it is then assumed reachable and no conflict is reported).
const PIECE_LIMIT: usize = 4096;

/// Most earlier rules a "never reached" error names (and points at).
const NAMED_RULES: usize = 6;

/// Most "conflicting overlap" warnings reported for one ruleset.
const CONFLICT_WARNINGS: usize = 20;

/// Whether two actions decide alike (block and reject both drop).
fn same_verdict(a: Action, b: Action) -> bool {
    (a == Action::Pass) == (b == Action::Pass)
}

/// Checks every rule against the rules before it whose bounds overlap its own (found
/// through an [`OverlapIndex`], so a rule is not compared with every rule before it).
pub fn shadowing(checked: &Checked) -> Diagnostics {
    let index = OverlapIndex::new(&checked.rules);
    shadowing_over(checked, |i| index.earlier_overlapping(i))
}

/// Checks every rule `i` against `earlier(i)`: the rules before it whose bounds overlap
/// its own, ascending (the others cannot decide any of its packets).
fn shadowing_over(checked: &Checked, earlier: impl Fn(usize) -> Vec<usize>) -> Diagnostics {
    let rules = &checked.rules;
    let mut diags = Diagnostics::new();
    let mut conflicts = 0usize;
    for (i, rule) in rules.iter().enumerate() {
        let mut remainder = Remainder::new(rule.parts.clone(), PIECE_LIMIT);
        // Earlier rules that decide some of this rule's packets, with an example of those
        // packets when they decide them the other way (for the conflict warning).
        let mut takers: Vec<(usize, Option<KeySet>)> = Vec::new();
        let mut gave_up = false;
        for j in earlier(i) {
            let earlier = &rules[j];
            if !remainder.touches(&earlier.parts) {
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::generate::{generate_unchecked, Shape};
    use crate::source::SourceFile;
    use crate::{check, parser};

    /// The analysis as it was: every rule against every rule before it whose bounds
    /// overlap its own, found by looking at each of them.
    fn shadowing_by_scan(checked: &Checked) -> Diagnostics {
        let index = OverlapIndex::new(&checked.rules);
        shadowing_over(checked, |i| {
            (0..i)
                .filter(|&j| index.bounds(j).overlap(index.bounds(i)))
                .collect()
        })
    }

    /// Both analyses' findings on a random ruleset, rendered, and how many errors and
    /// warnings they hold.
    fn both(rules: usize, seed: u64, shape: Shape) -> (String, String, usize, usize) {
        let file = SourceFile::new("random.rules", generate_unchecked(rules, seed, shape));
        let (ruleset, parse_diags) = parser::parse(&file);
        assert!(!parse_diags.has_errors(), "{}", parse_diags.render(&file));
        let (checked, _) = check::check(&file, &ruleset);
        let indexed = shadowing(&checked);
        let scanned = shadowing_by_scan(&checked);
        let errors = indexed.errors().count();
        let warnings = indexed.len() - errors;
        (
            indexed.render(&file),
            scanned.render(&file),
            errors,
            warnings,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn indexed_analysis_finds_exactly_what_the_scan_finds(
            seed in any::<u64>(),
            rules in 4usize..160,
            wildcards in any::<bool>(),
        ) {
            let shape = if wildcards { Shape::WildcardHeavy } else { Shape::Realistic };
            let (indexed, scanned, _, _) = both(rules, seed, shape);
            prop_assert_eq!(indexed, scanned);
        }
    }

    #[test]
    fn random_rulesets_have_unreachable_rules_and_conflicts_to_find() {
        let (mut errors, mut warnings) = (0, 0);
        for seed in 0..8 {
            let (indexed, scanned, e, w) = both(150, seed, Shape::WildcardHeavy);
            assert_eq!(indexed, scanned, "seed {seed}");
            errors += e;
            warnings += w;
        }
        assert!(
            errors > 10 && warnings > 10,
            "{errors} errors, {warnings} warnings"
        );
    }
}
