//! The entry point the kernel's build script calls.

use std::path::Path;

use crate::compile::compile;
use crate::emit::kernel_source;

/// What a successful kernel build learned about its ruleset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileSummary {
    /// File name of the ruleset (`RULESET_NAME`).
    pub ruleset_name: String,
    /// Hex SHA-256 of the compiled policy (`RULESET_DIGEST`).
    pub digest: String,
    /// Number of filter rules in the source.
    pub source_rules: usize,
    /// Number of normalised rules in the policy.
    pub compiled_rules: usize,
    /// Number of `test` lines run (all passed).
    pub tests_passed: usize,
    /// Each warning, rendered as the compiler prints it (the build script forwards them as
    /// `cargo:warning=` lines).
    pub warnings: Vec<String>,
}

/// Compiles the ruleset at `rules_path`, runs its tests and writes Rust source defining
/// `pub static POLICY: ::dataplane::policy::Policy<'static>`, `pub const RULESET_NAME:
/// &str` and `pub const RULESET_DIGEST: &str` to `out_file`.
///
/// The `Err` string is the full rendered diagnostics (or the I/O error); nothing is
/// written then. The file is only rewritten when its content changes.
pub fn compile_for_kernel(rules_path: &Path, out_file: &Path) -> Result<CompileSummary, String> {
    let text = std::fs::read_to_string(rules_path).map_err(|e| {
        format!(
            "{}: error: cannot read the ruleset: {e}",
            rules_path.display()
        )
    })?;
    let compiled = compile(&rules_path.display().to_string(), &text).map_err(|e| e.render())?;
    let policy = compiled.policy.as_policy();
    let source = kernel_source(&policy)?;
    let unchanged = std::fs::read_to_string(out_file).is_ok_and(|old| old == source);
    if !unchanged {
        std::fs::write(out_file, &source)
            .map_err(|e| format!("{}: error: cannot write: {e}", out_file.display()))?;
    }
    Ok(CompileSummary {
        ruleset_name: policy.source_name.to_string(),
        digest: policy.digest.to_string(),
        source_rules: compiled.checked.rules.len(),
        compiled_rules: policy.rules.len(),
        tests_passed: compiled.tests.len(),
        warnings: compiled
            .warnings
            .iter()
            .map(|w| w.render(&compiled.file))
            .collect(),
    })
}
