//! Clients reach the outside world through the appliance, masqueraded behind its uplink
//! address (`rules/default.rules`): TCP from SYN to teardown, source ports kept or
//! remapped, ICMP echo identifiers, and ICMP errors about NATed flows translated back.

mod appliance_common;

use appliance_common::*;
use dataplane::drops::DropReason;
use dataplane::packet::tcp_flags::{ACK, FIN, PSH, RST, SYN};
use dataplane::testutil::packets;
use smoltcp::time::Duration;
use smoltcp::wire::IpProtocol;

/// The default network, with the client attached and the gateway known.
fn default_lab() -> Lab {
    let mut lab = Lab::new(&DEFAULT);
    lab.attach(CLIENT);
    lab.teach(GATEWAY);
    lab
}

#[test]
fn client_syn_leaves_the_uplink_masqueraded_once_the_gateway_answers_arp() {
    let mut lab = Lab::new(&DEFAULT);
    lab.attach(CLIENT);
    let syn = packets::tcp_syn(CLIENT.ip, 40000, SERVER, 443);

    // The gateway's MAC is not known yet: the SYN waits while the appliance asks for it.
    lab.send(CLIENT, &syn)
        .assert_arp_request(UPLINK, GATEWAY.ip);

    let out = lab.arp_reply(GATEWAY).ipv4_to(GATEWAY);
    let header = ipv4_of(&out);
    assert_eq!(header.src, ip(APPLIANCE_UPLINK), "source masqueraded");
    assert_eq!(header.dst, ip(SERVER), "destination unchanged");
    assert_eq!(header.ttl, 63, "TTL decremented");
    assert_eq!(
        header.ident,
        ipv4_of(&syn).ident,
        "identification unchanged"
    );
    let seen = tcp_of(&out);
    assert_eq!(
        seen.src,
        sock(APPLIANCE_UPLINK, 40000),
        "the client's port is kept"
    );
    assert_eq!(seen.dst, sock(SERVER, 443));
    assert_eq!((seen.seq, seen.flags), (1000, SYN));
    assert!(seen.payload.is_empty());

    let stats = lab.appliance.state_stats();
    assert_eq!(
        (stats.live, stats.by_protocol.tcp, stats.nat_ports_in_use),
        (1, 1, 1)
    );
}

#[test]
fn tcp_reply_from_uplink_is_de_natted() {
    let mut lab = default_lab();
    let syn = packets::tcp_syn(CLIENT.ip, 40000, SERVER, 443);
    let outside = tcp_of(&lab.send(CLIENT, &syn).ipv4_to(GATEWAY)).src;

    let syn_ack = segment(sock(SERVER, 443), outside, 5000, 1001, SYN | ACK, &[]);
    let arrived = lab.send(GATEWAY, &syn_ack).ipv4_to(CLIENT);

    assert_eq!(ipv4_of(&arrived).ttl, 63, "TTL decremented");
    assert_eq!(
        tcp_of(&arrived),
        TcpSeen {
            src: sock(SERVER, 443),
            dst: sock(CLIENT.ip, 40000),
            seq: 5000,
            ack: 1001,
            flags: SYN | ACK,
            payload: Vec::new(),
        }
    );
}

#[test]
fn tcp_handshake_and_data_flow_both_ways() {
    let mut lab = default_lab();
    let mut connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 80));

    let request = connection.client_sends(&mut lab, PSH | ACK, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(request.seq, CLIENT_ISN + 1);
    let response = connection.server_sends(&mut lab, PSH | ACK, b"HTTP/1.1 200 OK\r\n\r\nhello");
    assert_eq!(
        (response.seq, response.ack),
        (SERVER_ISN + 1, CLIENT_ISN + 1 + 18)
    );
    connection.client_sends(&mut lab, ACK, &[]);
    connection.server_sends(&mut lab, PSH | ACK, b"more");

    assert_eq!(lab.live_states(), 1);
    assert_eq!(lab.appliance.drop_counters().total(), 0);
}

#[test]
fn fin_exchange_closes_the_flow_and_stragglers_later_find_nothing() {
    let mut lab = default_lab();
    let mut connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 80));
    connection.client_sends(&mut lab, FIN | ACK, &[]);
    connection.server_sends(&mut lab, FIN | ACK, &[]);
    connection.client_sends(&mut lab, ACK, &[]);

    // Both FINs acknowledged: the state lives on for pf's tcp.closed (90 s), then goes.
    lab.advance(Duration::from_secs(91));
    lab.poll();
    assert_eq!(lab.live_states(), 0);
    let straggler = connection.segment_from_server(ACK, b"late");
    lab.send(GATEWAY, &straggler).assert_nothing();
    assert_eq!(
        lab.dropped(DropReason::Policy),
        1,
        "nothing inbound is allowed by default"
    );
}

#[test]
fn reset_from_the_server_reaches_the_client_and_ends_the_flow() {
    let mut lab = default_lab();
    let mut connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 80));
    let reset = connection.server_sends(&mut lab, RST | ACK, &[]);
    assert_eq!(reset.dst, sock(CLIENT.ip, 40000));

    lab.advance(Duration::from_secs(91));
    lab.poll();
    assert_eq!(lab.live_states(), 0);
    lab.send(GATEWAY, &connection.segment_from_server(ACK, b"late"))
        .assert_nothing();
}

#[test]
fn reset_with_a_wrong_sequence_number_is_dropped() {
    let mut lab = default_lab();
    let mut connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 80));
    let blind = segment(
        connection.server,
        connection.outside,
        SERVER_ISN + 100_000,
        0,
        RST,
        &[],
    );
    lab.send(GATEWAY, &blind).assert_nothing();
    assert_eq!(lab.dropped(DropReason::InvalidState), 1);
    // The connection is unharmed.
    connection.client_sends(&mut lab, PSH | ACK, b"still here");
}

#[test]
fn source_port_is_kept_when_free_and_remapped_when_another_client_holds_it() {
    let mut lab = default_lab();
    lab.attach(CLIENT2);
    let first = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
    let second = Connection::open(&mut lab, CLIENT2, 40000, sock(SERVER, 443));
    assert_eq!(
        first.outside,
        sock(APPLIANCE_UPLINK, 40000),
        "the first client keeps its port"
    );
    assert_eq!(*second.outside.ip(), ip(APPLIANCE_UPLINK));
    assert_ne!(
        second.outside.port(),
        40000,
        "the second client's port is remapped"
    );
    assert!(second.outside.port() >= 1024);

    // Each reply finds its own client (Connection checks the de-NATed addresses).
    let (mut first, mut second) = (first, second);
    second.server_sends(&mut lab, PSH | ACK, b"to client 2");
    first.server_sends(&mut lab, PSH | ACK, b"to client 1");

    // Towards another server, the second client's port is free again.
    let third = Connection::open(&mut lab, CLIENT2, 40000, sock(OTHER_SERVER, 443));
    assert_eq!(third.outside, sock(APPLIANCE_UPLINK, 40000));
    assert_eq!(lab.appliance.state_stats().nat_ports_in_use, 3);
}

#[test]
fn icmp_echo_identifier_is_translated_both_ways() {
    let mut lab = default_lab();
    lab.attach(CLIENT2);
    let ping = |from: Host| packets::icmp_echo(from.ip, SERVER, true, 0x4d01, 7, b"ping data");

    let first = echo_of(&lab.send(CLIENT, &ping(CLIENT)).ipv4_to(GATEWAY));
    let second = echo_of(&lab.send(CLIENT2, &ping(CLIENT2)).ipv4_to(GATEWAY));
    let expected = |ident| EchoSeen {
        src: ip(APPLIANCE_UPLINK),
        dst: ip(SERVER),
        request: true,
        ident,
        seq_no: 7,
        data: b"ping data".to_vec(),
    };
    assert_eq!(first, expected(0x4d01), "the first identifier is kept");
    assert_ne!(second.ident, 0x4d01, "the second identifier is remapped");
    assert_eq!(second, expected(second.ident));

    let pong = |ident| packets::icmp_echo(SERVER, APPLIANCE_UPLINK, false, ident, 7, b"ping data");
    for (ident, client) in [(second.ident, CLIENT2), (0x4d01, CLIENT)] {
        let back = echo_of(&lab.send(GATEWAY, &pong(ident)).ipv4_to(client));
        assert_eq!(
            back,
            EchoSeen {
                src: ip(SERVER),
                dst: ip(client.ip),
                request: false,
                ident: 0x4d01,
                seq_no: 7,
                data: b"ping data".to_vec()
            }
        );
    }
}

#[test]
fn server_echo_request_does_not_pass_as_a_reply() {
    let mut lab = default_lab();
    let ping = packets::icmp_echo(CLIENT.ip, SERVER, true, 0x4d01, 1, b"x");
    lab.send(CLIENT, &ping).ipv4_to(GATEWAY);
    let request_in = packets::icmp_echo(SERVER, APPLIANCE_UPLINK, true, 0x4d01, 1, b"x");
    lab.send(GATEWAY, &request_in).assert_nothing();
    assert_eq!(lab.dropped(DropReason::Policy), 1);
}

/// The client's datagram leaves; an ICMP error about it, quoting it as it left, comes
/// back from `reporter` (the server itself or a router on the way) and must reach the
/// client quoting the datagram as the client sent it.
fn icmp_error_reaches_client_translated(client: Host, reporter: [u8; 4], icmp_type: u8, code: u8) {
    let mut lab = default_lab();
    lab.attach(CLIENT2);
    // CLIENT2 holds port 5000 towards the server first, so CLIENT's port gets remapped
    // and the quote's port must be translated too.
    lab.send(
        CLIENT2,
        &packets::udp(CLIENT2.ip, 5000, SERVER, 33434, b"probe"),
    )
    .ipv4_to(GATEWAY);

    let datagram = packets::udp(client.ip, 5000, SERVER, 33434, b"probe");
    let left = lab.send(client, &datagram).ipv4_to(GATEWAY);
    let error = packets::icmp_error(
        reporter,
        APPLIANCE_UPLINK,
        icmp_type,
        code,
        &with_ttl(left.clone(), 1),
    );
    let arrived = lab.send(GATEWAY, &error).ipv4_to(client);

    assert_eq!(
        icmp_error_of(&arrived),
        IcmpErrorSeen {
            src: ip(reporter),
            dst: ip(client.ip),
            icmp_type,
            code,
            quoted_src: sock(client.ip, 5000),
            quoted_dst: sock(SERVER, 33434),
            quoted_protocol: IpProtocol::Udp,
        }
    );
    assert!(
        quoted_header_checksum_valid(&arrived),
        "the quote's header checksum is updated"
    );
    assert_eq!(ipv4_of(&arrived).ttl, 63);
}

#[test]
fn time_exceeded_from_a_router_about_a_natted_flow_reaches_the_client_translated() {
    icmp_error_reaches_client_translated(CLIENT, ROUTER, 11, 0);
}

#[test]
fn port_unreachable_from_the_server_reaches_the_remapped_client_translated() {
    icmp_error_reaches_client_translated(CLIENT, SERVER, 3, 3);
}

#[test]
fn port_unreachable_about_the_flow_that_kept_its_port_reaches_its_client() {
    icmp_error_reaches_client_translated(CLIENT2, SERVER, 3, 3);
}

#[test]
fn icmp_error_about_no_known_flow_is_dropped() {
    let mut lab = default_lab();
    let never_sent = packets::udp(APPLIANCE_UPLINK, 6000, SERVER, 53, b"?");
    let error = packets::icmp_error(SERVER, APPLIANCE_UPLINK, 3, 3, &never_sent);
    lab.send(GATEWAY, &error).assert_nothing();
    assert_eq!(lab.appliance.drop_counters().total(), 1);
}

#[test]
fn icmp_error_from_a_client_about_a_reply_leaves_masqueraded() {
    let mut lab = default_lab();
    let query = packets::udp(CLIENT.ip, 5000, SERVER, 53, b"q");
    let outside = udp_of(&lab.send(CLIENT, &query).ipv4_to(GATEWAY)).src;
    let reply = packets::udp(SERVER, 53, APPLIANCE_UPLINK, outside.port(), b"a");
    let delivered = lab.send(GATEWAY, &reply).ipv4_to(CLIENT);

    // The client's socket is gone: it says so, quoting the reply as it received it.
    let unreachable = packets::icmp_error(CLIENT.ip, SERVER, 3, 3, &delivered);
    let left = lab.send(CLIENT, &unreachable).ipv4_to(GATEWAY);
    assert_eq!(
        icmp_error_of(&left),
        IcmpErrorSeen {
            src: ip(APPLIANCE_UPLINK),
            dst: ip(SERVER),
            icmp_type: 3,
            code: 3,
            quoted_src: sock(SERVER, 53),
            quoted_dst: outside,
            quoted_protocol: IpProtocol::Udp,
        }
    );
    assert!(quoted_header_checksum_valid(&left));
}

#[test]
fn fragmented_reply_from_the_server_reaches_the_client_with_every_fragment_de_natted() {
    let mut lab = default_lab();
    let query = packets::udp(CLIENT.ip, 5000, SERVER, 53, b"q");
    let outside = udp_of(&lab.send(CLIENT, &query).ipv4_to(GATEWAY)).src;
    let body: Vec<u8> = (0..1800u32).map(|i| (i % 253) as u8).collect();
    let reply = packets::udp(SERVER, 53, APPLIANCE_UPLINK, outside.port(), &body);

    let arrived: Vec<Vec<u8>> = fragments(&reply, 1200)
        .iter()
        .map(|f| lab.send(GATEWAY, f).ipv4_fragment_to(CLIENT))
        .collect();
    assert_eq!(arrived.len(), 2);
    for fragment in &arrived {
        let header = ipv4_of(fragment);
        assert_eq!(
            (header.src, header.dst, header.ttl),
            (ip(SERVER), ip(CLIENT.ip), 63)
        );
    }
    let whole = reassembled(&arrived);
    assert!(
        packets::checksums_valid(&whole),
        "the reassembled datagram's checksums"
    );
    assert_eq!(
        udp_of(&whole),
        UdpSeen {
            src: sock(SERVER, 53),
            dst: sock(CLIENT.ip, 5000),
            payload: body
        }
    );
}
