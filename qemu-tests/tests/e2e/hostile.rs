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
//!
//! The IPv6 half boots the IPv6 suite's dual-stack appliance (`ipv6.rs`: SLAAC uplink from
//! radvd, unique local clients behind NAT66) and sends, from alpha, extension-header chains
//! longer than the bound, hop-by-hop not first, type-0 routing headers, tiny first
//! fragments and ones whose chain spills into the second (RFC 7112), a fragment
//! overlapping its first, spoofed and link-local sources, a rogue router advertisement and
//! neighbour advertisements claiming alpha's, the appliance's and beta's addresses; from
//! the uplink, packets straight at alpha's private address, through a type-0 routing
//! header and in tiny fragments. Captures match each case's flow label (BPF cannot walk
//! extension headers); controls show the plain and short-chain datagrams and the whole
//! first fragment do leave, and `ping -6` still works afterwards.

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

use crate::ipv6::{pings_all, Ipv6Lab, APPLIANCE_LAN, SERVER};

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

/// A booted appliance between the three test hosts.
trait Topology {
    /// The test host of `side`.
    fn host(&self, side: Side) -> Outcome<&TestHost>;
    /// `NAME=VALUE` settings `frames.py` needs beyond its arguments.
    fn frames_env(&self) -> Outcome<Vec<String>> {
        Ok(Vec::new())
    }
}

impl Topology for TapAppliance {
    fn host(&self, side: Side) -> Outcome<&TestHost> {
        match side {
            Side::Uplink => Ok(&self.uplink),
            Side::Alpha => self.client(1),
            Side::Beta => self.client(2),
        }
    }
}

/// The IPv6 suite's lab: the same addresses on the same sides, IPv6 configured.
impl Topology for Ipv6Lab {
    fn host(&self, side: Side) -> Outcome<&TestHost> {
        Ok(match side {
            Side::Uplink => &self.uplink,
            Side::Alpha => &self.alpha,
            Side::Beta => &self.beta,
        })
    }

    fn frames_env(&self) -> Outcome<Vec<String>> {
        let address = self.appliance_uplink_address()?;
        Ok(vec![format!("MOAT_APPLIANCE6_UPLINK={address}")])
    }
}

impl Side {
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
    filter: String,
    want: Want,
}

/// Captures started together, senders run in order, then every capture checked.
struct Round {
    watches: Vec<Watch>,
    sends: Vec<(Side, &'static [&'static str])>,
}

fn watch(case: &'static str, on: Side, filter: impl Into<String>, want: Want) -> Watch {
    Watch {
        case,
        on,
        filter: filter.into(),
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
fn send(topology: &dyn Topology, side: Side, cases: &[&str]) -> Outcome {
    let host = topology.host(side)?;
    let script = frames_script()?;
    let script = script.to_string_lossy();
    let env = topology.frames_env()?;
    let mut args: Vec<&str> = env.iter().map(String::as_str).collect();
    // Debian's python3 (the one python3-scapy installs into), whatever else is on PATH.
    args.extend([
        "/usr/bin/python3",
        script.as_ref(),
        host.tap(),
        side.appliance_address(),
    ]);
    args.extend_from_slice(cases);
    let output = host.run("/usr/bin/env", &args)?;
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
fn play(topology: &dyn Topology, round: &Round) -> Outcome<Vec<String>> {
    let mut captures = Vec::new();
    for watch in &round.watches {
        captures.push(Capture::start(topology.host(watch.on)?, &watch.filter)?);
    }
    for (side, cases) in &round.sends {
        send(topology, *side, cases)?;
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
        let host = appliance.host(side)?;
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

/// The IPv6 rounds, against the IPv6 suite's appliance (SLAAC uplink, unique local clients
/// behind NAT66; nothing is open inbound). Capture filters match on the flow label each
/// case marks its packets with (BPF cannot walk extension headers).
fn rounds6() -> Vec<Round> {
    use Side::*;
    use Want::*;
    let flow = |label: u32| format!("ip6 and ip6[0:4] & 0xfffff = {label:#x}");
    vec![
        Round {
            watches: vec![
                watch("IPv6 control: a plain datagram", Uplink, flow(0x7100), Some),
                watch(
                    "IPv6 control: a datagram behind a short chain",
                    Uplink,
                    flow(0x7109),
                    Some,
                ),
                watch(
                    "a chain longer than the bound, hop-by-hop not first",
                    Uplink,
                    flow(0x7101),
                    Nothing,
                ),
                watch("a type-0 routing header", Uplink, flow(0x7102), Nothing),
                watch(
                    "tiny first fragments (RFC 7112)",
                    Uplink,
                    flow(0x7103),
                    Nothing,
                ),
                watch(
                    "a later fragment overlapping the first",
                    Uplink,
                    "ip6 and ip6[0:4] & 0xfffff = 0x7104 and ip6[6] = 44 and ip6[42:2] & 0xfff8 != 0",
                    Nothing,
                ),
                watch(
                    "IPv6 control: the whole first fragment",
                    Uplink,
                    "ip6 and ip6[0:4] & 0xfffff = 0x7104 and ip6[6] = 44 and ip6[42:2] & 0xfff8 = 0",
                    Some,
                ),
                watch("spoofed IPv6 sources", Uplink, flow(0x7105), Nothing),
                watch(
                    "nothing of alpha's IPv6 reaches the other client",
                    Beta,
                    "ip6 and not icmp6",
                    Nothing,
                ),
                watch(
                    "no address from the rogue router's prefix (DAD) on lan1",
                    Alpha,
                    "icmp6 and ip6[40] = 135 and ip6[48:4] = 0x20010db8 and ip6[52:2] = 0x0bad",
                    Nothing,
                ),
                watch(
                    "the rogue RA leaves lan1 for no one",
                    Beta,
                    "icmp6 and ip6[40] = 134",
                    Nothing,
                ),
            ],
            sends: vec![(
                Alpha,
                &[
                    "v6_control",
                    "v6_long_chain",
                    "v6_rh0",
                    "v6_tiny_fragment",
                    "v6_overlapping_fragment",
                    "v6_spoofed",
                    "v6_rogue_ra",
                    "v6_na_takeover",
                ],
            )],
        },
        // The spoofer's advertisements must not win alpha's or the appliance's address:
        // alpha's pings after them are answered to alpha's MAC, never the spoofer's.
        Round {
            watches: vec![
                watch(
                    "nothing is sent to the spoofer's MAC after its neighbour advertisements",
                    Alpha,
                    "ether dst 02:66:66:66:66:66",
                    Nothing,
                ),
                watch(
                    "control: the spoofer's advertisements were sent",
                    Alpha,
                    "ether src 02:66:66:66:66:66 and icmp6 and ip6[40] = 136",
                    Some,
                ),
                watch(
                    "control: alpha's echo replies come back through the appliance",
                    Alpha,
                    "icmp6 and ip6[40] = 129",
                    Some,
                ),
            ],
            sends: vec![(Alpha, &["v6_na_takeover", "v6_echo"])],
        },
        Round {
            watches: vec![
                watch(
                    "nothing inbound from the uplink reaches alpha (direct, RH0, tiny fragments)",
                    Alpha,
                    flow(0x7111),
                    Nothing,
                ),
                watch(
                    "control: the inbound frames were sent",
                    Uplink,
                    flow(0x7111),
                    Some,
                ),
            ],
            sends: vec![(Uplink, &["v6_in"])],
        },
    ]
}

#[test]
fn hostile_ipv6_frames_from_clients_and_the_uplink_leave_nothing_forbidden() -> Outcome {
    let Some(lab) =
        Ipv6Lab::boot("hostile_ipv6_frames_from_clients_and_the_uplink_leave_nothing_forbidden")?
    else {
        return Ok(());
    };
    let mut failures = Vec::new();
    for round in rounds6() {
        failures.extend(play(&lab, &round)?);
    }
    // Ordinary IPv6 still works afterwards: both clients reach the server, alpha the
    // appliance's address it tried to take.
    for (host, target) in [
        (&lab.alpha, SERVER),
        (&lab.beta, SERVER),
        (&lab.alpha, APPLIANCE_LAN[0]),
    ] {
        if let Err(failure) = pings_all(host, target) {
            failures.push(format!("afterwards: {failure}"));
        }
    }
    ensure(failures.is_empty(), || {
        format!(
            "{}\nconsole:\n{}",
            failures.join("\n"),
            lab.vm.console().transcript()
        )
    })
}
