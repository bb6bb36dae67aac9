//! Parsing and validating an IPv4 packet once, at the edge.
//!
//! [`IpSummary::parse`] takes the bytes of an IPv4 packet (the Ethernet payload), checks
//! everything the data plane relies on — version, header length, total length, header
//! checksum, well-formed IPv4 options (summed up by [`IpOptions`]), a transport header
//! long enough to read the ports/flags (TCP, UDP, SCTP) or the ICMP type, coherent TCP
//! flags —
//! and returns the fields every later stage needs, or a [`Malformed`] reason. Everything
//! after it (anti-spoofing, state, NAT, policy, rewriting) works from the summary and never
//! re-parses or indexes raw bytes by hand. Parsing uses `smoltcp::wire` views.
//!
//! What is deliberately not checked: transport checksums (a router does not verify them;
//! incremental rewrites keep a good checksum good and a bad one bad, so the end host still
//! sees the damage).

use crate::ip_options::IpOptions;
use crate::sctp::{self, SctpPacket};
use smoltcp::wire::{
    Icmpv4Message, Icmpv4Packet, Icmpv6Message, Icmpv6Packet, IpAddress, IpProtocol, IpVersion,
    Ipv4Address, Ipv4Cidr, Ipv4Packet, TcpPacket, UdpPacket, IPV4_HEADER_LEN, UDP_HEADER_LEN,
};

/// The TCP control flags the data plane tracks, as one byte. Read from a segment with
/// smoltcp's accessors ([`TcpSummary::flags`] is built from `TcpPacket::syn()` and its
/// siblings, never from raw header bytes); the bits are those of the header's flags field.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
}

/// Why a packet is not a valid IPv4 packet the data plane will carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Malformed {
    /// Shorter than an IPv4 header, or lengths that do not fit the buffer.
    Truncated,
    /// Not version 4.
    BadVersion,
    /// Header length below 20 bytes or beyond the total length.
    BadHeaderLength,
    /// The header checksum does not verify.
    BadChecksum,
    /// A first fragment (or whole packet) too short to hold its transport header — the
    /// "tiny fragment" attack (RFC 1858).
    TruncatedTransport,
    /// A non-first fragment overlapping the transport header (offset of 8 bytes, RFC 1858),
    /// or (found by the fragment table) the bytes its first fragment carried.
    FragmentOverlapsTransport,
    /// A fragment reaching past byte 65,535 of its datagram: no datagram is that long, and
    /// cut again its pieces' offsets would wrap around to 0.
    DatagramTooLong,
    /// A fragment with more to come whose payload is not a multiple of 8 bytes (RFC 791:
    /// the next fragment could not start where it ends).
    FragmentMisaligned,
    /// A TCP segment whose flags no real stack sends (SYN+FIN, SYN+RST, FIN+RST, no flags,
    /// FIN/PSH/URG without ACK).
    ImpossibleTcpFlags,
    /// IPv6: more extension headers than the data plane walks
    /// ([`crate::ipv6::MAX_EXTENSION_HEADERS`]).
    ExtensionChainTooLong,
    /// IPv6: a hop-by-hop options header other than first (RFC 8200 §4.1).
    MisplacedHopByHop,
    /// IPv6: a type 0 routing header (deprecated by RFC 5095).
    RoutingHeaderType0,
    /// IPv6: the extension-header chain, or the upper-layer header of a first fragment,
    /// does not fit in the packet (RFC 7112).
    IncompleteHeaderChain,
    /// IPv4 options whose lengths do not fit the header.
    BadIpOptions,
    /// A whole UDP datagram whose length field is shorter than its header or longer than
    /// the packet carries.
    BadTransportLength,
}

impl Malformed {
    /// A short name for logs and counters.
    pub fn as_str(&self) -> &'static str {
        match self {
            Malformed::Truncated => "truncated",
            Malformed::BadVersion => "bad-version",
            Malformed::BadHeaderLength => "bad-header-length",
            Malformed::BadChecksum => "bad-checksum",
            Malformed::TruncatedTransport => "truncated-transport",
            Malformed::FragmentOverlapsTransport => "fragment-overlap",
            Malformed::DatagramTooLong => "datagram-too-long",
            Malformed::FragmentMisaligned => "fragment-misaligned",
            Malformed::ImpossibleTcpFlags => "bad-tcp-flags",
            Malformed::ExtensionChainTooLong => "ipv6-chain-too-long",
            Malformed::MisplacedHopByHop => "ipv6-misplaced-hop-by-hop",
            Malformed::RoutingHeaderType0 => "ipv6-routing-header-type-0",
            Malformed::IncompleteHeaderChain => "ipv6-incomplete-header-chain",
            Malformed::BadIpOptions => "bad-ip-options",
            Malformed::BadTransportLength => "bad-transport-length",
        }
    }
}

/// The fields of a TCP header the state machine needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSummary {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Control flags (see [`tcp_flags`]).
    pub flags: u8,
    /// Window field (unscaled).
    pub window: u16,
    /// Window scale option, if present (SYN segments only).
    pub window_scale: Option<u8>,
    /// Bytes of payload (sequence space consumed, without SYN/FIN).
    pub payload_len: u32,
}

impl TcpSummary {
    /// Whether all of `flags` are set.
    pub fn has(&self, flags: u8) -> bool {
        self.flags & flags == flags
    }
}

/// The transport endpoints inside an ICMP error's quoted packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotedPacket {
    /// Offset of the quoted IP header from the start of the outer IP packet.
    pub offset: usize,
    /// Length of the quoted IP header (IPv6: with the extension headers walked).
    pub header_len: usize,
    /// Quoted source address.
    pub src: IpAddress,
    /// Quoted destination address.
    pub dst: IpAddress,
    /// Quoted protocol.
    pub protocol: IpProtocol,
    /// Quoted source port (TCP, UDP, SCTP) or echo identifier (ICMP echo), if quoted.
    pub src_port: Option<u16>,
    /// Quoted destination port (TCP, UDP, SCTP) or echo identifier (ICMP echo), if quoted.
    pub dst_port: Option<u16>,
    /// Quoted TCP sequence number, if quoted (it ends the 8 bytes RFC 792 promises).
    pub tcp_seq: Option<u32>,
}

/// What kind of ICMP message a packet carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpSummary {
    /// Echo request or reply.
    Echo {
        /// `true` for a request.
        request: bool,
        /// Identifier.
        ident: u16,
    },
    /// An error quoting the packet that caused it (destination unreachable, time
    /// exceeded, parameter problem, redirect).
    Error {
        /// Type.
        icmp_type: u8,
        /// Code.
        code: u8,
        /// The quoted packet.
        quoted: QuotedPacket,
    },
    /// Anything else (timestamps, router advertisements, ...).
    Other {
        /// Type.
        icmp_type: u8,
        /// Code.
        code: u8,
    },
}

/// The transport layer of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP.
    Tcp(TcpSummary),
    /// UDP.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// SCTP (its common header; see [`crate::sctp`]).
    Sctp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// ICMP.
    Icmp(IcmpSummary),
    /// A fragment after the first: no transport header.
    NonFirstFragment,
    /// Another protocol (carried without port information).
    Other,
}

/// A validated IPv4 or IPv6 packet. See the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpSummary {
    /// Bytes before the transport header: the IPv4 header with its options, or the IPv6
    /// header with its extension headers.
    pub header_len: usize,
    /// Total length in bytes (the packet may sit in a longer buffer: Ethernet padding).
    pub total_len: usize,
    /// Source address.
    pub src: IpAddress,
    /// Destination address.
    pub dst: IpAddress,
    /// Protocol: for IPv6, the upper-layer protocol found after the extension headers.
    pub protocol: IpProtocol,
    /// Time to live (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    /// Identification (IPv4's 16 bits, or an IPv6 fragment header's 32).
    pub ident: u32,
    /// Don't-fragment flag (always set for IPv6: routers never fragment it).
    pub dont_fragment: bool,
    /// More-fragments flag.
    pub more_fragments: bool,
    /// Fragment offset in bytes.
    pub fragment_offset: u16,
    /// What its IPv4 options come to (see [`crate::ip_options`]).
    pub options: IpOptions,
    /// The transport layer.
    pub transport: Transport,
}

impl IpSummary {
    /// The IP version.
    pub fn version(&self) -> IpVersion {
        self.src.version()
    }

    /// Whether this is an IPv6 packet.
    pub fn is_ipv6(&self) -> bool {
        self.version() == IpVersion::Ipv6
    }

    /// The IPv4 source and destination, `None` for an IPv6 packet.
    pub fn ipv4_addresses(&self) -> Option<(Ipv4Address, Ipv4Address)> {
        match (self.src, self.dst) {
            (IpAddress::Ipv4(src), IpAddress::Ipv4(dst)) => Some((src, dst)),
            _ => None,
        }
    }

    /// Whether this packet is a fragment (first or later).
    pub fn is_fragment(&self) -> bool {
        self.more_fragments || self.fragment_offset != 0
    }

    /// Source and destination ports (TCP, UDP, SCTP), or the echo identifier twice (ICMP
    /// echo), or zeros.
    pub fn ports(&self) -> (u16, u16) {
        match self.transport {
            Transport::Tcp(t) => (t.src_port, t.dst_port),
            Transport::Udp { src_port, dst_port } | Transport::Sctp { src_port, dst_port } => {
                (src_port, dst_port)
            }
            Transport::Icmp(IcmpSummary::Echo { ident, .. }) => (ident, ident),
            _ => (0, 0),
        }
    }

    /// ICMP type and code (zeros for other protocols).
    pub fn icmp_type_code(&self) -> (u8, u8) {
        match self.transport {
            Transport::Icmp(IcmpSummary::Echo { request, .. }) => {
                (echo_type(self.version(), request), 0)
            }
            Transport::Icmp(IcmpSummary::Error {
                icmp_type, code, ..
            }) => (icmp_type, code),
            Transport::Icmp(IcmpSummary::Other { icmp_type, code }) => (icmp_type, code),
            _ => (0, 0),
        }
    }

    /// Parses and validates `bytes` (which may be longer than the packet: Ethernet padding).
    pub fn parse(bytes: &[u8]) -> Result<IpSummary, Malformed> {
        if bytes.len() < IPV4_HEADER_LEN {
            return Err(Malformed::Truncated);
        }
        let unchecked = Ipv4Packet::new_unchecked(bytes);
        if unchecked.version() != 4 {
            return Err(Malformed::BadVersion);
        }
        let header_len = unchecked.header_len() as usize;
        let total_len = unchecked.total_len() as usize;
        if header_len < IPV4_HEADER_LEN || header_len > total_len {
            return Err(Malformed::BadHeaderLength);
        }
        if total_len > bytes.len() {
            return Err(Malformed::Truncated);
        }
        let packet =
            Ipv4Packet::new_checked(&bytes[..total_len]).map_err(|_| Malformed::Truncated)?;
        if !packet.verify_checksum() {
            return Err(Malformed::BadChecksum);
        }
        let options = IpOptions::of(&packet.as_ref()[IPV4_HEADER_LEN..header_len])
            .map_err(|_| Malformed::BadIpOptions)?;
        let fragment_offset = packet.frag_offset();
        let more_fragments = packet.more_frags();
        let protocol = packet.next_header();
        let payload = packet.payload();
        check_fragment_bounds(fragment_offset, more_fragments, payload.len())?;
        let transport = if fragment_offset != 0 {
            if fragment_offset == 8 && protocol == IpProtocol::Tcp {
                return Err(Malformed::FragmentOverlapsTransport);
            }
            Transport::NonFirstFragment
        } else {
            parse_transport(protocol, payload, header_len, !more_fragments)?
        };
        Ok(IpSummary {
            header_len,
            total_len,
            src: packet.src_addr().into(),
            dst: packet.dst_addr().into(),
            protocol,
            ttl: packet.hop_limit(),
            ident: packet.ident().into(),
            dont_fragment: packet.dont_frag(),
            more_fragments,
            fragment_offset,
            options,
            transport,
        })
    }
}

/// The ICMP (or ICMPv6) type of an echo request or reply.
pub fn echo_type(version: IpVersion, request: bool) -> u8 {
    match (version, request) {
        (IpVersion::Ipv4, true) => Icmpv4Message::EchoRequest.into(),
        (IpVersion::Ipv4, false) => Icmpv4Message::EchoReply.into(),
        (IpVersion::Ipv6, true) => Icmpv6Message::EchoRequest.into(),
        (IpVersion::Ipv6, false) => Icmpv6Message::EchoReply.into(),
    }
}

/// The most bytes of payload a datagram can have, counted from its first fragment's offset
/// 0 (pf's `IP_MAXPACKET`: the total length field's range).
pub const MAX_DATAGRAM_PAYLOAD: usize = 65535;

/// Refuses a fragment that ends past [`MAX_DATAGRAM_PAYLOAD`] (pf's "respect maximum
/// length"), or that has more to come but does not end on an 8-byte boundary (pf's "all
/// fragments are 8 byte aligned").
pub(crate) fn check_fragment_bounds(
    offset: u16,
    more: bool,
    payload_len: usize,
) -> Result<(), Malformed> {
    if usize::from(offset) + payload_len > MAX_DATAGRAM_PAYLOAD {
        return Err(Malformed::DatagramTooLong);
    }
    if more && payload_len % 8 != 0 {
        return Err(Malformed::FragmentMisaligned);
    }
    Ok(())
}

/// The transport summary of a first fragment or whole packet (`whole`: no more fragments
/// follow, so the payload is all of the datagram).
pub(crate) fn parse_transport(
    protocol: IpProtocol,
    payload: &[u8],
    header_len: usize,
    whole: bool,
) -> Result<Transport, Malformed> {
    match protocol {
        IpProtocol::Tcp => {
            let tcp = TcpPacket::new_checked(payload).map_err(|_| Malformed::TruncatedTransport)?;
            let flags = flags_of(&tcp);
            check_tcp_flags(flags)?;
            let window_scale = if flags & tcp_flags::SYN != 0 {
                tcp.options_summary().ok().and_then(|o| o.window_scale)
            } else {
                None
            };
            Ok(Transport::Tcp(TcpSummary {
                src_port: tcp.src_port(),
                dst_port: tcp.dst_port(),
                seq: tcp.seq_number().0 as u32,
                ack: tcp.ack_number().0 as u32,
                flags,
                window: tcp.window_len(),
                window_scale,
                payload_len: tcp.payload().len() as u32,
            }))
        }
        IpProtocol::Udp => {
            // Only the ports are needed; a first fragment carries the full 8-byte header but
            // not the whole datagram its length field counts, so `new_checked` (which checks
            // that length) cannot be used.
            if payload.len() < UDP_HEADER_LEN {
                return Err(Malformed::TruncatedTransport);
            }
            let udp = UdpPacket::new_unchecked(payload);
            // A whole datagram's length field must fit the packet (pf drops it as "short"
            // otherwise): a receiver would drop it, and its checksum cannot verify.
            let claimed = usize::from(udp.len());
            if whole && (claimed < UDP_HEADER_LEN || claimed > payload.len()) {
                return Err(Malformed::BadTransportLength);
            }
            Ok(Transport::Udp {
                src_port: udp.src_port(),
                dst_port: udp.dst_port(),
            })
        }
        IpProtocol::Icmp => parse_icmp(payload, header_len).map(Transport::Icmp),
        sctp::PROTOCOL => {
            let sctp =
                SctpPacket::new_checked(payload).map_err(|_| Malformed::TruncatedTransport)?;
            Ok(Transport::Sctp {
                src_port: sctp.src_port(),
                dst_port: sctp.dst_port(),
            })
        }
        _ => Ok(Transport::Other),
    }
}

/// The control flags of a segment, read with smoltcp's accessors.
pub(crate) fn flags_of(tcp: &TcpPacket<&[u8]>) -> u8 {
    use tcp_flags::*;
    [
        (tcp.fin(), FIN),
        (tcp.syn(), SYN),
        (tcp.rst(), RST),
        (tcp.psh(), PSH),
        (tcp.ack(), ACK),
        (tcp.urg(), URG),
    ]
    .iter()
    .filter(|(set, _)| *set)
    .fold(0, |flags, (_, bit)| flags | bit)
}

fn check_tcp_flags(flags: u8) -> Result<(), Malformed> {
    use tcp_flags::*;
    let impossible = flags & (SYN | FIN) == SYN | FIN
        || flags & (SYN | RST) == SYN | RST
        || flags & (FIN | RST) == FIN | RST
        || flags & (SYN | FIN | RST | ACK) == 0
        || (flags & ACK == 0 && flags & (FIN | PSH | URG) != 0);
    if impossible {
        Err(Malformed::ImpossibleTcpFlags)
    } else {
        Ok(())
    }
}

/// Source quench (RFC 792, deprecated by RFC 6633), an error type `Icmpv4Message` has no
/// name for. An error like the others: it quotes a packet, and is forwarded only as
/// related to that packet's flow — never as a flow of its own.
pub const SOURCE_QUENCH: Icmpv4Message = Icmpv4Message::Unknown(4);

fn parse_icmp(payload: &[u8], header_len: usize) -> Result<IcmpSummary, Malformed> {
    let icmp = Icmpv4Packet::new_checked(payload).map_err(|_| Malformed::TruncatedTransport)?;
    let icmp_type: u8 = icmp.msg_type().into();
    let code = icmp.msg_code();
    match icmp.msg_type() {
        Icmpv4Message::EchoRequest | Icmpv4Message::EchoReply => Ok(IcmpSummary::Echo {
            request: icmp.msg_type() == Icmpv4Message::EchoRequest,
            ident: icmp.echo_ident(),
        }),
        Icmpv4Message::DstUnreachable
        | Icmpv4Message::TimeExceeded
        | Icmpv4Message::ParamProblem
        | Icmpv4Message::Redirect
        | SOURCE_QUENCH => {
            // The quoted packet: an IPv4 header plus at least 8 bytes of its payload.
            let quoted = parse_quoted(icmp.data(), header_len + icmp.header_len())
                .ok_or(Malformed::TruncatedTransport)?;
            Ok(IcmpSummary::Error {
                icmp_type,
                code,
                quoted,
            })
        }
        _ => Ok(IcmpSummary::Other { icmp_type, code }),
    }
}

/// Parses the packet quoted in an ICMP error. Header checksum and total length are not
/// checked: the quote is usually truncated, and routers may have changed the TTL.
///
/// `smoltcp::wire` cannot parse this: its checked views insist on whole headers (TCP's is
/// 20 bytes) and on length fields that the truncated quote does not satisfy, while RFC 792
/// only promises the quoted IP header and the first 8 bytes of its payload. So the quote's
/// length is checked here, against exactly what is read — the two ports that start a TCP or
/// UDP header and a TCP sequence number, or an ICMP echo's type and identifier, all within
/// those 8 bytes — and the fields are then read through unchecked views.
fn parse_quoted(bytes: &[u8], offset: usize) -> Option<QuotedPacket> {
    if bytes.len() < IPV4_HEADER_LEN {
        return None;
    }
    let ip = Ipv4Packet::new_unchecked(bytes);
    let header_len = ip.header_len() as usize;
    if ip.version() != 4 || header_len < IPV4_HEADER_LEN || bytes.len() < header_len {
        return None;
    }
    let protocol = ip.next_header();
    let first_fragment = ip.frag_offset() == 0;
    let (src_port, dst_port, tcp_seq) =
        quoted_transport(protocol, &bytes[header_len..], first_fragment);
    Some(QuotedPacket {
        offset,
        header_len,
        src: ip.src_addr().into(),
        dst: ip.dst_addr().into(),
        protocol,
        src_port,
        dst_port,
        tcp_seq,
    })
}

/// The ports (or echo identifier, twice) and TCP sequence number a quote holds in `rest`,
/// the first bytes of its transport header (of `protocol`; none in a later fragment), as
/// far as the quote carries them — IPv4's and IPv6's alike (ICMP and ICMPv6 echoes keep
/// their identifier in the same place).
pub(crate) fn quoted_transport(
    protocol: IpProtocol,
    rest: &[u8],
    first_fragment: bool,
) -> (Option<u16>, Option<u16>, Option<u32>) {
    /// The two ports at the start of a TCP or UDP header.
    const PORTS_LEN: usize = 4;
    /// An ICMP echo's type, code, checksum, identifier and sequence number.
    const ECHO_HEADER_LEN: usize = 8;
    /// A TCP header's ports and sequence number.
    const TCP_SEQ_END: usize = 8;
    if !first_fragment {
        return (None, None, None);
    }
    let tcp_seq = (protocol == IpProtocol::Tcp && rest.len() >= TCP_SEQ_END)
        .then(|| TcpPacket::new_unchecked(rest).seq_number().0 as u32);
    let echo_ident = match protocol {
        _ if rest.len() < ECHO_HEADER_LEN => None,
        IpProtocol::Icmp => {
            let icmp = Icmpv4Packet::new_unchecked(rest);
            matches!(
                icmp.msg_type(),
                Icmpv4Message::EchoRequest | Icmpv4Message::EchoReply
            )
            .then(|| icmp.echo_ident())
        }
        IpProtocol::Icmpv6 => {
            let icmp = Icmpv6Packet::new_unchecked(rest);
            matches!(
                icmp.msg_type(),
                Icmpv6Message::EchoRequest | Icmpv6Message::EchoReply
            )
            .then(|| icmp.echo_ident())
        }
        _ => None,
    };
    let (src_port, dst_port) = match protocol {
        IpProtocol::Tcp | IpProtocol::Udp | sctp::PROTOCOL if rest.len() >= PORTS_LEN => {
            // TCP, UDP and SCTP all start with the two ports.
            let udp = UdpPacket::new_unchecked(rest);
            (Some(udp.src_port()), Some(udp.dst_port()))
        }
        _ => (echo_ident, echo_ident),
    };
    (src_port, dst_port, tcp_seq)
}

/// The blocks of IPv4 addresses that never hold a single host's address (RFC 1812 5.3.7,
/// RFC 6890): "this network" 0/8, loopback 127/8, multicast 224/4, and the reserved block
/// 240/4 with the limited broadcast. Such an address is never accepted as a source and
/// never forwarded to.
pub const SPECIAL_PURPOSE: [Ipv4Cidr; 4] = [
    Ipv4Cidr::new(Ipv4Address::new(0, 0, 0, 0), 8),
    Ipv4Cidr::new(Ipv4Address::new(127, 0, 0, 0), 8),
    Ipv4Cidr::new(Ipv4Address::new(224, 0, 0, 0), 4),
    Ipv4Cidr::new(Ipv4Address::new(240, 0, 0, 0), 4),
];

/// Whether a packet for `addr` may never be forwarded: an IPv4 [`SPECIAL_PURPOSE`] address,
/// or an IPv6 address that never leaves its link or is no single host's
/// ([`crate::route6::is_never_routed`]).
pub fn is_never_forwarded(addr: IpAddress) -> bool {
    match addr {
        IpAddress::Ipv4(v4) => is_special_purpose(v4),
        IpAddress::Ipv6(v6) => crate::route6::is_never_routed(v6),
    }
}

/// Whether `addr` lies in one of the [`SPECIAL_PURPOSE`] blocks.
pub fn is_special_purpose(addr: Ipv4Address) -> bool {
    SPECIAL_PURPOSE
        .iter()
        .any(|block| block.contains_addr(&addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::packets;

    #[test]
    fn tcp_syn_is_summarised() {
        let bytes = packets::tcp_syn([10, 137, 1, 10], 40000, [1, 1, 1, 1], 443);
        let s = IpSummary::parse(&bytes).unwrap();
        assert_eq!(s.protocol, IpProtocol::Tcp);
        assert_eq!(s.src, Ipv4Address::new(10, 137, 1, 10).into());
        assert_eq!(s.ports(), (40000, 443));
        let Transport::Tcp(tcp) = s.transport else {
            panic!("not tcp")
        };
        assert!(tcp.has(tcp_flags::SYN));
        assert_eq!(tcp.window_scale, Some(7));
        assert_eq!(tcp.payload_len, 0);
    }

    #[test]
    fn bad_header_checksum_is_rejected() {
        let mut bytes = packets::udp([10, 137, 1, 10], 5353, [10, 0, 2, 3], 53, b"q");
        bytes[10] ^= 0xff;
        assert_eq!(IpSummary::parse(&bytes), Err(Malformed::BadChecksum));
    }

    #[test]
    fn header_length_below_twenty_is_rejected() {
        let mut bytes = packets::udp([10, 137, 1, 10], 5353, [10, 0, 2, 3], 53, b"q");
        bytes[0] = 0x44;
        assert_eq!(IpSummary::parse(&bytes), Err(Malformed::BadHeaderLength));
    }

    #[test]
    fn total_length_beyond_buffer_is_truncated() {
        let bytes = packets::udp([10, 137, 1, 10], 5353, [10, 0, 2, 3], 53, b"query");
        assert_eq!(
            IpSummary::parse(&bytes[..bytes.len() - 1]),
            Err(Malformed::Truncated)
        );
    }

    #[test]
    fn ip_options_are_summed_up() {
        let plain = packets::udp([10, 137, 1, 10], 5353, [10, 0, 2, 3], 53, b"q");
        assert_eq!(IpSummary::parse(&plain).unwrap().options, IpOptions::None);
        let routed =
            packets::with_ip_options(&plain, &packets::loose_source_route(&[[1, 2, 3, 4]]));
        let s = IpSummary::parse(&routed).unwrap();
        assert_eq!((s.options, s.header_len), (IpOptions::SourceRoute, 28));
        assert_eq!(s.ports(), (5353, 53));
    }

    #[test]
    fn options_that_run_past_the_header_are_malformed() {
        let plain = packets::udp([10, 137, 1, 10], 5353, [10, 0, 2, 3], 53, b"q");
        let bad = packets::with_ip_options(&plain, &[crate::ip_options::ROUTER_ALERT, 9, 0, 0]);
        assert_eq!(IpSummary::parse(&bad), Err(Malformed::BadIpOptions));
    }

    #[test]
    fn ethernet_padding_after_the_packet_is_ignored() {
        let mut bytes = packets::udp([10, 137, 1, 10], 5353, [10, 0, 2, 3], 53, b"q");
        let len = bytes.len();
        bytes.extend_from_slice(&[0; 10]);
        assert_eq!(IpSummary::parse(&bytes).unwrap().total_len, len);
    }

    #[test]
    fn syn_fin_is_impossible() {
        let mut bytes = packets::tcp_syn([10, 137, 1, 10], 40000, [1, 1, 1, 1], 443);
        packets::set_tcp_flags(&mut bytes, tcp_flags::SYN | tcp_flags::FIN);
        assert_eq!(IpSummary::parse(&bytes), Err(Malformed::ImpossibleTcpFlags));
    }

    #[test]
    fn null_and_xmas_scans_are_impossible() {
        for flags in [0, tcp_flags::FIN | tcp_flags::PSH | tcp_flags::URG] {
            let mut bytes = packets::tcp_syn([10, 137, 1, 10], 40000, [1, 1, 1, 1], 443);
            packets::set_tcp_flags(&mut bytes, flags);
            assert_eq!(
                IpSummary::parse(&bytes),
                Err(Malformed::ImpossibleTcpFlags),
                "flags {flags:#x}"
            );
        }
    }

    #[test]
    fn tiny_first_fragment_is_rejected() {
        let bytes = packets::tcp_syn([10, 137, 1, 10], 40000, [1, 1, 1, 1], 443);
        // Keep the IP header and 8 bytes of TCP, as a first fragment.
        let mut tiny = bytes[..28].to_vec();
        packets::set_fragment(&mut tiny, true, 0);
        assert_eq!(IpSummary::parse(&tiny), Err(Malformed::TruncatedTransport));
    }

    #[test]
    fn fragment_at_offset_eight_overlapping_tcp_header_is_rejected() {
        let mut bytes = packets::tcp_syn([10, 137, 1, 10], 40000, [1, 1, 1, 1], 443);
        packets::set_fragment(&mut bytes, false, 8);
        assert_eq!(
            IpSummary::parse(&bytes),
            Err(Malformed::FragmentOverlapsTransport)
        );
    }

    #[test]
    fn sctp_ports_are_summarised() {
        let bytes = packets::sctp_init([10, 137, 1, 10], 40000, [1, 1, 1, 1], 9999);
        let s = IpSummary::parse(&bytes).unwrap();
        assert_eq!(s.protocol, sctp::PROTOCOL);
        assert_eq!(
            s.transport,
            Transport::Sctp {
                src_port: 40000,
                dst_port: 9999
            }
        );
        assert_eq!(s.ports(), (40000, 9999));
    }

    #[test]
    fn sctp_shorter_than_its_common_header_is_truncated() {
        let bytes = packets::ipv4([10, 137, 1, 10], [1, 1, 1, 1], 132, &[0; 8]);
        assert_eq!(IpSummary::parse(&bytes), Err(Malformed::TruncatedTransport));
    }

    #[test]
    fn fragment_reaching_past_the_largest_datagram_is_rejected() {
        let mut bytes = packets::udp([10, 137, 1, 10], 5353, [10, 0, 2, 3], 53, &[7; 1472]);
        packets::set_fragment(&mut bytes, true, 64160);
        assert_eq!(IpSummary::parse(&bytes), Err(Malformed::DatagramTooLong));
        // Ending exactly at byte 65,535 is allowed.
        let mut last = packets::udp([10, 137, 1, 10], 5353, [10, 0, 2, 3], 53, &[7; 1367]);
        packets::set_fragment(&mut last, false, 64160);
        assert!(IpSummary::parse(&last).is_ok());
    }

    #[test]
    fn fragment_with_more_to_come_must_end_on_an_eight_byte_boundary() {
        let mut bytes = packets::udp([10, 137, 1, 10], 5353, [10, 0, 2, 3], 53, &[7; 93]);
        packets::set_fragment(&mut bytes, true, 1480);
        assert_eq!(IpSummary::parse(&bytes), Err(Malformed::FragmentMisaligned));
        packets::set_fragment(&mut bytes, false, 1480);
        assert!(
            IpSummary::parse(&bytes).is_ok(),
            "the last fragment ends anywhere"
        );
    }

    #[test]
    fn later_fragment_has_no_transport() {
        let mut bytes = packets::udp([10, 137, 1, 10], 5353, [10, 0, 2, 3], 53, &[7; 64]);
        packets::set_fragment(&mut bytes, false, 1480);
        let s = IpSummary::parse(&bytes).unwrap();
        assert_eq!(s.transport, Transport::NonFirstFragment);
        assert!(s.is_fragment());
    }

    #[test]
    fn icmp_error_quote_is_summarised() {
        let inner = packets::udp([10, 0, 2, 15], 40000, [8, 8, 8, 8], 53, b"q");
        let bytes = packets::icmp_error([10, 0, 2, 2], [10, 0, 2, 15], 3, 3, &inner);
        let s = IpSummary::parse(&bytes).unwrap();
        let Transport::Icmp(IcmpSummary::Error {
            icmp_type: 3,
            code: 3,
            quoted,
        }) = s.transport
        else {
            panic!("not an error: {:?}", s.transport)
        };
        assert_eq!(quoted.offset, 28);
        assert_eq!(quoted.src, Ipv4Address::new(10, 0, 2, 15).into());
        assert_eq!(quoted.dst, Ipv4Address::new(8, 8, 8, 8).into());
        assert_eq!((quoted.src_port, quoted.dst_port), (Some(40000), Some(53)));
    }

    #[test]
    fn special_purpose_addresses_are_never_hosts() {
        for a in [
            [0, 1, 2, 3],
            [127, 0, 0, 1],
            [224, 0, 0, 1],
            [240, 0, 0, 1],
            [255, 255, 255, 255],
        ] {
            assert!(is_special_purpose(Ipv4Address::from(a)), "{a:?}");
        }
        assert!(!is_special_purpose(Ipv4Address::new(10, 137, 1, 10)));
    }
}
