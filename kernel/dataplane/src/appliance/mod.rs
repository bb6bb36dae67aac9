//! [`Appliance`]: the data plane's front door. The kernel hands it every received frame
//! ([`Appliance::receive`]) and calls [`Appliance::poll`] when its timer fires; it answers
//! through a [`FrameSink`].
//!
//! # The path of a packet
//! ```text
//! Ethernet -> ARP: proxy ARP for clients, learning; own address -> local stack
//!          -> IPv4: parse + validate (packet) -> anti-spoofing (antispoof)
//!             later fragment: follow its first fragment's decision (fragment), or drop
//!             state table hit / related ICMP error: apply its NAT -> forward
//!             miss: port forward / DNS redirect (nat) -> route (route)
//!                   to the appliance: policy (`to self`) -> local stack (ICMP, DHCP)
//!                   onwards: policy -> pass: masquerade, create state (state) -> forward
//!                                      block: drop; reject: TCP RST / ICMP unreachable
//! forward: TTL (time exceeded), MTU (fragmentation needed), NAT and TTL rewritten in
//!          place with incremental checksums, next hop resolved (neighbor), out the NIC
//! ```
//! Every drop is counted by reason and, when its rule says `log` or it is
//! security-relevant, logged through a rate limiter ([`crate::drops`]).

mod forward;
mod report;
mod uplink;

use alloc::vec::Vec;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Ipv4Address};

use crate::antispoof::SourceFilter;
use crate::arp;
use crate::config::{ApplianceConfig, NicConfig};
use crate::drops::{DropCounters, DropLog, DropReason};
use crate::fragment::FragmentTable;
use crate::icmp_error::ErrorReplies;
use crate::local::LocalStack;
use crate::nat::{MasqueradeConfig, Masquerader};
use crate::neighbor::{Enqueued, NeighborTable, Resolution};
use crate::policy::Policy;
use crate::proxy_arp::{self, ArpAnswer};
use crate::route::{Route, RouteTable, Topology};
use crate::sink::FrameSink;
use crate::state::{StateConfig, StateStats, StateTable, Timeouts};

pub use report::Stats;

/// Ethernet header length.
pub(crate) const ETHERNET_HEADER: usize = 14;
/// States examined per [`Appliance::poll`] by the expiry sweep.
const SWEEP_BUDGET: usize = 4096;
/// How often the stats line may be printed (only when counters changed).
const STATS_INTERVAL: Duration = Duration::from_secs(5);

/// Tunables the kernel chooses at boot.
#[derive(Clone, Copy, Debug)]
pub struct ApplianceOptions {
    /// Most live states (connections) at once.
    pub state_capacity: usize,
    /// Boot entropy: keys the state table's hash and seeds NAT port choice.
    pub seed: u64,
    /// State timeouts.
    pub timeouts: Timeouts,
}

impl Default for ApplianceOptions {
    fn default() -> Self {
        ApplianceOptions {
            state_capacity: 4096,
            seed: 0x6d6f_6174,
            timeouts: Timeouts::default(),
        }
    }
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
    local: LocalStack,
    counters: NicCounters,
    uplink: uplink::Uplink,
}

/// Counts the frames the local stack (ARP and ping replies, DHCP) sends, for its NIC's
/// `tx` counter.
struct CountingSink<'a> {
    sink: &'a mut dyn FrameSink,
    sent: u64,
}

impl FrameSink for CountingSink<'_> {
    fn transmit(&mut self, nic: u8, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool {
        let sent = self.sink.transmit(nic, len, fill);
        self.sent += u64::from(sent);
        sent
    }
}

/// The data plane. See the module documentation.
pub struct Appliance<'p> {
    policy: Policy<'p>,
    nics: Vec<Nic>,
    configs: Vec<NicConfig>,
    routes: RouteTable,
    sources: SourceFilter,
    neighbors: NeighborTable,
    states: StateTable,
    masquerader: Masquerader,
    fragments: FragmentTable<forward::Plan>,
    errors: ErrorReplies,
    drops: DropCounters,
    drop_log: DropLog,
    /// DNS resolvers learned on the uplink (DHCP) or configured statically.
    upstream_dns: Vec<Ipv4Address>,
    /// `(nic, address, index in policy.clients)` of every declared client, sorted (looked
    /// up for every packet).
    declared_clients: Vec<(u8, u32, u32)>,
    stats: report::Reporter,
}

impl<'p> Appliance<'p> {
    /// An appliance enforcing `policy` on `config`'s NICs, started at `now`.
    pub fn new(
        policy: Policy<'p>,
        config: &ApplianceConfig,
        options: ApplianceOptions,
        now: Instant,
    ) -> Appliance<'p> {
        let nics = config
            .nics
            .iter()
            .enumerate()
            .map(|(i, nic)| Nic {
                local: LocalStack::new(
                    i as u8,
                    nic.mac,
                    nic.ipv4,
                    nic.gateway,
                    options.seed ^ i as u64,
                    now,
                ),
                counters: NicCounters::default(),
                uplink: uplink::Uplink::new(nic, options.seed.rotate_left(41) ^ i as u64, now),
            })
            .collect();
        let configs = config.nics.clone();
        let topology = Topology::from_policy(&configs, &policy);
        let mut routes = RouteTable::new(&topology);
        for interface in policy.interfaces {
            routes.set_mtu(interface.nic, interface.mtu);
        }
        let sources = SourceFilter::new(&topology);
        let mut hash_key = [0u8; 16];
        hash_key[..8].copy_from_slice(&options.seed.to_le_bytes());
        hash_key[8..].copy_from_slice(&(!options.seed).rotate_left(17).to_le_bytes());
        let states = StateTable::new(StateConfig {
            capacity: options.state_capacity,
            hash_key,
            timeouts: options.timeouts,
        });
        let upstream_dns = policy
            .interfaces
            .iter()
            .filter(|i| i.uplink)
            .flat_map(|i| i.dns_servers.of(policy.ipv4_addrs))
            .map(|a| Ipv4Address::from_bits(*a))
            .collect();
        let mut declared_clients: Vec<(u8, u32, u32)> = policy
            .clients
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Some((c.nic, c.ipv4?, i as u32)))
            .collect();
        declared_clients.sort_unstable();
        Appliance {
            declared_clients,
            policy,
            nics,
            configs,
            routes,
            sources,
            neighbors: NeighborTable::new(),
            states,
            masquerader: Masquerader::new(MasqueradeConfig::seeded(options.seed.rotate_left(29))),
            fragments: FragmentTable::new(),
            errors: ErrorReplies::default(),
            drops: DropCounters::default(),
            drop_log: DropLog::default(),
            upstream_dns,
            stats: report::Reporter::new(now),
        }
    }

    /// Counters of NIC `nic`.
    pub fn counters(&self, nic: u8) -> Option<NicCounters> {
        self.nics.get(nic as usize).map(|n| n.counters)
    }

    /// Drops counted by reason.
    pub fn drop_counters(&self) -> &DropCounters {
        &self.drops
    }

    /// The state table's counters.
    pub fn state_stats(&self) -> StateStats {
        self.states.stats()
    }

    /// The addressing of NIC `nic` as it is now (DHCP may have changed it).
    pub fn nic_config(&self, nic: u8) -> Option<NicConfig> {
        self.configs.get(nic as usize).copied()
    }

    /// Announces every configured address with a gratuitous ARP (at boot, after DHCP).
    pub fn announce(&mut self, sink: &mut dyn FrameSink) {
        for index in 0..self.configs.len() {
            let config = self.configs[index];
            if let Some(cidr) = config.ipv4 {
                let message = arp::gratuitous(config.mac, cidr.address());
                self.send_arp(index as u8, EthernetAddress::BROADCAST, &message, sink);
            }
        }
    }

    /// Processes one received Ethernet frame from NIC `nic`. The frame is rewritten in
    /// place when it is forwarded (NAT, TTL).
    pub fn receive(&mut self, nic: u8, frame: &mut [u8], now: Instant, sink: &mut dyn FrameSink) {
        let Some(state) = self.nics.get_mut(nic as usize) else {
            return;
        };
        state.counters.rx += 1;
        if let Err(reason) = self.dispatch(nic, frame, now, sink) {
            self.count_drop(nic, reason);
        }
    }

    fn count_drop(&mut self, nic: u8, reason: DropReason) {
        self.drops.count(reason);
        if let Some(state) = self.nics.get_mut(nic as usize) {
            state.counters.dropped += 1;
        }
    }

    fn dispatch(
        &mut self,
        nic: u8,
        frame: &mut [u8],
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Result<(), DropReason> {
        let repr = {
            let eth = EthernetFrame::new_checked(&frame[..]).map_err(|_| DropReason::Malformed)?;
            EthernetRepr::parse(&eth).map_err(|_| DropReason::Malformed)?
        };
        self.nics[nic as usize].uplink.heard(repr.src_addr, now);
        let config = self.configs[nic as usize];
        let link_broadcast = repr.dst_addr.is_broadcast() || repr.dst_addr.is_multicast();
        if repr.dst_addr != config.mac && !link_broadcast {
            return Err(DropReason::NotForUs);
        }
        match repr.ethertype {
            EthernetProtocol::Arp => self.receive_arp(nic, frame, now, sink),
            EthernetProtocol::Ipv4 => self.receive_ipv4(nic, frame, link_broadcast, now, sink),
            _ => Err(DropReason::UnsupportedEtherType),
        }
    }

    fn receive_arp(
        &mut self,
        nic: u8,
        frame: &[u8],
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Result<(), DropReason> {
        let message = arp::parse(&frame[ETHERNET_HEADER..]).ok_or(DropReason::Malformed)?;
        let config = self.configs[nic as usize];
        let Some(cidr) = config.ipv4 else {
            return Err(DropReason::NicUnconfigured);
        };
        if message.sender_ip == Ipv4Address::UNSPECIFIED {
            // An address probe (RFC 5227): nothing to learn; the local stack defends its own
            // address.
            if message.target_ip == cidr.address() {
                self.deliver_local(nic, frame, now, sink);
            }
            return Ok(());
        }
        if self.sources.check(nic, message.sender_ip).is_err() {
            // An ARP sender the NIC may not have (a spoofed client, a client network on the
            // uplink) teaches the appliance nothing.
            return Err(DropReason::Spoofed);
        }
        if self.impersonates_client(nic, message.sender_ip, message.sender_mac, now) {
            self.log_drop(
                now,
                format_args!(
                    "nic{nic} spoofed (client-mac-changed) arp {} is-at {}",
                    message.sender_ip, message.sender_mac
                ),
            );
            return Err(DropReason::Spoofed);
        }
        let answer = {
            let topology = Topology::from_policy(&self.configs, &self.policy);
            proxy_arp::decide(&topology, nic, &message)
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
            self.send_ipv4_to(nic, message.sender_mac, &packet, sink);
        }
        self.gateway_arp(nic, message.sender_ip, now, sink);
        match answer {
            // The local stack answers for the NIC's own address (and learns the asker, so its
            // first reply to them is not held up by a resolution of its own).
            ArpAnswer::OwnAddress => self.deliver_local(nic, frame, now, sink),
            ArpAnswer::Proxy if message.operation == smoltcp::wire::ArpOperation::Request => {
                let reply = arp::reply_to(&message, config.mac);
                self.send_arp(nic, message.sender_mac, &reply, sink);
            }
            _ if message.target_ip == cidr.address() => self.deliver_local(nic, frame, now, sink),
            _ => {}
        }
        Ok(())
    }

    /// The index in `policy.clients` of the client declared with address `ip` on `nic`.
    pub(super) fn declared_client(&self, nic: u8, ip: Ipv4Address) -> Option<usize> {
        let key = (nic, ip.to_bits());
        self.declared_clients
            .binary_search_by(|&(n, a, _)| (n, a).cmp(&key))
            .ok()
            .map(|at| self.declared_clients[at].2 as usize)
    }

    /// Whether `mac` claims the address of a declared client on `nic` whose MAC the
    /// appliance already knows to be another one. Declared clients' MACs are sticky until
    /// their neighbour entry expires, so one client on a shared segment cannot take over
    /// another's address (ARP poisoning) or send as it.
    pub(super) fn impersonates_client(
        &self,
        nic: u8,
        ip: Ipv4Address,
        mac: EthernetAddress,
        now: Instant,
    ) -> bool {
        self.declared_client(nic, ip).is_some()
            && self
                .neighbors
                .lookup((nic, ip), now)
                .is_some_and(|known| known != mac)
    }

    /// Hands a frame to NIC `nic`'s local stack (or, for a DHCP server's message, to its
    /// DHCP client).
    fn deliver_local(&mut self, nic: u8, frame: &[u8], now: Instant, sink: &mut dyn FrameSink) {
        if self.take_dhcp(nic, frame, now, sink) {
            return;
        }
        let state = &mut self.nics[nic as usize];
        let mut counted = CountingSink { sink, sent: 0 };
        state.local.deliver(frame, now, &mut counted);
        state.counters.tx += counted.sent;
    }

    /// Sends an IPv4 packet the appliance originates (an ICMP error, a TCP reset) towards
    /// its destination.
    fn send_originated(&mut self, packet: &[u8], now: Instant, sink: &mut dyn FrameSink) {
        let Ok(view) = smoltcp::wire::Ipv4Packet::new_checked(packet) else {
            return;
        };
        if let Route::Forward { nic, next_hop, .. } = self.routes.lookup(view.dst_addr()) {
            self.send_to_neighbor(nic, next_hop, packet, now, sink);
        }
    }

    /// Sends an IPv4 packet out of `nic` to the neighbour `next_hop`, resolving its MAC first
    /// if needed (the packet then waits, boundedly, for the answer).
    fn send_to_neighbor(
        &mut self,
        nic: u8,
        next_hop: Ipv4Address,
        packet: &[u8],
        now: Instant,
        sink: &mut dyn FrameSink,
    ) {
        let config = self.configs[nic as usize];
        let Some(cidr) = config.ipv4 else { return };
        match self.neighbors.resolve((nic, next_hop), now) {
            Resolution::Known(mac) => return self.send_ipv4_to(nic, mac, packet, sink),
            Resolution::Verify(mac) => {
                self.send_ipv4_to(nic, mac, packet, sink);
                let probe = arp::request(config.mac, cidr.address(), next_hop);
                return self.send_arp(nic, mac, &probe, sink);
            }
            Resolution::Unknown => {}
        }
        match self.neighbors.enqueue((nic, next_hop), packet, now) {
            Enqueued::SendRequest => {
                let request = arp::request(config.mac, cidr.address(), next_hop);
                self.send_arp(nic, EthernetAddress::BROADCAST, &request, sink);
            }
            Enqueued::Queued => {}
            Enqueued::Dropped => self.count_drop(nic, DropReason::NeighborUnreachable),
        }
    }

    fn send_arp(
        &mut self,
        nic: u8,
        dst: EthernetAddress,
        message: &arp::ArpMessage,
        sink: &mut dyn FrameSink,
    ) {
        if sink.transmit(nic, arp::ARP_FRAME_LEN, &mut |out| {
            arp::emit(out, dst, message)
        }) {
            self.nics[nic as usize].counters.tx += 1;
        }
    }

    fn send_ipv4_to(
        &mut self,
        nic: u8,
        dst: EthernetAddress,
        packet: &[u8],
        sink: &mut dyn FrameSink,
    ) {
        let src = self.configs[nic as usize].mac;
        let sent = sink.transmit(nic, ETHERNET_HEADER + packet.len(), &mut |out| {
            let mut frame = EthernetFrame::new_unchecked(out);
            EthernetRepr {
                src_addr: src,
                dst_addr: dst,
                ethertype: EthernetProtocol::Ipv4,
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

    /// Runs timers: ARP retries and probes, state expiry, the local stacks, the uplinks'
    /// DHCP clients and gateway watch, the stats line. Returns how long until the next call
    /// is needed (the kernel sleeps at most that long).
    pub fn poll(&mut self, now: Instant, sink: &mut dyn FrameSink) -> Duration {
        let work = self.neighbors.poll(now);
        for &((nic, _), dropped) in &work.gave_up {
            for _ in 0..dropped {
                self.count_drop(nic, DropReason::NeighborUnreachable);
            }
        }
        let asks = work
            .broadcast
            .iter()
            .map(|&key| (key, EthernetAddress::BROADCAST));
        for ((nic, target), to) in asks.chain(work.unicast.iter().copied()) {
            let config = self.configs[nic as usize];
            if let Some(cidr) = config.ipv4 {
                let request = arp::request(config.mac, cidr.address(), target);
                self.send_arp(nic, to, &request, sink);
            }
        }
        self.states.sweep(now, SWEEP_BUDGET);
        self.fragments.expire(now);
        let mut delay = STATS_INTERVAL;
        for state in &mut self.nics {
            let mut counted = CountingSink { sink, sent: 0 };
            state.local.poll(now, &mut counted);
            state.counters.tx += counted.sent;
            if let Some(d) = state.local.poll_delay(now) {
                delay = delay.min(d);
            }
        }
        let uplinks = self.poll_uplinks(&work.gave_up, now, sink);
        for at in [self.neighbors.next_deadline(), uplinks]
            .into_iter()
            .flatten()
        {
            delay = delay.min(if at > now { at - now } else { Duration::ZERO });
        }
        let snapshot = self.stats();
        self.stats.maybe_print(now, &snapshot, STATS_INTERVAL);
        delay
    }

    /// Everything the stats line reports.
    pub fn stats(&self) -> Stats {
        Stats {
            nics: self.nics.iter().map(|n| n.counters).collect(),
            drops: self.drops,
            states: self.states.stats(),
            log_lines_suppressed: self.drop_log.suppressed_total(),
            errors_rate_limited: self.errors.rate_limited(),
        }
    }
}
