//! Offloaded IPv6 frames through the appliance (`DUAL_STACK`): a partial TCP or UDP
//! checksum goes the whole path like an IPv4 one — kept in step through NAT66, left partial
//! for an egress NIC that completes it, completed in software for one that does not or
//! before the packet waits for neighbour discovery, completed in the quote of an ICMPv6
//! error — and IPv6 super-frames, which the appliance cannot finish, are refused with
//! their reason rather than forwarded with metadata that does not hold.

mod appliance_common;

use appliance_common::*;
use dataplane::appliance::ApplianceOptions;
use dataplane::drops::DropReason;
use dataplane::ndp::wire::Outgoing;
use dataplane::offload::{NicOffloads, Offload, Segmentation, VIRTIO_NET_HDR_LEN};
use dataplane::testutil::offload::{checksum_only6, completed, partial};
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
    ecn: true,
    udp_fragmentation: true,
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
        assert!(
            !packets6::checksums_valid(&out),
            "{protocol}: still partial"
        );
        let done = completed(&out);
        assert!(
            packets6::checksums_valid(&done),
            "{protocol}: completes valid after NAT66"
        );
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

#[test]
fn a_partial_ipv6_checksum_is_completed_before_the_packet_waits_for_neighbour_discovery() {
    let mut lab = Lab::with_nic_offloads(&DUAL_STACK, ApplianceOptions::default(), EVERY_OFFLOAD);
    lab.teach6(CLIENT6).assert_nothing();
    // DAD of the uplink's addresses runs its course first.
    lab.poll();
    lab.advance(smoltcp::time::Duration::from_secs(2));
    lab.poll();
    let [(protocol, whole), _] = client_packets();
    let sent = client_sends_partial(&mut lab, &whole, protocol);
    assert!(
        sent.sent.frames.iter().all(|(_, f)| f.len() < 100),
        "only a solicitation goes out: {:?}",
        sent.sent
    );

    // The router answers; the packet that waited leaves, plain and complete.
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
    let released = lab.receive_offloaded(UPLINK, frame, Offload::PLAIN);
    let (out, offload) = one_upstream(&released);
    assert!(offload.is_plain(), "a queued packet has no metadata");
    assert!(
        packets6::checksums_valid(&out),
        "completed before it was queued"
    );
}

#[test]
fn a_packet_too_big_error_quotes_the_ipv6_packet_with_its_checksum_completed() {
    let mut lab = Lab::with_nic_offloads(
        &SMALL_MTU_DUAL_STACK,
        ApplianceOptions::default(),
        EVERY_OFFLOAD,
    );
    lab.teach6_all(&[CLIENT6]);
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

/// Metadata of a UDP (UFO) super-frame of `size` bytes per fragment, or of a TCP/IPv6
/// (TSO6) one, as a device would write it.
fn super_frame(gso_type: u8, offset: u16) -> Offload {
    let mut header = [0u8; VIRTIO_NET_HDR_LEN];
    header[0] = 1;
    header[1] = gso_type;
    header[4..6].copy_from_slice(&1232u16.to_le_bytes());
    header[6..8].copy_from_slice(&54u16.to_le_bytes());
    header[8..10].copy_from_slice(&offset.to_le_bytes());
    Offload::from_virtio_net_hdr(&header)
}

#[test]
fn ipv6_super_frames_are_refused_as_malformed_with_their_reason() {
    let server = addr(SERVER6);
    let udp = packets6::udp(CLIENT6.addr(), 5353, server, 53, &[7; 3000]);
    let tcp = packets6::tcp(
        (CLIENT6.addr(), 40000),
        (server, 443),
        (1, 1, dataplane::packet::tcp_flags::ACK),
        &[7; 3000],
    );
    let ufo = super_frame(3, 6);
    assert!(matches!(
        ufo.segmentation,
        Some(Segmentation {
            kind: dataplane::offload::GsoKind::Udp,
            ..
        })
    ));
    for (packet, offload, reason) in [
        (udp, ufo, "offload-ufo-ipv6"),
        (tcp, super_frame(4, 16), "offload-gso-type-mismatch"),
    ] {
        let mut lab = lab_with(EVERY_OFFLOAD);
        take_log_lines();
        let sent = send6_offloaded(&mut lab, CLIENT6, &partial(&packet), offload);
        assert!(sent.sent.frames.is_empty(), "{reason}: nothing leaves");
        assert_eq!(lab.dropped(DropReason::Malformed), 1, "{reason}");
        assert!(
            take_log_lines().iter().any(|l| l.contains(reason)),
            "{reason}: the drop line names it"
        );
    }
}
