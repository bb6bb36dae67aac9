//! Hostile traffic against a booted appliance (root; skipped loudly otherwise): one q35 boot
//! of `qemu-tests/rules/hostile.rules` between real hosts in namespaces (the uplink, client
//! alpha on lan1 with its MAC pinned, client beta on lan2). Crafted frames are sent with
//! scapy (`qemu-tests/hostile/frames.py`) from the clients' and the uplink's namespaces —
//! issue 8's findings as packets, malformed headers, tiny and overlapping fragments, TCP
//! flag combinations, ARP spoofing, a broadcast MAC with a unicast IP, a source route —
//! while tcpdump watches the far side (and the other client) with a filter that matches
//! exactly what must not come out (each case marks its frames with its own ports or IP
//! identifications). Positive controls show the senders and captures work. Afterwards both
//! clients still reach the internet, through the appliance, and alpha still answers through
//! its port forward.

use std::path::PathBuf;
use std::time::Duration;

use image::qemu::Machine;
use qemu_tests::client_tools::{curl, dig, DigTransport, Fetch};
use qemu_tests::kernels::{workspace, KernelVariant};
use qemu_tests::notice::require_root;
use qemu_tests::packet_capture::Capture;
use qemu_tests::tap_appliance::TapAppliance;
use qemu_tests::test_host::TestHost;
use qemu_tests::uplink_services::WEB_SERVER_NAME;
use qemu_tests::{ensure, Failure, Outcome};

/// The kernel built with the hostile suite's ruleset.
const HOSTILE: KernelVariant = KernelVariant {
    name: "hostile",
    rules: Some("qemu-tests/rules/hostile.rules"),
    features: &[],
};
/// Alpha's MAC, pinned in the ruleset.
const ALPHA_MAC: &str = "02:6d:6f:61:74:01";
/// How long the appliance has to forward what it was sent before the captures stop.
const SETTLE: Duration = Duration::from_millis(1500);

/// A test host of the topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Uplink,
    Alpha,
    Beta,
}

impl Side {
    fn host(self, appliance: &TapAppliance) -> Outcome<&TestHost> {
        match self {
            Side::Uplink => Ok(&appliance.uplink),
            Side::Alpha => appliance.client(1),
            Side::Beta => appliance.client(2),
        }
    }

    /// The appliance's address on this host's segment.
    fn appliance_address(self) -> &'static str {
        match self {
            Side::Uplink => "10.0.2.15",
            Side::Alpha => "10.137.1.1",
            Side::Beta => "10.137.2.1",
        }
    }
}

/// What a capture must see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// Nothing: the case's frames must not come out.
    Nothing,
    /// At least one packet: a positive control.
    Some,
}

/// One capture: on which host, with which filter, what it must see, and why.
struct Watch {
    case: &'static str,
    on: Side,
    filter: &'static str,
    want: Want,
}

/// Captures started together, senders run in order, then every capture checked.
struct Round {
    watches: Vec<Watch>,
    sends: Vec<(Side, &'static [&'static str])>,
}

fn watch(case: &'static str, on: Side, filter: &'static str, want: Want) -> Watch {
    Watch {
        case,
        on,
        filter,
        want,
    }
}

fn rounds() -> Vec<Round> {
    use Side::*;
    use Want::*;
    vec![
        // Everything a client can throw at the uplink in one go; beta must see none of it.
        Round {
            watches: vec![
                watch(
                    "finding 1: SCTP to a blocked port",
                    Uplink,
                    "ip proto 132 and ip[22:2] = 9999",
                    Nothing,
                ),
                watch(
                    "finding 1 control: SCTP to an allowed port",
                    Uplink,
                    "ip proto 132 and ip[22:2] = 9998",
                    Some,
                ),
                watch(
                    "finding 2: a later fragment wrapped into a first one",
                    Uplink,
                    "tcp dst port 25",
                    Nothing,
                ),
                watch(
                    "finding 3: IP options (loose source route)",
                    Uplink,
                    "ip[0] & 0x0f != 5",
                    Nothing,
                ),
                watch(
                    "finding 4: unicast IP in a broadcast frame",
                    Uplink,
                    "udp dst port 7777",
                    Nothing,
                ),
                watch(
                    "finding 12: another MAC taking over alpha's address",
                    Uplink,
                    "udp dst port 7030",
                    Nothing,
                ),
                watch(
                    "malformed headers (IHL, total length, checksum, truncated TCP)",
                    Uplink,
                    "ip[4:2] >= 0x7b01 and ip[4:2] <= 0x7b04",
                    Nothing,
                ),
                watch(
                    "tiny fragment (RFC 1858)",
                    Uplink,
                    "ip[4:2] = 0x7a10",
                    Nothing,
                ),
                watch(
                    "fragment overlapping the TCP header",
                    Uplink,
                    "ip[4:2] = 0x7a11 and ip[6:2] & 0x1fff != 0",
                    Nothing,
                ),
                watch(
                    "TCP SYN+FIN, null, Xmas, SYN+RST",
                    Uplink,
                    "tcp dst portrange 7020-7023",
                    Nothing,
                ),
                watch(
                    "nothing of alpha's reaches the other client",
                    Beta,
                    "host 10.137.1.2",
                    Nothing,
                ),
                watch(
                    "nothing is sent to the spoofer's MAC on lan1",
                    Alpha,
                    "ether dst 02:66:66:66:66:66",
                    Nothing,
                ),
            ],
            sends: vec![(
                Alpha,
                &[
                    "sctp",
                    "refragment_wrap",
                    "source_route",
                    "broadcast_mac",
                    "take_over_client",
                    "malformed",
                    "tiny_fragment",
                    "overlapping_fragment",
                    "flag_combinations",
                    "spoof_gateway",
                ],
            )],
        },
        // Finding 5: beta claims alpha's DNS answer could not be delivered.
        Round {
            watches: vec![watch(
                "finding 5: an ICMP error from another client",
                Uplink,
                "icmp",
                Nothing,
            )],
            sends: vec![(Alpha, &["dns_query"]), (Beta, &["forged_error"])],
        },
        // Finding 9: alpha's TTL-1 probes must not use up beta's fragmentation-needed.
        Round {
            watches: vec![watch(
                "finding 9: beta still gets fragmentation needed after alpha's 60 probes",
                Beta,
                "icmp[icmptype] = 3 and icmp[icmpcode] = 4",
                Some,
            )],
            sends: vec![(Alpha, &["ttl_probes"]), (Beta, &["too_big"])],
        },
        // Finding 11 (and 7's queue): nothing is sent to beta as a link broadcast after it
        // "moved" to ff:ff:ff:ff:ff:ff; beta's web fetch at the end of the test crosses it.
        Round {
            watches: vec![watch(
                "finding 11: no IP to beta as a link broadcast",
                Beta,
                "ether dst ff:ff:ff:ff:ff:ff and ip and not udp port 67",
                Nothing,
            )],
            sends: vec![(Alpha, &["arp_queue"]), (Beta, &["broadcast_sender_arp"])],
        },
        // From the uplink: straight at alpha's private address, and through the forward.
        Round {
            watches: vec![
                watch(
                    "finding 6: a SYN to the forwarded client's own address",
                    Alpha,
                    "tcp src port 6006",
                    Nothing,
                ),
                watch(
                    "finding 6 control: the SYN through the port forward",
                    Alpha,
                    "tcp src port 6007",
                    Some,
                ),
                watch(
                    "finding 3 inbound: a source-routed SYN through the forward",
                    Alpha,
                    "tcp src port 6008",
                    Nothing,
                ),
                watch(
                    "TCP flag combinations through the forward",
                    Alpha,
                    "tcp src portrange 7020-7023",
                    Nothing,
                ),
                watch(
                    "nothing is sent to the spoofer's MAC on the uplink",
                    Uplink,
                    "ether dst 02:66:66:66:66:66",
                    Nothing,
                ),
            ],
            sends: vec![(
                Uplink,
                &[
                    "direct_to_forwarded_client",
                    "source_route_in",
                    "flag_combinations_in",
                    "spoof_appliance",
                ],
            )],
        },
        // Finding 8: a SYN flood to the forward; the clients' own flows are checked after it.
        Round {
            watches: vec![],
            sends: vec![(Uplink, &["syn_flood_forward"])],
        },
    ]
}

/// `qemu-tests/hostile/frames.py`.
fn frames_script() -> Outcome<PathBuf> {
    Ok(workspace()?.root.join("qemu-tests/hostile/frames.py"))
}

/// Runs the scapy sender in `side`'s namespace with `cases`.
fn send(appliance: &TapAppliance, side: Side, cases: &[&str]) -> Outcome {
    let host = side.host(appliance)?;
    let script = frames_script()?;
    let script = script.to_string_lossy();
    let mut args = vec![script.as_ref(), host.tap(), side.appliance_address()];
    args.extend_from_slice(cases);
    // Debian's python3 (the one python3-scapy installs into), whatever else is on PATH.
    let output = host.run("/usr/bin/python3", &args)?;
    ensure(output.status.success(), || {
        format!(
            "frames.py {} on {side:?} failed ({}): {}{}\n(scripts/setup installs python3-scapy)",
            cases.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })
}

/// Plays `round`: returns what went wrong, one line per failed watch.
fn play(appliance: &TapAppliance, round: &Round) -> Outcome<Vec<String>> {
    let mut captures = Vec::new();
    for watch in &round.watches {
        captures.push(Capture::start(watch.on.host(appliance)?, watch.filter)?);
    }
    for (side, cases) in &round.sends {
        send(appliance, *side, cases)?;
    }
    std::thread::sleep(SETTLE);
    let mut failures = Vec::new();
    for (watch, capture) in round.watches.iter().zip(captures) {
        let seen = capture.stop()?;
        let wrong = match watch.want {
            Want::Nothing => !seen.is_empty(),
            Want::Some => seen.is_empty(),
        };
        if wrong {
            failures.push(format!(
                "{}: on {:?} with `{}` expected {}, saw {}:\n    {}",
                watch.case,
                watch.on,
                watch.filter,
                if watch.want == Want::Nothing {
                    "nothing"
                } else {
                    "a packet"
                },
                seen.len(),
                seen.iter()
                    .map(|c| c.line.as_str())
                    .collect::<Vec<_>>()
                    .join("\n    ")
            ));
        }
    }
    Ok(failures)
}

/// Gives alpha's tap the MAC the ruleset pins for it (down and up again, which takes its
/// default route with it: that is put back).
fn pin_alpha_mac(alpha: &TestHost) -> Outcome {
    for args in [
        &["link", "set", "dev", alpha.tap(), "down"][..],
        &["link", "set", "dev", alpha.tap(), "address", ALPHA_MAC],
        &["link", "set", "dev", alpha.tap(), "up"],
        &[
            "route",
            "replace",
            "default",
            "via",
            Side::Alpha.appliance_address(),
        ],
    ] {
        alpha.run_checked("ip", args)?;
    }
    Ok(())
}

/// The ordinary flows a user has: a web fetch from each client, a name from the
/// appliance's DNS redirect, ping of the appliance.
fn ordinary_flows_work(appliance: &TapAppliance) -> Outcome<Vec<String>> {
    let mut failures = Vec::new();
    for side in [Side::Alpha, Side::Beta] {
        let host = side.host(appliance)?;
        let fetched = curl(
            host,
            "http://198.51.100.80/",
            Duration::from_secs(10),
            Duration::from_secs(20),
        )?;
        if !matches!(fetched.outcome, Fetch::Body(_)) {
            failures.push(format!(
                "{side:?}'s web fetch afterwards: {:?}",
                fetched.outcome
            ));
        }
        let ping = host.ping(
            side.appliance_address()
                .parse()
                .map_err(|_| Failure::new("an address"))?,
            3,
        )?;
        if ping.received == 0 {
            failures.push(format!(
                "{side:?} pings the appliance afterwards:\n{}",
                ping.output
            ));
        }
    }
    let resolver = Side::Beta
        .appliance_address()
        .parse()
        .map_err(|_| Failure::new("an address"))?;
    match dig(
        appliance.client(2)?,
        resolver,
        WEB_SERVER_NAME,
        DigTransport::Udp,
    ) {
        Ok(answer) if answer.status == "NOERROR" => {}
        Ok(answer) => failures.push(format!(
            "beta's DNS through the redirect afterwards: {answer:?}"
        )),
        Err(error) => failures.push(format!(
            "beta's DNS through the redirect afterwards: {error}"
        )),
    }
    Ok(failures)
}

#[test]
fn hostile_frames_from_clients_and_the_uplink_leave_nothing_forbidden() -> Outcome {
    if !require_root("hostile_frames_from_clients_and_the_uplink_leave_nothing_forbidden")? {
        return Ok(());
    }
    let appliance = TapAppliance::boot_variant(HOSTILE, Machine::Q35, "", true)?;
    pin_alpha_mac(appliance.client(1)?)?;
    let mut failures = Vec::new();
    for round in rounds() {
        failures.extend(play(&appliance, &round)?);
    }
    failures.extend(ordinary_flows_work(&appliance)?);
    ensure(failures.is_empty(), || failures.join("\n"))
}
