//! Packets for the appliance itself: the policy decides (`to self`), then the local stack
//! of the NIC they arrived on answers (ICMP echo, ARP, the DHCP client); IPv6 ones are
//! answered by [`super::to_self6`].

use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpOperation, IpAddress, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, ETHERNET_HEADER_LEN,
};

use super::descriptor::PacketDesc;
use super::drop::Dropped;
use super::{Appliance, CountingSink};
use crate::arp as arp_wire;
use crate::drops::DropReason;
use crate::packet::{IpSummary, Transport};
use crate::policy::{Verdict, OUT_SELF};
use crate::segmenter::complete_checksum;
use crate::sink::FrameSink;
use crate::state::FlowTuple;

/// Whether a packet is a DHCP server's answer to the appliance's DHCP client.
fn is_dhcp_to_client(ip: &IpSummary) -> bool {
    matches!(
        ip.transport,
        Transport::Udp {
            src_port: DHCP_SERVER_PORT,
            dst_port: DHCP_CLIENT_PORT
        }
    )
}

impl Appliance<'_> {
    /// A packet on a NIC without an address: until DHCP has configured it, only the DHCP
    /// client can use it.
    pub(super) fn before_lease(
        &mut self,
        pd: &mut PacketDesc,
        sink: &mut dyn FrameSink,
    ) -> Result<(), Dropped> {
        if self.configs[pd.nic as usize].dhcp && is_dhcp_to_client(&pd.ip) {
            self.deliver_packet(pd, sink);
            return Ok(());
        }
        Err(DropReason::NicUnconfigured.into())
    }

    /// A first packet addressed to the appliance (its address on NIC `owner`, or a
    /// broadcast): the policy (`to self`) decides, then the local stack of the NIC it
    /// arrived on answers. Only that NIC's own address (and broadcasts on it) are served
    /// there; DHCP answers to the appliance's own client skip the policy.
    pub(super) fn for_appliance(
        &mut self,
        pd: &mut PacketDesc,
        owner: u8,
        sink: &mut dyn FrameSink,
    ) -> Result<(), Dropped> {
        if pd.ip.is_ipv6() {
            return self.for_appliance_ipv6(pd, owner, sink);
        }
        if self.configs[pd.nic as usize].dhcp && is_dhcp_to_client(&pd.ip) {
            self.deliver_packet(pd, sink);
            return Ok(());
        }
        let Some(cidr) = pd.ingress else {
            return Err(DropReason::NicUnconfigured.into());
        };
        let broadcast =
            pd.ip.dst.is_broadcast() || Some(pd.ip.dst) == cidr.broadcast().map(IpAddress::from);
        self.decide_to_self(pd, broadcast, sink)?;
        if owner != pd.nic || (pd.ip.dst != IpAddress::from(cidr.address()) && !broadcast) {
            // The appliance's address on another NIC is not served from here.
            return Err(DropReason::NoRoute.into());
        }
        if !broadcast {
            self.introduce_sender(pd, sink);
        }
        self.deliver_packet(pd, sink);
        Ok(())
    }

    /// The policy's verdict (`to self`) on a packet for the appliance, enforced; broadcast
    /// chatter is counted, never logged.
    pub(super) fn decide_to_self(
        &mut self,
        pd: &mut PacketDesc,
        broadcast: bool,
        sink: &mut dyn FrameSink,
    ) -> Result<(), Dropped> {
        let flow = pd.flow().unwrap_or(FlowTuple {
            protocol: pd.ip.protocol,
            src: pd.ip.src,
            dst: pd.ip.dst,
            src_port: 0,
            dst_port: 0,
            echo: None,
        });
        let key = pd.flow_key(OUT_SELF, &flow);
        let verdict = self.policy.decide(&key);
        // Broadcast chatter (DHCP discovers, NetBIOS, ...) is counted, never logged.
        let verdict = Verdict {
            log: verdict.log && !broadcast,
            ..verdict
        };
        self.enforce(pd, key, verdict, sink)?;
        self.check_options_allowed(pd, self.allows_options(verdict.rule))
    }

    /// Tells the local stack the sender's MAC (as an ARP reply would) before it answers a
    /// packet, so its first answer is not lost to an ARP resolution of its own: smoltcp drops
    /// a packet whose next hop it has not resolved yet. Only for on-link senders, whose
    /// address anti-spoofing already accepted on this NIC.
    fn introduce_sender(&mut self, pd: &PacketDesc, sink: &mut dyn FrameSink) {
        let (Some(cidr), Some((src, _))) = (pd.ingress, pd.ip.ipv4_addresses()) else {
            return;
        };
        // On a point-to-point link (/32) the client at the other end is on-link.
        let on_link = cidr.contains_addr(&src) || cidr.prefix_len() == 32;
        if !on_link || !pd.sender_mac.is_unicast() {
            return;
        }
        let introduction = arp_wire::ArpMessage {
            operation: ArpOperation::Reply,
            sender_mac: pd.sender_mac,
            sender_ip: src,
            target_mac: self.configs[pd.nic as usize].mac,
            target_ip: cidr.address(),
        };
        let mut bytes = [0u8; arp_wire::ARP_FRAME_LEN];
        arp_wire::emit(&mut bytes, introduction.target_mac, &introduction);
        self.deliver_local(pd.nic, &bytes, pd.now, sink);
    }

    /// Hands the descriptor's frame to its NIC's local stack, its partial checksum (if it
    /// came with one) completed first: the local stack verifies checksums.
    pub(super) fn deliver_packet(&mut self, pd: &mut PacketDesc, sink: &mut dyn FrameSink) {
        if pd.offload.partial_checksum.is_some() {
            let total_len = pd.ip.total_len;
            let packet = &mut pd.frame[ETHERNET_HEADER_LEN..ETHERNET_HEADER_LEN + total_len];
            if complete_checksum(packet).is_err() {
                return;
            }
        }
        self.deliver_local(pd.nic, pd.frame, pd.now, sink);
    }

    /// Hands a frame to NIC `nic`'s local stack (or, for a DHCP server's message, to its
    /// DHCP client).
    pub(super) fn deliver_local(
        &mut self,
        nic: u8,
        frame: &[u8],
        now: Instant,
        sink: &mut dyn FrameSink,
    ) {
        if self.take_dhcp(nic, frame, now, sink) {
            return;
        }
        let state = &mut self.nics[nic as usize];
        let mut counted = CountingSink { sink, sent: 0 };
        state.local.deliver(frame, now, &mut counted);
        state.counters.tx += counted.sent;
    }
}
