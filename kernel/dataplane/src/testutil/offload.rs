//! Packets as a NIC with checksum and segmentation offloads hands them over: a partial
//! TCP/UDP checksum (the field holds the pseudo-header's sum, as Linux leaves it for
//! `CHECKSUM_PARTIAL`), TCP super-packets of many segments' payload, and the
//! [`Offload`] metadata that comes with them.

use alloc::vec::Vec;

use smoltcp::wire::{checksum, IpProtocol, Ipv4Packet, ETHERNET_HEADER_LEN};

use super::packets;
use crate::offload::{GsoKind, Offload, PartialChecksum, Segmentation};

/// The client and server of the super-packets: `10.137.1.10:40000` to
/// `198.51.100.80:5201`.
pub const CLIENT: ([u8; 4], u16) = ([10, 137, 1, 10], 40000);
/// See [`CLIENT`].
pub const SERVER: ([u8; 4], u16) = ([198, 51, 100, 80], 5201);

/// The payload byte at `index` of a super-packet: a pattern that shows misplaced bytes.
pub fn payload_byte(index: usize) -> u8 {
    (index % 251) as u8
}

/// `packet` (an IPv4 TCP or UDP packet with a complete checksum) with its checksum left
/// partial: the field holds the pseudo-header's sum (addresses, protocol, transport
/// length), not complemented.
pub fn partial(packet: &[u8]) -> Vec<u8> {
    let mut bytes = packet.to_vec();
    let ip = Ipv4Packet::new_checked(&bytes[..]).expect("an IPv4 packet");
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let protocol = ip.next_header();
    let start = ip.header_len() as usize;
    let length = ip.total_len() as u32 - start as u32;
    let field = match protocol {
        IpProtocol::Tcp => start + 16,
        IpProtocol::Udp => start + 6,
        other => panic!("no transport checksum to leave partial in {other}"),
    };
    let sum = checksum::pseudo_header_v4(&src, &dst, protocol, length);
    bytes[field..field + 2].copy_from_slice(&sum.to_be_bytes());
    bytes
}

/// A TCP super-packet from [`CLIENT`] to [`SERVER`]: `payload_len` bytes of
/// [`payload_byte`]s from sequence number `seq`, with `flags`, its checksum partial.
pub fn super_packet(payload_len: usize, seq: u32, flags: u8) -> Vec<u8> {
    let payload: Vec<u8> = (0..payload_len).map(payload_byte).collect();
    partial(&packets::tcp(CLIENT, SERVER, (seq, 1, flags), &payload))
}

/// The metadata of a TCP super-frame (Ethernet, IPv4 without options, TCP) cut into
/// segments of `size` bytes.
pub fn tso(size: u16) -> Offload {
    Offload {
        partial_checksum: Some(transport_checksum(IpProtocol::Tcp)),
        segmentation: Some(Segmentation {
            kind: GsoKind::TcpV4,
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

fn transport_checksum(protocol: IpProtocol) -> PartialChecksum {
    PartialChecksum {
        start: (ETHERNET_HEADER_LEN + 20) as u16,
        offset: if protocol == IpProtocol::Tcp { 16 } else { 6 },
    }
}

/// `packet` (IPv4) with its partial checksum completed: what the receiver of a frame sent
/// with a partial checksum sees once the NIC has done its part.
pub fn completed(packet: &[u8]) -> Vec<u8> {
    let mut bytes = packet.to_vec();
    crate::segmenter::complete_checksum(&mut bytes).expect("a TCP or UDP packet");
    bytes
}
