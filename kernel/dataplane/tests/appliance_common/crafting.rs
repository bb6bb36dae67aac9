//! Shaping test packets: explicit TCP segments, TTLs, fragments and their reassembly.

use std::net::SocketAddrV4;

use dataplane::testutil::packets;
use smoltcp::wire::Ipv4Packet;

/// A TCP segment with explicit numbers.
pub fn segment(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    packets::tcp(
        src.ip().octets(),
        src.port(),
        dst.ip().octets(),
        dst.port(),
        seq,
        ack,
        flags,
        payload,
    )
}

/// The packet with its TTL set to `ttl`.
pub fn with_ttl(mut packet: Vec<u8>, ttl: u8) -> Vec<u8> {
    packets::set_ttl(&mut packet, ttl);
    packet
}

/// `packet` (a whole datagram) cut into fragments carrying `chunk` bytes of its payload
/// each (`chunk` a multiple of 8), as a sender would emit them.
pub fn fragments(packet: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    assert_eq!(chunk % 8, 0, "fragments carry multiples of 8 bytes");
    let header_len = Ipv4Packet::new_checked(packet)
        .expect("an IPv4 packet")
        .header_len() as usize;
    let payload = &packet[header_len..];
    let pieces = payload.chunks(chunk).count();
    payload
        .chunks(chunk)
        .enumerate()
        .map(|(i, piece)| {
            let mut fragment = packet[..header_len].to_vec();
            fragment.extend_from_slice(piece);
            packets::set_fragment(&mut fragment, i + 1 < pieces, (i * chunk) as u16);
            fragment
        })
        .collect()
}

/// The datagram `fragments` (in order, none missing) make up, reassembled as the receiving
/// host would.
pub fn reassembled(fragments: &[Vec<u8>]) -> Vec<u8> {
    let header_len = Ipv4Packet::new_checked(&fragments[0][..])
        .expect("an IPv4 fragment")
        .header_len() as usize;
    let mut whole = fragments[0][..header_len].to_vec();
    for (i, fragment) in fragments.iter().enumerate() {
        let ip = Ipv4Packet::new_checked(&fragment[..]).expect("an IPv4 fragment");
        assert_eq!(
            ip.frag_offset() as usize,
            whole.len() - header_len,
            "fragment {i} in place"
        );
        assert_eq!(
            ip.more_frags(),
            i + 1 < fragments.len(),
            "fragment {i}'s more-fragments flag"
        );
        whole.extend_from_slice(ip.payload());
    }
    let len = whole.len() as u16;
    let mut ip = Ipv4Packet::new_unchecked(&mut whole[..]);
    ip.set_total_len(len);
    ip.set_frag_offset(0);
    ip.fill_checksum();
    whole
}
