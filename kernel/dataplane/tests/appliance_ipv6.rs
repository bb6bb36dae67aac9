//! IPv6 through the whole appliance, with real frames: forwarding with state (NAT66 and a
//! routed prefix), the policy, anti-spoofing, link scope, extension headers, hop limit and
//! packet-too-big errors, ICMPv6 errors translated back through NAT, and ping to the
//! appliance itself.

mod appliance_common;

use appliance_common::*;
use dataplane::drops::DropReason;
use dataplane::packet::tcp_flags::{ACK, SYN};
use dataplane::testutil::packets6::{self, addr, Extension};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Address, Ipv6Packet, Ipv6Repr, TcpPacket,
};

/// Source, destination and hop limit of an IPv6 packet.
fn header(packet: &[u8]) -> (Ipv6Address, Ipv6Address, u8) {
    let ip = Ipv6Packet::new_checked(packet).expect("an IPv6 packet");
    (ip.src_addr(), ip.dst_addr(), ip.hop_limit())
}

/// The TCP ports of an IPv6 packet without extension headers.
fn tcp_ports(packet: &[u8]) -> (u16, u16) {
    let ip = Ipv6Packet::new_checked(packet).expect("an IPv6 packet");
    let tcp = TcpPacket::new_checked(ip.payload()).expect("a TCP segment");
    (tcp.src_port(), tcp.dst_port())
}

/// The ICMPv6 message of an IPv6 packet, parsed (checksum verified) by smoltcp.
fn icmp6(packet: &[u8]) -> Icmpv6Repr<'_> {
    let ip = Ipv6Packet::new_checked(packet).expect("an IPv6 packet");
    let icmp = Icmpv6Packet::new_checked(ip.payload()).expect("an ICMPv6 message");
    Icmpv6Repr::parse(
        &ip.src_addr(),
        &ip.dst_addr(),
        &icmp,
        &ChecksumCapabilities::default(),
    )
    .expect("a valid ICMPv6 message")
}

fn dual_stack() -> Lab {
    let mut lab = Lab::new(&DUAL_STACK);
    lab.teach6_all(&[CLIENT6, CLIENT2_6]);
    lab
}

#[test]
fn tcp_from_a_ula_client_is_masqueraded_behind_the_uplink_and_the_reply_de_natted() {
    let mut lab = dual_stack();
    let server = addr(SERVER6);
    let syn = packets6::tcp_syn(CLIENT6.addr(), 40000, server, 443);
    let out = lab.send6(CLIENT6, &syn).ipv6_upstream();
    assert_eq!(header(&out), (addr(APPLIANCE6_UPLINK), server, 63));
    assert_eq!(tcp_ports(&out).1, 443);
    let nat_port = tcp_ports(&out).0;

    let synack = packets6::tcp(
        (server, 443),
        (addr(APPLIANCE6_UPLINK), nat_port),
        (5000, 1001, SYN | ACK),
        b"",
    );
    let back = lab.send6(GATEWAY6, &synack).ipv6_to(CLIENT6);
    assert_eq!(header(&back), (server, CLIENT6.addr(), 63));
    assert_eq!(tcp_ports(&back), (443, 40000));
    assert_eq!(lab.live_states(), 1);
}

#[test]
fn a_routed_prefix_leaves_with_its_own_addresses() {
    let mut lab = Lab::new(&ROUTED_DUAL_STACK);
    lab.teach6_all(&[ROUTED_CLIENT]);
    let server = addr(SERVER6);
    let query = packets6::udp(ROUTED_CLIENT.addr(), 5353, server, 53, b"query");
    let out = lab.send6(ROUTED_CLIENT, &query).ipv6_upstream();
    assert_eq!(header(&out), (ROUTED_CLIENT.addr(), server, 63));
    let answer = packets6::udp(server, 53, ROUTED_CLIENT.addr(), 5353, b"answer");
    let back = lab.send6(GATEWAY6, &answer).ipv6_to(ROUTED_CLIENT);
    assert_eq!(header(&back), (server, ROUTED_CLIENT.addr(), 63));
}

#[test]
fn nothing_comes_in_from_the_uplink_unless_a_rule_lets_it() {
    let mut lab = Lab::new(&ROUTED_DUAL_STACK);
    lab.teach6_all(&[ROUTED_CLIENT]);
    let server = addr(SERVER6);
    let web = packets6::tcp_syn(server, 40000, ROUTED_CLIENT.addr(), 80);
    lab.send6(GATEWAY6, &web).assert_nothing();
    assert_eq!(lab.dropped(DropReason::Policy), 1);
    let ssh = packets6::tcp_syn(server, 40001, ROUTED_CLIENT.addr(), 22);
    let inbound = lab.send6(GATEWAY6, &ssh).ipv6_to(ROUTED_CLIENT);
    assert_eq!(tcp_ports(&inbound), (40001, 22));

    // Behind NAT66, nothing reaches a client's unique local address at all.
    let mut lab = dual_stack();
    let probe = packets6::tcp_syn(server, 40000, CLIENT6.addr(), 22);
    lab.send6(GATEWAY6, &probe).assert_nothing();
}

#[test]
fn one_client_never_reaches_another_through_the_appliance() {
    let mut lab = dual_stack();
    let hello = packets6::udp(CLIENT6.addr(), 4000, CLIENT2_6.addr(), 4000, b"hi");
    lab.send6(CLIENT6, &hello).assert_nothing();
    assert_eq!(lab.dropped(DropReason::Policy), 1);
}

#[test]
fn spoofed_ipv6_sources_are_dropped() {
    let mut lab = dual_stack();
    let server = addr(SERVER6);
    for (from, source) in [
        (CLIENT6, "2001:db8:99::5"),  // outside the clients' prefix
        (CLIENT6, APPLIANCE6_UPLINK), // the appliance's own address
        (CLIENT6, "ff02::1"),         // multicast
    ] {
        let packet = packets6::udp(addr(source), 4000, server, 53, b"x");
        lab.send6(from, &packet).assert_nothing();
    }
    // Posing as a client on the uplink.
    let posing = packets6::udp(CLIENT6.addr(), 4000, server, 53, b"x");
    lab.send6(GATEWAY6, &posing).assert_nothing();
    assert_eq!(
        lab.dropped(DropReason::Spoofed) + lab.dropped(DropReason::MartianSource),
        4
    );
}

#[test]
fn a_client_using_slaac_inside_its_prefix_is_not_spoofing() {
    let mut lab = dual_stack();
    let privacy = Host6 {
        host: CLIENT,
        ip: "fd00:137:1::4c2a:9e11",
    };
    lab.teach6(privacy).assert_nothing();
    let syn = packets6::tcp_syn(privacy.addr(), 40000, addr(SERVER6), 443);
    let out = lab.send6(privacy, &syn).ipv6_upstream();
    assert_eq!(header(&out).0, addr(APPLIANCE6_UPLINK));
}

#[test]
fn link_local_and_multicast_never_leave_their_link() {
    let mut lab = dual_stack();
    let server = addr(SERVER6);
    let from_link_local = Host6 {
        host: CLIENT,
        ip: "fe80::43:ff:fe00:10a",
    };
    let out = packets6::udp(from_link_local.addr(), 4000, server, 53, b"x");
    lab.send6(from_link_local, &out).assert_nothing();
    let to_link_local = packets6::udp(CLIENT6.addr(), 4000, addr("fe80::99"), 53, b"x");
    lab.send6(CLIENT6, &to_link_local).assert_nothing();
    let to_multicast = packets6::udp(CLIENT6.addr(), 4000, addr("ff0e::1"), 53, b"x");
    lab.send6(CLIENT6, &to_multicast).assert_nothing();
    assert_eq!(lab.dropped(DropReason::MartianSource), 1);
    assert_eq!(lab.dropped(DropReason::MartianDestination), 2);
}

#[test]
fn the_policy_sees_the_protocol_after_the_extension_chain() {
    let mut lab = dual_stack();
    let smtp = packets6::tcp_syn(CLIENT6.addr(), 40000, addr(SERVER6), 25);
    let hidden =
        packets6::with_extensions(&smtp, &[Extension::HopByHop, Extension::DestinationOptions]);
    // `reject ... tcp port 25` still applies: a reset comes back.
    let reset = lab.send6(CLIENT6, &hidden).ipv6_to(CLIENT6);
    let ip = Ipv6Packet::new_checked(&reset[..]).unwrap();
    assert_eq!(ip.next_header(), IpProtocol::Tcp);
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    assert!(tcp.rst());
    assert_eq!((tcp.src_port(), tcp.dst_port()), (25, 40000));
}

#[test]
fn a_type_0_routing_header_is_dropped_as_malformed() {
    let mut lab = dual_stack();
    let udp = packets6::udp(CLIENT6.addr(), 4000, addr(SERVER6), 53, b"x");
    let rh0 = packets6::with_extensions(
        &udp,
        &[Extension::Routing {
            routing_type: 0,
            segments_left: 1,
        }],
    );
    lab.send6(CLIENT6, &rh0).assert_nothing();
    assert_eq!(lab.dropped(DropReason::Malformed), 1);
}

#[test]
fn hop_limit_one_is_answered_with_time_exceeded_from_the_clients_side() {
    let mut lab = dual_stack();
    let mut probe = packets6::udp(CLIENT6.addr(), 33434, addr(SERVER6), 33434, b"trace");
    packets6::set_hop_limit(&mut probe, 1);
    let reply = lab.send6(CLIENT6, &probe).ipv6_to(CLIENT6);
    assert_eq!(header(&reply).0, addr(APPLIANCE6_CLIENTS));
    match icmp6(&reply) {
        Icmpv6Repr::TimeExceeded { header, .. } => {
            assert_eq!(
                (header.src_addr, header.dst_addr),
                (CLIENT6.addr(), addr(SERVER6))
            );
        }
        other => panic!("not time exceeded: {other:?}"),
    }
    assert_eq!(lab.dropped(DropReason::TtlExceeded), 1);
}

#[test]
fn a_packet_bigger_than_the_uplink_mtu_gets_packet_too_big_never_fragments() {
    let mut lab = Lab::new(&SMALL_MTU_DUAL_STACK);
    lab.teach6_all(&[CLIENT6]);
    let big = packets6::udp(CLIENT6.addr(), 4000, addr(SERVER6), 9000, &[0x5a; 1400]);
    let reply = lab.send6(CLIENT6, &big).ipv6_to(CLIENT6);
    match icmp6(&reply) {
        Icmpv6Repr::PktTooBig { mtu, header, .. } => {
            assert_eq!(mtu, 1280);
            assert_eq!(header.src_addr, CLIENT6.addr());
        }
        other => panic!("not packet too big: {other:?}"),
    }
    assert_eq!(lab.dropped(DropReason::TooBig), 1);
    // The first packet never left: no state stays for it. The sender's smaller retry is
    // a first packet again, and opens the flow.
    assert_eq!(lab.live_states(), 0);
    let fits = packets6::udp(CLIENT6.addr(), 4000, addr(SERVER6), 9000, &[0x5a; 1200]);
    lab.send6(CLIENT6, &fits).ipv6_upstream();
    assert_eq!(lab.live_states(), 1);
}

/// A packet too big (MTU 1280) from `router` to the appliance's uplink address, quoting
/// `out` (a UDP datagram the appliance sent upstream) as the next link got it.
fn too_big_about(router: Ipv6Address, out: &[u8]) -> Vec<u8> {
    let sent = Ipv6Packet::new_checked(out).unwrap();
    let quoted = Ipv6Repr {
        src_addr: sent.src_addr(),
        dst_addr: sent.dst_addr(),
        next_header: IpProtocol::Udp,
        payload_len: out.len() - 40,
        hop_limit: 62,
    };
    packets6::icmp(
        router,
        sent.src_addr(),
        &Icmpv6Repr::PktTooBig {
            mtu: 1280,
            header: quoted,
            data: &out[40..],
        },
    )
}

#[test]
fn an_icmpv6_error_from_a_router_is_translated_back_to_the_client() {
    let mut lab = dual_stack();
    let server = addr(SERVER6);
    let query = packets6::udp(CLIENT6.addr(), 5353, server, 53, b"query");
    let out = lab.send6(CLIENT6, &query).ipv6_upstream();
    // A router on the way says the (masqueraded) datagram was too big for its next link.
    let router = addr("2001:db8:ffff::1");
    let error = too_big_about(router, &out);
    let back = lab.send6(GATEWAY6, &error).ipv6_to(CLIENT6);
    assert_eq!(
        header(&back).0,
        router,
        "the router stays the error's source"
    );
    assert_eq!(header(&back).1, CLIENT6.addr());
    match icmp6(&back) {
        Icmpv6Repr::PktTooBig { mtu, header, data } => {
            assert_eq!(mtu, 1280);
            assert_eq!((header.src_addr, header.dst_addr), (CLIENT6.addr(), server));
            let udp = smoltcp::wire::UdpPacket::new_checked(data).unwrap();
            assert_eq!((udp.src_port(), udp.dst_port()), (5353, 53));
            assert!(
                udp.verify_checksum(&CLIENT6.addr().into(), &server.into()),
                "the quoted datagram's checksum follows its rewritten addresses"
            );
        }
        other => panic!("not packet too big: {other:?}"),
    }
}

#[test]
fn an_icmpv6_error_from_the_routers_link_local_address_never_leaves_the_uplink() {
    let mut lab = dual_stack();
    let server = addr(SERVER6);
    let query = packets6::udp(CLIENT6.addr(), 5353, server, 53, b"query");
    let out = lab.send6(CLIENT6, &query).ipv6_upstream();
    // The uplink's router (fe80::2) says the masqueraded datagram was too big: related to
    // the flow, but its source means nothing beyond the uplink (RFC 4291 §2.5.6), so it is
    // not forwarded to the client with it (as Linux's forwarding path drops it).
    let error = too_big_about(GATEWAY6.addr(), &out);
    lab.send6(GATEWAY6, &error).assert_nothing();
    assert_eq!(lab.dropped(DropReason::MartianSource), 1);
}

#[test]
fn ping6_to_the_appliance_is_answered() {
    let mut lab = dual_stack();
    let ping = packets6::echo(CLIENT6.addr(), addr(APPLIANCE6_CLIENTS), true, 0x42, 7);
    let reply = lab.send6(CLIENT6, &ping).ipv6_to(CLIENT6);
    assert_eq!(
        (header(&reply).0, header(&reply).1),
        (addr(APPLIANCE6_CLIENTS), CLIENT6.addr())
    );
    match icmp6(&reply) {
        Icmpv6Repr::EchoReply {
            ident,
            seq_no,
            data,
        } => {
            assert_eq!((ident, seq_no, data), (0x42, 7, &b"ping6"[..]));
        }
        other => panic!("not an echo reply: {other:?}"),
    }
}

#[test]
fn ping6_through_the_appliance_keeps_request_and_reply_apart() {
    let mut lab = dual_stack();
    let server = addr(SERVER6);
    let ping = packets6::echo(CLIENT6.addr(), server, true, 0x42, 1);
    let out = lab.send6(CLIENT6, &ping).ipv6_upstream();
    let Icmpv6Repr::EchoRequest { ident, .. } = icmp6(&out) else {
        panic!("not an echo request")
    };
    let pong = packets6::echo(server, addr(APPLIANCE6_UPLINK), false, ident, 1);
    let back = lab.send6(GATEWAY6, &pong).ipv6_to(CLIENT6);
    assert!(matches!(
        icmp6(&back),
        Icmpv6Repr::EchoReply { ident: 0x42, .. }
    ));
    let by_protocol = lab.appliance.state_stats().by_protocol;
    assert_eq!(
        (by_protocol.icmp, by_protocol.other),
        (1, 0),
        "an ICMPv6 echo is counted as ICMP on the stats line"
    );
    // The server's own echo request on the flow's tuple is no reply.
    let their_ping = packets6::echo(server, addr(APPLIANCE6_UPLINK), true, ident, 1);
    assert!(lab
        .send6(GATEWAY6, &their_ping)
        .frames
        .iter()
        .all(|(nic, _)| *nic != CLIENTS));
}

#[test]
fn an_ipv6_packet_on_a_nic_without_ipv6_is_dropped() {
    let mut lab = Lab::new(&DECLARED);
    let packet = packets6::udp(addr("fd00::10"), 4000, addr(SERVER6), 53, b"x");
    lab.send6(CLIENT6, &packet).assert_nothing();
    assert_eq!(lab.dropped(DropReason::NicUnconfigured), 1);
}

#[test]
fn a_fragmented_datagram_leaves_masqueraded_fragment_by_fragment() {
    let mut lab = dual_stack();
    let server = addr(SERVER6);
    let whole = packets6::udp(CLIENT6.addr(), 5353, server, 9000, &[0xa5; 1200]);
    // The first fragment carries the UDP header and 1,000 bytes; the second the rest.
    let body = &whole[40..];
    let first = fragment(&whole, &body[..1008], 0, true);
    let second = fragment(&whole, &body[1008..], 1008, false);
    for (bytes, offset) in [(first, 0u16), (second, 1008)] {
        let out = lab.send6(CLIENT6, &bytes).ipv6_upstream_fragment();
        assert_eq!(
            header(&out).0,
            addr(APPLIANCE6_UPLINK),
            "fragment at {offset}"
        );
        let s = dataplane::packet::IpSummary::parse_ipv6(&out).unwrap();
        assert_eq!((s.fragment_offset, s.ident), (offset, 0x77));
    }
}

/// A fragment of the IPv6 packet `whole` carrying `piece` of its payload at `offset`.
fn fragment(whole: &[u8], piece: &[u8], offset: u16, more: bool) -> Vec<u8> {
    let ip = Ipv6Packet::new_checked(whole).unwrap();
    let carrier = packets6::packet(ip.src_addr(), ip.dst_addr(), IpProtocol::Udp, piece);
    packets6::with_extensions(
        &carrier,
        &[Extension::Fragment {
            offset,
            more,
            ident: 0x77,
        }],
    )
}

#[test]
fn a_port_forward_takes_ipv6_to_the_clients_ipv6_address_and_the_reply_back() {
    let mut lab = Lab::new(&FORWARD_DUAL_STACK);
    lab.teach6_all(&[CLIENT6]);
    let server = addr(SERVER6);
    let uplink = addr(APPLIANCE6_UPLINK);
    let syn = packets6::tcp_syn(server, 40000, uplink, 2222);
    let inbound = lab.send6(GATEWAY6, &syn).ipv6_to(CLIENT6);
    assert_eq!(header(&inbound), (server, CLIENT6.addr(), 63));
    assert_eq!(tcp_ports(&inbound), (40000, 22));

    let synack = packets6::tcp(
        (CLIENT6.addr(), 22),
        (server, 40000),
        (5000, 1001, SYN | ACK),
        b"",
    );
    let back = lab.send6(CLIENT6, &synack).ipv6_upstream();
    assert_eq!(
        header(&back),
        (uplink, server, 63),
        "the reply comes from the appliance's address, never the client's"
    );
    assert_eq!(tcp_ports(&back), (2222, 40000));

    // The client's own address stays closed, and other ports of the appliance too.
    let direct = packets6::tcp_syn(server, 40001, CLIENT6.addr(), 22);
    lab.send6(GATEWAY6, &direct).assert_nothing();
    let other = packets6::tcp_syn(server, 40002, uplink, 2223);
    assert!(lab
        .send6(GATEWAY6, &other)
        .frames
        .iter()
        .all(|(nic, _)| *nic != CLIENTS));
    assert_eq!(lab.live_states(), 1);
}
