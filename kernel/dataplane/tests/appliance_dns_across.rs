//! DNS asked of the appliance's IPv6 address when the uplink knows only an IPv4 resolver:
//! the query crosses to IPv4 on its way (RFC 7915's header translation, from the
//! appliance's own uplink address), and the answer, the TCP handshake and ICMP errors
//! cross back — with real frames through the whole appliance.

mod appliance_common;

use appliance_common::*;
use dataplane::drops::DropReason;
use dataplane::ndp::wire::{NdFrame, RaOptions};
use dataplane::packet::tcp_flags::{ACK, SYN};
use dataplane::testutil::packets6::{self, addr};
use dataplane::testutil::{offload, packets};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv6Packet, Icmpv6Repr, Ipv4Address, Ipv4Packet, Ipv6Packet, NdiscRepr, TcpOption, TcpPacket,
    UdpPacket,
};

/// A DNS query for `example.com` (A), as `dig` sends it.
const QUERY: &[u8] =
    b"\x12\x34\x01\x20\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01";
/// Its answer, shortened: only its bytes matter here.
const ANSWER: &[u8] =
    b"\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01";
/// The client's query port.
const PORT: u16 = 5353;

fn lab() -> Lab {
    let mut lab = Lab::new(&DNS_ACROSS_FAMILIES);
    lab.teach6_all(&[CLIENT6]);
    lab.teach(RESOLVER);
    lab
}

fn appliance6() -> smoltcp::wire::Ipv6Address {
    addr(APPLIANCE6_CLIENTS)
}

/// The UDP datagram (ports, payload) of an IPv4 packet.
fn udp4(packet: &[u8]) -> (u16, u16, Vec<u8>) {
    let ip = Ipv4Packet::new_checked(packet).unwrap();
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    (udp.src_port(), udp.dst_port(), udp.payload().to_vec())
}

/// The UDP datagram (ports, payload) of an IPv6 packet.
fn udp6(packet: &[u8]) -> (u16, u16, Vec<u8>) {
    let ip = Ipv6Packet::new_checked(packet).unwrap();
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    (udp.src_port(), udp.dst_port(), udp.payload().to_vec())
}

/// The MSS a TCP SYN announces.
fn mss(tcp: &TcpPacket<&[u8]>) -> Option<u16> {
    let mut options = tcp.options();
    while !options.is_empty() {
        let (rest, option) = TcpOption::parse(options).ok()?;
        if let TcpOption::MaxSegmentSize(mss) = option {
            return Some(mss);
        }
        options = rest;
    }
    None
}

/// Sends the client's UDP query and returns the IPv4 packet that reached the resolver.
fn query_upstream(lab: &mut Lab) -> Vec<u8> {
    let query = packets6::udp(CLIENT6.addr(), PORT, appliance6(), 53, QUERY);
    lab.send6(CLIENT6, &query).ipv4_to(RESOLVER)
}

#[test]
fn a_udp_query_to_the_appliances_ipv6_address_is_answered_by_the_ipv4_resolver() {
    let mut lab = lab();
    let out = query_upstream(&mut lab);
    let ip = Ipv4Packet::new_checked(&out[..]).unwrap();
    assert_eq!(
        (ip.src_addr(), ip.dst_addr(), ip.hop_limit()),
        (
            Ipv4Address::new(10, 0, 2, 15),
            Ipv4Address::new(10, 0, 2, 3),
            63
        ),
        "from the appliance's uplink address, TTL decremented"
    );
    assert!(ip.dont_frag());
    let (nat_port, dst_port, payload) = udp4(&out);
    assert_eq!((dst_port, payload.as_slice()), (53, QUERY));

    let answer = packets::udp(RESOLVER.ip, 53, APPLIANCE_UPLINK, nat_port, ANSWER);
    let back = lab.send(RESOLVER, &answer).ipv6_to(CLIENT6);
    let ip6 = Ipv6Packet::new_checked(&back[..]).unwrap();
    assert_eq!(
        (ip6.src_addr(), ip6.dst_addr(), ip6.hop_limit()),
        (appliance6(), CLIENT6.addr(), 63),
        "the answer comes from the address the client asked"
    );
    assert_eq!(udp6(&back), (53, PORT, ANSWER.to_vec()));
    assert_eq!(lab.live_states(), 1);
}

#[test]
fn an_ipv4_answer_without_a_checksum_gets_one_and_a_damaged_one_stays_damaged() {
    let mut lab = lab();
    let out = query_upstream(&mut lab);
    let (nat_port, _, _) = udp4(&out);
    let mut unchecked = packets::udp(RESOLVER.ip, 53, APPLIANCE_UPLINK, nat_port, ANSWER);
    unchecked[26..28].copy_from_slice(&[0, 0]);
    // `ipv6_to` checks the upper-layer checksum: IPv6 requires one.
    let back = lab.send(RESOLVER, &unchecked).ipv6_to(CLIENT6);
    assert_eq!(udp6(&back).2, ANSWER);

    let mut damaged = packets::udp(RESOLVER.ip, 53, APPLIANCE_UPLINK, nat_port, ANSWER);
    let last = damaged.len() - 1;
    damaged[last] ^= 0x5a;
    let sent = lab.send(RESOLVER, &damaged);
    let [(nic, frame)] = &sent.frames[..] else {
        panic!("one frame: {sent:?}")
    };
    assert_eq!(*nic, CLIENTS);
    assert!(
        !packets6::checksums_valid(&frame[14..]),
        "a damaged checksum is carried, never repaired"
    );
}

#[test]
fn dns_over_tcp_crosses_with_its_mss_lowered_to_fit_both_links() {
    let mut lab = lab();
    // The client announces 1440 (its 1,500-byte link); the uplink's MTU is 1,400: the
    // resolver is told 1,360, so its segments fit the uplink (and, 20 bytes longer as
    // IPv6, the client's link).
    let syn = packets6::tcp_syn(CLIENT6.addr(), 41000, appliance6(), 53);
    let out = lab.send6(CLIENT6, &syn).ipv4_to(RESOLVER);
    let ip = Ipv4Packet::new_checked(&out[..]).unwrap();
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!(
        (tcp.dst_port(), tcp.syn(), mss(&tcp)),
        (53, true, Some(1360))
    );
    let nat_port = tcp.src_port();

    let synack = packets::tcp(
        (RESOLVER.ip, 53),
        (APPLIANCE_UPLINK, nat_port),
        (5000, 1001, SYN | ACK),
        b"",
    );
    let back = lab.send(RESOLVER, &synack).ipv6_to(CLIENT6);
    let ip6 = Ipv6Packet::new_checked(&back[..]).unwrap();
    let tcp = TcpPacket::new_checked(ip6.payload()).unwrap();
    assert_eq!(
        (tcp.src_port(), tcp.dst_port(), tcp.syn(), tcp.ack()),
        (53, 41000, true, true)
    );
    assert_eq!(
        (tcp.seq_number().0, tcp.ack_number().0),
        (5000, 1001),
        "sequence space is the endpoints' own"
    );
    assert_eq!(mss(&tcp), Some(1360), "1460 lowered for the uplink");

    // The handshake completes and the query goes through the state's tracking.
    let ack = packets6::tcp(
        (CLIENT6.addr(), 41000),
        (appliance6(), 53),
        (1001, 5001, ACK),
        b"\x00\x1dquery",
    );
    let data = lab.send6(CLIENT6, &ack).ipv4_to(RESOLVER);
    let ip = Ipv4Packet::new_checked(&data[..]).unwrap();
    assert_eq!(
        TcpPacket::new_checked(ip.payload()).unwrap().payload(),
        b"\x00\x1dquery"
    );
}

#[test]
fn the_resolvers_port_unreachable_reaches_the_client_as_icmpv6_about_its_own_query() {
    let mut lab = lab();
    let out = query_upstream(&mut lab);
    let error = packets::icmp_error(RESOLVER.ip, APPLIANCE_UPLINK, 3, 3, &out);
    let back = lab.send(RESOLVER, &error).ipv6_to(CLIENT6);
    let ip6 = Ipv6Packet::new_checked(&back[..]).unwrap();
    assert_eq!(
        (ip6.src_addr(), ip6.dst_addr()),
        (appliance6(), CLIENT6.addr())
    );
    let icmp = Icmpv6Packet::new_checked(ip6.payload()).unwrap();
    let repr = Icmpv6Repr::parse(
        &ip6.src_addr(),
        &ip6.dst_addr(),
        &icmp,
        &ChecksumCapabilities::default(),
    )
    .expect("a valid ICMPv6 message");
    match repr {
        Icmpv6Repr::DstUnreachable {
            reason,
            header,
            data,
        } => {
            assert_eq!(reason, smoltcp::wire::Icmpv6DstUnreachable::PortUnreachable);
            assert_eq!(
                (header.src_addr, header.dst_addr),
                (CLIENT6.addr(), appliance6()),
                "the quote is the query as the client sent it"
            );
            let udp = UdpPacket::new_unchecked(data);
            assert_eq!((udp.src_port(), udp.dst_port()), (PORT, 53));
        }
        other => panic!("not destination unreachable: {other:?}"),
    }
}

#[test]
fn a_fragmented_answer_does_not_cross() {
    let mut lab = lab();
    let out = query_upstream(&mut lab);
    let (nat_port, _, _) = udp4(&out);
    let answer = packets::udp(RESOLVER.ip, 53, APPLIANCE_UPLINK, nat_port, &[0xa5; 600]);
    let pieces = packets::fragments(&answer, 304);
    lab.send(RESOLVER, &pieces[0]).assert_nothing();
    assert_eq!(lab.dropped(DropReason::InvalidState), 1);
    lab.send(RESOLVER, &pieces[1]).assert_nothing();
}

#[test]
fn a_fragmented_query_does_not_cross_and_leaves_no_state_behind() {
    // The first fragment of a query the redirect would send across: dropped before its
    // flow's state opens, so the same query sent whole is a first packet again (policy
    // decided), not the follower of a flow no packet ever opened.
    let mut lab = lab();
    // A fragment other than the last carries a multiple of 8 bytes (RFC 8200 §4.5).
    let padded = [QUERY, &[0; 3]].concat();
    let whole = packets6::udp(CLIENT6.addr(), PORT, appliance6(), 53, &padded);
    let first_fragment = packets6::with_extensions(
        &whole,
        &[packets6::Extension::Fragment {
            offset: 0,
            more: true,
            ident: 7,
        }],
    );
    lab.send6(CLIENT6, &first_fragment).assert_nothing();
    assert_eq!(lab.dropped(DropReason::InvalidState), 1);
    assert_eq!(
        lab.live_states(),
        0,
        "no state for a query that never crossed"
    );
    let out = lab.send6(CLIENT6, &whole).ipv4_to(RESOLVER);
    assert_eq!(udp4(&out).2, padded);
    assert_eq!(lab.live_states(), 1);
}

#[test]
fn the_client_network_is_told_of_the_appliances_ipv6_resolver() {
    // The uplink's resolver is IPv4 (static): IPv6 queries cross to it, so the client
    // network's router advertisements name the appliance from the first.
    let mut lab = lab();
    let mut named = None;
    for _ in 0..10 {
        lab.advance(smoltcp::time::Duration::from_secs(1));
        for (nic, frame) in lab.poll().frames {
            let Ok(nd) = NdFrame::parse(&frame) else {
                continue;
            };
            if nic == CLIENTS && matches!(nd.message, NdiscRepr::RouterAdvert { .. }) {
                named = Some(RaOptions::parse(nd.options).unwrap().rdnss);
            }
        }
        if named.is_some() {
            break;
        }
    }
    let rdnss = named
        .expect("an advertisement within 10 s")
        .expect("an RDNSS option");
    assert_eq!(rdnss.servers, [appliance6()]);
    assert!(rdnss.lifetime > smoltcp::time::Duration::ZERO);
}

#[test]
fn the_clients_port_unreachable_reaches_the_resolver_as_icmp_about_its_answer() {
    let mut lab = lab();
    let out = query_upstream(&mut lab);
    let (nat_port, _, _) = udp4(&out);
    let answer = packets::udp(RESOLVER.ip, 53, APPLIANCE_UPLINK, nat_port, ANSWER);
    let back = lab.send(RESOLVER, &answer).ipv6_to(CLIENT6);
    // The client's socket is gone (a second answer, say): it says so about the answer.
    let unreachable = Icmpv6Repr::DstUnreachable {
        reason: smoltcp::wire::Icmpv6DstUnreachable::PortUnreachable,
        header: smoltcp::wire::Ipv6Repr {
            src_addr: appliance6(),
            dst_addr: CLIENT6.addr(),
            next_header: smoltcp::wire::IpProtocol::Udp,
            payload_len: back.len() - 40,
            hop_limit: 63,
        },
        data: &back[40..],
    };
    let error = packets6::icmp(CLIENT6.addr(), appliance6(), &unreachable);
    let up = lab.send6(CLIENT6, &error).ipv4_to(RESOLVER);
    let ip = Ipv4Packet::new_checked(&up[..]).unwrap();
    assert_eq!(
        (ip.src_addr(), ip.dst_addr()),
        (
            Ipv4Address::new(10, 0, 2, 15),
            Ipv4Address::new(10, 0, 2, 3)
        )
    );
    let icmp = ip.payload();
    assert_eq!((icmp[0], icmp[1]), (3, 3), "port unreachable");
    let quote = Ipv4Packet::new_checked(&icmp[8..]).unwrap();
    assert_eq!(
        (quote.src_addr(), quote.dst_addr()),
        (
            Ipv4Address::new(10, 0, 2, 3),
            Ipv4Address::new(10, 0, 2, 15)
        ),
        "the quote is the answer as the resolver sent it"
    );
    let udp = UdpPacket::new_unchecked(quote.payload());
    assert_eq!((udp.src_port(), udp.dst_port()), (53, nat_port));
}

#[test]
fn a_query_to_the_appliances_link_local_address_is_not_redirected() {
    // Link-local addresses stay on their link (RFC 4291 §2.5.6): the redirect is for the
    // appliance's `address6`, so this query is the appliance's own, and its policy blocks it.
    let mut lab = lab();
    let link_local = addr("fe80::5054:ff:fe6d:1");
    let query = packets6::udp(CLIENT6.addr(), PORT, link_local, 53, QUERY);
    let sent = lab.send6(CLIENT6, &query);
    assert!(
        sent.frames.iter().all(|(nic, _)| *nic != UPLINK),
        "nothing goes upstream: {sent:?}"
    );
    assert_eq!(lab.live_states(), 0);
    assert_eq!(lab.dropped(DropReason::Policy), 1);
}

#[test]
fn too_big_once_rebuilt_the_sender_hears_the_size_that_fits_if_it_set_df() {
    let mut lab = lab();
    // 1,450 bytes of IPv6 are 1,430 of IPv4: over the uplink's 1,400. The client may send
    // 1,420.
    let big = packets6::udp(CLIENT6.addr(), PORT, appliance6(), 53, &[7; 1402]);
    assert_eq!(big.len(), 1450);
    let back = lab.send6(CLIENT6, &big).ipv6_to(CLIENT6);
    let ip6 = Ipv6Packet::new_checked(&back[..]).unwrap();
    let icmp = Icmpv6Packet::new_checked(ip6.payload()).unwrap();
    assert_eq!(icmp.msg_type(), smoltcp::wire::Icmpv6Message::PktTooBig);
    assert_eq!(icmp.pkt_too_big_mtu(), 1420);
    assert_eq!(lab.dropped(DropReason::TooBig), 1);

    // An answer of 1,490 bytes of IPv4 is 1,510 of IPv6, over the client's 1,500: with DF
    // the resolver hears 1,480; without, it is dropped untold.
    let out = query_upstream(&mut lab);
    let (nat_port, _, _) = udp4(&out);
    let mut answer = packets::udp(RESOLVER.ip, 53, APPLIANCE_UPLINK, nat_port, &[9; 1462]);
    assert_eq!(answer.len(), 1490);
    assert!(Ipv4Packet::new_checked(&answer[..]).unwrap().dont_frag());
    let told = lab.send(RESOLVER, &answer).ipv4_to(RESOLVER);
    let icmp = &Ipv4Packet::new_checked(&told[..])
        .unwrap()
        .payload()
        .to_vec();
    assert_eq!((icmp[0], icmp[1]), (3, 4), "fragmentation needed");
    assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1480);
    let mut ip = Ipv4Packet::new_unchecked(&mut answer[..]);
    ip.set_dont_frag(false);
    ip.fill_checksum();
    lab.send(RESOLVER, &answer).assert_nothing();
    assert_eq!(lab.dropped(DropReason::TooBig), 3);
}

#[test]
fn a_tcp_super_frame_crosses_as_checked_segments() {
    let mut lab = lab();
    let syn = packets6::tcp_syn(CLIENT6.addr(), 41000, appliance6(), 53);
    let out = lab.send6(CLIENT6, &syn).ipv4_to(RESOLVER);
    let nat_port = TcpPacket::new_checked(Ipv4Packet::new_checked(&out[..]).unwrap().payload())
        .unwrap()
        .src_port();
    let synack = packets::tcp(
        (RESOLVER.ip, 53),
        (APPLIANCE_UPLINK, nat_port),
        (5000, 1001, SYN | ACK),
        b"",
    );
    lab.send(RESOLVER, &synack).ipv6_to(CLIENT6);
    // The client's NIC hands over 3,000 bytes as one TSO6 super-frame of 1,000-byte
    // segments, its checksum partial.
    let payload: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let whole = packets6::tcp(
        (CLIENT6.addr(), 41000),
        (appliance6(), 53),
        (1001, 5001, ACK),
        &payload,
    );
    let frame = packets::ethernet_of(
        smoltcp::wire::EthernetProtocol::Ipv6,
        CLIENT6.host.mac,
        appliance_mac(CLIENTS),
        &offload::partial(&whole),
    );
    let sent = lab.receive_offloaded(CLIENTS, frame, offload::tso6(40, 1000));
    let segments = sent.sent.each_ipv4_to(RESOLVER);
    assert_eq!(segments.len(), 3);
    let mut carried = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let ip = Ipv4Packet::new_checked(&segment[..]).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!(tcp.seq_number().0, 1001 + 1000 * i as i32);
        carried.extend_from_slice(tcp.payload());
    }
    assert_eq!(carried, payload, "every byte, in order, checksums valid");

    // And back: the resolver's answer as one TSO4 super-frame reaches the client as IPv6
    // segments.
    let answer = packets::tcp(
        (RESOLVER.ip, 53),
        (APPLIANCE_UPLINK, nat_port),
        (5001, 4001, ACK),
        &payload,
    );
    let frame = packets::ethernet_of(
        smoltcp::wire::EthernetProtocol::Ipv4,
        RESOLVER.mac,
        appliance_mac(UPLINK),
        &offload::partial(&answer),
    );
    let sent = lab.receive_offloaded(UPLINK, frame, offload::tso(1000));
    assert_eq!(sent.sent.frames.len(), 3);
    let mut carried = Vec::new();
    for (i, (nic, frame)) in sent.sent.frames.iter().enumerate() {
        assert_eq!(*nic, CLIENTS);
        assert!(
            packets6::checksums_valid(&frame[14..]),
            "segment {i}'s checksum"
        );
        let ip = Ipv6Packet::new_checked(&frame[14..]).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((tcp.src_port(), tcp.dst_port()), (53, 41000));
        assert_eq!(tcp.seq_number().0, 5001 + 1000 * i as i32);
        carried.extend_from_slice(tcp.payload());
    }
    assert_eq!(carried, payload);
}
