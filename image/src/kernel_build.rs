//! Builds the Moat kernel ELF for `x86_64-unknown-none`.
//!
//! The kernel does not depend on the ruleset: it is compiled once per set of features, and
//! the ruleset is written into a copy of its ELF afterwards ([`crate::ruleset`],
//! [`crate::policy_embed`]).

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

/// Where cargo's diagnostics go while the kernel builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Diagnostics {
    /// Straight to the terminal, live (the `image` command).
    Terminal,
    /// Captured and carried in the error if the build fails (the test harness).
    Capture,
}

/// One kernel build: which cargo features.
#[derive(Debug, Clone)]
pub struct KernelBuild {
    /// Cargo features of `moat-kernel` (e.g. `fault-injection`).
    pub features: Vec<String>,
    /// Where cargo's output goes.
    pub diagnostics: Diagnostics,
}

/// The outcome of a successful kernel build.
#[derive(Debug, Clone)]
pub struct BuiltKernel {
    /// The ELF cargo produced (inside the target directory; copy it before the next build).
    /// Its policy segment says "no ruleset" until one is embedded.
    pub elf: PathBuf,
}

impl KernelBuild {
    /// Runs `cargo build --release -p moat-kernel --target x86_64-unknown-none`.
    pub fn run(&self, workspace: &Workspace) -> Result<BuiltKernel> {
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
        Ok(BuiltKernel { elf })
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
    fn the_kernel_elf_lands_under_the_bare_metal_target() {
        assert_eq!(
            kernel_elf_path(Path::new("/t")),
            PathBuf::from("/t/x86_64-unknown-none/release/moat")
        );
    }
}
