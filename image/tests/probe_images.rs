//! The image plumbing without the kernel: the probe guest, packaged like the kernel, boots by
//! every path, and packaging it twice gives identical files.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::accel::Accel;
use image::artifacts::{package, Artifacts};
use image::probe_guest::{probe_elf, DONE_LINE, EXIT_STATUS, START_LINE};
use image::qemu::{stop, wait_until, Boot, BootPath, Machine, QemuConfig};

const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("moat-image-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn probe_artifacts(dir: &Path) -> Artifacts {
    let elf = dir.join("probe.elf");
    std::fs::write(&elf, probe_elf(1000)).unwrap();
    package(&elf, &dir.join("out"), "").unwrap()
}

/// Boots `boot` under TCG with the exit device; returns the console and QEMU's exit status.
fn boot_probe(machine: Machine, boot: Boot) -> (String, Option<i32>) {
    let mut config = QemuConfig::new(machine, Accel::Tcg, boot);
    config.debug_exit = true;
    let mut child = config.command_line().unwrap().spawn_piped().unwrap();
    let status = wait_until(&mut child, Instant::now() + BOOT_TIMEOUT).unwrap();
    stop(&mut child);
    let mut console = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut console)
        .unwrap();
    (console, status.and_then(|status| status.code()))
}

fn assert_probe_ran(machine: Machine, path: BootPath, console: &str, status: Option<i32>) {
    assert!(
        console.contains(START_LINE) && console.contains(DONE_LINE) && status == Some(EXIT_STATUS),
        "{machine} {path}: status {status:?}, console:\n{console}"
    );
}

#[test]
fn the_disk_image_boots_through_seabios_and_ovmf_via_grub_multiboot2() {
    let dir = scratch("firmware");
    let artifacts = probe_artifacts(&dir);
    for (machine, path) in [
        (Machine::Pc, BootPath::Bios),
        (Machine::Q35, BootPath::Bios),
        (Machine::Q35, BootPath::Uefi),
    ] {
        let (console, status) = boot_probe(machine, path.boot_from(&artifacts, ""));
        assert_probe_ran(machine, path, &console, status);
    }
    let (console, status) = boot_probe(
        Machine::Q35,
        Boot::Bios {
            disk: artifacts.qcow2.clone(),
        },
    );
    assert_probe_ran(Machine::Q35, BootPath::Bios, &console, status);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_elf_boots_directly_through_its_pvh_note_on_every_machine() {
    let dir = scratch("pvh");
    let artifacts = probe_artifacts(&dir);
    for machine in Machine::ALL {
        let (console, status) = boot_probe(machine, BootPath::Kernel.boot_from(&artifacts, ""));
        assert_probe_ran(machine, BootPath::Kernel, &console, status);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn packaging_the_same_kernel_twice_gives_identical_files() {
    let dir = scratch("reproducible");
    let elf = dir.join("probe.elf");
    std::fs::write(&elf, probe_elf(7)).unwrap();
    let first = package(&elf, &dir.join("first"), "").unwrap();
    std::thread::sleep(Duration::from_millis(1100)); // a different second for every timestamp
    let second = package(&elf, &dir.join("second"), "").unwrap();
    let (first, second) = (first.digests().unwrap(), second.digests().unwrap());
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(a.sha256, b.sha256, "\n{a}\n{b}");
    }
    std::fs::write(&elf, probe_elf(8)).unwrap();
    let other = package(&elf, &dir.join("other"), "")
        .unwrap()
        .digests()
        .unwrap();
    assert_ne!(
        other[1].sha256, first[1].sha256,
        "a different kernel must give a different disk image"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
