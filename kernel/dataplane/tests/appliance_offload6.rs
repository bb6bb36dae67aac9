//! Offloaded IPv6 frames through the appliance (`DUAL_STACK`): a partial TCP or UDP
//! checksum goes the whole path like an IPv4 one — kept in step through NAT66, left partial
//! for an egress NIC that completes it, completed in software for one that does not or
//! before the packet waits for neighbour discovery, completed in the quote of an ICMPv6
//! error — and TCP/IPv6 super-frames (TSO6) likewise: kept whole with their metadata for
//! an egress that segments them, cut into checked segments in software for one that does
//! not or over a smaller MTU, the MTU checked on one segment, an ICMPv6 packet too big
//! quoting the first segment, NAT66 and state tracking over the whole super-segment.
//! UDP super-frames of IPv6 (which stand for fragments) and TSO6 metadata that does not
//! hold for its packet are refused with their reason.

mod appliance_common;

use appliance_common::*;
use dataplane::appliance::ApplianceOptions;
use dataplane::drops::DropReason;
use dataplane::ndp::wire::Outgoing;
use dataplane::offload::{
    GsoKind, NicOffloads, Offload, PartialChecksum, Segmentation, VIRTIO_NET_HDR_LEN,
};
use dataplane::packet::tcp_flags::{ACK, PSH, SYN};
use dataplane::testutil::offload::{checksum_only6, completed, partial, payload_byte, tso6};
use dataplane::testutil::packets;
use dataplane::testutil::packets6::{self, addr};
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpProtocol, Ipv6Address, Ipv6Packet, NdiscNeighborFlags,
    NdiscRepr, TcpPacket, UdpPacket,
};

/// What a virtio-net NIC with every offload QEMU offers on a tap takes.
const EVERY_OFFLOAD: NicOffloads = NicOffloads {
    checksum: true,
    tcp4_segmentation: true,
    tcp6_segmentation: true,
    ecn: true,
    udp_fragmentation: true,
};

/// A NIC that completes checksums and segments TCP/IPv4, but not TCP/IPv6 (no `HOST_TSO6`).
const NO_TSO6: NicOffloads = NicOffloads {
    tcp6_segmentation: false,
    ..EVERY_OFFLOAD
};

/// `DUAL_STACK` with every NIC taking `offloads`, the uplink's router and the client known.
fn lab_with(offloads: NicOffloads) -> Lab {
    let mut lab = Lab::with_nic_offloads(&DUAL_STACK, ApplianceOptions::default(), offloads);
    lab.teach6_all(&[CLIENT6]);
    lab
}

/// `from` sends the IPv6 `packet` to the appliance's MAC with offload metadata.
fn send6_offloaded(lab: &mut Lab, from: Host6, packet: &[u8], offload: Offload) -> SentOffloaded {
    let frame = packets::ethernet_of(
        EthernetProtocol::Ipv6,
        from.host.mac,
        appliance_mac(from.host.nic),
        packet,
    );
    lab.receive_offloaded(from.host.nic, frame, offload)
}

/// The client sends `whole` (an IPv6 packet with a complete `protocol` checksum) with
/// that checksum left partial, as a NIC with checksum offload hands it over.
fn client_sends_partial(lab: &mut Lab, whole: &[u8], protocol: IpProtocol) -> SentOffloaded {
    send6_offloaded(lab, CLIENT6, &partial(whole), checksum_only6(protocol))
}

/// The one frame `sent` holds, an IPv6 packet out of the uplink to its router; the packet
/// (checksum as it left) and its metadata.
fn one_upstream(sent: &SentOffloaded) -> (Vec<u8>, Offload) {
    let [(nic, frame)] = &sent.sent.frames[..] else {
        panic!("expected one frame, got {:?}", sent.sent)
    };
    assert_eq!(*nic, UPLINK, "egress NIC");
    let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
    assert_eq!(eth.dst_addr(), GATEWAY.mac, "Ethernet destination");
    assert_eq!(eth.ethertype(), EthernetProtocol::Ipv6);
    (eth.payload().to_vec(), sent.offloads[0])
}

/// `out` (an IPv6 packet that left with its checksum partial) completed, as the egress NIC
/// completes it; fails unless it was still partial and completes valid (after NAT66).
fn completes_valid(out: &[u8], what: &str) -> Vec<u8> {
    assert!(!packets6::checksums_valid(out), "{what}: still partial");
    let done = completed(out);
    assert!(
        packets6::checksums_valid(&done),
        "{what}: completes valid after NAT66"
    );
    done
}

/// A client's TCP segment (with data) and UDP datagram to the IPv6 server, checksums
/// complete.
fn client_packets() -> [(IpProtocol, Vec<u8>); 2] {
    let server = addr(SERVER6);
    [
        (
            IpProtocol::Tcp,
            packets6::tcp_syn(CLIENT6.addr(), 40000, server, 443),
        ),
        (
            IpProtocol::Udp,
            packets6::udp(CLIENT6.addr(), 5353, server, 53, &[7; 900]),
        ),
    ]
}

/// The source port of an IPv6 TCP or UDP packet without extension headers.
fn src_port(packet: &[u8]) -> u16 {
    let ip = Ipv6Packet::new_checked(packet).unwrap();
    match ip.next_header() {
        IpProtocol::Tcp => TcpPacket::new_checked(ip.payload()).unwrap().src_port(),
        _ => UdpPacket::new_checked(ip.payload()).unwrap().src_port(),
    }
}

#[test]
fn a_partial_ipv6_checksum_leaves_partial_and_masqueraded_for_an_egress_that_completes_it() {
    for (protocol, whole) in client_packets() {
        let mut lab = lab_with(EVERY_OFFLOAD);
        let sent = client_sends_partial(&mut lab, &whole, protocol);
        let (out, offload) = one_upstream(&sent);
        assert_eq!(
            offload,
            checksum_only6(protocol),
            "{protocol}: the metadata goes along"
        );
        let done = completes_valid(&out, &format!("{protocol}"));
        let ip = Ipv6Packet::new_checked(&done[..]).unwrap();
        assert_eq!(
            ip.src_addr(),
            addr(APPLIANCE6_UPLINK),
            "{protocol}: masqueraded"
        );
        assert_eq!(ip.hop_limit(), 63);
        assert_ne!(src_port(&done), 0);
    }
}

#[test]
fn a_partial_ipv6_checksum_is_completed_in_software_for_an_egress_without_the_offload() {
    for (protocol, whole) in client_packets() {
        let mut lab = lab_with(NicOffloads::default());
        let sent = client_sends_partial(&mut lab, &whole, protocol);
        let (out, offload) = one_upstream(&sent);
        assert!(offload.is_plain(), "{protocol}: leaves plain");
        assert!(
            packets6::checksums_valid(&out),
            "{protocol}: checksum complete"
        );
        assert_eq!(
            Ipv6Packet::new_checked(&out[..]).unwrap().src_addr(),
            addr(APPLIANCE6_UPLINK)
        );
    }
}

/// `DUAL_STACK` with every NIC taking every offload, the client known but not the uplink's
/// router, the uplink's addresses past DAD.
fn lab_with_router_unknown() -> Lab {
    let mut lab = Lab::with_nic_offloads(&DUAL_STACK, ApplianceOptions::default(), EVERY_OFFLOAD);
    lab.teach6(CLIENT6).assert_nothing();
    lab.poll();
    lab.advance(smoltcp::time::Duration::from_secs(2));
    lab.poll();
    lab
}

/// Fails unless `sent` is only a neighbour solicitation (the packet waits).
fn assert_only_a_solicitation(sent: &SentOffloaded) {
    assert!(
        sent.sent.frames.iter().all(|(_, f)| f.len() < 100),
        "only a solicitation goes out: {:?}",
        sent.sent
    );
}

/// The uplink's router answers the appliance's solicitation; what the appliance sends then.
fn router_answers(lab: &mut Lab) -> SentOffloaded {
    let router: Ipv6Address = GATEWAY6.addr();
    let advert = Outgoing {
        eth_src: GATEWAY.mac,
        eth_dst: appliance_mac(UPLINK),
        src: router,
        dst: addr(APPLIANCE6_UPLINK),
        message: NdiscRepr::NeighborAdvert {
            flags: NdiscNeighborFlags::SOLICITED
                | NdiscNeighborFlags::OVERRIDE
                | NdiscNeighborFlags::ROUTER,
            target_addr: router,
            lladdr: Some(GATEWAY.mac.into()),
        },
        rdnss: None,
    };
    let mut frame = vec![0; advert.len()];
    advert.emit(&mut frame);
    lab.receive_offloaded(UPLINK, frame, Offload::PLAIN)
}

#[test]
fn a_partial_ipv6_checksum_is_completed_before_the_packet_waits_for_neighbour_discovery() {
    let mut lab = lab_with_router_unknown();
    let [(protocol, whole), _] = client_packets();
    let sent = client_sends_partial(&mut lab, &whole, protocol);
    assert_only_a_solicitation(&sent);

    // The router answers; the packet that waited leaves, plain and complete.
    let released = router_answers(&mut lab);
    let (out, offload) = one_upstream(&released);
    assert!(offload.is_plain(), "a queued packet has no metadata");
    assert!(
        packets6::checksums_valid(&out),
        "completed before it was queued"
    );
}

#[test]
fn a_packet_too_big_error_quotes_the_ipv6_packet_with_its_checksum_completed() {
    let mut lab = small_mtu_lab(EVERY_OFFLOAD);
    let whole = packets6::udp(CLIENT6.addr(), 5353, addr(SERVER6), 53, &[7; 1400]);
    let sent = client_sends_partial(&mut lab, &whole, IpProtocol::Udp);
    let [(nic, frame)] = &sent.sent.frames[..] else {
        panic!("expected one error, got {:?}", sent.sent)
    };
    assert_eq!(*nic, CLIENTS);
    let error = &frame[14..];
    assert!(packets6::checksums_valid(error), "the error's own checksum");
    // ICMPv6 header (8 bytes) after the IPv6 header, then the quote.
    let quote = &error[40 + 8..];
    assert!(quote.len() > 100);
    assert_eq!(
        quote,
        &whole[..quote.len()],
        "the packet as it would have been on the wire, checksum complete"
    );
}

/// Metadata of a UDP (UFO) super-frame of 1,232 bytes per fragment, as a device would
/// write it.
fn ufo_super_frame() -> Offload {
    let mut header = [0u8; VIRTIO_NET_HDR_LEN];
    header[0] = 1;
    header[1] = 3;
    header[4..6].copy_from_slice(&1232u16.to_le_bytes());
    header[6..8].copy_from_slice(&54u16.to_le_bytes());
    header[8..10].copy_from_slice(&6u16.to_le_bytes());
    Offload::from_virtio_net_hdr(&header)
}

#[test]
fn a_udp_super_frame_of_ipv6_is_refused_as_malformed_with_its_reason() {
    let udp = packets6::udp(CLIENT6.addr(), 5353, addr(SERVER6), 53, &[7; 3000]);
    let ufo = ufo_super_frame();
    assert!(matches!(
        ufo.segmentation,
        Some(Segmentation {
            kind: GsoKind::Udp,
            ..
        })
    ));
    let mut lab = lab_with(EVERY_OFFLOAD);
    take_log_lines();
    let sent = send6_offloaded(&mut lab, CLIENT6, &partial(&udp), ufo);
    assert!(sent.sent.frames.is_empty(), "nothing leaves");
    assert_eq!(lab.dropped(DropReason::Malformed), 1);
    assert!(
        take_log_lines()
            .iter()
            .any(|l| l.contains("offload-ufo-ipv6")),
        "the drop line names it"
    );
}

/// Linux's MSS over a 1,500-byte link for IPv6 without TCP options: 1500 - 40 - 20.
const MSS6: u16 = 1440;
/// The client's initial sequence number, and the server's.
const CLIENT_ISN: u32 = 1000;
const SERVER_ISN: u32 = 5000;

/// `len` bytes of super-packet payload.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(payload_byte).collect()
}

/// A TCP/IPv6 connection from the client's port 40000 to the server's port 443, open
/// (handshake done through the appliance); the port it is masqueraded to.
fn open_connection(lab: &mut Lab) -> u16 {
    let out = lab.send6(CLIENT6, &client_syn()).ipv6_upstream();
    finish_handshake(lab, src_port(&out))
}

/// The client's SYN of the connection of [`open_connection`].
fn client_syn() -> Vec<u8> {
    packets6::tcp_syn(CLIENT6.addr(), 40000, addr(SERVER6), 443)
}

/// The rest of [`open_connection`] once the client's SYN left masqueraded as `nat_port`:
/// the server's SYN-ACK, the client's ACK; `nat_port`.
fn finish_handshake(lab: &mut Lab, nat_port: u16) -> u16 {
    let server = addr(SERVER6);
    let synack = packets6::tcp(
        (server, 443),
        (addr(APPLIANCE6_UPLINK), nat_port),
        (SERVER_ISN, CLIENT_ISN + 1, SYN | ACK),
        b"",
    );
    lab.send6(GATEWAY6, &synack).ipv6_to(CLIENT6);
    let ack = packets6::tcp(
        (CLIENT6.addr(), 40000),
        (server, 443),
        (CLIENT_ISN + 1, SERVER_ISN + 1, ACK),
        b"",
    );
    lab.send6(CLIENT6, &ack).ipv6_upstream();
    nat_port
}

/// The client's first super-segment of the connection: `len` bytes of payload with ACK and
/// PSH, its checksum partial.
fn client_super_segment(len: usize) -> Vec<u8> {
    partial(&packets6::tcp(
        (CLIENT6.addr(), 40000),
        (addr(SERVER6), 443),
        (CLIENT_ISN + 1, SERVER_ISN + 1, ACK | PSH),
        &payload(len),
    ))
}

/// The client sends its first super-segment of the connection, `len` bytes of payload, as
/// a TSO6 super-frame of `size` bytes a segment.
fn client_sends_super_segment(lab: &mut Lab, len: usize, size: u16) -> SentOffloaded {
    send6_offloaded(lab, CLIENT6, &client_super_segment(len), tso6(40, size))
}

/// `SMALL_MTU_DUAL_STACK` (a 1,280-byte uplink) with every NIC taking `offloads`, the
/// uplink's router and the client known.
fn small_mtu_lab(offloads: NicOffloads) -> Lab {
    let mut lab =
        Lab::with_nic_offloads(&SMALL_MTU_DUAL_STACK, ApplianceOptions::default(), offloads);
    lab.teach6_all(&[CLIENT6]);
    lab
}

/// The TCP header fields and payload of an IPv6 packet without extension headers.
struct Tcp6Seen {
    src: Ipv6Address,
    src_port: u16,
    seq: u32,
    psh: bool,
    payload: Vec<u8>,
}

fn tcp6_of(packet: &[u8]) -> Tcp6Seen {
    let ip = Ipv6Packet::new_checked(packet).expect("an IPv6 packet");
    assert_eq!(
        ip.payload_len() as usize + 40,
        packet.len(),
        "payload length"
    );
    let tcp = TcpPacket::new_checked(ip.payload()).expect("a TCP segment");
    Tcp6Seen {
        src: ip.src_addr(),
        src_port: tcp.src_port(),
        seq: tcp.seq_number().0 as u32,
        psh: tcp.psh(),
        payload: tcp.payload().to_vec(),
    }
}

/// The frames `sent` holds, each an IPv6 packet out of the uplink to its router, plain
/// (no metadata) with a valid checksum; the packets.
fn plain_upstream(sent: &SentOffloaded) -> Vec<Vec<u8>> {
    assert!(sent.offloads.iter().all(Offload::is_plain), "plain packets");
    sent.sent
        .frames
        .iter()
        .enumerate()
        .map(|(index, (nic, frame))| {
            assert_eq!(*nic, UPLINK, "packet {index}: egress NIC");
            let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
            assert_eq!(eth.dst_addr(), GATEWAY.mac, "packet {index}: to the router");
            let packet = eth.payload().to_vec();
            assert!(
                packets6::checksums_valid(&packet),
                "packet {index}: TCP checksum"
            );
            packet
        })
        .collect()
}

/// Checks that `segments` are the client's super-segment of `len` bytes cut into
/// segments of `size` bytes, masqueraded as `nat_port`: sequence numbers contiguous, PSH
/// on the last only, the payload whole and in order, none longer than `mtu`.
fn assert_segments_of(segments: &[Vec<u8>], len: usize, size: u16, nat_port: u16, mtu: usize) {
    assert_eq!(segments.len(), len.div_ceil(size as usize), "segments");
    let mut received = Vec::new();
    for (index, segment) in segments.iter().enumerate() {
        let seen = tcp6_of(segment);
        assert_eq!(
            (seen.src, seen.src_port),
            (addr(APPLIANCE6_UPLINK), nat_port),
            "segment {index}: masqueraded"
        );
        assert_eq!(
            seen.seq,
            CLIENT_ISN + 1 + received.len() as u32,
            "segment {index}: sequence number"
        );
        let last = index + 1 == segments.len();
        assert_eq!(seen.psh, last, "segment {index}: PSH on the last only");
        let expected = if last {
            len - index * size as usize
        } else {
            size as usize
        };
        assert_eq!(seen.payload.len(), expected, "segment {index}: payload");
        assert!(segment.len() <= mtu, "segment {index} fits the MTU");
        assert_eq!(
            Ipv6Packet::new_checked(&segment[..]).unwrap().hop_limit(),
            63
        );
        received.extend_from_slice(&seen.payload);
    }
    assert_eq!(received, payload(len), "the payload, in order, whole");
}

#[test]
fn a_tso6_super_frame_leaves_the_uplink_as_one_frame_masqueraded_for_a_tso6_egress() {
    let mut lab = lab_with(EVERY_OFFLOAD);
    let nat_port = open_connection(&mut lab);
    let sent_packet = client_super_segment(30_000);
    let sent = send6_offloaded(&mut lab, CLIENT6, &sent_packet, tso6(40, MSS6));

    let (out, offload) = one_upstream(&sent);
    assert_eq!(offload, tso6(40, MSS6), "the offload goes along, unchanged");
    assert_eq!(
        out.len(),
        sent_packet.len(),
        "one frame, the whole super-segment"
    );
    let done = completes_valid(&out, "the super-segment");
    let seen = tcp6_of(&done);
    assert_eq!(
        (seen.src, seen.src_port),
        (addr(APPLIANCE6_UPLINK), nat_port)
    );
    assert_eq!(seen.seq, CLIENT_ISN + 1);
    assert_eq!(seen.payload, payload(30_000), "payload intact");
    assert_eq!(Ipv6Packet::new_checked(&out[..]).unwrap().hop_limit(), 63);
}

#[test]
fn tcp_tracking_takes_the_whole_tso6_super_segment_into_account() {
    let mut lab = lab_with(EVERY_OFFLOAD);
    let nat_port = open_connection(&mut lab);
    let sent = client_sends_super_segment(&mut lab, 30_000, MSS6);
    one_upstream(&sent);
    // The server acknowledges the whole super-segment: the state saw all of it.
    let ack = packets6::tcp(
        (addr(SERVER6), 443),
        (addr(APPLIANCE6_UPLINK), nat_port),
        (SERVER_ISN + 1, CLIENT_ISN + 1 + 30_000, ACK),
        b"",
    );
    lab.send6(GATEWAY6, &ack).ipv6_to(CLIENT6);
    assert_eq!(lab.dropped(DropReason::InvalidState), 0);
}

#[test]
fn a_tso6_super_frame_to_an_egress_without_tso6_leaves_as_checked_segments() {
    for offloads in [NO_TSO6, NicOffloads::default()] {
        let mut lab = lab_with(offloads);
        let nat_port = open_connection(&mut lab);
        let sent = client_sends_super_segment(&mut lab, 30_000, MSS6);
        assert_segments_of(&plain_upstream(&sent), 30_000, MSS6, nat_port, 1500);
    }
}

#[test]
fn a_tso6_super_frame_whose_segments_fit_a_smaller_mtu_passes_whole_or_segmented() {
    // 40 + 20 + 1220 = 1280 bytes a segment: the uplink's MTU.
    let size = 1220;
    for (offloads, whole) in [(EVERY_OFFLOAD, true), (NO_TSO6, false)] {
        let mut lab = small_mtu_lab(offloads);
        let nat_port = open_connection(&mut lab);
        let sent = client_sends_super_segment(&mut lab, 20_000, size);
        if whole {
            let (out, offload) = one_upstream(&sent);
            assert_eq!(offload, tso6(40, size));
            assert_eq!(tcp6_of(&completed(&out)).payload, payload(20_000));
        } else {
            assert_segments_of(&plain_upstream(&sent), 20_000, size, nat_port, 1280);
        }
    }
}

#[test]
fn a_tso6_super_frame_whose_segments_exceed_the_mtu_gets_packet_too_big_quoting_its_first_segment()
{
    let mut lab = small_mtu_lab(EVERY_OFFLOAD);
    open_connection(&mut lab);
    let sent = client_sends_super_segment(&mut lab, 30_000, MSS6);

    // One segment is 40 + 20 + 1440 = 1500 bytes, over the uplink's 1280.
    let [(nic, frame)] = &sent.sent.frames[..] else {
        panic!("expected one error, got {:?}", sent.sent)
    };
    assert_eq!(*nic, CLIENTS);
    let error = &frame[14..];
    assert!(packets6::checksums_valid(error), "the error's own checksum");
    let icmp = Ipv6Packet::new_checked(error).unwrap();
    let icmp = smoltcp::wire::Icmpv6Packet::new_checked(icmp.payload()).unwrap();
    assert_eq!(icmp.msg_type(), smoltcp::wire::Icmpv6Message::PktTooBig);
    assert_eq!(icmp.pkt_too_big_mtu(), 1280);
    // The first segment as it would have been on the wire: its own payload length, no PSH,
    // its checksum complete.
    let first = packets6::tcp(
        (CLIENT6.addr(), 40000),
        (addr(SERVER6), 443),
        (CLIENT_ISN + 1, SERVER_ISN + 1, ACK),
        &payload(MSS6 as usize),
    );
    let quote = &error[40 + 8..];
    assert!(
        quote.len() > 1000,
        "quotes as much as fits: {}",
        quote.len()
    );
    assert_eq!(
        quote,
        &first[..quote.len()],
        "the quote is the first segment"
    );
    assert_eq!(lab.dropped(DropReason::TooBig), 1);
}

#[test]
fn malformed_tso6_metadata_is_dropped_with_its_reason() {
    let packet = client_super_segment(30_000);
    let misplaced = Offload {
        partial_checksum: Some(PartialChecksum {
            start: 34,
            offset: 16,
        }),
        ..tso6(40, MSS6)
    };
    let tso4 = Offload {
        segmentation: Some(Segmentation {
            kind: GsoKind::TcpV4,
            size: MSS6,
            ecn: false,
        }),
        ..tso6(40, MSS6)
    };
    let without_checksum = Offload {
        partial_checksum: None,
        ..tso6(40, MSS6)
    };
    for (offload, reason) in [
        (misplaced, "offload-checksum-misplaced"),
        (tso6(40, 0), "offload-gso-size-zero"),
        (tso4, "offload-gso-type-mismatch"),
        (without_checksum, "offload-gso-without-checksum"),
    ] {
        let mut lab = lab_with(EVERY_OFFLOAD);
        open_connection(&mut lab);
        take_log_lines();
        let sent = send6_offloaded(&mut lab, CLIENT6, &packet, offload);
        assert!(sent.sent.frames.is_empty(), "{reason}: nothing leaves");
        assert_eq!(lab.dropped(DropReason::Malformed), 1, "{reason}");
        assert!(
            take_log_lines().iter().any(|l| l.contains(reason)),
            "{reason}: the drop line names it"
        );
    }
}

#[test]
fn a_tso6_super_frame_waiting_for_neighbour_discovery_waits_as_checked_segments() {
    let mut lab = lab_with_router_unknown();
    assert_only_a_solicitation(&send6_offloaded(
        &mut lab,
        CLIENT6,
        &client_syn(),
        Offload::PLAIN,
    ));
    let (syn, _) = one_upstream(&router_answers(&mut lab));
    let nat_port = finish_handshake(&mut lab, src_port(&syn));
    // The router's entry runs out; the connection's state does not.
    lab.advance(smoltcp::time::Duration::from_secs(61));
    let sent = client_sends_super_segment(&mut lab, 5000, MSS6);
    assert_only_a_solicitation(&sent);
    let released = router_answers(&mut lab);
    assert_segments_of(&plain_upstream(&released), 5000, MSS6, nat_port, 1500);
}
