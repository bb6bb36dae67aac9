//! Turns a [`Step`] into the frame it describes, with the project's packet library
//! (`dataplane::testutil`, built on `smoltcp::wire`).

use dataplane::arp::{self, ArpMessage};
use dataplane::ip_options;
use dataplane::testutil::crafted::{self, Breakage};
use dataplane::testutil::packets;
use smoltcp::wire::{
    ArpOperation, EthernetAddress, EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Address,
    Ipv4Packet, TcpPacket, UdpPacket, ETHERNET_HEADER_LEN,
};

use crate::oracle::Oracle;
use crate::scenario::*;
use crate::world::{appliance_mac, host_mac, World, PORTS, REMOTES};

/// The most option bytes an IPv4 header holds.
const MAX_OPTIONS_LEN: usize = 40;
/// ICMP types of the errors.
const UNREACHABLE: u8 = 3;
const SOURCE_QUENCH: u8 = 4;
const TIME_EXCEEDED: u8 = 11;
const PARAMETER_PROBLEM: u8 = 12;

/// Builds frames for one world.
pub struct Builder<'a> {
    pub(crate) world: &'a World,
    pub(crate) oracle: &'a Oracle,
}

impl<'a> Builder<'a> {
    /// A builder for `world`, replies and errors taken from `oracle`'s outputs.
    pub fn new(world: &'a World, oracle: &'a Oracle) -> Builder<'a> {
        Builder { world, oracle }
    }

    /// `(ingress NIC, frame, sound)`: `sound` is false when the frame's transport checksum
    /// may be wrong on purpose. `None` when the step has nothing to act on.
    pub fn frame(&self, step: &Step) -> Option<(u8, Vec<u8>, bool)> {
        match step {
            Step::Send { nic, link, packet } => {
                let nic = self.nic(*nic);
                let ip = self.packet(nic, packet);
                Some((nic, self.link(nic, link, &ip), true))
            }
            Step::Broken {
                nic,
                link,
                packet,
                breakage,
            } => {
                let nic = self.nic(*nic);
                let ip = crafted::broken(&self.packet(nic, packet), breakage_of(*breakage));
                Some((nic, self.link(nic, link, &ip), false))
            }
            Step::Flipped {
                nic,
                link,
                packet,
                flips,
            } => {
                let nic = self.nic(*nic);
                let mut frame = self.link(nic, link, &self.packet(nic, packet));
                let len = frame.len();
                for &(at, xor) in flips.iter().take(8) {
                    frame[usize::from(at) % len] ^= xor;
                }
                Some((nic, frame, false))
            }
            Step::Raw { nic, bytes } => Some((self.nic(*nic), bytes.clone(), false)),
            Step::Arp {
                nic,
                link,
                reply,
                sender_mac,
                sender_ip,
                target_ip,
            } => {
                let nic = self.nic(*nic);
                let message = ArpMessage {
                    operation: if *reply {
                        ArpOperation::Reply
                    } else {
                        ArpOperation::Request
                    },
                    sender_mac: self.mac(nic, *sender_mac),
                    sender_ip: self.addr(nic, *sender_ip),
                    target_mac: if *reply {
                        appliance_mac(nic)
                    } else {
                        EthernetAddress([0; 6])
                    },
                    target_ip: self.addr(nic, *target_ip),
                };
                let mut frame = vec![0u8; arp::ARP_FRAME_LEN];
                arp::emit(&mut frame, self.link_dst(nic, link.dst), &message);
                let mut view = EthernetFrame::new_unchecked(&mut frame[..]);
                view.set_src_addr(self.mac(nic, link.src));
                Some((nic, frame, true))
            }
            Step::Send6 { nic, link, packet } => {
                let nic = self.nic(*nic);
                let ip = self.packet6(nic, packet);
                Some((nic, self.link6(nic, link, &ip), true))
            }
            Step::Nd {
                nic,
                link,
                src,
                dst,
                hop_limit_255,
                message,
            } => {
                let nic = self.nic(*nic);
                let frame = self.nd(nic, link, (*src, *dst), *hop_limit_255, *message);
                Some((nic, frame, true))
            }
            Step::Reply {
                of,
                flags,
                seq,
                len,
            } => self.reply(*of, *flags, *seq, *len).or_else(|| {
                let frame = self.reply6(*of, *flags, *seq, *len)?;
                Some((self.oracle.output(*of)?.0, frame, true))
            }),
            Step::Error {
                of,
                from,
                kind,
                seq_shift,
                extra_quote,
            } => self
                .error(*of, *from, *kind, *seq_shift, *extra_quote)
                .or_else(|| {
                    let frame = self.error6(*of, *from, *kind, *seq_shift, *extra_quote)?;
                    Some((self.oracle.output(*of)?.0, frame, true))
                }),
            Step::Advance { .. } | Step::Wait { .. } => None,
        }
    }

    pub(crate) fn nic(&self, pick: u8) -> u8 {
        pick % self.world.nics.len() as u8
    }

    pub(crate) fn mac(&self, nic: u8, pick: MacPick) -> EthernetAddress {
        match pick {
            MacPick::Host(index) => host_mac(nic, index % 8),
            MacPick::Appliance(n) => appliance_mac(self.nic(n)),
            MacPick::Broadcast => EthernetAddress::BROADCAST,
            MacPick::Multicast => EthernetAddress([0x01, 0x00, 0x5e, 0, 0, 1]),
            MacPick::Zero => EthernetAddress([0; 6]),
            MacPick::Any(bytes) => EthernetAddress(bytes),
        }
    }

    pub(crate) fn link_dst(&self, nic: u8, dst: LinkDst) -> EthernetAddress {
        match dst {
            LinkDst::Appliance => appliance_mac(nic),
            LinkDst::Broadcast => EthernetAddress::BROADCAST,
            LinkDst::Multicast => EthernetAddress([0x01, 0x00, 0x5e, 0, 0, 0xfb]),
            LinkDst::Other(pick) => self.mac(nic, pick),
        }
    }

    fn link(&self, nic: u8, link: &Link, packet: &[u8]) -> Vec<u8> {
        packets::ethernet(
            self.mac(nic, link.src),
            self.link_dst(nic, link.dst),
            packet,
        )
    }

    fn addr(&self, nic: u8, pick: AddrPick) -> Ipv4Address {
        let world = self.world;
        let host_of = |nic: u8, index: u8| {
            let hosts = &world.hosts[usize::from(nic)];
            hosts[usize::from(index) % hosts.len()]
        };
        match pick {
            AddrPick::Local(index) => host_of(nic, index),
            AddrPick::OnNic(n, index) => host_of(self.nic(n), index),
            AddrPick::Remote(index) => {
                Ipv4Address::from(REMOTES[usize::from(index) % REMOTES.len()])
            }
            AddrPick::Appliance(n) => world.nics[usize::from(self.nic(n))]
                .ipv4
                .map(|c| c.address())
                .unwrap_or(Ipv4Address::UNSPECIFIED),
            AddrPick::Broadcast => Ipv4Address::BROADCAST,
            AddrPick::Directed(n) => world.nics[usize::from(self.nic(n))]
                .ipv4
                .and_then(|c| c.broadcast())
                .unwrap_or(Ipv4Address::BROADCAST),
            AddrPick::Any(bits) => Ipv4Address::from_bits(bits),
        }
    }

    /// The IPv4 packet `packet` describes, sent by a host of `nic`.
    fn packet(&self, nic: u8, packet: &Packet) -> Vec<u8> {
        let src = self.addr(nic, packet.src).octets();
        let dst = self.addr(nic, packet.dst).octets();
        let port = |pick: PortPick| self.port(pick);
        let payload = |len: u8| vec![0x61u8; usize::from(len)];
        let mut bytes = match packet.transport {
            TransportPick::Tcp {
                src_port,
                dst_port,
                seq,
                ack,
                flags,
                len,
            } => packets::tcp(
                (src, port(src_port)),
                (dst, port(dst_port)),
                (seq, ack, flags & 0x3f),
                &payload(len),
            ),
            TransportPick::Udp {
                src_port,
                dst_port,
                len,
            } => packets::udp(src, port(src_port), dst, port(dst_port), &payload(len)),
            TransportPick::Echo {
                request,
                ident,
                seq_no,
            } => packets::icmp_echo(src, dst, request, ident, seq_no, b"moat-fuzz"),
            TransportPick::Icmp {
                icmp_type,
                code,
                rest,
                len,
            } => packets::icmp(src, dst, (icmp_type, code), rest, &payload(len)),
            TransportPick::Sctp {
                src_port,
                dst_port,
                vtag,
                chunk,
            } => {
                // One chunk: type, flags, length 20, sixteen bytes of value.
                let mut chunks = vec![chunk, 0, 0, 20];
                chunks.resize(20, 0);
                packets::sctp((src, port(src_port)), (dst, port(dst_port)), vtag, &chunks)
            }
            TransportPick::Other { protocol, len } => {
                packets::ipv4(src, dst, protocol, &payload(len))
            }
        };
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..]);
            ip.set_hop_limit(packet.ttl);
            ip.set_ident(packet.ident);
            ip.set_dont_frag(packet.dont_fragment);
            ip.fill_checksum();
        }
        if let Some(options) = &packet.options {
            let mut options = self.options(nic, options);
            options.truncate(MAX_OPTIONS_LEN);
            bytes = packets::with_ip_options(&bytes, &options);
        }
        match packet.fragment {
            FragmentPick::Whole => bytes,
            FragmentPick::First { words } => {
                let len = usize::from(words.max(1)) * 8;
                crafted::fragment(&bytes, 0, len, 0, true)
            }
            FragmentPick::Piece {
                from,
                len,
                offset,
                more,
            } => crafted::fragment(
                &bytes,
                usize::from(from) * 8,
                usize::from(len) * 8,
                u32::from(offset & 0x1fff) * 8,
                more,
            ),
        }
    }

    /// The port `pick` names.
    pub(crate) fn port(&self, pick: PortPick) -> u16 {
        match pick {
            PortPick::Known(i) => PORTS[usize::from(i) % PORTS.len()],
            PortPick::Any(p) => p,
        }
    }

    fn options(&self, nic: u8, options: &OptionsPick) -> Vec<u8> {
        match options {
            OptionsPick::LooseSourceRoute(hop) => {
                packets::loose_source_route(&[self.addr(nic, *hop).octets()])
            }
            OptionsPick::StrictSourceRoute(hop) => {
                let mut option = packets::loose_source_route(&[self.addr(nic, *hop).octets()]);
                option[0] = ip_options::STRICT_SOURCE_ROUTE;
                option
            }
            OptionsPick::RecordRoute => packets::record_route(2),
            OptionsPick::RouterAlert => packets::ROUTER_ALERT.to_vec(),
            OptionsPick::Nops => vec![ip_options::NO_OPERATION; 4],
            OptionsPick::Raw(bytes) => bytes.clone(),
        }
    }

    /// Output `of`, if it is an IPv4 packet: its NIC, the MAC it was sent to (the host that
    /// answers) and the packet.
    fn earlier_ipv4(&self, of: u16) -> Option<(u8, EthernetAddress, Ipv4Packet<&'a [u8]>)> {
        let (nic, frame) = self.oracle.output(of)?;
        let eth = EthernetFrame::new_checked(&frame[..]).ok()?;
        if eth.ethertype() != EthernetProtocol::Ipv4 {
            return None;
        }
        let payload: &'a [u8] = &frame[ETHERNET_HEADER_LEN..];
        Some((*nic, eth.dst_addr(), Ipv4Packet::new_checked(payload).ok()?))
    }

    /// The far side's answer to output `of`: from its destination (by the MAC it was sent
    /// to) back to its source, ports swapped.
    fn reply(&self, of: u16, flags: u8, seq: u32, len: u8) -> Option<(u8, Vec<u8>, bool)> {
        let (nic, host_mac, ip) = self.earlier_ipv4(of)?;
        let (src, dst) = (ip.dst_addr().octets(), ip.src_addr().octets());
        let payload = vec![0x62u8; usize::from(len)];
        let packet = match ip.next_header() {
            IpProtocol::Tcp => {
                let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
                packets::tcp(
                    (src, tcp.dst_port()),
                    (dst, tcp.src_port()),
                    (seq, acknowledging(&tcp), flags & 0x3f),
                    &payload,
                )
            }
            IpProtocol::Udp => {
                let udp = UdpPacket::new_checked(ip.payload()).ok()?;
                packets::udp(src, udp.dst_port(), dst, udp.src_port(), &payload)
            }
            IpProtocol::Icmp => {
                let body = ip.payload();
                let ident = u16::from_be_bytes([*body.get(4)?, *body.get(5)?]);
                let seq_no = u16::from_be_bytes([*body.get(6)?, *body.get(7)?]);
                packets::icmp_echo(src, dst, body[0] == 0, ident, seq_no, &payload)
            }
            _ => return None,
        };
        Some((
            nic,
            packets::ethernet(host_mac, appliance_mac(nic), &packet),
            true,
        ))
    }

    /// An ICMP error about output `of`, quoting it (header, eight bytes and `extra` more),
    /// its TCP sequence number moved by `seq_shift`.
    fn error(
        &self,
        of: u16,
        from: ErrorSender,
        kind: ErrorKind,
        seq_shift: u32,
        extra: u8,
    ) -> Option<(u8, Vec<u8>, bool)> {
        let (nic, host_mac, ip) = self.earlier_ipv4(of)?;
        let header_len = usize::from(ip.header_len());
        let quote_len = (header_len + 8 + usize::from(extra)).min(ip.total_len().into());
        let bytes: &[u8] = ip.as_ref();
        let mut quote = bytes[..quote_len.min(bytes.len())].to_vec();
        if ip.next_header() == IpProtocol::Tcp && quote.len() >= header_len + 8 {
            let at = header_len + 4;
            let seq = u32::from_be_bytes([quote[at], quote[at + 1], quote[at + 2], quote[at + 3]]);
            quote[at..at + 4].copy_from_slice(&seq.wrapping_add(seq_shift).to_be_bytes());
        }
        let sender: Ipv4Address = match from {
            ErrorSender::Destination => ip.dst_addr(),
            ErrorSender::Gateway => self.world.nics[usize::from(nic)]
                .gateway
                .unwrap_or(ip.dst_addr()),
            ErrorSender::Other(pick) => self.addr(nic, pick),
        };
        let ((icmp_type, code), rest) = match kind {
            ErrorKind::Unreachable(code) => ((UNREACHABLE, code % 16), [0; 4]),
            ErrorKind::FragmentationNeeded(mtu) => {
                let mtu = mtu.to_be_bytes();
                ((UNREACHABLE, 4), [0, 0, mtu[0], mtu[1]])
            }
            ErrorKind::TimeExceeded => ((TIME_EXCEEDED, 0), [0; 4]),
            ErrorKind::ParameterProblem => ((PARAMETER_PROBLEM, 0), [20, 0, 0, 0]),
            ErrorKind::SourceQuench => ((SOURCE_QUENCH, 0), [0; 4]),
        };
        let packet = packets::icmp(
            sender.octets(),
            ip.src_addr().octets(),
            (icmp_type, code),
            rest,
            &quote,
        );
        Some((
            nic,
            packets::ethernet(host_mac, appliance_mac(nic), &packet),
            true,
        ))
    }
}

/// The acknowledgement number that answers TCP segment `tcp`: its sequence number and
/// what it carried (payload, SYN and FIN each count one).
pub(crate) fn acknowledging(tcp: &TcpPacket<&[u8]>) -> u32 {
    let carried = tcp.payload().len() as u32 + u32::from(tcp.syn()) + u32::from(tcp.fin());
    (tcp.seq_number().0 as u32).wrapping_add(carried)
}

fn breakage_of(pick: BreakPick) -> Breakage {
    match pick {
        BreakPick::HeaderWords(words) => Breakage::HeaderWords(words % 16),
        BreakPick::TotalLength(len) => Breakage::TotalLength(len),
        BreakPick::HeaderChecksum => Breakage::HeaderChecksum,
        BreakPick::TransportChecksum => Breakage::TransportChecksum,
        BreakPick::Truncated(len) => Breakage::Truncated(usize::from(len)),
    }
}
