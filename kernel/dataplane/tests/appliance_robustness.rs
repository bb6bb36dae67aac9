//! Hostile and broken input: malformed frames are dropped and counted, never forwarded,
//! and random bytes never panic the appliance. And the counters and the stats line say
//! what happened.

mod appliance_common;

use appliance_common::*;
use dataplane::appliance::{ApplianceOptions, DeviceLosses, NicCounters};
use dataplane::drops::DropReason;
use dataplane::packet::tcp_flags::{FIN, PSH, SYN};
use dataplane::testutil::{crafted, packets};
use proptest::prelude::*;
use smoltcp::time::Duration;
use smoltcp::wire::{EthernetAddress, EthernetProtocol, Ipv4Packet, UdpPacket};

fn default_lab() -> Lab {
    let mut lab = Lab::new(&DEFAULT);
    lab.attach(CLIENT);
    lab.teach(GATEWAY);
    lab
}

/// Asserts that each of `frames` from the client is dropped as malformed, and logged.
fn assert_malformed(frames: Vec<Vec<u8>>, why: &str) {
    let mut lab = default_lab();
    take_log_lines();
    let count = frames.len() as u64;
    for frame in frames {
        lab.receive(CLIENTS, frame).assert_nothing();
    }
    assert_eq!(lab.dropped(DropReason::Malformed), count, "{why}");
    assert_eq!(lab.appliance.drop_counters().total(), count, "{why}");
    assert_eq!(lab.live_states(), 0);
    let logged = take_log_lines();
    assert!(
        logged.iter().all(|l| l.starts_with("drop nic1 malformed")),
        "{why}: {logged:?}"
    );
}

fn client_frame(packet: &[u8]) -> Vec<u8> {
    packets::ethernet(CLIENT.mac, appliance_mac(CLIENTS), packet)
}

#[test]
fn bad_ipv4_header_checksum_is_dropped_as_malformed() {
    let mut packet = packets::tcp_syn(CLIENT.ip, 40000, SERVER, 443);
    packet[10] ^= 0x01;
    assert_malformed(vec![client_frame(&packet)], "bad checksum");
}

#[test]
fn truncated_frames_are_dropped_as_malformed() {
    let syn = client_frame(&packets::tcp_syn(CLIENT.ip, 40000, SERVER, 443));
    let cut = |len: usize| syn[..len].to_vec();
    // Inside the Ethernet header, inside the IPv4 header, inside the TCP header, short of
    // the IPv4 total length.
    assert_malformed(
        vec![cut(6), cut(14 + 12), cut(14 + 20 + 10), cut(syn.len() - 1)],
        "truncated IPv4",
    );

    let mut arp = vec![0u8; dataplane::arp::ARP_FRAME_LEN];
    let request = dataplane::arp::request(CLIENT.mac, ip(CLIENT.ip), ip(APPLIANCE_CLIENTS));
    dataplane::arp::emit(&mut arp, EthernetAddress::BROADCAST, &request);
    let mut lab = default_lab();
    lab.receive(CLIENTS, arp[..30].to_vec()).assert_nothing();
    assert_eq!(lab.dropped(DropReason::Malformed), 1, "truncated ARP");
}

#[test]
fn bad_lengths_and_versions_are_dropped_as_malformed() {
    let syn = packets::tcp_syn(CLIENT.ip, 40000, SERVER, 443);
    let refreshed = |edit: &dyn Fn(&mut Ipv4Packet<&mut [u8]>)| {
        let mut packet = syn.clone();
        packet.resize(80, 0); // Ethernet padding, so a long header length stays in the buffer.
        let mut view = Ipv4Packet::new_unchecked(&mut packet[..]);
        edit(&mut view);
        view.fill_checksum();
        client_frame(&packet)
    };
    assert_malformed(
        vec![
            refreshed(&|p| p.set_version(6)),
            refreshed(&|p| p.set_header_len(16)),
            refreshed(&|p| p.set_header_len(60)),
            refreshed(&|p| p.set_total_len(19)),
            refreshed(&|p| p.set_total_len(2000)),
        ],
        "bad version or lengths",
    );
}

/// Found by the fuzz target: a whole UDP datagram whose length field claimed more than the
/// packet carried was forwarded (with a checksum no receiver could verify).
#[test]
fn udp_length_field_that_does_not_fit_the_packet_is_dropped_as_malformed() {
    let datagram = packets::udp(CLIENT.ip, 40000, SERVER, 53, b"query");
    let claiming = |len: u16| {
        let mut packet = datagram.clone();
        let mut ip = Ipv4Packet::new_unchecked(&mut packet[..]);
        UdpPacket::new_unchecked(ip.payload_mut()).set_len(len);
        client_frame(&packet)
    };
    let cut = crafted::fragment(&datagram, 0, 8, 0, false);
    assert_malformed(
        vec![claiming(64), claiming(7), client_frame(&cut)],
        "UDP length field beyond the packet, or below the header",
    );
    // A first fragment's length field counts the whole datagram: it goes on.
    let mut lab = default_lab();
    let first = crafted::fragment(&datagram, 0, 8, 0, true);
    lab.send(CLIENT, &first).ipv4_fragment_to(GATEWAY);
}

#[test]
fn impossible_tcp_flags_are_dropped_as_malformed() {
    let mut packet = packets::tcp_syn(CLIENT.ip, 40000, SERVER, 443);
    packets::set_tcp_flags(&mut packet, SYN | FIN);
    let mut no_flags = packets::tcp_syn(CLIENT.ip, 40001, SERVER, 443);
    packets::set_tcp_flags(&mut no_flags, 0);
    let mut push_without_ack = packets::tcp_syn(CLIENT.ip, 40002, SERVER, 443);
    packets::set_tcp_flags(&mut push_without_ack, PSH);
    assert_malformed(
        [packet, no_flags, push_without_ack]
            .iter()
            .map(|p| client_frame(p))
            .collect(),
        "impossible TCP flags",
    );
}

#[test]
fn frames_for_another_mac_or_of_another_ethertype_are_dropped() {
    let mut lab = default_lab();
    let syn = packets::tcp_syn(CLIENT.ip, 40000, SERVER, 443);
    lab.receive(CLIENTS, packets::ethernet(CLIENT.mac, CLIENT2.mac, &syn))
        .assert_nothing();
    // An ethertype the appliance does not carry (IEEE local experimental).
    let mut other = client_frame(&syn);
    other[12..14].copy_from_slice(&u16::from(EthernetProtocol::Unknown(0x88b5)).to_be_bytes());
    lab.receive(CLIENTS, other).assert_nothing();
    let counters = lab.appliance.drop_counters();
    assert_eq!(
        (
            counters.get(DropReason::NotForUs),
            counters.get(DropReason::UnsupportedEtherType)
        ),
        (1, 1)
    );
}

#[test]
fn ethernet_padding_is_not_forwarded() {
    let mut lab = default_lab();
    let query = packets::udp(CLIENT.ip, 5000, SERVER, 53, b"q");
    let mut frame = client_frame(&query);
    frame.resize(60, 0xee);
    let left = lab.receive(CLIENTS, frame).ipv4_to(GATEWAY);
    assert_eq!(left.len(), query.len());
    assert_eq!(udp_of(&left).payload, b"q");
}

#[test]
fn stats_count_every_frame_in_and_out_per_nic_and_every_drop_by_reason() {
    let mut lab = default_lab(); // nic1: ARP request in, reply out; nic0: ARP reply in.
    let mut connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
    connection.server_sends(&mut lab, PSH | dataplane::packet::tcp_flags::ACK, b"data");
    let ping = packets::icmp_echo(CLIENT.ip, APPLIANCE_CLIENTS, true, 1, 1, b"ping");
    lab.send(CLIENT, &ping).ipv4_to(CLIENT);
    lab.send(GATEWAY, &packets::tcp_syn(REMOTE, 40000, CLIENT.ip, 22))
        .assert_nothing();
    lab.send(
        CLIENT,
        &packets::tcp_syn([192, 168, 7, 7], 40000, SERVER, 443),
    )
    .assert_nothing();

    let stats = lab.appliance.stats();
    assert_eq!(
        stats.nics,
        vec![
            NicCounters {
                rx: 1 + 2 + 1,
                tx: 2,
                dropped: 1,
                device: DeviceLosses::default(),
            },
            NicCounters {
                rx: 1 + 2 + 1 + 1,
                tx: 1 + 2 + 1,
                dropped: 1,
                device: DeviceLosses::default(),
            },
        ]
    );
    assert_eq!(stats.drops.total(), 2);
    assert_eq!(
        stats.to_string(),
        "nic0 rx 4 tx 2 drop 1, nic1 rx 5 tx 4 drop 1, \
         states 1/4096 (tcp 1 udp 0 icmp 0 other 0), nat ports 1, drops spoofed 1 policy 1"
    );
    // What a NIC's driver lost below the data plane shows on its NIC's part of the line,
    // the non-zero counters only.
    lab.appliance.set_device_losses(
        1,
        DeviceLosses {
            tx_ring_full: 3,
            tx_too_big: 0,
            rx_dropped: 2,
        },
    );
    assert_eq!(
        lab.appliance.stats().to_string(),
        "nic0 rx 4 tx 2 drop 1, \
         nic1 rx 5 tx 4 drop 1 (driver lost: tx ring full 3, rx dropped 2), \
         states 1/4096 (tcp 1 udp 0 icmp 0 other 0), nat ports 1, drops spoofed 1 policy 1"
    );
}

#[test]
fn stats_line_is_printed_when_counters_change_at_most_every_few_seconds() {
    let mut lab = default_lab();
    lab.send(CLIENT, &packets::udp(CLIENT.ip, 5000, SERVER, 53, b"q"))
        .ipv4_to(GATEWAY);
    take_log_lines();
    lab.poll();
    // The summary line (the counter lines that follow it: appliance_counters.rs).
    let stats_lines = || {
        take_log_lines()
            .into_iter()
            .filter(|l| l.starts_with("stats nic"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        stats_lines(),
        vec![format!("stats {}", lab.appliance.stats())]
    );

    lab.send(CLIENT, &packets::udp(CLIENT.ip, 5001, SERVER, 53, b"q"))
        .ipv4_to(GATEWAY);
    lab.advance(Duration::from_secs(1));
    lab.poll();
    assert_eq!(stats_lines(), Vec::<String>::new(), "changed, but too soon");
    lab.advance(Duration::from_secs(5));
    lab.poll();
    assert_eq!(
        stats_lines(),
        vec![format!("stats {}", lab.appliance.stats())]
    );
    lab.advance(Duration::from_secs(6));
    lab.poll();
    assert_eq!(stats_lines(), Vec::<String>::new(), "unchanged");
}

#[test]
fn a_flood_of_drops_is_logged_at_a_bounded_rate_and_the_rest_counted() {
    let mut lab = default_lab();
    take_log_lines();
    let shares = dataplane::drops::LOG_SHARES;
    let drop_lines = || {
        take_log_lines()
            .into_iter()
            .filter(|l| l.starts_with("drop "))
            .count()
    };
    // One address knocks 200 times: its share of lines.
    for port in 0..200 {
        lab.send(
            GATEWAY,
            &packets::tcp_syn(REMOTE, 1024 + port, CLIENT.ip, 22),
        )
        .assert_nothing();
    }
    assert_eq!(drop_lines(), shares.per_source.burst as usize);
    // 200 more addresses knock once each: the uplink's remote side's share, together.
    for n in 0..200u16 {
        let source = [198, 18, (n >> 8) as u8, n as u8];
        lab.send(GATEWAY, &packets::tcp_syn(source, 1024, CLIENT.ip, 22))
            .assert_nothing();
    }
    let remote_side = shares.per_remote_side.burst as usize;
    assert_eq!(drop_lines(), remote_side - shares.per_source.burst as usize);
    let stats = lab.appliance.stats();
    assert_eq!(stats.drops.get(DropReason::Policy), 400);
    assert_eq!(stats.log_lines_suppressed, 400 - remote_side as u64);
    assert!(
        stats.to_string().ends_with(", log lines suppressed 380"),
        "{stats}"
    );
}

#[test]
fn a_flood_of_rejected_packets_gets_a_bounded_number_of_replies() {
    let mut lab = Lab::new(&REJECTING);
    lab.attach(CLIENT);
    let replies: usize = (0..200)
        .map(|port| {
            lab.send(
                CLIENT,
                &packets::tcp_syn(CLIENT.ip, 1024 + port, SERVER, 25),
            )
            .frames
            .len()
        })
        .sum();
    let share = dataplane::icmp_error::REPLY_SHARES.per_source.burst;
    assert_eq!(replies, share as usize);
    assert_eq!(
        lab.appliance.stats().errors_rate_limited,
        200 - share as u64
    );
}

// ---------------------------------------------------------------------------------------
// Random input.

/// Recomputes the IPv4 header checksum of an Ethernet frame, when it has a header to
/// checksum, so that random bytes get past the first check.
fn refresh_ipv4_checksum(frame: &mut [u8]) {
    if frame.len() < 14 + 20 {
        return;
    }
    let header_len = ((frame[14] & 0x0f) as usize) * 4;
    if header_len >= 20 && 14 + header_len <= frame.len() {
        let mut ip = Ipv4Packet::new_unchecked(&mut frame[14..]);
        ip.fill_checksum();
    }
}

/// Real frames of every kind the appliance handles, for mutation.
fn real_frames() -> Vec<(u8, Vec<u8>)> {
    let from_client = |p: &[u8]| (CLIENTS, client_frame(p));
    let from_gateway = |p: &[u8]| {
        (
            UPLINK,
            packets::ethernet(GATEWAY.mac, appliance_mac(UPLINK), p),
        )
    };
    let syn = packets::tcp_syn(CLIENT.ip, 40000, SERVER, 443);
    let query = packets::udp(CLIENT.ip, 5353, APPLIANCE_CLIENTS, 53, b"query");
    let datagram = packets::udp(CLIENT.ip, 7000, SERVER, 9000, &[0x55; 64]);
    let left = packets::udp(APPLIANCE_UPLINK, 7000, SERVER, 9000, b"x");
    let mut arp = vec![0u8; dataplane::arp::ARP_FRAME_LEN];
    let request = dataplane::arp::request(CLIENT.mac, ip(CLIENT.ip), ip(SERVER));
    dataplane::arp::emit(&mut arp, EthernetAddress::BROADCAST, &request);
    let mut frames = vec![
        from_client(&syn),
        from_client(&query),
        from_client(&packets::icmp_echo(
            CLIENT.ip,
            APPLIANCE_CLIENTS,
            true,
            1,
            1,
            b"ping",
        )),
        from_client(&packets::icmp_echo(CLIENT.ip, SERVER, true, 1, 1, b"ping")),
        from_gateway(&segment(
            sock(SERVER, 443),
            sock(APPLIANCE_UPLINK, 40000),
            5000,
            1001,
            SYN | 0x10,
            &[],
        )),
        from_gateway(&packets::icmp_error(ROUTER, APPLIANCE_UPLINK, 11, 0, &left)),
        from_gateway(&packets::udp(
            SERVER,
            9000,
            APPLIANCE_UPLINK,
            7000,
            b"reply",
        )),
        (CLIENTS, arp),
    ];
    frames.extend(fragments(&datagram, 32).iter().map(|f| from_client(f)));
    frames
}

fn frame_strategy() -> impl Strategy<Value = (u8, Vec<u8>)> {
    let random = (
        0u8..3,
        0u8..4,
        0u8..3,
        proptest::collection::vec(any::<u8>(), 0..100),
        any::<bool>(),
    )
        .prop_map(|(nic, dst, ethertype, payload, fix)| {
            let dst = match dst {
                0 => appliance_mac(nic),
                1 => EthernetAddress::BROADCAST,
                2 => EthernetAddress([0x33, 0x33, 0, 0, 0, 1]),
                _ => CLIENT2.mac,
            };
            let ethertype = [0x0800u16, 0x0806, 0x86dd][ethertype as usize];
            let mut frame = packets::ethernet(CLIENT.mac, dst, &payload);
            frame[12..14].copy_from_slice(&ethertype.to_be_bytes());
            if fix {
                refresh_ipv4_checksum(&mut frame);
            }
            (nic, frame)
        });
    let mutated = (
        0..real_frames().len(),
        proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        any::<Option<usize>>(),
        any::<bool>(),
    )
        .prop_map(|(which, edits, cut, fix)| {
            let (nic, mut frame) = real_frames().swap_remove(which);
            for (at, byte) in edits {
                let at = 14 + at % (frame.len() - 14);
                frame[at] = byte;
            }
            if let Some(cut) = cut {
                frame.truncate(cut % (frame.len() + 1));
            }
            if fix {
                refresh_ipv4_checksum(&mut frame);
            }
            (nic, frame)
        });
    let bytes = (0u8..4, proptest::collection::vec(any::<u8>(), 0..80));
    prop_oneof![random, mutated, bytes]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_and_mutated_frames_never_panic_and_are_all_counted(
        frames in proptest::collection::vec(frame_strategy(), 1..24),
    ) {
        let mut lab = Lab::with_options(&DEFAULT, ApplianceOptions { state_capacity: 8, ..ApplianceOptions::default() });
        lab.attach(CLIENT);
        lab.teach(GATEWAY);
        let _ = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
        let before: u64 = (0..2).filter_map(|nic| lab.appliance.counters(nic)).map(|c| c.rx).sum();
        let mut delivered = 0;
        for (nic, frame) in frames {
            delivered += u64::from(nic < 2);
            lab.receive(nic, frame);
            lab.advance(Duration::from_millis(700));
            lab.poll();
        }
        let after: u64 = (0..2).filter_map(|nic| lab.appliance.counters(nic)).map(|c| c.rx).sum();
        prop_assert_eq!(after - before, delivered, "every frame on an existing NIC is counted");
    }
}
