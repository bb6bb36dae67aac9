//! One client must never hurt another (issue 8): the shipped `default.rules` keeps one
//! client from taking the whole state table.

mod appliance_common;

use appliance_common::*;
use dataplane::appliance::ApplianceOptions;
use dataplane::drops::DropReason;
use dataplane::testutil::packets;
use dataplane::testutil::packets6::{self, addr};
use smoltcp::wire::{Ipv6Packet, UdpPacket};

/// A state table twice the size of `default.rules`' per-client share (the kernel's is far
/// bigger: a quarter of the heap, about 75,000 states in 64 MiB).
const CAPACITY: usize = 8192;

#[test]
fn one_client_with_thousands_of_answered_flows_cannot_stop_another_from_opening_one() {
    let mut lab = Lab::with_options(
        &DEFAULT,
        ApplianceOptions {
            state_capacity: CAPACITY,
            ..ApplianceOptions::default()
        },
    );
    lab.attach(CLIENT);
    lab.attach(CLIENT2);
    lab.teach(GATEWAY);

    // CLIENT opens as many answered (so established) flows as it can: more than the table
    // holds.
    let mut opened = 0;
    for port in 10_000..10_000 + CAPACITY as u16 {
        let query = packets::udp(CLIENT.ip, port, SERVER, 53, b"query");
        if lab.send(CLIENT, &query).frames.is_empty() {
            continue;
        }
        let answer = packets::udp(SERVER, 53, APPLIANCE_UPLINK, port, b"answer");
        lab.send(GATEWAY, &answer).ipv4_to(CLIENT);
        opened += 1;
    }
    assert!(opened < CAPACITY, "CLIENT alone filled the table");
    assert!(lab.dropped(DropReason::StateLimit) > 0);
    assert_eq!(lab.dropped(DropReason::StateTableFull), 0);

    // CLIENT2 still gets its flow.
    let query = packets::udp(CLIENT2.ip, 5353, SERVER, 53, b"query");
    lab.send(CLIENT2, &query).ipv4_to(GATEWAY);
}

#[test]
fn an_ipv6_clients_flood_of_new_flows_never_takes_another_clients_query_in_flight() {
    const SMALL: usize = 256;
    let mut lab = Lab::with_options(
        &DUAL_STACK,
        ApplianceOptions {
            state_capacity: SMALL,
            ..ApplianceOptions::default()
        },
    );
    lab.teach6_all(&[CLIENT6, CLIENT2_6]);
    let server = addr(SERVER6);
    // CLIENT2_6's query is out, its answer not yet back.
    let query = packets6::udp(CLIENT2_6.addr(), 5353, server, 53, b"query");
    let out = lab.send6(CLIENT2_6, &query).ipv6_upstream();
    let nat_port = udp6_src_port(&out);
    // CLIENT6 floods new flows, twice what the table holds: early drop takes its own.
    for port in 10_000..10_000 + 2 * SMALL as u16 {
        let flood = packets6::udp(CLIENT6.addr(), port, server, 53, b"flood");
        lab.send6(CLIENT6, &flood);
    }
    assert_eq!(lab.dropped(DropReason::StateTableFull), 0);
    // The answer still finds CLIENT2_6's state.
    let answer = packets6::udp(server, 53, addr(APPLIANCE6_UPLINK), nat_port, b"answer");
    lab.send6(GATEWAY6, &answer).ipv6_to(CLIENT2_6);
}

/// The UDP source port of an IPv6 packet without extension headers.
fn udp6_src_port(packet: &[u8]) -> u16 {
    let ip = Ipv6Packet::new_checked(packet).expect("an IPv6 packet");
    UdpPacket::new_checked(ip.payload())
        .expect("a UDP datagram")
        .src_port()
}
