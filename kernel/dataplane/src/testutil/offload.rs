//! Packets as a NIC with checksum and segmentation offloads hands them over: a partial
//! TCP/UDP checksum (the field holds the pseudo-header's sum, as Linux leaves it for
//! `CHECKSUM_PARTIAL`), TCP super-packets of many segments' payload, and the
//! [`Offload`] metadata that comes with them.

use alloc::vec::Vec;

use smoltcp::wire::{checksum, IpAddress, IpProtocol, Ipv6Packet, TcpPacket, ETHERNET_HEADER_LEN};

use super::{packets, packets6};
use crate::offload::{GsoKind, Offload, PartialChecksum, Segmentation};
use crate::packet::{tcp_flags, IpSummary};

/// The client and server of the super-packets: `10.137.1.10:40000` to
/// `198.51.100.80:5201`.
pub const CLIENT: ([u8; 4], u16) = ([10, 137, 1, 10], 40000);
/// See [`CLIENT`].
pub const SERVER: ([u8; 4], u16) = ([198, 51, 100, 80], 5201);

/// The payload byte at `index` of a super-packet: a pattern that shows misplaced bytes.
pub fn payload_byte(index: usize) -> u8 {
    (index % 251) as u8
}

/// `packet` (an IPv4 or IPv6 TCP or UDP packet with a complete checksum) with its checksum
/// left partial: the field holds the pseudo-header's sum (addresses, protocol, transport
/// length), not complemented.
pub fn partial(packet: &[u8]) -> Vec<u8> {
    let mut bytes = packet.to_vec();
    let ip = match packet.first().map(|b| b >> 4) {
        Some(6) => IpSummary::parse_ipv6(packet),
        _ => IpSummary::parse(packet),
    }
    .expect("an IP packet");
    let protocol = ip.protocol;
    let start = ip.header_len;
    let length = (ip.total_len - start) as u32;
    let field = match protocol {
        IpProtocol::Tcp => start + 16,
        IpProtocol::Udp => start + 6,
        other => panic!("no transport checksum to leave partial in {other}"),
    };
    let sum = match (ip.src, ip.dst) {
        (IpAddress::Ipv4(src), IpAddress::Ipv4(dst)) => {
            checksum::pseudo_header_v4(&src, &dst, protocol, length)
        }
        (IpAddress::Ipv6(src), IpAddress::Ipv6(dst)) => {
            checksum::pseudo_header_v6(&src, &dst, protocol, length)
        }
        _ => unreachable!("one family per header"),
    };
    bytes[field..field + 2].copy_from_slice(&sum.to_be_bytes());
    bytes
}

/// A TCP super-packet from [`CLIENT`] to [`SERVER`]: `payload_len` bytes of
/// [`payload_byte`]s from sequence number `seq`, with `flags`, its checksum partial.
pub fn super_packet(payload_len: usize, seq: u32, flags: u8) -> Vec<u8> {
    let payload: Vec<u8> = (0..payload_len).map(payload_byte).collect();
    partial(&packets::tcp(CLIENT, SERVER, (seq, 1, flags), &payload))
}

/// A TCP/IPv6 super-packet from `fd00:137:1::10` port 40000 to `2001:db8:5::80` port
/// 5201: `payload_len` bytes of [`payload_byte`]s from sequence number `seq`, with
/// `flags`, its checksum partial.
pub fn super_packet6(payload_len: usize, seq: u32, flags: u8) -> Vec<u8> {
    let payload: Vec<u8> = (0..payload_len).map(payload_byte).collect();
    let (client, server) = (
        packets6::addr("fd00:137:1::10"),
        packets6::addr("2001:db8:5::80"),
    );
    let mut whole = packets6::tcp((client, 40000), (server, 5201), (seq, 1, flags), &payload);
    // `packets6::tcp` sets one control flag: set FIN and PSH as `flags` says.
    let mut ip = Ipv6Packet::new_unchecked(&mut whole[..]);
    let mut tcp = TcpPacket::new_unchecked(ip.payload_mut());
    tcp.set_fin(flags & tcp_flags::FIN != 0);
    tcp.set_psh(flags & tcp_flags::PSH != 0);
    tcp.fill_checksum(&client.into(), &server.into());
    partial(&whole)
}

/// `packet` (an IPv6 TCP packet without extension headers, its checksum partial) with CWR
/// set, the partial checksum kept in step.
pub fn with_cwr6(packet: &[u8]) -> Vec<u8> {
    let mut whole = completed(packet);
    let mut ip = Ipv6Packet::new_unchecked(&mut whole[..]);
    let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
    let mut tcp = TcpPacket::new_unchecked(ip.payload_mut());
    tcp.set_cwr(true);
    tcp.fill_checksum(&src, &dst);
    partial(&whole)
}

/// The metadata of a TCP super-frame (Ethernet, IPv4 without options, TCP) cut into
/// segments of `size` bytes.
pub fn tso(size: u16) -> Offload {
    tso_at(GsoKind::TcpV4, 20, size)
}

/// The metadata of a TCP/IPv6 super-frame (Ethernet, `ip_header_len` bytes of IPv6 header
/// and extension headers, TCP) cut into segments of `size` bytes.
pub fn tso6(ip_header_len: usize, size: u16) -> Offload {
    tso_at(GsoKind::TcpV6, ip_header_len, size)
}

fn tso_at(kind: GsoKind, ip_header_len: usize, size: u16) -> Offload {
    Offload {
        partial_checksum: Some(transport_checksum_at(IpProtocol::Tcp, ip_header_len)),
        segmentation: Some(Segmentation {
            kind,
            size,
            ecn: false,
        }),
    }
}

/// The metadata of a frame whose `protocol` checksum (TCP or UDP, IPv4 without options)
/// is partial.
pub fn checksum_only(protocol: IpProtocol) -> Offload {
    Offload {
        partial_checksum: Some(transport_checksum(protocol)),
        segmentation: None,
    }
}

/// The metadata of a frame whose `protocol` checksum (TCP or UDP, IPv6 without extension
/// headers) is partial.
pub fn checksum_only6(protocol: IpProtocol) -> Offload {
    Offload {
        partial_checksum: Some(transport_checksum_at(protocol, 40)),
        segmentation: None,
    }
}

fn transport_checksum(protocol: IpProtocol) -> PartialChecksum {
    transport_checksum_at(protocol, 20)
}

/// The partial `protocol` checksum of a packet whose IP header is `ip_header_len` bytes.
fn transport_checksum_at(protocol: IpProtocol, ip_header_len: usize) -> PartialChecksum {
    PartialChecksum {
        start: (ETHERNET_HEADER_LEN + ip_header_len) as u16,
        offset: if protocol == IpProtocol::Tcp { 16 } else { 6 },
    }
}

/// `packet` (IPv4 or IPv6) with its partial checksum completed: what the receiver of a frame sent
/// with a partial checksum sees once the NIC has done its part.
pub fn completed(packet: &[u8]) -> Vec<u8> {
    let mut bytes = packet.to_vec();
    crate::segmenter::complete_checksum(&mut bytes).expect("a TCP or UDP packet");
    bytes
}
