//! [`Appliance`]: the data plane's front door. The kernel hands it every received frame and
//! calls [`Appliance::poll`] when its timer fires; it answers through a [`FrameSink`].

use alloc::vec::Vec;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Ipv4Address, Ipv4Packet,
};

use crate::arp;
use crate::config::{ApplianceConfig, NicConfig};
use crate::local::{DhcpChange, LocalStack};
use crate::neighbor::{Enqueued, NeighborTable};
use crate::sink::FrameSink;

/// Ethernet header length.
const ETHERNET_HEADER: usize = 14;

/// Why a frame was not processed further.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameDrop {
    /// Shorter than an Ethernet header, or a malformed ARP/IPv4 header.
    Malformed,
    /// Addressed to another MAC.
    NotForUs,
    /// An EtherType the appliance does not handle.
    UnsupportedEtherType,
    /// A NIC without an IPv4 address.
    NicUnconfigured,
    /// Not addressed to the appliance and forwarding found no way through.
    NotForwarded,
    /// Waiting for ARP resolution overflowed a queue bound.
    NeighborQueueFull,
}

/// Per-NIC counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NicCounters {
    /// Frames received.
    pub rx: u64,
    /// Frames sent.
    pub tx: u64,
    /// Frames dropped (any reason).
    pub dropped: u64,
}

struct Nic {
    config: NicConfig,
    local: LocalStack,
    counters: NicCounters,
}

/// The data plane. See the module documentation.
pub struct Appliance {
    nics: Vec<Nic>,
    neighbors: NeighborTable,
    /// DNS resolvers learned on the uplink (DHCP) or configured statically.
    upstream_dns: Vec<Ipv4Address>,
}

impl Appliance {
    /// An appliance for `config`'s NICs, started at `now`.
    pub fn new(config: &ApplianceConfig, now: Instant) -> Appliance {
        let nics = config
            .nics
            .iter()
            .enumerate()
            .map(|(i, nic)| Nic {
                config: *nic,
                local: LocalStack::new(i as u8, nic.mac, nic.ipv4, nic.gateway, nic.dhcp, 0x6d6f_6174_0000 + i as u64, now),
                counters: NicCounters::default(),
            })
            .collect();
        Appliance { nics, neighbors: NeighborTable::new(), upstream_dns: Vec::new() }
    }

    /// Counters of NIC `nic`.
    pub fn counters(&self, nic: u8) -> Option<NicCounters> {
        self.nics.get(nic as usize).map(|n| n.counters)
    }

    /// Announces every configured address with a gratuitous ARP (at boot, after DHCP).
    pub fn announce(&mut self, sink: &mut dyn FrameSink) {
        for index in 0..self.nics.len() {
            let config = self.nics[index].config;
            if let Some(cidr) = config.ipv4 {
                let message = arp::gratuitous(config.mac, cidr.address());
                self.send_arp(index as u8, EthernetAddress::BROADCAST, &message, sink);
            }
        }
    }

    /// Processes one received Ethernet frame from NIC `nic`.
    pub fn receive(&mut self, nic: u8, frame: &[u8], now: Instant, sink: &mut dyn FrameSink) {
        let Some(state) = self.nics.get_mut(nic as usize) else { return };
        state.counters.rx += 1;
        if let Err(reason) = self.dispatch(nic, frame, now, sink) {
            self.count_drop(nic, reason);
        }
    }

    fn count_drop(&mut self, nic: u8, _reason: FrameDrop) {
        if let Some(state) = self.nics.get_mut(nic as usize) {
            state.counters.dropped += 1;
        }
    }

    fn dispatch(&mut self, nic: u8, frame: &[u8], now: Instant, sink: &mut dyn FrameSink) -> Result<(), FrameDrop> {
        let eth = EthernetFrame::new_checked(frame).map_err(|_| FrameDrop::Malformed)?;
        let repr = EthernetRepr::parse(&eth).map_err(|_| FrameDrop::Malformed)?;
        let config = self.nics[nic as usize].config;
        if repr.dst_addr != config.mac && !repr.dst_addr.is_broadcast() {
            return Err(FrameDrop::NotForUs);
        }
        match repr.ethertype {
            EthernetProtocol::Arp => self.receive_arp(nic, frame, eth.payload(), now, sink),
            EthernetProtocol::Ipv4 => self.receive_ipv4(nic, frame, eth.payload(), now, sink),
            _ => Err(FrameDrop::UnsupportedEtherType),
        }
    }

    fn receive_arp(
        &mut self,
        nic: u8,
        frame: &[u8],
        payload: &[u8],
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Result<(), FrameDrop> {
        let message = arp::parse(payload).ok_or(FrameDrop::Malformed)?;
        let config = self.nics[nic as usize].config;
        let Some(cidr) = config.ipv4 else { return Err(FrameDrop::NicUnconfigured) };
        let for_us = message.target_ip == cidr.address();
        // RFC 826: update an existing entry from any ARP; create one only when addressed.
        let released = if for_us && cidr.contains_addr(&message.sender_ip) {
            self.neighbors.learn((nic, message.sender_ip), message.sender_mac, now)
        } else {
            self.neighbors.refresh((nic, message.sender_ip), message.sender_mac, now)
        };
        for packet in released {
            self.send_ipv4_to(nic, message.sender_mac, &packet, sink);
        }
        if for_us {
            // The local stack answers for the NIC's own address (and learns the asker, so
            // its first reply to them is not held up by a resolution of its own).
            self.deliver_local(nic, frame, now, sink);
        }
        Ok(())
    }

    fn receive_ipv4(
        &mut self,
        nic: u8,
        frame: &[u8],
        payload: &[u8],
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Result<(), FrameDrop> {
        let packet = Ipv4Packet::new_checked(payload).map_err(|_| FrameDrop::Malformed)?;
        let config = self.nics[nic as usize].config;
        let dst = packet.dst_addr();
        let to_us = match config.ipv4 {
            Some(cidr) => dst == cidr.address() || dst.is_broadcast(),
            // Until DHCP has configured the NIC, only the DHCP client can use it.
            None if config.dhcp => true,
            None => return Err(FrameDrop::NicUnconfigured),
        };
        if to_us {
            self.deliver_local(nic, frame, now, sink);
            return Ok(());
        }
        Err(FrameDrop::NotForwarded)
    }

    /// Hands a frame to NIC `nic`'s local stack and applies any DHCP change it produced.
    fn deliver_local(&mut self, nic: u8, frame: &[u8], now: Instant, sink: &mut dyn FrameSink) {
        if let Some(change) = self.nics[nic as usize].local.deliver(frame, now, sink) {
            self.apply_dhcp(nic, change, sink);
        }
    }

    fn apply_dhcp(&mut self, nic: u8, change: DhcpChange, sink: &mut dyn FrameSink) {
        let state = &mut self.nics[nic as usize];
        match change {
            DhcpChange::Configured { address, router, dns_servers } => {
                state.config.ipv4 = Some(address);
                state.config.gateway = router;
                log::info!(
                    "nic{nic} dhcp: address {address} gateway {} dns {:?}",
                    router.map(|r| alloc::format!("{r}")).unwrap_or_else(|| alloc::string::String::from("none")),
                    dns_servers
                );
                self.upstream_dns = dns_servers;
                let message = arp::gratuitous(state.config.mac, address.address());
                self.send_arp(nic, EthernetAddress::BROADCAST, &message, sink);
            }
            DhcpChange::Deconfigured => {
                if let Some(old) = state.config.ipv4.take() {
                    log::warn!("nic{nic} dhcp: lease on {old} lost, address removed");
                }
                state.config.gateway = None;
            }
        }
    }

    /// Sends an IPv4 packet out of `nic` towards `dst`: directly if on-link, else via the
    /// NIC's gateway; resolving the next hop's MAC first if needed.
    fn route_out(&mut self, nic: u8, dst: Ipv4Address, packet: &[u8], now: Instant, sink: &mut dyn FrameSink) {
        let config = self.nics[nic as usize].config;
        if dst.is_broadcast() {
            self.send_ipv4_to(nic, EthernetAddress::BROADCAST, packet, sink);
            return;
        }
        let Some(cidr) = config.ipv4 else { return };
        let next_hop = if cidr.contains_addr(&dst) {
            dst
        } else if let Some(gateway) = config.gateway {
            gateway
        } else {
            self.count_drop(nic, FrameDrop::NotForwarded);
            return;
        };
        if let Some(mac) = self.neighbors.lookup((nic, next_hop), now) {
            self.send_ipv4_to(nic, mac, packet, sink);
            return;
        }
        match self.neighbors.enqueue((nic, next_hop), packet, now) {
            Enqueued::SendRequest => {
                let request = arp::request(config.mac, cidr.address(), next_hop);
                self.send_arp(nic, EthernetAddress::BROADCAST, &request, sink);
            }
            Enqueued::Queued => {}
            Enqueued::Dropped => self.count_drop(nic, FrameDrop::NeighborQueueFull),
        }
    }

    fn send_arp(&mut self, nic: u8, dst: EthernetAddress, message: &arp::ArpMessage, sink: &mut dyn FrameSink) {
        if sink.transmit(nic, arp::ARP_FRAME_LEN, &mut |out| arp::emit(out, dst, message)) {
            self.nics[nic as usize].counters.tx += 1;
        }
    }

    fn send_ipv4_to(&mut self, nic: u8, dst: EthernetAddress, packet: &[u8], sink: &mut dyn FrameSink) {
        let src = self.nics[nic as usize].config.mac;
        let sent = sink.transmit(nic, ETHERNET_HEADER + packet.len(), &mut |out| {
            let mut frame = EthernetFrame::new_unchecked(out);
            EthernetRepr { src_addr: src, dst_addr: dst, ethertype: EthernetProtocol::Ipv4 }.emit(&mut frame);
            frame.payload_mut().copy_from_slice(packet);
        });
        if sent {
            self.nics[nic as usize].counters.tx += 1;
        }
    }

    /// Runs timers: ARP retries, the local stacks. Returns how long until the next call is
    /// needed (the kernel sleeps at most that long).
    pub fn poll(&mut self, now: Instant, sink: &mut dyn FrameSink) -> Duration {
        let (ask, _dropped) = self.neighbors.poll(now);
        for (nic, target) in ask {
            let config = self.nics[nic as usize].config;
            if let Some(cidr) = config.ipv4 {
                let request = arp::request(config.mac, cidr.address(), target);
                self.send_arp(nic, EthernetAddress::BROADCAST, &request, sink);
            }
        }
        let mut delay = Duration::from_secs(1);
        for nic in 0..self.nics.len() {
            if let Some(change) = self.nics[nic].local.poll(now, sink) {
                self.apply_dhcp(nic as u8, change, sink);
            }
            if let Some(d) = self.nics[nic].local.poll_delay(now) {
                delay = delay.min(d);
            }
        }
        if let Some(at) = self.neighbors.next_deadline() {
            delay = delay.min(if at > now { at - now } else { Duration::ZERO });
        }
        delay
    }
}
