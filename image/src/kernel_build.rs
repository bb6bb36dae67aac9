//! Builds the Moat kernel ELF for `x86_64-unknown-none` with a chosen ruleset.
//!
//! The kernel's build script compiles the ruleset named by `MOAT_RULES`; a broken ruleset
//! fails that cargo build with the ruleset compiler's diagnostics, which are passed on
//! unchanged (never an image built from a ruleset that did not compile).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::workspace::{cargo_program, Workspace};

/// Rust target the kernel is built for.
pub const KERNEL_TARGET: &str = "x86_64-unknown-none";
/// Cargo package of the kernel.
pub const KERNEL_PACKAGE: &str = "moat-kernel";
/// Name of the kernel binary.
pub const KERNEL_BINARY: &str = "moat";
/// Environment variable through which the kernel's build script receives the ruleset path.
pub const RULES_ENV: &str = "MOAT_RULES";

/// Where cargo's diagnostics go while the kernel builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Diagnostics {
    /// Straight to the terminal, live (the `image` command).
    Terminal,
    /// Captured and carried in the error if the build fails (the test harness).
    Capture,
}

/// One kernel build: which ruleset, which cargo features.
#[derive(Debug, Clone)]
pub struct KernelBuild {
    /// Ruleset file; `None` builds `rules/default.rules` when it exists, else the kernel's
    /// built-in placeholder.
    pub rules: Option<PathBuf>,
    /// Cargo features of `moat-kernel` (e.g. `fault-injection`).
    pub features: Vec<String>,
    /// Where cargo's output goes.
    pub diagnostics: Diagnostics,
}

/// The outcome of a successful kernel build.
#[derive(Debug, Clone)]
pub struct BuiltKernel {
    /// The ELF cargo produced (inside the target directory; copy it before the next build).
    pub elf: PathBuf,
    /// The ruleset it was built with, `None` for the kernel's placeholder.
    pub rules: Option<PathBuf>,
}

impl KernelBuild {
    /// Runs `cargo build --release -p moat-kernel --target x86_64-unknown-none`.
    pub fn run(&self, workspace: &Workspace) -> Result<BuiltKernel> {
        let rules = self.ruleset(workspace)?;
        let mut cargo = Command::new(cargo_program());
        cargo
            .arg("build")
            .arg("--release")
            .args(["-p", KERNEL_PACKAGE, "--target", KERNEL_TARGET])
            .arg("--manifest-path")
            .arg(workspace.root.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", &workspace.target_dir)
            .current_dir(&workspace.root)
            .stdin(Stdio::null());
        if !self.features.is_empty() {
            cargo.arg("--features").arg(self.features.join(","));
        }
        match &rules {
            Some(path) => cargo.env(RULES_ENV, path),
            None => cargo.env_remove(RULES_ENV),
        };
        let spawn_error = |source| Error::Spawn {
            program: "cargo build (kernel)".into(),
            source,
        };
        let (status, output) = match self.diagnostics {
            Diagnostics::Terminal => (cargo.status().map_err(spawn_error)?, String::new()),
            Diagnostics::Capture => {
                let output = cargo
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .output()
                    .map_err(spawn_error)?;
                (
                    output.status,
                    String::from_utf8_lossy(&output.stderr).into_owned(),
                )
            }
        };
        if !status.success() {
            return Err(Error::KernelBuild { status, output });
        }
        let elf = kernel_elf_path(&workspace.target_dir);
        if !elf.is_file() {
            return Err(Error::MissingArtifact { path: elf });
        }
        Ok(BuiltKernel { elf, rules })
    }

    /// The ruleset to pass in `MOAT_RULES`, as an absolute path, checked to be readable.
    fn ruleset(&self, workspace: &Workspace) -> Result<Option<PathBuf>> {
        let requested = match &self.rules {
            Some(path) => path.clone(),
            None if workspace.default_rules().is_file() => workspace.default_rules(),
            None => return Ok(None),
        };
        let absolute = std::fs::canonicalize(&requested).map_err(|source| Error::Ruleset {
            path: requested.clone(),
            source,
        })?;
        std::fs::File::open(&absolute).map_err(|source| Error::Ruleset {
            path: requested,
            source,
        })?;
        Ok(Some(absolute))
    }
}

/// Where cargo leaves the kernel ELF.
pub fn kernel_elf_path(target_dir: &Path) -> PathBuf {
    target_dir
        .join(KERNEL_TARGET)
        .join("release")
        .join(KERNEL_BINARY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ruleset_is_reported_with_its_path_before_cargo_runs() {
        let workspace = Workspace {
            root: PathBuf::from("/nonexistent"),
            target_dir: PathBuf::from("/nonexistent/t"),
        };
        let build = KernelBuild {
            rules: Some(PathBuf::from("/nonexistent/missing.rules")),
            features: vec![],
            diagnostics: Diagnostics::Capture,
        };
        let error = build.run(&workspace).unwrap_err();
        assert!(matches!(error, Error::Ruleset { .. }), "{error}");
        assert!(
            error.to_string().contains("/nonexistent/missing.rules"),
            "{error}"
        );
    }

    #[test]
    fn the_kernel_elf_lands_under_the_bare_metal_target() {
        assert_eq!(
            kernel_elf_path(Path::new("/t")),
            PathBuf::from("/t/x86_64-unknown-none/release/moat")
        );
    }
}
