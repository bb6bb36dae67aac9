//! Short builders of IPv6 test packets — a TCP segment, a UDP datagram, an ICMPv6 echo or
//! error, an upstream router's advertisement — and the extension headers a sender (or an
//! attacker) puts before them, all
//! emitted with `smoltcp::wire` representations; plus [`checksums_valid`], what a receiving
//! host checks.

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::time::Duration;
use smoltcp::wire::{
    EthernetAddress, Icmpv6Packet, Icmpv6Repr, IpAddress, IpProtocol, Ipv6Address, Ipv6ExtHeader,
    Ipv6ExtHeaderRepr, Ipv6FragmentHeader, Ipv6FragmentRepr, Ipv6Packet, Ipv6Repr,
    Ipv6RoutingHeader, Ipv6RoutingType, NdiscPrefixInfoFlags, NdiscPrefixInformation, NdiscRepr,
    NdiscRouterFlags, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, UdpPacket, UdpRepr,
};

use crate::ndp::wire::Outgoing;
use crate::packet::tcp_flags;

/// An IPv6 address from its text (test constants only).
pub fn addr(text: &str) -> Ipv6Address {
    text.parse().expect("an IPv6 address")
}

/// An IPv6 packet from `src` to `dst` (hop limit 64) with `next_header` and `payload`.
pub fn packet(
    src: Ipv6Address,
    dst: Ipv6Address,
    next_header: IpProtocol,
    payload: &[u8],
) -> Vec<u8> {
    let repr = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header,
        payload_len: payload.len(),
        hop_limit: 64,
    };
    let mut bytes = vec![0u8; repr.buffer_len() + payload.len()];
    let mut view = Ipv6Packet::new_unchecked(&mut bytes[..]);
    repr.emit(&mut view);
    view.payload_mut().copy_from_slice(payload);
    bytes
}

/// A TCP segment from `(src, port)` to `(dst, port)` with `(seq, ack, flags)` (see
/// [`tcp_flags`]; one of SYN, FIN, RST as control) and `payload`.
pub fn tcp(
    (src, src_port): (Ipv6Address, u16),
    (dst, dst_port): (Ipv6Address, u16),
    (seq, ack, flags): (u32, u32, u8),
    payload: &[u8],
) -> Vec<u8> {
    let control = match flags {
        f if f & tcp_flags::SYN != 0 => TcpControl::Syn,
        f if f & tcp_flags::FIN != 0 => TcpControl::Fin,
        f if f & tcp_flags::RST != 0 => TcpControl::Rst,
        f if f & tcp_flags::PSH != 0 => TcpControl::Psh,
        _ => TcpControl::None,
    };
    let repr = TcpRepr {
        src_port,
        dst_port,
        control,
        seq_number: TcpSeqNumber(seq as i32),
        ack_number: (flags & tcp_flags::ACK != 0).then_some(TcpSeqNumber(ack as i32)),
        window_len: 64800,
        window_scale: (control == TcpControl::Syn).then_some(7),
        max_seg_size: (control == TcpControl::Syn).then_some(1440),
        sack_permitted: false,
        sack_ranges: [None, None, None],
        timestamp: None,
        payload,
    };
    let mut l4 = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut TcpPacket::new_unchecked(&mut l4[..]),
        &IpAddress::Ipv6(src),
        &IpAddress::Ipv6(dst),
        &ChecksumCapabilities::default(),
    );
    packet(src, dst, IpProtocol::Tcp, &l4)
}

/// A SYN from `src:src_port` to `dst:dst_port`.
pub fn tcp_syn(src: Ipv6Address, src_port: u16, dst: Ipv6Address, dst_port: u16) -> Vec<u8> {
    tcp(
        (src, src_port),
        (dst, dst_port),
        (1000, 0, tcp_flags::SYN),
        b"",
    )
}

/// A UDP datagram.
pub fn udp(
    src: Ipv6Address,
    src_port: u16,
    dst: Ipv6Address,
    dst_port: u16,
    payload: &[u8],
) -> Vec<u8> {
    let repr = UdpRepr { src_port, dst_port };
    let mut l4 = vec![0u8; repr.header_len() + payload.len()];
    repr.emit(
        &mut UdpPacket::new_unchecked(&mut l4[..]),
        &IpAddress::Ipv6(src),
        &IpAddress::Ipv6(dst),
        payload.len(),
        |buf| buf.copy_from_slice(payload),
        &ChecksumCapabilities::default(),
    );
    packet(src, dst, IpProtocol::Udp, &l4)
}

/// An ICMPv6 message `repr` from `src` to `dst`.
pub fn icmp(src: Ipv6Address, dst: Ipv6Address, repr: &Icmpv6Repr) -> Vec<u8> {
    let mut l4 = vec![0u8; repr.buffer_len()];
    repr.emit(
        &src,
        &dst,
        &mut Icmpv6Packet::new_unchecked(&mut l4[..]),
        &ChecksumCapabilities::default(),
    );
    packet(src, dst, IpProtocol::Icmpv6, &l4)
}

/// An ICMPv6 echo request (or reply) with identifier `ident` and sequence number `seq_no`.
pub fn echo(src: Ipv6Address, dst: Ipv6Address, request: bool, ident: u16, seq_no: u16) -> Vec<u8> {
    let data = b"ping6";
    let repr = if request {
        Icmpv6Repr::EchoRequest {
            ident,
            seq_no,
            data,
        }
    } else {
        Icmpv6Repr::EchoReply {
            ident,
            seq_no,
            data,
        }
    };
    icmp(src, dst, &repr)
}

/// An extension header to put before a packet's upper-layer header.
#[derive(Clone, Copy, Debug)]
pub enum Extension {
    /// Hop-by-hop options (a PadN option filling 6 bytes).
    HopByHop,
    /// Destination options (likewise).
    DestinationOptions,
    /// A routing header of `routing_type` with `segments_left`, one address.
    Routing {
        /// The routing type (0 is deprecated, 2 is Mobile IPv6's).
        routing_type: u8,
        /// Segments left.
        segments_left: u8,
    },
    /// A fragment header.
    Fragment {
        /// Offset of the fragment's data, in bytes (a multiple of 8).
        offset: u16,
        /// More fragments follow.
        more: bool,
        /// Identification.
        ident: u32,
    },
}

impl Extension {
    fn protocol(&self) -> IpProtocol {
        match self {
            Extension::HopByHop => IpProtocol::HopByHop,
            Extension::DestinationOptions => IpProtocol::Ipv6Opts,
            Extension::Routing { .. } => IpProtocol::Ipv6Route,
            Extension::Fragment { .. } => IpProtocol::Ipv6Frag,
        }
    }

    /// The header's bytes, followed by `next`.
    fn emit(&self, next: IpProtocol) -> Vec<u8> {
        // PadN of 4 data bytes: the 8-byte minimum header.
        const PAD_N: [u8; 6] = [1, 4, 0, 0, 0, 0];
        match *self {
            Extension::HopByHop | Extension::DestinationOptions => emit_ext(next, 0, &PAD_N),
            Extension::Routing {
                routing_type,
                segments_left,
            } => {
                // Type, segments left, 4 reserved bytes, one address.
                let mut body = vec![0u8; 6 + 16];
                let mut routing = Ipv6RoutingHeader::new_unchecked(&mut body[..]);
                routing.set_routing_type(Ipv6RoutingType::from(routing_type));
                routing.set_segments_left(segments_left);
                body[6..].copy_from_slice(&addr("2001:db8::99").octets());
                emit_ext(next, 2, &body)
            }
            Extension::Fragment {
                offset,
                more,
                ident,
            } => {
                let mut body = vec![0u8; 6];
                Ipv6FragmentRepr {
                    frag_offset: offset / 8,
                    more_frags: more,
                    ident,
                }
                .emit(&mut Ipv6FragmentHeader::new_unchecked(&mut body[..]));
                emit_ext(next, 0, &body)
            }
        }
    }
}

/// A generic extension header (next header, length in 8-byte units beyond the first 8,
/// `data`).
fn emit_ext(next: IpProtocol, length: u8, data: &[u8]) -> Vec<u8> {
    let repr = Ipv6ExtHeaderRepr {
        next_header: next,
        length,
        data,
    };
    let mut bytes = vec![0u8; 2 + data.len()];
    repr.emit(&mut Ipv6ExtHeader::new_unchecked(&mut bytes[..]));
    bytes[2..].copy_from_slice(data);
    bytes
}

/// `whole` (an IPv6 packet without extension headers) with `extensions` inserted, in order,
/// between its header and its upper-layer header. The upper-layer checksum stays valid:
/// its pseudo-header does not count extension headers.
pub fn with_extensions(whole: &[u8], extensions: &[Extension]) -> Vec<u8> {
    let ip = Ipv6Packet::new_checked(whole).expect("an IPv6 packet");
    let upper = ip.next_header();
    let mut chain = Vec::new();
    for (i, extension) in extensions.iter().enumerate() {
        let next = extensions.get(i + 1).map_or(upper, |e| e.protocol());
        chain.extend(extension.emit(next));
    }
    let first = extensions.first().map_or(upper, |e| e.protocol());
    let mut body = chain;
    body.extend_from_slice(ip.payload());
    packet(ip.src_addr(), ip.dst_addr(), first, &body)
}

/// Sets the hop limit.
pub fn set_hop_limit(bytes: &mut [u8], hop_limit: u8) {
    Ipv6Packet::new_unchecked(bytes).set_hop_limit(hop_limit);
}

/// Whether the upper-layer checksum of an IPv6 packet without extension headers (TCP, UDP,
/// ICMPv6, all with the pseudo-header) verifies — what a receiving host would check.
pub fn checksums_valid(bytes: &[u8]) -> bool {
    let Ok(ip) = Ipv6Packet::new_checked(bytes) else {
        return false;
    };
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let payload = ip.payload();
    match ip.next_header() {
        IpProtocol::Tcp => TcpPacket::new_checked(payload)
            .is_ok_and(|t| t.verify_checksum(&src.into(), &dst.into())),
        IpProtocol::Udp => UdpPacket::new_checked(payload)
            .is_ok_and(|u| u.verify_checksum(&src.into(), &dst.into())),
        IpProtocol::Icmpv6 => {
            Icmpv6Packet::new_checked(payload).is_ok_and(|i| i.verify_checksum(&src, &dst))
        }
        _ => true,
    }
}

/// The frame of a router advertisement that `router` (link-local, at `mac`) sends to all
/// nodes, as an upstream router on the appliance's uplink does: a default router for half
/// an hour, the /64 `prefix` on-link and autonomous (valid a day, preferred four hours),
/// and `resolvers` in an RDNSS option (RFC 8106, 20 minutes) when there are any.
pub fn router_advert_frame(
    router: Ipv6Address,
    mac: EthernetAddress,
    prefix: Ipv6Address,
    resolvers: &[Ipv6Address],
) -> Vec<u8> {
    let message = NdiscRepr::RouterAdvert {
        hop_limit: 64,
        flags: NdiscRouterFlags::empty(),
        router_lifetime: Duration::from_secs(1800),
        reachable_time: Duration::ZERO,
        retrans_time: Duration::ZERO,
        lladdr: Some(mac.into()),
        mtu: None,
        prefix_info: Some(NdiscPrefixInformation {
            prefix_len: 64,
            flags: NdiscPrefixInfoFlags::ON_LINK | NdiscPrefixInfoFlags::ADDRCONF,
            valid_lifetime: Duration::from_secs(86_400),
            preferred_lifetime: Duration::from_secs(14_400),
            prefix,
        }),
    };
    let outgoing = Outgoing {
        eth_src: mac,
        eth_dst: EthernetAddress([0x33, 0x33, 0, 0, 0, 1]),
        src: router,
        dst: Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
        message,
        rdnss: (!resolvers.is_empty()).then_some((Duration::from_secs(1200), resolvers)),
    };
    let mut frame = vec![0; outgoing.len()];
    outgoing.emit(&mut frame);
    frame
}
