//! Neighbour and address hygiene (issue 8): MACs no station can have are never learned,
//! and a declared client's address cannot be taken over — its binding holds while it is
//! active, and a pinned MAC holds for good.

mod appliance_common;

use appliance_common::*;
use dataplane::arp::{self, ArpMessage};
use dataplane::drops::DropReason;
use dataplane::testutil::packets;
use smoltcp::time::Duration;
use smoltcp::wire::{ArpOperation, EthernetAddress};

/// MACs no station has: broadcast, a multicast group, all zeros.
const NOT_A_STATION: [EthernetAddress; 3] = [
    EthernetAddress::BROADCAST,
    EthernetAddress([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]),
    EthernetAddress([0; 6]),
];

/// An intruder's own MAC on the uplink.
const INTRUDER_MAC: EthernetAddress = EthernetAddress([0x02, 0x66, 0, 0, 0, 0x66]);

fn arp_frame(ethernet_src: EthernetAddress, dst: EthernetAddress, message: &ArpMessage) -> Vec<u8> {
    let mut frame = vec![0u8; arp::ARP_FRAME_LEN];
    arp::emit(&mut frame, dst, message);
    frame[6..12].copy_from_slice(&ethernet_src.0);
    frame
}

/// An ARP message saying that `ip` is at `mac`, sent to the appliance on `nic`.
fn claim(operation: ArpOperation, nic: u8, ip: [u8; 4], mac: EthernetAddress) -> ArpMessage {
    ArpMessage {
        operation,
        sender_mac: mac,
        sender_ip: appliance_common::ip(ip),
        target_mac: if operation == ArpOperation::Reply {
            appliance_mac(nic)
        } else {
            EthernetAddress([0; 6])
        },
        target_ip: appliance_common::ip(appliance_ip(nic)),
    }
}

// 11. Never learn broadcast, multicast or zero MACs.

#[test]
fn an_arp_reply_for_the_gateway_at_a_mac_no_station_has_is_not_learned() {
    for mac in NOT_A_STATION {
        let mut lab = Lab::new(&DEFAULT);
        lab.attach(CLIENT);
        lab.teach(GATEWAY);
        let poison = claim(ArpOperation::Reply, UPLINK, GATEWAY.ip, mac);
        let frame = arp_frame(INTRUDER_MAC, appliance_mac(UPLINK), &poison);
        lab.receive(UPLINK, frame).assert_nothing();
        assert_eq!(lab.dropped(DropReason::Spoofed), 1, "{mac}");
        // Traffic still goes to the gateway's real MAC, not to everyone.
        let query = packets::udp(CLIENT.ip, 5353, SERVER, 53, b"query");
        lab.send(CLIENT, &query).ipv4_to(GATEWAY);
    }
}

#[test]
fn an_arp_request_from_a_mac_no_station_has_creates_no_neighbour() {
    for mac in NOT_A_STATION {
        let mut lab = Lab::new(&DEFAULT);
        lab.attach(CLIENT);
        let request = claim(ArpOperation::Request, UPLINK, GATEWAY.ip, mac);
        let frame = arp_frame(INTRUDER_MAC, EthernetAddress::BROADCAST, &request);
        lab.receive(UPLINK, frame).assert_nothing();
        // The gateway is still unknown: the first packet for it asks for it.
        let query = packets::udp(CLIENT.ip, 5353, SERVER, 53, b"query");
        lab.send(CLIENT, &query)
            .assert_arp_request(UPLINK, GATEWAY.ip);
    }
}

#[test]
fn a_frame_from_a_group_or_zero_source_mac_is_dropped() {
    for mac in NOT_A_STATION {
        let mut lab = Lab::new(&DEFAULT);
        lab.attach(CLIENT);
        lab.teach(GATEWAY);
        let query = packets::udp(CLIENT.ip, 5353, SERVER, 53, b"query");
        let frame = packets::ethernet(mac, appliance_mac(CLIENTS), &query);
        lab.receive(CLIENTS, frame).assert_nothing();
        assert_eq!(lab.dropped(DropReason::Malformed), 1, "{mac}");
    }
}

// 12. A declared client's address cannot be taken over.

/// CLIENT2's MAC claiming `work`'s address (CLIENT's), by gratuitous ARP.
fn takeover(lab: &mut Lab) -> Sent {
    let message = arp::gratuitous(CLIENT2.mac, appliance_common::ip(CLIENT.ip));
    lab.receive(
        CLIENTS,
        arp_frame(CLIENT2.mac, EthernetAddress::BROADCAST, &message),
    )
}

#[test]
fn an_active_declared_client_keeps_its_address_past_the_arp_lifetime() {
    let mut lab = Lab::new(&DECLARED);
    lab.attach(CLIENT);
    lab.attach(CLIENT2);
    // `work` never sends ARP again, but keeps talking for 65 s.
    for _ in 0..13 {
        lab.advance(Duration::from_secs(5));
        lab.teach(GATEWAY);
        let query = packets::udp(CLIENT.ip, 5353, SERVER, 53, b"query");
        lab.send(CLIENT, &query).ipv4_to(GATEWAY);
    }
    takeover(&mut lab).assert_nothing();
    assert_eq!(lab.dropped(DropReason::Spoofed), 1);
    // Its answers still reach it, not the impostor.
    let answer = packets::udp(SERVER, 53, APPLIANCE_UPLINK, 5353, b"answer");
    lab.send(GATEWAY, &answer).ipv4_to(CLIENT);
    // And the impostor cannot send as it either.
    let spoofed = packets::udp(CLIENT.ip, 5354, SERVER, 53, b"query");
    let frame = packets::ethernet(CLIENT2.mac, appliance_mac(CLIENTS), &spoofed);
    lab.receive(CLIENTS, frame).assert_nothing();
    assert_eq!(lab.dropped(DropReason::Spoofed), 2);
}

#[test]
fn a_quiet_declared_client_can_be_replaced_after_the_arp_lifetime() {
    // Without a pinned MAC, a client that stopped talking gives its address up: a VM
    // restarted with another MAC must get its traffic back.
    let mut lab = Lab::new(&DECLARED);
    lab.attach(CLIENT);
    lab.advance(Duration::from_secs(65));
    let sent = takeover(&mut lab);
    assert_eq!(lab.dropped(DropReason::Spoofed), 0, "{sent:?}");
}

#[test]
fn a_pinned_client_mac_cannot_be_taken_over_by_arp_or_ip() {
    let mut lab = Lab::new(&PINNED);
    lab.teach(GATEWAY);
    takeover(&mut lab).assert_nothing();
    let reply = claim(ArpOperation::Reply, CLIENTS, CLIENT.ip, CLIENT2.mac);
    lab.receive(
        CLIENTS,
        arp_frame(CLIENT2.mac, appliance_mac(CLIENTS), &reply),
    )
    .assert_nothing();
    let spoofed = packets::udp(CLIENT.ip, 5354, SERVER, 53, b"query");
    let frame = packets::ethernet(CLIENT2.mac, appliance_mac(CLIENTS), &spoofed);
    lab.receive(CLIENTS, frame).assert_nothing();
    assert_eq!(lab.dropped(DropReason::Spoofed), 3);
    assert_eq!(lab.live_states(), 0);

    // The pinned client itself talks, and its answers go straight to its MAC: the
    // appliance never asks who has its address.
    let query = packets::udp(CLIENT.ip, 5353, SERVER, 53, b"query");
    lab.send(CLIENT, &query).ipv4_to(GATEWAY);
    let answer = packets::udp(SERVER, 53, APPLIANCE_UPLINK, 5353, b"answer");
    lab.send(GATEWAY, &answer).ipv4_to(CLIENT);
    lab.advance(Duration::from_secs(3600));
    lab.teach(GATEWAY);
    let query = packets::udp(CLIENT.ip, 5355, SERVER, 53, b"query");
    lab.send(CLIENT, &query).ipv4_to(GATEWAY);
    let answer = packets::udp(SERVER, 53, APPLIANCE_UPLINK, 5355, b"answer");
    lab.send(GATEWAY, &answer).ipv4_to(CLIENT);
}
