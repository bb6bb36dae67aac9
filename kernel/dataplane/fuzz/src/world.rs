//! The appliance under fuzz, its rulesets, its NICs' hosts and its clock.

use std::sync::OnceLock;

use dataplane::appliance::{ApplianceOptions, Trace};
use dataplane::arp::{self, ArpMessage};
use dataplane::ndp::address::{is_link_local, link_local};
use dataplane::policy::{Ipv6Config, Policy, PolicyBuf};
use dataplane::sink::RecordingSink;
use dataplane::testutil::packets::ethernet_of;
use dataplane::testutil::packets6;
use dataplane::{Appliance, ApplianceConfig, NicConfig};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    ArpOperation, EthernetAddress, EthernetProtocol, Icmpv6Repr, Ipv4Address, Ipv6Address,
    Ipv6Cidr, NdiscRepr,
    RawHardwareAddress,
};

use crate::oracle::Oracle;

/// A ruleset the fuzzer runs under.
pub struct Ruleset {
    /// The compiled policy.
    pub policy: PolicyBuf,
    /// Whether every client network is masqueraded and nothing passes from the uplink to a
    /// client's own address: then no client address may leave the uplink as a source.
    pub hides_clients: bool,
    /// Likewise for the clients' IPv6 prefixes (unique local addresses behind NAT66).
    pub hides_clients6: bool,
}

/// The rulesets: the shipped default and its IPv4-only form, and ones with port forwards, DNS redirects, state
/// limits, rejects, a small uplink MTU, SCTP and a generated one with four networks.
fn rulesets() -> &'static [Ruleset] {
    static RULESETS: OnceLock<Vec<Ruleset>> = OnceLock::new();
    RULESETS.get_or_init(|| {
        let texts: [(&str, String, bool, bool); 9] = [
            (
                "ipv4-only.rules",
                include_str!("../../../../rules/examples/ipv4-only.rules").to_string(),
                true,
                true,
            ),
            ("declared.rules", DECLARED.to_string(), true, true),
            ("small-mtu.rules", SMALL_MTU.to_string(), true, true),
            ("two-networks.rules", TWO_NETWORKS.to_string(), true, true),
            (
                "generated.rules",
                rules::generate::generate(24, 8),
                false,
                true,
            ),
            (
                "default.rules",
                include_str!("../../../../rules/default.rules").to_string(),
                true,
                true,
            ),
            (
                "declared-dual-stack.rules",
                DECLARED_DUAL_STACK.to_string(),
                true,
                true,
            ),
            (
                "routed-dual-stack.rules",
                ROUTED_DUAL_STACK.to_string(),
                true,
                false,
            ),
            (
                "small-mtu-dual-stack.rules",
                SMALL_MTU_DUAL_STACK.to_string(),
                true,
                true,
            ),
        ];
        texts
            .into_iter()
            .map(
                |(name, text, hides_clients, hides_clients6)| match rules::compile(name, &text) {
                    Ok(compiled) => Ruleset {
                        policy: compiled.policy,
                        hides_clients,
                        hides_clients6,
                    },
                    Err(error) => panic!("{name} does not compile:\n{}", error.render()),
                },
            )
            .collect()
    })
}

/// Qubes-style declared clients, SSH forwarded to `work`, SIP to `personal`.
const DECLARED: &str = "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3
interface clients nic1 address 10.137.1.1/24
client work     10.137.1.10 mac 02:48:00:00:01:00 on clients
client personal 10.137.1.11 on clients
nat from clients to uplink
dns from clients to upstream
forward uplink tcp port 8022 to work port 22
forward uplink udp port 5060 to personal
pass forwarded from uplink to work tcp port 22
pass forwarded from uplink to personal udp port 5060
pass from clients to self icmp type echo-request
pass from clients to uplink
default block log
";

/// A 1,400-byte uplink (fragments cut again), only HTTPS, DNS and SCTP but port 9999 out.
const SMALL_MTU: &str =
    "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3 mtu 1400
interface clients nic1 address 10.137.1.1/24
nat from clients to uplink
dns from clients to upstream
block from clients to uplink sctp port 9999
pass from clients to uplink sctp allow-opts
pass from clients to uplink tcp port 443
pass from clients to uplink udp port 53
default block log
";

/// Two client networks, limits, rejects.
const TWO_NETWORKS: &str =
    "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3
interface clients nic1 address 10.137.1.1/24
interface lab     nic2 address 10.137.2.1/24
client work 10.137.1.10 on clients max-states 8
nat from { clients, lab } to uplink
reject from { clients, lab } to uplink tcp port 25
reject from { clients, lab } to uplink udp port 137
pass from clients to lab tcp port 80
pass from { clients, lab } to uplink max-src-states 16
pass from { clients, lab } to self icmp
default reject log
";

/// Dual stack, Qubes-style: declared clients with unique local IPv6 addresses (one pinned
/// to its MAC) masqueraded behind the uplink's address, advertisements on the clients'
/// network, a port forward, rejects.
const DECLARED_DUAL_STACK: &str = "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3 address6 2001:db8:2::15/64 gateway6 fe80::2
interface clients nic1 address 10.137.1.1/24 address6 fd00:137:1::1/64 ra
client work     10.137.1.10, fd00:137:1::10 mac 02:48:00:00:01:00 on clients
client personal 10.137.1.11, fd00:137:1::11 on clients
nat from clients to uplink
dns from clients to upstream
forward uplink tcp port 8022 to work port 22
pass forwarded from uplink to work tcp port 22
pass from clients to self { icmp, icmp6 } type echo-request
reject from clients to uplink tcp port 25
pass from clients to uplink max-src-states 16
default block log
";

/// A routed IPv6 prefix on the clients' network (IPv4 masqueraded, IPv6 not), one client
/// open to SSH from the uplink.
const ROUTED_DUAL_STACK: &str = "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 address6 2001:db8:2::15/64 gateway6 fe80::2
interface clients nic1 address 10.137.1.1/24 address6 2001:db8:137::1/64
interface lab     nic2 address 10.137.2.1/24 address6 2001:db8:138::1/64
nat from { 10.137.1.0/24, 10.137.2.0/24 } to uplink
pass from clients to lab tcp port 80
pass from { clients, lab } to uplink
pass from uplink to 2001:db8:137::10 tcp port 22
default reject log
";

/// Dual stack behind an uplink whose MTU is IPv6's minimum (packet too big, no
/// fragmentation by the router).
const SMALL_MTU_DUAL_STACK: &str = "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 address6 2001:db8:2::15/64 gateway6 fe80::2 mtu 1280
interface clients nic1 address 10.137.1.1/24 address6 fd00:137:1::1/64
nat from clients to uplink
pass from clients to uplink udp port 53
pass from clients to uplink tcp port 443
pass from clients to uplink icmp6
default block log
";

/// The prefix a SLAAC uplink's router advertises in the scenarios.
pub const SLAAC_PREFIX: Ipv6Address = Ipv6Address::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0);

/// The uplink router's link-local address (`gateway6 fe80::2`, or the SLAAC router).
pub const ROUTER6: Ipv6Address = Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);

/// Servers beyond the uplink's IPv6 router.
pub const REMOTES6: [Ipv6Address; 3] = [
    Ipv6Address::new(0x2606, 0x4700, 0, 0, 0, 0, 0, 0x1111),
    Ipv6Address::new(0x2001, 0xdb8, 0x99, 0, 0, 0, 0, 9),
    Ipv6Address::new(0x2001, 0xdb8, 0x137, 0, 0, 0, 0, 0x10),
];

/// The appliance's MAC on NIC `nic`.
pub fn appliance_mac(nic: u8) -> EthernetAddress {
    EthernetAddress([0x52, 0x54, 0x00, 0x6d, 0x00, nic])
}

/// The MAC of host `index` on NIC `nic`.
pub fn host_mac(nic: u8, index: u8) -> EthernetAddress {
    EthernetAddress([0x02, 0x48, 0x00, 0x00, nic, index])
}

/// Servers beyond the uplink's gateway.
pub const REMOTES: [[u8; 4]; 4] = [
    [93, 184, 216, 34],
    [1, 1, 1, 1],
    [198, 51, 100, 1],
    [203, 0, 113, 9],
];

/// Ports the rulesets name.
pub const PORTS: [u16; 14] = [
    22, 25, 53, 80, 123, 137, 443, 5060, 8022, 9999, 67, 68, 0, 40000,
];

/// The appliance, its clock and what it knows of its NICs.
pub struct World {
    /// The appliance.
    pub appliance: Appliance<'static>,
    /// The policy it enforces.
    pub policy: Policy<'static>,
    /// Whether client addresses must never leave the uplink (see [`Ruleset`]).
    pub hides_clients: bool,
    /// Whether client IPv6 addresses must never leave the uplink.
    pub hides_clients6: bool,
    /// Each NIC's IPv6 prefix (static, or the one a SLAAC uplink's router advertises) and
    /// whether it comes from SLAAC; `None` without IPv6.
    pub prefixes6: Vec<Option<(Ipv6Cidr, bool)>>,
    /// Each NIC's IPv6 hosts (the router, declared clients, addresses of the prefix, and
    /// link-local addresses of the NIC's hosts).
    pub hosts6: Vec<Vec<Ipv6Address>>,
    /// Each NIC's addressing.
    pub nics: Vec<NicConfig>,
    /// Each NIC's hosts (addresses on its network; declared clients among them).
    pub hosts: Vec<Vec<Ipv4Address>>,
    /// The fake clock.
    pub now: Instant,
}

impl World {
    /// Boots the appliance under ruleset `ruleset` (modulo their count).
    pub fn boot(ruleset: u8, small_table: bool) -> World {
        let all = rulesets();
        let chosen = &all[usize::from(ruleset) % all.len()];
        let policy = chosen.policy.as_policy();
        let nic_count = policy
            .interfaces
            .iter()
            .map(|i| usize::from(i.nic) + 1)
            .max()
            .unwrap_or(1);
        let macs: Vec<EthernetAddress> = (0..nic_count as u8).map(appliance_mac).collect();
        let config = ApplianceConfig::from_policy(&policy, &macs);
        let hosts = config
            .nics
            .iter()
            .enumerate()
            .map(|(nic, c)| nic_hosts(&policy, nic as u8, c))
            .collect();
        let prefixes6: Vec<Option<(Ipv6Cidr, bool)>> = (0..nic_count as u8)
            .map(|nic| prefix6(&policy, nic))
            .collect();
        let hosts6 = prefixes6
            .iter()
            .enumerate()
            .map(|(nic, prefix)| nic_hosts6(&policy, nic as u8, *prefix))
            .collect();
        let options = ApplianceOptions {
            state_capacity: if small_table { 16 } else { 512 },
            ..ApplianceOptions::default()
        };
        let now = Instant::from_secs(1_000);
        World {
            appliance: Appliance::new(policy, &config, options, now),
            policy,
            hides_clients: chosen.hides_clients,
            hides_clients6: chosen.hides_clients6,
            nics: config.nics.clone(),
            hosts,
            prefixes6,
            hosts6,
            now,
        }
    }

    /// ARP replies from the first hosts of every NIC (the gateway first on the uplink), as
    /// if the appliance had asked: it then knows their MACs.
    pub fn introductions(&self) -> Vec<(u8, Vec<u8>)> {
        let mut frames = Vec::new();
        for (nic, config) in self.nics.iter().enumerate() {
            let Some(cidr) = config.ipv4 else { continue };
            for (index, host) in self.hosts[nic].iter().enumerate().take(3) {
                let message = ArpMessage {
                    operation: ArpOperation::Reply,
                    sender_mac: host_mac(nic as u8, index as u8),
                    sender_ip: *host,
                    target_mac: appliance_mac(nic as u8),
                    target_ip: cidr.address(),
                };
                let mut frame = vec![0u8; arp::ARP_FRAME_LEN];
                arp::emit(&mut frame, appliance_mac(nic as u8), &message);
                frames.push((nic as u8, frame));
            }
        }
        frames
    }

    /// For a SLAAC uplink: its router's advertisement of [`SLAAC_PREFIX`] (a default
    /// router for half an hour).
    pub fn router_advert(&self) -> Option<(u8, Vec<u8>)> {
        if !matches!(self.prefixes6.first(), Some(Some((_, true)))) {
            return None;
        }
        let frame = packets6::router_advert_frame(ROUTER6, host_mac(0, 0), SLAAC_PREFIX, &[]);
        Some((0, frame))
    }

    /// Neighbour solicitations from the first IPv6 hosts of every NIC (with their MACs)
    /// for the appliance's address: it then knows them (stale), so forwarded packets leave
    /// at once.
    pub fn introductions6(&self) -> Vec<(u8, Vec<u8>)> {
        let mut frames = Vec::new();
        for (nic, hosts) in self.hosts6.iter().enumerate() {
            let nic = nic as u8;
            if self.prefixes6[usize::from(nic)].is_none() {
                continue;
            }
            for (index, &host) in hosts.iter().enumerate().take(3) {
                let mac = host_mac(nic, index as u8);
                let target = if is_link_local(host) {
                    link_local(appliance_mac(nic))
                } else {
                    self.appliance_addr6(nic)
                };
                let repr = NdiscRepr::NeighborSolicit {
                    target_addr: target,
                    lladdr: Some(RawHardwareAddress::from(mac)),
                };
                let mut ip = packets6::icmp(host, target, &Icmpv6Repr::Ndisc(repr));
                packets6::set_hop_limit(&mut ip, 255);
                let frame = ethernet_of(EthernetProtocol::Ipv6, mac, appliance_mac(nic), &ip);
                frames.push((nic, frame));
            }
        }
        frames
    }

    /// Hands `frame` to the appliance on `nic` and has `oracle` check what comes out.
    pub fn receive(&mut self, nic: u8, mut frame: Vec<u8>, oracle: &mut Oracle) {
        let input = frame.clone();
        let before = self.addressing6();
        let mut sink = RecordingSink::default();
        let trace: Trace = self
            .appliance
            .receive_traced(nic, &mut frame, self.now, &mut sink);
        oracle.check_receive(self, nic, &input, &trace, &sink.frames);
        oracle.check_addressing6(self, nic, &input, &before, &self.addressing6());
    }

    /// Every NIC's IPv6 addresses and default router, as the appliance has them now.
    pub fn addressing6(&self) -> Vec<(Vec<Ipv6Cidr>, Option<Ipv6Address>)> {
        (0..self.nics.len() as u8)
            .map(|nic| self.appliance.ipv6_addressing(nic))
            .collect()
    }

    /// Whether the ruleset gives any NIC IPv6.
    pub fn has_ipv6(&self) -> bool {
        self.prefixes6.iter().any(Option::is_some)
    }

    /// The appliance's IPv6 address on `nic`: a global (or unique local) one once it has
    /// one, else its link-local address.
    pub fn appliance_addr6(&self, nic: u8) -> Ipv6Address {
        let (addresses, _) = self.appliance.ipv6_addressing(nic);
        addresses
            .iter()
            .map(|c| c.address())
            .find(|a| !is_link_local(*a))
            .or_else(|| addresses.first().map(|c| c.address()))
            .unwrap_or(link_local(appliance_mac(nic)))
    }

    /// Whether `addr` is a client's IPv6 address: in a client (non-uplink) NIC's prefix,
    /// and not the appliance's own address there.
    pub fn is_client_address6(&self, addr: Ipv6Address) -> bool {
        self.prefixes6
            .iter()
            .enumerate()
            .skip(1)
            .filter_map(|(nic, p)| p.map(|(cidr, _)| (nic, cidr)))
            .any(|(nic, cidr)| {
                cidr.contains_addr(&addr)
                    && !self
                        .appliance
                        .ipv6_addressing(nic as u8)
                        .0
                        .iter()
                        .any(|c| c.address() == addr)
            })
    }

    /// Moves the clock on by `by` and runs the timers.
    pub fn advance(&mut self, by: Duration, oracle: &mut Oracle) {
        self.now += by;
        let mut sink = RecordingSink::default();
        self.poll(&mut sink);
        oracle.check_outputs(self, None, &sink.frames);
    }

    /// Runs the timers now.
    pub fn poll(&mut self, sink: &mut RecordingSink) {
        self.appliance.poll(self.now, sink);
    }

    /// Whether `addr` is a client's: on a client (non-uplink) NIC's network, and not the
    /// appliance's own address there (which answers, from that address, whoever addressed
    /// it, on any NIC).
    pub fn is_client_address(&self, addr: Ipv4Address) -> bool {
        self.nics
            .iter()
            .skip(1)
            .filter_map(|c| c.ipv4)
            .any(|cidr| cidr.contains_addr(&addr) && cidr.address() != addr)
    }
}

/// The hosts of NIC `nic`: the gateway, declared clients, and a few more addresses of its
/// network.
fn nic_hosts(policy: &Policy, nic: u8, config: &NicConfig) -> Vec<Ipv4Address> {
    let Some(cidr) = config.ipv4 else {
        return vec![Ipv4Address::new(10, 99, nic, 2)];
    };
    let mut hosts: Vec<Ipv4Address> = Vec::new();
    hosts.extend(config.gateway);
    for client in policy.clients.iter().filter(|c| c.nic == nic) {
        hosts.extend(client.ipv4.map(Ipv4Address::from_bits));
    }
    let network = cidr.network().address().to_bits();
    for offset in [2u32, 3, 10, 11, 12, 200] {
        let candidate = Ipv4Address::from_bits(network.wrapping_add(offset));
        if cidr.contains_addr(&candidate)
            && candidate != cidr.address()
            && !hosts.contains(&candidate)
        {
            hosts.push(candidate);
        }
    }
    hosts
}

/// NIC `nic`'s IPv6 prefix and whether it comes from SLAAC.
fn prefix6(policy: &Policy, nic: u8) -> Option<(Ipv6Cidr, bool)> {
    match policy.interface_on(nic)?.ipv6 {
        Ipv6Config::None => None,
        Ipv6Config::Static {
            address,
            prefix_len,
            ..
        } => Some((
            Ipv6Cidr::new(Ipv6Address::from_bits(address), prefix_len),
            false,
        )),
        Ipv6Config::Slaac => Some((Ipv6Cidr::new(SLAAC_PREFIX, 64), true)),
    }
}

/// The IPv6 hosts of NIC `nic`: the router (on the uplink), declared clients, a few more
/// addresses of its prefix and the link-local addresses of the first hosts' MACs.
fn nic_hosts6(policy: &Policy, nic: u8, prefix: Option<(Ipv6Cidr, bool)>) -> Vec<Ipv6Address> {
    let Some((cidr, _)) = prefix else {
        return vec![link_local(host_mac(nic, 0))];
    };
    let mut hosts: Vec<Ipv6Address> = Vec::new();
    if let Some(Ipv6Config::Static {
        gateway: Some(gateway),
        ..
    }) = policy.interface_on(nic).map(|i| i.ipv6)
    {
        hosts.push(Ipv6Address::from_bits(gateway));
    } else if nic == 0 {
        hosts.push(ROUTER6);
    }
    for client in policy.clients.iter().filter(|c| c.nic == nic) {
        hosts.extend(client.ipv6.map(Ipv6Address::from_bits));
    }
    let network = cidr.address().to_bits() & !((1u128 << (128 - u32::from(cidr.prefix_len()))) - 1);
    for offset in [2u128, 3, 0x10, 0x11, 0x12, 0x200] {
        let candidate = Ipv6Address::from_bits(network | offset);
        if candidate != cidr.address() && !hosts.contains(&candidate) {
            hosts.push(candidate);
        }
    }
    hosts.extend((0..3).map(|index| link_local(host_mac(nic, index))));
    hosts
}
