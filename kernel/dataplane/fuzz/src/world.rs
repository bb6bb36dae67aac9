//! The appliance under fuzz, its rulesets, its NICs' hosts and its clock.

use std::sync::OnceLock;

use dataplane::appliance::{ApplianceOptions, Trace};
use dataplane::arp::{self, ArpMessage};
use dataplane::policy::{Policy, PolicyBuf};
use dataplane::sink::RecordingSink;
use dataplane::{Appliance, ApplianceConfig, NicConfig};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{ArpOperation, EthernetAddress, Ipv4Address};

use crate::oracle::Oracle;

/// A ruleset the fuzzer runs under.
pub struct Ruleset {
    /// The compiled policy.
    pub policy: PolicyBuf,
    /// Whether every client network is masqueraded and nothing passes from the uplink to a
    /// client's own address: then no client address may leave the uplink as a source.
    pub hides_clients: bool,
}

/// The rulesets: the shipped default, and ones with port forwards, DNS redirects, state
/// limits, rejects, a small uplink MTU, SCTP and a generated one with four networks.
fn rulesets() -> &'static [Ruleset] {
    static RULESETS: OnceLock<Vec<Ruleset>> = OnceLock::new();
    RULESETS.get_or_init(|| {
        let texts: [(&str, String, bool); 5] = [
            (
                "default.rules",
                include_str!("../../../../rules/default.rules").to_string(),
                true,
            ),
            ("declared.rules", DECLARED.to_string(), true),
            ("small-mtu.rules", SMALL_MTU.to_string(), true),
            ("two-networks.rules", TWO_NETWORKS.to_string(), true),
            ("generated.rules", rules::generate::generate(24, 8), false),
        ];
        texts
            .into_iter()
            .map(
                |(name, text, hides_clients)| match rules::compile(name, &text) {
                    Ok(compiled) => Ruleset {
                        policy: compiled.policy,
                        hides_clients,
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
        let options = ApplianceOptions {
            state_capacity: if small_table { 16 } else { 512 },
            ..ApplianceOptions::default()
        };
        let now = Instant::from_secs(1_000);
        World {
            appliance: Appliance::new(policy, &config, options, now),
            policy,
            hides_clients: chosen.hides_clients,
            nics: config.nics.clone(),
            hosts,
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

    /// Hands `frame` to the appliance on `nic` and has `oracle` check what comes out.
    pub fn receive(&mut self, nic: u8, mut frame: Vec<u8>, oracle: &mut Oracle) {
        let input = frame.clone();
        let mut sink = RecordingSink::default();
        let trace: Trace = self
            .appliance
            .receive_traced(nic, &mut frame, self.now, &mut sink);
        oracle.check_receive(self, nic, &input, &trace, &sink.frames);
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
