//! The uplink's life: its DHCP lease applied to the data plane, and the watch on its gateway.
//!
//! # A lease, applied
//! A new lease configures the NIC (address, routes, anti-spoofing, the local stack, the DNS
//! redirect's resolvers) and is announced with a gratuitous ARP. When the address goes — the
//! lease is lost (expiry, NAK) or renewed into another address — everything bound to it goes
//! with it: the states of flows translated to it or addressed to it (their NAT ports with
//! them: masquerade finds free ports in the state table), the neighbours of the old network
//! with the packets queued for them (already translated to the old address), and the
//! fragment decisions. So nothing leaves with the old address afterwards, and new flows get
//! the new one. One console line tells each change: old → new address, gateway and DNS, and
//! how many states were dropped.
//!
//! A lease whose network overlaps another of the appliance's networks (a client network)
//! would route clients' traffic out of the uplink: it is refused loudly, naming both networks (the client ignores such an offer, and declines such an
//! acknowledgement).
//!
//! # The gateway, watched
//! A restarted upstream VM comes back with another MAC, maybe another network; nothing tells
//! the appliance. So frames from the gateway's MAC are noticed as they arrive; when packets
//! have gone to the gateway but nothing has come from it for [`GATEWAY_SILENCE`], its
//! neighbour entry is probed (unicast ARP to its MAC, then broadcast; see
//! [`crate::neighbor`]). An ARP message from the gateway with another MAC — an answer to the
//! broadcast, a gratuitous ARP — moves the gateway at once; so does any ARP of it. When the
//! gateway moves, or stops answering, the console says so and a DHCP uplink verifies its
//! lease at once ([`DhcpClient::verify`]): a server on a changed network refuses it, and the
//! client starts over.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, IpAddress, IpVersion, Ipv4Address, Ipv4Cidr};

use super::dhcp_server::source_filter;
use super::Appliance;
use crate::arp;
use crate::config::NicConfig;
use crate::dhcp::{Destination, DhcpClient, Event, Lease, LossReason, ServerMessage, Transmit};
use crate::drops::DropReason;
use crate::neighbor::NeighborKey;
use crate::sink::FrameSink;

/// How long the gateway may stay silent while packets go to it before it is probed.
pub const GATEWAY_SILENCE: Duration = Duration::from_secs(5);

/// What the appliance keeps per NIC about its uplink role: the DHCP client (on a NIC the
/// ruleset configures with `dhcp`) and the watch on its gateway.
#[derive(Debug)]
pub(super) struct Uplink {
    dhcp: Option<DhcpClient>,
    /// The last lease the NIC held (a new one's console line says what changed).
    previous: Option<Lease>,
    /// The gateway's MAC as last learned.
    gateway_mac: Option<EthernetAddress>,
    /// When a frame from `gateway_mac` last arrived.
    heard: Instant,
    /// Whether the gateway answers (cleared when it stops, so that is told once).
    answering: bool,
}

impl Uplink {
    /// The uplink state of a NIC configured as `config`, with DHCP seeded from `seed`.
    pub(super) fn new(config: &NicConfig, seed: u64, now: Instant) -> Uplink {
        Uplink {
            dhcp: config.dhcp.then(|| DhcpClient::new(config.mac, seed, now)),
            previous: None,
            gateway_mac: None,
            heard: now,
            answering: false,
        }
    }

    /// Notes a frame from `src` (every frame received on the NIC).
    #[inline]
    pub(super) fn heard(&mut self, src: EthernetAddress, now: Instant) {
        if self.gateway_mac == Some(src) {
            self.heard = now;
        }
    }

    /// The server of the NIC's current (or last) DHCP lease.
    pub(super) fn lease_server(&self) -> Option<Ipv4Address> {
        self.previous.as_ref().map(|lease| lease.server)
    }

    /// Starts watching a new gateway (or none).
    fn forget_gateway(&mut self, now: Instant) {
        self.gateway_mac = None;
        self.heard = now;
        self.answering = false;
    }
}

/// The other NIC whose network `offered` (a lease on `nic`) overlaps, with that network.
/// (Declared clients lie in their NIC's network: the ruleset checker sees to it.)
fn overlap(configs: &[NicConfig], nic: u8, offered: Ipv4Cidr) -> Option<(u8, Ipv4Cidr)> {
    configs
        .iter()
        .enumerate()
        .filter(|&(other, _)| other != nic as usize)
        .filter_map(|(other, config)| Some((other as u8, config.ipv4?.network())))
        .find(|(_, other)| {
            offered.contains_addr(&other.address())
                || other.contains_addr(&offered.network().address())
        })
}

/// `old -> new`, or just `new` when they are the same.
struct Change<T>(Option<T>, T);

impl<T: fmt::Display + PartialEq> fmt::Display for Change<T> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match &self.0 {
            Some(old) if *old != self.1 => write!(f, "{old} -> {}", self.1),
            _ => write!(f, "{}", self.1),
        }
    }
}

/// A gateway for console lines.
#[derive(PartialEq)]
struct Gateway(Option<Ipv4Address>);

impl fmt::Display for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.0 {
            Some(gateway) => write!(f, "{gateway}"),
            None => f.write_str("none"),
        }
    }
}

/// A MAC for console lines, as the boot lines print them: `52:54:00:12:34:00`.
struct Mac(EthernetAddress);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0 .0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// A number of states for console lines: `1 state`, `3 states`.
struct States(usize);

impl fmt::Display for States {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.0 {
            1 => f.write_str("1 state"),
            n => write!(f, "{n} states"),
        }
    }
}

/// DNS servers for console lines: `[a, b]`.
#[derive(PartialEq)]
struct Dns(Vec<Ipv4Address>);

impl fmt::Display for Dns {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// The console line's description of `lease`, compared with the NIC's `previous` one:
/// `address A[ -> B] gateway G[ -> H] dns [..][ -> [..]], lease N s from S`.
fn describe(previous: Option<&Lease>, lease: &Lease) -> String {
    format!(
        "address {} gateway {} dns {}, lease {} s from {}",
        Change(previous.map(|p| p.address), lease.address),
        Change(previous.map(|p| Gateway(p.router)), Gateway(lease.router)),
        Change(
            previous.map(|p| Dns(p.dns_servers.clone())),
            Dns(lease.dns_servers.clone())
        ),
        lease.duration.secs(),
        lease.server
    )
}

impl Appliance<'_> {
    /// Hands a frame meant for NIC `nic`'s local stack to the NIC's DHCP client instead, if
    /// it is a DHCP server's message and the NIC runs one. Returns whether it did.
    pub(super) fn take_dhcp(
        &mut self,
        nic: u8,
        frame: &[u8],
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> bool {
        let Appliance { nics, configs, .. } = self;
        let Some(client) = nics[nic as usize].uplink.dhcp.as_mut() else {
            return false;
        };
        let Some(message) = ServerMessage::parse(frame) else {
            return false;
        };
        let unusable = |offered: Ipv4Cidr| overlap(configs, nic, offered).is_some();
        let mut out = Vec::new();
        let event = client.receive(&message, now, &unusable, &mut out);
        self.send_dhcp(nic, out, now, sink);
        if let Some(event) = event {
            self.apply_lease_event(nic, event, now, sink);
        }
        true
    }

    /// Runs the uplinks' timers: the DHCP clients, and the watch on each gateway (`gave_up`:
    /// the neighbours the neighbour table just gave up on). Returns when it next has work.
    pub(super) fn poll_uplinks(
        &mut self,
        gave_up: &[(NeighborKey, usize)],
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut earliest = |at: Instant| next = Some(next.map_or(at, |n| n.min(at)));
        for nic in 0..self.nics.len() as u8 {
            let mut out = Vec::new();
            let event = match self.nics[nic as usize].uplink.dhcp.as_mut() {
                Some(client) => client.poll(now, &mut out),
                None => None,
            };
            self.send_dhcp(nic, out, now, sink);
            if let Some(event) = event {
                self.apply_lease_event(nic, event, now, sink);
            }
            if let Some(client) = &self.nics[nic as usize].uplink.dhcp {
                earliest(client.next_deadline());
            }
            if let Some(at) = self.watch_gateway(nic, gave_up, now, sink) {
                earliest(at);
            }
        }
        next
    }

    /// Called after an ARP message from `sender` on `nic` was learned: if it is the
    /// gateway's, it has been heard, and if its MAC changed, the gateway moved.
    pub(super) fn gateway_arp(
        &mut self,
        nic: u8,
        sender: Ipv4Address,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) {
        let Some(gateway) = self.configs[nic as usize].gateway else {
            return;
        };
        if sender != gateway {
            return;
        }
        let Some(mac) = self.neighbors.mac_of((nic, gateway)) else {
            return;
        };
        let uplink = &mut self.nics[nic as usize].uplink;
        uplink.heard = now;
        uplink.answering = true;
        let Some(old) = uplink.gateway_mac.replace(mac) else {
            return;
        };
        if old == mac {
            return;
        }
        // The local stack keeps an ARP cache of its own (for its answers to pings from
        // afar): tell it too.
        let introduction = arp::ArpMessage {
            operation: smoltcp::wire::ArpOperation::Reply,
            sender_mac: mac,
            sender_ip: gateway,
            target_mac: self.configs[nic as usize].mac,
            target_ip: self.configs[nic as usize]
                .ipv4
                .map_or(Ipv4Address::UNSPECIFIED, |c| c.address()),
        };
        let mut bytes = [0u8; arp::ARP_FRAME_LEN];
        arp::emit(&mut bytes, introduction.target_mac, &introduction);
        self.nics[nic as usize]
            .local
            .deliver(&bytes, now, &mut crate::sink::NullSink);
        let verifying = self.verify_lease(nic, now, sink);
        log::warn!(
            "nic{nic} gateway {gateway} moved from {} to {}{verifying}",
            Mac(old),
            Mac(mac)
        );
    }

    /// The gateway watch of `nic` (see the module documentation); when it next has work.
    fn watch_gateway(
        &mut self,
        nic: u8,
        gave_up: &[(NeighborKey, usize)],
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Option<Instant> {
        let config = self.configs[nic as usize];
        let gateway = config.gateway?;
        config.ipv4?;
        let key = (nic, gateway);
        let uplink = &mut self.nics[nic as usize].uplink;
        if gave_up.iter().any(|(k, _)| *k == key) && uplink.answering {
            uplink.answering = false;
            let verifying = self.verify_lease(nic, now, sink);
            log::warn!("nic{nic} gateway {gateway} stopped answering ARP{verifying}");
            return None;
        }
        uplink.gateway_mac?;
        let heard = uplink.heard;
        if !self.neighbors.used_since(key, heard) {
            return None;
        }
        let due = heard + GATEWAY_SILENCE;
        if now < due {
            return Some(due);
        }
        if let (Some(mac), Some(cidr)) = (self.neighbors.probe(key, now), config.ipv4) {
            log::debug!(
                "nic{nic} gateway {gateway} silent since {heard}: probing {}",
                Mac(mac)
            );
            let request = arp::request(config.mac, cidr.address(), gateway);
            self.send_arp(nic, mac, &request, sink);
        }
        None
    }

    /// Starts verifying `nic`'s DHCP lease; the console line's tail saying so.
    fn verify_lease(&mut self, nic: u8, now: Instant, sink: &mut dyn FrameSink) -> &'static str {
        let Some(client) = self.nics[nic as usize].uplink.dhcp.as_mut() else {
            return "";
        };
        let mut out = Vec::new();
        client.verify(now, &mut out);
        let verifying = !out.is_empty();
        self.send_dhcp(nic, out, now, sink);
        if verifying {
            "; verifying the dhcp lease"
        } else {
            ""
        }
    }

    fn send_dhcp(&mut self, nic: u8, out: Vec<Transmit>, now: Instant, sink: &mut dyn FrameSink) {
        for transmit in out {
            match transmit.destination {
                Destination::Broadcast => {
                    self.send_ip_to(nic, EthernetAddress::BROADCAST, &transmit.packet, sink)
                }
                Destination::Unicast(_) => self.send_originated(&transmit.packet, None, now, sink),
            }
        }
    }

    fn apply_lease_event(&mut self, nic: u8, event: Event, now: Instant, sink: &mut dyn FrameSink) {
        match event {
            Event::Bound(lease) => {
                let previous = self.nics[nic as usize].uplink.previous.take();
                log::info!("nic{nic} dhcp: {}", describe(previous.as_ref(), &lease));
                self.configure(nic, Some(&lease), now, sink);
            }
            Event::Renewed(lease) => {
                log::debug!("nic{nic} dhcp: lease on {} renewed", lease.address);
                self.nics[nic as usize].uplink.previous = Some(lease);
            }
            Event::Changed { old, new } => {
                let dropped = if old.address.address() != new.address.address() {
                    let dropped = self.unbind(nic, old.address);
                    format!(", {} on {} dropped", States(dropped), old.address.address())
                } else {
                    String::new()
                };
                log::info!("nic{nic} dhcp: {}{dropped}", describe(Some(&old), &new));
                self.configure(nic, Some(&new), now, sink);
            }
            Event::Lost { lease, reason } => {
                let dropped = self.unbind(nic, lease.address);
                let why = match reason {
                    LossReason::Expired => String::from("expired"),
                    LossReason::Refused(server) => format!("refused by {server} (NAK)"),
                    LossReason::Unusable => String::from("renewed into an unusable one"),
                };
                log::warn!(
                    "nic{nic} dhcp: lease on {} {why}: address removed, {} dropped; looking for a server",
                    lease.address,
                    States(dropped)
                );
                self.configure(nic, None, now, sink);
                self.nics[nic as usize].uplink.previous = Some(lease);
            }
            Event::Refused { offered, declined } => {
                let (verb, how) = if declined {
                    ("declined", "acknowledged")
                } else {
                    ("refused", "offered")
                };
                let what = match overlap(&self.configs, nic, offered.address) {
                    Some((other, network)) => {
                        let policy = &self.policy;
                        let name = policy
                            .interface_on(other)
                            .map_or("", |i| policy.name(i.name));
                        format!("it overlaps {name} (nic{other}) {network}")
                    }
                    None => String::from("it is unusable"),
                };
                log::warn!(
                    "nic{nic} dhcp: {verb} {} {how} by {}: {what}",
                    offered.address,
                    offered.server
                );
            }
        }
    }

    /// Gives NIC `nic` the addressing of `lease` (or none), everywhere it is used.
    fn configure(
        &mut self,
        nic: u8,
        lease: Option<&Lease>,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) {
        let config = &mut self.configs[nic as usize];
        let old = *config;
        config.ipv4 = lease.map(|l| l.address);
        config.gateway = lease.and_then(|l| l.router);
        let config = *config;
        if let Some(lease) = lease {
            if !lease.dns_servers.is_empty() {
                // The lease names the IPv4 resolvers; IPv6 ones (RDNSS) stay.
                self.upstream_dns.retain(|a| a.version() == IpVersion::Ipv6);
                self.upstream_dns
                    .extend(lease.dns_servers.iter().map(|&a| IpAddress::from(a)));
                self.upstream_resolvers_changed(now);
            }
        }
        self.routes.set_nic(nic, config);
        self.sources = source_filter(&self.dhcp_servers, &self.configs, &self.policy);
        let state = &mut self.nics[nic as usize];
        state.local.set_address(config.ipv4, config.gateway);
        if (old.ipv4, old.gateway) != (config.ipv4, config.gateway) {
            state.uplink.forget_gateway(now);
        }
        state.uplink.previous = lease.cloned();
        self.configure_next_hops();
        if let Some(cidr) = config.ipv4 {
            let message = arp::gratuitous(config.mac, cidr.address());
            self.send_arp(nic, EthernetAddress::BROADCAST, &message, sink);
        }
        self.solicit_next_hops(now, sink);
    }

    /// Removes everything bound to `nic`'s old address `old`: the states of its flows, the
    /// neighbours of its network with the packets waiting for them, fragment decisions.
    /// Returns how many states were dropped.
    fn unbind(&mut self, nic: u8, old: Ipv4Cidr) -> usize {
        let dropped = self.states.remove_bound_to(nic, old.address().into());
        for _ in 0..self.neighbors.flush_nic(nic) {
            self.count_drop(nic, DropReason::NoRoute);
        }
        self.fragments.clear();
        dropped
    }
}
