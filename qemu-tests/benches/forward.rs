//! `scripts/bench forward`: what the appliance costs on the path between a client and the
//! internet. Each measure runs client namespace → appliance → uplink namespace (the
//! forwarding ruleset, NAT on, the accelerator the harness picks), and then the same between
//! two namespaces joined by a direct veth pair, in the same run, so the ratio between the two
//! is what the emulated appliance adds on this machine today:
//!
//! - TCP throughput (`iperf3`, one stream);
//! - UDP throughput (`iperf3 --udp`, 1400-byte datagrams, unlimited rate: what arrives);
//! - 64-byte-frame UDP packet rate (18-byte payloads; received packets per second);
//! - ping round-trip time (mean).
//!
//! Next to the appliance's figures: the QEMU process's CPU time over the measure divided by
//! its wall time (the appliance's guest CPU, plus QEMU's own work for the NICs).
//!
//! Needs root (namespaces, taps). Options: `--seconds N` per throughput measure (default 10).

use std::process::ExitCode;
use std::time::Instant;

use qemu_tests::forwarding_ruleset::{ALPHA_NIC, RULESET};
use qemu_tests::notice::is_root;
use qemu_tests::path_measures::{DirectLink, Measure};
use qemu_tests::qemu_process::QemuProcess;
use qemu_tests::tap_appliance::TapAppliance;
use qemu_tests::{Failure, Outcome};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("bench forward: {failure}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Outcome {
    let seconds = parse_options()?;
    if !is_root() {
        return Err(Failure::new(
            "needs root (network namespaces, tap devices): run it as root",
        ));
    }
    let appliance = TapAppliance::boot_quietly("")?;
    let qemu = QemuProcess::find_by_tap(appliance.uplink.tap())?;
    let direct = DirectLink::start()?;
    let through = appliance.client(ALPHA_NIC)?;
    println!(
        "forward: client namespace -> appliance ({}, {}) -> uplink namespace, against a direct veth pair; {seconds} s per throughput measure",
        appliance.vm.describe(),
        RULESET
    );
    println!("appliance/direct: for throughput and packet rate the share the appliance keeps; for the round trip how many times longer it takes");
    println!("QEMU CPU: the QEMU process's CPU time during the appliance's measure / its wall time (100% = one core)");
    println!();
    println!(
        "{:<30} {:>16} {:>16} {:>18} {:>9}",
        "measure", "appliance", "direct veth", "appliance/direct", "QEMU CPU"
    );
    let mut notes = Vec::new();
    for measure in Measure::FORWARD {
        let started = (Instant::now(), qemu.cpu_time()?);
        let appliance_figure = measure.run(through, seconds)?;
        let cpu = (qemu.cpu_time()? - started.1).as_secs_f64() / started.0.elapsed().as_secs_f64();
        let direct_figure = measure.run(&direct.client, seconds)?;
        println!(
            "{:<30} {:>16} {:>16} {:>17.3}x {:>8.1}%",
            measure.name(),
            measure.format(appliance_figure.value),
            measure.format(direct_figure.value),
            appliance_figure.value / direct_figure.value,
            cpu * 100.0
        );
        for (path, figure) in [("appliance", &appliance_figure), ("direct", &direct_figure)] {
            if let Some(note) = &figure.note {
                notes.push(format!("{}, {path}: {note}", measure.name()));
            }
        }
    }
    if !notes.is_empty() {
        println!();
        for note in notes {
            println!("  {note}");
        }
    }
    Ok(())
}

fn parse_options() -> Outcome<u32> {
    let mut seconds = 10;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => {} // passed by `cargo bench`
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| Failure::new("--seconds needs a positive number"))?
            }
            other => {
                return Err(Failure::new(format!(
                    "unknown option {other:?} (use --seconds N)"
                )))
            }
        }
    }
    Ok(seconds)
}
