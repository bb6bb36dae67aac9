//! Short builders of the packets tests use most — a TCP segment, a SYN, a UDP datagram, an
//! ICMP echo or error, any ICMP message, any IPv4 or IPv6 payload — and small edits (TTL,
//! fragment flags, TCP flags), on top of [`super::datagram`]'s owned packets.

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Message, Icmpv4Packet,
    IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv6Address, Ipv6Packet, Ipv6Repr, TcpPacket,
    UdpPacket, IPV4_HEADER_LEN,
};

use super::datagram::{
    IcmpMessage, Ipv4Datagram, Ipv4Header, TcpFlags, TcpSegment, Transport, UdpDatagram,
};
use crate::ip_options;
use crate::packet::tcp_flags;
use crate::sctp::{self, SctpPacket};

fn ip(a: [u8; 4]) -> Ipv4Address {
    Ipv4Address::from(a)
}

/// An IPv4 packet from `src` to `dst` (TTL 64, DF set) carrying `transport`.
fn datagram(src: [u8; 4], dst: [u8; 4], transport: Transport) -> Vec<u8> {
    Ipv4Datagram {
        header: Ipv4Header::new(ip(src), ip(dst)),
        transport,
    }
    .emit()
}

/// The options of a SYN as a client sends them: MSS 1460, window scale 7.
const SYN_OPTIONS: [u8; 8] = [2, 4, 0x05, 0xb4, 1, 3, 3, 7];

/// A TCP segment from `(address, port)` `src` to `dst` with explicit `(seq, ack, flags)`
/// (see [`tcp_flags`]) and payload; a SYN carries MSS and window-scale options.
pub fn tcp(
    (src, src_port): ([u8; 4], u16),
    (dst, dst_port): ([u8; 4], u16),
    (seq, ack, flags): (u32, u32, u8),
    payload: &[u8],
) -> Vec<u8> {
    let syn = flags & tcp_flags::SYN != 0;
    let segment = TcpSegment {
        src_port,
        dst_port,
        seq,
        ack: if flags & tcp_flags::ACK != 0 { ack } else { 0 },
        flags: TcpFlags::from_bits(flags),
        window: 64240,
        options: if syn {
            SYN_OPTIONS.to_vec()
        } else {
            Vec::new()
        },
        payload: payload.to_vec(),
    };
    datagram(src, dst, Transport::Tcp(segment))
}

/// A TCP SYN (window scale 7, MSS 1460).
pub fn tcp_syn(src: [u8; 4], src_port: u16, dst: [u8; 4], dst_port: u16) -> Vec<u8> {
    tcp(
        (src, src_port),
        (dst, dst_port),
        (1000, 0, tcp_flags::SYN),
        &[],
    )
}

/// A UDP datagram.
pub fn udp(src: [u8; 4], src_port: u16, dst: [u8; 4], dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let udp = UdpDatagram {
        src_port,
        dst_port,
        payload: payload.to_vec(),
    };
    datagram(src, dst, Transport::Udp(udp))
}

/// An ICMP echo request (`request`) or reply.
pub fn icmp_echo(
    src: [u8; 4],
    dst: [u8; 4],
    request: bool,
    ident: u16,
    seq_no: u16,
    data: &[u8],
) -> Vec<u8> {
    let kind = if request {
        Icmpv4Message::EchoRequest
    } else {
        Icmpv4Message::EchoReply
    };
    let echo = IcmpMessage {
        kind,
        code: 0,
        ident,
        seq_no,
        body: data.to_vec(),
    };
    datagram(src, dst, Transport::Icmp(echo))
}

/// An ICMP error of `icmp_type`/`code` quoting `quoted` (its header + 8 bytes).
pub fn icmp_error(src: [u8; 4], dst: [u8; 4], icmp_type: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    let header_len = Ipv4Packet::new_unchecked(quoted).header_len() as usize;
    let quote = &quoted[..(header_len + 8).min(quoted.len())];
    icmp(src, dst, (icmp_type, code), [0; 4], quote)
}

/// An ICMP message of any type: `icmp_type`, `code`, the four type-specific bytes
/// `rest`, then `data`.
pub fn icmp(
    src: [u8; 4],
    dst: [u8; 4],
    (icmp_type, code): (u8, u8),
    rest: [u8; 4],
    data: &[u8],
) -> Vec<u8> {
    let message = IcmpMessage {
        kind: icmp_type.into(),
        code,
        ident: u16::from_be_bytes([rest[0], rest[1]]),
        seq_no: u16::from_be_bytes([rest[2], rest[3]]),
        body: data.to_vec(),
    };
    datagram(src, dst, Transport::Icmp(message))
}

/// An IPv4 packet of protocol `protocol` carrying `payload` as it is.
pub fn ipv4(src: [u8; 4], dst: [u8; 4], protocol: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Ipv4Header::new(ip(src), ip(dst)).emit(protocol.into(), payload.len());
    Ipv4Packet::new_unchecked(&mut bytes[..])
        .payload_mut()
        .copy_from_slice(payload);
    bytes
}

/// An IPv6 packet with next header `next_header` carrying `payload` as it is.
pub fn ipv6(src: [u8; 16], dst: [u8; 16], next_header: u8, payload: &[u8]) -> Vec<u8> {
    let repr = Ipv6Repr {
        src_addr: Ipv6Address::from(src),
        dst_addr: Ipv6Address::from(dst),
        next_header: next_header.into(),
        payload_len: payload.len(),
        hop_limit: 64,
    };
    let mut bytes = vec![0u8; repr.buffer_len() + payload.len()];
    let mut packet = Ipv6Packet::new_unchecked(&mut bytes[..]);
    repr.emit(&mut packet);
    packet.payload_mut().copy_from_slice(payload);
    bytes
}

/// Rewrites a TCP segment's flags (and its checksum).
pub fn set_tcp_flags(bytes: &mut [u8], flags: u8) {
    let mut ip = Ipv4Packet::new_unchecked(bytes);
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let mut tcp = TcpPacket::new_unchecked(ip.payload_mut());
    tcp.set_fin(flags & tcp_flags::FIN != 0);
    tcp.set_syn(flags & tcp_flags::SYN != 0);
    tcp.set_rst(flags & tcp_flags::RST != 0);
    tcp.set_psh(flags & tcp_flags::PSH != 0);
    tcp.set_ack(flags & tcp_flags::ACK != 0);
    tcp.set_urg(flags & tcp_flags::URG != 0);
    tcp.fill_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst));
}

/// Marks a packet as a fragment (more-fragments flag, offset in bytes) and refreshes the
/// header checksum and total length.
pub fn set_fragment(bytes: &mut [u8], more_fragments: bool, offset: u16) {
    let len = bytes.len() as u16;
    let mut packet = Ipv4Packet::new_unchecked(bytes);
    packet.set_total_len(len);
    packet.set_dont_frag(false);
    packet.set_more_frags(more_fragments);
    packet.set_frag_offset(offset);
    packet.fill_checksum();
}

/// Sets the TTL (and refreshes the header checksum).
pub fn set_ttl(bytes: &mut [u8], ttl: u8) {
    let mut packet = Ipv4Packet::new_unchecked(bytes);
    packet.set_hop_limit(ttl);
    packet.fill_checksum();
}

/// Wraps an IPv4 packet in an Ethernet frame.
pub fn ethernet(src: EthernetAddress, dst: EthernetAddress, packet: &[u8]) -> Vec<u8> {
    ethernet_of(EthernetProtocol::Ipv4, src, dst, packet)
}

/// Wraps a packet of `ethertype` in an Ethernet frame.
pub fn ethernet_of(
    ethertype: EthernetProtocol,
    src: EthernetAddress,
    dst: EthernetAddress,
    packet: &[u8],
) -> Vec<u8> {
    let repr = EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        ethertype,
    };
    let mut frame = vec![0u8; repr.buffer_len() + packet.len()];
    let mut view = EthernetFrame::new_unchecked(&mut frame[..]);
    repr.emit(&mut view);
    view.payload_mut().copy_from_slice(packet);
    frame
}

/// Whether every checksum of an IPv4 packet (header, TCP/UDP with pseudo-header, ICMP,
/// SCTP's CRC32c)
/// verifies — what a receiving host would check.
pub fn checksums_valid(bytes: &[u8]) -> bool {
    let Ok(ip) = Ipv4Packet::new_checked(bytes) else {
        return false;
    };
    if !ip.verify_checksum() {
        return false;
    }
    let (src, dst) = (
        IpAddress::Ipv4(ip.src_addr()),
        IpAddress::Ipv4(ip.dst_addr()),
    );
    let payload = ip.payload();
    match ip.next_header() {
        IpProtocol::Tcp => {
            TcpPacket::new_checked(payload).is_ok_and(|t| t.verify_checksum(&src, &dst))
        }
        IpProtocol::Udp => UdpPacket::new_checked(payload)
            .is_ok_and(|u| u.checksum() == 0 || u.verify_checksum(&src, &dst)),
        IpProtocol::Icmp => Icmpv4Packet::new_checked(payload).is_ok_and(|i| i.verify_checksum()),
        sctp::PROTOCOL => SctpPacket::new_checked(payload).is_ok_and(|s| s.verify_checksum()),
        _ => true,
    }
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
            set_fragment(&mut fragment, i + 1 < pieces, (i * chunk) as u16);
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
    ip.set_more_frags(false);
    ip.set_frag_offset(0);
    ip.fill_checksum();
    whole
}

/// An SCTP packet from `src` to `dst`: the common header with verification tag `tag`, then
/// `chunks` as they are, its CRC32c filled in.
pub fn sctp(
    (src, src_port): ([u8; 4], u16),
    (dst, dst_port): ([u8; 4], u16),
    tag: u32,
    chunks: &[u8],
) -> Vec<u8> {
    let mut segment = vec![0u8; sctp::HEADER_LEN + chunks.len()];
    segment[sctp::HEADER_LEN..].copy_from_slice(chunks);
    let mut view = SctpPacket::new_checked(&mut segment[..]).expect("a whole common header");
    view.set_src_port(src_port);
    view.set_dst_port(dst_port);
    view.set_verification_tag(tag);
    view.fill_checksum();
    ipv4(src, dst, sctp::PROTOCOL.into(), &segment)
}

/// The INIT chunk an association starts with: initiate tag `0x6d6f6174`, a 64 KiB window,
/// 10 streams each way, initial TSN 1.
const SCTP_INIT_CHUNK: [u8; 20] = [
    sctp::CHUNK_INIT,
    0,
    0,
    20,
    0x6d,
    0x6f,
    0x61,
    0x74,
    0,
    1,
    0,
    0,
    0,
    10,
    0,
    10,
    0,
    0,
    0,
    1,
];

/// An SCTP INIT, the first packet of an association (verification tag 0).
pub fn sctp_init(src: [u8; 4], src_port: u16, dst: [u8; 4], dst_port: u16) -> Vec<u8> {
    sctp((src, src_port), (dst, dst_port), 0, &SCTP_INIT_CHUNK)
}

/// `packet` with `options` inserted after its 20-byte header (padded with end-of-list to a
/// multiple of 4 bytes), its lengths and header checksum updated. See
/// [`crate::ip_options`] for the option numbers.
pub fn with_ip_options(packet: &[u8], options: &[u8]) -> Vec<u8> {
    let padded = options.len().div_ceil(4) * 4;
    let mut bytes = packet[..IPV4_HEADER_LEN].to_vec();
    bytes.extend_from_slice(options);
    bytes.resize(IPV4_HEADER_LEN + padded, ip_options::END_OF_LIST);
    bytes.extend_from_slice(&packet[IPV4_HEADER_LEN..]);
    let len = bytes.len() as u16;
    let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..]);
    ip.set_header_len((IPV4_HEADER_LEN + padded) as u8);
    ip.set_total_len(len);
    ip.fill_checksum();
    bytes
}

/// A loose source route through `hops` (RFC 791: pointer at the first address).
pub fn loose_source_route(hops: &[[u8; 4]]) -> Vec<u8> {
    let mut option = vec![ip_options::LOOSE_SOURCE_ROUTE, 3 + 4 * hops.len() as u8, 4];
    option.extend(hops.iter().flatten());
    option
}

/// A record-route option with room for `slots` addresses.
pub fn record_route(slots: usize) -> Vec<u8> {
    let mut option = vec![ip_options::RECORD_ROUTE, 3 + 4 * slots as u8, 4];
    option.resize(3 + 4 * slots, 0);
    option
}

/// A plausible instance of IPv4 option `kind` (numbers in [`crate::ip_options`]): a
/// source route through one hop (192.0.2.1), room for four recorded addresses or
/// timestamps, the router alert; any other kind without data.
pub fn ip_option(kind: u8) -> Vec<u8> {
    match kind {
        ip_options::LOOSE_SOURCE_ROUTE | ip_options::STRICT_SOURCE_ROUTE => {
            let mut option = loose_source_route(&[[192, 0, 2, 1]]);
            option[0] = kind;
            option
        }
        ip_options::RECORD_ROUTE => record_route(4),
        ip_options::TIMESTAMP => {
            // Timestamps only (flag 0), pointer at the first of four slots.
            let mut option = vec![ip_options::TIMESTAMP, 20, 5, 0];
            option.resize(20, 0);
            option
        }
        ip_options::ROUTER_ALERT => ROUTER_ALERT.to_vec(),
        other => vec![other, 2],
    }
}

/// The router alert option (RFC 2113), as IGMP and RSVP send it.
pub const ROUTER_ALERT: [u8; 4] = [ip_options::ROUTER_ALERT, 4, 0, 0];
