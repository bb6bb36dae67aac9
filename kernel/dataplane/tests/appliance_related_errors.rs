//! ICMP errors related to a state, and who may send them: the flow's peer, or a router on
//! the flow's path — never another client; about a packet the appliance did send (a TCP
//! quote inside the tracked window). And packets of a state leave through the NIC the
//! state records, whatever address routing would say.

mod appliance_common;

use appliance_common::*;
use dataplane::appliance::ApplianceOptions;
use dataplane::drops::DropReason;
use dataplane::packet::tcp_flags::ACK;
use dataplane::testutil::packets;
use smoltcp::wire::{EthernetAddress, IpProtocol, Ipv4Address, Ipv4Cidr};

fn default_lab() -> Lab {
    let mut lab = Lab::new(&DEFAULT);
    lab.attach(CLIENT);
    lab.attach(CLIENT2);
    lab.teach(GATEWAY);
    lab.teach(RESOLVER);
    lab
}

#[test]
fn icmp_error_from_another_client_about_a_clients_flow_is_dropped_as_spoofed() {
    let mut lab = default_lab();
    // CLIENT asks the appliance for a name; the redirect takes the query to the resolver
    // and brings the answer back from the appliance's address.
    let query = packets::udp(CLIENT.ip, 5353, APPLIANCE_CLIENTS, 53, b"q");
    let outside = udp_of(&lab.send(CLIENT, &query).ipv4_to(RESOLVER)).src;
    let answer = packets::udp(RESOLVER.ip, 53, APPLIANCE_UPLINK, outside.port(), b"a");
    let delivered = lab.send(RESOLVER, &answer).ipv4_to(CLIENT);

    // CLIENT2 claims, from its own address, that the answer could not be delivered.
    take_log_lines();
    let forged = packets::icmp_error(CLIENT2.ip, APPLIANCE_CLIENTS, 3, 3, &delivered);
    lab.send(CLIENT2, &forged).assert_nothing();
    assert_eq!(lab.dropped(DropReason::Spoofed), 1);
    assert_eq!(
        take_log_lines(),
        ["drop nic1 spoofed (icmp-error-not-from-peer) icmp 10.137.1.11 -> 10.137.1.1 type 3 code 3"]
    );

    // CLIENT itself may say so: its error leaves from the appliance's uplink address.
    let own = packets::icmp_error(CLIENT.ip, APPLIANCE_CLIENTS, 3, 3, &delivered);
    let left = lab.send(CLIENT, &own).ipv4_to(RESOLVER);
    assert_eq!(
        (icmp_error_of(&left).src, icmp_error_of(&left).quoted_dst),
        (ip(APPLIANCE_UPLINK), outside)
    );
}

#[test]
fn icmp_error_about_an_on_link_peer_from_another_host_is_dropped() {
    let mut lab = default_lab();
    let query = packets::udp(CLIENT.ip, 5353, RESOLVER.ip, 53, b"q");
    let left = lab.send(CLIENT, &query).ipv4_to(RESOLVER);
    // The resolver is on the uplink's network: no router stands between it and the
    // appliance, so only the resolver itself may report about packets to it.
    let from_gateway = packets::icmp_error(GATEWAY.ip, APPLIANCE_UPLINK, 3, 3, &left);
    lab.send(GATEWAY, &from_gateway).assert_nothing();
    assert_eq!(lab.dropped(DropReason::Spoofed), 1);
    let from_resolver = packets::icmp_error(RESOLVER.ip, APPLIANCE_UPLINK, 3, 3, &left);
    let arrived = lab.send(RESOLVER, &from_resolver).ipv4_to(CLIENT);
    assert_eq!(icmp_error_of(&arrived).quoted_src, sock(CLIENT.ip, 5353));
}

#[test]
fn icmp_error_quoting_a_tcp_sequence_number_outside_the_window_is_dropped() {
    let mut lab = default_lab();
    let connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
    let quoting = |seq: u32| {
        let sent = segment(
            connection.outside,
            connection.server,
            seq,
            connection.server_seq,
            ACK,
            &[],
        );
        packets::icmp_error(ROUTER, APPLIANCE_UPLINK, 3, 4, &sent)
    };

    // 1 GiB beyond what the client sent: no packet of this connection ever carried it.
    let far = connection.client_seq.wrapping_add(1 << 30);
    lab.send(GATEWAY, &quoting(far)).assert_nothing();
    assert_eq!(lab.dropped(DropReason::InvalidState), 1);

    // A quote of the segment the client just sent is related: it reaches the client.
    let arrived = lab
        .send(GATEWAY, &quoting(connection.client_seq))
        .ipv4_to(CLIENT);
    assert_eq!(
        icmp_error_of(&arrived),
        IcmpErrorSeen {
            src: ip(ROUTER),
            dst: ip(CLIENT.ip),
            icmp_type: 3,
            code: 4,
            quoted_src: connection.inside,
            quoted_dst: connection.server,
            quoted_protocol: IpProtocol::Tcp,
        }
    );
}

#[test]
fn icmp_error_quoting_a_packet_the_appliance_never_sent_is_dropped() {
    let mut lab = default_lab();
    let query = packets::udp(CLIENT.ip, 5353, SERVER, 53, b"q");
    lab.send(CLIENT, &query).ipv4_to(GATEWAY);
    // The server never answered, yet the client "reports" an answer it could not deliver.
    let never_delivered = packets::udp(SERVER, 53, CLIENT.ip, 5353, b"a");
    let error = packets::icmp_error(CLIENT.ip, SERVER, 3, 3, &never_delivered);
    lab.send(CLIENT, &error).assert_nothing();
    assert_eq!(lab.dropped(DropReason::InvalidState), 1);
}

/// Found by the fuzz target (`kernel/dataplane/fuzz`): source quench was not parsed as an
/// error, so `pass from clients to uplink` let it out as a flow of its own, masqueraded,
/// with the client's private address in its quote.
#[test]
fn source_quench_about_no_flow_is_dropped_like_any_icmp_error() {
    let mut lab = default_lab();
    let never_delivered = packets::udp(SERVER, 53, CLIENT.ip, 5353, b"a");
    let quench = packets::icmp_error(CLIENT.ip, SERVER, 4, 0, &never_delivered);
    lab.send(CLIENT, &quench).assert_nothing();
    assert_eq!(lab.dropped(DropReason::InvalidState), 1);
}

/// A host of the clients' network, 10.137.1.200.
const FAR_CLIENT: Host = Host {
    nic: CLIENTS,
    mac: EthernetAddress([0x02, 0x43, 0, 0, 1, 200]),
    ip: [10, 137, 1, 200],
};

#[test]
fn packets_of_a_state_leave_through_the_states_nic_when_address_routing_disagrees() {
    // The lab NIC addressed inside the clients' network (no valid ruleset or lease does
    // this): by address, 10.137.1.128/25 is nic2's, though FAR_CLIENT sits on nic1.
    let mut lab = Lab::with_config(&TWO_NETWORKS, ApplianceOptions::default(), |config| {
        config.nics[LAB as usize].ipv4 = Some(Ipv4Cidr::new(Ipv4Address::new(10, 137, 1, 129), 25));
    });
    lab.attach(FAR_CLIENT);
    lab.teach(GATEWAY);
    let probe = packets::udp(FAR_CLIENT.ip, 5000, SERVER, 33434, b"probe");
    let left = lab.send(FAR_CLIENT, &probe).ipv4_to(GATEWAY);
    let outside = udp_of(&left).src;

    // The reply goes back the way the flow came in.
    let reply = packets::udp(SERVER, 33434, APPLIANCE_UPLINK, outside.port(), b"echo");
    let back = lab.send(GATEWAY, &reply).ipv4_to(FAR_CLIENT);
    assert_eq!(udp_of(&back).dst, sock(FAR_CLIENT.ip, 5000));

    // So does an ICMP error about the flow.
    let error = packets::icmp_error(ROUTER, APPLIANCE_UPLINK, 11, 0, &with_ttl(left, 1));
    let arrived = lab.send(GATEWAY, &error).ipv4_to(FAR_CLIENT);
    assert_eq!(
        icmp_error_of(&arrived).quoted_src,
        sock(FAR_CLIENT.ip, 5000)
    );

    // And the appliance's own answers go back the way the packet came.
    let expiring = with_ttl(probe, 1);
    let answer = lab.send(FAR_CLIENT, &expiring).ipv4_to(FAR_CLIENT);
    assert_eq!(
        (icmp_error_of(&answer).src, icmp_error_of(&answer).icmp_type),
        (ip(APPLIANCE_CLIENTS), 11)
    );
}
