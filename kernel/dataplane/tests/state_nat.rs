//! NAT through the state table with real packets: masquerade (port kept, remapped,
//! exhausted), ICMP echo identifiers, port forwards, the DNS redirect, and ICMP errors
//! translated back through their quoted packet. Every rewrite is checked field by field;
//! the helpers check every checksum after every translation.

mod state_common;

use dataplane::nat::{self, MasqueradeConfig, Masquerader, NatRefused};
use dataplane::packet::tcp_flags::{ACK, SYN};
use dataplane::packet::{IcmpSummary, Transport};
use dataplane::policy::{
    ipv4_to_flow_addr, AddrRange, ByteRange, DnsRedirect, DnsUpstream, Masquerade, PolicyBuf,
    PortForward, PortRange, SourcePos,
};
use dataplane::state::{Direction, Lookup, NewFlow, StateDrop, StateTable};
use dataplane::testutil::packets;
use smoltcp::time::Instant;
use smoltcp::wire::IpProtocol;
use state_common::*;

/// Opens a masqueraded flow for `packet` (translated in place) and returns the flow.
fn open_masqueraded(
    table: &mut StateTable,
    masquerader: &mut Masquerader,
    packet: &mut [u8],
    now: Instant,
) -> NewFlow {
    let flow = masqueraded(table, masquerader, packet, now);
    open(table, &flow, packet, now).expect("state created");
    flow
}

fn echo_ident(packet: &[u8]) -> u16 {
    match parse(packet).transport {
        Transport::Icmp(IcmpSummary::Echo { ident, .. }) => ident,
        other => panic!("not an echo: {other:?}"),
    }
}

// --- Masquerade -------------------------------------------------------------------------

#[test]
fn client_syn_leaves_the_uplink_masqueraded_field_by_field() {
    let mut table = table(16);
    let mut masquerader = masquerader();
    let original = packets::tcp((CLIENT, 40000), (SERVER, 443), (1000, 0, SYN), b"");
    let mut syn = original.clone();
    open_masqueraded(&mut table, &mut masquerader, &mut syn, at(0));

    let (before, after) = (parse(&original), parse(&syn));
    assert_eq!(after.src, ip(UPLINK_ADDR).into(), "source address");
    assert_eq!(after.dst, ip(SERVER).into(), "destination address");
    assert_eq!(
        after.ports(),
        (40000, 443),
        "the client's port is kept when free"
    );
    assert_eq!(
        (after.ttl, after.protocol, after.ident),
        (before.ttl, before.protocol, before.ident)
    );
    let (Transport::Tcp(b), Transport::Tcp(a)) = (before.transport, after.transport) else {
        panic!("not TCP")
    };
    assert_eq!(
        (a.seq, a.ack, a.flags, a.window),
        (b.seq, b.ack, b.flags, b.window)
    );
    assert_eq!(syn[40..], original[40..], "options and payload untouched");
    assert_eq!(table.stats().nat_ports_in_use, 1);
    assert_eq!(masquerader.stats().kept_port, 1);
}

#[test]
fn colliding_source_port_gets_a_random_free_port_and_each_reply_finds_its_client() {
    let mut table = table(16);
    let mut masquerader = masquerader();
    let mut first = packets::tcp((CLIENT, 40000), (SERVER, 443), (1000, 0, SYN), b"");
    let mut second = packets::tcp((CLIENT2, 40000), (SERVER, 443), (7000, 0, SYN), b"");
    open_masqueraded(&mut table, &mut masquerader, &mut first, at(0));
    open_masqueraded(&mut table, &mut masquerader, &mut second, at(0));

    let ((src, port), dst) = endpoints(&second);
    assert_eq!((src, dst), (ip(UPLINK_ADDR), (ip(SERVER), 443)));
    assert_ne!(
        port, 40000,
        "the second client cannot have the same reply tuple"
    );
    assert!(port >= 1024, "remapped port {port} from 1024..=65535");
    assert_eq!(masquerader.stats().remapped_port, 1);
    assert_eq!(table.stats().nat_ports_in_use, 2);

    let mut to_second = packets::tcp(
        (SERVER, 443),
        (UPLINK_ADDR, port),
        (9000, 7001, SYN | ACK),
        b"",
    );
    assert!(forwarded(pass(
        &mut table,
        UPLINK_NIC,
        &mut to_second,
        at(0)
    )));
    assert_eq!(
        endpoints(&to_second),
        ((ip(SERVER), 443), (ip(CLIENT2), 40000))
    );
    let mut to_first = packets::tcp(
        (SERVER, 443),
        (UPLINK_ADDR, 40000),
        (9000, 1001, SYN | ACK),
        b"",
    );
    assert!(forwarded(pass(
        &mut table,
        UPLINK_NIC,
        &mut to_first,
        at(0)
    )));
    assert_eq!(
        endpoints(&to_first),
        ((ip(SERVER), 443), (ip(CLIENT), 40000))
    );
}

#[test]
fn same_port_towards_different_servers_is_kept_for_both() {
    let mut table = table(16);
    let mut masquerader = masquerader();
    let mut first = packets::udp(CLIENT, 40000, SERVER, 443, b"a");
    let mut second = packets::udp(CLIENT2, 40000, RESOLVER, 443, b"b");
    open_masqueraded(&mut table, &mut masquerader, &mut first, at(0));
    open_masqueraded(&mut table, &mut masquerader, &mut second, at(0));
    assert_eq!(endpoints(&first).0, (ip(UPLINK_ADDR), 40000));
    assert_eq!(endpoints(&second).0, (ip(UPLINK_ADDR), 40000));
    assert_eq!(masquerader.stats().kept_port, 2);
}

#[test]
fn exhausted_port_range_refuses_the_flow_until_a_port_is_released() {
    let mut table = table(16);
    let config = MasqueradeConfig {
        first_port: 2000,
        last_port: 2003,
        ..MasqueradeConfig::seeded(1)
    };
    let mut masquerader = Masquerader::new(config);
    for port in 2000..=2003 {
        let mut datagram = packets::udp(CLIENT, port, SERVER, 443, b"x");
        open_masqueraded(&mut table, &mut masquerader, &mut datagram, at(0));
    }
    let late = packets::udp(CLIENT2, 2000, SERVER, 443, b"x");
    let refused = masquerader.masquerade(&table, tuple(&late), ip(UPLINK_ADDR).into(), at(0));
    assert_eq!(refused, Err(NatRefused::PortsExhausted));
    assert_eq!(masquerader.stats().exhausted, 1);

    // One flow ends: its port is free again.
    let (id, _) = table
        .find(&tuple(&packets::udp(CLIENT, 2002, SERVER, 443, b"")), at(0))
        .unwrap();
    table.remove(id);
    let translated = masquerader
        .masquerade(&table, tuple(&late), ip(UPLINK_ADDR).into(), at(0))
        .unwrap();
    assert_eq!(translated.src_port, 2002);
}

#[test]
fn remapped_ports_come_from_the_configured_range() {
    let mut table = table(64);
    let config = MasqueradeConfig {
        first_port: 50000,
        last_port: 50999,
        ..MasqueradeConfig::seeded(9)
    };
    let mut masquerader = Masquerader::new(config);
    let mut seen = std::collections::BTreeSet::new();
    for client in 2..40u8 {
        let mut datagram = packets::udp([10, 137, 1, client], 5000, SERVER, 443, b"x");
        open_masqueraded(&mut table, &mut masquerader, &mut datagram, at(0));
        let port = endpoints(&datagram).0 .1;
        assert!(
            port == 5000 || (50000..=50999).contains(&port),
            "port {port}"
        );
        seen.insert(port);
    }
    assert_eq!(seen.len(), 38, "every flow got its own reply tuple");
}

#[test]
fn icmp_echo_identifiers_are_translated_both_ways() {
    let mut table = table(16);
    let mut masquerader = masquerader();
    let mut first = packets::icmp_echo(CLIENT, SERVER, true, 0x1234, 1, b"ping");
    let mut second = packets::icmp_echo(CLIENT2, SERVER, true, 0x1234, 1, b"ping");
    open_masqueraded(&mut table, &mut masquerader, &mut first, at(0));
    open_masqueraded(&mut table, &mut masquerader, &mut second, at(0));
    assert_eq!(
        (parse(&first).src, echo_ident(&first)),
        (addr(UPLINK_ADDR), 0x1234)
    );
    let remapped = echo_ident(&second);
    assert_eq!(parse(&second).src, ip(UPLINK_ADDR).into());
    assert_ne!(remapped, 0x1234);
    assert_eq!(&second[28..], b"ping", "the echo data is untouched");

    let mut pong = packets::icmp_echo(SERVER, UPLINK_ADDR, false, remapped, 1, b"ping");
    assert!(forwarded(pass(&mut table, UPLINK_NIC, &mut pong, at(0))));
    assert_eq!(
        (parse(&pong).dst, echo_ident(&pong)),
        (addr(CLIENT2), 0x1234)
    );
    // An echo *request* from the server with that identifier is not a reply.
    let probe = packets::icmp_echo(SERVER, UPLINK_ADDR, true, remapped, 1, b"");
    assert_eq!(
        table.lookup(UPLINK_NIC, &parse(&probe), at(0)),
        Lookup::Miss
    );
}

#[test]
fn masquerade_rule_matches_ingress_source_and_egress() {
    let mut policy = PolicyBuf::default();
    let in_nic = policy.add_byte_ranges(&[ByteRange { first: 1, last: 7 }]);
    let src = policy.add_addr_ranges(&[AddrRange {
        first: ipv4_to_flow_addr(u32::from_be_bytes([10, 137, 0, 0])),
        last: ipv4_to_flow_addr(u32::from_be_bytes([10, 137, 255, 255])),
    }]);
    policy.masquerade.push(Masquerade {
        in_nic,
        src,
        out_nic: 0,
        pos: SourcePos::default(),
    });
    let policy = policy.as_policy();
    assert!(nat::masquerade_rule(&policy, CLIENT_NIC, ip(CLIENT).into(), UPLINK_NIC).is_some());
    assert!(
        nat::masquerade_rule(&policy, CLIENT_NIC, ip(CLIENT).into(), 2).is_none(),
        "to another client NIC"
    );
    assert!(
        nat::masquerade_rule(&policy, CLIENT_NIC, ip([192, 168, 0, 9]).into(), UPLINK_NIC)
            .is_none(),
        "foreign source"
    );
    assert!(
        nat::masquerade_rule(&policy, UPLINK_NIC, ip(CLIENT).into(), UPLINK_NIC).is_none(),
        "from the uplink"
    );
}

// --- Port forwards ----------------------------------------------------------------------

fn ssh_forward() -> PortForward {
    PortForward {
        in_nic: UPLINK_NIC,
        protocol: IpProtocol::Tcp.into(),
        ports: PortRange {
            first: 8022,
            last: 8022,
        },
        target: ipv4_to_flow_addr(u32::from_be_bytes(CLIENT)),
        target_port: 22,
        pos: SourcePos::default(),
    }
}

/// The miss path for a flow arriving on the uplink: port forward, then a state.
fn open_forwarded(
    table: &mut StateTable,
    forwards: &[PortForward],
    packet: &mut [u8],
    now: Instant,
) -> NewFlow {
    let original = tuple(packet);
    let translated = nat::port_forward(forwards, UPLINK_NIC, ip(UPLINK_ADDR).into(), &original)
        .expect("a forward applies")
        .flow;
    let flow = NewFlow {
        translated,
        ..NewFlow::new(UPLINK_NIC, CLIENT_NIC, original)
    };
    open(table, &flow, packet, now).expect("state created");
    flow
}

#[test]
fn port_forward_redirects_to_the_client_and_the_reply_comes_from_the_appliance() {
    let mut table = table(16);
    let mut syn = packets::tcp((SERVER, 50000), (UPLINK_ADDR, 8022), (1000, 0, SYN), b"");
    open_forwarded(&mut table, &[ssh_forward()], &mut syn, at(0));
    assert_eq!(endpoints(&syn), ((ip(SERVER), 50000), (ip(CLIENT), 22)));
    assert_eq!(
        table.stats().nat_ports_in_use,
        0,
        "a forward holds no masquerade port"
    );

    let mut synack = packets::tcp((CLIENT, 22), (SERVER, 50000), (5000, 1001, SYN | ACK), b"");
    let Lookup::Hit(hit) = pass(&mut table, CLIENT_NIC, &mut synack, at(0)) else {
        panic!("reply has a state")
    };
    assert_eq!(
        (hit.direction, hit.egress_nic),
        (Direction::Reply, UPLINK_NIC)
    );
    assert_eq!(
        endpoints(&synack),
        ((ip(UPLINK_ADDR), 8022), (ip(SERVER), 50000))
    );
}

#[test]
fn port_forward_range_maps_port_by_port() {
    let forward = PortForward {
        protocol: IpProtocol::Udp.into(),
        ports: PortRange {
            first: 6000,
            last: 6010,
        },
        target_port: 7000,
        ..ssh_forward()
    };
    let mut table = table(16);
    let mut datagram = packets::udp(SERVER, 4000, UPLINK_ADDR, 6005, b"game");
    open_forwarded(&mut table, &[forward], &mut datagram, at(0));
    assert_eq!(
        endpoints(&datagram),
        ((ip(SERVER), 4000), (ip(CLIENT), 7005))
    );
}

#[test]
fn port_forward_applies_only_to_its_nic_protocol_port_and_the_appliances_address() {
    let forwards = [ssh_forward()];
    let flow = |src_nic, packet: Vec<u8>| {
        nat::port_forward(&forwards, src_nic, ip(UPLINK_ADDR).into(), &tuple(&packet))
    };
    assert!(flow(
        UPLINK_NIC,
        packets::tcp((SERVER, 1), (UPLINK_ADDR, 8022), (1, 0, SYN), b"")
    )
    .is_some());
    assert!(
        flow(
            CLIENT_NIC,
            packets::tcp((SERVER, 1), (UPLINK_ADDR, 8022), (1, 0, SYN), b"")
        )
        .is_none(),
        "other NIC"
    );
    assert!(
        flow(UPLINK_NIC, packets::udp(SERVER, 1, UPLINK_ADDR, 8022, b"")).is_none(),
        "other protocol"
    );
    assert!(
        flow(
            UPLINK_NIC,
            packets::tcp((SERVER, 1), (UPLINK_ADDR, 8023), (1, 0, SYN), b"")
        )
        .is_none(),
        "other port"
    );
    assert!(
        flow(
            UPLINK_NIC,
            packets::tcp((SERVER, 1), (RESOLVER, 8022), (1, 0, SYN), b"")
        )
        .is_none(),
        "not for us"
    );
}

// --- DNS redirect -----------------------------------------------------------------------

fn dns_policy(upstream: impl FnOnce(&mut PolicyBuf) -> DnsUpstream) -> PolicyBuf {
    let mut policy = PolicyBuf::default();
    let in_nic = policy.add_byte_ranges(&[ByteRange {
        first: CLIENT_NIC,
        last: CLIENT_NIC,
    }]);
    let upstream = upstream(&mut policy);
    policy.dns.push(DnsRedirect {
        at: dataplane::policy::Span::EMPTY,
        in_nic,
        upstream,
        pos: SourcePos::default(),
    });
    policy
}

/// The miss path for a client's query to the appliance: DNS redirect, masquerade, state.
fn open_redirected_query(table: &mut StateTable, policy: &PolicyBuf, packet: &mut [u8]) {
    let original = tuple(packet);
    let redirected = nat::dns_redirect(
        &policy.as_policy(),
        CLIENT_NIC,
        ip(CLIENT_GATEWAY).into(),
        &original,
        &[ip(RESOLVER).into()],
    )
    .unwrap()
    .flow;
    let translated = masquerader()
        .masquerade(table, redirected, ip(UPLINK_ADDR).into(), at(0))
        .unwrap();
    let flow = NewFlow {
        translated,
        ..NewFlow::new(CLIENT_NIC, UPLINK_NIC, original)
    };
    open(table, &flow, packet, at(0)).unwrap();
}

#[test]
fn dns_query_to_the_appliance_goes_upstream_and_the_answer_comes_from_the_appliance() {
    let policy = dns_policy(|_| DnsUpstream::Learned);
    let mut table = table(16);
    let mut query = packets::udp(CLIENT, 5353, CLIENT_GATEWAY, 53, b"example.com?");
    open_redirected_query(&mut table, &policy, &mut query);
    assert_eq!(
        endpoints(&query),
        ((ip(UPLINK_ADDR), 5353), (ip(RESOLVER), 53))
    );

    let mut answer = packets::udp(RESOLVER, 53, UPLINK_ADDR, 5353, b"93.184.216.34");
    assert!(forwarded(pass(&mut table, UPLINK_NIC, &mut answer, at(0))));
    assert_eq!(
        endpoints(&answer),
        ((ip(CLIENT_GATEWAY), 53), (ip(CLIENT), 5353))
    );
}

#[test]
fn dns_over_tcp_is_redirected_too() {
    let policy = dns_policy(|_| DnsUpstream::Learned);
    let mut table = table(16);
    let mut syn = packets::tcp((CLIENT, 41000), (CLIENT_GATEWAY, 53), (1000, 0, SYN), b"");
    open_redirected_query(&mut table, &policy, &mut syn);
    assert_eq!(
        endpoints(&syn),
        ((ip(UPLINK_ADDR), 41000), (ip(RESOLVER), 53))
    );
    let mut synack = packets::tcp(
        (RESOLVER, 53),
        (UPLINK_ADDR, 41000),
        (5000, 1001, SYN | ACK),
        b"",
    );
    assert!(forwarded(pass(&mut table, UPLINK_NIC, &mut synack, at(0))));
    assert_eq!(
        endpoints(&synack),
        ((ip(CLIENT_GATEWAY), 53), (ip(CLIENT), 41000))
    );
}

#[test]
fn dns_redirect_uses_static_resolvers_when_the_policy_names_them() {
    let policy =
        dns_policy(|p| DnsUpstream::Static(p.add_ipv4_addrs(&[u32::from_be_bytes([1, 1, 1, 1])])));
    let query = tuple(&packets::udp(CLIENT, 5353, CLIENT_GATEWAY, 53, b"q"));
    let redirected = nat::dns_redirect(
        &policy.as_policy(),
        CLIENT_NIC,
        ip(CLIENT_GATEWAY).into(),
        &query,
        &[ip(RESOLVER).into()],
    );
    assert_eq!(
        redirected.map(|r| (r.flow.dst, r.flow.dst_port)),
        Some((addr([1, 1, 1, 1]), 53))
    );
}

#[test]
fn dns_redirect_applies_only_to_dns_for_the_appliance_on_redirecting_nics() {
    let policy = dns_policy(|_| DnsUpstream::Learned);
    let policy = policy.as_policy();
    let gateway = ip(CLIENT_GATEWAY);
    let query = tuple(&packets::udp(CLIENT, 5353, CLIENT_GATEWAY, 53, b"q"));
    assert!(nat::dns_redirect(
        &policy,
        CLIENT_NIC,
        gateway.into(),
        &query,
        &[ip(RESOLVER).into()]
    )
    .is_some());
    assert!(
        nat::dns_redirect(&policy, 2, gateway.into(), &query, &[ip(RESOLVER).into()]).is_none(),
        "NIC without redirect"
    );
    assert!(
        nat::dns_redirect(&policy, CLIENT_NIC, gateway.into(), &query, &[]).is_none(),
        "no resolver learned yet"
    );
    let elsewhere = tuple(&packets::udp(CLIENT, 5353, RESOLVER, 53, b"q"));
    assert!(
        nat::dns_redirect(
            &policy,
            CLIENT_NIC,
            gateway.into(),
            &elsewhere,
            &[ip(RESOLVER).into()]
        )
        .is_none(),
        "not for us"
    );
    let ntp = tuple(&packets::udp(CLIENT, 5353, CLIENT_GATEWAY, 123, b"q"));
    assert!(
        nat::dns_redirect(
            &policy,
            CLIENT_NIC,
            gateway.into(),
            &ntp,
            &[ip(RESOLVER).into()]
        )
        .is_none(),
        "not DNS"
    );
}

// --- ICMP errors --------------------------------------------------------------------------

#[test]
fn icmp_error_about_a_masqueraded_flow_is_translated_back_to_the_client() {
    let mut table = table(16);
    let mut masquerader = masquerader();
    // Two clients, the second one remapped, so the quote's port must be translated too.
    open_masqueraded(
        &mut table,
        &mut masquerader,
        &mut packets::udp(CLIENT, 40000, SERVER, 53, b"q"),
        at(0),
    );
    let original = packets::udp(CLIENT2, 40000, SERVER, 53, b"q");
    let mut left = original.clone();
    open_masqueraded(&mut table, &mut masquerader, &mut left, at(0));
    let natted_port = endpoints(&left).0 .1;

    // A router on the way reports the TTL ran out, quoting the packet as it left us.
    let mut error = packets::icmp_error(ROUTER, UPLINK_ADDR, 11, 0, &left);
    let Lookup::Related(hit) = pass(&mut table, UPLINK_NIC, &mut error, at(1)) else {
        panic!("related to the flow")
    };
    assert_eq!(
        (hit.direction, hit.egress_nic, hit.verdict),
        (Direction::Reply, CLIENT_NIC, Ok(()))
    );
    let outer = parse(&error);
    assert_eq!(
        (outer.src, outer.dst),
        (addr(ROUTER), addr(CLIENT2)),
        "the router stays the sender"
    );
    assert_eq!(outer.icmp_type_code(), (11, 0));
    assert_eq!(
        quoted_endpoints(&error),
        ((ip(CLIENT2), Some(40000)), (ip(SERVER), Some(53)))
    );
    assert_eq!(
        error[28..],
        original[..28],
        "the quote is the client's own packet again"
    );
    assert_ne!(natted_port, 40000);
    assert_eq!(table.stats().related_icmp, 1);
}

#[test]
fn port_unreachable_from_the_server_itself_is_translated_back() {
    let mut table = table(16);
    let mut left = packets::udp(CLIENT, 40000, SERVER, 9999, b"q");
    open_masqueraded(&mut table, &mut masquerader(), &mut left, at(0));
    let mut error = packets::icmp_error(SERVER, UPLINK_ADDR, 3, 3, &left);
    assert!(matches!(
        pass(&mut table, UPLINK_NIC, &mut error, at(0)),
        Lookup::Related(_)
    ));
    assert_eq!(
        (parse(&error).src, parse(&error).dst),
        (addr(SERVER), addr(CLIENT))
    );
    assert_eq!(
        quoted_endpoints(&error),
        ((ip(CLIENT), Some(40000)), (ip(SERVER), Some(9999)))
    );
}

#[test]
fn icmp_error_quoting_a_ping_translates_the_identifier_back() {
    let mut table = table(16);
    let mut masquerader = masquerader();
    open_masqueraded(
        &mut table,
        &mut masquerader,
        &mut packets::icmp_echo(CLIENT, SERVER, true, 0x99, 1, b""),
        at(0),
    );
    let original = packets::icmp_echo(CLIENT2, SERVER, true, 0x99, 1, b"");
    let mut left = original.clone();
    open_masqueraded(&mut table, &mut masquerader, &mut left, at(0));
    assert_ne!(echo_ident(&left), 0x99);

    let mut error = packets::icmp_error(ROUTER, UPLINK_ADDR, 11, 0, &left);
    assert!(matches!(
        pass(&mut table, UPLINK_NIC, &mut error, at(0)),
        Lookup::Related(_)
    ));
    assert_eq!(parse(&error).dst, ip(CLIENT2).into());
    assert_eq!(
        quoted_endpoints(&error),
        ((ip(CLIENT2), Some(0x99)), (ip(SERVER), Some(0x99)))
    );
    assert_eq!(error[28..], original[..28]);
}

#[test]
fn icmp_error_from_a_port_forwarded_client_shows_the_appliance_not_the_client() {
    let forward = PortForward {
        protocol: IpProtocol::Udp.into(),
        ..ssh_forward()
    };
    let mut table = table(16);
    let sent = packets::udp(SERVER, 50000, UPLINK_ADDR, 8022, b"hello");
    let mut received = sent.clone();
    open_forwarded(&mut table, &[forward], &mut received, at(0));

    // The client has nothing on port 22/udp and says so, quoting what it received.
    let mut error = packets::icmp_error(CLIENT, SERVER, 3, 3, &received);
    let Lookup::Related(hit) = pass(&mut table, CLIENT_NIC, &mut error, at(0)) else {
        panic!("related")
    };
    assert_eq!(hit.egress_nic, UPLINK_NIC);
    assert_eq!(
        (parse(&error).src, parse(&error).dst),
        (addr(UPLINK_ADDR), addr(SERVER))
    );
    assert_eq!(
        quoted_endpoints(&error),
        ((ip(SERVER), Some(50000)), (ip(UPLINK_ADDR), Some(8022)))
    );
    assert_eq!(error[28..], sent[..28], "the quote is what the server sent");
}

#[test]
fn icmp_error_from_the_client_about_a_reply_leaves_masqueraded() {
    let mut table = table(16);
    let mut masquerader = masquerader();
    open_masqueraded(
        &mut table,
        &mut masquerader,
        &mut packets::udp(CLIENT, 40000, SERVER, 53, b"q"),
        at(0),
    );
    let mut left = packets::udp(CLIENT2, 40000, SERVER, 53, b"q");
    open_masqueraded(&mut table, &mut masquerader, &mut left, at(0));
    let natted_port = endpoints(&left).0 .1;
    let sent = packets::udp(SERVER, 53, UPLINK_ADDR, natted_port, b"a");
    let mut delivered = sent.clone();
    assert!(forwarded(pass(
        &mut table,
        UPLINK_NIC,
        &mut delivered,
        at(0)
    )));

    // The client's socket is gone: it reports the answer's port unreachable.
    let mut error = packets::icmp_error(CLIENT2, SERVER, 3, 3, &delivered);
    let Lookup::Related(hit) = pass(&mut table, CLIENT_NIC, &mut error, at(0)) else {
        panic!("related to the flow")
    };
    assert_eq!(
        (hit.direction, hit.egress_nic),
        (Direction::Original, UPLINK_NIC)
    );
    assert_eq!(
        (parse(&error).src, parse(&error).dst),
        (addr(UPLINK_ADDR), addr(SERVER))
    );
    assert_eq!(
        error[28..],
        sent[..28],
        "the quote is the answer as the server sent it"
    );
}

#[test]
fn icmp_error_not_addressed_to_the_quoted_sender_is_not_related() {
    let mut table = table(16);
    let mut left = packets::udp(CLIENT, 40000, SERVER, 53, b"q");
    open_masqueraded(&mut table, &mut masquerader(), &mut left, at(0));
    // Sent towards the server instead of back to us: forged.
    let forged = packets::icmp_error(ROUTER, SERVER, 3, 1, &left);
    assert_eq!(
        table.lookup(UPLINK_NIC, &parse(&forged), at(0)),
        Lookup::Miss
    );
}

#[test]
fn icmp_error_about_an_unknown_flow_is_a_miss() {
    let mut table = table(16);
    let stranger = packets::udp(UPLINK_ADDR, 40000, SERVER, 53, b"q");
    let error = packets::icmp_error(ROUTER, UPLINK_ADDR, 3, 1, &stranger);
    assert_eq!(
        table.lookup(UPLINK_NIC, &parse(&error), at(0)),
        Lookup::Miss
    );
    assert_eq!(table.stats().related_icmp, 0);
}

#[test]
fn icmp_error_on_the_wrong_nic_is_dropped() {
    let mut table = table(16);
    let mut left = packets::udp(CLIENT, 40000, SERVER, 53, b"q");
    open_masqueraded(&mut table, &mut masquerader(), &mut left, at(0));
    let error = packets::icmp_error(ROUTER, UPLINK_ADDR, 3, 1, &left);
    let Lookup::Related(hit) = table.lookup(CLIENT_NIC, &parse(&error), at(0)) else {
        panic!("related")
    };
    assert_eq!(hit.verdict, Err(StateDrop::WrongInterface));
}

// --- Fragments ----------------------------------------------------------------------------

#[test]
fn later_fragment_gets_the_addresses_of_its_flow_and_nothing_else() {
    let mut table = table(16);
    let mut first = packets::udp(CLIENT, 40000, SERVER, 53, &[1; 64]);
    let flow = open_masqueraded(&mut table, &mut masquerader(), &mut first, at(0));
    let mut fragment = packets::udp(CLIENT, 40000, SERVER, 53, &[2; 64]);
    packets::set_fragment(&mut fragment, false, 1480);
    let payload = fragment[20..].to_vec();
    let mut summary = parse(&fragment);
    nat::apply(&mut fragment, &mut summary, &flow.translation());
    assert_eq!(
        (parse(&fragment).src, parse(&fragment).dst),
        (addr(UPLINK_ADDR), addr(SERVER))
    );
    assert_eq!(
        fragment[20..],
        payload[..],
        "no transport header to rewrite"
    );
}

#[test]
fn an_ipv6_dns_query_goes_to_an_ipv6_resolver_first_and_crosses_to_ipv4_without_one() {
    use dataplane::packet::IpSummary;
    use dataplane::state::FlowTuple;
    use dataplane::testutil::packets6::{self, addr};
    let policy = dns_policy(|_| DnsUpstream::Learned);
    let policy = policy.as_policy();
    let appliance = addr("fd00:137:1::1");
    let query = packets6::udp(addr("fd00:137:1::10"), 5353, appliance, 53, b"q");
    let query = FlowTuple::of(&IpSummary::parse_ipv6(&query).unwrap()).unwrap();
    let resolver6 = addr("2001:db8:1:2::1");
    let learned = [ip(RESOLVER).into(), resolver6.into()];
    let redirected = nat::dns_redirect(&policy, CLIENT_NIC, appliance.into(), &query, &learned);
    assert_eq!(
        redirected.map(|r| (r.flow.dst, r.flow.dst_port)),
        Some((resolver6.into(), 53)),
        "the IPv6 resolver, though the IPv4 one comes first"
    );
    let only_ipv4 = [ip(RESOLVER).into()];
    let crossing = nat::dns_redirect(&policy, CLIENT_NIC, appliance.into(), &query, &only_ipv4);
    assert_eq!(
        crossing.map(|r| (r.flow.dst, r.flow.dst_port)),
        Some((ip(RESOLVER).into(), 53)),
        "without an IPv6 resolver, the IPv4 one: the query crosses families"
    );
    assert!(nat::dns_redirect(&policy, CLIENT_NIC, appliance.into(), &query, &[]).is_none());
}
