//! Compiles a ruleset into the policy blob an image embeds, with the `rules` compiler run as
//! a program (`rules compile FILE -o OUT`, built optimised).
//!
//! The compiler checks the ruleset, runs its `test` lines and writes the blob; a ruleset
//! that does not compile, or whose tests fail, fails here with the compiler's diagnostics,
//! before any kernel is built: a broken policy never becomes an image.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::kernel_build::Diagnostics;
use crate::workspace::{cargo_program, Workspace};

/// Cargo package and binary of the ruleset compiler.
pub const RULES_PACKAGE: &str = "rules";

/// The ruleset to build with: `requested`, else `rules/default.rules`; as an absolute
/// path, checked to be readable.
pub fn resolve(workspace: &Workspace, requested: Option<&Path>) -> Result<PathBuf> {
    let requested = requested
        .map(Path::to_path_buf)
        .unwrap_or_else(|| workspace.default_rules());
    let absolute = std::fs::canonicalize(&requested).map_err(|source| Error::Ruleset {
        path: requested.clone(),
        source,
    })?;
    std::fs::File::open(&absolute).map_err(|source| Error::Ruleset {
        path: requested,
        source,
    })?;
    Ok(absolute)
}

/// Compiles `rules` (an absolute path, see [`resolve`]) and returns its policy blob. The
/// compiler's warnings go where `diagnostics` says; on failure they are in the error.
pub fn compile(workspace: &Workspace, rules: &Path, diagnostics: Diagnostics) -> Result<Vec<u8>> {
    let scratch = workspace.artifact_dir();
    std::fs::create_dir_all(&scratch).map_err(Error::io(&scratch))?;
    // One file per compilation: builds may run at once in one process (the test harness).
    static COMPILATIONS: AtomicU64 = AtomicU64::new(0);
    let blob_path = scratch.join(format!(
        ".policy-{}-{}.bin",
        std::process::id(),
        COMPILATIONS.fetch_add(1, Ordering::Relaxed)
    ));
    let mut cargo = Command::new(cargo_program());
    cargo
        .args(["run", "--quiet", "--release", "-p", RULES_PACKAGE])
        .args(["--bin", RULES_PACKAGE, "--manifest-path"])
        .arg(workspace.root.join("Cargo.toml"))
        .args(["--", "compile"])
        .arg(rules)
        .arg("-o")
        .arg(&blob_path)
        .env("CARGO_TARGET_DIR", &workspace.target_dir)
        .current_dir(&workspace.root)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let spawn_error = |source| Error::Spawn {
        program: "cargo run -p rules (the ruleset compiler)".into(),
        source,
    };
    let (status, output) = match diagnostics {
        Diagnostics::Terminal => (cargo.status().map_err(spawn_error)?, String::new()),
        Diagnostics::Capture => {
            let output = cargo.stderr(Stdio::piped()).output().map_err(spawn_error)?;
            (
                output.status,
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        }
    };
    if !status.success() {
        let _ = std::fs::remove_file(&blob_path);
        return Err(Error::RulesetCompile {
            path: rules.to_path_buf(),
            status,
            output,
        });
    }
    let blob = std::fs::read(&blob_path).map_err(Error::io(&blob_path));
    let _ = std::fs::remove_file(&blob_path);
    blob
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ruleset_is_reported_with_its_path_before_anything_runs() {
        let workspace = Workspace {
            root: PathBuf::from("/nonexistent"),
            target_dir: PathBuf::from("/nonexistent/t"),
        };
        let error = resolve(&workspace, Some(Path::new("/nonexistent/missing.rules"))).unwrap_err();
        assert!(matches!(error, Error::Ruleset { .. }), "{error}");
        assert!(
            error.to_string().contains("/nonexistent/missing.rules"),
            "{error}"
        );
    }

    #[test]
    fn without_a_ruleset_the_default_one_is_taken() {
        let workspace = Workspace {
            root: PathBuf::from("/nonexistent"),
            target_dir: PathBuf::from("/nonexistent/t"),
        };
        let error = resolve(&workspace, None).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("/nonexistent/rules/default.rules"),
            "{error}"
        );
    }
}
