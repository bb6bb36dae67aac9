//! Finishing offloaded packets in software, for an egress that cannot take them as they are
//! (a NIC without the offload, an MTU below one segment, a packet that must wait for ARP or
//! neighbour discovery): [`complete_checksum`] computes a partial TCP or UDP checksum (IPv4
//! or IPv6), and [`Segmenter`] cuts a TCP super-packet (IPv4 or IPv6) into the segments
//! it stands for, as a NIC doing TSO (or Linux's `tcp_gso_segment`) would:
//!
//! - every segment carries a copy of the IP and TCP headers (IPv4 options, IPv6 extension
//!   headers) and `size` bytes of payload (the last one the rest);
//! - IPv4: the total length and header checksum are its own, and the identification counts
//!   up from the super-packet's, one per segment; IPv6: the payload length is its own;
//! - the sequence number advances by the payload before it; FIN and PSH stay on the last
//!   segment only, CWR on the first only;
//! - the TCP checksum is computed in full, over the pseudo-header and the segment (an
//!   IPv6 super-packet with a routing header still en route, whose pseudo-header names
//!   another destination, is refused).
//!
//! A UDP super-packet (UFO) is one datagram: its checksum is completed and it is then
//! fragmented like any datagram too big for its link ([`crate::fragmenter`]). Segments are
//! built one at a time in one buffer.

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::wire::{
    checksum, IpAddress, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket, IPV6_HEADER_LEN,
};

use crate::packet::IpSummary;

/// Why a packet cannot be finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentError {
    /// Not a well-formed TCP/UDP packet (IPv4 or IPv6; the caller validated it, so this is
    /// a bug).
    Malformed,
    /// A segment size of 0.
    SizeZero,
}

/// Where the checksum field sits in the transport header of `protocol`.
fn checksum_field(protocol: IpProtocol) -> Option<usize> {
    match protocol {
        IpProtocol::Tcp => Some(16),
        IpProtocol::Udp => Some(6),
        _ => None,
    }
}

/// Completes the partial TCP or UDP checksum of `packet` (an IPv4 or IPv6 packet, whole
/// and unfragmented, whose checksum field holds the pseudo-header's sum): the
/// one's-complement sum of the transport header and payload, field included, complemented,
/// goes into the field (a UDP checksum that comes out 0 is sent as `0xffff`, RFC 768 and
/// RFC 8200 §8.1). The pseudo-header is already in the partial sum, so the family only
/// decides where the transport header starts (after IPv6's extension headers).
pub fn complete_checksum(packet: &mut [u8]) -> Result<(), SegmentError> {
    let (header_len, total_len, protocol) = transport_of(packet)?;
    let field = checksum_field(protocol).ok_or(SegmentError::Malformed)?;
    let transport = packet
        .get_mut(header_len..total_len)
        .filter(|t| t.len() >= field + 2)
        .ok_or(SegmentError::Malformed)?;
    let mut sum = !checksum::data(transport);
    if protocol == IpProtocol::Udp && sum == 0 {
        sum = 0xffff;
    }
    transport[field..field + 2].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

/// Where the transport header of `packet` starts (after the IPv4 header, or after the IPv6
/// header and its extension headers), where the packet ends, and the transport protocol.
fn transport_of(packet: &[u8]) -> Result<(usize, usize, IpProtocol), SegmentError> {
    if packet.first().map(|b| b >> 4) == Some(6) {
        let ip = IpSummary::parse_ipv6(packet).map_err(|_| SegmentError::Malformed)?;
        if ip.is_fragment() {
            return Err(SegmentError::Malformed);
        }
        return Ok((ip.header_len, ip.total_len, ip.protocol));
    }
    let ip = Ipv4Packet::new_checked(packet).map_err(|_| SegmentError::Malformed)?;
    Ok((
        ip.header_len() as usize,
        ip.total_len() as usize,
        ip.next_header(),
    ))
}

/// A TCP super-packet (IPv4 or IPv6), ready to be cut into segments of `size` bytes of
/// payload.
pub struct Segmenter<'a> {
    packet: &'a [u8],
    ipv6: bool,
    header_len: usize,
    tcp_header_len: usize,
    size: usize,
}

impl<'a> Segmenter<'a> {
    /// `packet`: an IPv4 or IPv6 packet (its length exact, not a fragment) carrying a TCP
    /// segment; `size`: the payload bytes per segment.
    pub fn new(packet: &'a [u8], size: u16) -> Result<Segmenter<'a>, SegmentError> {
        if size == 0 {
            return Err(SegmentError::SizeZero);
        }
        let (header_len, total_len, protocol) = transport_of(packet)?;
        if protocol != IpProtocol::Tcp || total_len != packet.len() {
            return Err(SegmentError::Malformed);
        }
        let tcp = packet
            .get(header_len..)
            .and_then(|tcp| TcpPacket::new_checked(tcp).ok())
            .ok_or(SegmentError::Malformed)?;
        let ipv6 = packet.first().map(|b| b >> 4) == Some(6);
        // Each segment's checksum is computed from its header's addresses, which a routing
        // header with segments left does not end at.
        if ipv6 && crate::ipv6::routed_via_waypoint(packet) != Some(false) {
            return Err(SegmentError::Malformed);
        }
        Ok(Segmenter {
            ipv6,
            header_len,
            tcp_header_len: tcp.header_len() as usize,
            packet,
            size: size as usize,
        })
    }

    fn payload(&self) -> &'a [u8] {
        &self.packet[self.header_len + self.tcp_header_len..]
    }

    /// How many segments the packet makes (one, if it carries no payload).
    pub fn count(&self) -> usize {
        self.payload().len().div_ceil(self.size).max(1)
    }

    /// The longest segment, in bytes.
    pub fn max_segment_len(&self) -> usize {
        self.header_len + self.tcp_header_len + self.size.min(self.payload().len())
    }

    /// Writes segment `index` (of [`Segmenter::count`]) into `out`, which must hold
    /// [`Segmenter::max_segment_len`] bytes; returns its length.
    pub fn segment(&self, index: usize, out: &mut [u8]) -> usize {
        let headers = self.header_len + self.tcp_header_len;
        let payload = self.payload();
        let start = (index * self.size).min(payload.len());
        let piece = &payload[start..(start + self.size).min(payload.len())];
        let last = index + 1 >= self.count();
        let len = headers + piece.len();
        let out = &mut out[..len];
        out[..headers].copy_from_slice(&self.packet[..headers]);
        out[headers..].copy_from_slice(piece);

        let (src, dst) = match self.ipv6 {
            true => {
                let mut ip = Ipv6Packet::new_unchecked(&mut out[..]);
                ip.set_payload_len((len - IPV6_HEADER_LEN) as u16);
                (
                    IpAddress::Ipv6(ip.src_addr()),
                    IpAddress::Ipv6(ip.dst_addr()),
                )
            }
            false => {
                let mut ip = Ipv4Packet::new_unchecked(&mut out[..]);
                ip.set_total_len(len as u16);
                ip.set_ident(ip.ident().wrapping_add(index as u16));
                ip.fill_checksum();
                (
                    IpAddress::Ipv4(ip.src_addr()),
                    IpAddress::Ipv4(ip.dst_addr()),
                )
            }
        };
        let mut tcp = TcpPacket::new_unchecked(&mut out[self.header_len..]);
        tcp.set_seq_number(tcp.seq_number() + start);
        if !last {
            tcp.set_fin(false);
            tcp.set_psh(false);
        }
        if index > 0 {
            tcp.set_cwr(false);
        }
        tcp.fill_checksum(&src, &dst);
        len
    }

    /// Calls `emit` with every segment in order; returns how many.
    pub fn each(&self, mut emit: impl FnMut(&[u8])) -> usize {
        let mut buffer = vec![0u8; self.max_segment_len()];
        for index in 0..self.count() {
            let len = self.segment(index, &mut buffer);
            emit(&buffer[..len]);
        }
        self.count()
    }

    /// The first segment, as a packet of its own.
    pub fn first(&self) -> Vec<u8> {
        let mut buffer = vec![0u8; self.max_segment_len()];
        let len = self.segment(0, &mut buffer);
        buffer.truncate(len);
        buffer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{tcp_flags, Transport};
    use crate::testutil::offload::{completed, partial, super_packet};
    use crate::testutil::packets::{self, checksums_valid};
    use smoltcp::wire::TcpSeqNumber;

    const MSS: u16 = 1448;

    #[test]
    fn a_partial_tcp_checksum_completes_to_the_real_one() {
        let whole = packets::tcp(
            ([10, 137, 1, 10], 40000),
            ([198, 51, 100, 80], 80),
            (7, 9, 0x18),
            &[0xa5; 3001],
        );
        let mut packet = partial(&whole);
        assert!(!checksums_valid(&packet));
        complete_checksum(&mut packet).unwrap();
        assert_eq!(packet, whole);
    }

    #[test]
    fn a_partial_udp_checksum_completes_to_the_real_one() {
        let whole = packets::udp([10, 137, 1, 10], 5000, [198, 51, 100, 80], 53, b"query");
        let mut packet = partial(&whole);
        complete_checksum(&mut packet).unwrap();
        assert_eq!(packet, whole);
    }

    #[test]
    fn a_partial_ipv6_checksum_completes_to_the_real_one_after_extension_headers() {
        use crate::testutil::packets6::{self, addr, Extension};
        let (client, server) = (addr("fd00:137:1::10"), addr("2001:db8:5::80"));
        let tcp = packets6::tcp((client, 40000), (server, 443), (7, 9, 0x18), &[0xa5; 3001]);
        let udp = packets6::udp(client, 5353, server, 53, b"query");
        let with_options = packets6::with_extensions(&udp, &[Extension::DestinationOptions]);
        for whole in [tcp, udp, with_options] {
            let mut packet = partial(&whole);
            assert_ne!(packet, whole, "left partial");
            complete_checksum(&mut packet).unwrap();
            assert_eq!(packet, whole);
        }
    }

    #[test]
    fn a_super_packet_is_cut_into_segments_a_receiver_accepts_one_by_one() {
        let flags = tcp_flags::ACK | tcp_flags::PSH | tcp_flags::FIN;
        let packet = super_packet(5000, 1_000_000, flags);
        let original = IpSummary::parse(&packet).unwrap();
        let segmenter = Segmenter::new(&packet, MSS).unwrap();
        assert_eq!(segmenter.count(), 4);
        let mut payload = Vec::new();
        let mut seen = 0;
        segmenter.each(|segment| {
            let index = seen;
            seen += 1;
            assert!(checksums_valid(segment), "segment {index}: checksums");
            let ip = Ipv4Packet::new_checked(segment).unwrap();
            assert_eq!(ip.total_len() as usize, segment.len());
            assert_eq!(u32::from(ip.ident()), original.ident + index as u32);
            assert!(ip.dont_frag());
            let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
            assert_eq!(tcp.seq_number(), TcpSeqNumber(1_000_000) + payload.len());
            let last = index == 3;
            assert_eq!(tcp.fin(), last, "segment {index}: FIN on the last only");
            assert_eq!(tcp.psh(), last, "segment {index}: PSH on the last only");
            assert!(tcp.ack());
            assert_eq!(
                tcp.payload().len(),
                if last { 5000 - 3 * 1448 } else { 1448 }
            );
            payload.extend_from_slice(tcp.payload());
        });
        assert_eq!(seen, 4);
        let Transport::Tcp(tcp) = original.transport else {
            panic!("not tcp")
        };
        assert_eq!(payload.len(), tcp.payload_len as usize);
        assert_eq!(payload[..], packet[40..]);
    }

    #[test]
    fn an_ipv6_super_packet_is_cut_into_segments_a_receiver_accepts_one_by_one() {
        use crate::testutil::offload::{super_packet6, with_cwr6};
        use crate::testutil::packets6::{self, Extension};
        let flags = tcp_flags::ACK | tcp_flags::PSH | tcp_flags::FIN;
        let plain = with_cwr6(&super_packet6(5000, 1_000_000, flags));
        let with_options = partial(&packets6::with_extensions(
            &completed(&plain),
            &[Extension::HopByHop],
        ));
        for (packet, header_len) in [(plain, 40), (with_options, 48)] {
            let segmenter = Segmenter::new(&packet, 1428).unwrap();
            assert_eq!(segmenter.count(), 4);
            let mut payload = Vec::new();
            let mut seen = 0;
            segmenter.each(|segment| {
                let index = seen;
                seen += 1;
                let ip = IpSummary::parse_ipv6(segment).unwrap();
                assert_eq!(ip.header_len, header_len);
                assert_eq!(
                    ip.total_len,
                    segment.len(),
                    "segment {index}: payload length"
                );
                let ip6 = Ipv6Packet::new_checked(segment).unwrap();
                let tcp = TcpPacket::new_checked(&segment[header_len..]).unwrap();
                let (src, dst) = (ip6.src_addr().into(), ip6.dst_addr().into());
                assert!(tcp.verify_checksum(&src, &dst), "segment {index}: checksum");
                assert_eq!(tcp.seq_number(), TcpSeqNumber(1_000_000) + payload.len());
                let last = index == 3;
                assert_eq!(tcp.fin(), last, "segment {index}: FIN on the last only");
                assert_eq!(tcp.psh(), last, "segment {index}: PSH on the last only");
                assert_eq!(
                    tcp.cwr(),
                    index == 0,
                    "segment {index}: CWR on the first only"
                );
                assert!(tcp.ack());
                let expected = if last { 5000 - 3 * 1428 } else { 1428 };
                assert_eq!(tcp.payload().len(), expected, "segment {index}");
                payload.extend_from_slice(tcp.payload());
            });
            assert_eq!(seen, 4);
            assert_eq!(
                payload[..],
                packet[header_len + 20..],
                "the payload, in order"
            );
        }
    }

    #[test]
    fn an_ipv6_super_packet_still_en_route_to_a_waypoint_is_refused_not_misaddressed() {
        use crate::testutil::offload::super_packet6;
        use crate::testutil::packets6::{self, Extension};
        let whole = completed(&super_packet6(5000, 1, tcp_flags::ACK));
        let routed = |segments_left| {
            partial(&packets6::with_extensions(
                &whole,
                &[Extension::Routing {
                    routing_type: 2,
                    segments_left,
                }],
            ))
        };
        assert_eq!(
            Segmenter::new(&routed(1), 1428).err(),
            Some(SegmentError::Malformed)
        );
        assert!(
            Segmenter::new(&routed(0), 1428).is_ok(),
            "arrived: no waypoint left"
        );
    }

    #[test]
    fn cwr_stays_on_the_first_segment_only() {
        let packet = super_packet(3000, 1, tcp_flags::ACK);
        let mut packet = packet;
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut packet[..]);
            let mut tcp = TcpPacket::new_unchecked(ip.payload_mut());
            tcp.set_cwr(true);
        }
        let mut cwr = Vec::new();
        Segmenter::new(&packet, MSS).unwrap().each(|segment| {
            let ip = Ipv4Packet::new_checked(segment).unwrap();
            cwr.push(TcpPacket::new_checked(ip.payload()).unwrap().cwr());
        });
        assert_eq!(cwr, [true, false, false]);
    }

    #[test]
    fn a_super_packet_with_less_than_one_segment_is_one_packet() {
        let packet = super_packet(500, 9, tcp_flags::ACK | tcp_flags::PSH);
        let segmenter = Segmenter::new(&packet, MSS).unwrap();
        assert_eq!(segmenter.count(), 1);
        let first = segmenter.first();
        assert!(checksums_valid(&first));
        assert_eq!(first.len(), packet.len());
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let packet = super_packet(3000, 1, tcp_flags::ACK);
        assert_eq!(
            Segmenter::new(&packet, 0).err(),
            Some(SegmentError::SizeZero)
        );
        assert_eq!(
            Segmenter::new(&packet[..100], MSS).err(),
            Some(SegmentError::Malformed)
        );
        let udp = packets::udp([10, 137, 1, 10], 5000, [198, 51, 100, 80], 53, b"q");
        assert_eq!(
            Segmenter::new(&udp, MSS).err(),
            Some(SegmentError::Malformed)
        );
        let mut icmp = packets::icmp_echo([10, 137, 1, 10], [1, 1, 1, 1], true, 1, 1, b"x");
        assert_eq!(complete_checksum(&mut icmp), Err(SegmentError::Malformed));
    }
}
