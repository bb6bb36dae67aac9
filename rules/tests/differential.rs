//! What `rules explain` reports agrees with what a frame through `Appliance::receive` does.
//!
//! Random packets over random rulesets (generated as ruleset text by `rules::generate` and
//! compiled by the `rules` crate). For each packet, two independent accounts:
//!
//! - the **report**: `rules::explain`'s text, as a user reads it — the verdict line (pass,
//!   block or reject, logged or not, the drop reason), the way out (`out: IFACE to HOP as
//!   ...`) and what the sender was told (`answer: ...`);
//! - the **observation**: an appliance this test builds itself from the compiled policy,
//!   fed a frame this test builds itself, as a host on the arrival NIC sends it; what
//!   comes out (read back with `smoltcp::wire`, ARP requests answered as neighbours
//!   would), and its drop counters.
//!
//! The report is produced from the data plane's own trace and the compiler's dry run; the
//! observation from frames and counters only. A trace that lies, a dry run that builds or
//! sends the packet differently, a report that misreads the trace — each makes them
//! disagree.

use std::net::Ipv4Addr;

use dataplane::appliance::ApplianceOptions;
use dataplane::arp;
use dataplane::drops::DropReason;
use dataplane::policy::{flow_addr_to_ipv4, Policy};
use dataplane::sink::RecordingSink;
use dataplane::testutil::packets;
use dataplane::{Appliance, ApplianceConfig};
use proptest::prelude::*;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    ArpOperation, EthernetAddress, EthernetFrame, EthernetProtocol, Icmpv4Message, Icmpv4Packet,
    IpProtocol, Ipv4Packet, TcpPacket, UdpPacket,
};

/// The generated rulesets' interfaces, by NIC.
const INTERFACES: [&str; 4] = ["wan", "lan", "dmz", "guest"];

/// Addresses a packet may come from or go to, besides the rules' own: the appliance's,
/// clients', undeclared hosts', broadcasts, addresses that are never a host's.
const ADDRESSES: [[u8; 4]; 18] = [
    [192, 0, 2, 2],
    [10, 1, 0, 1],
    [10, 2, 0, 1],
    [10, 3, 0, 1],
    [10, 1, 0, 10],
    [10, 1, 1, 15],
    [10, 2, 0, 11],
    [10, 3, 0, 50],
    [10, 1, 9, 9],
    [192, 0, 2, 1],
    [192, 0, 2, 53],
    [203, 0, 113, 7],
    [10, 1, 255, 255],
    [192, 0, 2, 255],
    [255, 255, 255, 255],
    [127, 0, 0, 1],
    [224, 0, 0, 251],
    [240, 0, 0, 1],
];

/// Destination ports worth trying: the generator's services, its forwards, DNS.
const PORTS: [u16; 10] = [22, 53, 80, 123, 443, 993, 2203, 3306, 5432, 8080];

/// A packet to try.
#[derive(Clone, Debug)]
struct Probe {
    in_nic: u8,
    protocol: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
    icmp: (u8, u8),
}

impl Probe {
    /// The packet as `explain` takes it.
    fn description(&self) -> String {
        let iface = INTERFACES[self.in_nic as usize];
        match self.protocol {
            6 | 17 => format!(
                "{} {}:{} -> {}:{} on {iface}",
                if self.protocol == 6 { "tcp" } else { "udp" },
                self.src,
                self.src_port,
                self.dst,
                self.dst_port
            ),
            1 => format!(
                "icmp {} -> {} on {iface} type {} code {}",
                self.src, self.dst, self.icmp.0, self.icmp.1
            ),
            p => format!("{p} {} -> {} on {iface}", self.src, self.dst),
        }
    }
}

/// An address for a packet: one of [`ADDRESSES`], or one inside a range the rules name.
fn address(policy: &Policy, pick: usize, offset: u32) -> Ipv4Addr {
    let ranges: Vec<(u32, u32)> = policy
        .addr_ranges
        .iter()
        .filter_map(|r| Some((flow_addr_to_ipv4(r.first)?, flow_addr_to_ipv4(r.last)?)))
        .collect();
    match pick % 3 {
        0 if !ranges.is_empty() => {
            let (first, last) = ranges[pick / 3 % ranges.len()];
            Ipv4Addr::from(first.saturating_add(offset % (last - first).saturating_add(1).max(1)))
        }
        _ => Ipv4Addr::from(ADDRESSES[pick % ADDRESSES.len()]),
    }
}

/// A source address that may arrive on `nic` (a declared client there; on a segment without
/// declared clients, an address of its network; on the uplink, one from outside).
fn sender(policy: &Policy, nic: u8, pick: usize, offset: u32) -> Ipv4Addr {
    let clients: Vec<Ipv4Addr> = policy
        .clients
        .iter()
        .filter(|c| c.nic == nic)
        .filter_map(|c| c.ipv4.map(Ipv4Addr::from))
        .collect();
    match nic {
        0 => address(policy, pick.wrapping_mul(3), offset),
        _ if !clients.is_empty() => clients[pick % clients.len()],
        _ => Ipv4Addr::new(10, nic, 1 + (offset % 200) as u8, 1 + (pick % 250) as u8),
    }
}

fn probe(policy: &Policy, seed: ProbeSeed) -> Probe {
    let (nic, protocol, src, dst, offset, src_port, port, icmp) = seed;
    let in_nic = nic % 4;
    let protocol = [6, 6, 17, 17, 1, 47][protocol as usize % 6];
    let icmp = [(8, 0), (0, 0), (3, 1), (11, 0), (13, 0)][icmp as usize % 5];
    // Mostly a sender the arrival NIC accepts; sometimes anyone (spoofed, martian).
    let src = if nic >= 200 {
        address(policy, src, offset)
    } else {
        sender(policy, in_nic, src, offset)
    };
    // Often the appliance's own address on the arrival NIC: port forwards, DNS redirects,
    // `to self`.
    let own = [[192, 0, 2, 2], [10, 1, 0, 1], [10, 2, 0, 1], [10, 3, 0, 1]][in_nic as usize];
    let dst = if dst % 4 == 0 {
        Ipv4Addr::from(own)
    } else {
        address(policy, dst / 4, offset.rotate_left(7))
    };
    Probe {
        in_nic,
        protocol,
        src,
        dst,
        src_port: 1024 + src_port % 60000,
        dst_port: PORTS[port as usize % PORTS.len()],
        icmp: if protocol == 1 { icmp } else { (0, 0) },
    }
}

// --- The report --------------------------------------------------------------------------

/// What the report claims.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Claims {
    /// `pass`, `block` or `reject`.
    action: String,
    log: bool,
    /// The drop reason in parentheses, for drops by the data plane.
    reason: Option<String>,
    /// `out: IFACE to HOP as TUPLE`.
    out: Option<(String, Ipv4Addr, String)>,
    /// `answer: ...`.
    answer: Option<String>,
    /// Where a port forward or DNS redirect sent it: `(after the ... to A[:P])`.
    redirected_to: Option<String>,
}

fn claims(report: &str) -> Claims {
    let line = |prefix: &str| {
        report
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
    };
    let verdict = line("verdict:").expect("a verdict line");
    let (verdict, _) = verdict.split_once(", by").expect("who decided");
    let mut words = verdict.split(' ');
    let action = words.next().unwrap_or_default().to_string();
    let rest: Vec<&str> = words.collect();
    let log = rest.first() == Some(&"log");
    let reason = rest
        .iter()
        .find(|w| w.starts_with('('))
        .map(|w| w.trim_matches(|c| c == '(' || c == ')').to_string());
    let out = line("out:").map(|out| {
        let (iface, rest) = out.split_once(" to ").expect("out: IFACE to HOP");
        let (hop, tuple) = rest.split_once(" as ").unwrap_or((rest, ""));
        let hop = hop.split(' ').next().unwrap_or_default();
        (
            iface.to_string(),
            hop.parse().expect("a next hop"),
            tuple.to_string(),
        )
    });
    let redirected_to = line("packet:")
        .and_then(|p| {
            p.split_once("(after the ")
                .map(|(_, after)| after.to_string())
        })
        .and_then(|after| {
            let (_, to) = after.split_once(" to ")?;
            Some(to.trim_end_matches(')').to_string())
        });
    Claims {
        action,
        log,
        reason,
        out,
        answer: line("answer:").map(str::to_string),
        redirected_to,
    }
}

// --- The observation ---------------------------------------------------------------------

fn mac_of_appliance(nic: u8) -> EthernetAddress {
    EthernetAddress([0x52, 0x54, 0x00, 0x11, 0x22, nic])
}

fn mac_of_host(ip: Ipv4Addr) -> EthernetAddress {
    let [a, b, c, d] = ip.octets();
    EthernetAddress([0x0a, 0xff, a, b, c, d])
}

/// What the frames and the counters say.
#[derive(Debug, Default)]
struct Observation {
    /// Drops counted, by reason.
    dropped: Vec<DropReason>,
    /// IPv4 packets sent on, as `(nic, packet)`.
    forwarded: Vec<(u8, Vec<u8>)>,
    /// ARP requests the appliance sent for a next hop, as `(nic, target)`.
    asked: Vec<(u8, Ipv4Addr)>,
    /// IPv4 packets sent back to the sender.
    back: Vec<Vec<u8>>,
}

/// The frame a host sends: to the appliance's MAC, or to the link broadcast or multicast
/// address for those destinations.
fn host_frame(probe: &Probe, ingress: Option<smoltcp::wire::Ipv4Cidr>) -> Vec<u8> {
    let (s, d) = (probe.src.octets(), probe.dst.octets());
    let packet = match probe.protocol {
        6 => packets::tcp_syn(s, probe.src_port, d, probe.dst_port),
        17 => packets::udp(s, probe.src_port, d, probe.dst_port, b"differential"),
        1 if matches!(probe.icmp.0, 0 | 8) => packets::icmp_echo(
            s,
            d,
            probe.icmp.0 == 8,
            rules::dryrun::ECHO_IDENT,
            1,
            b"differential",
        ),
        1 if matches!(probe.icmp.0, 3 | 11) => {
            let quoted = packets::udp(d, 1234, s, 53, b"");
            packets::icmp_error(s, d, probe.icmp.0, probe.icmp.1, &quoted)
        }
        1 => packets::icmp(s, d, probe.icmp, [0; 4], b""),
        p => packets::ipv4(s, d, p, &[0; 8]),
    };
    let link_dst =
        if probe.dst.is_broadcast() || ingress.and_then(|c| c.broadcast()) == Some(probe.dst) {
            EthernetAddress::BROADCAST
        } else if probe.dst.is_multicast() {
            let [_, b, c, d] = d;
            EthernetAddress([0x01, 0x00, 0x5e, b & 0x7f, c, d])
        } else {
            mac_of_appliance(probe.in_nic)
        };
    packets::ethernet(mac_of_host(probe.src), link_dst, &packet)
}

fn observe(policy: &Policy, probe: &Probe) -> Observation {
    let macs: Vec<EthernetAddress> = (0..4).map(mac_of_appliance).collect();
    let config = ApplianceConfig::from_policy(policy, &macs);
    let now = Instant::from_secs(50);
    let mut appliance = Appliance::new(*policy, &config, ApplianceOptions::default(), now);
    let mut frame = host_frame(probe, config.nics[probe.in_nic as usize].ipv4);
    let mut sink = RecordingSink::default();
    appliance.receive(probe.in_nic, &mut frame, now, &mut sink);
    // What the packet itself was dropped for (the neighbours' ARP answers below may be
    // dropped too: they are not the packet).
    let counted =
        |appliance: &Appliance, reason: DropReason| appliance.drop_counters().get(reason) > 0;
    let mut seen = Observation {
        dropped: DropReason::ALL
            .into_iter()
            .filter(|r| counted(&appliance, *r))
            .collect(),
        ..Observation::default()
    };
    let mut frames = sink.frames;
    for _ in 0..4 {
        let mut next = Vec::new();
        for (nic, frame) in frames {
            let ethernet = EthernetFrame::new_checked(&frame[..]).expect("a frame");
            match ethernet.ethertype() {
                EthernetProtocol::Arp => {
                    let Some(request) = arp::parse(ethernet.payload())
                        .filter(|m| m.operation == ArpOperation::Request)
                    else {
                        continue;
                    };
                    seen.asked.push((nic, request.target_ip));
                    // The neighbour answers.
                    let reply = arp::reply_to(&request, mac_of_host(request.target_ip));
                    let mut bytes = vec![0u8; arp::ARP_FRAME_LEN];
                    arp::emit(&mut bytes, request.sender_mac, &reply);
                    let mut sink = RecordingSink::default();
                    appliance.receive(nic, &mut bytes, now, &mut sink);
                    next.extend(sink.frames);
                }
                EthernetProtocol::Ipv4 => {
                    let packet = ethernet.payload().to_vec();
                    let ip = Ipv4Packet::new_checked(&packet[..]).expect("an IPv4 packet");
                    if ip.dst_addr() == probe.src {
                        seen.back.push(packet);
                    } else {
                        seen.forwarded.push((nic, packet));
                    }
                }
                _ => {}
            }
        }
        frames = next;
    }
    // Time passes: ARP retries for a neighbour that never answered run out.
    for second in 1..=5 {
        appliance.poll(
            now + Duration::from_secs(second),
            &mut RecordingSink::default(),
        );
    }
    if counted(&appliance, DropReason::NeighborUnreachable) {
        seen.dropped.push(DropReason::NeighborUnreachable);
    }
    seen
}

/// A forwarded packet as the report writes a flow (`FlowTuple`'s display).
fn tuple_text(packet: &[u8]) -> String {
    let ip = Ipv4Packet::new_checked(packet).expect("an IPv4 packet");
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    match ip.next_header() {
        IpProtocol::Tcp => {
            let tcp = TcpPacket::new_checked(ip.payload()).expect("TCP");
            format!("tcp {src}:{} -> {dst}:{}", tcp.src_port(), tcp.dst_port())
        }
        IpProtocol::Udp => {
            let udp = UdpPacket::new_checked(ip.payload()).expect("UDP");
            format!("udp {src}:{} -> {dst}:{}", udp.src_port(), udp.dst_port())
        }
        IpProtocol::Icmp => {
            let icmp = Icmpv4Packet::new_checked(ip.payload()).expect("ICMP");
            match icmp.msg_type() {
                Icmpv4Message::EchoRequest => {
                    format!("icmp {src} -> {dst} echo-request id {}", icmp.echo_ident())
                }
                Icmpv4Message::EchoReply => {
                    format!("icmp {src} -> {dst} echo-reply id {}", icmp.echo_ident())
                }
                _ => format!("proto 1 {src} -> {dst}"),
            }
        }
        other => format!("proto {} {src} -> {dst}", u8::from(other)),
    }
}

/// What an answer sent back says, as the report writes it.
fn answer_text(packet: &[u8]) -> Option<String> {
    let ip = Ipv4Packet::new_checked(packet).ok()?;
    match ip.next_header() {
        IpProtocol::Tcp => TcpPacket::new_checked(ip.payload())
            .ok()
            .filter(|t| t.rst())
            .map(|_| "a TCP reset to the sender".to_string()),
        IpProtocol::Icmp => {
            let icmp = Icmpv4Packet::new_checked(ip.payload()).ok()?;
            let icmp_type = u8::from(icmp.msg_type());
            Some(format!(
                "ICMP type {icmp_type} code {} to the sender",
                icmp.msg_code()
            ))
        }
        _ => None,
    }
}

// --- The comparison ----------------------------------------------------------------------

fn agree(text: &str, policy: &Policy, report: &str, probe: &Probe) -> Result<(), String> {
    let claims = claims(report);
    let seen = observe(policy, probe);
    let context = || {
        format!(
            "{}\n--- report:\n{report}--- observed: {seen:?}\n--- ruleset:\n{text}",
            probe.description()
        )
    };
    let fail = |what: String| Err(format!("{what}\n{}", context()));
    match claims.action.as_str() {
        "pass" => {
            if !seen.dropped.is_empty() {
                return fail(format!(
                    "reported pass, but the appliance counted {:?}",
                    seen.dropped
                ));
            }
        }
        "block" | "reject" => {
            let reason = match claims.reason.as_deref() {
                Some(name) => {
                    DropReason::from_name(name).ok_or(format!("unknown reason {name}"))?
                }
                None => DropReason::Policy,
            };
            if seen.dropped != [reason] {
                return fail(format!(
                    "reported {} ({reason}), but the appliance counted {:?}",
                    claims.action, seen.dropped
                ));
            }
            if !seen.forwarded.is_empty() {
                return fail("reported a drop, but a packet was forwarded".into());
            }
            let answers: Vec<String> = seen.back.iter().filter_map(|p| answer_text(p)).collect();
            match (&claims.answer, answers.as_slice()) {
                (None, []) => {}
                (Some(claimed), [seen]) if claimed == seen => {}
                (claimed, seen) => {
                    return fail(format!(
                        "reported answer {claimed:?}, the sender got {seen:?}"
                    ))
                }
            }
        }
        other => return fail(format!("unknown verdict {other}")),
    }
    if claims.action == "pass" {
        match (&claims.out, seen.forwarded.as_slice()) {
            (None, []) => {}
            (Some((iface, hop, tuple)), [(nic, packet)]) => {
                if INTERFACES[*nic as usize] != iface {
                    return fail(format!(
                        "reported out {iface}, forwarded on {}",
                        INTERFACES[*nic as usize]
                    ));
                }
                if seen.asked.iter().any(|&(n, t)| n == *nic && t != *hop) {
                    return fail(format!(
                        "reported next hop {hop}, the appliance asked {:?}",
                        seen.asked
                    ));
                }
                if tuple_text(packet) != *tuple {
                    return fail(format!(
                        "reported it leaves as {tuple}, it left as {}",
                        tuple_text(packet)
                    ));
                }
                if let Some(to) = &claims.redirected_to {
                    let left = tuple_text(packet);
                    let dst = left.rsplit(' ').next().unwrap_or_default();
                    if dst != to && dst != format!("{to}:53") {
                        return fail(format!("reported a redirect to {to}, it left for {dst}"));
                    }
                }
            }
            (Some((iface, hop, _)), []) => {
                // Sent to a neighbour that may not answer ARP there: it was asked for.
                let nic = INTERFACES.iter().position(|i| i == iface).unwrap_or(99) as u8;
                if !seen.asked.contains(&(nic, *hop)) {
                    return fail(format!(
                        "reported out {iface} to {hop}, nothing left nor was asked for"
                    ));
                }
            }
            (claimed, forwarded) => {
                return fail(format!(
                    "reported way out {claimed:?}, forwarded {} packets",
                    forwarded.len()
                ))
            }
        }
    }
    Ok(())
}

/// Broad rules added after a generated ruleset's own (they see what its narrow rules leave),
/// so that packets pass, are rejected and reach the appliance itself often enough.
const BROAD: [&str; 6] = [
    "pass from lan to wan",
    "reject from guest to wan tcp",
    "pass from guest to any udp",
    "pass from any to self icmp type echo-request",
    "pass from wan to dmz",
    "reject log from dmz to lan",
];

/// The random choices behind one [`Probe`].
type ProbeSeed = (u8, u8, usize, usize, u32, u16, u16, u8);

fn check_ruleset(rules: usize, seed: u64, broad: u8, probes: &[ProbeSeed]) -> Result<(), String> {
    let generated = rules::generate::generate(rules, seed);
    let extra: String = BROAD
        .iter()
        .enumerate()
        .filter(|(i, _)| broad & (1 << i) != 0)
        .map(|(_, rule)| format!("{rule}\n"))
        .collect();
    let text = generated.replace(
        "default block log\n",
        &format!("{extra}default block log\n"),
    );
    let Ok(compiled) = rules::compile("generated.rules", &text) else {
        // A broad rule the generated ones already cover entirely is an error: no case.
        return Ok(());
    };
    let policy = compiled.policy.as_policy();
    for &seed in probes {
        let probe = probe(&policy, seed);
        if probe.src == probe.dst {
            continue;
        }
        let report = rules::explain::explain(
            &compiled.file,
            &compiled.checked,
            &policy,
            &probe.description(),
        )?;
        agree(&text, &policy, &report, &probe)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn explain_and_the_appliance_agree_on_random_packets_over_random_rulesets(
        rules in 5usize..40,
        seed in 0u64..1_000_000,
        broad in any::<u8>(),
        probes in proptest::collection::vec(
            (any::<u8>(), any::<u8>(), any::<usize>(), any::<usize>(), any::<u32>(), any::<u16>(), any::<u16>(), any::<u8>()),
            16,
        ),
    ) {
        if let Err(disagreement) = check_ruleset(rules, seed, broad, &probes) {
            prop_assert!(false, "{}", disagreement);
        }
    }
}
