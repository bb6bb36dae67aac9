//! Parsing and validating an IPv6 packet once, at the edge: [`IpSummary::parse_ipv6`].
//!
//! Beside what [`IpSummary::parse`] checks for IPv4 (lengths, a transport header long
//! enough to read, coherent TCP flags), an IPv6 packet's extension-header chain is walked
//! to the upper-layer header, with a bound:
//!
//! - at most [`MAX_EXTENSION_HEADERS`] extension headers, else
//!   [`Malformed::ExtensionChainTooLong`] (a long chain is a known way past firewalls that
//!   stop looking, RFC 7112 §1);
//! - a hop-by-hop options header only first (RFC 8200 §4.1);
//! - a type 0 routing header is refused wherever it appears ([`Malformed::RoutingHeaderType0`],
//!   RFC 5095: it turns any host on the path into an amplifier);
//! - the first fragment must hold the whole chain *and* the upper-layer header (RFC 7112),
//!   else [`Malformed::IncompleteHeaderChain`]; a later fragment has no transport header;
//! - the policy sees the upper-layer protocol found after the chain (`protocol`), and
//!   `header_len` counts every byte before it, so every later stage (state, NAT, rewrite)
//!   finds the transport header where it expects it.
//!
//! ICMPv6 messages are summarised like ICMP ones: echo, errors with the quoted packet
//! (whose own chain is walked the same way), and everything else — neighbour discovery
//! included — as [`IcmpSummary::Other`]. Every read goes through `smoltcp::wire` views.

use smoltcp::wire::{
    Icmpv6Message, Icmpv6Packet, IpProtocol, Ipv6ExtHeader, Ipv6FragmentHeader, Ipv6Packet,
    Ipv6RoutingHeader, Ipv6RoutingType, TcpPacket, UdpPacket, IPV6_HEADER_LEN,
};

use crate::packet::{
    check_fragment_bounds, parse_transport, IcmpSummary, IpSummary, Malformed, QuotedPacket,
    Transport,
};

/// Most extension headers a packet may carry before its upper-layer header. Real traffic
/// carries at most a few (hop-by-hop, destination options, routing, fragment).
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// Longest quoted IPv6 header (with extension headers) an ICMPv6 error may carry for the
/// data plane to follow it; longer quotes are not tracked.
pub const MAX_QUOTED_IPV6_HEADER_LEN: usize = 128;

/// Bytes of an IPv6 fragment header.
const FRAGMENT_HEADER_LEN: usize = 8;

/// Where an extension-header walk ended.
struct Chain {
    /// The upper-layer protocol (or the last next-header value, for a later fragment).
    protocol: IpProtocol,
    /// Bytes from the start of the IPv6 header to the upper-layer header.
    header_len: usize,
    /// The fragment header's offset (bytes), more-fragments flag and identification.
    fragment: Option<(u16, bool, u32)>,
}

/// Walks the chain of `packet` (a whole IPv6 packet, or a quote of one): at most
/// [`MAX_EXTENSION_HEADERS`], stopping at the upper-layer header or after the fragment
/// header of a later fragment.
fn walk_chain(packet: &[u8]) -> Result<Chain, Malformed> {
    let ip = Ipv6Packet::new_unchecked(packet);
    let mut protocol = ip.next_header();
    let mut offset = IPV6_HEADER_LEN;
    let mut fragment = None;
    for index in 0..=MAX_EXTENSION_HEADERS {
        let (next, length) = match protocol {
            IpProtocol::HopByHop if index != 0 => return Err(Malformed::MisplacedHopByHop),
            IpProtocol::HopByHop | IpProtocol::Ipv6Route | IpProtocol::Ipv6Opts => {
                let rest = packet.get(offset..).ok_or(Malformed::IncompleteHeaderChain)?;
                let ext =
                    Ipv6ExtHeader::new_checked(rest).map_err(|_| Malformed::IncompleteHeaderChain)?;
                if protocol == IpProtocol::Ipv6Route {
                    let routing = Ipv6RoutingHeader::new_checked(ext.payload())
                        .map_err(|_| Malformed::IncompleteHeaderChain)?;
                    if routing.routing_type() == Ipv6RoutingType::Type0 {
                        return Err(Malformed::RoutingHeaderType0);
                    }
                }
                (ext.next_header(), 8 * (usize::from(ext.header_len()) + 1))
            }
            IpProtocol::Ipv6Frag => {
                let rest = packet.get(offset..).ok_or(Malformed::IncompleteHeaderChain)?;
                let ext =
                    Ipv6ExtHeader::new_checked(rest).map_err(|_| Malformed::IncompleteHeaderChain)?;
                let header = Ipv6FragmentHeader::new_checked(ext.payload())
                    .map_err(|_| Malformed::IncompleteHeaderChain)?;
                let (frag_offset, more) = (header.frag_offset() * 8, header.more_frags());
                fragment = Some((frag_offset, more, header.ident()));
                let next = ext.next_header();
                offset += FRAGMENT_HEADER_LEN;
                if frag_offset != 0 {
                    // A later fragment: what follows is the middle of the datagram.
                    return Ok(Chain {
                        protocol: next,
                        header_len: offset,
                        fragment,
                    });
                }
                protocol = next;
                continue;
            }
            _ => {
                return Ok(Chain {
                    protocol,
                    header_len: offset,
                    fragment,
                })
            }
        };
        protocol = next;
        offset += length;
    }
    Err(Malformed::ExtensionChainTooLong)
}

impl IpSummary {
    /// Parses and validates the IPv6 packet in `bytes` (which may be longer than the
    /// packet: Ethernet padding). See the module documentation.
    pub fn parse_ipv6(bytes: &[u8]) -> Result<IpSummary, Malformed> {
        let unchecked = Ipv6Packet::new_checked(bytes).map_err(|_| Malformed::Truncated)?;
        if unchecked.version() != 6 {
            return Err(Malformed::BadVersion);
        }
        let total_len = unchecked.total_len();
        let packet = bytes.get(..total_len).ok_or(Malformed::Truncated)?;
        let ip = Ipv6Packet::new_unchecked(packet);
        let chain = walk_chain(packet)?;
        let payload = packet
            .get(chain.header_len..)
            .ok_or(Malformed::IncompleteHeaderChain)?;
        let (fragment_offset, more_fragments, ident) = chain.fragment.unwrap_or((0, false, 0));
        check_fragment_bounds(fragment_offset, more_fragments, payload.len())?;
        let transport = if fragment_offset != 0 {
            if fragment_offset == 8 && chain.protocol == IpProtocol::Tcp {
                return Err(Malformed::FragmentOverlapsTransport);
            }
            Transport::NonFirstFragment
        } else if chain.protocol == IpProtocol::Icmpv6 {
            Transport::Icmp(parse_icmpv6(payload, chain.header_len)?)
        } else {
            let transport = parse_transport(chain.protocol, payload, chain.header_len);
            if more_fragments && transport == Err(Malformed::TruncatedTransport) {
                // RFC 7112: the first fragment carries the whole upper-layer header.
                return Err(Malformed::IncompleteHeaderChain);
            }
            transport?
        };
        Ok(IpSummary {
            header_len: chain.header_len,
            total_len,
            src: ip.src_addr().into(),
            dst: ip.dst_addr().into(),
            protocol: chain.protocol,
            ttl: ip.hop_limit(),
            ident,
            dont_fragment: true,
            more_fragments,
            fragment_offset,
            transport,
        })
    }
}

/// Summarises an ICMPv6 message (`payload`, at `header_len` bytes into the packet).
fn parse_icmpv6(payload: &[u8], header_len: usize) -> Result<IcmpSummary, Malformed> {
    let icmp = Icmpv6Packet::new_checked(payload).map_err(|_| Malformed::TruncatedTransport)?;
    let icmp_type: u8 = icmp.msg_type().into();
    let code = icmp.msg_code();
    match icmp.msg_type() {
        Icmpv6Message::EchoRequest | Icmpv6Message::EchoReply => Ok(IcmpSummary::Echo {
            request: icmp.msg_type() == Icmpv6Message::EchoRequest,
            ident: icmp.echo_ident(),
        }),
        message if message.is_error() => {
            let quoted = parse_quoted_ipv6(icmp.payload(), header_len + icmp.header_len())
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

/// Parses the IPv6 packet quoted in an ICMPv6 error (at `offset` in the outer packet).
/// The quote is usually cut short: lengths are not checked beyond what is read, as for
/// ICMP (see `packet::parse_quoted`); the chain must end within the quote and within
/// [`MAX_QUOTED_IPV6_HEADER_LEN`] bytes.
fn parse_quoted_ipv6(bytes: &[u8], offset: usize) -> Option<QuotedPacket> {
    /// TCP/UDP ports, a TCP sequence number, an echo header: all within 8 bytes.
    const PORTS_LEN: usize = 4;
    const TCP_SEQ_END: usize = 8;
    const ECHO_HEADER_LEN: usize = 8;
    if bytes.len() < IPV6_HEADER_LEN {
        return None;
    }
    let ip = Ipv6Packet::new_unchecked(bytes);
    if ip.version() != 6 {
        return None;
    }
    let chain = walk_chain(bytes).ok()?;
    if chain.header_len > MAX_QUOTED_IPV6_HEADER_LEN {
        return None;
    }
    let rest = bytes.get(chain.header_len..)?;
    let first_fragment = chain.fragment.is_none_or(|(offset, _, _)| offset == 0);
    let protocol = chain.protocol;
    let tcp_seq = (protocol == IpProtocol::Tcp && first_fragment && rest.len() >= TCP_SEQ_END)
        .then(|| TcpPacket::new_unchecked(rest).seq_number().0 as u32);
    let (src_port, dst_port) = match protocol {
        IpProtocol::Tcp | IpProtocol::Udp if first_fragment && rest.len() >= PORTS_LEN => {
            let udp = UdpPacket::new_unchecked(rest);
            (Some(udp.src_port()), Some(udp.dst_port()))
        }
        IpProtocol::Icmpv6 if first_fragment && rest.len() >= ECHO_HEADER_LEN => {
            let icmp = Icmpv6Packet::new_unchecked(rest);
            match icmp.msg_type() {
                Icmpv6Message::EchoRequest | Icmpv6Message::EchoReply => {
                    (Some(icmp.echo_ident()), Some(icmp.echo_ident()))
                }
                _ => (None, None),
            }
        }
        _ => (None, None),
    };
    Some(QuotedPacket {
        offset,
        header_len: chain.header_len,
        src: ip.src_addr().into(),
        dst: ip.dst_addr().into(),
        protocol,
        src_port,
        dst_port,
        tcp_seq,
    })
}
