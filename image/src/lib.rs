//! Moat's host tooling: build the boot artifacts and run them under QEMU.
//!
//! **Owns**: building the kernel with a ruleset (through cargo), the artifacts, QEMU command
//! lines and accelerator choice. **Must not import** the kernel or the data plane: it drives
//! them as programs (a kernel build, a VM), never as libraries.
//!
//! - [`artifacts::build`] builds the kernel for `x86_64-unknown-none` with a ruleset and
//!   writes `moat.elf` (direct boot), `moat.img` (BIOS + UEFI through GRUB) and `moat.qcow2`,
//!   reproducibly.
//! - [`qemu::QemuConfig`] is the single place QEMU command lines are made; the `image run`
//!   command, the end-to-end tests and the benches all use it.
//! - [`libvirt::Domain`] writes the libvirt domain XML for the built image.
//! - [`accel::choose`] picks KVM or TCG by measuring, not by trusting that `/dev/kvm` opens.
//! - [`probe_guest`] is a tiny guest that boots like the kernel, for calibration and
//!   baselines.

pub mod accel;
pub mod artifacts;
pub mod calibrate;
pub mod disk_image;
pub mod error;
pub mod host_tools;
pub mod kernel_build;
pub mod libvirt;
pub mod policy_embed;
pub mod probe_guest;
pub mod qemu;
pub mod ruleset;
pub mod shell;
pub mod workspace;

pub use error::{Error, Result};
