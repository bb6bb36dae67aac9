//! An uplink addressed by DHCP: nothing leaves before the lease, the lease configures the
//! address, the default route and the DNS redirect's resolver, and losing it removes
//! them again.

mod appliance_common;

use appliance_common::*;
use dataplane::drops::DropReason;
use dataplane::testutil::packets;
use smoltcp::time::Duration;
use smoltcp::wire::{
    DhcpMessageType, DhcpOption, DhcpPacket, DhcpRepr, EthernetAddress, EthernetFrame,
    EthernetProtocol, IpProtocol, Ipv4Address, Ipv4Cidr, Ipv4Packet, UdpPacket,
};

/// How long the DHCP server's leases last.
const LEASE_SECS: u32 = 600;

/// A DHCP message the appliance sent on the uplink.
#[derive(Debug)]
struct DhcpSeen {
    /// Ethernet destination.
    dst: EthernetAddress,
    message_type: DhcpMessageType,
    transaction_id: u32,
    client_hardware_address: EthernetAddress,
    requested_ip: Option<Ipv4Address>,
}

/// The DHCP messages among the frames the appliance sent.
fn dhcp_messages(sent: &Sent) -> Vec<DhcpSeen> {
    let parse = |frame: &[u8]| {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
        if eth.ethertype() != EthernetProtocol::Ipv4 || ip.next_header() != IpProtocol::Udp {
            return None;
        }
        let udp = UdpPacket::new_checked(ip.payload()).ok()?;
        if (udp.src_port(), udp.dst_port()) != (68, 67) {
            return None;
        }
        let dhcp = DhcpPacket::new_checked(udp.payload()).ok()?;
        let repr = DhcpRepr::parse(&dhcp).ok()?;
        Some(DhcpSeen {
            dst: eth.dst_addr(),
            message_type: repr.message_type,
            transaction_id: repr.transaction_id,
            client_hardware_address: repr.client_hardware_address,
            requested_ip: repr.requested_ip,
        })
    };
    sent.frames
        .iter()
        .filter(|(nic, _)| *nic == UPLINK)
        .filter_map(|(_, frame)| parse(frame))
        .collect()
}

/// The server's answer of `message_type` to the client's `transaction_id`.
fn server_message(message_type: DhcpMessageType, transaction_id: u32, your_ip: [u8; 4]) -> Vec<u8> {
    let dns = [DhcpOption {
        kind: 6,
        data: &RESOLVER.ip,
    }];
    let repr = DhcpRepr {
        message_type,
        transaction_id,
        secs: 0,
        client_hardware_address: appliance_mac(UPLINK),
        client_ip: Ipv4Address::UNSPECIFIED,
        your_ip: ip(your_ip),
        server_ip: ip(GATEWAY.ip),
        router: Some(ip(GATEWAY.ip)),
        subnet_mask: Some(Ipv4Address::new(255, 255, 255, 0)),
        relay_agent_ip: Ipv4Address::UNSPECIFIED,
        broadcast: false,
        requested_ip: None,
        client_identifier: None,
        server_identifier: Some(ip(GATEWAY.ip)),
        parameter_request_list: None,
        dns_servers: None,
        max_size: None,
        lease_duration: Some(LEASE_SECS),
        renew_duration: None,
        rebind_duration: None,
        additional_options: &dns,
    };
    let mut payload = vec![0u8; repr.buffer_len()];
    repr.emit(&mut DhcpPacket::new_unchecked(&mut payload[..]))
        .expect("a DHCP message");
    packets::udp(GATEWAY.ip, 67, [255, 255, 255, 255], 68, &payload)
}

/// The gateway, acting as DHCP server, broadcasts `packet`.
fn broadcast_from_server(lab: &mut Lab, packet: &[u8]) -> Sent {
    lab.receive(
        UPLINK,
        packets::ethernet(GATEWAY.mac, EthernetAddress::BROADCAST, packet),
    )
}

/// Runs DISCOVER / OFFER / REQUEST / ACK for 10.0.2.15. Returns what the ACK made the
/// appliance send.
fn lease(lab: &mut Lab) -> Sent {
    let discover = lab.poll();
    let [repr] = &dhcp_messages(&discover)[..] else {
        panic!("one DISCOVER: {discover:?}")
    };
    assert_eq!(
        (repr.dst, repr.message_type),
        (EthernetAddress::BROADCAST, DhcpMessageType::Discover)
    );
    assert_eq!(repr.client_hardware_address, appliance_mac(UPLINK));
    let transaction_id = repr.transaction_id;

    let mut request = broadcast_from_server(
        lab,
        &server_message(DhcpMessageType::Offer, transaction_id, APPLIANCE_UPLINK),
    );
    request.frames.extend(lab.poll().frames);
    let [repr] = &dhcp_messages(&request)[..] else {
        panic!("one REQUEST: {request:?}")
    };
    assert_eq!(repr.message_type, DhcpMessageType::Request);
    assert_eq!(repr.requested_ip, Some(ip(APPLIANCE_UPLINK)));

    broadcast_from_server(
        lab,
        &server_message(DhcpMessageType::Ack, transaction_id, APPLIANCE_UPLINK),
    )
}

#[test]
fn before_the_lease_nothing_is_routed_out_and_the_client_is_told() {
    let mut lab = Lab::new(&DHCP_UPLINK);
    lab.attach(CLIENT);
    assert_eq!(lab.appliance.nic_config(UPLINK).and_then(|c| c.ipv4), None);
    let syn = packets::tcp_syn(CLIENT.ip, 40000, SERVER, 443);
    let error = icmp_error_of(&lab.send(CLIENT, &syn).ipv4_to(CLIENT));
    assert_eq!(
        (error.src, error.dst, error.icmp_type, error.code),
        (ip(APPLIANCE_CLIENTS), ip(CLIENT.ip), 3, 0)
    );
    assert_eq!(lab.dropped(DropReason::NoRoute), 1);

    // Nothing but the DHCP client's answers is taken in on the unconfigured uplink.
    lab.send(
        GATEWAY,
        &packets::udp(SERVER, 53, [10, 0, 2, 15], 5000, b"?"),
    )
    .assert_nothing();
    assert_eq!(lab.dropped(DropReason::NicUnconfigured), 1);
}

#[test]
fn lease_configures_the_uplink_announces_it_and_opens_the_way_out() {
    let mut lab = Lab::new(&DHCP_UPLINK);
    lab.attach(CLIENT);
    take_log_lines();
    let after_ack = lease(&mut lab);
    after_ack.assert_arp_request(UPLINK, APPLIANCE_UPLINK); // the gratuitous ARP
    assert!(
        take_log_lines().contains(
            &"nic0 dhcp: address 10.0.2.15/24 gateway 10.0.2.2 dns [10.0.2.3]".to_string()
        ),
        "the lease is logged"
    );
    let config = lab.appliance.nic_config(UPLINK).expect("nic0");
    assert_eq!(config.ipv4, Some(Ipv4Cidr::new(ip(APPLIANCE_UPLINK), 24)));
    assert_eq!(config.gateway, Some(ip(GATEWAY.ip)));

    lab.teach(GATEWAY);
    Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
}

#[test]
fn dns_redirect_uses_the_resolver_the_lease_named() {
    let mut lab = Lab::new(&DHCP_UPLINK);
    lab.attach(CLIENT);
    lease(&mut lab);
    lab.teach(RESOLVER);
    let query = packets::udp(CLIENT.ip, 5353, APPLIANCE_CLIENTS, 53, b"query");
    let redirected = udp_of(&lab.send(CLIENT, &query).ipv4_to(RESOLVER));
    assert_eq!(
        (redirected.src, redirected.dst),
        (sock(APPLIANCE_UPLINK, 5353), sock(RESOLVER.ip, 53))
    );
}

#[test]
fn losing_the_lease_removes_the_address_and_the_way_out() {
    let mut lab = Lab::new(&DHCP_UPLINK);
    lab.attach(CLIENT);
    lease(&mut lab);
    // The server never answers a renewal: the lease runs out.
    for _ in 0..(LEASE_SECS / 10 + 1) {
        lab.advance(Duration::from_secs(10));
        lab.poll();
    }
    assert_eq!(lab.appliance.nic_config(UPLINK).and_then(|c| c.ipv4), None);
    assert!(take_log_lines()
        .contains(&"nic0 dhcp: lease on 10.0.2.15/24 lost, address removed".to_string()));
    lab.attach(CLIENT);
    let syn = packets::tcp_syn(CLIENT.ip, 40000, SERVER, 443);
    let error = icmp_error_of(&lab.send(CLIENT, &syn).ipv4_to(CLIENT));
    assert_eq!((error.icmp_type, error.code), (3, 0));
}
