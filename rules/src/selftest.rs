//! The ruleset's own `test` lines, each run through the data plane itself
//! ([`crate::dryrun`]): an appliance built from the compiled policy receives the packet,
//! and what it does — the verdict of the rule that decided, or a drop by the data plane for
//! a reason of its own — is what the test is judged on.
//!
//! `test pass` holds when the packet goes on (forwarded, or to the appliance's own stack);
//! `test reject` when a `reject` rule (or `default reject`) drops it; `test block` when it
//! is dropped any other way — by a `block` rule or the default, or by the data plane
//! (martian, spoofed, no route, ...); `test block because REASON` when the drop's reason is
//! REASON (`policy` for a rule or the default). `log` also requires the drop (or, for
//! `pass`, the rule) to be logged. When what DHCP learns matters, the test must hold in
//! every case ([`crate::cases`]).

use dataplane::policy::Policy;

use crate::ast::TestDecl;
use crate::checked::Checked;
use crate::concrete::concrete;
use crate::diag::{Diagnostic, Diagnostics};
use crate::dryrun::runs;
use crate::outcome::{action_word, case_text, decided_by, redirect_text, routing_note, Observed};
use crate::source::{Loc, SourceFile};

/// The result of one `test` line.
#[derive(Clone, Debug)]
pub struct TestOutcome {
    /// The test statement.
    pub loc: Loc,
    /// The test as written.
    pub text: String,
    /// Whether the verdict was the expected one (for every case).
    pub passed: bool,
    /// What happened, in words (the deciding rule or drop reason, the verdict, the
    /// translation).
    pub detail: String,
}

/// Runs every test; a failing one is an error naming what decided.
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

/// Whether `observed` is what `test` expects.
fn meets(test: &TestDecl, observed: &Observed) -> bool {
    observed.action == test.expect.value
        && (!test.log || observed.log)
        && test
            .because
            .as_ref()
            .is_none_or(|because| observed.reason == Some(because.value))
}

/// What `test` expects, in words: `pass`, `block log`, `block (martian-destination)`.
fn expected_words(test: &TestDecl) -> String {
    let log = if test.log { " log" } else { "" };
    match &test.because {
        Some(because) => format!(
            "{}{log} ({})",
            action_word(test.expect.value),
            because.value
        ),
        None => format!("{}{log}", action_word(test.expect.value)),
    }
}

fn run_test(
    file: &SourceFile,
    checked: &Checked,
    policy: &Policy,
    test: &TestDecl,
) -> Result<TestOutcome, Diagnostic> {
    let packet = concrete(checked, &test.packet)?;
    let runs = runs(checked, policy, &packet);
    let failure = runs.iter().find(|run| !meets(test, &Observed::of(run)));
    let want = expected_words(test);
    let detail = match failure {
        Some(run) => format!(
            "expected {want}, got {}{}, decided by {}{}{}",
            Observed::of(run).words(),
            case_text(checked, &runs, run),
            decided_by(checked, policy, run),
            routing_note(checked, run),
            redirect_text(policy, run)
        ),
        None => match runs.first() {
            Some(run) => format!(
                "{} by {}{}",
                Observed::of(run).words(),
                decided_by(checked, policy, run),
                redirect_text(policy, run)
            ),
            None => format!("{want}: no case to run"),
        },
    };
    Ok(TestOutcome {
        loc: test.loc,
        text: file.slice(test.loc).to_string(),
        passed: failure.is_none() && !runs.is_empty(),
        detail,
    })
}
