//! `scripts/bench forward`: what the appliance costs on the path between a client and the
//! internet. Each measure runs client namespace → appliance → uplink namespace (the
//! forwarding ruleset, NAT on, the accelerator the harness picks), and then the same between
//! two namespaces joined by a direct veth pair, in the same run, so the ratio between the two
//! is what the emulated appliance adds on this machine today:
//!
//! - TCP throughput (`iperf3`, one stream), client to server and server to client;
//! - UDP throughput (`iperf3 --udp`, 1400-byte datagrams, unlimited rate: what arrives);
//! - 64-byte-frame UDP packet rate (18-byte payloads; received packets per second);
//! - ping round-trip time (mean).
//!
//! Next to the appliance's figures: the QEMU process's CPU time over the measure divided by
//! its wall time (the appliance's guest CPU, plus QEMU's own work for the NICs); and first,
//! that share over `--seconds` of no traffic at all (an idle appliance halts: ~0).
//!
//! Needs root (namespaces, taps). Options: `--seconds N` per throughput measure (default
//! 10), `--memory MIB` of guest RAM (default: the harness's).

use std::process::ExitCode;
use std::time::{Duration, Instant};

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

/// What the command line asks for.
struct Options {
    seconds: u32,
    memory_mib: Option<u32>,
}

fn run() -> Outcome {
    let Options {
        seconds,
        memory_mib,
    } = parse_options()?;
    if !is_root() {
        return Err(Failure::new(
            "needs root (network namespaces, tap devices): run it as root",
        ));
    }
    let appliance = TapAppliance::boot_quietly("", memory_mib)?;
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
    let idle = (Instant::now(), qemu.cpu_time()?);
    std::thread::sleep(Duration::from_secs(u64::from(seconds)));
    let idle_cpu = (qemu.cpu_time()? - idle.1).as_secs_f64() / idle.0.elapsed().as_secs_f64();
    println!(
        "{:<30} {:>16} {:>16} {:>18} {:>8.1}%",
        "idle (no traffic)",
        "-",
        "-",
        "-",
        idle_cpu * 100.0
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

fn parse_options() -> Outcome<Options> {
    let mut seconds = 10;
    let mut memory_mib = None;
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
            "--memory" => {
                memory_mib = Some(
                    args.next()
                        .and_then(|n| n.parse().ok())
                        .filter(|n| *n > 0)
                        .ok_or_else(|| Failure::new("--memory needs a positive number of MiB"))?,
                )
            }
            other => {
                return Err(Failure::new(format!(
                    "unknown option {other:?} (use --seconds N, --memory MIB)"
                )))
            }
        }
    }
    Ok(Options {
        seconds,
        memory_mib,
    })
}
