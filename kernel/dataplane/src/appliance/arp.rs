//! ARP on the appliance's NICs: learning neighbours (RFC 826's rules, nothing from senders
//! a NIC may not have, never a broadcast, multicast or zero MAC, sticky MACs for declared
//! clients), proxy ARP for clients, and the
//! local stack's answers for the appliance's own address.

use core::fmt;

use smoltcp::time::Instant;
use smoltcp::wire::{ArpOperation, Ipv4Address, ETHERNET_HEADER_LEN};

use super::drop::Dropped;
use super::trace::Trace;
use super::Appliance;
use crate::arp::{self as arp_wire, ArpMessage};
use crate::drops::DropReason;
use crate::proxy_arp::{self, ArpAnswer};
use crate::route::Topology;
use crate::sink::FrameSink;

/// The detail of a drop line for an ARP message whose sender MAC no station can have.
const BAD_SENDER_MAC: &str = "bad-sender-mac";

/// An ARP message for drop lines: `arp 10.137.1.10 is-at 02:43:00:00:01:0a`.
struct Described<'a>(&'a ArpMessage);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "arp {} is-at {}", self.0.sender_ip, self.0.sender_mac)
    }
}

impl Appliance<'_> {
    /// Handles an ARP frame that arrived on `nic`.
    pub(super) fn receive_arp(
        &mut self,
        nic: u8,
        frame: &[u8],
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Trace {
        let mut trace = Trace::default();
        let Some(message) = arp_wire::parse(&frame[ETHERNET_HEADER_LEN..]) else {
            self.refuse(nic, now, &mut trace, DropReason::Malformed.into(), None);
            return trace;
        };
        if let Err(dropped) = self.arp(nic, &message, frame, now, sink) {
            self.refuse(nic, now, &mut trace, dropped, Some(&Described(&message)));
        }
        trace
    }

    fn arp(
        &mut self,
        nic: u8,
        message: &ArpMessage,
        frame: &[u8],
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Result<(), Dropped> {
        let config = self.configs[nic as usize];
        let Some(cidr) = config.ipv4 else {
            return Err(DropReason::NicUnconfigured.into());
        };
        if !arp_wire::is_station(message.sender_mac) {
            // A broadcast, multicast or zero sender MAC, learned, would send every packet
            // for the sender's address to everyone on the link (or to no one).
            return Err(Dropped::detail(DropReason::Spoofed, BAD_SENDER_MAC));
        }
        if message.sender_ip == Ipv4Address::UNSPECIFIED {
            // An address probe (RFC 5227): nothing to learn; the local stack defends its own
            // address.
            if message.target_ip == cidr.address() {
                self.deliver_local(nic, frame, now, sink);
            }
            return Ok(());
        }
        let leased = self.check_leased(nic, message.sender_ip, message.sender_mac, now);
        if let Some(Err(dropped)) = leased {
            return Err(dropped);
        }
        if leased.is_some() {
            // A leased client: its lease says who it is.
        } else if let Err(spoofed) = self.sources.check(nic, message.sender_ip) {
            // An ARP sender the NIC may not have (a spoofed client, a client network on the
            // uplink) teaches the appliance nothing.
            return Err(Dropped::detail(DropReason::Spoofed, spoofed.as_str()));
        }
        if let Some(detail) =
            self.refuses_client_mac(nic, message.sender_ip.into(), message.sender_mac, now)
        {
            return Err(Dropped::detail(DropReason::Spoofed, detail));
        }
        let answer = {
            let topology = Topology::from_policy(&self.configs, &self.policy);
            match proxy_arp::decide(&topology, nic, message) {
                // A leased client is answered like a declared one.
                ArpAnswer::Ignore if leased.is_some() => proxy_arp::for_client(message),
                answer => answer,
            }
        };
        // RFC 826: update an existing entry from any ARP; create one only when we are asked
        // (for our address, or as a proxy) or answered.
        let asked_us = answer != ArpAnswer::Ignore || message.target_ip == cidr.address();
        let released = if asked_us {
            self.neighbors
                .learn((nic, message.sender_ip), message.sender_mac, now)
        } else {
            self.neighbors
                .refresh((nic, message.sender_ip), message.sender_mac, now)
        };
        for packet in released {
            self.send_ip_to(nic, message.sender_mac, &packet, sink);
        }
        self.gateway_arp(nic, message.sender_ip, now, sink);
        match answer {
            // The local stack answers for the NIC's own address (and learns the asker, so its
            // first reply to them is not held up by a resolution of its own).
            ArpAnswer::OwnAddress => self.deliver_local(nic, frame, now, sink),
            ArpAnswer::Proxy if message.operation == ArpOperation::Request => {
                let reply = arp_wire::reply_to(message, config.mac);
                self.send_arp(nic, message.sender_mac, &reply, sink);
            }
            _ if message.target_ip == cidr.address() => self.deliver_local(nic, frame, now, sink),
            _ => {}
        }
        Ok(())
    }
}
