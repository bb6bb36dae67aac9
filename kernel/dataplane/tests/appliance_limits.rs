//! Bounds and time: IP fragments following their first fragment (or dropped), a small state
//! table under a SYN flood and full of established flows, and states expiring on the fake
//! clock.

mod appliance_common;

use appliance_common::*;
use dataplane::appliance::ApplianceOptions;
use dataplane::drops::DropReason;
use dataplane::packet::tcp_flags::{ACK, PSH};
use dataplane::testutil::packets::{self, checksums_valid};
use smoltcp::time::Duration;
use smoltcp::wire::Ipv4Packet;

fn small_table(capacity: usize) -> ApplianceOptions {
    ApplianceOptions {
        state_capacity: capacity,
        ..ApplianceOptions::default()
    }
}

#[test]
fn fragmented_udp_from_a_client_leaves_with_every_fragment_natted() {
    let mut lab = Lab::with_clients_and_options(&DEFAULT, ApplianceOptions::default());
    // CLIENT2 holds port 7000 towards the server, so CLIENT's datagram gets another port:
    // the first fragment's UDP header (and checksum) is rewritten too.
    lab.send(
        CLIENT2,
        &packets::udp(CLIENT2.ip, 7000, SERVER, 9000, b"hold"),
    )
    .ipv4_to(GATEWAY);

    let body: Vec<u8> = (0..2000u32).map(|i| (i * 7 % 251) as u8).collect();
    let datagram = packets::udp(CLIENT.ip, 7000, SERVER, 9000, &body);
    let pieces = fragments(&datagram, 800);
    assert_eq!(pieces.len(), 3);

    let left: Vec<Vec<u8>> = pieces
        .iter()
        .map(|piece| lab.send(CLIENT, piece).ipv4_fragment_to(GATEWAY))
        .collect();
    for (piece, out) in pieces.iter().zip(&left) {
        let (sent, seen) = (
            Ipv4Packet::new_checked(&piece[..]).unwrap(),
            Ipv4Packet::new_checked(&out[..]).unwrap(),
        );
        assert_eq!(
            (seen.src_addr(), seen.dst_addr()),
            (ip(APPLIANCE_UPLINK), ip(SERVER))
        );
        assert_eq!(seen.hop_limit(), 63);
        assert_eq!(seen.ident(), sent.ident());
        assert_eq!(
            (seen.frag_offset(), seen.more_frags()),
            (sent.frag_offset(), sent.more_frags())
        );
        assert_eq!(seen.payload().len(), sent.payload().len());
    }

    // The server reassembles one valid datagram from the masqueraded address and port.
    let whole = reassembled(&left);
    assert!(
        checksums_valid(&whole),
        "the reassembled datagram's checksums"
    );
    let seen = udp_of(&whole);
    assert_eq!(
        (*seen.src.ip(), seen.dst),
        (ip(APPLIANCE_UPLINK), sock(SERVER, 9000))
    );
    assert_ne!(seen.src.port(), 7000, "remapped: CLIENT2 holds 7000");
    assert_eq!(seen.payload, body);

    // The reply comes back to CLIENT.
    let reply = packets::udp(SERVER, 9000, APPLIANCE_UPLINK, seen.src.port(), b"ok");
    assert_eq!(
        udp_of(&lab.send(GATEWAY, &reply).ipv4_to(CLIENT)).dst,
        sock(CLIENT.ip, 7000)
    );
}

#[test]
fn later_fragment_without_its_first_is_dropped_as_orphan() {
    let mut lab = Lab::with_clients_and_options(&DEFAULT, ApplianceOptions::default());
    let datagram = packets::udp(CLIENT.ip, 7000, SERVER, 9000, &[0x55; 1600]);
    let pieces = fragments(&datagram, 800);
    lab.send(CLIENT, &pieces[1]).assert_nothing();
    lab.send(CLIENT, &pieces[2]).assert_nothing();
    assert_eq!(lab.dropped(DropReason::OrphanFragment), 2);
    assert_eq!(lab.appliance.drop_counters().total(), 2);
}

#[test]
fn later_fragments_of_a_blocked_datagram_are_dropped_too() {
    let mut lab = Lab::with_clients_and_options(&DEFAULT, ApplianceOptions::default());
    let datagram = packets::udp(CLIENT.ip, 7000, CLIENT2.ip, 9000, &[0x55; 1600]);
    let pieces = fragments(&datagram, 800);
    for piece in &pieces {
        lab.send(CLIENT, piece).assert_nothing();
    }
    assert_eq!(lab.dropped(DropReason::Policy), 1);
    assert_eq!(lab.dropped(DropReason::OrphanFragment), 2);
}

#[test]
fn syn_flood_does_not_starve_an_established_flow_or_a_new_legitimate_one() {
    let mut lab = Lab::with_clients_and_options(&DEFAULT, small_table(8));
    let mut established = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));

    // CLIENT2 floods SYNs, far more than the table holds: each takes the place of the
    // oldest half-open state.
    for port in 1024..1064 {
        let syn = packets::tcp_syn(CLIENT2.ip, port, SERVER, 80);
        lab.send(CLIENT2, &syn).ipv4_to(GATEWAY);
    }
    let stats = lab.appliance.state_stats();
    assert_eq!((stats.live, stats.capacity), (8, 8));
    assert_eq!(stats.early_drops, 40 + 1 - 8);

    established.client_sends(&mut lab, PSH | ACK, b"still flowing");
    established.server_sends(&mut lab, PSH | ACK, b"both ways");
    let mut newcomer = Connection::open(&mut lab, CLIENT, 40001, sock(SERVER, 443));
    newcomer.server_sends(&mut lab, PSH | ACK, b"welcome");
    assert_eq!(lab.appliance.drop_counters().total(), 0);
}

#[test]
fn table_full_of_established_flows_refuses_a_new_flow_and_counts_it() {
    let mut lab = Lab::with_clients_and_options(&DEFAULT, small_table(4));
    let flows: Vec<Connection> = (0..4)
        .map(|i| Connection::open(&mut lab, CLIENT, 40000 + i, sock(SERVER, 443)))
        .collect();

    lab.send(CLIENT2, &packets::tcp_syn(CLIENT2.ip, 50000, SERVER, 443))
        .assert_nothing();
    lab.send(CLIENT2, &packets::udp(CLIENT2.ip, 50000, SERVER, 53, b"q"))
        .assert_nothing();
    assert_eq!(lab.dropped(DropReason::StateTableFull), 2);
    let stats = lab.appliance.state_stats();
    assert_eq!(
        (stats.live, stats.refused.table_full, stats.early_drops),
        (4, 2, 0)
    );
    let log = take_log_lines();
    assert!(
        log.iter().any(|l| l
            .starts_with("drop nic1 state-table-full tcp 10.137.1.11:50000 -> 93.184.216.34:443")),
        "the refusal is logged: {log:?}"
    );

    // The established flows are untouched.
    for mut flow in flows {
        flow.server_sends(&mut lab, PSH | ACK, b"fine");
    }
}

#[test]
fn client_state_limit_refuses_its_flows_beyond_the_limit_and_no_one_elses() {
    let mut lab = Lab::with_clients_and_options(&LIMITED, ApplianceOptions::default());
    Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
    Connection::open(&mut lab, CLIENT, 40001, sock(SERVER, 443));
    let third = packets::tcp_syn(CLIENT.ip, 40002, SERVER, 443);
    lab.send(CLIENT, &third).assert_nothing();
    assert_eq!(lab.dropped(DropReason::StateLimit), 1);
    assert_eq!(lab.appliance.state_stats().refused.client_limit, 1);
    let log = take_log_lines();
    assert!(
        log.iter().any(|l| l.starts_with(
            "drop nic1 state-limit (client-state-limit) tcp 10.137.1.10:40002 -> 93.184.216.34:443"
        )),
        "a state limit is security-relevant: the refusal is logged: {log:?}"
    );
    Connection::open(&mut lab, CLIENT2, 40002, sock(SERVER, 443));
}

#[test]
fn rule_state_limit_refuses_flows_beyond_the_limit_while_other_rules_still_pass() {
    let mut lab = Lab::with_clients_and_options(&LIMITED, ApplianceOptions::default());
    Connection::open(&mut lab, CLIENT2, 40000, sock(SERVER, 22));
    let second_ssh = packets::tcp_syn(CLIENT.ip, 40001, OTHER_SERVER, 22);
    lab.send(CLIENT, &second_ssh).assert_nothing();
    assert_eq!(lab.dropped(DropReason::StateLimit), 1);
    assert_eq!(lab.appliance.state_stats().refused.rule_limit, 1);
    Connection::open(&mut lab, CLIENT, 40001, sock(OTHER_SERVER, 443));
}

/// A client's UDP query has left; returns the reply the server will send to it.
fn udp_query_out(lab: &mut Lab) -> Vec<u8> {
    let query = packets::udp(CLIENT.ip, 5000, SERVER, 123, b"ntp query");
    let outside = udp_of(&lab.send(CLIENT, &query).ipv4_to(GATEWAY)).src;
    packets::udp(SERVER, 123, APPLIANCE_UPLINK, outside.port(), b"ntp reply")
}

/// Asserts that the server's `reply` no longer reaches the client: its state is gone, so
/// it is unsolicited inbound traffic.
fn assert_reply_refused(lab: &mut Lab, reply: &[u8]) {
    lab.send(GATEWAY, reply).assert_nothing();
    assert_eq!(
        lab.dropped(DropReason::Policy),
        1,
        "with its state gone, the reply is inbound traffic"
    );
    lab.poll();
    assert_eq!(lab.live_states(), 0);
}

#[test]
fn udp_reply_passes_within_the_first_timeout_and_not_after_it() {
    let mut lab = Lab::with_clients_and_options(&DEFAULT, ApplianceOptions::default());
    let reply = udp_query_out(&mut lab);
    lab.advance(Duration::from_secs(59)); // pf's udp.first is 60 s
    lab.attach(CLIENT); // The client's ARP entry is confirmed, as the client would.
    lab.send(GATEWAY, &reply).ipv4_to(CLIENT);

    let mut late = Lab::with_clients_and_options(&DEFAULT, ApplianceOptions::default());
    let reply = udp_query_out(&mut late);
    late.advance(Duration::from_secs(61));
    assert_reply_refused(&mut late, &reply);
}

#[test]
fn udp_flow_answered_once_lives_for_the_single_timeout() {
    let mut lab = Lab::with_clients_and_options(&DEFAULT, ApplianceOptions::default());
    let reply = udp_query_out(&mut lab);
    lab.advance(Duration::from_secs(10));
    lab.send(GATEWAY, &reply).ipv4_to(CLIENT);
    lab.advance(Duration::from_secs(29)); // pf's udp.single is 30 s
    lab.attach(CLIENT); // The client's ARP entry is confirmed, as the client would.
    lab.send(GATEWAY, &reply).ipv4_to(CLIENT);
    lab.advance(Duration::from_secs(31));
    assert_reply_refused(&mut lab, &reply);
}

#[test]
fn udp_flow_with_traffic_both_ways_lives_for_the_multiple_timeout() {
    let mut lab = Lab::with_clients_and_options(&DEFAULT, ApplianceOptions::default());
    let reply = udp_query_out(&mut lab);
    lab.send(GATEWAY, &reply).ipv4_to(CLIENT);
    udp_query_out(&mut lab);
    lab.send(GATEWAY, &reply).ipv4_to(CLIENT);
    lab.advance(Duration::from_secs(59)); // pf's udp.multiple is 60 s
    lab.attach(CLIENT); // The client's ARP entry (60 s) is renewed, as the client would.
    lab.send(GATEWAY, &reply).ipv4_to(CLIENT);
    lab.advance(Duration::from_secs(61));
    assert_reply_refused(&mut lab, &reply);
}

#[test]
fn expired_states_are_swept_by_poll_and_free_their_nat_ports() {
    let mut lab = Lab::with_clients_and_options(&DEFAULT, ApplianceOptions::default());
    for port in 5000..5010 {
        lab.send(CLIENT, &packets::udp(CLIENT.ip, port, SERVER, 53, b"q"))
            .ipv4_to(GATEWAY);
    }
    lab.send(
        CLIENT,
        &packets::icmp_echo(CLIENT.ip, SERVER, true, 9, 1, b"p"),
    )
    .ipv4_to(GATEWAY);
    let stats = lab.appliance.state_stats();
    assert_eq!(
        (
            stats.live,
            stats.by_protocol.udp,
            stats.by_protocol.icmp,
            stats.nat_ports_in_use
        ),
        (11, 10, 1, 11)
    );

    lab.advance(Duration::from_secs(21)); // icmp.first is 20 s
    lab.poll();
    assert_eq!(lab.appliance.state_stats().by_protocol.icmp, 0);
    lab.advance(Duration::from_secs(40)); // udp.first is 60 s
    lab.poll();
    let stats = lab.appliance.state_stats();
    assert_eq!((stats.live, stats.nat_ports_in_use), (0, 0));
}
