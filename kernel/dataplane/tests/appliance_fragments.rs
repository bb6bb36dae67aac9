//! Fragments as hostile senders cut them: datagrams reaching past 64 KiB (whose pieces would
//! wrap into a forged first fragment when cut again), fragments overlapping their first
//! fragment, misaligned fragments, one client's flood of first fragments against another
//! client's datagrams, and fragmented ICMP errors, every fragment translated alike.

mod appliance_common;

use appliance_common::*;
use dataplane::drops::DropReason;
use dataplane::fragment::MAX_DATAGRAMS;
use dataplane::packet::tcp_flags::SYN;
use dataplane::testutil::packets::{self, checksums_valid};
use smoltcp::wire::{IpProtocol, Ipv4Packet};

/// `packet` made a fragment of datagram `ident`: more-fragments `more`, at byte `offset`.
fn fragment_of(mut packet: Vec<u8>, ident: u16, more: bool, offset: u16) -> Vec<u8> {
    Ipv4Packet::new_unchecked(&mut packet[..]).set_ident(ident);
    packets::set_fragment(&mut packet, more, offset);
    packet
}

/// The first fragment of datagram `ident`: a SYN from the client to the server's HTTPS
/// port, with 4 bytes of data (32 bytes of TCP: header, options, data).
fn https_syn_first_fragment(ident: u16) -> Vec<u8> {
    let syn = packets::tcp((CLIENT.ip, 40000), (SERVER, 443), (1000, 0, SYN), &[0; 4]);
    fragment_of(syn, ident, true, 0)
}

/// A later fragment of the client's datagram `ident` to the server, at `offset`.
fn later_fragment(ident: u16, more: bool, offset: u16, payload: &[u8]) -> Vec<u8> {
    let packet = packets::ipv4(CLIENT.ip, SERVER, IpProtocol::Tcp.into(), payload);
    fragment_of(packet, ident, more, offset)
}

/// The fragment offset and more-fragments flag of each packet.
fn offsets(packets: &[Vec<u8>]) -> Vec<(u16, bool)> {
    packets
        .iter()
        .map(|p| {
            let ip = Ipv4Packet::new_checked(&p[..]).expect("an IPv4 packet");
            (ip.frag_offset(), ip.more_frags())
        })
        .collect()
}

#[test]
fn later_fragment_reaching_past_64_kib_is_dropped_and_never_cut_into_a_first_fragment() {
    let mut lab = Lab::with_clients(&HTTPS_ONLY_SMALL_MTU);
    lab.send(CLIENT, &https_syn_first_fragment(0x4242))
        .ipv4_fragment_to(GATEWAY);

    // 1,480 bytes at offset 64,160 end at byte 65,640: no datagram is that long. Cut again
    // for the 1,400-byte uplink, its second piece would start at 65,536 — offset 0 in 16
    // bits — and carry the SYN to port 25 hidden at byte 1,376 as a first fragment.
    let smtp_syn = packets::tcp_syn(CLIENT.ip, 40000, SERVER, 25);
    let mut payload = vec![0u8; 1480];
    payload[1376..1376 + smtp_syn.len() - 20].copy_from_slice(&smtp_syn[20..]);
    take_log_lines();
    let sent = lab.send(CLIENT, &later_fragment(0x4242, true, 64160, &payload));
    let leaving: Vec<Vec<u8>> = sent.frames.iter().map(|(_, f)| f[14..].to_vec()).collect();
    assert!(
        offsets(&leaving).iter().all(|&(offset, _)| offset != 0),
        "a piece left as a first fragment: {:?}",
        offsets(&leaving)
    );
    sent.assert_nothing();
    assert_eq!(lab.dropped(DropReason::Malformed), 1);
    assert_eq!(
        take_log_lines(),
        ["drop nic1 malformed (datagram-too-long)"],
        "the drop is logged"
    );

    // A later fragment within bounds is still cut for the uplink, every piece at its own
    // offset past the first fragment's.
    let sent = lab.send(CLIENT, &later_fragment(0x4242, true, 32, &[7; 1480]));
    let pieces = sent.each_ipv4_fragment_to(GATEWAY);
    assert_eq!(offsets(&pieces), [(32, true), (32 + 1376, true)]);
}

#[test]
fn later_fragment_overlapping_its_first_fragment_is_dropped_with_the_rest_of_its_datagram() {
    let mut lab = Lab::with_clients(&HTTPS_ONLY_SMALL_MTU);
    // RFC 1858 / RFC 3128: bytes 16.. of the TCP header (checksum, urgent pointer,
    // options) and the data the first fragment carried must not be rewritten by a later
    // fragment; offset 8 (the flags) is refused by the parser already.
    for (ident, offset) in [(1, 16), (2, 24)] {
        lab.send(CLIENT, &https_syn_first_fragment(ident))
            .ipv4_fragment_to(GATEWAY);
        take_log_lines();
        lab.send(CLIENT, &later_fragment(ident, true, offset, &[0xff; 16]))
            .assert_nothing();
        assert_eq!(
            take_log_lines(),
            [format!(
                "drop nic1 malformed (fragment-overlap) proto 6 10.137.1.10 -> {} fragment",
                ip(SERVER)
            )]
        );
        // Its datagram is discarded: the fragments after the overlap are dropped too.
        lab.send(CLIENT, &later_fragment(ident, false, 32, &[1; 8]))
            .assert_nothing();
    }
    assert_eq!(lab.dropped(DropReason::Malformed), 2);
    assert_eq!(lab.dropped(DropReason::OrphanFragment), 2);

    // Right after the first fragment's bytes, a later fragment follows.
    lab.send(CLIENT, &https_syn_first_fragment(3))
        .ipv4_fragment_to(GATEWAY);
    lab.send(CLIENT, &later_fragment(3, false, 32, &[1; 8]))
        .ipv4_fragment_to(GATEWAY);
}

#[test]
fn fragment_with_more_to_come_that_is_not_a_multiple_of_eight_bytes_is_malformed() {
    let mut lab = Lab::with_clients(&HTTPS_ONLY_SMALL_MTU);
    lab.send(CLIENT, &https_syn_first_fragment(9))
        .ipv4_fragment_to(GATEWAY);
    take_log_lines();
    lab.send(CLIENT, &later_fragment(9, true, 32, &[1; 100]))
        .assert_nothing();
    assert_eq!(lab.dropped(DropReason::Malformed), 1);
    assert_eq!(
        take_log_lines(),
        ["drop nic1 malformed (fragment-misaligned)"]
    );
    // The last fragment may end anywhere.
    lab.send(CLIENT, &later_fragment(9, false, 32, &[1; 100]))
        .ipv4_fragment_to(GATEWAY);
}

/// `packet` with identification `ident`, cut into fragments of `chunk` bytes.
fn datagram_fragments(mut packet: Vec<u8>, ident: u16, chunk: usize) -> Vec<Vec<u8>> {
    Ipv4Packet::new_unchecked(&mut packet[..]).set_ident(ident);
    packets::fragments(&packet, chunk)
}

#[test]
fn one_clients_flood_of_first_fragments_does_not_evict_another_clients_datagram() {
    let mut lab = Lab::with_clients(&DEFAULT);
    let quiet = datagram_fragments(
        packets::udp(CLIENT2.ip, 6000, SERVER, 9000, &[0x11; 1600]),
        77,
        800,
    );
    lab.send(CLIENT2, &quiet[0]).ipv4_fragment_to(GATEWAY);

    // CLIENT starts more datagrams than the table holds, and finishes none.
    let noisy = |ident: u16| {
        datagram_fragments(
            packets::udp(CLIENT.ip, 7000, SERVER, 9000, &[0x22; 1600]),
            ident,
            800,
        )
    };
    let flood = MAX_DATAGRAMS as u16 + 10;
    for ident in 0..flood {
        lab.send(CLIENT, &noisy(ident)[0]).ipv4_fragment_to(GATEWAY);
    }

    // CLIENT2's datagram is still in flight: its rest follows.
    for piece in &quiet[1..] {
        lab.send(CLIENT2, piece).ipv4_fragment_to(GATEWAY);
    }
    // The flooder paid with its own oldest datagrams, and keeps its newest.
    lab.send(CLIENT, &noisy(0)[1]).assert_nothing();
    assert_eq!(lab.dropped(DropReason::OrphanFragment), 1);
    lab.send(CLIENT, &noisy(flood - 1)[1])
        .ipv4_fragment_to(GATEWAY);
}

#[test]
fn fragmented_icmp_error_from_a_router_reaches_the_client_with_every_fragment_alike() {
    let mut lab = Lab::with_clients(&DEFAULT);
    let probe = packets::udp(CLIENT.ip, 5000, SERVER, 33434, &[0x42; 1000]);
    let left = lab.send(CLIENT, &probe).ipv4_to(GATEWAY);

    // A router quotes the whole datagram in its time-exceeded, and the error comes in
    // fragments: the first holds the quoted headers, the later ones the rest of the quote.
    let error = packets::icmp(
        ROUTER,
        APPLIANCE_UPLINK,
        (11, 0),
        [0; 4],
        &with_ttl(left, 1),
    );
    let pieces = fragments(&error, 512);
    assert_eq!(pieces.len(), 3);
    let arrived: Vec<Vec<u8>> = pieces
        .iter()
        .map(|piece| lab.send(GATEWAY, piece).ipv4_fragment_to(CLIENT))
        .collect();
    for fragment in &arrived {
        let header = ipv4_of(fragment);
        assert_eq!(
            (header.src, header.dst, header.ttl),
            (ip(ROUTER), ip(CLIENT.ip), 63),
            "every fragment from the router to the client"
        );
    }
    let whole = reassembled(&arrived);
    assert!(checksums_valid(&whole), "the reassembled error's checksums");
    assert_eq!(
        icmp_error_of(&whole),
        IcmpErrorSeen {
            src: ip(ROUTER),
            dst: ip(CLIENT.ip),
            icmp_type: 11,
            code: 0,
            quoted_src: sock(CLIENT.ip, 5000),
            quoted_dst: sock(SERVER, 33434),
            quoted_protocol: IpProtocol::Udp,
        }
    );
}
