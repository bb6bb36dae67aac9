//! The IPv6 half of the [`Builder`]: packets with extension-header chains and fragments,
//! neighbour discovery messages, and the far side's replies and ICMPv6 errors about IPv6
//! frames the appliance sent — all emitted with `smoltcp::wire` representations
//! (`dataplane::testutil::packets6` and `NdiscRepr`).

use dataplane::ndp::address::{link_local, multicast_mac, solicited_node};
use dataplane::testutil::packets::{self, ethernet_of};
use dataplane::testutil::packets6::{self, Extension};
use smoltcp::time::Duration;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, Icmpv6DstUnreachable, Icmpv6Packet,
    Icmpv6ParamProblem, Icmpv6Repr, Icmpv6TimeExceeded, IpProtocol, Ipv6Address, Ipv6Packet,
    Ipv6Repr, NdiscNeighborFlags, NdiscPrefixInfoFlags, NdiscPrefixInformation, NdiscRepr,
    NdiscRouterFlags, RawHardwareAddress, TcpPacket, UdpPacket, ETHERNET_HEADER_LEN,
    IPV6_HEADER_LEN,
};

use crate::build::{acknowledging, Builder};
use crate::scenario::*;
use crate::world::{appliance_mac, REMOTES6};

/// Most extension headers put in one chain: twice the appliance's bound.
const MAX_CHAIN: usize = 16;
/// ICMPv6 echo request and reply.
const ECHO_REQUEST: u8 = 128;
const ECHO_REPLY: u8 = 129;
/// ff02::1 and ff02::2.
const ALL_NODES: Ipv6Address = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ALL_ROUTERS: Ipv6Address = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
/// A multicast group beyond the link.
const GLOBAL_MULTICAST: Ipv6Address = Ipv6Address::new(0xff0e, 0, 0, 0, 0, 0, 0, 1);

impl<'a> Builder<'a> {
    /// The IPv6 address `pick` names, for a frame received on `nic`.
    pub(crate) fn addr6(&self, nic: u8, pick: Addr6Pick) -> Ipv6Address {
        let world = self.world;
        let host_of = |nic: u8, index: u8| {
            let hosts = &world.hosts6[usize::from(nic)];
            hosts[usize::from(index) % hosts.len()]
        };
        match pick {
            Addr6Pick::Local(index) => host_of(nic, index),
            Addr6Pick::OnNic(n, index) => host_of(self.nic(n), index),
            Addr6Pick::Remote(index) => REMOTES6[usize::from(index) % REMOTES6.len()],
            Addr6Pick::Appliance(n) => world.appliance_addr6(self.nic(n)),
            Addr6Pick::ApplianceLinkLocal(n) => link_local(appliance_mac(self.nic(n))),
            Addr6Pick::AllNodes => ALL_NODES,
            Addr6Pick::AllRouters => ALL_ROUTERS,
            Addr6Pick::SolicitedNode => solicited_node(world.appliance_addr6(nic)),
            Addr6Pick::GlobalMulticast => GLOBAL_MULTICAST,
            Addr6Pick::Unspecified => Ipv6Address::UNSPECIFIED,
            Addr6Pick::Any(bytes) => Ipv6Address::from(bytes),
        }
    }

    /// `packet` (IPv6) in an Ethernet frame from `link`; a multicast link destination is
    /// the packet's group's MAC (`33:33:…`).
    pub(crate) fn link6(&self, nic: u8, link: &Link, packet: &[u8]) -> Vec<u8> {
        let dst = match link.dst {
            LinkDst::Multicast => {
                let group = Ipv6Packet::new_checked(packet)
                    .map(|ip| ip.dst_addr())
                    .unwrap_or(ALL_NODES);
                multicast_mac(if group.is_multicast() {
                    group
                } else {
                    ALL_NODES
                })
            }
            dst => self.link_dst(nic, dst),
        };
        ethernet_of(EthernetProtocol::Ipv6, self.mac(nic, link.src), dst, packet)
    }

    /// The IPv6 packet `packet` describes, sent by a host of `nic`: the upper layer, the
    /// extension chain before it, and then (if asked) a fragment of all that after the
    /// IPv6 header — which can leave the upper-layer header, or part of the chain, out of
    /// the first fragment (RFC 7112), overlap, or run past 64 KiB.
    pub(crate) fn packet6(&self, nic: u8, packet: &Packet6) -> Vec<u8> {
        let src = self.addr6(nic, packet.src);
        let dst = self.addr6(nic, packet.dst);
        let upper = self.upper6(src, dst, packet.transport);
        let chain: Vec<Extension> = packet
            .extensions
            .iter()
            .take(MAX_CHAIN)
            .map(|e| match *e {
                ExtensionPick::HopByHop => Extension::HopByHop,
                ExtensionPick::DestinationOptions => Extension::DestinationOptions,
                ExtensionPick::Routing {
                    routing_type,
                    segments_left,
                } => Extension::Routing {
                    routing_type,
                    segments_left,
                },
                ExtensionPick::Fragment {
                    offset,
                    more,
                    ident,
                } => Extension::Fragment {
                    offset: (offset & 0x1fff) * 8,
                    more,
                    ident,
                },
            })
            .collect();
        let mut bytes = packets6::with_extensions(&upper, &chain);
        let (from, len, offset, more) = match packet.fragment {
            FragmentPick::Whole => (0, 0, 0, None),
            FragmentPick::First { words } => (0, usize::from(words) * 8, 0, Some(true)),
            FragmentPick::Piece {
                from,
                len,
                offset,
                more,
            } => (
                usize::from(from) * 8,
                usize::from(len) * 8,
                (offset & 0x1fff) * 8,
                Some(more),
            ),
        };
        if let Some(more) = more {
            let ip = Ipv6Packet::new_unchecked(&bytes[..]);
            let rest = ip.payload();
            let piece = rest
                .get(from.min(rest.len())..(from + len).min(rest.len()))
                .unwrap_or(&[]);
            let inner = packets6::packet(src, dst, ip.next_header(), piece);
            bytes = packets6::with_extensions(
                &inner,
                &[Extension::Fragment {
                    offset,
                    more,
                    ident: packet.ident,
                }],
            );
        }
        packets6::set_hop_limit(&mut bytes, packet.hop_limit);
        bytes
    }

    /// The upper layer `transport` describes, as a whole IPv6 packet without extensions.
    fn upper6(&self, src: Ipv6Address, dst: Ipv6Address, transport: TransportPick) -> Vec<u8> {
        let port = |pick: PortPick| self.port(pick);
        let payload = |len: u8| vec![0x61u8; usize::from(len)];
        match transport {
            TransportPick::Tcp {
                src_port,
                dst_port,
                seq,
                ack,
                flags,
                len,
            } => packets6::tcp(
                (src, port(src_port)),
                (dst, port(dst_port)),
                (seq, ack, flags & 0x3f),
                &payload(len),
            ),
            TransportPick::Udp {
                src_port,
                dst_port,
                len,
            } => packets6::udp(src, port(src_port), dst, port(dst_port), &payload(len)),
            TransportPick::Echo {
                request,
                ident,
                seq_no,
            } => packets6::echo(src, dst, request, ident, seq_no),
            TransportPick::Icmp {
                icmp_type,
                code,
                rest,
                len,
            } => raw_icmp6(src, dst, (icmp_type, code), rest, &payload(len)),
            TransportPick::Sctp {
                src_port,
                dst_port,
                vtag,
                chunk,
            } => {
                // SCTP's CRC32c covers no pseudo-header: the IPv4 builder's segment fits.
                let mut chunks = vec![chunk, 0, 0, 20];
                chunks.resize(20, 0);
                let v4 = packets::sctp(
                    ([10, 0, 0, 1], port(src_port)),
                    ([10, 0, 0, 2], port(dst_port)),
                    vtag,
                    &chunks,
                );
                let segment = smoltcp::wire::Ipv4Packet::new_unchecked(&v4[..])
                    .payload()
                    .to_vec();
                packets6::packet(src, dst, IpProtocol::Unknown(132), &segment)
            }
            TransportPick::Other { protocol, len } => {
                packets6::packet(src, dst, IpProtocol::from(protocol), &payload(len))
            }
        }
    }

    /// A neighbour discovery message in its frame.
    pub(crate) fn nd(
        &self,
        nic: u8,
        link: &Link,
        (src, dst): (Addr6Pick, Addr6Pick),
        hop_limit_255: bool,
        message: NdPick,
    ) -> Vec<u8> {
        let src = self.addr6(nic, src);
        let dst = self.addr6(nic, dst);
        let lladdr =
            |pick: Option<MacPick>| pick.map(|p| RawHardwareAddress::from(self.mac(nic, p)));
        let repr = match message {
            NdPick::RouterSolicit { lladdr: mac } => NdiscRepr::RouterSolicit {
                lladdr: lladdr(mac),
            },
            NdPick::RouterAdvert {
                lifetime,
                prefix,
                mtu,
                lladdr: mac,
            } => NdiscRepr::RouterAdvert {
                hop_limit: 64,
                flags: NdiscRouterFlags::empty(),
                router_lifetime: Duration::from_secs(u64::from(lifetime)),
                reachable_time: Duration::from_millis(0),
                retrans_time: Duration::from_millis(0),
                lladdr: lladdr(mac),
                mtu: mtu.map(u32::from),
                prefix_info: prefix.map(|p| self.prefix_info(p)),
            },
            NdPick::NeighborSolicit {
                target,
                lladdr: mac,
            } => NdiscRepr::NeighborSolicit {
                target_addr: self.addr6(nic, target),
                lladdr: lladdr(mac),
            },
            NdPick::NeighborAdvert {
                target,
                solicited,
                override_,
                router,
                lladdr: mac,
            } => {
                let mut flags = NdiscNeighborFlags::empty();
                flags.set(NdiscNeighborFlags::SOLICITED, solicited);
                flags.set(NdiscNeighborFlags::OVERRIDE, override_);
                flags.set(NdiscNeighborFlags::ROUTER, router);
                NdiscRepr::NeighborAdvert {
                    flags,
                    target_addr: self.addr6(nic, target),
                    lladdr: lladdr(mac),
                }
            }
            NdPick::Redirect { target, dest } => NdiscRepr::Redirect {
                target_addr: self.addr6(nic, target),
                dest_addr: self.addr6(nic, dest),
                lladdr: None,
                redirected_hdr: None,
            },
        };
        let mut ip = packets6::icmp(src, dst, &Icmpv6Repr::Ndisc(repr));
        packets6::set_hop_limit(&mut ip, if hop_limit_255 { 255 } else { 64 });
        self.link6(nic, link, &ip)
    }

    fn prefix_info(&self, pick: PrefixPick) -> NdiscPrefixInformation {
        let (prefix, prefix_len) = match pick.prefix {
            Prefix6Pick::OfNic(n) => self.world.prefixes6[usize::from(self.nic(n))]
                .map(|(cidr, _)| (cidr.address(), cidr.prefix_len()))
                .unwrap_or((Ipv6Address::UNSPECIFIED, 64)),
            Prefix6Pick::Any(bytes, len) => (Ipv6Address::from(bytes), len % 129),
        };
        let mut flags = NdiscPrefixInfoFlags::empty();
        flags.set(NdiscPrefixInfoFlags::ON_LINK, pick.on_link);
        flags.set(NdiscPrefixInfoFlags::ADDRCONF, pick.autonomous);
        NdiscPrefixInformation {
            prefix_len,
            flags,
            valid_lifetime: Duration::from_secs(u64::from(pick.valid)),
            preferred_lifetime: Duration::from_secs(u64::from(pick.preferred)),
            prefix,
        }
    }

    /// Output `of`, if it is an IPv6 packet: its NIC, the MAC it was sent to and the
    /// packet's bytes.
    fn earlier_ipv6(&self, of: u16) -> Option<(u8, EthernetAddress, &'a [u8])> {
        let (nic, frame) = self.oracle.output(of)?;
        let eth = EthernetFrame::new_checked(&frame[..]).ok()?;
        if eth.ethertype() != EthernetProtocol::Ipv6 {
            return None;
        }
        let payload: &'a [u8] = &frame[ETHERNET_HEADER_LEN..];
        Ipv6Packet::new_checked(payload).ok()?;
        Some((*nic, eth.dst_addr(), payload))
    }

    /// The far side's answer to IPv6 output `of` (no extension headers: the appliance
    /// sends none of its own).
    pub(crate) fn reply6(&self, of: u16, flags: u8, seq: u32, len: u8) -> Option<Vec<u8>> {
        let (nic, host_mac, bytes) = self.earlier_ipv6(of)?;
        let ip = Ipv6Packet::new_checked(bytes).ok()?;
        let (src, dst) = (ip.dst_addr(), ip.src_addr());
        let payload = vec![0x62u8; usize::from(len)];
        let packet = match ip.next_header() {
            IpProtocol::Tcp => {
                let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
                packets6::tcp(
                    (src, tcp.dst_port()),
                    (dst, tcp.src_port()),
                    (seq, acknowledging(&tcp), flags & 0x3f),
                    &payload,
                )
            }
            IpProtocol::Udp => {
                let udp = UdpPacket::new_checked(ip.payload()).ok()?;
                packets6::udp(src, udp.dst_port(), dst, udp.src_port(), &payload)
            }
            IpProtocol::Icmpv6 => {
                let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
                let request = u8::from(icmp.msg_type()) == ECHO_REPLY;
                if !request && u8::from(icmp.msg_type()) != ECHO_REQUEST {
                    return None;
                }
                packets6::echo(src, dst, request, icmp.echo_ident(), icmp.echo_seq_no())
            }
            _ => return None,
        };
        Some(ethernet_of(
            EthernetProtocol::Ipv6,
            host_mac,
            appliance_mac(nic),
            &packet,
        ))
    }

    /// An ICMPv6 error about IPv6 output `of`, quoting its header, eight bytes and `extra`
    /// more, its TCP sequence number moved by `seq_shift`.
    pub(crate) fn error6(
        &self,
        of: u16,
        from: ErrorSender,
        kind: ErrorKind,
        seq_shift: u32,
        extra: u8,
    ) -> Option<Vec<u8>> {
        let (nic, host_mac, bytes) = self.earlier_ipv6(of)?;
        let ip = Ipv6Packet::new_checked(bytes).ok()?;
        let header = Ipv6Repr::parse(&ip).ok()?;
        let quote_len = (IPV6_HEADER_LEN + 8 + usize::from(extra)).min(bytes.len());
        let mut data = bytes[IPV6_HEADER_LEN..quote_len].to_vec();
        if ip.next_header() == IpProtocol::Tcp && data.len() >= 8 {
            let seq = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
            data[4..8].copy_from_slice(&seq.wrapping_add(seq_shift).to_be_bytes());
        }
        let sender = match from {
            ErrorSender::Destination => ip.dst_addr(),
            ErrorSender::Gateway => self.world.hosts6[usize::from(nic)][0],
            ErrorSender::Other(pick) => self.addr6(nic, addr6_of(pick)),
        };
        let repr = match kind {
            ErrorKind::Unreachable(code) => Icmpv6Repr::DstUnreachable {
                reason: Icmpv6DstUnreachable::from(code % 8),
                header,
                data: &data,
            },
            ErrorKind::FragmentationNeeded(mtu) => Icmpv6Repr::PktTooBig {
                mtu: u32::from(mtu),
                header,
                data: &data,
            },
            ErrorKind::TimeExceeded => Icmpv6Repr::TimeExceeded {
                reason: Icmpv6TimeExceeded::HopLimitExceeded,
                header,
                data: &data,
            },
            ErrorKind::ParameterProblem | ErrorKind::SourceQuench => Icmpv6Repr::ParamProblem {
                reason: Icmpv6ParamProblem::UnrecognizedNxtHdr,
                pointer: 6,
                header,
                data: &data,
            },
        };
        let packet = packets6::icmp(sender, ip.src_addr(), &repr);
        Some(ethernet_of(
            EthernetProtocol::Ipv6,
            host_mac,
            appliance_mac(nic),
            &packet,
        ))
    }
}

/// The IPv6 counterpart of an IPv4 address pick (for error senders).
fn addr6_of(pick: AddrPick) -> Addr6Pick {
    match pick {
        AddrPick::Local(i) => Addr6Pick::Local(i),
        AddrPick::OnNic(n, i) => Addr6Pick::OnNic(n, i),
        AddrPick::Remote(i) => Addr6Pick::Remote(i),
        AddrPick::Appliance(n) => Addr6Pick::Appliance(n),
        AddrPick::Broadcast => Addr6Pick::AllNodes,
        AddrPick::Directed(_) => Addr6Pick::GlobalMulticast,
        AddrPick::Any(bits) => {
            Addr6Pick::Any((u128::from(bits) | (0x2001_0db8 << 96)).to_be_bytes())
        }
    }
}

/// Any ICMPv6 message: type, code, four type-specific bytes and a body, checksummed.
fn raw_icmp6(
    src: Ipv6Address,
    dst: Ipv6Address,
    (icmp_type, code): (u8, u8),
    rest: [u8; 4],
    body: &[u8],
) -> Vec<u8> {
    let mut l4 = vec![icmp_type, code, 0, 0];
    l4.extend_from_slice(&rest);
    l4.extend_from_slice(body);
    let mut icmp = Icmpv6Packet::new_unchecked(&mut l4[..]);
    icmp.fill_checksum(&src, &dst);
    packets6::packet(src, dst, IpProtocol::Icmpv6, &l4)
}
