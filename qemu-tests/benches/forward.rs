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

use std::net::SocketAddrV4;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use qemu_tests::addressing::{appliance_address, host_address, INTERNET_SERVER};
use qemu_tests::client_tools::parse_round_trip;
use qemu_tests::forwarding_ruleset::{ALPHA_NIC, IPERF_PORT, RULESET};
use qemu_tests::iperf::{IperfLoad, IperfRun, IperfServer};
use qemu_tests::notice::is_root;
use qemu_tests::tap_appliance::TapAppliance;
use qemu_tests::test_host::TestHost;
use qemu_tests::{Failure, Outcome};
use smoltcp::wire::Ipv4Cidr;

/// UDP payload of the throughput measure: a 1428-byte IP packet, under the 1500-byte MTU.
const UDP_LENGTH: usize = 1400;
/// UDP payload that makes a 64-byte Ethernet frame (14 + 20 + 8 + 18 + 4-byte FCS).
const SMALL_UDP_LENGTH: usize = 18;
/// Pings per second (`ping -i 0.2`, as `TestHost::ping` sends them).
const PINGS_PER_SECOND: u32 = 5;

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
    for measure in Measure::ALL {
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

/// One measure, run the same way on both paths.
#[derive(Debug, Clone, Copy)]
enum Measure {
    TcpThroughput,
    UdpThroughput,
    SmallPacketRate,
    PingRoundTrip,
}

/// A measured figure, and anything worth saying about it (losses).
struct Figure {
    value: f64,
    note: Option<String>,
}

impl Measure {
    const ALL: [Measure; 4] = [
        Measure::TcpThroughput,
        Measure::UdpThroughput,
        Measure::SmallPacketRate,
        Measure::PingRoundTrip,
    ];

    fn name(self) -> &'static str {
        match self {
            Measure::TcpThroughput => "TCP throughput",
            Measure::UdpThroughput => "UDP throughput (1400 B)",
            Measure::SmallPacketRate => "UDP 64-byte frames",
            Measure::PingRoundTrip => "ping round trip (mean)",
        }
    }

    fn format(self, value: f64) -> String {
        match self {
            Measure::TcpThroughput | Measure::UdpThroughput => {
                format!("{:.1} Mbit/s", value / 1e6)
            }
            Measure::SmallPacketRate => format!("{:.1} kpps", value / 1e3),
            Measure::PingRoundTrip => format!("{value:.3} ms"),
        }
    }

    /// Runs the measure from `client` to the internet server at [`INTERNET_SERVER`].
    fn run(self, client: &TestHost, seconds: u32) -> Outcome<Figure> {
        let server = SocketAddrV4::new(INTERNET_SERVER, IPERF_PORT);
        let iperf = |load| IperfRun {
            server,
            seconds,
            load,
        };
        match self {
            Measure::TcpThroughput => {
                let report = iperf(IperfLoad::Tcp).run(client)?;
                Ok(Figure {
                    value: report.received_bits_per_second(),
                    note: None,
                })
            }
            Measure::UdpThroughput | Measure::SmallPacketRate => {
                let length = if matches!(self, Measure::UdpThroughput) {
                    UDP_LENGTH
                } else {
                    SMALL_UDP_LENGTH
                };
                let report = iperf(IperfLoad::Udp {
                    bits_per_second: 0,
                    length,
                })
                .run(client)?;
                let (received, lost) = (
                    report.received_packets.unwrap_or_default(),
                    report.lost_packets.unwrap_or_default(),
                );
                let loss = 100.0 * lost as f64 / (received + lost).max(1) as f64;
                let value = if matches!(self, Measure::UdpThroughput) {
                    report.received_bits_per_second()
                } else {
                    report.received_packets_per_second().unwrap_or_default()
                };
                Ok(Figure {
                    value,
                    note: Some(format!("{received} datagrams received, {loss:.1}% lost")),
                })
            }
            Measure::PingRoundTrip => {
                let count = seconds * PINGS_PER_SECOND;
                let summary = client.ping(INTERNET_SERVER, count)?;
                let round_trip = parse_round_trip(&summary.output).ok_or_else(|| {
                    Failure::new(format!(
                        "ping printed no round-trip times:\n{}",
                        summary.output
                    ))
                })?;
                Ok(Figure {
                    value: round_trip.avg,
                    note: Some(format!(
                        "{} of {} replies, min {:.3} ms, max {:.3} ms",
                        summary.received, summary.transmitted, round_trip.min, round_trip.max
                    )),
                })
            }
        }
    }
}

/// The baseline: a client namespace and a server namespace joined by a veth pair, addressed
/// like the appliance's client network (the server plays the client's gateway and holds the
/// internet server's address), with an iperf3 server.
struct DirectLink {
    _iperf: IperfServer,
    client: TestHost,
    _server: TestHost,
}

impl DirectLink {
    fn start() -> Outcome<DirectLink> {
        let (client, server) = TestHost::veth_pair()?;
        let network = appliance_address(ALPHA_NIC);
        client.attach(Ipv4Cidr::new(host_address(ALPHA_NIC), network.prefix_len()))?;
        server.attach(network)?;
        server.run_checked(
            "ip",
            &["addr", "add", &format!("{INTERNET_SERVER}/32"), "dev", "lo"],
        )?;
        let gateway = network.address().to_string();
        client.run_checked("ip", &["route", "add", "default", "via", &gateway])?;
        let iperf = IperfServer::start(&server, SocketAddrV4::new(INTERNET_SERVER, IPERF_PORT))?;
        Ok(DirectLink {
            _iperf: iperf,
            client,
            _server: server,
        })
    }
}

/// The QEMU process running the appliance, for its CPU time.
struct QemuProcess {
    pid: u32,
    ticks_per_second: f64,
}

impl QemuProcess {
    /// Finds the QEMU whose command line opens tap `tap` (tap names are unique to this
    /// process's test hosts).
    fn find_by_tap(tap: &str) -> Outcome<QemuProcess> {
        let needle = format!("ifname={tap},");
        let entries = std::fs::read_dir("/proc")
            .map_err(|error| Failure::new(format!("reading /proc: {error}")))?;
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let mut args = cmdline
                .split(|&byte| byte == 0)
                .map(String::from_utf8_lossy);
            let is_qemu = args
                .next()
                .is_some_and(|program| program.contains("qemu-system"));
            if is_qemu && args.any(|arg| arg.contains(&needle)) {
                // SAFETY: sysconf(3) takes no pointers and has no preconditions.
                let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
                return Ok(QemuProcess {
                    pid,
                    ticks_per_second: if ticks > 0 { ticks as f64 } else { 100.0 },
                });
            }
        }
        Err(Failure::new(format!("no QEMU process opens tap {tap}")))
    }

    /// User and system CPU time so far.
    fn cpu_time(&self) -> Outcome<Duration> {
        let path = format!("/proc/{}/stat", self.pid);
        let stat = std::fs::read_to_string(&path)
            .map_err(|error| Failure::new(format!("reading {path}: {error}")))?;
        // The fields after the command name (which may hold spaces) start with the state
        // (field 3); utime and stime are fields 14 and 15.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |index: usize| {
            fields
                .get(index)
                .and_then(|field| field.parse::<u64>().ok())
        };
        match (ticks(11), ticks(12)) {
            (Some(user), Some(system)) => Ok(Duration::from_secs_f64(
                (user + system) as f64 / self.ticks_per_second,
            )),
            _ => Err(Failure::new(format!(
                "{path} has no utime and stime: {stat}"
            ))),
        }
    }
}
