//! Policy bypasses found by attacking the data plane with crafted frames (issue 8): SCTP
//! ports, IP options, unicast packets in link-layer broadcasts, and a port forward's pass
//! rule opening the client's private address. Each test sends the packet that showed the
//! bypass and says what must become of it.

mod appliance_common;

use appliance_common::*;
use dataplane::drops::DropReason;
use dataplane::sctp::{self, SctpPacket};
use dataplane::testutil::packets::{self, checksums_valid, with_ip_options, ROUTER_ALERT};
use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv4Packet, UdpPacket};

/// An SCTP packet's addresses and ports, its CRC32c checked.
fn sctp_of(packet: &[u8]) -> (Ipv4Address, u16, Ipv4Address, u16) {
    let ip = Ipv4Packet::new_checked(packet).expect("an IPv4 packet");
    assert_eq!(ip.next_header(), sctp::PROTOCOL, "SCTP");
    let sctp = SctpPacket::new_checked(ip.payload()).expect("an SCTP common header");
    assert!(sctp.verify_checksum(), "SCTP checksum");
    (
        ip.src_addr(),
        sctp.src_port(),
        ip.dst_addr(),
        sctp.dst_port(),
    )
}

/// A server's INIT-ACK-like answer (the chunk's content does not matter to a router).
fn sctp_answer(from: ([u8; 4], u16), to: ([u8; 4], u16)) -> Vec<u8> {
    packets::sctp(from, to, 0x6d6f_6174, &[2, 0, 0, 4])
}

// 1. SCTP ports.

#[test]
fn sctp_to_a_blocked_port_goes_nowhere() {
    let mut lab = Lab::with_clients(&SCTP_BLOCKED);
    let init = packets::sctp_init(CLIENT.ip, 40000, SERVER, 9999);
    lab.send(CLIENT, &init).assert_nothing();
    assert_eq!(lab.dropped(DropReason::Policy), 1);
    assert_eq!(lab.live_states(), 0);
}

#[test]
fn sctp_to_another_port_leaves_masqueraded_with_its_ports_and_its_answer_comes_back() {
    let mut lab = Lab::with_clients(&SCTP_BLOCKED);
    let init = packets::sctp_init(CLIENT.ip, 40000, SERVER, 9998);
    let left = lab.send(CLIENT, &init).ipv4_to(GATEWAY);
    assert_eq!(
        sctp_of(&left),
        (ip(APPLIANCE_UPLINK), 40000, ip(SERVER), 9998),
        "masqueraded, ports kept, CRC32c still valid"
    );

    let answer = sctp_answer((SERVER, 9998), (APPLIANCE_UPLINK, 40000));
    let delivered = lab.send(GATEWAY, &answer).ipv4_to(CLIENT);
    assert_eq!(
        sctp_of(&delivered),
        (ip(SERVER), 9998, ip(CLIENT.ip), 40000)
    );

    // The state is the association's ports: another port finds nothing.
    let stray = sctp_answer((SERVER, 9998), (APPLIANCE_UPLINK, 40001));
    lab.send(GATEWAY, &stray).assert_nothing();
    let stray = sctp_answer((SERVER, 9997), (APPLIANCE_UPLINK, 40000));
    lab.send(GATEWAY, &stray).assert_nothing();
}

#[test]
fn two_clients_cannot_share_the_uplink_address_with_one_sctp_port_pair() {
    let mut lab = Lab::with_clients(&SCTP_BLOCKED);
    let first = packets::sctp_init(CLIENT.ip, 40000, SERVER, 9998);
    lab.send(CLIENT, &first).ipv4_to(GATEWAY);
    // SCTP keeps its ports through masquerade (its checksum covers them and no
    // pseudo-header): the second association would be the first one's twin.
    let second = packets::sctp_init(CLIENT2.ip, 40000, SERVER, 9998);
    lab.send(CLIENT2, &second).assert_nothing();
    assert_eq!(lab.dropped(DropReason::NatExhausted), 1);
    let answer = sctp_answer((SERVER, 9998), (APPLIANCE_UPLINK, 40000));
    lab.send(GATEWAY, &answer).ipv4_to(CLIENT);
}

// 3. IP options.

#[test]
fn a_packet_with_ip_options_is_dropped_and_logged_by_default() {
    let mut lab = Lab::with_clients(&DEFAULT);
    let plain = packets::udp(CLIENT.ip, 5000, SERVER, 5004, b"stream");
    let with_options = with_ip_options(&plain, &ROUTER_ALERT);
    lab.send(CLIENT, &with_options).assert_nothing();
    assert_eq!(lab.dropped(DropReason::IpOptions), 1);
    assert_eq!(lab.live_states(), 0);
    let lines = take_log_lines();
    assert!(
        lines.iter().any(|l| l.contains("nic1 ip-options")),
        "{lines:?}"
    );
    lab.send(CLIENT, &plain).ipv4_to(GATEWAY);
}

#[test]
fn a_rule_that_allows_options_forwards_them_unchanged() {
    let mut lab = Lab::with_clients(&OPTIONS_ALLOWED);
    let packet = with_ip_options(
        &packets::udp(CLIENT.ip, 5000, SERVER, 5004, b"stream"),
        &ROUTER_ALERT,
    );
    let left = lab.send(CLIENT, &packet).ipv4_to(GATEWAY);
    let ip = Ipv4Packet::new_checked(&left[..]).unwrap();
    assert_eq!(ip.header_len(), 24);
    assert_eq!(&left[20..24], &ROUTER_ALERT);
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!(
        (ip.src_addr(), udp.src_port()),
        (appliance_common::ip(APPLIANCE_UPLINK), 5000)
    );

    // The rule that passes everything else does not allow them.
    let other = with_ip_options(
        &packets::udp(CLIENT.ip, 5000, SERVER, 5005, b"stream"),
        &ROUTER_ALERT,
    );
    lab.send(CLIENT, &other).assert_nothing();
    assert_eq!(lab.dropped(DropReason::IpOptions), 1);
}

#[test]
fn source_routes_and_route_recording_never_pass_even_where_options_are_allowed() {
    let mut lab = Lab::with_clients(&OPTIONS_ALLOWED);
    let plain = packets::udp(CLIENT.ip, 5000, SERVER, 5004, b"stream");
    for option in [
        packets::loose_source_route(&[[198, 51, 100, 1]]),
        packets::record_route(4),
    ] {
        lab.send(CLIENT, &with_ip_options(&plain, &option))
            .assert_nothing();
    }
    assert_eq!(lab.dropped(DropReason::IpOptions), 2);
    assert_eq!(lab.live_states(), 0);
}

#[test]
fn the_packets_of_a_flow_carry_options_only_if_the_rule_that_passed_it_allows_them() {
    for (policy, port, allowed) in [(&DEFAULT, 5004, false), (&OPTIONS_ALLOWED, 5004, true)] {
        let mut lab = Lab::with_clients(policy);
        let query = packets::udp(CLIENT.ip, 5000, SERVER, port, b"hello");
        lab.send(CLIENT, &query).ipv4_to(GATEWAY);
        let answer = with_ip_options(
            &packets::udp(SERVER, port, APPLIANCE_UPLINK, 5000, b"hi"),
            &ROUTER_ALERT,
        );
        let sent = lab.send(GATEWAY, &answer);
        if allowed {
            sent.ipv4_to(CLIENT);
        } else {
            sent.assert_nothing();
            assert_eq!(lab.dropped(DropReason::IpOptions), 1);
        }
    }
}

#[test]
fn a_ping_to_the_appliance_with_options_is_answered_only_where_allowed() {
    let ping = |options: &[u8]| {
        with_ip_options(
            &packets::icmp_echo(CLIENT.ip, APPLIANCE_CLIENTS, true, 7, 1, b"ping"),
            options,
        )
    };
    let mut lab = Lab::with_clients(&DEFAULT);
    lab.send(CLIENT, &ping(&ROUTER_ALERT)).assert_nothing();
    assert_eq!(lab.dropped(DropReason::IpOptions), 1);

    let mut lab = Lab::with_clients(&OPTIONS_ALLOWED);
    let reply = lab.send(CLIENT, &ping(&ROUTER_ALERT)).ipv4_to(CLIENT);
    assert_eq!(echo_of(&reply).ident, 7);
    let source_routed = ping(&packets::loose_source_route(&[APPLIANCE_CLIENTS]));
    lab.send(CLIENT, &source_routed).assert_nothing();
    assert_eq!(lab.dropped(DropReason::IpOptions), 1);
}

// 4. Unicast packets in link-layer broadcasts and multicasts.

#[test]
fn a_unicast_packet_in_a_broadcast_or_multicast_frame_is_not_forwarded() {
    let mut lab = Lab::with_clients(&DEFAULT);
    let syn = packets::tcp_syn(CLIENT.ip, 40000, SERVER, 443);
    for link in [
        EthernetAddress::BROADCAST,
        EthernetAddress([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]),
    ] {
        let frame = packets::ethernet(CLIENT.mac, link, &syn);
        lab.receive(CLIENT.nic, frame).assert_nothing();
    }
    assert_eq!(lab.dropped(DropReason::LinkBroadcast), 2);
    assert_eq!(lab.live_states(), 0);
    lab.send(CLIENT, &syn).ipv4_to(GATEWAY);
}

#[test]
fn a_reply_in_a_broadcast_frame_is_not_forwarded_either() {
    let mut lab = Lab::with_clients(&DEFAULT);
    let query = packets::udp(CLIENT.ip, 5353, SERVER, 53, b"query");
    lab.send(CLIENT, &query).ipv4_to(GATEWAY);
    let answer = packets::udp(SERVER, 53, APPLIANCE_UPLINK, 5353, b"answer");
    let broadcast = packets::ethernet(GATEWAY.mac, EthernetAddress::BROADCAST, &answer);
    lab.receive(UPLINK, broadcast).assert_nothing();
    assert_eq!(lab.dropped(DropReason::LinkBroadcast), 1);
    lab.send(GATEWAY, &answer).ipv4_to(CLIENT);
}

#[test]
fn a_ping_to_the_appliance_in_a_broadcast_frame_is_still_answered() {
    let mut lab = Lab::with_clients(&DEFAULT);
    let ping = packets::icmp_echo(CLIENT.ip, APPLIANCE_CLIENTS, true, 9, 1, b"ping");
    let frame = packets::ethernet(CLIENT.mac, EthernetAddress::BROADCAST, &ping);
    let reply = lab.receive(CLIENT.nic, frame).ipv4_to(CLIENT);
    assert_eq!(echo_of(&reply).ident, 9);
}

// 6. A port forward's pass rule.

#[test]
fn a_forwarded_pass_rule_opens_the_forward_and_not_the_clients_private_address() {
    let mut lab = Lab::with_clients(&FORWARDED_ONLY);
    let direct = packets::tcp_syn(REMOTE, 40000, CLIENT.ip, 22);
    lab.send(GATEWAY, &direct).assert_nothing();
    assert_eq!(lab.dropped(DropReason::Policy), 1);

    let through_the_forward = packets::tcp_syn(REMOTE, 40000, APPLIANCE_UPLINK, 8022);
    let delivered = tcp_of(&lab.send(GATEWAY, &through_the_forward).ipv4_to(CLIENT));
    assert_eq!(
        (delivered.src, delivered.dst),
        (sock(REMOTE, 40000), sock(CLIENT.ip, 22))
    );
}

#[test]
fn a_plain_pass_rule_for_a_forward_still_opens_both_ways_as_its_warning_says() {
    // DECLARED passes its forward with a plain rule (the compiler warns about it): the
    // private address is open too, exactly as the rule says.
    let mut lab = Lab::with_clients(&DECLARED);
    let direct = packets::tcp_syn(REMOTE, 40000, CLIENT.ip, 22);
    lab.send(GATEWAY, &direct).ipv4_to(CLIENT);
    assert!(checksums_valid(&direct));
}
