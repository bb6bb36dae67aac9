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
    Ipv6RoutingHeader, Ipv6RoutingType, IPV6_HEADER_LEN,
};

use crate::ip_options::IpOptions;
use crate::packet::{
    check_fragment_bounds, parse_transport, quoted_transport, IcmpSummary, IpSummary, Malformed,
    QuotedPacket, Transport,
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
    /// A routing header with segments left: the destination is a waypoint, not the
    /// address the upper-layer checksum's pseudo-header names.
    en_route: bool,
}

/// Walks the chain of `packet` (a whole IPv6 packet, or a quote of one): at most
/// [`MAX_EXTENSION_HEADERS`], stopping at the upper-layer header or after the fragment
/// header of a later fragment.
fn walk_chain(packet: &[u8]) -> Result<Chain, Malformed> {
    let ip = Ipv6Packet::new_unchecked(packet);
    let mut protocol = ip.next_header();
    let mut offset = IPV6_HEADER_LEN;
    let mut fragment = None;
    let mut en_route = false;
    for index in 0..=MAX_EXTENSION_HEADERS {
        let (next, length) = match protocol {
            IpProtocol::HopByHop if index != 0 => return Err(Malformed::MisplacedHopByHop),
            IpProtocol::HopByHop | IpProtocol::Ipv6Route | IpProtocol::Ipv6Opts => {
                let rest = packet
                    .get(offset..)
                    .ok_or(Malformed::IncompleteHeaderChain)?;
                let ext = Ipv6ExtHeader::new_checked(rest)
                    .map_err(|_| Malformed::IncompleteHeaderChain)?;
                if protocol == IpProtocol::Ipv6Route {
                    let routing = Ipv6RoutingHeader::new_checked(ext.payload())
                        .map_err(|_| Malformed::IncompleteHeaderChain)?;
                    if routing.routing_type() == Ipv6RoutingType::Type0 {
                        return Err(Malformed::RoutingHeaderType0);
                    }
                    en_route |= routing.segments_left() > 0;
                }
                (ext.next_header(), 8 * (usize::from(ext.header_len()) + 1))
            }
            IpProtocol::Ipv6Frag => {
                let rest = packet
                    .get(offset..)
                    .ok_or(Malformed::IncompleteHeaderChain)?;
                let ext = Ipv6ExtHeader::new_checked(rest)
                    .map_err(|_| Malformed::IncompleteHeaderChain)?;
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
                        en_route,
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
                    en_route,
                })
            }
        };
        protocol = next;
        offset += length;
    }
    Err(Malformed::ExtensionChainTooLong)
}

/// Whether the IPv6 packet `packet` carries a routing header with segments left: its
/// destination is a waypoint, so the upper-layer checksum cannot be computed from its
/// header's addresses (RFC 8200 §8.1). `None` if its header chain does not parse.
pub fn routed_via_waypoint(packet: &[u8]) -> Option<bool> {
    Ipv6Packet::new_checked(packet).ok()?;
    walk_chain(packet).ok().map(|chain| chain.en_route)
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
            let transport =
                parse_transport(chain.protocol, payload, chain.header_len, !more_fragments);
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
            // Hop-by-hop and destination options are extension headers, walked above;
            // IPv6 has no IPv4 options.
            options: IpOptions::None,
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
    let (src_port, dst_port, tcp_seq) = quoted_transport(protocol, rest, first_fragment);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::tcp_flags;
    use crate::testutil::packets6::{self, addr, Extension};
    use smoltcp::wire::{Icmpv6Repr, IpAddress, Ipv6Repr};

    fn client() -> smoltcp::wire::Ipv6Address {
        addr("fd00:137:1::10")
    }

    fn server() -> smoltcp::wire::Ipv6Address {
        addr("2001:db8:5::80")
    }

    #[test]
    fn tcp_syn_over_ipv6_is_summarised() {
        let bytes = packets6::tcp_syn(client(), 40000, server(), 443);
        let s = IpSummary::parse_ipv6(&bytes).unwrap();
        assert!(s.is_ipv6());
        assert_eq!(
            (s.src, s.dst),
            (IpAddress::Ipv6(client()), IpAddress::Ipv6(server()))
        );
        assert_eq!((s.protocol, s.header_len, s.ttl), (IpProtocol::Tcp, 40, 64));
        assert_eq!(s.ports(), (40000, 443));
        let Transport::Tcp(tcp) = s.transport else {
            panic!("not tcp")
        };
        assert!(tcp.has(tcp_flags::SYN));
        assert_eq!(tcp.window_scale, Some(7));
    }

    #[test]
    fn the_upper_layer_protocol_is_found_after_the_extension_chain() {
        let udp = packets6::udp(client(), 5353, server(), 53, b"query");
        let bytes = packets6::with_extensions(
            &udp,
            &[
                Extension::HopByHop,
                Extension::DestinationOptions,
                Extension::Fragment {
                    offset: 0,
                    more: false,
                    ident: 7,
                },
            ],
        );
        let s = IpSummary::parse_ipv6(&bytes).unwrap();
        assert_eq!(s.protocol, IpProtocol::Udp);
        assert_eq!(s.header_len, 40 + 8 + 8 + 8);
        assert_eq!(s.ports(), (5353, 53));
        assert!(!s.is_fragment(), "an atomic fragment is a whole packet");
    }

    #[test]
    fn a_type_0_routing_header_is_refused_anywhere_in_the_chain() {
        let udp = packets6::udp(client(), 5353, server(), 53, b"q");
        for segments_left in [0, 1] {
            let rh0 = Extension::Routing {
                routing_type: 0,
                segments_left,
            };
            let bytes = packets6::with_extensions(&udp, &[Extension::DestinationOptions, rh0]);
            assert_eq!(
                IpSummary::parse_ipv6(&bytes),
                Err(Malformed::RoutingHeaderType0)
            );
        }
        let rh2 = Extension::Routing {
            routing_type: 2,
            segments_left: 0,
        };
        let mobile = packets6::with_extensions(&udp, &[rh2]);
        assert_eq!(
            IpSummary::parse_ipv6(&mobile).unwrap().protocol,
            IpProtocol::Udp
        );
    }

    #[test]
    fn hop_by_hop_options_other_than_first_are_refused() {
        let udp = packets6::udp(client(), 5353, server(), 53, b"q");
        let bytes =
            packets6::with_extensions(&udp, &[Extension::DestinationOptions, Extension::HopByHop]);
        assert_eq!(
            IpSummary::parse_ipv6(&bytes),
            Err(Malformed::MisplacedHopByHop)
        );
    }

    #[test]
    fn a_chain_longer_than_the_bound_is_refused() {
        let udp = packets6::udp(client(), 5353, server(), 53, b"q");
        let at_bound = [Extension::DestinationOptions; MAX_EXTENSION_HEADERS];
        let bytes = packets6::with_extensions(&udp, &at_bound);
        assert_eq!(
            IpSummary::parse_ipv6(&bytes).unwrap().protocol,
            IpProtocol::Udp
        );
        let beyond = [Extension::DestinationOptions; MAX_EXTENSION_HEADERS + 1];
        let bytes = packets6::with_extensions(&udp, &beyond);
        assert_eq!(
            IpSummary::parse_ipv6(&bytes),
            Err(Malformed::ExtensionChainTooLong)
        );
    }

    #[test]
    fn a_first_fragment_must_carry_the_whole_upper_layer_header() {
        let syn = packets6::tcp_syn(client(), 40000, server(), 443);
        let first = Extension::Fragment {
            offset: 0,
            more: true,
            ident: 9,
        };
        let whole = packets6::with_extensions(&syn, &[first]);
        // Keep 16 bytes of the TCP header (of 32, with options): a tiny first fragment.
        let tiny = &whole[..40 + 8 + 16];
        let mut tiny = tiny.to_vec();
        smoltcp::wire::Ipv6Packet::new_unchecked(&mut tiny[..]).set_payload_len(8 + 16);
        assert_eq!(
            IpSummary::parse_ipv6(&tiny),
            Err(Malformed::IncompleteHeaderChain)
        );
    }

    #[test]
    fn a_chain_running_off_the_packet_is_refused() {
        let udp = packets6::udp(client(), 5353, server(), 53, b"q");
        let mut bytes = packets6::with_extensions(&udp, &[Extension::DestinationOptions]);
        bytes.truncate(40 + 4);
        smoltcp::wire::Ipv6Packet::new_unchecked(&mut bytes[..]).set_payload_len(4);
        assert_eq!(
            IpSummary::parse_ipv6(&bytes),
            Err(Malformed::IncompleteHeaderChain)
        );
    }

    #[test]
    fn a_later_fragment_has_no_transport_and_keeps_its_identification() {
        let udp = packets6::udp(client(), 5353, server(), 53, &[7; 64]);
        let later = Extension::Fragment {
            offset: 1448,
            more: false,
            ident: 0xdead_beef,
        };
        let bytes = packets6::with_extensions(&udp, &[later]);
        let s = IpSummary::parse_ipv6(&bytes).unwrap();
        assert_eq!(s.transport, Transport::NonFirstFragment);
        assert_eq!((s.fragment_offset, s.ident), (1448, 0xdead_beef));
        assert!(s.is_fragment());
    }

    #[test]
    fn a_length_beyond_the_buffer_is_truncated() {
        let bytes = packets6::udp(client(), 5353, server(), 53, b"query");
        assert_eq!(
            IpSummary::parse_ipv6(&bytes[..bytes.len() - 1]),
            Err(Malformed::Truncated)
        );
        assert_eq!(IpSummary::parse(&bytes), Err(Malformed::BadVersion));
    }

    #[test]
    fn icmpv6_echo_and_packet_too_big_are_summarised() {
        let ping = packets6::echo(client(), server(), true, 0x77, 1);
        let s = IpSummary::parse_ipv6(&ping).unwrap();
        assert_eq!(
            s.transport,
            Transport::Icmp(IcmpSummary::Echo {
                request: true,
                ident: 0x77
            })
        );
        assert_eq!(s.icmp_type_code(), (128, 0));

        let udp = packets6::udp(client(), 40000, server(), 53, b"q");
        let header = Ipv6Repr {
            src_addr: client(),
            dst_addr: server(),
            next_header: IpProtocol::Udp,
            payload_len: udp.len() - 40,
            hop_limit: 63,
        };
        let too_big = Icmpv6Repr::PktTooBig {
            mtu: 1280,
            header,
            data: &udp[40..],
        };
        let router = addr("2001:db8:ffff::1");
        let bytes = packets6::icmp(router, client(), &too_big);
        let s = IpSummary::parse_ipv6(&bytes).unwrap();
        let Transport::Icmp(IcmpSummary::Error {
            icmp_type: 2,
            code: 0,
            quoted,
        }) = s.transport
        else {
            panic!("not a packet too big: {:?}", s.transport)
        };
        assert_eq!(quoted.offset, 48);
        assert_eq!(
            (quoted.src, quoted.dst),
            (IpAddress::Ipv6(client()), IpAddress::Ipv6(server()))
        );
        assert_eq!((quoted.src_port, quoted.dst_port), (Some(40000), Some(53)));
    }

    #[test]
    fn a_neighbour_solicitation_is_summarised_as_another_icmpv6_message() {
        let solicit = smoltcp::wire::NdiscRepr::NeighborSolicit {
            target_addr: addr("fd00:137:1::1"),
            lladdr: Some(smoltcp::wire::EthernetAddress([2, 0, 0, 0, 0, 0x10]).into()),
        };
        let ns = packets6::icmp(
            addr("fe80::10"),
            addr("ff02::1:ff00:1"),
            &Icmpv6Repr::Ndisc(solicit),
        );
        let s = IpSummary::parse_ipv6(&ns).unwrap();
        assert_eq!(
            s.transport,
            Transport::Icmp(IcmpSummary::Other {
                icmp_type: 135,
                code: 0
            })
        );
    }
}
