//! Sending packets on their way: the TTL (hop limit) check, the egress MTU (fragmentation,
//! or ICMP fragmentation-needed; for IPv6, which routers never fragment, ICMPv6 packet too
//! big), NAT and TTL rewritten in place, offloads the egress NIC cannot take finished in
//! software (segmentation, checksums), the next hop resolved (ARP, or neighbour discovery
//! for IPv6), and the frames written to the sink — a forwarded packet in its own frame,
//! rewritten in place; the ones the appliance originates itself (ICMP errors, TCP resets,
//! ARP), the fragments and the software segments copied into new ones.

use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, Ipv4Address,
    Ipv4Packet, Ipv6Address, Ipv6Packet, ETHERNET_HEADER_LEN,
};

use super::answer::Answer;
use super::descriptor::PacketDesc;
use super::drop::Dropped;
use super::trace::Fate;
use super::Appliance;
use crate::arp as arp_wire;
use crate::drops::DropReason;
use crate::fragment::FragmentKind;
use crate::fragmenter::{self, SplitError};
use crate::icmp_error::IcmpError;
use crate::nat::{self, Translation};
use crate::ndp::{NextHop, SourceClass6};
use crate::neighbor::{Enqueued, Resolution};
use crate::offload::{Egress, GsoKind, Offload};
use crate::packet::Malformed;
use crate::rewrite;
use crate::route::Route;
use crate::segmenter::{self, Segmenter};
use crate::share::Source;
use crate::sink::FrameSink;

/// How a neighbour is reached now.
enum Reach {
    /// At this MAC.
    Known(EthernetAddress),
    /// At this MAC, which is to be verified (an IPv4 neighbour, by unicast ARP).
    Verify(EthernetAddress, Ipv4Address),
    /// Not known: packets wait for ARP or neighbour discovery.
    Wait,
    /// The NIC has no IPv4 address to ask from.
    Unaddressed,
}

/// Completes the descriptor's partial checksum in software; the packet is plain afterwards.
pub(super) fn finish_checksum(pd: &mut PacketDesc) -> Result<(), Dropped> {
    let total_len = pd.ip.total_len;
    let packet = &mut pd.frame[ETHERNET_HEADER_LEN..ETHERNET_HEADER_LEN + total_len];
    segmenter::complete_checksum(packet).map_err(malformed_offload)?;
    pd.offload = Offload::PLAIN;
    Ok(())
}

/// An offloaded packet the segmenter refuses (its metadata was checked, so this does not
/// happen): dropped as malformed.
pub(super) fn malformed_offload(_: segmenter::SegmentError) -> Dropped {
    Dropped::detail(DropReason::Malformed, "offload-unfinishable")
}

/// How a forwarded packet's addresses (and ports) are rewritten.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Rewrite {
    /// A packet of a flow, or an ICMP error about one: the flow's translation (which, for
    /// an error, treats its outer addresses and its quote differently).
    Translate(Translation),
    /// A fragment after the first: the very addresses its first fragment left with, so
    /// that every fragment of a datagram is translated alike and the datagram reassembles.
    Addresses {
        /// The source the first fragment left with.
        src: IpAddress,
        /// The destination the first fragment left with.
        dst: IpAddress,
    },
}

/// How a forwarded packet leaves: its rewrite and its next hop. A forwarded first fragment
/// records the plan of the rest of its datagram: the addresses it left with, the same way.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    /// How the packet is rewritten.
    pub rewrite: Rewrite,
    /// The egress NIC.
    pub out_nic: u8,
    /// The neighbour the frame goes to.
    pub next_hop: IpAddress,
    /// The egress NIC's MTU.
    pub mtu: u16,
    /// Whether the rule that passed the flow allows IPv4 options (`allow-opts`).
    pub allow_opts: bool,
}

impl Appliance<'_> {
    /// Drops a packet whose TTL runs out here, telling its sender (time exceeded). The one
    /// TTL check of the forwarding path, before any state is created for the packet.
    pub(super) fn check_ttl(
        &mut self,
        pd: &mut PacketDesc,
        sink: &mut dyn FrameSink,
    ) -> Result<(), Dropped> {
        if pd.ip.ttl > 1 {
            return Ok(());
        }
        self.answer(pd, Answer::Error(IcmpError::TimeExceeded), sink);
        Err(DropReason::TtlExceeded.into())
    }

    /// Sends a packet on its way as `plan` says: MTU check (ICMP fragmentation-needed when
    /// DF forbids fragmenting; a super-frame is checked one segment at a time), NAT and TTL
    /// rewritten in place (a partial checksum kept in step), offloads the egress NIC cannot
    /// take finished in software, fragments when it is too big, the next hop resolved.
    pub(super) fn transmit(
        &mut self,
        pd: &mut PacketDesc,
        plan: Plan,
        sink: &mut dyn FrameSink,
    ) -> Result<(), Dropped> {
        if let Rewrite::Translate(translation) = plan.rewrite {
            if nat::changes_family(&translation) {
                return self.transmit_across_families(pd, plan, translation, sink);
            }
        }
        let fits = pd.offload.wire_packet_len(&pd.ip) <= plan.mtu as usize;
        // IPv6 is never fragmented by a router: its summary always says "don't fragment".
        if !fits && pd.ip.dont_fragment {
            let error = IcmpError::FragmentationNeeded { mtu: plan.mtu };
            self.answer(pd, Answer::Error(error), sink);
            return Err(DropReason::TooBig.into());
        }
        let arrived = pd.ip;
        let checksum = pd.transport_checksum();
        let packet = &mut pd.frame[ETHERNET_HEADER_LEN..ETHERNET_HEADER_LEN + arrived.total_len];
        let translation = match plan.rewrite {
            Rewrite::Translate(translation) => {
                nat::apply_offloaded(packet, &mut pd.ip, &translation, checksum);
                Some(translation)
            }
            Rewrite::Addresses { src, dst } => {
                nat::set_addresses(packet, &mut pd.ip, src, dst);
                None
            }
        };
        rewrite::decrement_ttl(packet);
        if FragmentKind::of(&arrived) == FragmentKind::First {
            let rest = Plan {
                rewrite: Rewrite::Addresses {
                    src: pd.ip.src,
                    dst: pd.ip.dst,
                },
                ..plan
            };
            self.fragments.record_first(pd.nic, &arrived, rest, pd.now);
        }
        pd.trace.fate = Fate::Forwarded {
            nic: plan.out_nic,
            next_hop: plan.next_hop,
            translation,
        };
        // Only a packet waiting for ARP is charged to this source (IPv6 neighbour discovery
        // keeps its own shares): the cheap address-based view does, per packet.
        let source = self.source_of(pd.nic, arrived.src);
        match self.offloads[plan.out_nic as usize].egress(&pd.offload, fits) {
            // Its segments fit (`egress` says so only then): it leaves whole.
            Egress::AsIs if pd.offload.segmentation.is_some() => {
                self.forward_frame(pd, plan, source, sink);
                return Ok(());
            }
            Egress::AsIs => {}
            Egress::CompleteChecksum => finish_checksum(pd)?,
            Egress::Segment => return self.send_finished(pd, plan, source, sink),
        }
        if pd.ip.total_len > plan.mtu as usize {
            return self.send_fragmented(pd.packet(), plan, source, pd.now, sink);
        }
        self.forward_frame(pd, plan, source, sink);
        Ok(())
    }

    /// Sends `packet` (plain, DF clear) out of `plan`'s NIC, in fragments if it is too big.
    fn send_fragmented(
        &mut self,
        packet: &[u8],
        plan: Plan,
        source: Source,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Result<(), Dropped> {
        if packet.len() <= plan.mtu as usize {
            self.send_to_neighbor(plan.out_nic, plan.next_hop, packet, source, now, sink);
            return Ok(());
        }
        let split = fragmenter::split(packet, plan.mtu, |fragment| {
            self.send_to_neighbor(plan.out_nic, plan.next_hop, fragment, source, now, sink);
        });
        split.map(|_| ()).map_err(|error| match error {
            SplitError::BeyondLargestDatagram => {
                Dropped::detail(DropReason::Malformed, Malformed::DatagramTooLong.as_str())
            }
            SplitError::Malformed | SplitError::MtuTooSmall => DropReason::TooBig.into(),
        })
    }

    /// Sends an offloaded packet as the plain packets it stands for, finished in software:
    /// a TCP super-frame cut into segments (each fragmented if the MTU is smaller still and
    /// DF allows), a UDP one (one datagram) with its checksum completed, in fragments.
    fn send_finished(
        &mut self,
        pd: &mut PacketDesc,
        plan: Plan,
        source: Source,
        sink: &mut dyn FrameSink,
    ) -> Result<(), Dropped> {
        let now = pd.now;
        match pd.offload.segmentation.map(|s| (s.kind, s.size)) {
            Some((GsoKind::TcpV4 | GsoKind::TcpV6, size)) => {
                let segmenter = Segmenter::new(pd.packet(), size).map_err(malformed_offload)?;
                let mut refused = Ok(());
                segmenter.each(|segment| {
                    if let Err(e) = self.send_fragmented(segment, plan, source, now, sink) {
                        refused = Err(e);
                    }
                });
                refused
            }
            _ => {
                finish_checksum(pd)?;
                self.send_fragmented(pd.packet(), plan, source, now, sink)
            }
        }
    }

    /// Sends a forwarded packet in its own frame (rewritten in place: no copy for a sink
    /// that can send the received buffer itself), with its offload metadata, to `plan`'s
    /// next hop; a packet that must wait for ARP waits as plain packets.
    fn forward_frame(
        &mut self,
        pd: &mut PacketDesc,
        plan: Plan,
        source: Source,
        sink: &mut dyn FrameSink,
    ) {
        let (nic, now) = (plan.out_nic, pd.now);
        match self.reach(nic, plan.next_hop, now, sink) {
            Reach::Known(mac) => self.send_frame_to(nic, mac, pd, sink),
            Reach::Verify(mac, next_hop) => {
                self.send_frame_to(nic, mac, pd, sink);
                self.probe_neighbor(nic, mac, next_hop, sink);
            }
            Reach::Wait if pd.offload.is_plain() => {
                self.send_to_neighbor(nic, plan.next_hop, pd.packet(), source, now, sink)
            }
            Reach::Wait => {
                if let Err(dropped) = self.send_finished(pd, plan, source, sink) {
                    self.count_drop(nic, dropped.reason);
                }
            }
            Reach::Unaddressed => {}
        }
    }

    /// Sends the descriptor's own frame to the MAC `dst` out of `nic`: its Ethernet header
    /// rewritten in place, its offload metadata along.
    fn send_frame_to(
        &mut self,
        nic: u8,
        dst: EthernetAddress,
        pd: &mut PacketDesc,
        sink: &mut dyn FrameSink,
    ) {
        let len = ETHERNET_HEADER_LEN + pd.ip.total_len;
        let mut frame = EthernetFrame::new_unchecked(&mut pd.frame[..len]);
        frame.set_src_addr(self.configs[nic as usize].mac);
        frame.set_dst_addr(dst);
        if sink.transmit_frame(nic, &pd.frame[..len], &pd.offload) {
            self.nics[nic as usize].counters.tx += 1;
        } else {
            self.count_drop(nic, DropReason::TransmitFull);
        }
    }

    /// Sends an IP packet the appliance originates towards its destination: out of
    /// `back_through` when it answers a packet that arrived there (an ICMP error, a TCP
    /// reset: they go back the way the packet came, see [`RouteTable::toward`]), else
    /// where address routing says (a DHCP message). Its resolution, if one is needed, is
    /// charged to the destination: the sender whose packet it answers.
    ///
    /// [`RouteTable::toward`]: crate::route::RouteTable::toward
    pub(super) fn send_originated(
        &mut self,
        packet: &[u8],
        back_through: Option<u8>,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) {
        let dst: IpAddress = match packet.first().map(|b| b >> 4) {
            Some(6) => match Ipv6Packet::new_checked(packet) {
                Ok(view) => view.dst_addr().into(),
                Err(_) => return,
            },
            _ => match Ipv4Packet::new_checked(packet) {
                Ok(view) => view.dst_addr().into(),
                Err(_) => return,
            },
        };
        let route = match back_through {
            Some(nic) => self.routes.toward(nic, dst),
            None => self.routes.lookup(dst),
        };
        if let Route::Forward { nic, next_hop, .. } = route {
            let source = self.source_of(nic, dst);
            self.send_to_neighbor(nic, next_hop, packet, source, now, sink);
        }
    }

    /// How to reach the neighbour `next_hop` on `nic` now: at its pinned MAC if it is a
    /// client whose MAC the ruleset pins (no need, and no room, to ask), otherwise as ARP
    /// (or, for IPv6, neighbour discovery, which verifies stale entries itself) knows it.
    fn reach(
        &mut self,
        nic: u8,
        next_hop: IpAddress,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Reach {
        if let Some(mac) = self.pinned_mac(nic, next_hop) {
            return Reach::Known(mac);
        }
        let next_hop = match next_hop {
            IpAddress::Ipv4(next_hop) => next_hop,
            IpAddress::Ipv6(next_hop) => {
                return match self.ndp.resolved_mac(nic, next_hop, now, sink) {
                    Some(mac) => Reach::Known(mac),
                    None => Reach::Wait,
                };
            }
        };
        if self.configs[nic as usize].ipv4.is_none() {
            return Reach::Unaddressed;
        }
        match self.neighbors.resolve((nic, next_hop), now) {
            Resolution::Known(mac) => Reach::Known(mac),
            Resolution::Verify(mac) => Reach::Verify(mac, next_hop),
            Resolution::Unknown => Reach::Wait,
        }
    }

    /// Asks the IPv4 neighbour `next_hop` at `mac` whether it is still there (unicast ARP).
    fn probe_neighbor(
        &mut self,
        nic: u8,
        mac: EthernetAddress,
        next_hop: Ipv4Address,
        sink: &mut dyn FrameSink,
    ) {
        let config = self.configs[nic as usize];
        if let Some(cidr) = config.ipv4 {
            let probe = arp_wire::request(config.mac, cidr.address(), next_hop);
            self.send_arp(nic, mac, &probe, sink);
        }
    }

    /// Sends an IP packet out of `nic` to the neighbour `next_hop` (of the packet's family):
    /// to its pinned MAC if it is a client whose MAC the ruleset pins, otherwise resolving
    /// its MAC first if needed (the packet then waits, boundedly, for the answer; the
    /// resolution is `source`'s, within its share).
    pub(super) fn send_to_neighbor(
        &mut self,
        nic: u8,
        next_hop: IpAddress,
        packet: &[u8],
        source: Source,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) {
        match (self.reach(nic, next_hop, now, sink), next_hop) {
            (Reach::Known(mac), _) => self.send_ip_to(nic, mac, packet, sink),
            (Reach::Verify(mac, next_hop), _) => {
                self.send_ip_to(nic, mac, packet, sink);
                self.probe_neighbor(nic, mac, next_hop, sink);
            }
            (Reach::Wait, IpAddress::Ipv4(next_hop)) => {
                self.wait_for_neighbor(nic, next_hop, packet, source, now, sink)
            }
            (Reach::Wait, IpAddress::Ipv6(next_hop)) => {
                self.send_to_ipv6_neighbor(nic, next_hop, packet, now, sink)
            }
            (Reach::Unaddressed, _) => {}
        }
    }

    /// Queues `packet` until the neighbour `next_hop` on `nic` answers ARP (asking it; the
    /// resolution is `source`'s, within its share).
    fn wait_for_neighbor(
        &mut self,
        nic: u8,
        next_hop: Ipv4Address,
        packet: &[u8],
        source: Source,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) {
        let config = self.configs[nic as usize];
        let Some(cidr) = config.ipv4 else { return };
        match self.neighbors.enqueue((nic, next_hop), packet, now, source) {
            Enqueued::SendRequest { queued, displaced } => {
                if let Some(((on, _), dropped)) = displaced {
                    for _ in 0..dropped {
                        self.count_drop(on, DropReason::NeighborUnreachable);
                    }
                }
                if !queued {
                    self.count_drop(nic, DropReason::NeighborUnreachable);
                }
                let request = arp_wire::request(config.mac, cidr.address(), next_hop);
                self.send_arp(nic, EthernetAddress::BROADCAST, &request, sink);
            }
            Enqueued::Queued => {}
            Enqueued::Dropped => self.count_drop(nic, DropReason::NeighborUnreachable),
        }
    }

    /// Sends an ARP message out of `nic` to `dst`.
    pub(super) fn send_arp(
        &mut self,
        nic: u8,
        dst: EthernetAddress,
        message: &arp_wire::ArpMessage,
        sink: &mut dyn FrameSink,
    ) {
        if sink.transmit(nic, arp_wire::ARP_FRAME_LEN, &mut |out| {
            arp_wire::emit(out, dst, message)
        }) {
            self.nics[nic as usize].counters.tx += 1;
        }
    }

    /// [`Appliance::send_to_neighbor`] for IPv6 whose next hop is not resolved yet: queued
    /// by neighbour discovery, which solicits it.
    fn send_to_ipv6_neighbor(
        &mut self,
        nic: u8,
        next_hop: Ipv6Address,
        packet: &[u8],
        now: Instant,
        sink: &mut dyn FrameSink,
    ) {
        let source = match Ipv6Packet::new_checked(packet).map(|ip| ip.src_addr()) {
            Ok(src) if self.routes.ipv6().on_link(nic, src) => SourceClass6::Neighbour(nic, src),
            _ => SourceClass6::Remote(nic),
        };
        match self
            .ndp
            .next_hop_mac(nic, next_hop, packet, source, now, sink)
        {
            NextHop::Resolved(mac) => self.send_ip_to(nic, mac, packet, sink),
            NextHop::Queued => {}
            NextHop::Dropped => self.count_drop(nic, DropReason::NeighborUnreachable),
        }
    }

    /// Sends an IP packet (IPv4 or IPv6, as its first byte says) out of `nic` to the MAC
    /// `dst`.
    pub(super) fn send_ip_to(
        &mut self,
        nic: u8,
        dst: EthernetAddress,
        packet: &[u8],
        sink: &mut dyn FrameSink,
    ) {
        let ethertype = match packet.first().map(|b| b >> 4) {
            Some(6) => EthernetProtocol::Ipv6,
            _ => EthernetProtocol::Ipv4,
        };
        let src = self.configs[nic as usize].mac;
        let sent = sink.transmit(nic, ETHERNET_HEADER_LEN + packet.len(), &mut |out| {
            let mut frame = EthernetFrame::new_unchecked(out);
            EthernetRepr {
                src_addr: src,
                dst_addr: dst,
                ethertype,
            }
            .emit(&mut frame);
            frame.payload_mut().copy_from_slice(packet);
        });
        if sent {
            self.nics[nic as usize].counters.tx += 1;
        } else {
            self.count_drop(nic, DropReason::TransmitFull);
        }
    }
}
