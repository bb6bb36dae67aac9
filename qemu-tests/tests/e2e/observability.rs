//! What the appliance tells about the traffic it sees: per-rule and per-reason counters on
//! the console (on a schedule and at shutdown), and the packet capture of what it dropped,
//! read back with `tcpdump -r` — each checked against the traffic the test sent.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::time::Duration;

use dataplane::testutil::datagram::Ipv4Frame;
use image::qemu::Machine;
use qemu_tests::addressing::INTERNET_SERVER;
use qemu_tests::boot_report::SHUTDOWN_LINE;
use qemu_tests::console::Console;
use qemu_tests::counter_lines::{latest_drops, latest_rules, parse_capture, RuleStats};
use qemu_tests::expect::ANSWER_TIMEOUT;
use qemu_tests::forwarding_ruleset::{
    position_of, ALPHA_NIC, BLOCKED_PORT, BLOCK_RULE, UPLINK_NIC,
};
use qemu_tests::pcap_file::read_with_tcpdump;
use qemu_tests::segmented_appliance::SegmentedAppliance;
use qemu_tests::{ensure, Failure, Outcome};
use smoltcp::wire::Ipv4Address;

use crate::forwarding::{host_at, web_server};
use crate::forwarding_drops::has_seq;

/// The rule that passes the clients' traffic to the uplink (the marker's).
const PASS_RULE: &str = "pass from { lan1, lan2 } to uplink";
/// Sequence numbers that tell the test's SYNs apart in the capture.
const BLOCKED_ISN: u32 = 0xb10c_0000;
const SPOOFED_ISN: u32 = 0x5900_f000;
const MARKER_ISN: u32 = 0x0a00_0001;
const BLOCKED_SYNS: u32 = 3;
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// IP bytes of a frame the test sent.
fn ip_bytes(frame: &Ipv4Frame) -> u64 {
    frame.datagram.emit().len() as u64
}

/// Waits for counter lines whose latest totals `wanted` accepts.
fn wait_for_counters(
    console: &Console,
    what: &str,
    wanted: impl Fn(&BTreeMap<usize, RuleStats>, &BTreeMap<String, u64>) -> bool,
) -> Outcome {
    console.wait_until(what, ANSWER_TIMEOUT, |snapshot| {
        let rules = latest_rules(snapshot.lines);
        let drops = latest_drops(snapshot.lines);
        wanted(&rules, &drops).then_some(Ok(()))
    })
}

/// The counters of the rule at ruleset line `line`, as `lines` last reported them.
fn rule_at(lines: &[String], line: usize) -> Outcome<RuleStats> {
    latest_rules(lines)
        .remove(&line)
        .ok_or_else(|| Failure::new(format!("no counter line for the rule at line {line}")))
}

#[test]
fn dropped_packets_are_in_the_pcap_and_the_counters_add_up_to_the_traffic_sent() -> Outcome {
    let mut spec = SegmentedAppliance::spec(Machine::Q35);
    spec.pcap = true;
    spec.kernel_cmdline = "moat.stats=1".into();
    let mut appliance = SegmentedAppliance::boot_spec(spec)?;
    let blocked_line = position_of(BLOCK_RULE)?.line;
    let pass_line = position_of(PASS_RULE)?.line;

    let blocked_server = SocketAddrV4::new(INTERNET_SERVER, BLOCKED_PORT);
    let blocked = (0..BLOCKED_SYNS)
        .map(|i| {
            let src = host_at(ALPHA_NIC, 41_000 + i as u16);
            appliance.syn_from_host(ALPHA_NIC, src, blocked_server, BLOCKED_ISN + i)
        })
        .collect::<Outcome<Vec<_>>>()?;
    let spoofed_src = SocketAddrV4::new(Ipv4Address::new(10, 137, 1, 77), 41_010);
    let spoofed = appliance.syn_from_host(ALPHA_NIC, spoofed_src, web_server(), SPOOFED_ISN)?;
    let marker_src = host_at(ALPHA_NIC, 41_020);
    let marker = appliance.syn_from_host(ALPHA_NIC, marker_src, web_server(), MARKER_ISN)?;
    for frame in blocked.iter().chain([&spoofed, &marker]) {
        appliance.send(ALPHA_NIC, frame)?;
    }
    appliance.never_forwarded(
        UPLINK_NIC,
        "the blocked and spoofed SYNs",
        |frame| {
            frame
                .datagram
                .tcp()
                .is_some_and(|tcp| tcp.seq != MARKER_ISN)
        },
        "the marker SYN to the web server",
        |frame| has_seq(frame, MARKER_ISN),
    )?;

    // On the schedule (moat.stats=1): the block rule counts its three SYNs, the pass rule
    // the marker and its state; the drop reasons count the blocked and the spoofed. (The
    // policy's drop line follows the spoofed one in the report: waiting for both keeps
    // the snapshot from ending between them.)
    let blocked_bytes: u64 = blocked.iter().map(ip_bytes).sum();
    let console = appliance.vm.console();
    wait_for_counters(
        console,
        &format!("counter lines: the rule at line {blocked_line} with {BLOCKED_SYNS} packets, a spoofed and policy drops"),
        |rules, drops| {
            rules.get(&blocked_line).is_some_and(|r| r.packets == u64::from(BLOCKED_SYNS))
                && drops.get("spoofed") == Some(&1)
                && drops.contains_key("policy")
        },
    )?;
    let lines = console.lines();
    let block = rule_at(&lines, blocked_line)?;
    ensure(block.bytes == blocked_bytes && block.states == 0, || {
        format!(
            "the block rule's counters are {block:?}, expected {blocked_bytes} bytes and no state"
        )
    })?;
    let pass = rule_at(&lines, pass_line)?;
    ensure(
        (pass.packets, pass.bytes, pass.states) == (1, ip_bytes(&marker), 1),
        || {
            format!("the pass rule's counters are {pass:?}, expected the marker: 1 packet of {} bytes, 1 state", ip_bytes(&marker))
        },
    )?;
    let drops = latest_drops(&lines);
    let by_rules: u64 = latest_rules(&lines)
        .values()
        .filter(|r| r.states == 0 && r.line != pass_line)
        .map(|r| r.packets)
        .sum();
    ensure(drops.get("policy") == Some(&by_rules), || {
        format!("drops by policy {drops:?} do not match the packets the blocking rules counted ({by_rules})")
    })?;

    // At shutdown: the final report repeats every non-zero counter.
    appliance.vm.power_button()?;
    appliance
        .vm
        .console()
        .wait_for_line(SHUTDOWN_LINE, SHUTDOWN_TIMEOUT)?;
    appliance.vm.wait_exit(SHUTDOWN_TIMEOUT)?;
    let lines = appliance.vm.console().lines();
    let final_at = lines
        .iter()
        .position(|l| l.starts_with("moat: final "))
        .ok_or_else(|| Failure::new("no `moat: final` line after the shutdown"))?;
    let after = &lines[final_at..];
    ensure(rule_at(after, blocked_line)? == block, || {
        format!("the final report of the block rule differs from the last scheduled one: {after:?}")
    })?;
    let captured = after
        .iter()
        .find_map(|l| parse_capture(l))
        .ok_or_else(|| Failure::new("no `moat: stats pcap` line in the final report"))?;

    // The capture, read the way users read it.
    let pcap = appliance
        .vm
        .pcap_path()
        .ok_or_else(|| Failure::new("the VM has no capture file"))?;
    let packets = read_with_tcpdump(&pcap)?;
    for i in 0..BLOCKED_SYNS {
        let seq = format!("seq {}", BLOCKED_ISN + i);
        ensure(
            packets
                .iter()
                .any(|p| p.contains(&seq) && p.contains(".82: Flags [S]")),
            || format!("blocked SYN {i} ({seq}) is not in the capture: {packets:#?}"),
        )?;
    }
    ensure(
        packets.iter().any(|p| {
            p.contains("10.137.1.77.41010 > ") && p.contains(&format!("seq {SPOOFED_ISN}"))
        }),
        || format!("the spoofed SYN is not in the capture: {packets:#?}"),
    )?;
    ensure(
        !packets
            .iter()
            .any(|p| p.contains(&format!("seq {MARKER_ISN}"))),
        || format!("the forwarded marker SYN is in the capture of drops: {packets:#?}"),
    )?;
    ensure(captured == (packets.len() as u64, 0), || {
        format!("the final report says the capture holds {captured:?} (captured, dropped); tcpdump read {} packets", packets.len())
    })?;
    // Timestamps come from the appliance's clock (seconds since boot) and never go back.
    let times: Vec<f64> = packets
        .iter()
        .filter_map(|p| p.split_whitespace().next()?.parse().ok())
        .collect();
    ensure(
        times.len() == packets.len()
            && times.windows(2).all(|w| w[0] <= w[1])
            && times.iter().all(|t| *t > 0.0 && *t < 3600.0),
        || format!("capture timestamps are not seconds since boot in order: {times:?}"),
    )
}
