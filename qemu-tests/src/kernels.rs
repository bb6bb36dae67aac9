//! The kernel builds the suite boots, each built once per test process.
//!
//! Builds are serialised: they share cargo's output file (`release/moat`), which each build
//! copies into its own artifact directory before the next one may start.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use image::artifacts::{self, Artifacts, BuildRequest};
use image::kernel_build::Diagnostics;
use image::workspace::Workspace;

use crate::{Failure, Outcome};

/// One way of building the kernel for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KernelVariant {
    /// Name, also the artifact directory under `<target>/moat/qemu-tests/`.
    pub name: &'static str,
    /// Ruleset file relative to the workspace root; `None` for the default ruleset.
    pub rules: Option<&'static str>,
    /// Cargo features of the kernel.
    pub features: &'static [&'static str],
}

impl KernelVariant {
    /// The image users run: default ruleset, no test features.
    pub const RELEASE: KernelVariant = KernelVariant {
        name: "release",
        rules: None,
        features: &[],
    };
    /// The test ruleset that addresses all eight NICs and lets each answer ping
    /// (`qemu-tests/rules/every-nic.rules`, matching [`crate::addressing`]).
    pub const EVERY_NIC: KernelVariant = KernelVariant {
        name: "every-nic",
        rules: Some("qemu-tests/rules/every-nic.rules"),
        features: &[],
    };
    /// With `fault-injection`: `moat.fault=page|panic` on the command line triggers a fault.
    pub const FAULT_INJECTION: KernelVariant = KernelVariant {
        name: "fault-injection",
        rules: None,
        features: &["fault-injection"],
    };

    /// The text of this variant's ruleset file (a test variant's: fails for one built with
    /// the default ruleset).
    pub fn ruleset_text(&self) -> Outcome<String> {
        let rules = self.rules.ok_or_else(|| {
            Failure::new(format!("the {} kernel has the default ruleset", self.name))
        })?;
        let path = workspace()?.root.join(rules);
        std::fs::read_to_string(&path)
            .map_err(|error| Failure::new(format!("reading {}: {error}", path.display())))
    }

    /// The cargo build request of this variant, writing into `out_dir`.
    pub fn request(&self, workspace: &Workspace, out_dir: PathBuf) -> BuildRequest {
        BuildRequest {
            rules: self.rules.map(|rules| workspace.root.join(rules)),
            features: self
                .features
                .iter()
                .map(|feature| feature.to_string())
                .collect(),
            kernel_elf: None,
            kernel_cmdline: String::new(),
            out_dir: Some(out_dir),
            diagnostics: Diagnostics::Capture,
        }
    }
}

/// The workspace, discovered once.
pub fn workspace() -> Outcome<&'static Workspace> {
    static WORKSPACE: OnceLock<Result<Workspace, String>> = OnceLock::new();
    WORKSPACE
        .get_or_init(|| Workspace::discover().map_err(|error| error.to_string()))
        .as_ref()
        .map_err(|error| Failure::new(error.clone()))
}

/// Serialises every kernel build of this process (see the module documentation).
pub fn build_lock(
) -> std::sync::MutexGuard<'static, HashMap<KernelVariant, Result<Artifacts, String>>> {
    static BUILDS: OnceLock<Mutex<HashMap<KernelVariant, Result<Artifacts, String>>>> =
        OnceLock::new();
    BUILDS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The artifacts of `variant`, built on first use. A failed build is remembered, so that
/// every test that needs it reports the build failure without rebuilding.
pub fn artifacts(variant: KernelVariant) -> Outcome<Artifacts> {
    let workspace = workspace()?;
    let mut builds = build_lock();
    let built = builds.entry(variant).or_insert_with(|| {
        let out_dir = workspace
            .artifact_dir()
            .join("qemu-tests")
            .join(variant.name);
        artifacts::build(workspace, &variant.request(workspace, out_dir))
            .map_err(|error| error.to_string())
    });
    built
        .clone()
        .map_err(|error| Failure::new(format!("building the {} kernel: {error}", variant.name)))
}
