//! Real packet bytes for tests and benchmarks, built with `smoltcp::wire` (never by hand).
//!
//! Compiled for the crate's own tests and with the `testutil` feature (integration tests,
//! benchmarks, the end-to-end harness).

/// Builders of IPv4 packets and Ethernet frames.
pub mod packets {
    use alloc::vec;
    use alloc::vec::Vec;

    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet, Icmpv4Repr,
        IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, Ipv6Address, Ipv6Packet,
        Ipv6Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, UdpPacket, UdpRepr,
    };

    use crate::packet::tcp_flags;

    fn ip(a: [u8; 4]) -> Ipv4Address {
        Ipv4Address::from(a)
    }

    fn ipv4_packet(
        src: [u8; 4],
        dst: [u8; 4],
        protocol: IpProtocol,
        payload_len: usize,
        ttl: u8,
    ) -> (Vec<u8>, Ipv4Repr) {
        let repr = Ipv4Repr {
            src_addr: ip(src),
            dst_addr: ip(dst),
            next_header: protocol,
            payload_len,
            hop_limit: ttl,
        };
        let mut bytes = vec![0u8; repr.buffer_len() + payload_len];
        let mut packet = Ipv4Packet::new_unchecked(&mut bytes[..]);
        repr.emit(&mut packet, &ChecksumCapabilities::default());
        (bytes, repr)
    }

    /// A TCP segment with explicit sequence numbers, flags and payload.
    #[allow(clippy::too_many_arguments)]
    pub fn tcp(
        src: [u8; 4],
        src_port: u16,
        dst: [u8; 4],
        dst_port: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let control = if flags & tcp_flags::SYN != 0 {
            TcpControl::Syn
        } else if flags & tcp_flags::FIN != 0 {
            TcpControl::Fin
        } else if flags & tcp_flags::RST != 0 {
            TcpControl::Rst
        } else if flags & tcp_flags::PSH != 0 {
            TcpControl::Psh
        } else {
            TcpControl::None
        };
        let repr = TcpRepr {
            src_port,
            dst_port,
            control,
            seq_number: TcpSeqNumber(seq as i32),
            ack_number: (flags & tcp_flags::ACK != 0).then_some(TcpSeqNumber(ack as i32)),
            window_len: 64240,
            window_scale: (flags & tcp_flags::SYN != 0).then_some(7),
            max_seg_size: (flags & tcp_flags::SYN != 0).then_some(1460),
            sack_permitted: false,
            sack_ranges: [None, None, None],
            timestamp: None,
            payload,
        };
        let (mut bytes, ip_repr) = ipv4_packet(src, dst, IpProtocol::Tcp, repr.buffer_len(), 64);
        let header_len = bytes.len() - repr.buffer_len();
        let mut segment = TcpPacket::new_unchecked(&mut bytes[header_len..]);
        repr.emit(
            &mut segment,
            &IpAddress::Ipv4(ip_repr.src_addr),
            &IpAddress::Ipv4(ip_repr.dst_addr),
            &ChecksumCapabilities::default(),
        );
        bytes
    }

    /// A TCP SYN (window scale 7, MSS 1460).
    pub fn tcp_syn(src: [u8; 4], src_port: u16, dst: [u8; 4], dst_port: u16) -> Vec<u8> {
        tcp(src, src_port, dst, dst_port, 1000, 0, tcp_flags::SYN, &[])
    }

    /// A UDP datagram.
    pub fn udp(
        src: [u8; 4],
        src_port: u16,
        dst: [u8; 4],
        dst_port: u16,
        payload: &[u8],
    ) -> Vec<u8> {
        let repr = UdpRepr { src_port, dst_port };
        let len = repr.header_len() + payload.len();
        let (mut bytes, ip_repr) = ipv4_packet(src, dst, IpProtocol::Udp, len, 64);
        let header_len = bytes.len() - len;
        let mut datagram = UdpPacket::new_unchecked(&mut bytes[header_len..]);
        repr.emit(
            &mut datagram,
            &IpAddress::Ipv4(ip_repr.src_addr),
            &IpAddress::Ipv4(ip_repr.dst_addr),
            payload.len(),
            |buf| buf.copy_from_slice(payload),
            &ChecksumCapabilities::default(),
        );
        bytes
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
        let repr = if request {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }
        } else {
            Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            }
        };
        let (mut bytes, _) = ipv4_packet(src, dst, IpProtocol::Icmp, repr.buffer_len(), 64);
        let header_len = bytes.len() - repr.buffer_len();
        let mut icmp = Icmpv4Packet::new_unchecked(&mut bytes[header_len..]);
        repr.emit(&mut icmp, &ChecksumCapabilities::default());
        bytes
    }

    /// An ICMP error of `icmp_type`/`code` quoting `quoted` (its header + 8 bytes).
    pub fn icmp_error(
        src: [u8; 4],
        dst: [u8; 4],
        icmp_type: u8,
        code: u8,
        quoted: &[u8],
    ) -> Vec<u8> {
        let quote_len = {
            let header_len = Ipv4Packet::new_unchecked(quoted).header_len() as usize;
            (header_len + 8).min(quoted.len())
        };
        let icmp_len = 8 + quote_len;
        let (mut bytes, _) = ipv4_packet(src, dst, IpProtocol::Icmp, icmp_len, 64);
        let start = bytes.len() - icmp_len;
        {
            let mut icmp = Icmpv4Packet::new_unchecked(&mut bytes[start..]);
            icmp.set_msg_type(icmp_type.into());
            icmp.set_msg_code(code);
        }
        bytes[start + 8..].copy_from_slice(&quoted[..quote_len]);
        let mut icmp = Icmpv4Packet::new_unchecked(&mut bytes[start..]);
        icmp.fill_checksum();
        bytes
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
        let mut message = rest.to_vec();
        message.extend_from_slice(data);
        // Type, code and checksum come first; the message is built after them.
        let mut bytes = ipv4(
            src,
            dst,
            IpProtocol::Icmp.into(),
            &[&[0; 4], &message[..]].concat(),
        );
        let header_len = Ipv4Packet::new_unchecked(&bytes[..]).header_len() as usize;
        let mut icmp = Icmpv4Packet::new_unchecked(&mut bytes[header_len..]);
        icmp.set_msg_type(icmp_type.into());
        icmp.set_msg_code(code);
        icmp.fill_checksum();
        bytes
    }

    /// An IPv4 packet of protocol `protocol` carrying `payload` as it is.
    pub fn ipv4(src: [u8; 4], dst: [u8; 4], protocol: u8, payload: &[u8]) -> Vec<u8> {
        let (mut bytes, _) = ipv4_packet(src, dst, protocol.into(), payload.len(), 64);
        let header_len = bytes.len() - payload.len();
        bytes[header_len..].copy_from_slice(payload);
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

    /// Whether every checksum of an IPv4 packet (header, TCP/UDP with pseudo-header, ICMP)
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
            IpProtocol::Icmp => {
                Icmpv4Packet::new_checked(payload).is_ok_and(|i| i.verify_checksum())
            }
            _ => true,
        }
    }
}
