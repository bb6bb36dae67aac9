//! Links the kernel at 1 MiB with its own linker script, and compiles the ruleset into the
//! image.
//!
//! `MOAT_RULES` names the ruleset file (default: `rules/default.rules` in the workspace).
//! A ruleset that does not compile, or whose `test` lines fail, fails this build with the
//! compiler's diagnostics: a broken policy never becomes an image.

use std::path::PathBuf;

fn main() {
    let dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!(
            "cargo:rustc-link-arg-bins=-T{}",
            dir.join("linker.ld").display()
        );
        println!("cargo:rustc-link-arg-bins=--gc-sections");
    }
    println!("cargo:rerun-if-changed=linker.ld");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=MOAT_RULES");

    let rules = match std::env::var_os("MOAT_RULES") {
        Some(path) => PathBuf::from(path),
        None => dir.join("../rules/default.rules"),
    };
    println!("cargo:rerun-if-changed={}", rules.display());
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("policy.rs");
    match rules::kernel_build::compile_for_kernel(&rules, &out) {
        Ok(summary) => {
            for warning in &summary.warnings {
                for line in warning.lines() {
                    println!("cargo:warning={line}");
                }
            }
        }
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            eprintln!(
                "error: the ruleset {} does not compile; no image was built",
                rules.display()
            );
            std::process::exit(1);
        }
    }
}
