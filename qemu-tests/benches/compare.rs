//! `scripts/bench compare`: Moat side by side with a Linux + nftables firewall VM, measured
//! in one run on the same topology — q35 started by the same firmware (qboot:
//! `qemu_tests::compare::bed::FIRMWARE`), the harness's accelerator, the same `-m` and one
//! vCPU, three virtio-net-pci NICs on taps into network namespaces with real Linux clients —
//! each enforcing the same ruleset (the forwarding suite's Qubes-like policy padded to 10
//! rules, and to 10,000 for the connection-rate row: `qemu_tests::compare::rulesets`), the
//! Linux VM through the nftables translation of the very ruleset Moat compiles. Each firewall
//! is checked to enforce the ruleset with real clients before its figures count; one that
//! does not stops the run. Any other failed step (a boot that times out, a transfer that
//! stalls on the loaded host) is noted under the table, and the run goes on.
//!
//! Per repetition, alternating the two so that the host's load touches both alike: QEMU
//! start to the first forwarded ping (three boots each), TCP both ways (`iperf3`), the
//! 64-byte UDP packet rate at unlimited offered load, the ping round trip, the QEMU
//! process's CPU per Gbit/s of TCP and with no traffic at all, new TCP connections per second at 10 and 10,000 rules,
//! the smallest `-m` that boots and forwards; the Linux VM also with its virtio offloads
//! switched off (`ethtool -K`); Moat also in 8 MiB of RAM, TCP both ways (against its own
//! figures at the usual `-m`, too); and a direct veth pair as the baseline of the path
//! measures. A firewall's figures that are set against its own (8 MiB, 10,000 rules)
//! follow its usual ones at once. The table shows the median (min–max) and the ratio of
//! the medians, with the host's load average during the run.
//!
//! Options: `--runs N` (repetitions, default 3), `--seconds N` (per measure, default 10),
//! `--rules N` (the big ruleset, default 10000), `--memory MIB` (both VMs, default 128),
//! `--no-memory-search`, `--quick` (= `--runs 3 --seconds 3`). Needs root.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use image::accel::Accel;
use qemu_tests::accel::harness_accel;
use qemu_tests::compare::bed::{Bed, Subject, FIRMWARE};
use qemu_tests::compare::policy_check::check_policy;
use qemu_tests::compare::rulesets::padded_ruleset;
use qemu_tests::compare::samples::Samples;
use qemu_tests::forwarding_ruleset::ALPHA_NIC;
use qemu_tests::kernels::{artifacts, KernelVariant};
use qemu_tests::linux_vm::{self, LinuxImage, LinuxVariant};
use qemu_tests::notice::is_root;
use qemu_tests::path_measures::{DirectLink, Measure};
use qemu_tests::{Failure, Outcome};

/// Rules of the small ruleset (the Qubes-like policy, padded).
const SMALL_RULES: usize = 10;
/// How long a VM may take to forward its first packet in a measured boot.
const BOOT_TIMEOUT: Duration = Duration::from_secs(240);
/// Shortest wait for a boot in the memory search.
const MEMORY_PROBE_MIN_TIMEOUT: Duration = Duration::from_secs(20);
/// NICs of both VMs.
const NICS: u8 = 3;
/// The guest RAM of the small-memory rows: Moat must forward at full rate in it (issue 10).
const SMALL_MEMORY_MIB: u32 = 8;
/// Boots of each firewall with the small ruleset per repetition, each a sample of its time
/// to the first forwarded packet.
const BOOTS_PER_REPETITION: usize = 3;
/// Wait after the policy check before the no-traffic CPU is measured.
const IDLE_SETTLE: Duration = Duration::from_secs(1);
/// Shortest no-traffic CPU measure.
const IDLE_LEAST: Duration = Duration::from_secs(10);
/// Console lines shown with a failed measure.
const CONSOLE_TAIL: usize = 12;

struct Options {
    runs: usize,
    seconds: u32,
    big_rules: usize,
    memory_mib: u32,
    memory_search: bool,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("bench compare: {failure}");
            ExitCode::FAILURE
        }
    }
}

/// The rows of the table, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Row {
    FirstForward,
    FirstForwardBig,
    SmallestMemory,
    TcpUp,
    TcpDown,
    SmallPackets,
    RoundTrip,
    CpuPerGbitUp,
    CpuPerGbitDown,
    IdleCpu,
    Connections,
    ConnectionsBig,
    TcpUpOffloadsOff,
    TcpDownOffloadsOff,
    TcpUpSmallMemory,
    TcpDownSmallMemory,
}

impl Row {
    fn label(self, big_rules: usize) -> String {
        match self {
            Row::FirstForward => "QEMU start -> first forwarded ping (lower better)".into(),
            Row::FirstForwardBig => format!("  the same, {big_rules} rules"),
            Row::SmallestMemory => "smallest -m that boots and forwards (lower better)".into(),
            Row::TcpUp => "TCP client -> world (iperf3)".into(),
            Row::TcpDown => "TCP world -> client (iperf3 -R)".into(),
            Row::SmallPackets => "UDP 64-byte frames, unlimited offered load".into(),
            Row::RoundTrip => "ping RTT through (lower better)".into(),
            Row::CpuPerGbitUp => "QEMU CPU per Gbit/s, client -> world (lower better)".into(),
            Row::CpuPerGbitDown => "QEMU CPU per Gbit/s, world -> client (lower better)".into(),
            Row::IdleCpu => "QEMU CPU with no traffic, % of a core (lower better)".into(),
            Row::Connections => format!("new TCP connections/s, {SMALL_RULES} rules"),
            Row::ConnectionsBig => format!("new TCP connections/s, {big_rules} rules"),
            Row::TcpUpOffloadsOff => "TCP client -> world, Linux offloads off".into(),
            Row::TcpDownOffloadsOff => "TCP world -> client, Linux offloads off".into(),
            Row::TcpUpSmallMemory => format!("TCP client -> world, Moat at -m {SMALL_MEMORY_MIB}"),
            Row::TcpDownSmallMemory => {
                format!("TCP world -> client, Moat at -m {SMALL_MEMORY_MIB}")
            }
        }
    }

    /// A figure of the row, without its unit.
    fn number(self, value: f64) -> String {
        match self {
            Row::FirstForward | Row::FirstForwardBig => format!("{value:.3}"),
            Row::CpuPerGbitUp | Row::CpuPerGbitDown => format!("{value:.2}"),
            Row::IdleCpu => format!("{:.2}", value * 100.0),
            Row::SmallestMemory | Row::Connections | Row::ConnectionsBig => format!("{value:.0}"),
            Row::TcpUp
            | Row::TcpDown
            | Row::TcpUpOffloadsOff
            | Row::TcpDownOffloadsOff
            | Row::TcpUpSmallMemory
            | Row::TcpDownSmallMemory => format!("{:.0}", value / 1e6),
            Row::SmallPackets => format!("{:.1}", value / 1e3),
            Row::RoundTrip => format!("{value:.3}"),
        }
    }

    /// The unit of [`Row::number`].
    fn unit(self) -> &'static str {
        match self {
            Row::FirstForward | Row::FirstForwardBig => "s",
            Row::SmallestMemory => "MiB",
            Row::TcpUp
            | Row::TcpDown
            | Row::TcpUpOffloadsOff
            | Row::TcpDownOffloadsOff
            | Row::TcpUpSmallMemory
            | Row::TcpDownSmallMemory => "Mbit/s",
            Row::SmallPackets => "kpps",
            Row::RoundTrip => "ms",
            Row::CpuPerGbitUp | Row::CpuPerGbitDown => "cores",
            Row::IdleCpu => "%",
            Row::Connections | Row::ConnectionsBig => "/s",
        }
    }

    /// `samples` as `median (min–max) unit`.
    fn cell(self, samples: &Samples) -> String {
        if samples.is_empty() {
            return "–".into();
        }
        format!("{} {}", samples.cell(|v| self.number(v)), self.unit())
    }
}

/// Which column a figure goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Column {
    Moat,
    Linux,
    Direct,
}

#[derive(Default)]
struct Table {
    cells: BTreeMap<(Row, Column), Samples>,
    notes: Vec<String>,
    /// A firewall that does not enforce the ruleset: the run stops.
    violation: Option<Failure>,
    /// The firewalls whose enforcement real clients have checked (on their first boot that
    /// got that far).
    checked: Vec<Column>,
}

impl Table {
    /// Runs one step of a repetition. A step that fails (a boot that times out, a transfer
    /// that stalls on the loaded host) is noted under the table and the run goes on; a
    /// firewall that does not enforce the ruleset stops it.
    fn attempt(&mut self, what: &str, step: impl FnOnce(&mut Table) -> Outcome) -> Outcome {
        if let Err(failure) = step(self) {
            if let Some(violation) = self.violation.take() {
                return Err(violation);
            }
            println!("  {what} failed: {failure}");
            self.notes.push(format!("{what} failed: {failure}"));
        }
        Ok(())
    }

    fn push(&mut self, row: Row, column: Column, value: f64) {
        self.cells.entry((row, column)).or_default().push(value);
    }

    fn get(&self, row: Row, column: Column) -> Samples {
        self.cells.get(&(row, column)).cloned().unwrap_or_default()
    }
}

fn run() -> Outcome {
    let options = parse_options()?;
    if !is_root() {
        return Err(Failure::new(
            "needs root (network namespaces, tap devices): run it as root",
        ));
    }
    let accel = harness_accel()?;
    let load_at_start = load_average();
    println!("compare: building both firewalls (Moat kernels, Linux images from Debian packages)");
    let small_rules = padded_ruleset(SMALL_RULES)?;
    let big_rules = padded_ruleset(options.big_rules)?;
    let moat_small = moat_variant("compare-small", &small_rules);
    let moat_big = moat_variant("compare-big", &big_rules);
    let built = Instant::now();
    artifacts(moat_small)?;
    artifacts(moat_big)?;
    let moat_build = built.elapsed();
    let linux = |name: &str, rules: &std::path::Path, offloads_off| {
        linux_vm::build(&LinuxVariant {
            name: name.to_string(),
            rules: rules.to_path_buf(),
            nics: NICS,
            offloads_off,
        })
    };
    let linux_small = linux("compare-small", &small_rules, false)?;
    let linux_small_off = linux("compare-small-offloads-off", &small_rules, true)?;
    let linux_big = linux("compare-big", &big_rules, false)?;
    println!(
        "  Moat: {} and {} built in {:.1} s; Linux {}: {} nftables filter rules from {} and {} from {}",
        small_rules.display(),
        big_rules.display(),
        moat_build.as_secs_f64(),
        linux_small.release,
        linux_small.filter_rules,
        SMALL_RULES,
        linux_big.filter_rules,
        options.big_rules
    );
    println!("  Linux VM packages: {}", linux_small.packages.join(", "));
    println!(
        "compare: {accel}, q35 with {FIRMWARE} firmware, -m {} and 1 vCPU each, {NICS} virtio-net-pci NICs on taps; {} repetitions, {} s per measure",
        options.memory_mib, options.runs, options.seconds
    );
    let mut table = Table::default();
    let mut loads = vec![load_at_start];
    for repetition in 1..=options.runs {
        println!("compare: repetition {repetition} of {}", options.runs);
        // Each firewall's figures against its own (Moat at -m 8, either at 10,000 rules) are
        // measured right after its usual ones, so that the host has changed least between.
        for (small, big, column) in [
            (
                Subject::Moat(moat_small),
                Subject::Moat(moat_big),
                Column::Moat,
            ),
            (
                Subject::Linux(&linux_small),
                Subject::Linux(&linux_big),
                Column::Linux,
            ),
        ] {
            let name = small.name();
            table.attempt(&format!("repetition {repetition}, {name}"), |table| {
                measure_firewall(small, column, accel, &options, table)
            })?;
            table.attempt(&format!("repetition {repetition}, {name} boots"), |table| {
                measure_boots(small, column, accel, &options, table)
            })?;
            if let Subject::Moat(variant) = small {
                table.attempt(
                    &format!("repetition {repetition}, Moat at -m {SMALL_MEMORY_MIB}"),
                    |table| measure_small_memory(variant, accel, &options, table),
                )?;
            }
            table.attempt(
                &format!("repetition {repetition}, {}", big.name()),
                |table| measure_big(big, column, accel, &options, table),
            )?;
            loads.push(load_average());
        }
        table.attempt(
            &format!("repetition {repetition}, Linux with offloads off"),
            |table| measure_offloads_off(&linux_small_off, accel, &options, table),
        )?;
        table.attempt(&format!("repetition {repetition}, direct veth"), |table| {
            measure_direct(&options, table)
        })?;
        if options.memory_search {
            for (subject, column) in [
                (Subject::Moat(moat_small), Column::Moat),
                (Subject::Linux(&linux_small), Column::Linux),
            ] {
                table.attempt(
                    &format!("repetition {repetition}, {} memory search", subject.name()),
                    |table| {
                        let boot = table.get(Row::FirstForward, column).max().unwrap_or(60.0);
                        let timeout =
                            Duration::from_secs_f64(boot * 5.0).max(MEMORY_PROBE_MIN_TIMEOUT);
                        let mib = smallest_memory(subject, accel, options.memory_mib, timeout)?;
                        println!("  {}: forwards with -m {mib}", subject.name());
                        table.push(Row::SmallestMemory, column, f64::from(mib));
                        Ok(())
                    },
                )?;
            }
        }
        loads.push(load_average());
    }
    print_table(&table, &options, &loads);
    Ok(())
}

/// A Moat kernel built with the ruleset at `rules`.
fn moat_variant(name: &'static str, rules: &std::path::Path) -> KernelVariant {
    // A variant names its ruleset with a `'static` path; the bench builds two, once.
    let rules: &'static str = Box::leak(rules.to_string_lossy().into_owned().into_boxed_str());
    KernelVariant {
        name,
        rules: Some(rules),
        features: &[],
    }
}

/// Boots `subject` with its servers, waits until it is ready, and records its time to the
/// first forwarded packet in `row`.
fn boot(
    subject: Subject,
    column: Column,
    row: Row,
    accel: Accel,
    options: &Options,
    table: &mut Table,
) -> Outcome<Bed> {
    let bed = Bed::boot(subject, accel, options.memory_mib, true, BOOT_TIMEOUT)?;
    bed.firewall.wait_ready(BOOT_TIMEOUT)?;
    table.push(row, column, bed.first_forward.as_secs_f64());
    Ok(bed)
}

/// Boots one firewall with the small ruleset [`BOOTS_PER_REPETITION`] - 1 more times, for
/// its time to the first forwarded packet alone: a boot takes a tenth of a second to a few
/// seconds, and one sample per repetition left the median at the mercy of one slow boot
/// (a loaded host, the host's own first touch of the guest's memory).
fn measure_boots(
    subject: Subject,
    column: Column,
    accel: Accel,
    options: &Options,
    table: &mut Table,
) -> Outcome {
    for _ in 1..BOOTS_PER_REPETITION {
        boot_small(subject, column, accel, options, table)?;
    }
    Ok(())
}

/// Boots one firewall with the small ruleset, its time to the first forwarded packet
/// recorded and shown.
fn boot_small(
    subject: Subject,
    column: Column,
    accel: Accel,
    options: &Options,
    table: &mut Table,
) -> Outcome<Bed> {
    let bed = boot(subject, column, Row::FirstForward, accel, options, table)?;
    println!(
        "  {}: first forwarded ping {:.2} s after QEMU started",
        subject.name(),
        bed.first_forward.as_secs_f64()
    );
    Ok(bed)
}

/// Boots one firewall with the small ruleset and runs every path measure through it.
fn measure_firewall(
    subject: Subject,
    column: Column,
    accel: Accel,
    options: &Options,
    table: &mut Table,
) -> Outcome {
    let bed = boot_small(subject, column, accel, options, table)?;
    if !table.checked.contains(&column) {
        let checks = check_policy(&bed).map_err(|failure| {
            let failure = Failure::new(format!("{}: {failure}", subject.name()));
            table.violation = Some(Failure::new(failure.message()));
            failure
        })?;
        println!(
            "  {}: enforces the ruleset ({checks} checks by real clients)",
            subject.name()
        );
        table.checked.push(column);
    }
    measure_idle(&bed, subject, column, options, table)?;
    let client = bed.client(ALPHA_NIC)?;
    for (measure, row, cpu_row) in [
        (Measure::TcpThroughput, Row::TcpUp, Some(Row::CpuPerGbitUp)),
        (
            Measure::TcpThroughputReverse,
            Row::TcpDown,
            Some(Row::CpuPerGbitDown),
        ),
        (Measure::SmallPacketRate, Row::SmallPackets, None),
        (Measure::PingRoundTrip, Row::RoundTrip, None),
        (Measure::ConnectionRate, Row::Connections, None),
    ] {
        let started = (Instant::now(), bed.qemu.cpu_time()?);
        let figure = match measure.run(client, options.seconds) {
            Ok(figure) => figure,
            Err(failure) => {
                let lines = bed.firewall.lines();
                let tail = lines[lines.len().saturating_sub(CONSOLE_TAIL)..].join("\n    | ");
                let note = format!(
                    "{}: {} failed: {failure}\n    console, last lines:\n    | {tail}",
                    subject.name(),
                    measure.name()
                );
                println!("  {note}");
                table.notes.push(note);
                continue;
            }
        };
        let cores =
            (bed.qemu.cpu_time()? - started.1).as_secs_f64() / started.0.elapsed().as_secs_f64();
        table.push(row, column, figure.value);
        if let Some(cpu_row) = cpu_row {
            table.push(cpu_row, column, cores / (figure.value / 1e9).max(1e-9));
        }
        println!(
            "  {}: {} {} (QEMU CPU {:.0}%){}",
            subject.name(),
            measure.name(),
            measure.format(figure.value),
            cores * 100.0,
            figure
                .note
                .map(|note| format!("; {note}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// The QEMU process's CPU (cores) while no client sends anything, over a measure's time
/// and at least [`IDLE_LEAST`] (the kernel counts CPU time in ticks of 10 ms: 0.1% of a
/// core over 10 s), once the firewall has had [`IDLE_SETTLE`] to finish what the policy
/// check left. A firewall that polls or ticks while idle shows here.
fn measure_idle(
    bed: &Bed,
    subject: Subject,
    column: Column,
    options: &Options,
    table: &mut Table,
) -> Outcome {
    std::thread::sleep(IDLE_SETTLE);
    let started = (Instant::now(), bed.qemu.cpu_time()?);
    std::thread::sleep(Duration::from_secs(u64::from(options.seconds)).max(IDLE_LEAST));
    let cores =
        (bed.qemu.cpu_time()? - started.1).as_secs_f64() / started.0.elapsed().as_secs_f64();
    table.push(Row::IdleCpu, column, cores);
    println!(
        "  {}: QEMU CPU with no traffic {:.2}% of a core",
        subject.name(),
        cores * 100.0
    );
    Ok(())
}

/// Boots one firewall with the big ruleset: its time to the first forwarded packet and its
/// new connections per second.
fn measure_big(
    subject: Subject,
    column: Column,
    accel: Accel,
    options: &Options,
    table: &mut Table,
) -> Outcome {
    let bed = boot(subject, column, Row::FirstForwardBig, accel, options, table)?;
    let figure = Measure::ConnectionRate.run(bed.client(ALPHA_NIC)?, options.seconds)?;
    println!(
        "  {}: first forwarded ping {:.2} s, {} new connections/s ({})",
        subject.name(),
        bed.first_forward.as_secs_f64(),
        figure.value.round(),
        figure.note.unwrap_or_default()
    );
    table.push(Row::ConnectionsBig, column, figure.value);
    Ok(())
}

/// The Linux VM with its offloads switched off: TCP both ways.
fn measure_offloads_off(
    image: &LinuxImage,
    accel: Accel,
    options: &Options,
    table: &mut Table,
) -> Outcome {
    let subject = Subject::Linux(image);
    let bed = Bed::boot(subject, accel, options.memory_mib, true, BOOT_TIMEOUT)?;
    bed.firewall.wait_ready(BOOT_TIMEOUT)?;
    for line in bed.firewall.lines() {
        let note = format!("Linux, offloads off: {line}");
        let relevant = line.contains("offloads") || line.contains("cannot be switched off");
        if relevant && !table.notes.contains(&note) {
            table.notes.push(note);
        }
    }
    let rows = [Row::TcpUpOffloadsOff, Row::TcpDownOffloadsOff];
    measure_tcp(
        &bed,
        "Linux, offloads off",
        rows,
        Column::Linux,
        options,
        table,
    )
}

/// Moat in [`SMALL_MEMORY_MIB`] of RAM: TCP both ways.
fn measure_small_memory(
    variant: KernelVariant,
    accel: Accel,
    options: &Options,
    table: &mut Table,
) -> Outcome {
    let subject = Subject::Moat(variant);
    let bed = Bed::boot(subject, accel, SMALL_MEMORY_MIB, true, BOOT_TIMEOUT)?;
    bed.firewall.wait_ready(BOOT_TIMEOUT)?;
    let rows = [Row::TcpUpSmallMemory, Row::TcpDownSmallMemory];
    let what = format!("Moat at -m {SMALL_MEMORY_MIB}");
    measure_tcp(&bed, &what, rows, Column::Moat, options, table)
}

/// TCP through `bed`'s firewall, client to world and back, into `rows` of `column`.
fn measure_tcp(
    bed: &Bed,
    what: &str,
    rows: [Row; 2],
    column: Column,
    options: &Options,
    table: &mut Table,
) -> Outcome {
    let client = bed.client(ALPHA_NIC)?;
    let measures = [Measure::TcpThroughput, Measure::TcpThroughputReverse];
    for (measure, row) in measures.into_iter().zip(rows) {
        let figure = measure.run(client, options.seconds)?;
        println!(
            "  {what}: {} {}",
            measure.name(),
            measure.format(figure.value)
        );
        table.push(row, column, figure.value);
    }
    Ok(())
}

/// The direct veth pair: the path measures without any firewall.
fn measure_direct(options: &Options, table: &mut Table) -> Outcome {
    let direct = DirectLink::start()?;
    for (measure, row) in [
        (Measure::TcpThroughput, Row::TcpUp),
        (Measure::TcpThroughputReverse, Row::TcpDown),
        (Measure::SmallPacketRate, Row::SmallPackets),
        (Measure::PingRoundTrip, Row::RoundTrip),
    ] {
        let figure = measure.run(&direct.client, options.seconds)?;
        table.push(row, Column::Direct, figure.value);
    }
    Ok(())
}

/// Bisects the guest RAM between 0 and `most` MiB for the smallest amount with which the
/// firewall boots and forwards a ping.
fn smallest_memory(subject: Subject, accel: Accel, most: u32, timeout: Duration) -> Outcome<u32> {
    let forwards = |mib: u32| Bed::boot(subject, accel, mib, false, timeout).is_ok();
    if !forwards(most) {
        return Err(Failure::new(format!(
            "{} does not forward with -m {most} within {} s",
            subject.name(),
            timeout.as_secs()
        )));
    }
    let (mut too_little, mut enough) = (0, most);
    while enough - too_little > 1 {
        let middle = too_little + (enough - too_little) / 2;
        if forwards(middle) {
            enough = middle;
        } else {
            too_little = middle;
        }
    }
    Ok(enough)
}

/// The host's load averages (`/proc/loadavg`'s first three fields).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "?".into())
}

fn print_table(table: &Table, options: &Options, loads: &[String]) {
    println!();
    println!(
        "Moat / Linux + nftables, same topology, median (min–max) over {} repetitions, {} s per measure",
        options.runs, options.seconds
    );
    println!(
        "{:<52} {:>28} {:>28} {:>10} {:>14}",
        "measure", "Moat", "Linux VM", "Moat/Linux", "direct veth"
    );
    let rows = [
        Row::FirstForward,
        Row::FirstForwardBig,
        Row::SmallestMemory,
        Row::TcpUp,
        Row::TcpDown,
        Row::SmallPackets,
        Row::RoundTrip,
        Row::CpuPerGbitUp,
        Row::CpuPerGbitDown,
        Row::IdleCpu,
        Row::Connections,
        Row::ConnectionsBig,
        Row::TcpUpOffloadsOff,
        Row::TcpDownOffloadsOff,
        Row::TcpUpSmallMemory,
        Row::TcpDownSmallMemory,
    ];
    for row in rows {
        // The offloads-off rows compare Moat's figure with Linux's without offloads; the
        // small-memory rows, Moat's figure in little RAM with Linux's at its usual -m.
        let (moat_row, linux_row, direct_row) = match row {
            Row::TcpUpOffloadsOff => (Row::TcpUp, row, Row::TcpUp),
            Row::TcpDownOffloadsOff => (Row::TcpDown, row, Row::TcpDown),
            Row::TcpUpSmallMemory => (row, Row::TcpUp, Row::TcpUp),
            Row::TcpDownSmallMemory => (row, Row::TcpDown, Row::TcpDown),
            other => (other, other, other),
        };
        let moat = table.get(moat_row, Column::Moat);
        let linux = table.get(linux_row, Column::Linux);
        let direct = table.get(direct_row, Column::Direct);
        let ratio = match (moat.median(), linux.median()) {
            // Three places where a ratio is far from 1 (the boot's target is 1/30).
            (Some(moat), Some(linux)) if linux > 0.0 && moat / linux < 0.1 => {
                format!("{:.3}", moat / linux)
            }
            (Some(moat), Some(linux)) if linux > 0.0 => format!("{:.2}", moat / linux),
            _ => "–".into(),
        };
        let direct = match direct.median() {
            Some(median) => format!("{} {}", row.number(median), row.unit()),
            None => String::new(),
        };
        println!(
            "{:<52} {:>28} {:>28} {:>10} {:>14}",
            row.label(options.big_rules),
            row.cell(&moat),
            row.cell(&linux),
            ratio,
            direct
        );
    }
    // Full rate in little RAM: Moat's own figures at the two memory sizes.
    for (small, usual, direction) in [
        (Row::TcpUpSmallMemory, Row::TcpUp, "client -> world"),
        (Row::TcpDownSmallMemory, Row::TcpDown, "world -> client"),
    ] {
        let medians = (
            table.get(small, Column::Moat).median(),
            table.get(usual, Column::Moat).median(),
        );
        if let (Some(small), Some(usual)) = medians {
            println!(
                "{:<52} {:>28} {:>28} {:>10}",
                format!(
                    "  Moat's TCP {direction}, -m {SMALL_MEMORY_MIB} / -m {}",
                    options.memory_mib
                ),
                "",
                "",
                format!("{:.2}", small / usual.max(1.0))
            );
        }
    }
    println!();
    println!(
        "host load average (1, 5, 15 min) during the run: {}",
        loads.join(" | ")
    );
    for note in &table.notes {
        println!("  {note}");
    }
}

fn parse_options() -> Outcome<Options> {
    let mut options = Options {
        runs: 3,
        seconds: 10,
        big_rules: 10_000,
        memory_mib: 128,
        memory_search: true,
    };
    let mut args = std::env::args().skip(1);
    let number = |args: &mut dyn Iterator<Item = String>, option: &str| {
        args.next()
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| Failure::new(format!("{option} needs a positive number")))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => {} // passed by `cargo bench`
            "--runs" => options.runs = number(&mut args, "--runs")? as usize,
            "--seconds" => options.seconds = number(&mut args, "--seconds")? as u32,
            "--rules" => options.big_rules = number(&mut args, "--rules")? as usize,
            "--memory" => options.memory_mib = number(&mut args, "--memory")? as u32,
            "--no-memory-search" => options.memory_search = false,
            "--quick" => {
                options.runs = 3;
                options.seconds = 3;
            }
            other => {
                return Err(Failure::new(format!(
                    "unknown option {other:?} (use --runs N, --seconds N, --rules N, --memory MIB, --no-memory-search, --quick)"
                )))
            }
        }
    }
    if options.big_rules < SMALL_RULES {
        return Err(Failure::new(format!(
            "--rules must be at least {SMALL_RULES}"
        )));
    }
    Ok(options)
}
