//! What the policy and the appliance's own checks keep out: blocked and rejected packets,
//! spoofed sources, client isolation, TTL expiry, and what the appliance itself answers.

mod appliance_common;

use appliance_common::*;
use dataplane::drops::DropReason;
use dataplane::packet::tcp_flags::{ACK, RST, SYN};
use dataplane::testutil::packets;
use smoltcp::wire::IpProtocol;

/// `policy`'s network, with the client attached and the gateway known.
fn lab_with(policy: &'static dataplane::policy::PolicyBuf) -> Lab {
    let mut lab = Lab::new(policy);
    lab.attach(CLIENT);
    lab.teach(GATEWAY);
    lab
}

/// Asserts that `reason` is the only drop counted, once, on `nic`.
fn assert_only_drop(lab: &Lab, nic: u8, reason: DropReason) {
    let counters = lab.appliance.drop_counters();
    assert_eq!(
        (counters.get(reason), counters.total()),
        (1, 1),
        "drops: {counters:?}"
    );
    assert_eq!(
        lab.appliance.counters(nic).map(|c| c.dropped),
        Some(1),
        "drops on nic{nic}"
    );
}

#[test]
fn inbound_connection_from_the_uplink_never_appears_on_any_nic_and_is_counted_under_policy() {
    let mut lab = lab_with(&DEFAULT);
    let syn = packets::tcp_syn(REMOTE, 40000, CLIENT.ip, 22);
    lab.send(GATEWAY, &syn).assert_nothing();
    assert_only_drop(&lab, UPLINK, DropReason::Policy);
    assert_eq!(lab.live_states(), 0);

    let drop_line = take_log_lines()
        .into_iter()
        .find(|l| l.starts_with("drop "))
        .expect("the drop is logged");
    assert_eq!(
        drop_line,
        "drop nic0 block default 22:1 tcp 203.0.113.9:40000 -> 10.137.1.10:22"
    );
}

#[test]
fn connection_to_the_appliance_from_the_uplink_is_blocked() {
    let mut lab = lab_with(&DEFAULT);
    lab.send(
        GATEWAY,
        &packets::tcp_syn(REMOTE, 40000, APPLIANCE_UPLINK, 22),
    )
    .assert_nothing();
    assert_only_drop(&lab, UPLINK, DropReason::Policy);
}

#[test]
fn reject_of_tcp_answers_the_client_with_a_reset_from_the_server() {
    let mut lab = lab_with(&REJECTING);
    let syn = packets::tcp_syn(CLIENT.ip, 40000, SERVER, 25);
    let reset = lab.send(CLIENT, &syn).ipv4_to(CLIENT);
    assert_eq!(
        tcp_of(&reset),
        TcpSeen {
            src: sock(SERVER, 25),
            dst: sock(CLIENT.ip, 40000),
            seq: 0,
            ack: 1001,
            flags: RST | ACK,
            payload: Vec::new(),
        }
    );
    assert_only_drop(&lab, CLIENTS, DropReason::Policy);
    assert_eq!(lab.live_states(), 0, "reject creates no state");
}

#[test]
fn reject_of_tcp_with_an_ack_answers_with_its_ack_as_sequence_number() {
    let mut lab = lab_with(&REJECTING);
    // Not a SYN: the policy decides it (no state), and rejects it before state tracking.
    let stray = segment(
        sock(CLIENT.ip, 40000),
        sock(SERVER, 25),
        7777,
        4242,
        ACK,
        &[],
    );
    let reset = tcp_of(&lab.send(CLIENT, &stray).ipv4_to(CLIENT));
    assert_eq!((reset.seq, reset.flags), (4242, RST));
}

#[test]
fn reject_of_udp_answers_the_client_with_admin_prohibited_from_the_appliance() {
    let mut lab = lab_with(&REJECTING);
    let datagram = packets::udp(CLIENT.ip, 5000, SERVER, 137, b"netbios");
    let error = lab.send(CLIENT, &datagram).ipv4_to(CLIENT);
    assert_eq!(
        icmp_error_of(&error),
        IcmpErrorSeen {
            src: ip(APPLIANCE_CLIENTS),
            dst: ip(CLIENT.ip),
            icmp_type: 3,
            code: 13,
            quoted_src: sock(CLIENT.ip, 5000),
            quoted_dst: sock(SERVER, 137),
            quoted_protocol: IpProtocol::Udp,
        }
    );
    assert_eq!(
        quote_of(&error),
        datagram,
        "the whole datagram is quoted, as it arrived"
    );
    assert_only_drop(&lab, CLIENTS, DropReason::Policy);
}

#[test]
fn rejected_traffic_next_to_passed_traffic_is_told_apart_by_port() {
    let mut lab = lab_with(&REJECTING);
    let out = lab
        .send(CLIENT, &packets::tcp_syn(CLIENT.ip, 40000, SERVER, 587))
        .ipv4_to(GATEWAY);
    assert_eq!(tcp_of(&out).dst, sock(SERVER, 587));
}

#[test]
fn client_sending_from_a_foreign_address_is_dropped_as_spoofed() {
    let mut lab = lab_with(&DEFAULT);
    let spoofed = packets::tcp_syn([192, 168, 7, 7], 40000, SERVER, 443);
    lab.send(CLIENT, &spoofed).assert_nothing();
    assert_only_drop(&lab, CLIENTS, DropReason::Spoofed);
    assert_eq!(lab.live_states(), 0);
}

#[test]
fn client_sending_as_the_appliance_is_dropped_as_spoofed() {
    let mut lab = lab_with(&DEFAULT);
    lab.send(
        CLIENT,
        &packets::tcp_syn(APPLIANCE_UPLINK, 40000, SERVER, 443),
    )
    .assert_nothing();
    assert_only_drop(&lab, CLIENTS, DropReason::Spoofed);
}

#[test]
fn uplink_packet_with_a_client_network_source_is_dropped_as_spoofed() {
    let mut lab = lab_with(&DEFAULT);
    // Even a packet that would hit a live state: the client's own flow, spoofed back in.
    let connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
    let posing = segment(
        sock([10, 137, 1, 99], 443),
        connection.inside,
        1,
        1,
        ACK,
        b"x",
    );
    lab.send(GATEWAY, &posing).assert_nothing();
    assert_only_drop(&lab, UPLINK, DropReason::Spoofed);
}

#[test]
fn undeclared_address_on_a_declared_client_network_is_dropped_as_spoofed() {
    let mut lab = lab_with(&DECLARED);
    lab.send(
        CLIENT,
        &packets::tcp_syn([10, 137, 1, 50], 40000, SERVER, 443),
    )
    .assert_nothing();
    assert_only_drop(&lab, CLIENTS, DropReason::Spoofed);
}

#[test]
fn ttl_1_yields_time_exceeded_from_the_ingress_address() {
    let mut lab = lab_with(&DEFAULT);
    let syn = with_ttl(packets::tcp_syn(CLIENT.ip, 40000, SERVER, 443), 1);
    let error = lab.send(CLIENT, &syn).ipv4_to(CLIENT);
    assert_eq!(
        icmp_error_of(&error),
        IcmpErrorSeen {
            src: ip(APPLIANCE_CLIENTS),
            dst: ip(CLIENT.ip),
            icmp_type: 11,
            code: 0,
            quoted_src: sock(CLIENT.ip, 40000),
            quoted_dst: sock(SERVER, 443),
            quoted_protocol: IpProtocol::Tcp,
        }
    );
    assert_eq!(
        &quote_of(&error)[..],
        &syn[..],
        "the segment is quoted as it arrived"
    );
    assert_only_drop(&lab, CLIENTS, DropReason::TtlExceeded);
    assert_eq!(lab.live_states(), 0, "an expired packet opens no state");
}

#[test]
fn ttl_1_on_a_reply_yields_time_exceeded_from_the_uplink_address() {
    let mut lab = lab_with(&DEFAULT);
    let connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
    let late = with_ttl(connection.segment_from_server(ACK, b"data"), 1);
    let error = lab.send(GATEWAY, &late).ipv4_to(GATEWAY);
    let seen = icmp_error_of(&error);
    assert_eq!((seen.src, seen.dst), (ip(APPLIANCE_UPLINK), ip(SERVER)));
    assert_eq!((seen.icmp_type, seen.code), (11, 0));
    assert_eq!(
        (seen.quoted_src, seen.quoted_dst),
        (connection.server, connection.outside)
    );
    assert_only_drop(&lab, UPLINK, DropReason::TtlExceeded);
}

#[test]
fn ping_to_the_appliance_is_answered_on_the_client_side() {
    let mut lab = lab_with(&DEFAULT);
    let ping = packets::icmp_echo(
        CLIENT.ip,
        APPLIANCE_CLIENTS,
        true,
        0x77,
        3,
        b"are you there",
    );
    let sent = lab.send(CLIENT, &ping);
    let reply = sent.ipv4_to(CLIENT);
    assert_eq!(
        echo_of(&reply),
        EchoSeen {
            src: ip(APPLIANCE_CLIENTS),
            dst: ip(CLIENT.ip),
            request: false,
            ident: 0x77,
            seq_no: 3,
            data: b"are you there".to_vec(),
        }
    );
    assert_eq!(lab.appliance.drop_counters().total(), 0);
}

#[test]
fn ping_to_the_appliance_from_the_uplink_gets_no_answer() {
    let mut lab = lab_with(&DEFAULT);
    let ping = packets::icmp_echo(GATEWAY.ip, APPLIANCE_UPLINK, true, 0x77, 3, b"anyone?");
    lab.send(GATEWAY, &ping).assert_nothing();
    assert_only_drop(&lab, UPLINK, DropReason::Policy);
}

#[test]
fn other_services_of_the_appliance_are_closed_to_clients() {
    let mut lab = lab_with(&DEFAULT);
    lab.send(
        CLIENT,
        &packets::tcp_syn(CLIENT.ip, 40000, APPLIANCE_CLIENTS, 22),
    )
    .assert_nothing();
    assert_only_drop(&lab, CLIENTS, DropReason::Policy);
}

#[test]
fn client_cannot_reach_another_client_on_its_network() {
    let mut lab = lab_with(&DEFAULT);
    lab.attach(CLIENT2);
    lab.send(CLIENT, &packets::tcp_syn(CLIENT.ip, 40000, CLIENT2.ip, 22))
        .assert_nothing();
    lab.send(
        CLIENT,
        &packets::icmp_echo(CLIENT.ip, CLIENT2.ip, true, 1, 1, b"hi"),
    )
    .assert_nothing();
    assert_eq!(lab.dropped(DropReason::Policy), 2);
    assert_eq!(lab.live_states(), 0);
}

#[test]
fn client_cannot_reach_a_client_of_another_network() {
    let mut lab = lab_with(&TWO_NETWORKS);
    lab.attach(LAB_CLIENT);
    lab.send(
        CLIENT,
        &packets::tcp_syn(CLIENT.ip, 40000, LAB_CLIENT.ip, 22),
    )
    .assert_nothing();
    lab.send(
        LAB_CLIENT,
        &packets::tcp_syn(LAB_CLIENT.ip, 40000, CLIENT.ip, 22),
    )
    .assert_nothing();
    assert_eq!(lab.dropped(DropReason::Policy), 2);
    // Both still reach the outside.
    Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
    Connection::open(&mut lab, LAB_CLIENT, 40000, sock(SERVER, 443));
}

#[test]
fn client_posing_as_a_host_of_another_client_network_is_dropped_as_spoofed() {
    let mut lab = lab_with(&TWO_NETWORKS);
    lab.send(CLIENT, &packets::tcp_syn(LAB_CLIENT.ip, 40000, SERVER, 443))
        .assert_nothing();
    assert_only_drop(&lab, CLIENTS, DropReason::Spoofed);
}

#[test]
fn syn_ack_without_a_syn_opens_nothing() {
    let mut lab = lab_with(&DEFAULT);
    let unsolicited = segment(
        sock(CLIENT.ip, 40000),
        sock(SERVER, 443),
        1,
        1,
        SYN | ACK,
        &[],
    );
    lab.send(CLIENT, &unsolicited).assert_nothing();
    assert_only_drop(&lab, CLIENTS, DropReason::InvalidState);
    assert_eq!(lab.live_states(), 0);
}
