//! Destination NAT and the link layer: clients' DNS redirected to the uplink's resolver, a
//! port forward from the uplink to a client, and proxy ARP for declared clients.

mod appliance_common;

use appliance_common::*;
use dataplane::drops::DropReason;
use dataplane::packet::tcp_flags::{ACK, PSH, SYN};
use dataplane::testutil::packets;
use smoltcp::wire::{ArpOperation, IpProtocol};

#[test]
fn dns_query_to_the_appliance_leaves_for_the_uplink_resolver_and_the_answer_comes_back_from_the_appliance(
) {
    let mut lab = Lab::new(&DEFAULT);
    lab.attach(CLIENT);
    lab.teach(RESOLVER);

    let query = packets::udp(CLIENT.ip, 5353, APPLIANCE_CLIENTS, 53, b"query example.org");
    let redirected = lab.send(CLIENT, &query).ipv4_to(RESOLVER);
    assert_eq!(ipv4_of(&redirected).ttl, 63);
    assert_eq!(
        udp_of(&redirected),
        UdpSeen {
            src: sock(APPLIANCE_UPLINK, 5353),
            dst: sock(RESOLVER.ip, 53),
            payload: b"query example.org".to_vec(),
        }
    );

    let answer = packets::udp(
        RESOLVER.ip,
        53,
        APPLIANCE_UPLINK,
        5353,
        b"answer 93.184.216.34",
    );
    let delivered = lab.send(RESOLVER, &answer).ipv4_to(CLIENT);
    assert_eq!(
        udp_of(&delivered),
        UdpSeen {
            src: sock(APPLIANCE_CLIENTS, 53),
            dst: sock(CLIENT.ip, 5353),
            payload: b"answer 93.184.216.34".to_vec(),
        }
    );
    assert_eq!(lab.appliance.drop_counters().total(), 0);
}

#[test]
fn dns_over_tcp_to_the_appliance_is_redirected_too() {
    let mut lab = Lab::new(&DEFAULT);
    lab.attach(CLIENT);
    lab.teach(RESOLVER);
    let syn = packets::tcp_syn(CLIENT.ip, 40000, APPLIANCE_CLIENTS, 53);
    let redirected = tcp_of(&lab.send(CLIENT, &syn).ipv4_to(RESOLVER));
    assert_eq!(
        (redirected.src, redirected.dst),
        (sock(APPLIANCE_UPLINK, 40000), sock(RESOLVER.ip, 53))
    );

    let syn_ack = segment(
        sock(RESOLVER.ip, 53),
        redirected.src,
        9000,
        1001,
        SYN | ACK,
        &[],
    );
    let delivered = tcp_of(&lab.send(RESOLVER, &syn_ack).ipv4_to(CLIENT));
    assert_eq!(
        (delivered.src, delivered.dst),
        (sock(APPLIANCE_CLIENTS, 53), sock(CLIENT.ip, 40000))
    );
}

#[test]
fn icmp_error_from_the_resolver_reaches_the_client_as_if_from_the_appliance() {
    let mut lab = Lab::new(&DEFAULT);
    lab.attach(CLIENT);
    lab.teach(RESOLVER);
    let query = packets::udp(CLIENT.ip, 5353, APPLIANCE_CLIENTS, 53, b"query");
    let redirected = lab.send(CLIENT, &query).ipv4_to(RESOLVER);

    let refused = packets::icmp_error(RESOLVER.ip, APPLIANCE_UPLINK, 3, 3, &redirected);
    let arrived = lab.send(RESOLVER, &refused).ipv4_to(CLIENT);
    assert_eq!(
        icmp_error_of(&arrived),
        IcmpErrorSeen {
            src: ip(APPLIANCE_CLIENTS),
            dst: ip(CLIENT.ip),
            icmp_type: 3,
            code: 3,
            quoted_src: sock(CLIENT.ip, 5353),
            quoted_dst: sock(APPLIANCE_CLIENTS, 53),
            quoted_protocol: IpProtocol::Udp,
        }
    );
    assert!(quoted_header_checksum_valid(&arrived));
}

/// The port-forward network: `work` attached, the gateway known.
fn forward_lab() -> Lab {
    let mut lab = Lab::new(&DECLARED);
    lab.attach(CLIENT);
    lab.teach(GATEWAY);
    lab
}

#[test]
fn port_forward_from_the_uplink_reaches_the_clients_port_and_replies_go_back_translated() {
    let mut lab = forward_lab();
    let syn = packets::tcp_syn(REMOTE, 50000, APPLIANCE_UPLINK, 8022);
    let arrived = lab.send(GATEWAY, &syn).ipv4_to(CLIENT);
    assert_eq!(ipv4_of(&arrived).ttl, 63);
    assert_eq!(
        tcp_of(&arrived),
        TcpSeen {
            src: sock(REMOTE, 50000),
            dst: sock(CLIENT.ip, 22),
            seq: 1000,
            ack: 0,
            flags: SYN,
            payload: Vec::new(),
        }
    );

    let syn_ack = segment(
        sock(CLIENT.ip, 22),
        sock(REMOTE, 50000),
        7000,
        1001,
        SYN | ACK,
        &[],
    );
    let left = lab.send(CLIENT, &syn_ack).ipv4_to(GATEWAY);
    assert_eq!(
        tcp_of(&left),
        TcpSeen {
            src: sock(APPLIANCE_UPLINK, 8022),
            dst: sock(REMOTE, 50000),
            seq: 7000,
            ack: 1001,
            flags: SYN | ACK,
            payload: Vec::new(),
        }
    );

    let ack = segment(
        sock(REMOTE, 50000),
        sock(APPLIANCE_UPLINK, 8022),
        1001,
        7001,
        PSH | ACK,
        b"SSH-2.0-client\r\n",
    );
    let data = tcp_of(&lab.send(GATEWAY, &ack).ipv4_to(CLIENT));
    assert_eq!(
        (data.dst, data.payload.as_slice()),
        (sock(CLIENT.ip, 22), &b"SSH-2.0-client\r\n"[..])
    );
}

#[test]
fn port_not_forwarded_stays_closed() {
    let mut lab = forward_lab();
    lab.send(
        GATEWAY,
        &packets::tcp_syn(REMOTE, 50000, APPLIANCE_UPLINK, 8023),
    )
    .assert_nothing();
    lab.send(
        GATEWAY,
        &packets::udp(REMOTE, 50000, APPLIANCE_UPLINK, 8022, b"udp"),
    )
    .assert_nothing();
    assert_eq!(lab.dropped(DropReason::Policy), 2);
}

#[test]
fn declared_client_gets_the_appliances_mac_for_any_address() {
    let mut lab = Lab::new(&DECLARED);
    for target in [
        CLIENT2.ip,
        [10, 137, 1, 200],
        SERVER,
        GATEWAY.ip,
        APPLIANCE_CLIENTS,
    ] {
        let answer = lab.arp_request(CLIENT, target).arp_to(CLIENT);
        assert_eq!(answer.operation, ArpOperation::Reply, "{target:?}");
        assert_eq!(
            (answer.sender_mac, answer.sender_ip),
            (appliance_mac(CLIENTS), ip(target))
        );
        assert_eq!(
            (answer.target_mac, answer.target_ip),
            (CLIENT.mac, ip(CLIENT.ip))
        );
    }
}

#[test]
fn declared_clients_reach_each_other_only_through_the_appliance_which_blocks_them() {
    let mut lab = Lab::new(&DECLARED);
    lab.attach(CLIENT2);
    // work asks for personal's MAC and gets the appliance's, so its packets to personal
    // go through the policy.
    let answer = lab.arp_request(CLIENT, CLIENT2.ip).arp_to(CLIENT);
    assert_eq!(answer.sender_mac, appliance_mac(CLIENTS));
    lab.send(CLIENT, &packets::tcp_syn(CLIENT.ip, 40000, CLIENT2.ip, 22))
        .assert_nothing();
    assert_eq!(lab.dropped(DropReason::Policy), 1);
}

#[test]
fn client_probing_its_own_address_gets_no_answer() {
    let mut lab = Lab::new(&DECLARED);
    lab.arp_request(CLIENT, CLIENT.ip).assert_nothing();
}

#[test]
fn arp_from_an_undeclared_address_is_dropped_as_spoofed() {
    let mut lab = Lab::new(&DECLARED);
    let stranger = Host {
        ip: [10, 137, 1, 50],
        ..CLIENT
    };
    lab.arp_request(stranger, SERVER).assert_nothing();
    assert_eq!(lab.dropped(DropReason::Spoofed), 1);
}

#[test]
fn uplink_answers_arp_only_for_the_appliances_own_address() {
    let mut lab = Lab::new(&DECLARED);
    let answer = lab.arp_request(GATEWAY, APPLIANCE_UPLINK).arp_to(GATEWAY);
    assert_eq!(answer.operation, ArpOperation::Reply);
    assert_eq!(
        (answer.sender_mac, answer.sender_ip),
        (appliance_mac(UPLINK), ip(APPLIANCE_UPLINK))
    );
    assert_eq!(
        (answer.target_mac, answer.target_ip),
        (GATEWAY.mac, ip(GATEWAY.ip))
    );

    for target in [
        RESOLVER.ip,
        [10, 0, 2, 99],
        CLIENT.ip,
        APPLIANCE_CLIENTS,
        SERVER,
    ] {
        lab.arp_request(GATEWAY, target).assert_nothing();
    }
}

#[test]
fn undeclared_clients_get_no_proxy_arp() {
    let mut lab = Lab::new(&DEFAULT);
    lab.arp_request(CLIENT, CLIENT2.ip).assert_nothing();
    lab.arp_request(CLIENT, SERVER).assert_nothing();
    let answer = lab.arp_request(CLIENT, APPLIANCE_CLIENTS).arp_to(CLIENT);
    assert_eq!(answer.sender_mac, appliance_mac(CLIENTS));
}

#[test]
fn gratuitous_arp_announces_every_address_at_boot_then_the_next_hops_are_asked_for() {
    let mut lab = Lab::new(&TWO_NETWORKS);
    let mut expected: Vec<_> = [UPLINK, CLIENTS, LAB]
        .into_iter()
        .map(|nic| {
            (
                nic,
                dataplane::arp::gratuitous(appliance_mac(nic), ip(appliance_ip(nic))),
            )
        })
        .collect();
    // The gateway, and the upstream resolver (on the uplink's network).
    for next_hop in [GATEWAY.ip, RESOLVER.ip] {
        let ask = dataplane::arp::request(
            appliance_mac(UPLINK),
            ip(appliance_ip(UPLINK)),
            ip(next_hop),
        );
        expected.push((UPLINK, ask));
    }
    assert_eq!(lab.announce().arp_broadcasts(), expected);
}

#[test]
fn udp_port_forward_keeps_the_port_when_no_target_port_is_given() {
    let mut lab = forward_lab();
    lab.attach(CLIENT2);
    let invite = packets::udp(REMOTE, 5060, APPLIANCE_UPLINK, 5060, b"INVITE");
    let arrived = udp_of(&lab.send(GATEWAY, &invite).ipv4_to(CLIENT2));
    assert_eq!(
        (arrived.src, arrived.dst),
        (sock(REMOTE, 5060), sock(CLIENT2.ip, 5060))
    );
}

#[test]
fn icmp_error_from_a_forwarded_client_leaves_from_the_appliances_address() {
    let mut lab = forward_lab();
    lab.attach(CLIENT2);
    let invite = packets::udp(REMOTE, 5060, APPLIANCE_UPLINK, 5060, b"INVITE");
    let arrived = lab.send(GATEWAY, &invite).ipv4_to(CLIENT2);

    // Nothing listens on the client: it says so, from its internal address.
    let unreachable = packets::icmp_error(CLIENT2.ip, REMOTE, 3, 3, &arrived);
    let left = lab.send(CLIENT2, &unreachable).ipv4_to(GATEWAY);
    assert_eq!(
        icmp_error_of(&left),
        IcmpErrorSeen {
            src: ip(APPLIANCE_UPLINK),
            dst: ip(REMOTE),
            icmp_type: 3,
            code: 3,
            quoted_src: sock(REMOTE, 5060),
            quoted_dst: sock(APPLIANCE_UPLINK, 5060),
            quoted_protocol: IpProtocol::Udp,
        }
    );
    assert!(quoted_header_checksum_valid(&left));
}

#[test]
fn arp_on_the_uplink_posing_as_a_client_is_dropped_as_spoofed() {
    let mut lab = Lab::new(&DECLARED);
    let posing = Host {
        ip: CLIENT.ip,
        ..GATEWAY
    };
    lab.arp_request(posing, APPLIANCE_UPLINK).assert_nothing();
    assert_eq!(lab.dropped(DropReason::Spoofed), 1);
}

#[test]
fn client_cannot_claim_the_gateways_address_by_arp() {
    let mut lab = Lab::new(&DEFAULT);
    lab.teach(GATEWAY);
    let impostor = Host {
        ip: GATEWAY.ip,
        ..CLIENT
    };
    lab.arp_reply(impostor).assert_nothing();
    assert_eq!(lab.dropped(DropReason::Spoofed), 1);
    lab.attach(CLIENT);
    lab.send(CLIENT, &packets::tcp_syn(CLIENT.ip, 40000, SERVER, 443))
        .ipv4_to(GATEWAY);
}
