//! The compiler pipeline: parse, check, analyse, lower, self-test.

use dataplane::policy::PolicyBuf;

use crate::checked::Checked;
use crate::diag::Diagnostics;
use crate::selftest::{run_tests, TestOutcome};
use crate::source::SourceFile;
use crate::{analysis, check, digest, lower, parser};

/// A ruleset that compiled: the policy the kernel embeds, and what the compiler learned.
#[derive(Debug)]
pub struct Compiled {
    /// The source.
    pub file: SourceFile,
    /// The checked ruleset.
    pub checked: Checked,
    /// The compiled policy, with digest and index.
    pub policy: PolicyBuf,
    /// Warnings (a compiled ruleset has no errors; see [`compile_untested`] for the one
    /// exception, failing tests).
    pub warnings: Diagnostics,
    /// The outcome of every `test` line (all passed).
    pub tests: Vec<TestOutcome>,
}

/// A ruleset that did not compile.
#[derive(Debug)]
pub struct CompileError {
    /// The source.
    pub file: SourceFile,
    /// Errors and warnings.
    pub diagnostics: Diagnostics,
    /// The outcome of the `test` lines, if the compiler got that far.
    pub tests: Vec<TestOutcome>,
}

impl CompileError {
    /// The diagnostics as a compiler prints them.
    pub fn render(&self) -> String {
        self.diagnostics.render(&self.file)
    }
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for CompileError {}

impl Compiled {
    /// The warnings as a compiler prints them (empty if there are none).
    pub fn render_warnings(&self) -> String {
        self.warnings.render(&self.file)
    }
}

/// Compiles the ruleset `text`, read from the file `name`.
pub fn compile(name: &str, text: &str) -> Result<Compiled, CompileError> {
    compile_file(SourceFile::new(name, text))
}

/// Compiles a ruleset source and runs its tests.
pub fn compile_file(file: SourceFile) -> Result<Compiled, CompileError> {
    let mut compiled = compile_untested(file)?;
    let (tests, test_diags) = run_tests(
        &compiled.file,
        &compiled.checked,
        &compiled.policy.as_policy(),
    );
    compiled.warnings.extend(test_diags);
    compiled.tests = tests;
    if compiled.warnings.has_errors() {
        let Compiled {
            file,
            warnings,
            tests,
            ..
        } = compiled;
        return Err(CompileError {
            file,
            diagnostics: warnings,
            tests,
        });
    }
    Ok(compiled)
}

/// Compiles a ruleset source without running its `test` lines (for `explain` and `test`,
/// which must work on a ruleset whose tests fail).
pub fn compile_untested(file: SourceFile) -> Result<Compiled, CompileError> {
    let (ruleset, mut diags) = parser::parse(&file);
    if diags.has_errors() {
        return Err(CompileError {
            file,
            diagnostics: diags,
            tests: Vec::new(),
        });
    }
    let (checked, check_diags) = check::check(&file, &ruleset);
    diags.extend(check_diags);
    diags.extend(analysis::shadowing(&checked));
    if diags.has_errors() {
        return Err(CompileError {
            file,
            diagnostics: diags,
            tests: Vec::new(),
        });
    }
    let mut policy = lower::lower(&file, &checked);
    policy.digest = digest::policy_digest(&policy);
    policy.build_index();
    diags.extend(analysis::translations(&checked, &policy.as_policy()));
    if diags.has_errors() {
        return Err(CompileError {
            file,
            diagnostics: diags,
            tests: Vec::new(),
        });
    }
    Ok(Compiled {
        file,
        checked,
        policy,
        warnings: diags,
        tests: Vec::new(),
    })
}
