//! Getting a forwarded packet onto the wire: next hops resolved by ARP (bounded queues,
//! retries, expiry), the egress MTU, and destinations with no route.

mod appliance_common;

use appliance_common::*;
use dataplane::drops::DropReason;
use dataplane::neighbor::{
    LIFETIME, MAX_PENDING_PER_NEXT_HOP, MAX_REQUESTS, REACHABLE_TIME, REQUEST_INTERVAL,
};
use dataplane::testutil::packets;
use smoltcp::wire::Ipv4Packet;

/// The default network with the client attached; the gateway not yet resolved.
/// The default without IPv6: every frame `poll` sends here is ARP's.
fn unresolved_lab() -> Lab {
    let mut lab = Lab::new(&IPV4_ONLY);
    lab.attach(CLIENT);
    lab
}

fn syn_from(port: u16) -> Vec<u8> {
    packets::tcp_syn(CLIENT.ip, port, SERVER, 443)
}

#[test]
fn packets_waiting_for_the_gateway_leave_in_order_once_it_answers() {
    let mut lab = unresolved_lab();
    lab.send(CLIENT, &syn_from(40000))
        .assert_arp_request(UPLINK, GATEWAY.ip);
    lab.send(CLIENT, &syn_from(40001)).assert_nothing(); // asked once, not again per packet
    lab.send(CLIENT, &syn_from(40002)).assert_nothing();

    let released = lab.arp_reply(GATEWAY).each_ipv4_to(GATEWAY);
    let ports: Vec<u16> = released.iter().map(|p| tcp_of(p).src.port()).collect();
    assert_eq!(ports, vec![40000, 40001, 40002]);
}

#[test]
fn the_gateway_is_asked_for_at_boot_so_the_first_packet_finds_it_known() {
    let mut lab = unresolved_lab();
    let announced = lab.announce().arp_broadcasts();
    let asked: Vec<_> = announced
        .iter()
        .filter(|(_, m)| m.target_ip != m.sender_ip)
        .map(|&(nic, m)| (nic, m.target_ip))
        .collect();
    assert!(
        asked.contains(&(UPLINK, ip(GATEWAY.ip))),
        "the gateway is asked for with the announcement: {announced:?}"
    );
    // Announcing again while the question is open asks nothing more.
    assert!(lab
        .announce()
        .arp_broadcasts()
        .iter()
        .all(|(_, m)| m.target_ip == m.sender_ip));

    lab.arp_reply(GATEWAY).assert_nothing();
    lab.send(CLIENT, &syn_from(40000)).ipv4_to(GATEWAY);
}

#[test]
fn a_gateway_asked_for_at_boot_that_never_answers_is_given_up_like_any() {
    let mut lab = unresolved_lab();
    lab.announce();
    let asked = |sent: Sent| -> Vec<_> {
        sent.arp_broadcasts()
            .iter()
            .map(|&(nic, m)| (nic, m.target_ip))
            .collect()
    };
    for _ in 1..MAX_REQUESTS {
        lab.advance(REQUEST_INTERVAL);
        assert!(asked(lab.poll()).contains(&(UPLINK, ip(GATEWAY.ip))));
    }
    lab.advance(REQUEST_INTERVAL);
    lab.poll().assert_nothing();
    // The first packet afterwards asks again, and waits for the answer.
    lab.send(CLIENT, &syn_from(40000))
        .assert_arp_request(UPLINK, GATEWAY.ip);
    let released = lab.arp_reply(GATEWAY).each_ipv4_to(GATEWAY);
    assert_eq!(released.len(), 1);
}

#[test]
fn queue_for_the_unresolved_gateway_is_bounded() {
    let mut lab = unresolved_lab();
    let extra = 2;
    for port in 0..(MAX_PENDING_PER_NEXT_HOP + extra) as u16 {
        lab.send(CLIENT, &syn_from(40000 + port));
    }
    assert_eq!(lab.dropped(DropReason::NeighborUnreachable), extra as u64);
    let released = lab.arp_reply(GATEWAY).each_ipv4_to(GATEWAY);
    let ports: Vec<u16> = released.iter().map(|p| tcp_of(p).src.port()).collect();
    assert_eq!(
        ports,
        (40000..40000 + MAX_PENDING_PER_NEXT_HOP as u16).collect::<Vec<_>>()
    );
}

#[test]
fn unanswered_neighbour_is_asked_again_then_given_up_and_its_queue_dropped() {
    let mut lab = unresolved_lab();
    lab.send(CLIENT, &syn_from(40000))
        .assert_arp_request(UPLINK, GATEWAY.ip);
    lab.send(CLIENT, &syn_from(40001)).assert_nothing();
    for _ in 1..MAX_REQUESTS {
        lab.advance(REQUEST_INTERVAL);
        lab.poll().assert_arp_request(UPLINK, GATEWAY.ip);
    }
    lab.advance(REQUEST_INTERVAL);
    lab.poll().assert_nothing();
    assert_eq!(lab.dropped(DropReason::NeighborUnreachable), 2);

    // A late answer finds nothing waiting.
    lab.arp_reply(GATEWAY).assert_nothing();
}

#[test]
fn stale_neighbour_is_verified_at_its_mac_while_packets_keep_flowing() {
    let mut lab = unresolved_lab();
    lab.teach(GATEWAY);
    lab.send(CLIENT, &syn_from(40000)).ipv4_to(GATEWAY);
    lab.advance(REACHABLE_TIME);
    lab.attach(CLIENT);
    let sent = lab.send(CLIENT, &syn_from(40001));
    let [packet, probe] = &sent.frames[..] else {
        panic!("the packet and a probe: {sent:?}")
    };
    let to_gateway = Sent {
        frames: vec![packet.clone()],
    };
    assert_eq!(tcp_of(&to_gateway.ipv4_to(GATEWAY)).src.port(), 40001);
    let probe = Sent {
        frames: vec![probe.clone()],
    };
    let request = probe.arp_to(GATEWAY);
    assert_eq!(
        (request.operation, request.target_ip),
        (smoltcp::wire::ArpOperation::Request, ip(GATEWAY.ip)),
        "a unicast ARP request to the MAC it had"
    );
}

/// The gateway known at the start, then no ARP from it for well past its lifetime while
/// `forwarded_by` sends in packets from the internet; returns what the client's next
/// packet makes the appliance send.
fn after_a_minute_of_internet_traffic_from(forwarded_by: Host) -> Sent {
    let mut lab = unresolved_lab();
    lab.teach(GATEWAY);
    lab.send(CLIENT, &syn_from(40000)).ipv4_to(GATEWAY);
    // Refused by the policy, but a frame the gateway forwarded all the same.
    let from_internet = packets::tcp_syn(SERVER, 443, appliance_ip(UPLINK), 8443);
    for _ in 0..5 {
        lab.advance(REACHABLE_TIME / 2);
        lab.send(forwarded_by, &from_internet);
        lab.attach(CLIENT);
    }
    lab.send(CLIENT, &syn_from(40001))
}

#[test]
fn a_gateway_that_keeps_forwarding_stays_known_when_its_arp_replies_are_lost() {
    let sent = after_a_minute_of_internet_traffic_from(GATEWAY);
    assert_eq!(
        tcp_of(&sent.ipv4_to(GATEWAY)).src.port(),
        40001,
        "no ARP: {sent:?}"
    );
    // Frames from another MAC on the uplink do not vouch for the gateway: past its
    // lifetime it is asked for again.
    let stranger = Host {
        mac: smoltcp::wire::EthernetAddress([0x02, 0x47, 0, 0, 0, 0x66]),
        ..GATEWAY
    };
    after_a_minute_of_internet_traffic_from(stranger).assert_arp_request(UPLINK, GATEWAY.ip);
}

#[test]
fn neighbour_is_resolved_again_once_its_entry_outlived_its_lifetime() {
    let mut lab = unresolved_lab();
    lab.teach(GATEWAY);
    lab.send(CLIENT, &syn_from(40000)).ipv4_to(GATEWAY);
    lab.advance(LIFETIME);
    lab.attach(CLIENT);
    lab.send(CLIENT, &syn_from(40001))
        .assert_arp_request(UPLINK, GATEWAY.ip);
    assert_eq!(
        tcp_of(&lab.arp_reply(GATEWAY).ipv4_to(GATEWAY)).src.port(),
        40001
    );
}

#[test]
fn gateway_that_moved_to_another_mac_is_followed() {
    let mut lab = unresolved_lab();
    lab.teach(GATEWAY);
    let moved = Host {
        mac: smoltcp::wire::EthernetAddress([0x02, 0x47, 0, 0, 0, 0x22]),
        ..GATEWAY
    };
    lab.teach(moved);
    lab.send(CLIENT, &syn_from(40000)).ipv4_to(moved);
}

#[test]
fn packet_too_big_for_the_uplink_with_dont_fragment_gets_fragmentation_needed() {
    let mut lab = unresolved_lab();
    lab.teach(GATEWAY);
    let big = packets::udp(CLIENT.ip, 5000, SERVER, 9000, &[0xab; 1600]);
    assert!(Ipv4Packet::new_checked(&big[..]).unwrap().dont_frag());
    let error = lab.send(CLIENT, &big).ipv4_to(CLIENT);
    let seen = icmp_error_of(&error);
    assert_eq!((seen.src, seen.dst), (ip(APPLIANCE_CLIENTS), ip(CLIENT.ip)));
    assert_eq!((seen.icmp_type, seen.code), (3, 4));
    assert_eq!(
        (seen.quoted_src, seen.quoted_dst),
        (sock(CLIENT.ip, 5000), sock(SERVER, 9000))
    );
    let next_hop_mtu = u16::from_be_bytes([error[20 + 6], error[20 + 7]]);
    assert_eq!(next_hop_mtu, 1500);
    assert_eq!(lab.dropped(DropReason::TooBig), 1);
}

#[test]
fn packet_too_big_for_the_uplink_without_dont_fragment_leaves_fragmented() {
    let mut lab = unresolved_lab();
    lab.teach(GATEWAY);
    let mut big = packets::udp(CLIENT.ip, 5000, SERVER, 9000, &[0xab; 1600]);
    let mut view = Ipv4Packet::new_unchecked(&mut big[..]);
    view.set_dont_frag(false);
    view.fill_checksum();
    let fragments = lab.send(CLIENT, &big).each_ipv4_fragment_to(GATEWAY);
    assert_eq!(fragments.len(), 2);
    assert!(fragments.iter().all(|f| f.len() <= 1500));
    // Put back together, it is the client's datagram, masqueraded, checksum valid.
    let whole = reassembled(&fragments);
    assert!(packets::checksums_valid(&whole));
    let seen = udp_of(&whole);
    assert_eq!(
        (seen.src, seen.dst),
        (sock(APPLIANCE_UPLINK, 5000), sock(SERVER, 9000))
    );
    assert_eq!(lab.dropped(DropReason::TooBig), 0);
}

#[test]
fn an_interface_mtu_from_the_ruleset_bounds_what_leaves_it() {
    let mut lab = Lab::new(&SMALL_UPLINK_MTU);
    lab.attach(CLIENT);
    lab.teach(GATEWAY);
    let packet = packets::udp(CLIENT.ip, 5000, SERVER, 9000, &[0xab; 1400]);
    assert!(Ipv4Packet::new_checked(&packet[..]).unwrap().dont_frag());
    let error = lab.send(CLIENT, &packet).ipv4_to(CLIENT);
    assert_eq!(
        (icmp_error_of(&error).icmp_type, icmp_error_of(&error).code),
        (3, 4)
    );
    let next_hop_mtu = u16::from_be_bytes([error[20 + 6], error[20 + 7]]);
    assert_eq!(next_hop_mtu, 1400);
    // What fits goes through untouched.
    let fits = packets::udp(CLIENT.ip, 5000, SERVER, 9000, &[0xab; 1400 - 28]);
    assert_eq!(lab.send(CLIENT, &fits).ipv4_to(GATEWAY).len(), 1400);
}

#[test]
fn packet_of_exactly_the_mtu_passes() {
    let mut lab = unresolved_lab();
    lab.teach(GATEWAY);
    let full = packets::udp(CLIENT.ip, 5000, SERVER, 9000, &[0xab; 1500 - 28]);
    assert_eq!(lab.send(CLIENT, &full).ipv4_to(GATEWAY).len(), 1500);
}

#[test]
fn packet_to_a_loopback_or_reserved_destination_is_dropped_as_martian_without_reply() {
    let mut lab = unresolved_lab();
    lab.send(
        CLIENT,
        &packets::udp(CLIENT.ip, 5000, [127, 0, 0, 1], 53, b"q"),
    )
    .assert_nothing();
    lab.send(
        CLIENT,
        &packets::udp(CLIENT.ip, 5000, [240, 0, 0, 1], 53, b"q"),
    )
    .assert_nothing();
    lab.send(
        CLIENT,
        &packets::udp(CLIENT.ip, 5000, [0, 1, 2, 3], 53, b"q"),
    )
    .assert_nothing();
    assert_eq!(lab.dropped(DropReason::MartianDestination), 3);
    assert_eq!(lab.appliance.drop_counters().total(), 3);
}

#[test]
fn multicast_from_a_client_is_not_forwarded() {
    let mut lab = unresolved_lab();
    let mdns = packets::udp(CLIENT.ip, 5353, [224, 0, 0, 251], 5353, b"mdns");
    let frame = packets::ethernet(
        CLIENT.mac,
        smoltcp::wire::EthernetAddress([0x01, 0, 0x5e, 0, 0, 0xfb]),
        &mdns,
    );
    lab.receive(CLIENTS, frame).assert_nothing();
    assert_eq!(lab.dropped(DropReason::MartianDestination), 1);
    assert_eq!(lab.appliance.drop_counters().total(), 1);
}

#[test]
fn broadcast_from_a_client_is_not_forwarded_and_not_answered() {
    let mut lab = unresolved_lab();
    let directed = packets::udp(CLIENT.ip, 137, [10, 137, 1, 255], 137, b"netbios");
    lab.send(CLIENT, &directed).assert_nothing();
    let limited = packets::udp(CLIENT.ip, 137, [255, 255, 255, 255], 137, b"netbios");
    lab.receive(
        CLIENTS,
        packets::ethernet(
            CLIENT.mac,
            smoltcp::wire::EthernetAddress::BROADCAST,
            &limited,
        ),
    )
    .assert_nothing();
    assert_eq!(lab.dropped(DropReason::Policy), 2);
    assert!(
        take_log_lines().iter().all(|l| !l.starts_with("drop ")),
        "broadcast chatter is not logged"
    );
}

#[test]
fn first_ping_from_a_host_that_never_resolved_the_appliance_is_answered() {
    // A host with a stale (or static) entry for the appliance pings it straight away: the
    // local stack must answer at once, not lose the reply to an ARP round of its own.
    let mut lab = Lab::new(&DEFAULT);
    let ping = packets::icmp_echo(CLIENT.ip, appliance_ip(CLIENTS), true, 9, 1, b"first");
    let sent = lab.send(CLIENT, &ping);
    let reply = echo_of(&sent.ipv4_to(CLIENT));
    assert_eq!((reply.request, reply.ident, reply.seq_no), (false, 9, 1));
    assert_eq!(reply.src, ip(appliance_ip(CLIENTS)));
}

#[test]
fn declared_client_cannot_take_over_another_clients_address() {
    let mut lab = Lab::new(&DECLARED);
    lab.attach(CLIENT);
    lab.attach(CLIENT2);
    // CLIENT2 claims CLIENT's address by ARP, then sends as CLIENT.
    let impostor = Host {
        ip: CLIENT.ip,
        ..CLIENT2
    };
    lab.arp_request(impostor, appliance_ip(CLIENTS))
        .assert_nothing();
    assert_eq!(lab.dropped(DropReason::Spoofed), 1);
    let ping = packets::icmp_echo(CLIENT.ip, appliance_ip(CLIENTS), true, 1, 1, b"me");
    lab.send(impostor, &ping).assert_nothing();
    assert_eq!(lab.dropped(DropReason::Spoofed), 2);
    // The real CLIENT still gets through.
    let sent = lab.send(CLIENT, &ping);
    assert!(!echo_of(&sent.ipv4_to(CLIENT)).request, "an echo reply");
}
