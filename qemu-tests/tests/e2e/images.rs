//! `image build`: the artifacts are reproducible, a ruleset that does not compile fails
//! the build with its diagnostics instead of producing an image, and a kernel whose
//! embedded ruleset is missing or damaged stops at boot, saying so.

use std::process::Command;
use std::time::Duration;

use image::artifacts::{self, Artifacts};
use image::kernel_build::{kernel_elf_path, KERNEL_PACKAGE, KERNEL_TARGET};
use image::qemu::{BootPath, Machine, FATAL_EXIT_STATUS};
use image::workspace::cargo_program;
use image::Error;
use qemu_tests::boot_report::{FATAL_PREFIX, HALTED_LINE};
use qemu_tests::kernels::{artifacts as built_artifacts, build_lock, workspace, KernelVariant};
use qemu_tests::vm::{Vm, VmSpec};
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
        Err(Error::RulesetCompile { output, .. }) => {
            ensure(output.contains("broken.rules"), || {
                format!("the build failed without naming the ruleset:\n{output}")
            })?;
            let leftovers = Artifacts::in_dir(&out_dir);
            ensure(!leftovers.elf.exists() && !leftovers.disk.exists(), || {
                "an image was written anyway".to_string()
            })
        }
        Err(other) => Err(Failure::new(format!(
            "expected the ruleset compiler to refuse it, got: {other}"
        ))),
        Ok(_) => Err(Failure::new(
            "a ruleset that does not compile produced an image",
        )),
    }
}

/// Boots `elf` (direct kernel boot, q35) and returns the `moat: FATAL` line it stops with,
/// after checking that it halts and QEMU exits with the failure status.
fn fatal_line_of(name: &str, elf: &[u8]) -> Outcome<String> {
    let workspace = workspace()?;
    let dir = workspace.artifact_dir().join("qemu-tests").join(name);
    std::fs::create_dir_all(&dir).map_err(|error| Failure::new(error.to_string()))?;
    let artifacts = Artifacts::in_dir(&dir);
    std::fs::write(&artifacts.elf, elf).map_err(|error| Failure::new(error.to_string()))?;
    let mut vm = Vm::start_from(VmSpec::new(Machine::Q35, BootPath::Kernel, 2), &artifacts)?;
    vm.console()
        .wait_for_line(HALTED_LINE, Duration::from_secs(60))?;
    let status = vm.wait_exit(Duration::from_secs(60))?;
    ensure(status.code() == Some(FATAL_EXIT_STATUS), || {
        format!("QEMU exited with {status}, expected the failure status {FATAL_EXIT_STATUS}")
    })?;
    let lines = vm.console().lines();
    ensure(
        !lines.iter().any(|line| line.contains("moat: ready")),
        || "the kernel became ready without a usable ruleset".to_string(),
    )?;
    lines
        .into_iter()
        .find(|line| line.starts_with(FATAL_PREFIX))
        .ok_or_else(|| Failure::new("no `moat: FATAL` line before the halt"))
}

#[test]
fn a_kernel_built_without_a_ruleset_stops_at_boot_and_says_so() -> Outcome {
    built_artifacts(KernelVariant::RELEASE)?;
    let elf = {
        let _builds = build_lock();
        let path = kernel_elf_path(&workspace()?.target_dir);
        std::fs::read(&path)
            .map_err(|error| Failure::new(format!("{}: {error}", path.display())))?
    };
    let line = fatal_line_of("no-ruleset", &elf)?;
    ensure(line.contains("no ruleset"), || {
        format!("the report does not say the ruleset is missing: {line}")
    })
}

#[test]
fn a_kernel_whose_embedded_ruleset_is_damaged_stops_at_boot_and_says_so() -> Outcome {
    let built = built_artifacts(KernelVariant::RELEASE)?;
    let mut elf = std::fs::read(&built.elf).map_err(|error| Failure::new(error.to_string()))?;
    // The blob is the end of the file: damage a byte of its rules, past its header.
    let at = elf.len() - 40;
    elf[at] ^= 0x5a;
    let line = fatal_line_of("damaged-ruleset", &elf)?;
    ensure(line.contains("checksum"), || {
        format!("the report does not say the ruleset is damaged: {line}")
    })
}

#[test]
fn a_ruleset_written_into_an_already_built_kernel_elf_boots_and_is_enforced_by_name() -> Outcome {
    built_artifacts(KernelVariant::RELEASE)?;
    let workspace = workspace()?;
    let dir = workspace
        .artifact_dir()
        .join("qemu-tests")
        .join("prebuilt-kernel");
    std::fs::create_dir_all(&dir).map_err(|error| Failure::new(error.to_string()))?;
    let kernel = dir.join("kernel.elf");
    {
        let _builds = build_lock();
        let linked = kernel_elf_path(&workspace.target_dir);
        std::fs::copy(&linked, &kernel)
            .map_err(|error| Failure::new(format!("{}: {error}", linked.display())))?;
    }
    let mut request = KernelVariant::EVERY_NIC.request(workspace, dir.join("out"));
    request.kernel_elf = Some(kernel);
    let artifacts = artifacts::build(workspace, &request)?;
    let vm = Vm::start_from(VmSpec::new(Machine::Q35, BootPath::Kernel, 2), &artifacts)?;
    vm.wait_ready()?;
    let banner = vm.console().lines().into_iter().next().unwrap_or_default();
    ensure(banner.contains("ruleset every-nic.rules"), || {
        format!("the banner does not name the ruleset written in: {banner}")
    })
}
