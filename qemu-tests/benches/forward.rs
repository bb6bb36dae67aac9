//! `scripts/bench forward`: what the appliance costs on the path between a client and the
//! internet, over IPv4 and over IPv6. Each measure runs client namespace → appliance →
//! uplink namespace (the dual-stack ruleset `qemu-tests/rules/dual-stack.rules`: the
//! forwarding suite's, with static IPv6 and NAT66; masquerade on in both families; the
//! accelerator the harness picks), and then the same between two namespaces joined by a
//! direct veth pair addressed in both families, in the same run, so the ratio between the
//! two is what the emulated appliance adds on this machine today; each measure runs over
//! IPv4, then over IPv6:
//!
//! - TCP throughput (`iperf3`, one stream), client to server and server to client;
//! - UDP throughput (`iperf3 --udp`, 1400-byte datagrams, unlimited rate: what arrives);
//! - small-packet UDP rate (18-byte payloads: 64-byte frames over IPv4, 84-byte over IPv6;
//!   received packets per second);
//! - ping round-trip time (mean).
//!
//! The IPv6 rows also give the appliance's IPv6 figure over its IPv4 one (for the round
//! trip, how many times longer), what IPv6 costs next to IPv4 through the same appliance.
//!
//! Next to the appliance's figures: the QEMU process's CPU time over the measure divided by
//! its wall time (the appliance's guest CPU, plus QEMU's own work for the NICs); and first,
//! that share over `--seconds` of no traffic at all (an idle appliance halts: ~0).
//!
//! Needs root (namespaces, taps). Options: `--seconds N` per throughput measure (default
//! 10), `--memory MIB` of guest RAM (default: the harness's).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use std::net::IpAddr;

use qemu_tests::addressing::{INTERNET_SERVER, INTERNET_SERVER6};
use qemu_tests::dual_stack::{address_ipv6, DUAL_STACK, RULESET};
use qemu_tests::forwarding_ruleset::ALPHA_NIC;
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
    let appliance = TapAppliance::boot_quietly(DUAL_STACK, "", memory_mib)?;
    let _iperf6 = address_ipv6(&appliance, ALPHA_NIC)?;
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
    println!("IPv6/IPv4: the appliance's IPv6 figure over its IPv4 one (for the round trip, how many times longer)");
    println!();
    println!(
        "{:<31} {:<5} {:>16} {:>16} {:>18} {:>9} {:>10}",
        "measure", "", "appliance", "direct veth", "appliance/direct", "QEMU CPU", "IPv6/IPv4"
    );
    let idle = (Instant::now(), qemu.cpu_time()?);
    std::thread::sleep(Duration::from_secs(u64::from(seconds)));
    let idle_cpu = (qemu.cpu_time()? - idle.1).as_secs_f64() / idle.0.elapsed().as_secs_f64();
    println!(
        "{:<31} {:<5} {:>16} {:>16} {:>18} {:>8.1}% {:>10}",
        "idle (no traffic)",
        "",
        "-",
        "-",
        "-",
        idle_cpu * 100.0,
        "-"
    );
    let mut notes = Vec::new();
    for measure in Measure::FORWARD {
        let mut ipv4_figure = None;
        for (family, server) in [
            ("IPv4", IpAddr::from(INTERNET_SERVER)),
            ("IPv6", IpAddr::from(INTERNET_SERVER6)),
        ] {
            let name = measure.name_to(server);
            let started = (Instant::now(), qemu.cpu_time()?);
            let appliance_figure = measure.run_to(through, server, seconds)?;
            let cpu =
                (qemu.cpu_time()? - started.1).as_secs_f64() / started.0.elapsed().as_secs_f64();
            let direct_figure = measure.run_to(&direct.client, server, seconds)?;
            let over_ipv4 = match ipv4_figure {
                Some(ipv4) => format!("{:.3}x", appliance_figure.value / ipv4),
                None => "-".to_string(),
            };
            println!(
                "{:<31} {:<5} {:>16} {:>16} {:>17.3}x {:>8.1}% {:>10}",
                name,
                family,
                measure.format(appliance_figure.value),
                measure.format(direct_figure.value),
                appliance_figure.value / direct_figure.value,
                cpu * 100.0,
                over_ipv4
            );
            ipv4_figure.get_or_insert(appliance_figure.value);
            for (path, figure) in [("appliance", &appliance_figure), ("direct", &direct_figure)] {
                if let Some(note) = &figure.note {
                    notes.push(format!("{name} ({family}), {path}: {note}"));
                }
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
