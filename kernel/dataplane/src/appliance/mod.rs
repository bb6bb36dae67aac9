//! [`Appliance`]: the data plane's front door. The kernel hands it every received frame
//! ([`Appliance::receive`]) and calls [`Appliance::poll`] when its timer fires; it answers
//! through a [`FrameSink`].
//!
//! # The path of a packet
//! A frame is Ethernet, then ARP ([`arp`]: proxy ARP for clients, learning, the local
//! stack's own address), IPv4 or IPv6. An IP packet is parsed and validated once, with the
//! frame's offload metadata, into a [`PacketDesc`] (OpenBSD pf's `pf_pdesc`), and that one
//! descriptor goes down every stage. `Appliance::forward_ipv4` and
//! `Appliance::forward_ipv6` in [`forward`] are the whole path, one call per stage, in
//! this order:
//!
//! ```text
//! checks       the offload metadata holds for the packet; IPv4: the NIC has an address
//!              (else only its DHCP client is served), DHCP to the appliance's server;
//!              IPv6: the NIC has IPv6, neighbour discovery goes to `ndp`;
//!              the source may arrive on this NIC (anti-spoofing, sticky client MACs);
//!              no source route or route recording (IPv4 options)
//! established  a later fragment follows its first fragment's way, or is dropped;
//!              a packet of a state (or an ICMP error about one, from the flow's peer
//!              or a router on its path) takes the state's NAT, out of the state's NIC
//! new_flow     a first packet: port forward / DNS redirect -> route -> policy
//!                 addressed to the appliance -> to_self: policy (`to self`), local stack
//! checks       nothing that came as a link-layer broadcast is forwarded; IPv4 options
//!              only where the flow's rule says `allow-opts`
//! transmit     TTL (the one check) -> new flow: masquerade, state -> MTU -> NAT and TTL
//!              rewritten in place (RFC 1624 checksums, partial ones kept in step) ->
//!              offloads the egress cannot take finished in software -> next hop
//!              resolved (ARP or ND) -> out
//! ```
//!
//! Along the way, [`answer`] applies `block` and `reject` and tells senders why their
//! packet went no further (TCP reset, ICMP errors); every drop takes one path ([`drop`]):
//! counted by reason, logged when its rule says `log` or its reason is security-relevant
//! ([`DropReason::always_logged`]). Each stage records what it decided in the
//! descriptor's [`Trace`], which [`Appliance::receive_traced`] returns: that is how
//! `rules test` and `explain` report what the kernel does with a packet.

mod across;
mod answer;
mod arp;
mod checks;
pub mod counter_lines;
mod descriptor;
mod dhcp_server;
mod drop;
mod established;
mod footprint;
mod forward;
mod new_flow;
mod report;
mod sources;
mod to_self;
mod to_self6;
mod trace;
mod transmit;
mod uplink;

use alloc::vec::Vec;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpVersion,
    Ipv4Address, Ipv4Packet, Ipv6Address, Ipv6Cidr, Ipv6Packet, ETHERNET_HEADER_LEN,
};

use crate::antispoof::SourceFilter;
use crate::arp as arp_wire;
use crate::capture::{Capture, CaptureConfig, CaptureMode};
use crate::config::{ApplianceConfig, NicConfig};
use crate::drops::{DropCounters, DropLog, DropReason};
use crate::fragment::FragmentTable;
use crate::icmp_error::{ErrorReplies, REPLY_SHARES};
use crate::keys::ApplianceKeys;
use crate::local::LocalStack;
use crate::nat::{MasqueradeConfig, Masquerader};
use crate::ndp::{NdEvent, NeighborDiscovery};
use crate::neighbor::NeighborTable;
use crate::offload::{NicOffloads, Offload, OffloadError};
use crate::packet::{IpSummary, Malformed};
use crate::policy::{ipv4_to_flow_addr, Action, Policy};
use crate::route::{RouteTable, Topology};
use crate::route6::Nic6;
use crate::rule_counters::RuleCounters;
use crate::share::Source;
use crate::sink::FrameSink;
use crate::state::{StateConfig, StateStats, StateTable, Timeouts};

use descriptor::PacketDesc;
use drop::Dropped;
pub use footprint::Footprint;
pub use report::Stats;
pub use trace::{Fate, PolicyDecision, Redirect, RedirectKind, Reply, Trace};

/// Parses the IPv4 or IPv6 packet (as `ethertype` says) at the start of `bytes`.
fn parse_ip(ethertype: EthernetProtocol, bytes: &[u8]) -> Result<IpSummary, Malformed> {
    match ethertype {
        EthernetProtocol::Ipv6 => IpSummary::parse_ipv6(bytes),
        _ => IpSummary::parse(bytes),
    }
}

/// NIC `nic`'s IPv6 addressing as neighbour discovery has it now.
fn addressing6(ndp: &NeighborDiscovery, nic: u8) -> Nic6 {
    Nic6 {
        addresses: ndp.addresses(nic).collect(),
        gateway: ndp.gateway(nic),
    }
}

/// The detail of a drop line for a frame from a broadcast, multicast or zero MAC.
const BAD_SOURCE_MAC: &str = "bad-source-mac";
/// States examined per [`Appliance::poll`] by the expiry sweep.
const SWEEP_BUDGET: usize = 4096;
/// How often the stats line is printed by default (only when counters changed).
pub const STATS_INTERVAL: Duration = Duration::from_secs(5);
/// Longest [`Appliance::poll`] asks the kernel to wait before calling it again.
const MAX_POLL_DELAY: Duration = Duration::from_secs(5);

/// Tunables the kernel chooses at boot.
#[derive(Clone, Copy, Debug)]
pub struct ApplianceOptions {
    /// Most live states (connections) at once.
    pub state_capacity: usize,
    /// The secrets, one per purpose: the state table's hash key, the NAT port, DHCP and
    /// local-stack seeds, the share tables' key. The kernel draws them at boot.
    pub keys: ApplianceKeys,
    /// State timeouts.
    pub timeouts: Timeouts,
    /// The packet capture (off unless the kernel has a port to copy it out on).
    pub capture: CaptureConfig,
    /// How often the stats and counter lines are printed (when counters changed); `None`
    /// prints them only at shutdown.
    pub stats_interval: Option<Duration>,
}

impl Default for ApplianceOptions {
    fn default() -> Self {
        ApplianceOptions {
            state_capacity: 4096,
            keys: ApplianceKeys::FIXED,
            timeouts: Timeouts::default(),
            stats_interval: Some(STATS_INTERVAL),
            capture: CaptureConfig {
                mode: CaptureMode::Off,
                ..CaptureConfig::default()
            },
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
    /// Frames the NIC's driver lost below the data plane, as the kernel last reported
    /// them ([`Appliance::set_device_losses`]).
    pub device: DeviceLosses,
}

/// Frames a NIC's driver lost where the data plane never saw them (or after it sent
/// them): counted by the driver, reported by the kernel, shown on the stats line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceLosses {
    /// Frames not sent: the transmit ring stayed full.
    pub tx_ring_full: u64,
    /// Frames not sent: too big for a transmit buffer.
    pub tx_too_big: u64,
    /// Frames received but dropped by the driver (a merged super-frame with no free
    /// buffer to gather it into).
    pub rx_dropped: u64,
}

impl DeviceLosses {
    /// Whether the driver lost nothing.
    pub fn is_empty(&self) -> bool {
        *self == DeviceLosses::default()
    }
}

struct Nic {
    local: LocalStack,
    counters: NicCounters,
    uplink: uplink::Uplink,
}

/// The IP source address of `frame`, if it is an IPv4 or IPv6 packet long enough to have
/// one.
fn ip_source(frame: &[u8]) -> Option<IpAddress> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    match ethernet.ethertype() {
        EthernetProtocol::Ipv4 => Some(
            Ipv4Packet::new_checked(ethernet.payload())
                .ok()?
                .src_addr()
                .into(),
        ),
        EthernetProtocol::Ipv6 => Some(
            Ipv6Packet::new_checked(ethernet.payload())
                .ok()?
                .src_addr()
                .into(),
        ),
        _ => None,
    }
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
    /// What each NIC's device takes on transmission.
    offloads: Vec<NicOffloads>,
    routes: RouteTable,
    sources: SourceFilter,
    neighbors: NeighborTable,
    /// IPv6 addressing and neighbour discovery (SLAAC, DAD, RAs, the IPv6 neighbours).
    ndp: NeighborDiscovery,
    states: StateTable,
    masquerader: Masquerader,
    fragments: FragmentTable<transmit::Plan>,
    errors: ErrorReplies,
    drops: DropCounters,
    drop_log: DropLog,
    /// Packets, bytes and states per rule.
    rule_counts: RuleCounters,
    /// Dropped (and logged passed) frames, as a pcap stream.
    capture: Capture,
    /// DNS resolvers learned on the uplink (DHCP) or configured statically.
    upstream_dns: Vec<IpAddress>,
    /// `(nic, flow address, index in policy.clients)` of every declared client's address
    /// of either family, sorted (looked up for every packet).
    declared_clients: Vec<(u8, u128, u32)>,
    /// The DHCP servers of client interfaces.
    dhcp_servers: dhcp_server::DhcpServers,
    /// `((nic, flow address), MAC)` of every address (of either family) of every client
    /// whose MAC the ruleset pins, sorted (looked up for every packet sent to a neighbour).
    pinned_macs: Vec<((u8, u128), EthernetAddress)>,
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
                    ApplianceKeys::for_nic(options.keys.local_stack, i as u8),
                    now,
                ),
                counters: NicCounters::default(),
                uplink: uplink::Uplink::new(
                    nic,
                    ApplianceKeys::for_nic(options.keys.dhcp, i as u8),
                    now,
                ),
            })
            .collect();
        let configs = config.nics.clone();
        let offloads = (0..configs.len())
            .map(|i| config.offloads.get(i).copied().unwrap_or_default())
            .collect();
        let topology = Topology::from_policy(&configs, &policy);
        let mut routes = RouteTable::new(&topology);
        let macs: Vec<EthernetAddress> = config.nics.iter().map(|n| n.mac).collect();
        let ndp = NeighborDiscovery::from_policy(
            &policy,
            &macs,
            options.keys.local_stack.rotate_left(7),
            now,
        );
        for interface in policy.interfaces {
            routes.set_mtu(interface.nic, interface.mtu);
        }
        for nic in 0..config.nics.len() as u8 {
            routes.set_nic_ipv6(nic, addressing6(&ndp, nic));
        }
        let dhcp_servers = dhcp_server::DhcpServers::new(&policy, &configs);
        let sources = dhcp_server::source_filter(&dhcp_servers, &configs, &policy);
        let states = StateTable::new(StateConfig {
            capacity: options.state_capacity,
            hash_key: options.keys.state_hash,
            timeouts: options.timeouts,
        });
        let upstream_dns = config.upstream_dns.iter().map(|&a| a.into()).collect();
        let mut declared_clients: Vec<(u8, u128, u32)> = policy
            .clients
            .iter()
            .enumerate()
            .flat_map(|(i, c)| {
                let v4 = c.ipv4.map(ipv4_to_flow_addr);
                [v4, c.ipv6]
                    .into_iter()
                    .flatten()
                    .map(move |a| (c.nic, a, i as u32))
            })
            .collect();
        declared_clients.sort_unstable();
        let rule_counts = RuleCounters::new(policy.rules.len());
        let rule_lines = counter_lines::rule_lines(&policy, &rule_counts).count();
        let mut pinned_macs: Vec<((u8, u128), EthernetAddress)> = policy
            .clients
            .iter()
            .filter_map(|c| Some((c, EthernetAddress(c.mac?))))
            .flat_map(|(c, mac)| {
                let v4 = c.ipv4.map(ipv4_to_flow_addr);
                [v4, c.ipv6]
                    .into_iter()
                    .flatten()
                    .map(move |a| ((c.nic, a), mac))
            })
            .collect();
        pinned_macs.sort_unstable_by_key(|&(key, _)| key);
        let mut appliance = Appliance {
            declared_clients,
            pinned_macs,
            policy,
            nics,
            configs,
            offloads,
            routes,
            sources,
            neighbors: NeighborTable::new(),
            ndp,
            states,
            masquerader: Masquerader::new(MasqueradeConfig::seeded(options.keys.nat_ports)),
            fragments: FragmentTable::new(),
            errors: ErrorReplies::new(REPLY_SHARES, options.keys.shares),
            drops: DropCounters::default(),
            drop_log: DropLog::new(options.keys.shares),
            rule_counts,
            capture: Capture::new(options.capture, options.keys.shares),
            upstream_dns,
            dhcp_servers,
            stats: report::Reporter::new(now, options.stats_interval, rule_lines),
        };
        appliance.configure_next_hops();
        appliance.upstream_resolvers_changed(now);
        appliance
    }

    /// Tells neighbour discovery whether any upstream resolver is known, after the list
    /// changed: client networks are told of the appliance's IPv6 resolver while one is.
    fn upstream_resolvers_changed(&mut self, now: Instant) {
        let known = !self.upstream_dns.is_empty();
        self.ndp.set_upstream_resolver(known, now);
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

    /// The IPv6 addresses of NIC `nic` as they are now (link-local first; static, SLAAC;
    /// not those found duplicate) and its default router: what neighbour discovery made of
    /// the ruleset and of the advertisements it accepted.
    pub fn ipv6_addressing(&self, nic: u8) -> (Vec<Ipv6Cidr>, Option<Ipv6Address>) {
        (self.ndp.addresses(nic).collect(), self.ndp.gateway(nic))
    }

    /// Announces every configured address with a gratuitous ARP, and asks for the MAC of
    /// each gateway and of the next hops toward the upstream resolvers (at boot).
    pub fn announce(&mut self, now: Instant, sink: &mut dyn FrameSink) {
        for index in 0..self.configs.len() {
            let config = self.configs[index];
            if let Some(cidr) = config.ipv4 {
                let message = arp_wire::gratuitous(config.mac, cidr.address());
                self.send_arp(index as u8, EthernetAddress::BROADCAST, &message, sink);
            }
        }
        self.solicit_next_hops(now, sink);
    }

    /// Pins IPv6 neighbour `addr` on `nic` to MAC `mac`, for good (no solicitation for it
    /// ever): for tests, and for dry runs whose neighbours answer nothing.
    pub fn pin_ipv6_neighbor(&mut self, nic: u8, addr: Ipv6Address, mac: EthernetAddress) {
        self.ndp.learn_static(nic, addr, mac);
    }

    /// Follows what neighbour discovery changed: each NIC's IPv6 addresses and router
    /// (routes, anti-spoofing, NAT66 and ICMPv6 sources read them from the routes), the
    /// uplink's IPv6 resolvers, and next hops that never answered.
    fn follow_ndp(&mut self, now: Instant) {
        for event in self.ndp.take_events() {
            match event {
                NdEvent::AddressAdded { nic, .. }
                | NdEvent::AddressRemoved { nic, .. }
                | NdEvent::GatewayChanged { nic, .. } => {
                    let addressing = addressing6(&self.ndp, nic);
                    self.routes.set_nic_ipv6(nic, addressing);
                }
                NdEvent::DnsChanged => {
                    self.upstream_dns.retain(|a| a.version() == IpVersion::Ipv4);
                    let learned = self.ndp.dns_servers().iter().map(|&a| IpAddress::Ipv6(a));
                    self.upstream_dns.extend(learned);
                    self.upstream_resolvers_changed(now);
                }
                NdEvent::Unreachable { nic, dropped } => {
                    for _ in 0..dropped {
                        self.count_drop(nic, DropReason::NeighborUnreachable);
                    }
                }
            }
        }
    }

    /// Processes one received Ethernet frame from NIC `nic`. The frame is rewritten in
    /// place when it is forwarded (NAT, TTL).
    pub fn receive(&mut self, nic: u8, frame: &mut [u8], now: Instant, sink: &mut dyn FrameSink) {
        self.receive_frame(nic, frame, Offload::PLAIN, now, sink);
    }

    /// [`Appliance::receive`] of a frame that came with offload metadata (a partial
    /// checksum, a super-frame: see [`crate::offload`]). The metadata is checked against
    /// the packet, kept (and its checksum kept in step) while the packet is rewritten, and
    /// handed to the egress NIC with the frame if that NIC takes it, else finished in
    /// software there. Every check, state, translation and answer applies to the frame as
    /// to a plain one; the MTU is checked against one segment.
    pub fn receive_offloaded(
        &mut self,
        nic: u8,
        frame: &mut [u8],
        offload: Offload,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) {
        self.receive_frame(nic, frame, offload, now, sink);
    }

    /// [`Appliance::receive`], returning what the data plane did with the frame: the
    /// destination NAT and the policy's decision on the way, and where the packet went or
    /// why it was dropped. `rules test` and `explain` report this; the kernel calls
    /// `receive`, which is the same path.
    pub fn receive_traced(
        &mut self,
        nic: u8,
        frame: &mut [u8],
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Trace {
        self.receive_frame(nic, frame, Offload::PLAIN, now, sink)
    }

    /// Receives one frame with its offload metadata, and records it in the packet capture
    /// if asked.
    fn receive_frame(
        &mut self,
        nic: u8,
        frame: &mut [u8],
        offload: Offload,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Trace {
        let trace = self.process(nic, frame, offload, now, sink);
        self.capture_if_asked(nic, now, frame, &trace);
        trace
    }

    /// Records the frame in the packet capture if it was dropped, or if a `log` rule passed
    /// it and the capture takes those too (see [`crate::capture`]).
    fn capture_if_asked(&mut self, nic: u8, now: Instant, frame: &[u8], trace: &Trace) {
        let wanted = match (self.capture.mode(), trace.fate) {
            (CaptureMode::Off, _) => false,
            (_, Fate::Dropped(_)) => true,
            (CaptureMode::DropsAndLoggedPasses, _) => trace
                .decision
                .is_some_and(|d| d.verdict.action == Action::Pass && d.verdict.log),
            (CaptureMode::Drops, _) => false,
        };
        if wanted {
            let sender = match ip_source(frame) {
                Some(addr) => self.source_of(nic, addr),
                None => Source::neighbour(nic, Ipv4Address::UNSPECIFIED),
            };
            self.capture.record(sender, now, frame);
        }
    }

    /// The receive path of one frame (see the module documentation).
    fn process(
        &mut self,
        nic: u8,
        frame: &mut [u8],
        offload: Offload,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Trace {
        let mut trace = Trace::default();
        let Some(state) = self.nics.get_mut(nic as usize) else {
            trace.fate = Fate::Dropped(DropReason::NicUnconfigured);
            return trace;
        };
        state.counters.rx += 1;
        let repr =
            match EthernetFrame::new_checked(&frame[..]).and_then(|f| EthernetRepr::parse(&f)) {
                Ok(repr) => repr,
                Err(_) => {
                    self.refuse(nic, now, &mut trace, DropReason::Malformed.into(), None);
                    return trace;
                }
            };
        if !arp_wire::is_station(repr.src_addr) {
            // No station sends from a group or zero address: nothing to learn or forward.
            let refused = Dropped::detail(DropReason::Malformed, BAD_SOURCE_MAC);
            self.refuse(nic, now, &mut trace, refused, None);
            return trace;
        }
        self.nics[nic as usize].uplink.heard(repr.src_addr, now);
        let config = self.configs[nic as usize];
        let link_broadcast = repr.dst_addr.is_broadcast() || repr.dst_addr.is_multicast();
        let refused = if repr.dst_addr != config.mac && !link_broadcast {
            Dropped::from(DropReason::NotForUs)
        } else {
            match repr.ethertype {
                _ if !offload.is_plain()
                    && !matches!(
                        repr.ethertype,
                        EthernetProtocol::Ipv4 | EthernetProtocol::Ipv6
                    ) =>
                {
                    Dropped::detail(
                        DropReason::Malformed,
                        OffloadError::ChecksumNotTransport.as_str(),
                    )
                }
                EthernetProtocol::Arp => return self.receive_arp(nic, frame, now, sink),
                EthernetProtocol::Ipv4 | EthernetProtocol::Ipv6 => {
                    match parse_ip(repr.ethertype, &frame[ETHERNET_HEADER_LEN..]) {
                        Ok(ip) => {
                            let mut pd = PacketDesc {
                                nic,
                                now,
                                sender_mac: repr.src_addr,
                                link_broadcast,
                                ingress: config.ipv4,
                                ip,
                                offload,
                                frame,
                                trace: &mut trace,
                            };
                            let forwarded = if pd.ip.is_ipv6() {
                                self.forward_ipv6(&mut pd, sink)
                            } else {
                                self.forward_ipv4(&mut pd, sink)
                            };
                            if let Err(dropped) = forwarded {
                                self.refuse_packet(&mut pd, dropped);
                            }
                            return trace;
                        }
                        Err(malformed) => {
                            Dropped::detail(DropReason::Malformed, malformed.as_str())
                        }
                    }
                }
                _ => DropReason::UnsupportedEtherType.into(),
            }
        };
        self.refuse(nic, now, &mut trace, refused, None);
        trace
    }

    fn count_drop(&mut self, nic: u8, reason: DropReason) {
        self.drops.count(reason);
        if let Some(state) = self.nics.get_mut(nic as usize) {
            state.counters.dropped += 1;
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
                let request = arp_wire::request(config.mac, cidr.address(), target);
                self.send_arp(nic, to, &request, sink);
            }
        }
        self.ndp.poll(now, sink);
        self.follow_ndp(now);
        self.states.sweep(now, SWEEP_BUDGET);
        self.fragments.expire(now);
        let mut delay = self.stats.wait_at_most(MAX_POLL_DELAY);
        for state in &mut self.nics {
            let mut counted = CountingSink { sink, sent: 0 };
            state.local.poll(now, &mut counted);
            state.counters.tx += counted.sent;
            if let Some(d) = state.local.poll_delay(now) {
                delay = delay.min(d);
            }
        }
        let uplinks = self.poll_uplinks(&work.gave_up, now, sink);
        let leases = self.poll_dhcp_servers(now);
        for at in [
            self.neighbors.next_deadline(),
            uplinks,
            leases,
            self.ndp.next_deadline(),
        ]
        .into_iter()
        .flatten()
        {
            delay = delay.min(if at > now { at - now } else { Duration::ZERO });
        }
        if self.stats.due(now) {
            let snapshot = self.stats();
            let rules = counter_lines::rule_lines(&self.policy, &self.rule_counts);
            self.stats.print_changes(now, &snapshot, rules);
        }
        delay
    }

    /// Prints the final report (at shutdown): `final` and the stats line, then a
    /// `stats rule=…` line for every rule and a `stats drop …` line for every drop reason
    /// with a non-zero counter ([`counter_lines`] has the format).
    pub fn report_final(&self) {
        let rules = counter_lines::rule_lines(&self.policy, &self.rule_counts);
        report::print_final(&self.stats(), rules);
    }

    /// The packet capture: the kernel drains its pcap stream ([`Capture::drain`]).
    pub fn capture_mut(&mut self) -> &mut Capture {
        &mut self.capture
    }

    /// Packets, bytes and states per compiled rule.
    pub fn rule_counters(&self) -> &RuleCounters {
        &self.rule_counts
    }

    /// Records what NIC `nic`'s driver has lost so far (its running totals), for the
    /// stats line. The kernel reports them before each poll and at shutdown.
    pub fn set_device_losses(&mut self, nic: u8, losses: DeviceLosses) {
        if let Some(nic) = self.nics.get_mut(usize::from(nic)) {
            nic.counters.device = losses;
        }
    }

    /// Everything the stats line reports.
    pub fn stats(&self) -> Stats {
        Stats {
            nics: self.nics.iter().map(|n| n.counters).collect(),
            drops: self.drops,
            states: self.states.stats(),
            log_lines_suppressed: self.drop_log.suppressed_total(),
            errors_rate_limited: self.errors.rate_limited(),
            capture: (self.capture.mode() != CaptureMode::Off).then(|| self.capture.stats()),
        }
    }
}
