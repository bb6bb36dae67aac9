//! `image build`: the artifacts are reproducible, and a ruleset that does not compile fails
//! the build with its diagnostics instead of producing an image.

use std::process::Command;

use image::artifacts::{self, Artifacts};
use image::kernel_build::{KERNEL_PACKAGE, KERNEL_TARGET};
use image::workspace::cargo_program;
use image::Error;
use qemu_tests::kernels::{artifacts as built_artifacts, build_lock, workspace, KernelVariant};
use qemu_tests::{ensure, Failure, Outcome};

#[test]
fn two_builds_of_the_same_sources_and_ruleset_are_byte_identical() -> Outcome {
    let first = built_artifacts(KernelVariant::RELEASE)?;
    let workspace = workspace()?;
    let _builds = build_lock();
    // Throw away the kernel crate's compiled output (not its dependencies), so the second
    // build really compiles the kernel and its ruleset again.
    let clean = Command::new(cargo_program())
        .args([
            "clean",
            "--release",
            "-p",
            KERNEL_PACKAGE,
            "--target",
            KERNEL_TARGET,
            "--manifest-path",
        ])
        .arg(workspace.root.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &workspace.target_dir)
        .output()
        .map_err(|error| Failure::new(format!("cargo clean: {error}")))?;
    ensure(clean.status.success(), || {
        format!(
            "cargo clean failed: {}",
            String::from_utf8_lossy(&clean.stderr)
        )
    })?;
    let out_dir = workspace
        .artifact_dir()
        .join("qemu-tests")
        .join("release-rebuilt");
    let second = artifacts::build(
        workspace,
        &KernelVariant::RELEASE.request(workspace, out_dir),
    )?;
    for (a, b) in first.digests()?.iter().zip(second.digests()?.iter()) {
        ensure(a.sha256 == b.sha256, || {
            format!("rebuild differs:\n  {a}\n  {b}")
        })?;
    }
    Ok(())
}

#[test]
fn a_ruleset_that_does_not_compile_fails_the_build_with_its_diagnostics() -> Outcome {
    let workspace = workspace()?;
    let scratch = workspace
        .artifact_dir()
        .join("qemu-tests")
        .join("broken-ruleset");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|error| Failure::new(error.to_string()))?;
    let rules = scratch.join("broken.rules");
    std::fs::write(&rules, "this is not a ruleset {\n")
        .map_err(|error| Failure::new(error.to_string()))?;
    let out_dir = scratch.join("out");
    let mut request = KernelVariant::RELEASE.request(workspace, out_dir.clone());
    request.rules = Some(rules);
    let result = {
        let _builds = build_lock();
        artifacts::build(workspace, &request)
    };
    match result {
        Err(Error::KernelBuild { output, .. }) => {
            ensure(output.contains("broken.rules"), || {
                format!("the build failed without naming the ruleset:\n{output}")
            })?;
            let leftovers = Artifacts::in_dir(&out_dir);
            ensure(!leftovers.elf.exists() && !leftovers.disk.exists(), || {
                "an image was written anyway".to_string()
            })
        }
        Err(other) => Err(Failure::new(format!(
            "expected a kernel build failure, got: {other}"
        ))),
        Ok(_) => Err(Failure::new(
            "a ruleset that does not compile produced an image",
        )),
    }
}
