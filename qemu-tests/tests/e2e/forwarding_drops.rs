//! What the appliance refuses, rootless and exact: a packet the policy blocks, rejects or
//! never allows, a spoofed source, a TTL that runs out. Each is shown not to come out on the
//! other side (see `SegmentedAppliance::never_forwarded`), to get exactly the answer its
//! verdict calls for (silence, a TCP RST, an ICMP time-exceeded), and, where the policy or
//! anti-spoofing says so, to be logged on the console naming its NIC, its rule or reason and
//! its 5-tuple.

use std::net::SocketAddrV4;

use dataplane::testutil::datagram::{describe_frame, Ipv4Frame, TcpFlags, IPV4_HEADER_LEN};
use dataplane::testutil::link::{echo_request, Echo};
use qemu_tests::addressing::{appliance_address, host_address, INTERNET_SERVER};
use qemu_tests::drop_log::{wait_for_drop, DropCause, DropEndpoint, DropLine};
use qemu_tests::expect::{answers_arp, answers_ping, ANSWER_TIMEOUT};
use qemu_tests::forwarding_ruleset::{
    default_rule_position, position_of, ALPHA_FORWARD_PORT, ALPHA_NIC, BETA_NIC, BLOCKED_PORT,
    BLOCK_RULE, REJECTED_PORT, REJECT_RULE, UPLINK_NIC, WEB_PORT,
};
use qemu_tests::segmented_appliance::{SegmentedAppliance, SETTLE};
use qemu_tests::{ensure, Failure, Outcome};
use smoltcp::wire::{Icmpv4Message, IpProtocol};

use crate::forwarding::{host_at, is_tcp_to, uplink_address, web_server};

/// Initial sequence numbers: each packet of a test has its own, so it can be recognised
/// after NAT has rewritten its addresses and ports.
const DROPPED_ISN: u32 = 0xd000_0001;
const MARKER_ISN: u32 = 0x0a00_0001;

pub(crate) fn has_seq(frame: &Ipv4Frame, seq: u32) -> bool {
    frame.datagram.tcp().is_some_and(|tcp| tcp.seq == seq)
}

/// A drop line for a TCP packet `src -> dst` on `nic`, with the policy's `verdict` if any.
fn tcp_drop(
    nic: usize,
    verdict: Option<&str>,
    cause: DropCause,
    src: SocketAddrV4,
    dst: SocketAddrV4,
) -> DropLine {
    let endpoint = |at: SocketAddrV4| DropEndpoint {
        address: *at.ip(),
        port: Some(at.port()),
    };
    DropLine {
        nic: format!("nic{nic}"),
        verdict: verdict.map(str::to_string),
        cause,
        detail: None,
        protocol: "tcp".into(),
        src: endpoint(src),
        dst: endpoint(dst),
        icmp: None,
    }
}

/// Waits for a drop line that describes `expected`.
fn logged(appliance: &SegmentedAppliance, expected: &DropLine) -> Outcome {
    wait_for_drop(
        appliance.vm.console(),
        &format!("the drop line `{expected}`"),
        ANSWER_TIMEOUT,
        |line| line.describes(expected),
    )
    .map(|_| ())
}

/// Waits for the drop line about a packet from `spoofed` to `dst` on `nic`, and checks that
/// it gives spoofing as the reason.
fn logged_as_spoofed(
    appliance: &SegmentedAppliance,
    nic: usize,
    spoofed: SocketAddrV4,
    dst: SocketAddrV4,
) -> Outcome {
    let line = wait_for_drop(
        appliance.vm.console(),
        &format!("a drop line for the spoofed source {spoofed} on nic{nic}"),
        ANSWER_TIMEOUT,
        |line| line.src.address == *spoofed.ip(),
    )?;
    let expected = tcp_drop(nic, None, line.cause.clone(), spoofed, dst);
    ensure(
        line.describes(&expected)
            && matches!(&line.cause, DropCause::Reason(reason) if reason.starts_with("spoof")),
        || format!("the drop line is `{line}`, expected `{expected}` with a `spoofed` reason"),
    )
}

/// Fails if anything but ARP arrives on `nic` within the settling window: a dropped packet
/// must get no answer.
fn silence_on(appliance: &SegmentedAppliance, nic: usize, about: &str) -> Outcome {
    let frames = appliance.host(nic)?.frames_within(SETTLE)?;
    ensure(frames.is_empty(), || {
        let seen: Vec<String> = frames.iter().map(|bytes| describe_frame(bytes)).collect();
        format!(
            "nic{nic}: {about} should get no answer, but the appliance sent: {}",
            seen.join("; ")
        )
    })
}

/// Alpha sends `dropped` (a SYN from `src` to `dst` with [`DROPPED_ISN`]) and then a SYN to
/// the web server (the marker); the dropped one must not leave the uplink.
fn alpha_sends_and_it_never_leaves(
    appliance: &SegmentedAppliance,
    what: &str,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    ttl: u8,
) -> Outcome<Ipv4Frame> {
    let mut dropped = appliance.syn_from_host(ALPHA_NIC, src, dst, DROPPED_ISN)?;
    dropped.datagram.header.ttl = ttl;
    let marker_src = host_at(ALPHA_NIC, src.port() + 1);
    let marker = appliance.syn_from_host(ALPHA_NIC, marker_src, web_server(), MARKER_ISN)?;
    appliance.send(ALPHA_NIC, &dropped)?;
    appliance.send(ALPHA_NIC, &marker)?;
    appliance.never_forwarded(
        UPLINK_NIC,
        what,
        |frame| has_seq(frame, DROPPED_ISN),
        "alpha's SYN to the web server",
        |frame| has_seq(frame, MARKER_ISN),
    )?;
    Ok(dropped)
}

#[test]
fn blocked_packet_never_reaches_the_uplink_gets_no_answer_and_its_rule_is_logged() -> Outcome {
    let appliance = SegmentedAppliance::boot("")?;
    let src = host_at(ALPHA_NIC, 40_010);
    let dst = SocketAddrV4::new(INTERNET_SERVER, BLOCKED_PORT);
    alpha_sends_and_it_never_leaves(&appliance, "alpha's SYN to the blocked port", src, dst, 64)?;
    let rule = DropCause::Rule(position_of(BLOCK_RULE)?);
    logged(
        &appliance,
        &tcp_drop(ALPHA_NIC, Some("block"), rule, src, dst),
    )?;
    silence_on(&appliance, ALPHA_NIC, "a blocked SYN")
}

#[test]
fn rejected_connection_gets_a_reset_from_its_destination_and_never_reaches_the_uplink() -> Outcome {
    let appliance = SegmentedAppliance::boot("")?;
    let src = host_at(ALPHA_NIC, 40_020);
    let dst = SocketAddrV4::new(INTERNET_SERVER, REJECTED_PORT);
    alpha_sends_and_it_never_leaves(&appliance, "alpha's SYN to the rejected port", src, dst, 64)?;
    let reset = appliance.expect_on(ALPHA_NIC, "a TCP RST for the rejected SYN", |frame| {
        frame.datagram.tcp().is_some_and(|tcp| tcp.flags.rst)
    })?;
    let (expected_mac, alpha_mac) = (
        appliance.appliance(ALPHA_NIC)?.mac,
        appliance.host(ALPHA_NIC)?.station.mac,
    );
    ensure(
        reset.ethernet.src_addr == expected_mac && reset.ethernet.dst_addr == alpha_mac,
        || {
            format!(
                "the RST is framed {} -> {}, expected {expected_mac} -> {alpha_mac}",
                reset.ethernet.src_addr, reset.ethernet.dst_addr
            )
        },
    )?;
    ensure(reset.datagram.endpoints() == Some((dst, src)), || {
        format!("the RST is {reset}, expected it from {dst} to {src} (as if the server refused)")
    })?;
    // RFC 9293 3.10.7.1: a RST answering a segment without ACK has sequence number 0 and
    // acknowledges the SYN, or the client's stack does not accept it.
    let tcp = reset
        .datagram
        .tcp()
        .ok_or_else(|| Failure::new("the RST is not TCP"))?;
    let expected_flags = TcpFlags {
        rst: true,
        ..TcpFlags::ACK
    };
    ensure(
        tcp.flags == expected_flags && tcp.seq == 0 && tcp.ack == DROPPED_ISN.wrapping_add(1),
        || {
            format!(
                "the RST is {reset}, expected flags [{expected_flags}], seq 0, ack {}",
                DROPPED_ISN.wrapping_add(1)
            )
        },
    )?;
    ensure(
        tcp.payload.is_empty() && reset.datagram.header.ttl > 0,
        || format!("the RST carries a payload or TTL 0: {reset}"),
    )?;
    let rule = DropCause::Rule(position_of(REJECT_RULE)?);
    logged(
        &appliance,
        &tcp_drop(ALPHA_NIC, Some("reject"), rule, src, dst),
    )
}

#[test]
fn client_sending_from_an_address_not_its_own_is_dropped_and_logged() -> Outcome {
    let appliance = SegmentedAppliance::boot("")?;
    // In alpha's network, but not alpha: only declared clients may send from there.
    let spoofed = SocketAddrV4::new(smoltcp::wire::Ipv4Address::new(10, 137, 1, 77), 40_030);
    alpha_sends_and_it_never_leaves(
        &appliance,
        "a SYN from the spoofed source 10.137.1.77",
        spoofed,
        web_server(),
        64,
    )?;
    logged_as_spoofed(&appliance, ALPHA_NIC, spoofed, web_server())
}

#[test]
fn client_source_arriving_on_the_uplink_is_dropped_and_logged() -> Outcome {
    let appliance = SegmentedAppliance::boot("")?;
    // Beta's address, from outside, to a port forwarded to alpha.
    let spoofed = host_at(BETA_NIC, 50_040);
    let forward = uplink_address(ALPHA_FORWARD_PORT);
    let outside = host_at(UPLINK_NIC, 50_041);
    let dropped = appliance.syn_from_host(UPLINK_NIC, spoofed, forward, DROPPED_ISN)?;
    let marker = appliance.syn_from_host(UPLINK_NIC, outside, forward, MARKER_ISN)?;
    appliance.send(UPLINK_NIC, &dropped)?;
    appliance.send(UPLINK_NIC, &marker)?;
    appliance.never_forwarded(
        ALPHA_NIC,
        "a SYN from the uplink with beta's address as source",
        |frame| has_seq(frame, DROPPED_ISN),
        "the SYN forwarded to alpha from a legitimate outside source",
        |frame| has_seq(frame, MARKER_ISN),
    )?;
    logged_as_spoofed(&appliance, UPLINK_NIC, spoofed, forward)
}

#[test]
fn ttl_1_gets_time_exceeded_from_the_appliance_and_goes_no_further() -> Outcome {
    let appliance = SegmentedAppliance::boot("")?;
    let src = host_at(ALPHA_NIC, 40_050);
    let sent = alpha_sends_and_it_never_leaves(
        &appliance,
        "alpha's SYN with TTL 1",
        src,
        web_server(),
        1,
    )?;
    let error = appliance.expect_on(
        ALPHA_NIC,
        "an ICMP time-exceeded for the TTL-1 SYN",
        |frame| {
            frame
                .datagram
                .icmp()
                .is_some_and(|icmp| icmp.kind == Icmpv4Message::TimeExceeded)
        },
    )?;
    let appliance_on_alpha = appliance.appliance(ALPHA_NIC)?;
    let alpha_station = appliance.host(ALPHA_NIC)?.station;
    let header = &error.datagram.header;
    ensure(
        error.ethernet.src_addr == appliance_on_alpha.mac
            && error.ethernet.dst_addr == alpha_station.mac
            && header.src == appliance_on_alpha.ip
            && header.dst == alpha_station.ip
            && header.ttl > 0,
        || {
            format!(
                "the time-exceeded is {error}, expected it from the appliance's {} to alpha's {}",
                appliance_on_alpha.ip, alpha_station.ip
            )
        },
    )?;
    let icmp = error
        .datagram
        .icmp()
        .ok_or_else(|| Failure::new("not ICMP"))?;
    ensure(icmp.code == 0, || {
        format!(
            "time-exceeded code {}, expected 0 (TTL exceeded in transit)",
            icmp.code
        )
    })?;
    // The quote lets alpha's stack find its connection: the packet as alpha sent it (not
    // NATed), and the first 8 bytes of its TCP header (ports and sequence number).
    let quoted = icmp.quoted().map_err(Failure::new)?;
    let sent_bytes = sent.datagram.emit();
    let sent_tcp_start = &sent_bytes[IPV4_HEADER_LEN..IPV4_HEADER_LEN + 8];
    ensure(
        quoted.header.src == sent.datagram.header.src
            && quoted.header.dst == sent.datagram.header.dst
            && quoted.header.ident == sent.datagram.header.ident
            && quoted.protocol == IpProtocol::Tcp
            && quoted.transport[..8] == *sent_tcp_start,
        || {
            format!(
                "the time-exceeded quotes {:?} (transport {:02x?}), expected alpha's SYN {} (transport {:02x?})",
                quoted.header,
                &quoted.transport[..8],
                sent.datagram,
                sent_tcp_start
            )
        },
    )
}

#[test]
fn ping_to_the_appliance_from_the_uplink_gets_nothing_and_the_default_logs_it() -> Outcome {
    let appliance = SegmentedAppliance::boot("")?;
    let uplink = appliance.host(UPLINK_NIC)?;
    let echo = Echo {
        ident: 0x6d00,
        seq_no: 1,
        data: b"moat: ping from the uplink".to_vec(),
    };
    uplink.send(&echo_request(
        uplink.station,
        appliance.appliance(UPLINK_NIC)?,
        &echo,
    ))?;
    let expected = DropLine {
        nic: format!("nic{UPLINK_NIC}"),
        verdict: Some("block".into()),
        cause: DropCause::Default(default_rule_position()?),
        detail: None,
        protocol: "icmp".into(),
        src: DropEndpoint {
            address: host_address(UPLINK_NIC),
            port: None,
        },
        dst: DropEndpoint {
            address: appliance_address(UPLINK_NIC).address(),
            port: None,
        },
        icmp: Some((Icmpv4Message::EchoRequest.into(), 0)),
    };
    logged(&appliance, &expected)?;
    silence_on(&appliance, UPLINK_NIC, "a ping from the uplink")?;
    // The same appliance does answer ping where the policy allows it: the silence above is
    // the policy's, not a dead responder's.
    let (alpha, appliance_on_alpha) = (appliance.host(ALPHA_NIC)?, appliance.appliance(ALPHA_NIC)?);
    answers_arp(alpha, appliance_on_alpha, ANSWER_TIMEOUT)?;
    answers_ping(alpha, appliance_on_alpha, 1, ANSWER_TIMEOUT)
}

#[test]
fn a_client_cannot_reach_another_client_and_the_default_logs_it() -> Outcome {
    let appliance = SegmentedAppliance::boot("")?;
    let src = host_at(BETA_NIC, 40_060);
    let dst = host_at(ALPHA_NIC, WEB_PORT);
    let syn = appliance.syn_from_host(BETA_NIC, src, dst, DROPPED_ISN)?;
    appliance.send(BETA_NIC, &syn)?;
    // The drop line proves the appliance has decided the packet; it cannot have sent it on
    // before deciding.
    let cause = DropCause::Default(default_rule_position()?);
    logged(
        &appliance,
        &tcp_drop(BETA_NIC, Some("block"), cause, src, dst),
    )?;
    let at_alpha = appliance.host(ALPHA_NIC)?.frames_within(SETTLE)?;
    ensure(
        !at_alpha
            .iter()
            .any(|bytes| Ipv4Frame::parse(bytes).is_ok_and(|frame| is_tcp_to(&frame, dst))),
        || "beta's SYN reached alpha".to_string(),
    )?;
    silence_on(&appliance, BETA_NIC, "beta's blocked SYN to alpha")
}
