//! What can go wrong while building or running an image, in words a user can act on.

use std::path::PathBuf;
use std::process::ExitStatus;

/// Every failure of the `image` library. Each message names the problem and, where there is
/// one, the fix (a package to install, a file to look at).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A host program is not installed.
    #[error("`{program}` not found on PATH: install the Debian package `{package}` (or run scripts/setup)")]
    MissingTool {
        /// The program that was looked for.
        program: &'static str,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// No OVMF image (UEFI firmware for QEMU) was found.
    #[error("UEFI firmware not found (looked for {}): install the Debian package `ovmf` (or run scripts/setup)", .looked_for.join(", "))]
    MissingFirmware {
        /// The paths that were tried.
        looked_for: Vec<String>,
    },
    /// The ruleset file passed to the build does not exist or cannot be read.
    #[error("ruleset {path}: {source}")]
    Ruleset {
        /// The ruleset file.
        path: PathBuf,
        /// Why it cannot be used.
        source: std::io::Error,
    },
    /// The ruleset compiler refused the ruleset (or its tests failed); `output` is its
    /// diagnostics, empty when they were already shown on the terminal.
    #[error("the ruleset {} does not compile; no image was built{}", .path.display(), diagnostics(.output))]
    RulesetCompile {
        /// The ruleset file.
        path: PathBuf,
        /// Exit status of the compiler.
        status: ExitStatus,
        /// What it printed on stderr, if it was captured.
        output: String,
    },
    /// The compiled ruleset could not be written into the kernel ELF.
    #[error("{}: cannot embed the ruleset: {source}", .elf.display())]
    Embed {
        /// The kernel ELF.
        elf: PathBuf,
        /// What is wrong with it.
        source: crate::policy_embed::EmbedError,
    },
    /// `cargo build` of the kernel failed; `output` is cargo's stderr (the compiler's
    /// diagnostics), empty when it was already shown on the terminal.
    #[error("the Moat kernel failed to build ({status}){}", diagnostics(.output))]
    KernelBuild {
        /// Exit status of cargo.
        status: ExitStatus,
        /// What cargo printed on stderr, if it was captured.
        output: String,
    },
    /// A host tool ran but failed.
    #[error("{program} failed ({status}): {command}\n{output}")]
    ToolFailed {
        /// The program that failed.
        program: String,
        /// The full command line, for copying.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// What it printed on stderr.
        output: String,
    },
    /// A host program could not be started at all.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The user asked for KVM and the host cannot provide it.
    #[error("KVM is not usable: {reason}")]
    KvmUnusable {
        /// What is wrong with /dev/kvm.
        reason: String,
    },
    /// The accelerator calibration boot did not behave as expected.
    #[error("accelerator calibration failed under {accel}: {reason}")]
    Calibration {
        /// The accelerator that was being measured.
        accel: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// A value given on the command line or in the environment is not valid.
    #[error("{0}")]
    InvalidRequest(String),
    /// A QEMU configuration that QEMU (or the kernel) cannot run.
    #[error("unsupported QEMU configuration: {0}")]
    UnsupportedConfiguration(String),
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// An artifact that `run` needs has not been built.
    #[error("{path} does not exist: build it first with `cargo run -p image -- build`")]
    MissingArtifact {
        /// The artifact that is missing.
        path: PathBuf,
    },
    /// `cargo metadata` printed something unexpected.
    #[error("cannot read the workspace layout from `cargo metadata`: {0}")]
    Metadata(String),
}

fn diagnostics(output: &str) -> String {
    if output.trim().is_empty() {
        "; its diagnostics are above".to_string()
    } else {
        format!(":\n{}", output.trim_end())
    }
}

/// Result of the `image` library.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
