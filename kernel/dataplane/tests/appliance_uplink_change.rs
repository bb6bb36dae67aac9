//! The uplink coming back different — a restarted upstream VM with another DHCP range, a
//! new MAC, or both — is recovered from on its own: the old address's states go, new flows
//! use the new address, the gateway is followed to its new MAC (announced or found by
//! probing a silent one), and the console says what happened. A lease that overlaps a
//! client network is refused loudly.

mod appliance_common;

use appliance_common::*;
use dataplane::arp::{self, ArpMessage};
use dataplane::drops::DropReason;
use dataplane::packet::tcp_flags;
use dataplane::testutil::packets;
use smoltcp::time::Duration;
use smoltcp::wire::{
    ArpOperation, DhcpMessageType, EthernetAddress, EthernetFrame, EthernetProtocol, Ipv4Address,
    Ipv4Cidr,
};

/// The restarted upstream VM: the gateway's address at a new MAC.
const MOVED_GATEWAY: Host = Host {
    mac: EthernetAddress([0x02, 0x47, 0, 0, 0, 0x99]),
    ..GATEWAY
};

/// The address the restarted upstream's DHCP server leases.
const NEW_ADDRESS: [u8; 4] = [10, 0, 2, 77];

/// The uplink's address, if it has one.
fn uplink_address(lab: &Lab) -> Option<Ipv4Cidr> {
    lab.appliance.nic_config(UPLINK).and_then(|c| c.ipv4)
}

/// `host` announces its address (a gratuitous ARP).
fn gratuitous_arp(lab: &mut Lab, host: Host) -> Sent {
    let message = arp::gratuitous(host.mac, ip(host.ip));
    let mut frame = vec![0u8; arp::ARP_FRAME_LEN];
    arp::emit(&mut frame, EthernetAddress::BROADCAST, &message);
    lab.receive(host.nic, frame)
}

/// `host` answers the appliance's (broadcast or unicast) ARP request.
fn arp_answer(lab: &mut Lab, host: Host) -> Sent {
    let message = ArpMessage {
        operation: ArpOperation::Reply,
        sender_mac: host.mac,
        sender_ip: ip(host.ip),
        target_mac: appliance_mac(UPLINK),
        target_ip: uplink_address(lab).expect("an address").address(),
    };
    let mut frame = vec![0u8; arp::ARP_FRAME_LEN];
    arp::emit(&mut frame, appliance_mac(UPLINK), &message);
    lab.receive(UPLINK, frame)
}

/// The ARP requests for the gateway in `sent`: `(Ethernet destination, message)`.
fn gateway_requests(sent: &Sent) -> Vec<EthernetAddress> {
    sent.frames
        .iter()
        .filter(|(nic, _)| *nic == UPLINK)
        .filter_map(|(_, frame)| {
            let eth = EthernetFrame::new_checked(&frame[..]).ok()?;
            if eth.ethertype() != EthernetProtocol::Arp {
                return None;
            }
            let message = arp::parse(eth.payload())?;
            (message.operation == ArpOperation::Request && message.target_ip == ip(GATEWAY.ip))
                .then_some(eth.dst_addr())
        })
        .collect()
}

/// The Ethernet destinations of the IPv4 packets (other than DHCP) sent on the uplink.
fn ipv4_destinations(sent: &Sent) -> Vec<EthernetAddress> {
    let other = other_than_dhcp(Sent {
        frames: sent.frames.clone(),
    });
    other
        .frames
        .iter()
        .filter(|(nic, _)| *nic == UPLINK)
        .filter_map(|(_, frame)| {
            let eth = EthernetFrame::new_checked(&frame[..]).ok()?;
            (eth.ethertype() == EthernetProtocol::Ipv4).then_some(eth.dst_addr())
        })
        .collect()
}

/// The connection's next segment from the client leaves to `gateway`'s MAC.
fn client_segment_reaches(lab: &mut Lab, connection: &Connection, gateway: Host) {
    let data = segment(
        connection.inside,
        connection.server,
        connection.client_seq,
        connection.server_seq,
        tcp_flags::ACK,
        b"on",
    );
    let out = lab.send(CLIENT, &data).ipv4_to(gateway);
    assert_eq!(tcp_of(&out).payload, b"on");
}

/// A leased appliance with a client's TCP connection and UDP flow through NAT.
fn leased_with_flows() -> (Lab, Connection) {
    let mut lab = Lab::new(&DHCP_UPLINK);
    lab.attach(CLIENT);
    DhcpServer::default().lease(&mut lab);
    lab.teach(GATEWAY);
    let connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
    let query = packets::udp(CLIENT.ip, 5353, SERVER, 53, b"query");
    let out = udp_of(&lab.send(CLIENT, &query).ipv4_to(GATEWAY));
    assert_eq!(out.src, sock(APPLIANCE_UPLINK, 5353));
    assert_eq!(lab.live_states(), 2);
    (lab, connection)
}

#[test]
fn a_new_address_drops_the_old_address_states_and_new_flows_use_the_new_one() {
    let (mut lab, connection) = leased_with_flows();
    take_log_lines();
    // The upstream VM restarts with a new MAC, announces itself, and its authoritative
    // server has another range: it NAKs the verification, and the client starts over.
    let restarted = DhcpServer {
        host: MOVED_GATEWAY,
        address: NEW_ADDRESS,
        ..DhcpServer::default()
    };
    let announced = gratuitous_arp(&mut lab, MOVED_GATEWAY);
    let (_, seen) = restarted.converse(&mut lab, announced);
    let kinds: Vec<DhcpMessageType> = seen.iter().map(|s| s.message_type).collect();
    assert_eq!(
        kinds,
        [
            DhcpMessageType::Request,
            DhcpMessageType::Discover,
            DhcpMessageType::Request
        ]
    );
    assert_eq!(
        dhcp_log_lines(),
        [
            "nic0 gateway 10.0.2.2 moved from 02:47:00:00:00:02 to 02:47:00:00:00:99; verifying the dhcp lease",
            "nic0 dhcp: lease on 10.0.2.15/24 refused by 10.0.2.2 (NAK): address removed, 2 states dropped; looking for a server",
            "nic0 dhcp: address 10.0.2.15/24 -> 10.0.2.77/24 gateway 10.0.2.2 dns [10.0.2.3], lease 600 s from 10.0.2.2",
        ]
    );
    assert_eq!(
        uplink_address(&lab),
        Some(Ipv4Cidr::new(ip(NEW_ADDRESS), 24))
    );
    assert_eq!(lab.live_states(), 0);
    arp_answer(&mut lab, MOVED_GATEWAY).assert_nothing();

    // The old connection's next segment does not leave with the old address (nor at all:
    // a TCP segment without SYN opens nothing).
    let stale = segment(
        connection.inside,
        connection.server,
        connection.client_seq,
        connection.server_seq,
        tcp_flags::ACK,
        b"late",
    );
    lab.send(CLIENT, &stale).assert_nothing();
    // Replies to the old address find nothing.
    let reply = connection.segment_from_server(tcp_flags::ACK, b"late reply");
    lab.send(MOVED_GATEWAY, &reply).assert_nothing();

    // New flows, and the old UDP flow's next datagram, use the new address.
    let syn = packets::tcp_syn(CLIENT.ip, 40001, SERVER, 443);
    let out = tcp_of(&lab.send(CLIENT, &syn).ipv4_to(MOVED_GATEWAY));
    assert_eq!(out.src, sock(NEW_ADDRESS, 40001));
    let query = packets::udp(CLIENT.ip, 5353, SERVER, 53, b"again");
    let out = udp_of(&lab.send(CLIENT, &query).ipv4_to(MOVED_GATEWAY));
    assert_eq!(out.src, sock(NEW_ADDRESS, 5353));
}

#[test]
fn a_renewal_that_changes_the_resolver_is_told_and_used() {
    let mut lab = Lab::new(&DHCP_UPLINK);
    lab.attach(CLIENT);
    DhcpServer::default().lease(&mut lab);
    lab.teach(GATEWAY);
    take_log_lines();
    let new_resolver = Host {
        ip: [10, 0, 2, 53],
        mac: EthernetAddress([0x02, 0x47, 0, 0, 0, 0x53]),
        nic: UPLINK,
    };
    let renumbered = DhcpServer {
        dns: new_resolver.ip,
        ..DhcpServer::default()
    };
    lab.advance(Duration::from_secs(300));
    let mut renewal = lab.poll();
    if !gateway_requests(&renewal).is_empty() {
        renewal = lab.arp_reply(GATEWAY);
    }
    renumbered.converse(&mut lab, renewal);
    assert_eq!(
        dhcp_log_lines(),
        ["nic0 dhcp: address 10.0.2.15/24 gateway 10.0.2.2 dns [10.0.2.3] -> [10.0.2.53], lease 600 s from 10.0.2.2"]
    );
    lab.teach(new_resolver);
    let query = packets::udp(CLIENT.ip, 5353, APPLIANCE_CLIENTS, 53, b"query");
    let relayed = udp_of(&lab.send(CLIENT, &query).ipv4_to(new_resolver));
    assert_eq!(relayed.dst, sock(new_resolver.ip, 53));
    // The gateway did not change: it is still watched.
    gratuitous_arp(&mut lab, MOVED_GATEWAY);
    assert_eq!(
        dhcp_log_lines(),
        ["nic0 gateway 10.0.2.2 moved from 02:47:00:00:00:02 to 02:47:00:00:00:99; verifying the dhcp lease"]
    );
}

#[test]
fn a_gateway_that_announces_a_new_mac_is_followed_at_once_and_the_lease_verified() {
    let (mut lab, connection) = leased_with_flows();
    take_log_lines();
    let announced = gratuitous_arp(&mut lab, MOVED_GATEWAY);
    assert_eq!(
        dhcp_log_lines(),
        ["nic0 gateway 10.0.2.2 moved from 02:47:00:00:00:02 to 02:47:00:00:00:99; verifying the dhcp lease"]
    );
    let [verify] = &dhcp_messages(&announced)[..] else {
        panic!("a verification REQUEST: {announced:?}")
    };
    assert_eq!(
        (
            verify.message_type,
            verify.dst,
            verify.client_ip,
            verify.requested_ip,
            verify.server_identifier
        ),
        (
            DhcpMessageType::Request,
            EthernetAddress::BROADCAST,
            Ipv4Address::UNSPECIFIED,
            Some(ip(APPLIANCE_UPLINK)),
            None
        ),
        "an INIT-REBOOT style REQUEST"
    );
    // The same server on the restarted VM confirms the lease: nothing else changes.
    let server = DhcpServer {
        host: MOVED_GATEWAY,
        ..DhcpServer::default()
    };
    server.converse(&mut lab, announced);
    assert_eq!(dhcp_log_lines(), Vec::<String>::new());
    assert_eq!(lab.live_states(), 2);
    client_segment_reaches(&mut lab, &connection, MOVED_GATEWAY);
}

#[test]
fn a_silent_gateway_is_probed_at_its_mac_then_found_at_its_new_one() {
    let (mut lab, _) = leased_with_flows();
    take_log_lines();
    // The gateway's VM restarted: the old MAC is gone, nothing comes from it. The client
    // keeps sending; after a few seconds the appliance asks the old MAC, then everyone.
    let mut probes = Vec::new();
    let mut sent_to_old_mac = 0;
    let started = lab.now();
    while lab.now() < started + Duration::from_secs(15)
        && probes.last() != Some(&EthernetAddress::BROADCAST)
    {
        lab.advance(Duration::from_millis(250));
        let query = packets::udp(CLIENT.ip, 5353, SERVER, 53, b"anyone?");
        let mut sent = lab.send(CLIENT, &query);
        sent.frames.extend(lab.poll().frames);
        sent_to_old_mac += ipv4_destinations(&sent)
            .iter()
            .filter(|&&mac| mac == GATEWAY.mac)
            .count();
        probes.extend(gateway_requests(&sent));
    }
    assert_eq!(
        probes,
        [
            GATEWAY.mac,
            GATEWAY.mac,
            GATEWAY.mac,
            EthernetAddress::BROADCAST
        ],
        "three unicast probes, then a broadcast"
    );
    let broadcast_at = lab.now() - started;
    assert!(
        broadcast_at <= Duration::from_secs(10),
        "the old MAC was given up {broadcast_at} after the gateway went silent"
    );
    assert!(
        sent_to_old_mac > 10,
        "packets flowed to the old MAC while it was probed"
    );
    // Asked by broadcast, the gateway is unresolved: packets wait for the answer.
    let query = packets::udp(CLIENT.ip, 5353, SERVER, 53, b"waiting");
    lab.send(CLIENT, &query).assert_nothing();
    // The restarted VM answers the broadcast from its new MAC.
    let answered = arp_answer(&mut lab, MOVED_GATEWAY);
    assert_eq!(ipv4_destinations(&answered), [MOVED_GATEWAY.mac]);
    assert_eq!(
        dhcp_log_lines(),
        ["nic0 gateway 10.0.2.2 moved from 02:47:00:00:00:02 to 02:47:00:00:00:99; verifying the dhcp lease"]
    );
    assert_eq!(
        dhcp_messages(&answered).len(),
        1,
        "the lease is verified: {answered:?}"
    );
    let query = packets::udp(CLIENT.ip, 5353, SERVER, 53, b"there you are");
    lab.send(CLIENT, &query).ipv4_to(MOVED_GATEWAY);
}

#[test]
fn a_gateway_that_stops_answering_is_told_once_and_the_lease_verified() {
    let (mut lab, _) = leased_with_flows();
    take_log_lines();
    let mut verifications = 0;
    let started = lab.now();
    while lab.now() < started + Duration::from_secs(30) {
        lab.advance(Duration::from_millis(250));
        let query = packets::udp(CLIENT.ip, 5353, SERVER, 53, b"anyone?");
        let mut sent = lab.send(CLIENT, &query);
        sent.frames.extend(lab.poll().frames);
        verifications += dhcp_messages(&sent)
            .iter()
            .filter(|m| m.requested_ip == Some(ip(APPLIANCE_UPLINK)))
            .count();
    }
    assert_eq!(
        dhcp_log_lines(),
        ["nic0 gateway 10.0.2.2 stopped answering ARP; verifying the dhcp lease"]
    );
    assert!(verifications >= 1, "the lease is verified");
    // Unanswered, the lease is kept for the rest of its time.
    assert_eq!(
        uplink_address(&lab),
        Some(Ipv4Cidr::new(ip(APPLIANCE_UPLINK), 24))
    );
}

#[test]
fn a_static_uplink_follows_its_gateway_to_a_new_mac() {
    let mut lab = Lab::new(&DEFAULT);
    lab.attach(CLIENT);
    lab.teach(GATEWAY);
    let connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
    take_log_lines();
    gratuitous_arp(&mut lab, MOVED_GATEWAY).assert_nothing();
    assert_eq!(
        dhcp_log_lines(),
        ["nic0 gateway 10.0.2.2 moved from 02:47:00:00:00:02 to 02:47:00:00:00:99"]
    );
    client_segment_reaches(&mut lab, &connection, MOVED_GATEWAY);
}

#[test]
fn a_lease_overlapping_a_client_network_is_refused_loudly_and_never_requested() {
    let mut lab = Lab::new(&DHCP_UPLINK);
    take_log_lines();
    let overlapping = DhcpServer {
        address: [10, 137, 1, 100],
        prefix_len: 25,
        router: [10, 137, 1, 126],
        ..DhcpServer::default()
    };
    let discover = lab.poll();
    let (_, seen) = overlapping.converse(&mut lab, discover);
    let kinds: Vec<DhcpMessageType> = seen.iter().map(|s| s.message_type).collect();
    assert_eq!(
        kinds,
        [DhcpMessageType::Discover],
        "the offer is not requested"
    );
    assert_eq!(
        dhcp_log_lines(),
        ["nic0 dhcp: refused 10.137.1.100/25 offered by 10.0.2.2: it overlaps clients (nic1) 10.137.1.0/24"]
    );
    assert_eq!(uplink_address(&lab), None);

    // The client keeps looking, patiently: the server is there and offers the same.
    let started = lab.now();
    let mut discovers = 0;
    while lab.now() < started + Duration::from_secs(120) {
        lab.advance(Duration::from_millis(100));
        let sent = lab.poll();
        let (_, seen) = overlapping.converse(&mut lab, sent);
        discovers += seen.len();
    }
    assert!(
        (2..=8).contains(&discovers),
        "{discovers} DISCOVERs in two minutes"
    );
    assert_eq!(uplink_address(&lab), None);
}

#[test]
fn an_acknowledged_lease_overlapping_a_client_network_is_declined() {
    let mut lab = Lab::new(&DHCP_UPLINK);
    take_log_lines();
    let server = DhcpServer::default();
    let discover = &dhcp_messages(&lab.poll())[0];
    let offer = server
        .answer_to(discover)
        .expect("an offer of 10.0.2.15/24");
    let request = dhcp_messages(&server.send(&mut lab, &offer))[0].clone();
    // The server acknowledges another lease than it offered, in a client network.
    let overlapping = DhcpServer {
        prefix_len: 25,
        ..DhcpServer::default()
    };
    let ack = overlapping.message(
        DhcpMessageType::Ack,
        request.transaction_id,
        Ipv4Address::new(10, 137, 1, 100),
        Ipv4Address::BROADCAST,
    );
    let declined = overlapping.send(&mut lab, &ack);
    let [decline] = &dhcp_messages(&declined)[..] else {
        panic!("a DECLINE: {declined:?}")
    };
    assert_eq!(
        (
            decline.message_type,
            decline.requested_ip,
            decline.server_identifier
        ),
        (
            DhcpMessageType::Decline,
            Some(Ipv4Address::new(10, 137, 1, 100)),
            Some(ip(GATEWAY.ip))
        )
    );
    assert_eq!(
        dhcp_log_lines(),
        ["nic0 dhcp: declined 10.137.1.100/25 acknowledged by 10.0.2.2: it overlaps clients (nic1) 10.137.1.0/24"]
    );
    assert_eq!(uplink_address(&lab), None);
}

#[test]
fn packets_waiting_for_a_neighbor_of_the_old_network_never_leave_with_the_old_address() {
    let (mut lab, _) = leased_with_flows();
    // A client's datagram to a host on the uplink's network waits for its ARP answer.
    let neighbor = Host {
        ip: [10, 0, 2, 50],
        mac: EthernetAddress([0x02, 0x47, 0, 0, 0, 0x50]),
        nic: UPLINK,
    };
    let datagram = packets::udp(CLIENT.ip, 6000, neighbor.ip, 7, b"queued");
    let asked = lab.send(CLIENT, &datagram);
    assert_eq!(
        asked.arp_broadcasts().len(),
        1,
        "the appliance asks for the host"
    );
    // Meanwhile the upstream restarts with another range: the address changes.
    let restarted = DhcpServer {
        host: MOVED_GATEWAY,
        address: NEW_ADDRESS,
        ..DhcpServer::default()
    };
    let announced = gratuitous_arp(&mut lab, MOVED_GATEWAY);
    restarted.converse(&mut lab, announced);
    assert_eq!(
        uplink_address(&lab),
        Some(Ipv4Cidr::new(ip(NEW_ADDRESS), 24))
    );
    // The host answers now: nothing translated to the old address was kept for it.
    arp_answer(&mut lab, neighbor).assert_nothing();
    assert_eq!(lab.dropped(DropReason::NoRoute), 1);
}
