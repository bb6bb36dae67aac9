//! The ruleset's own `test` lines, run through the data plane's matcher
//! ([`Policy::decide`]) — the very code the kernel runs.

use dataplane::policy::{flow_addr_to_ipv4, Action, Policy, Verdict};

use crate::ast::TestDecl;
use crate::checked::Checked;
use crate::diag::{Diagnostic, Diagnostics};
use crate::probe::{probe, Translation};
use crate::source::{pos_str, Loc, SourceFile};

/// The result of one `test` line.
#[derive(Clone, Debug)]
pub struct TestOutcome {
    /// The test statement.
    pub loc: Loc,
    /// The test as written.
    pub text: String,
    /// Whether the verdict was the expected one (for every case).
    pub passed: bool,
    /// What happened, in words (the deciding rule, the verdict, translation).
    pub detail: String,
}

/// The word for an action.
pub fn action_word(action: Action) -> &'static str {
    match action {
        Action::Pass => "pass",
        Action::Block => "block",
        Action::Reject => "reject",
    }
}

/// Which rule decided a verdict: `the rule at L:C`, `the default at L:C` or `the built-in
/// default`.
pub fn decider(policy: &Policy, verdict: &Verdict) -> String {
    match verdict.rule.and_then(|i| policy.rules.get(i as usize)) {
        Some(rule) => format!("the rule at {}", pos_str(rule.pos)),
        None if policy.default.pos.line > 0 => {
            format!("the default at {}", pos_str(policy.default.pos))
        }
        None => "the built-in default (block)".to_string(),
    }
}

/// Runs every test; a failing one is an error naming the deciding rule.
pub fn run_tests(
    file: &SourceFile,
    checked: &Checked,
    policy: &Policy,
) -> (Vec<TestOutcome>, Diagnostics) {
    let mut diags = Diagnostics::new();
    let mut outcomes = Vec::new();
    for test in &checked.tests {
        match run_test(file, checked, policy, test) {
            Ok(outcome) => {
                if !outcome.passed {
                    diags.push(Diagnostic::error(
                        test.loc,
                        format!("test failed: {}", outcome.detail),
                    ));
                }
                outcomes.push(outcome);
            }
            Err(d) => diags.push(d),
        }
    }
    (outcomes, diags)
}

fn run_test(
    file: &SourceFile,
    checked: &Checked,
    policy: &Policy,
    test: &TestDecl,
) -> Result<TestOutcome, Diagnostic> {
    let probe = probe(checked, policy, file, &test.packet)?;
    let expected = test.expect.value;
    let want = format!(
        "{}{}",
        action_word(expected),
        if test.log { " log" } else { "" }
    );
    let failure = probe.keys.iter().find_map(|key| {
        let verdict = policy.decide(key);
        let ok = verdict.action == expected && (!test.log || verdict.log);
        (!ok).then_some((key, verdict))
    });
    let text = file.slice(test.loc).to_string();
    let translation = describe_translation(&probe.translation);
    let detail = match failure {
        Some((key, verdict)) => {
            let got = format!(
                "{}{}",
                action_word(verdict.action),
                if verdict.log { " log" } else { "" }
            );
            let case = if probe.keys.len() > 1 {
                format!(" when the destination is {}", addr_text(key.dst))
            } else {
                String::new()
            };
            format!(
                "expected {want}, got {got}{case}, decided by {}{translation}",
                decider(policy, &verdict)
            )
        }
        None => {
            let verdict = probe.keys.first().map(|k| policy.decide(k));
            let by = verdict.map_or_else(|| "no case".to_string(), |v| decider(policy, &v));
            format!("{want} by {by}{translation}")
        }
    };
    Ok(TestOutcome {
        loc: test.loc,
        text,
        passed: failure.is_none(),
        detail,
    })
}

/// `" (after ...)"` for a translated packet, else empty.
pub fn describe_translation(translation: &Translation) -> String {
    match translation {
        Translation::None => String::new(),
        Translation::Forward { to, pos, .. } => {
            format!(
                " (after the forward at {} to {}:{})",
                pos_str(*pos),
                to.0,
                to.1
            )
        }
        Translation::Dns { pos, resolvers, .. } => match resolvers {
            Some(list) => {
                let list: Vec<String> = list.iter().map(|a| a.to_string()).collect();
                format!(
                    " (after the DNS redirect at {} to {})",
                    pos_str(*pos),
                    list.join(", ")
                )
            }
            None => format!(
                " (after the DNS redirect at {} to the resolvers learned on the uplink)",
                pos_str(*pos)
            ),
        },
    }
}

/// A flow address as text (IPv4 when mapped).
pub fn addr_text(addr: u128) -> String {
    match flow_addr_to_ipv4(addr) {
        Some(v4) => std::net::Ipv4Addr::from(v4).to_string(),
        None => std::net::Ipv6Addr::from(addr).to_string(),
    }
}
