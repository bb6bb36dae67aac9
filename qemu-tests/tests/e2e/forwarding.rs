//! Forwarding through the appliance, rootless and exact: the test is the uplink's gateway and
//! each client (dgram NICs), and checks every rewritten frame field by field — Ethernet
//! addresses, IP addresses, TTL, identification, ports, sequence numbers, flags, options,
//! payload — with every checksum verified on arrival.
//!
//! Kernel: `qemu-tests/rules/forwarding.rules` (clients masqueraded out of the uplink, port
//! forwards 8080 → alpha:80 and 8081 → beta:80).

use std::net::SocketAddrV4;

use dataplane::testutil::datagram::{Ipv4Frame, TcpFlags, TcpSegment};
use qemu_tests::addressing::{appliance_address, host_address, INTERNET_SERVER};
use qemu_tests::forwarding_ruleset::{
    ALPHA_FORWARD_PORT, ALPHA_NIC, BETA_FORWARD_PORT, BETA_NIC, UPLINK_NIC, WEB_PORT,
};
use qemu_tests::segmented_appliance::{same_fields, SegmentedAppliance};
use qemu_tests::{Failure, Outcome};

const CLIENT_PORT: u16 = 40_001;
const CLIENT_ISN: u32 = 0x1000_0001;
const SERVER_ISN: u32 = 0x7000_0007;

/// The web server on the internet.
pub(crate) fn web_server() -> SocketAddrV4 {
    SocketAddrV4::new(INTERNET_SERVER, WEB_PORT)
}

/// The test host on `nic`, at `port`.
pub(crate) fn host_at(nic: usize, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(host_address(nic), port)
}

fn alpha(port: u16) -> SocketAddrV4 {
    host_at(ALPHA_NIC, port)
}

/// The appliance's uplink address, at `port`.
pub(crate) fn uplink_address(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(appliance_address(UPLINK_NIC).address(), port)
}

/// What a frame from the host on `from` should look like once the appliance has forwarded it
/// out of `to` (to that segment's test host): new MACs, TTL one less, and the addresses and
/// ports `translate` gives; every other field unchanged.
fn forwarded(
    appliance: &SegmentedAppliance,
    sent: &Ipv4Frame,
    to: usize,
    translate: impl FnOnce(&mut Ipv4Frame),
) -> Outcome<Ipv4Frame> {
    let mut expected = sent.clone();
    expected.ethernet.src_addr = appliance.appliance(to)?.mac;
    expected.ethernet.dst_addr = appliance.host(to)?.station.mac;
    expected.datagram.header.ttl -= 1;
    translate(&mut expected);
    Ok(expected)
}

/// Whether `frame` is a TCP segment to `dst`.
pub(crate) fn is_tcp_to(frame: &Ipv4Frame, dst: SocketAddrV4) -> bool {
    frame
        .datagram
        .endpoints()
        .is_some_and(|(_, to)| to == dst && frame.datagram.tcp().is_some())
}

/// Alpha opens a connection to the web server; returns the SYN sent and the SYN that left the
/// uplink, after checking the latter field by field.
fn alpha_syn_leaves_masqueraded(appliance: &SegmentedAppliance) -> Outcome<(Ipv4Frame, Ipv4Frame)> {
    let syn = appliance.syn_from_host(ALPHA_NIC, alpha(CLIENT_PORT), web_server(), CLIENT_ISN)?;
    appliance.send(ALPHA_NIC, &syn)?;
    let out = appliance.expect_on(UPLINK_NIC, "alpha's SYN to the web server", |frame| {
        is_tcp_to(frame, web_server())
    })?;
    // Masquerade: the uplink's address as source; the client's port is kept when free (it is:
    // this is the appliance's only flow).
    let expected = forwarded(appliance, &syn, UPLINK_NIC, |frame| {
        frame.datagram.header.src = appliance_address(UPLINK_NIC).address();
    })?;
    same_fields("the SYN leaving the uplink", &expected, &out)?;
    Ok((syn, out))
}

#[test]
fn client_syn_leaves_the_uplink_masqueraded_with_valid_checksums() -> Outcome {
    let appliance = SegmentedAppliance::boot("")?;
    alpha_syn_leaves_masqueraded(&appliance).map(|_| ())
}

#[test]
fn syn_ack_to_the_masqueraded_tuple_is_de_natted_back_to_the_client() -> Outcome {
    let appliance = SegmentedAppliance::boot("")?;
    let (_, out) = alpha_syn_leaves_masqueraded(&appliance)?;
    let (natted_src, _) = out
        .datagram
        .endpoints()
        .ok_or_else(|| Failure::new("the forwarded SYN has no ports"))?;

    // The server answers the translated tuple.
    let syn_ack = appliance.tcp_from_host(
        UPLINK_NIC,
        web_server(),
        natted_src,
        TcpSegment {
            ack: CLIENT_ISN.wrapping_add(1),
            flags: TcpFlags::SYN_ACK,
            window: 65_160,
            ..TcpSegment::syn(WEB_PORT, natted_src.port(), SERVER_ISN)
        },
    )?;
    appliance.send(UPLINK_NIC, &syn_ack)?;
    let back = appliance.expect_on(ALPHA_NIC, "the SYN-ACK, de-NATed to alpha", |frame| {
        frame.datagram.tcp().is_some_and(|tcp| tcp.flags.syn)
    })?;
    let expected = forwarded(&appliance, &syn_ack, ALPHA_NIC, |frame| {
        frame.datagram.header.dst = host_address(ALPHA_NIC);
        if let Some(tcp) = frame.datagram.tcp_mut() {
            tcp.dst_port = CLIENT_PORT;
        }
    })?;
    same_fields("the SYN-ACK delivered to alpha", &expected, &back)?;

    // The handshake's last ACK leaves with the same translation as the SYN.
    let ack = appliance.tcp_from_host(
        ALPHA_NIC,
        alpha(CLIENT_PORT),
        web_server(),
        TcpSegment {
            seq: CLIENT_ISN.wrapping_add(1),
            ack: SERVER_ISN.wrapping_add(1),
            flags: TcpFlags::ACK,
            window: 502,
            options: Vec::new(),
            ..TcpSegment::syn(CLIENT_PORT, WEB_PORT, 0)
        },
    )?;
    appliance.send(ALPHA_NIC, &ack)?;
    let ack_out = appliance.expect_on(UPLINK_NIC, "alpha's ACK to the web server", |frame| {
        is_tcp_to(frame, web_server()) && frame.datagram.tcp().is_some_and(|tcp| !tcp.flags.syn)
    })?;
    let expected = forwarded(&appliance, &ack, UPLINK_NIC, |frame| {
        frame.datagram.header.src = *natted_src.ip();
        if let Some(tcp) = frame.datagram.tcp_mut() {
            tcp.src_port = natted_src.port();
        }
    })?;
    same_fields("the ACK leaving the uplink", &expected, &ack_out)
}

#[test]
fn port_forwards_reach_the_client_they_name_with_the_source_kept() -> Outcome {
    let appliance = SegmentedAppliance::boot("")?;
    let outside = |port| SocketAddrV4::new(host_address(UPLINK_NIC), port);
    let (to_alpha_from, to_beta_from) = (outside(50_000), outside(50_001));
    let alpha_web = alpha(WEB_PORT);
    let beta_web = host_at(BETA_NIC, WEB_PORT);
    let to_alpha = appliance.syn_from_host(
        UPLINK_NIC,
        to_alpha_from,
        uplink_address(ALPHA_FORWARD_PORT),
        CLIENT_ISN,
    )?;
    let to_beta = appliance.syn_from_host(
        UPLINK_NIC,
        to_beta_from,
        uplink_address(BETA_FORWARD_PORT),
        SERVER_ISN,
    )?;
    appliance.send(UPLINK_NIC, &to_alpha)?;
    appliance.send(UPLINK_NIC, &to_beta)?;

    // Destination NAT only: the outside source stays, so the client sees who connects.
    let what =
        format!("the SYN to the uplink's port {ALPHA_FORWARD_PORT}, forwarded to {alpha_web}");
    let at_alpha = appliance.expect_on(ALPHA_NIC, &what, |frame| is_tcp_to(frame, alpha_web))?;
    let expected = forwarded(&appliance, &to_alpha, ALPHA_NIC, |frame| {
        frame.datagram.header.dst = *alpha_web.ip();
        if let Some(tcp) = frame.datagram.tcp_mut() {
            tcp.dst_port = WEB_PORT;
        }
    })?;
    same_fields(&what, &expected, &at_alpha)?;

    // Beta gets its own forward, and never alpha's (sent before it).
    let what = format!("the SYN to the uplink's port {BETA_FORWARD_PORT}, forwarded to {beta_web}");
    let at_beta = appliance.never_forwarded(
        BETA_NIC,
        &format!("the SYN for the uplink's port {ALPHA_FORWARD_PORT} (alpha's)"),
        |frame| {
            frame
                .datagram
                .endpoints()
                .is_some_and(|(from, _)| from == to_alpha_from)
        },
        &what,
        |frame| is_tcp_to(frame, beta_web),
    )?;
    let expected = forwarded(&appliance, &to_beta, BETA_NIC, |frame| {
        frame.datagram.header.dst = *beta_web.ip();
        if let Some(tcp) = frame.datagram.tcp_mut() {
            tcp.dst_port = WEB_PORT;
        }
    })?;
    same_fields(&what, &expected, &at_beta)
}
