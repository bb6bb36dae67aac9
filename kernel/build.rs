//! Links the kernel at 1 MiB with its own linker script.
//!
//! The ruleset is not compiled here: the kernel is built once, and `image build` writes the
//! compiled ruleset into the ELF's `.moat_policy` segment (see `linker.ld`), so a ruleset
//! change never recompiles the kernel.

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
}
