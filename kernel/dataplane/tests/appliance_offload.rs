//! Offloaded frames through the appliance (`rules/default.rules`): TCP super-frames and
//! partial checksums, as a virtio-net device with offloads hands them over, go the whole
//! path — NAT with the partial checksum kept in step, TCP tracking over the whole
//! super-segment, the MTU checked on one segment, ICMP errors quoting a valid first
//! segment — and leave as one frame where the egress NIC takes the offload, as checked
//! plain packets where it does not.

mod appliance_common;

use appliance_common::*;
use dataplane::appliance::ApplianceOptions;
use dataplane::drops::DropReason;
use dataplane::offload::{GsoKind, NicOffloads, Offload, PartialChecksum, Segmentation};
use dataplane::packet::tcp_flags::{ACK, PSH};
use dataplane::testutil::offload::{checksum_only, completed, partial, payload_byte, tso};
use dataplane::testutil::packets::{self, checksums_valid};
use proptest::prelude::*;
use smoltcp::time::Duration;
use smoltcp::wire::{IpProtocol, Ipv4Packet};

/// What a virtio-net NIC with every offload QEMU offers on a tap takes.
const EVERY_OFFLOAD: NicOffloads = NicOffloads {
    checksum: true,
    tcp4_segmentation: true,
    tcp6_segmentation: true,
    ecn: true,
    udp_fragmentation: true,
};

/// Linux's MSS over a 1500-byte link with timestamps.
const MSS: u16 = 1448;

/// `policy`'s network, every NIC taking `offloads`, the client attached and the gateway
/// known.
fn lab_with(policy: &'static dataplane::policy::PolicyBuf, offloads: NicOffloads) -> Lab {
    let mut lab = Lab::with_nic_offloads(policy, ApplianceOptions::default(), offloads);
    lab.attach(CLIENT);
    lab.teach(GATEWAY);
    lab
}

/// `len` bytes of super-packet payload.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(payload_byte).collect()
}

/// The client's next super-segment of `connection`, partial checksum and all.
fn client_super_segment(connection: &Connection, len: usize) -> Vec<u8> {
    partial(&segment(
        connection.inside,
        connection.server,
        connection.client_seq,
        connection.server_seq,
        ACK | PSH,
        &payload(len),
    ))
}

/// The frames `sent` holds, by NIC and length (frames are too long to print).
fn lengths(sent: &SentOffloaded) -> String {
    let frames: Vec<String> = sent
        .sent
        .frames
        .iter()
        .map(|(nic, frame)| format!("nic{nic}: {} bytes", frame.len()))
        .collect();
    format!("{} frames [{}]", frames.len(), frames.join(", "))
}

/// The one frame `sent` holds, which must be an offloaded IPv4 packet to `host`; the
/// packet (checksum still partial) and its metadata.
fn one_offloaded_packet(sent: &SentOffloaded, host: Host) -> (Vec<u8>, Offload) {
    let [(nic, frame)] = &sent.sent.frames[..] else {
        panic!("expected one frame, got {}", lengths(sent))
    };
    assert_eq!(*nic, host.nic, "egress NIC");
    let eth = smoltcp::wire::EthernetFrame::new_checked(&frame[..]).unwrap();
    assert_eq!(eth.dst_addr(), host.mac, "Ethernet destination");
    assert_eq!(eth.src_addr(), appliance_mac(host.nic), "Ethernet source");
    let packet = eth.payload().to_vec();
    let ip = Ipv4Packet::new_checked(&packet[..]).unwrap();
    assert!(ip.verify_checksum(), "IPv4 header checksum");
    (packet, sent.offloads[0])
}

#[test]
fn a_client_super_frame_leaves_the_uplink_as_one_frame_masqueraded() {
    let mut lab = lab_with(&DEFAULT, EVERY_OFFLOAD);
    let mut connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 80));
    let sent_packet = client_super_segment(&connection, 30_000);
    let sent = lab.send_offloaded(CLIENT, &sent_packet, tso(MSS));

    let (out, offload) = one_offloaded_packet(&sent, GATEWAY);
    assert_eq!(offload, tso(MSS), "the offload goes along, unchanged");
    assert_eq!(
        out.len(),
        sent_packet.len(),
        "one frame, the whole super-segment"
    );
    assert!(!checksums_valid(&out), "the checksum is still partial");
    let seen = tcp_of(&completed(&out));
    assert_eq!(seen.src, connection.outside, "masqueraded");
    assert_eq!(seen.dst, connection.server);
    assert_eq!(seen.seq, connection.client_seq);
    assert_eq!(seen.payload, payload(30_000), "payload intact");
    assert_eq!(ipv4_of(&out).ttl, 63, "TTL decremented once");
    connection.client_seq += 30_000;

    // The server acknowledges the whole super-segment: the state follows.
    connection.server_sends(&mut lab, ACK, &[]);
}

#[test]
fn a_server_super_frame_reaches_the_client_de_natted_as_one_frame() {
    let mut lab = lab_with(&DEFAULT, EVERY_OFFLOAD);
    let connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 80));
    let from_server = partial(&connection.segment_from_server(ACK, &payload(20_000)));
    let sent = lab.send_offloaded(GATEWAY, &from_server, tso(MSS));

    let (out, offload) = one_offloaded_packet(&sent, CLIENT);
    assert_eq!(offload, tso(MSS));
    let seen = tcp_of(&completed(&out));
    assert_eq!(
        (seen.src, seen.dst),
        (connection.server, connection.inside),
        "de-NATed"
    );
    assert_eq!(seen.payload, payload(20_000));
}

#[test]
fn a_super_frame_to_a_nic_without_offloads_leaves_as_checked_segments() {
    let mut lab = lab_with(&DEFAULT, NicOffloads::default());
    let connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 80));
    let sent = lab.send_offloaded(CLIENT, &client_super_segment(&connection, 30_000), tso(MSS));

    assert!(sent.offloads.iter().all(Offload::is_plain));
    let segments = sent.sent.each_ipv4_to(GATEWAY);
    assert_eq!(segments.len(), 30_000usize.div_ceil(MSS as usize));
    let mut received = Vec::new();
    for (index, segment) in segments.iter().enumerate() {
        let seen = tcp_of(segment);
        assert_eq!(seen.src, connection.outside, "segment {index} masqueraded");
        assert_eq!(
            seen.seq,
            connection.client_seq + received.len() as u32,
            "segment {index}: sequence number"
        );
        let last = index + 1 == segments.len();
        assert_eq!(
            seen.flags,
            if last { ACK | PSH } else { ACK },
            "segment {index}"
        );
        assert!(segment.len() <= 1500, "segment {index} fits the MTU");
        received.extend_from_slice(&seen.payload);
    }
    assert_eq!(received, payload(30_000), "the payload, in order, whole");
}

#[test]
fn a_partial_checksum_to_a_nic_without_checksum_offload_is_completed() {
    let mut lab = lab_with(&DEFAULT, NicOffloads::default());
    let connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 80));
    let packet = client_super_segment(&connection, 700);
    let sent = lab.send_offloaded(CLIENT, &packet, checksum_only(IpProtocol::Tcp));
    let out = sent.sent.ipv4_to(GATEWAY);
    assert_eq!(sent.offloads, [Offload::PLAIN]);
    assert_eq!(tcp_of(&out).payload, payload(700));
}

#[test]
fn a_dns_query_with_a_partial_checksum_is_redirected_and_completes_valid() {
    let mut lab = lab_with(&DEFAULT, EVERY_OFFLOAD);
    lab.teach(RESOLVER);
    let query = partial(&packets::udp(
        CLIENT.ip,
        5353,
        APPLIANCE_CLIENTS,
        53,
        b"example query",
    ));
    let sent = lab.send_offloaded(CLIENT, &query, checksum_only(IpProtocol::Udp));
    let (out, offload) = one_offloaded_packet(&sent, RESOLVER);
    assert_eq!(offload, checksum_only(IpProtocol::Udp));
    let seen = udp_of(&completed(&out));
    assert_eq!(seen.dst, sock(RESOLVER.ip, 53), "redirected upstream");
    assert_eq!(*seen.src.ip(), ip(APPLIANCE_UPLINK), "masqueraded");
    assert_eq!(seen.payload, b"example query");
}

#[test]
fn a_super_frame_whose_segments_exceed_the_mtu_with_df_is_refused_quoting_its_first_segment() {
    let mut lab = lab_with(&SMALL_UPLINK_MTU, EVERY_OFFLOAD);
    let connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 80));
    let sent = lab.send_offloaded(CLIENT, &client_super_segment(&connection, 30_000), tso(MSS));

    // One segment is 20 + 20 + 1448 = 1488 bytes, over the uplink's 1400: as Linux decides
    // it (skb_gso_validate_network_len), not on the 30,040-byte super-frame.
    let error = sent.sent.ipv4_to(CLIENT);
    let seen = icmp_error_of(&error);
    assert_eq!((seen.icmp_type, seen.code), (3, 4), "fragmentation needed");
    assert_eq!(&error[26..28], &1400u16.to_be_bytes(), "the next-hop MTU");
    assert_eq!(seen.quoted_src, connection.inside);
    assert!(quoted_header_checksum_valid(&error));
    let quote = quote_of(&error);
    let quoted = Ipv4Packet::new_unchecked(&quote[..]);
    assert_eq!(
        quoted.total_len(),
        1488,
        "the quote is the first segment's header"
    );
    assert_eq!(lab.dropped(DropReason::TooBig), 1);
}

#[test]
fn a_super_frame_whose_segments_fit_a_smaller_mtu_passes_as_one_frame() {
    let mut lab = lab_with(&SMALL_UPLINK_MTU, EVERY_OFFLOAD);
    let connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 80));
    let sent = lab.send_offloaded(
        CLIENT,
        &client_super_segment(&connection, 30_000),
        tso(1360),
    );
    let (out, offload) = one_offloaded_packet(&sent, GATEWAY);
    assert_eq!(offload, tso(1360));
    assert_eq!(tcp_of(&completed(&out)).payload, payload(30_000));
}

#[test]
fn a_super_frame_with_df_clear_over_a_smaller_mtu_is_segmented_then_fragmented() {
    let mut lab = lab_with(&SMALL_UPLINK_MTU, EVERY_OFFLOAD);
    let connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 80));
    let mut packet = client_super_segment(&connection, 4000);
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut packet[..]);
        ip.set_dont_frag(false);
        ip.fill_checksum();
    }
    let sent = lab.send_offloaded(CLIENT, &packet, tso(MSS));
    // Three segments of 1488, 1488 and 1144 bytes: the first two in two fragments each,
    // the last whole.
    let [a, b, c, d, last] = &sent.sent.frames[..] else {
        panic!("expected five frames, got {}", lengths(&sent))
    };
    let fragments = Sent {
        frames: vec![a.clone(), b.clone(), c.clone(), d.clone()],
    }
    .each_ipv4_fragment_to(GATEWAY);
    assert!(fragments.iter().all(|f| f.len() <= 1400));
    let mut received = Vec::new();
    for pair in fragments.chunks(2) {
        let segment = reassembled(pair);
        assert!(checksums_valid(&segment), "a segment, reassembled");
        received.extend(tcp_of(&segment).payload);
    }
    let last = Sent {
        frames: vec![last.clone()],
    }
    .ipv4_to(GATEWAY);
    received.extend(tcp_of(&last).payload);
    assert_eq!(received, payload(4000));
}

#[test]
fn a_super_frame_whose_ttl_runs_out_gets_one_time_exceeded() {
    let mut lab = lab_with(&DEFAULT, EVERY_OFFLOAD);
    let connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 80));
    let packet = with_ttl(client_super_segment(&connection, 30_000), 1);
    let sent = lab.send_offloaded(CLIENT, &packet, tso(MSS));
    let error = sent.sent.ipv4_to(CLIENT);
    let seen = icmp_error_of(&error);
    assert_eq!((seen.icmp_type, seen.code), (11, 0), "one time exceeded");
    assert!(quoted_header_checksum_valid(&error));
    let quote = quote_of(&error);
    assert_eq!(Ipv4Packet::new_unchecked(&quote[..]).total_len(), 1488);
    assert_eq!(lab.dropped(DropReason::TtlExceeded), 1);
}

#[test]
fn tcp_tracking_takes_the_whole_super_segment_into_account() {
    let mut lab = lab_with(&DEFAULT, EVERY_OFFLOAD);
    let mut connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 80));
    // The server offered 64,240 bytes in its SYN-ACK: 60,000 fit, and go through.
    let first = client_super_segment(&connection, 60_000);
    one_offloaded_packet(&lab.send_offloaded(CLIENT, &first, tso(MSS)), GATEWAY);
    connection.client_seq += 60_000;

    // The next 60,000 do not fit the window that is left, though their first segment
    // would: the whole super-segment is dropped as out of window.
    let beyond = client_super_segment(&connection, 60_000);
    let sent = lab.send_offloaded(CLIENT, &beyond, tso(MSS));
    assert!(sent.sent.frames.is_empty(), "{}", lengths(&sent));
    assert_eq!(lab.dropped(DropReason::InvalidState), 1);

    // Once the server acknowledges the first super-segment, they fit.
    connection.server_sends(&mut lab, ACK, &[]);
    let sent = lab.send_offloaded(CLIENT, &beyond, tso(MSS));
    one_offloaded_packet(&sent, GATEWAY);
}

#[test]
fn a_super_frame_of_no_connection_opens_nothing() {
    let mut lab = lab_with(&DEFAULT, EVERY_OFFLOAD);
    // Mid-stream data with no state behind it: as a plain ACK would be, it is refused
    // however much data it carries.
    let stray = partial(&segment(
        sock(CLIENT.ip, 40000),
        sock(SERVER, 80),
        1_000,
        1,
        ACK | PSH,
        &payload(30_000),
    ));
    let sent = lab.send_offloaded(CLIENT, &stray, tso(MSS));
    assert!(sent.sent.frames.is_empty(), "{}", lengths(&sent));
    assert_eq!(lab.dropped(DropReason::InvalidState), 1);
    assert_eq!(lab.live_states(), 0);
}

#[test]
fn an_icmp_error_quoting_a_later_segment_of_a_super_frame_is_related() {
    let mut lab = lab_with(&DEFAULT, EVERY_OFFLOAD);
    let connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 80));
    let sent = lab.send_offloaded(CLIENT, &client_super_segment(&connection, 30_000), tso(MSS));
    one_offloaded_packet(&sent, GATEWAY);

    // A router past the uplink could not forward the eleventh segment the NIC cut from it:
    // its quote carries that segment's sequence number, deep inside the super-segment.
    let eleventh = segment(
        connection.outside,
        connection.server,
        connection.client_seq + 10 * u32::from(MSS),
        connection.server_seq,
        ACK,
        &payload(usize::from(MSS)),
    );
    let error = packets::icmp_error(ROUTER, APPLIANCE_UPLINK, 3, 4, &eleventh);
    let arrived = lab.send(GATEWAY, &error).ipv4_to(CLIENT);
    let seen = icmp_error_of(&arrived);
    assert_eq!((seen.icmp_type, seen.code), (3, 4));
    assert_eq!(seen.quoted_src, connection.inside, "the quote de-NATed");
    assert_eq!(seen.quoted_dst, connection.server);

    // A quote past everything the super-frame carried is no packet the appliance sent.
    let beyond = segment(
        connection.outside,
        connection.server,
        connection.client_seq.wrapping_add(1 << 30),
        connection.server_seq,
        ACK,
        &[],
    );
    let error = packets::icmp_error(ROUTER, APPLIANCE_UPLINK, 3, 4, &beyond);
    lab.send(GATEWAY, &error).assert_nothing();
    assert_eq!(lab.dropped(DropReason::InvalidState), 1);
}

#[test]
fn malformed_offload_metadata_is_dropped_with_its_reason() {
    let mut lab = lab_with(&DEFAULT, EVERY_OFFLOAD);
    let connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 80));
    let packet = client_super_segment(&connection, 30_000);
    take_log_lines();
    let cases = [
        (
            "offload-checksum-misplaced",
            Offload {
                partial_checksum: Some(PartialChecksum {
                    start: 40_000,
                    offset: 16,
                }),
                ..tso(MSS)
            },
        ),
        (
            "offload-gso-type-mismatch",
            Offload {
                segmentation: Some(Segmentation {
                    kind: GsoKind::Udp,
                    size: MSS,
                    ecn: false,
                }),
                ..tso(MSS)
            },
        ),
        ("offload-gso-size-zero", tso(0)),
        (
            "offload-gso-type-mismatch",
            Offload {
                segmentation: Some(Segmentation {
                    kind: GsoKind::Unsupported(4),
                    size: MSS,
                    ecn: false,
                }),
                ..tso(MSS)
            },
        ),
        (
            "offload-gso-without-checksum",
            Offload {
                partial_checksum: None,
                ..tso(MSS)
            },
        ),
    ];
    for (index, (reason, offload)) in cases.into_iter().enumerate() {
        let sent = lab.send_offloaded(CLIENT, &packet, offload);
        assert!(sent.sent.frames.is_empty(), "{reason}: nothing leaves");
        assert_eq!(lab.dropped(DropReason::Malformed), index as u64 + 1);
        let lines = take_log_lines();
        assert!(
            lines.iter().any(|line| line.contains(reason)),
            "{reason} in the drop line: {lines:?}"
        );
    }
    // An ARP frame with a partial checksum is no better.
    let arp = lab.arp_request(CLIENT, APPLIANCE_CLIENTS).frames.len();
    assert_eq!(arp, 1, "a plain ARP request is answered");
}

#[test]
fn a_udp_super_frame_is_fragmented_in_software_for_a_nic_without_fragmentation_offload() {
    let mut lab = lab_with(&DEFAULT, NicOffloads::default());
    let mut datagram = partial(&packets::udp(CLIENT.ip, 5000, SERVER, 9000, &payload(4000)));
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut datagram[..]);
        ip.set_dont_frag(false);
        ip.fill_checksum();
    }
    let ufo = Offload {
        partial_checksum: checksum_only(IpProtocol::Udp).partial_checksum,
        segmentation: Some(Segmentation {
            kind: GsoKind::Udp,
            size: 1480,
            ecn: false,
        }),
    };
    let sent = lab.send_offloaded(CLIENT, &datagram, ufo);
    let fragments = sent.sent.each_ipv4_fragment_to(GATEWAY);
    assert_eq!(fragments.len(), 3);
    let whole = reassembled(&fragments);
    assert!(checksums_valid(&whole), "the datagram, reassembled");
    assert_eq!(udp_of(&whole).payload, payload(4000));

    // A NIC with fragmentation offload takes it whole.
    let mut lab = lab_with(&DEFAULT, EVERY_OFFLOAD);
    let sent = lab.send_offloaded(CLIENT, &datagram, ufo);
    let (out, offload) = one_offloaded_packet(&sent, GATEWAY);
    assert_eq!(offload, ufo);
    assert_eq!(udp_of(&completed(&out)).payload, payload(4000));
}

#[test]
fn a_super_frame_waiting_for_arp_waits_as_plain_segments() {
    let mut lab = lab_with(&DEFAULT, EVERY_OFFLOAD);
    let connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 80));
    // The gateway's entry runs out; the connection's state does not.
    lab.advance(Duration::from_secs(61));
    let sent = lab.send_offloaded(CLIENT, &client_super_segment(&connection, 5000), tso(MSS));
    sent.sent.assert_arp_request(UPLINK, GATEWAY.ip);
    let segments = lab.arp_reply(GATEWAY).each_ipv4_to(GATEWAY);
    assert_eq!(
        segments.len(),
        4,
        "all four segments waited, and leave checked"
    );
    let received: Vec<u8> = segments.iter().flat_map(|s| tcp_of(s).payload).collect();
    assert_eq!(received, payload(5000));
}

/// The plain packets a frame the appliance sent stands for on the wire once its NIC has
/// done what its offload metadata asks: segments of a super-frame, a completed checksum.
fn on_the_wire(frame: &[u8], offload: &Offload) -> Vec<Vec<u8>> {
    let packet = frame[14..].to_vec();
    match offload.segmentation {
        Some(segmentation) if segmentation.kind == GsoKind::TcpV4 => {
            let mut segments = Vec::new();
            dataplane::segmenter::Segmenter::new(&packet, segmentation.size)
                .expect("a super-frame the segmenter takes")
                .each(|segment| segments.push(segment.to_vec()));
            segments
        }
        _ if offload.partial_checksum.is_some() => vec![completed(&packet)],
        _ => vec![packet],
    }
}

fn nic_offloads() -> impl Strategy<Value = NicOffloads> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(checksum, tcp4_segmentation, ecn, udp_fragmentation)| NicOffloads {
            checksum,
            tcp4_segmentation,
            tcp6_segmentation: false,
            ecn,
            udp_fragmentation,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever the egress takes, a super-frame reaches the server as checked segments
    /// that fit the link and carry the payload whole, in order.
    #[test]
    fn a_super_frame_arrives_whole_whatever_the_egress_takes(
        len in 1usize..60_000,
        size in 500u16..1461,
        offloads in nic_offloads(),
    ) {
        let mut lab = lab_with(&DEFAULT, offloads);
        let connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 80));
        let sent = lab.send_offloaded(CLIENT, &client_super_segment(&connection, len), tso(size));
        let mut received = Vec::new();
        for ((nic, frame), offload) in sent.sent.frames.iter().zip(&sent.offloads) {
            prop_assert_eq!(*nic, UPLINK);
            for packet in on_the_wire(frame, offload) {
                prop_assert!(checksums_valid(&packet));
                prop_assert!(packet.len() <= 1500);
                let seen = tcp_of(&packet);
                prop_assert_eq!(seen.src, connection.outside);
                prop_assert_eq!(seen.seq, connection.client_seq + received.len() as u32);
                received.extend(seen.payload);
            }
        }
        prop_assert_eq!(received, payload(len));
    }

    /// Any offload metadata, on real and mutated frames: never a panic, every frame
    /// counted, and nothing leaves with metadata that does not hold for its packet.
    #[test]
    fn any_offload_metadata_on_any_frame_never_panics(
        frames in proptest::collection::vec(
            (any::<[u8; 12]>(), any::<bool>(), proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4), any::<bool>()),
            1..12,
        ),
        offloads in nic_offloads(),
    ) {
        let mut lab = lab_with(&DEFAULT, offloads);
        let connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 80));
        let before = lab.appliance.counters(CLIENTS).map_or(0, |c| c.rx);
        let count = frames.len() as u64;
        for (header, super_frame, edits, fix) in frames {
            let packet = if super_frame {
                client_super_segment(&connection, 9000)
            } else {
                packets::udp(CLIENT.ip, 5353, APPLIANCE_CLIENTS, 53, b"query")
            };
            let mut frame = packets::ethernet(CLIENT.mac, appliance_mac(CLIENTS), &packet);
            for (at, byte) in edits {
                let at = 14 + at % (frame.len() - 14);
                frame[at] = byte;
            }
            let header_len = usize::from(frame[14] & 0x0f) * 4;
            if fix && header_len >= 20 && 14 + header_len <= frame.len() {
                let mut ip = Ipv4Packet::new_unchecked(&mut frame[14..]);
                ip.fill_checksum();
            }
            let offload = Offload::from_virtio_net_hdr(&header);
            let sent = lab.receive_offloaded(CLIENTS, frame, offload);
            for ((_, out), offload) in sent.sent.frames.iter().zip(&sent.offloads) {
                if !offload.is_plain() {
                    let ip = dataplane::packet::IpSummary::parse(&out[14..]);
                    prop_assert!(ip.is_ok_and(|ip| offload.check(&ip).is_ok()));
                }
            }
        }
        let after = lab.appliance.counters(CLIENTS).map_or(0, |c| c.rx);
        prop_assert_eq!(after - before, count);
    }
}
