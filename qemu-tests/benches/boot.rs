//! `scripts/bench boot`: for each boot path and accelerator, the median wall time from QEMU
//! start to `moat: ready` and to the first ping reply, next to a baseline measured in the
//! same run (the probe guest booted the same way: the cost of QEMU, firmware and GRUB alone);
//! the kernel ELF's size; and the smallest `-m` that still reaches `moat: ready`.
//!
//! Options: `--runs N` (default 5; KVM always 1), `--accel tcg|kvm|all` (default all usable),
//! `--no-memory` (skip the memory search).

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use image::accel::{kvm_usable, Accel};
use image::artifacts::{package, ArtifactDigest, Artifacts};
use image::probe_guest::{probe_elf, DONE_LINE};
use image::qemu::{stop, BootPath, Firmware, Machine, QemuConfig};
use qemu_tests::boot_report::{BootReport, READY_LINE};
use qemu_tests::console::Console;
use qemu_tests::expect::{answers_arp, answers_ping, appliance_on};
use qemu_tests::kernels::{artifacts, workspace, KernelVariant};
use qemu_tests::vm::{Vm, VmSpec};
use qemu_tests::{Failure, Outcome};

/// The boot paths measured: each machine's direct kernel boot (q35's also started by
/// qboot), and the disk image through each firmware.
const PATHS: [(Machine, BootPath, Firmware); 6] = [
    (Machine::Microvm, BootPath::Kernel, Firmware::Default),
    (Machine::Q35, BootPath::Kernel, Firmware::Default),
    (Machine::Q35, BootPath::Kernel, Firmware::Qboot),
    (Machine::Pc, BootPath::Kernel, Firmware::Default),
    (Machine::Pc, BootPath::Bios, Firmware::Default),
    (Machine::Q35, BootPath::Uefi, Firmware::Default),
];

/// A path's name in the table: `q35 kernel`, `q35 kernel qboot`.
fn path_label(machine: Machine, path: BootPath, firmware: Firmware) -> String {
    match firmware {
        Firmware::Default => format!("{machine} {path}"),
        Firmware::Qboot => format!("{machine} {path} {firmware}"),
    }
}
/// The NIC that is pinged (a client NIC; nic0 is the uplink).
const PINGED_NIC: usize = 1;
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// Shortest wait for `moat: ready` while searching for the smallest memory.
const MEMORY_PROBE_MIN_TIMEOUT: Duration = Duration::from_secs(10);
/// KVM on a host that emulates ring 0 needs minutes; one run each, stopped after this.
const KVM_TIMEOUT: Duration = Duration::from_secs(300);

struct Options {
    runs: usize,
    accels: Vec<Accel>,
    memory_search: bool,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("bench boot: {failure}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Outcome {
    let options = parse_options()?;
    let kernel = artifacts(KernelVariant::RELEASE)?;
    let probe = probe_artifacts()?;
    let elf = ArtifactDigest::of(&kernel.elf)?;
    println!(
        "kernel ELF: {} bytes ({:.2} MiB)",
        elf.size,
        elf.size as f64 / (1024.0 * 1024.0)
    );
    println!("baseline: the {}-byte probe guest booted the same way (QEMU + firmware + GRUB, no kernel work)", ArtifactDigest::of(&probe.elf)?.size);
    println!();
    println!(
        "{:<5} {:<16} {:>5} {:>12} {:>12} {:>12} {:>12}",
        "accel", "boot path", "runs", "to ready", "to 1st ping", "baseline", "ready/base"
    );
    let mut tcg_ready = HashMap::new();
    for &accel in &options.accels {
        let runs = if accel == Accel::Kvm { 1 } else { options.runs };
        for (machine, path, firmware) in PATHS {
            let label = path_label(machine, path, firmware);
            let measured = measure_path(machine, path, firmware, accel, runs, &probe);
            if let (Ok(row), Accel::Tcg) = (&measured, accel) {
                tcg_ready.insert((machine, path, firmware), row.ready);
            }
            match measured {
                Ok(row) => println!(
                    "{:<5} {label:<16} {runs:>5} {:>10.3} s {:>10.3} s {:>10.3} s {:>11.1}x",
                    accel.to_string(),
                    row.ready.as_secs_f64(),
                    row.first_ping.as_secs_f64(),
                    row.baseline.as_secs_f64(),
                    row.ready.as_secs_f64() / row.baseline.as_secs_f64()
                ),
                Err(failure) => println!("{:<5} {label:<16} failed: {failure}", accel.to_string()),
            }
        }
    }
    if options.memory_search {
        println!();
        println!("smallest -m reaching `{READY_LINE}` (tcg):");
        for (machine, path, firmware) in PATHS {
            // A boot with too little memory may hang rather than fail: give up well after a
            // normal boot would have been ready.
            let timeout = tcg_ready
                .get(&(machine, path, firmware))
                .map(|ready| (*ready * 5).max(MEMORY_PROBE_MIN_TIMEOUT))
                .unwrap_or_else(|| VmSpec::default_ready_timeout(path));
            let label = path_label(machine, path, firmware);
            match smallest_memory(machine, path, firmware, timeout) {
                Ok(mib) => println!("  {label:<16} {mib} MiB"),
                Err(failure) => println!("  {label:<16} failed: {failure}"),
            }
        }
    }
    Ok(())
}

fn parse_options() -> Outcome<Options> {
    let mut options = Options {
        runs: 5,
        accels: Vec::new(),
        memory_search: true,
    };
    let mut accel = "all".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => {} // passed by `cargo bench`
            "--runs" => {
                options.runs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| Failure::new("--runs needs a positive number"))?
            }
            "--accel" => {
                accel = args
                    .next()
                    .ok_or_else(|| Failure::new("--accel needs tcg, kvm or all"))?
            }
            "--no-memory" => options.memory_search = false,
            other => {
                return Err(Failure::new(format!(
                    "unknown option {other:?} (use --runs N, --accel tcg|kvm|all, --no-memory)"
                )))
            }
        }
    }
    let kvm = kvm_usable();
    options.accels = match accel.as_str() {
        "tcg" => vec![Accel::Tcg],
        "kvm" => {
            kvm.map_err(Failure::new)?;
            vec![Accel::Kvm]
        }
        "all" => match kvm {
            Ok(()) => vec![Accel::Tcg, Accel::Kvm],
            Err(reason) => {
                println!("kvm: not measured ({reason})");
                vec![Accel::Tcg]
            }
        },
        other => {
            return Err(Failure::new(format!(
                "unknown accelerator {other:?}: use tcg, kvm or all"
            )))
        }
    };
    Ok(options)
}

struct Row {
    ready: Duration,
    first_ping: Duration,
    baseline: Duration,
}

fn measure_path(
    machine: Machine,
    path: BootPath,
    firmware: Firmware,
    accel: Accel,
    runs: usize,
    probe: &Artifacts,
) -> Outcome<Row> {
    let timeout = if accel == Accel::Kvm {
        KVM_TIMEOUT
    } else {
        VmSpec::default_ready_timeout(path)
    };
    let mut ready = Vec::new();
    let mut first_ping = Vec::new();
    let mut baseline = Vec::new();
    for _ in 0..runs {
        baseline.push(probe_boot_time(
            machine, path, firmware, accel, probe, timeout,
        )?);
        let (to_ready, to_ping) = kernel_boot_times(machine, path, firmware, accel, timeout)?;
        ready.push(to_ready);
        first_ping.push(to_ping);
    }
    Ok(Row {
        ready: median(ready),
        first_ping: median(first_ping),
        baseline: median(baseline),
    })
}

/// QEMU start to `moat: ready`, and to the first echo reply on the client NIC.
fn kernel_boot_times(
    machine: Machine,
    path: BootPath,
    firmware: Firmware,
    accel: Accel,
    timeout: Duration,
) -> Outcome<(Duration, Duration)> {
    let mut spec = VmSpec::new(machine, path, 2);
    spec.firmware = firmware;
    spec.accel = Some(accel);
    spec.ready_timeout = Some(timeout);
    spec.report_on_drop = false;
    let vm = Vm::start(spec)?;
    vm.console().wait_for_line(READY_LINE, timeout)?;
    let ready = vm.started().elapsed();
    let report = BootReport::parse(&vm.console().lines())?;
    let host = vm.host(PINGED_NIC)?;
    let appliance = appliance_on(&report, PINGED_NIC)?;
    answers_arp(host, appliance, ANSWER_TIMEOUT)?;
    answers_ping(host, appliance, 1, ANSWER_TIMEOUT)?;
    Ok((ready, vm.started().elapsed()))
}

/// QEMU start to the probe guest's last line, booted by the same path.
fn probe_boot_time(
    machine: Machine,
    path: BootPath,
    firmware: Firmware,
    accel: Accel,
    probe: &Artifacts,
    timeout: Duration,
) -> Outcome<Duration> {
    let mut config = QemuConfig::new(machine, accel, path.boot_from(probe, ""));
    config.firmware = firmware;
    let line = config.command_line()?;
    let started = Instant::now();
    let mut child = line.spawn_piped()?;
    let console = Console::attach(
        child
            .stdout
            .take()
            .ok_or_else(|| Failure::new("QEMU stdout not piped"))?,
    );
    let reached = console
        .wait_for_line(DONE_LINE, timeout)
        .map(|()| started.elapsed());
    stop(&mut child);
    reached
}

/// Bisects the guest RAM between 1 MiB and the path's default for the smallest amount that
/// still reaches `moat: ready`.
fn smallest_memory(
    machine: Machine,
    path: BootPath,
    firmware: Firmware,
    timeout: Duration,
) -> Outcome<u32> {
    let boots = |mib: u32| -> bool {
        let mut spec = VmSpec::new(machine, path, 2);
        spec.firmware = firmware;
        spec.accel = Some(Accel::Tcg);
        spec.memory_mib = Some(mib);
        spec.ready_timeout = Some(timeout);
        spec.report_on_drop = false;
        Vm::start(spec)
            .and_then(|vm| vm.wait_ready().map(|_| ()))
            .is_ok()
    };
    let mut enough = path.default_memory_mib();
    if !boots(enough) {
        return Err(Failure::new(format!(
            "does not reach ready with the default {enough} MiB within {} s",
            timeout.as_secs()
        )));
    }
    let mut too_little = 0;
    while enough - too_little > 1 {
        let middle = too_little + (enough - too_little) / 2;
        if boots(middle) {
            enough = middle;
        } else {
            too_little = middle;
        }
    }
    Ok(enough)
}

fn probe_artifacts() -> Outcome<Artifacts> {
    let dir = workspace()?.artifact_dir().join("bench").join("probe");
    std::fs::create_dir_all(&dir)
        .map_err(|error| Failure::new(format!("{}: {error}", dir.display())))?;
    let elf = dir.join("probe-input.elf");
    std::fs::write(&elf, probe_elf(0))
        .map_err(|error| Failure::new(format!("{}: {error}", elf.display())))?;
    Ok(package(&elf, &dir, "")?)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}
