//! The DHCP server of a client interface, in the appliance: a client with no configuration
//! gets an address and goes out through NAT; the lease binds the address to the client's
//! MAC for anti-spoofing, makes it a client for proxy ARP and state limits, and takes the
//! client's states along when it ends.

mod appliance_common;

use appliance_common::*;
use dataplane::dhcp::{ClientMessage, ServerMessage};
use dataplane::drops::DropReason;
use dataplane::testutil::dhcp::ClientSends;
use dataplane::testutil::packets;
use smoltcp::time::Duration;
use smoltcp::wire::{ArpOperation, DhcpMessageType, EthernetAddress, Ipv4Address};

/// A client on the served network with MAC `…:n` and, once leased, address `ip`.
fn newcomer(n: u8, ip: [u8; 4]) -> Host {
    Host {
        nic: CLIENTS,
        mac: EthernetAddress([0x02, 0x43, 0, 0, 9, n]),
        ip,
    }
}

/// The one DHCP answer in `sent`, parsed from its frame as a client's DHCP code parses it,
/// with the MAC it went to.
fn answer(sent: &Sent) -> (EthernetAddress, ServerMessage) {
    let [(nic, frame)] = &sent.frames[..] else {
        panic!("expected one DHCP answer, got {sent:?}");
    };
    assert_eq!(*nic, CLIENTS);
    let to = EthernetAddress::from_bytes(&frame[..6]);
    (
        to,
        ServerMessage::parse(frame).expect("a DHCP server message"),
    )
}

/// `mac` broadcasts `message` from 0.0.0.0.
fn broadcast(lab: &mut Lab, mac: EthernetAddress, message: ClientMessage) -> Sent {
    let packet = message.build(mac, 0x5eed, 0, Ipv4Address::BROADCAST);
    lab.receive(
        CLIENTS,
        packets::ethernet(mac, EthernetAddress::BROADCAST, &packet),
    )
}

/// DISCOVER, OFFER, REQUEST, ACK for `mac`; the acknowledged address.
fn lease(lab: &mut Lab, mac: EthernetAddress) -> Ipv4Address {
    let (_, offer) = answer(&broadcast(lab, mac, ClientMessage::Discover));
    assert_eq!(offer.kind, DhcpMessageType::Offer);
    let select = ClientMessage::Select {
        address: offer.your_ip,
        server: offer.server,
    };
    let (to, ack) = answer(&broadcast(lab, mac, select));
    assert_eq!((to, ack.kind), (mac, DhcpMessageType::Ack));
    assert_eq!(ack.your_ip, offer.your_ip);
    ack.your_ip
}

#[test]
fn a_client_without_configuration_gets_an_address_and_reaches_the_uplink() {
    let mut lab = Lab::new(&SERVED);
    let host = newcomer(1, [10, 137, 1, 100]);
    let (to, offer) = answer(&broadcast(&mut lab, host.mac, ClientMessage::Discover));
    assert_eq!(to, host.mac, "answered at the client's MAC");
    assert_eq!(offer.your_ip, ip(host.ip), "the pool's first address");
    assert_eq!(offer.server, ip(APPLIANCE_CLIENTS));
    assert_eq!(offer.router, Some(ip(APPLIANCE_CLIENTS)));
    assert_eq!(offer.dns_servers, [ip(APPLIANCE_CLIENTS)]);
    assert_eq!(offer.subnet_mask, Some(Ipv4Address::new(255, 255, 255, 0)));
    assert_eq!(
        (offer.lease_secs, offer.renew_secs, offer.rebind_secs),
        (Some(120), Some(60), Some(105))
    );
    assert_eq!(lease(&mut lab, host.mac), ip(host.ip));

    lab.teach(GATEWAY);
    let syn = packets::tcp_syn(host.ip, 40000, SERVER, 443);
    let out = tcp_of(&lab.send(host, &syn).ipv4_to(GATEWAY));
    assert_eq!(
        (*out.src.ip(), *out.dst.ip()),
        (ip(APPLIANCE_UPLINK), ip(SERVER))
    );
    // The appliance knew the client's MAC from its lease: the answer needs no ARP.
    let syn_ack = packets::tcp(
        (SERVER, 443),
        (APPLIANCE_UPLINK, out.src.port()),
        (1, out.seq.wrapping_add(1), 0x12),
        b"",
    );
    let back = tcp_of(&lab.send(GATEWAY, &syn_ack).ipv4_to(host));
    assert_eq!(back.dst, sock(host.ip, 40000));
}

#[test]
fn a_declared_client_is_offered_its_own_address_by_pinned_mac_or_by_name() {
    let mut lab = Lab::new(&SERVED);
    let work = EthernetAddress([0x00, 0x16, 0x3e, 0x5e, 0x6c, 0x00]);
    assert_eq!(lease(&mut lab, work), ip([10, 137, 1, 10]));
    // udhcpc -x hostname:laptop: the host-name option names the declared client.
    let mac = EthernetAddress([0x02, 0x43, 0, 0, 9, 11]);
    let discover = ClientSends {
        host_name: Some("laptop"),
        ..ClientSends::new(DhcpMessageType::Discover, mac)
    };
    let (_, offer) = answer(&lab.receive(CLIENTS, discover.frame()));
    assert_eq!(offer.your_ip, ip([10, 137, 1, 11]));
    // work's name is no key to work's pinned address.
    let posing = ClientSends {
        host_name: Some("work"),
        ..ClientSends::new(DhcpMessageType::Discover, newcomer(3, [0; 4]).mac)
    };
    let (_, offer) = answer(&lab.receive(CLIENTS, posing.frame()));
    assert_eq!(offer.your_ip, ip([10, 137, 1, 100]));
}

#[test]
fn an_address_nobody_leased_or_another_mac_sending_as_a_lease_is_spoofed() {
    let mut lab = Lab::new(&SERVED);
    let host = newcomer(1, [10, 137, 1, 100]);
    lease(&mut lab, host.mac);
    lab.teach(GATEWAY);
    let unleased = newcomer(2, [10, 137, 1, 101]);
    lab.send(unleased, &packets::tcp_syn(unleased.ip, 40000, SERVER, 443))
        .assert_nothing();
    let impostor = newcomer(3, host.ip);
    lab.send(impostor, &packets::tcp_syn(host.ip, 40001, SERVER, 443))
        .assert_nothing();
    assert_eq!(lab.dropped(DropReason::Spoofed), 2);
    assert!(
        take_log_lines()
            .iter()
            .any(|l| l.contains("lease-mac-mismatch")),
        "the impostor is logged"
    );
}

#[test]
fn a_pool_client_is_held_to_the_state_limit_of_its_dhcp_line() {
    let mut lab = Lab::new(&SERVED);
    let host = newcomer(1, [10, 137, 1, 100]);
    lease(&mut lab, host.mac);
    lab.teach(GATEWAY);
    for port in [40000, 40001] {
        lab.send(host, &packets::tcp_syn(host.ip, port, SERVER, 443))
            .ipv4_to(GATEWAY);
    }
    lab.send(host, &packets::tcp_syn(host.ip, 40002, SERVER, 443))
        .assert_nothing();
    assert_eq!(lab.dropped(DropReason::StateLimit), 1);
}

#[test]
fn an_expired_lease_takes_the_clients_states_and_its_address_along() {
    let mut lab = Lab::new(&SERVED);
    let host = newcomer(1, [10, 137, 1, 100]);
    lease(&mut lab, host.mac);
    lab.teach(GATEWAY);
    lab.send(host, &packets::tcp_syn(host.ip, 40000, SERVER, 443))
        .ipv4_to(GATEWAY);
    assert_eq!(lab.live_states(), 1);
    lab.advance(Duration::from_secs(121));
    lab.poll();
    assert_eq!(lab.live_states(), 0);
    lab.send(host, &packets::tcp_syn(host.ip, 40001, SERVER, 443))
        .assert_nothing();
    assert_eq!(lab.dropped(DropReason::Spoofed), 1);
}

#[test]
fn a_released_address_goes_to_the_next_client() {
    let mut lab = Lab::new(&SERVED);
    let first = newcomer(1, [10, 137, 1, 100]);
    lease(&mut lab, first.mac);
    let release = ClientSends {
        client_ip: ip(first.ip),
        ..ClientSends::new(DhcpMessageType::Release, first.mac)
    };
    lab.receive(CLIENTS, release.frame()).assert_nothing();
    assert_eq!(lease(&mut lab, newcomer(2, [0; 4]).mac), ip(first.ip));
}

#[test]
fn a_leased_client_gets_proxy_arp_like_a_declared_one() {
    let mut lab = Lab::new(&SERVED);
    let host = newcomer(1, [10, 137, 1, 100]);
    lease(&mut lab, host.mac);
    let reply = lab.arp_request(host, [10, 137, 1, 55]).arp_to(host);
    assert_eq!(reply.operation, ArpOperation::Reply);
    assert_eq!(reply.sender_mac, appliance_mac(CLIENTS));
    // Without a lease, nobody is answered for a neighbour's address.
    let stranger = newcomer(2, [10, 137, 1, 101]);
    lab.arp_request(stranger, [10, 137, 1, 55]).assert_nothing();
}
