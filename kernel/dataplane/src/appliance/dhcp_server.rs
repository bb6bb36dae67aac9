//! The DHCP servers of client interfaces (`dhcp on IFACE`) in the appliance: requests
//! answered before anti-spoofing (a client without an address sends from 0.0.0.0), and
//! what a lease means for the rest of the path:
//!
//! - **anti-spoofing**: a served interface accepts its declared clients and the addresses
//!   leased on it, each only from the MAC it is leased to (`spoofed (lease-mac-mismatch)`
//!   otherwise); an address in its network that no one leased is `spoofed`;
//! - **neighbours**: a bound lease teaches the appliance the client's MAC, and a leased
//!   client gets proxy ARP like a declared one;
//! - **state limits**: each pool client counts as a client with the `max-states` of its
//!   `dhcp` line, while its lease lasts; when the lease ends (expired, released, declined,
//!   taken back), its states go with it.

use alloc::string::String;
use alloc::vec::Vec;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, IpAddress, Ipv4Address, DHCP_CLIENT_PORT, DHCP_SERVER_PORT};

use super::descriptor::PacketDesc;
use super::drop::Dropped;
use super::Appliance;
use crate::antispoof::SourceFilter;
use crate::config::NicConfig;
use crate::dhcp::{ClientRequest, Reservation, Server, ServerConfig, ServerParams};
use crate::drops::DropReason;
use crate::nat::policy_match::nic_in;
use crate::packet::Transport;
use crate::policy::{DhcpServer, Policy};
use crate::route::Topology;
use crate::sink::FrameSink;
use crate::state::ClientRef;

/// The detail of a drop line for a leased address sent from another MAC than its lease's.
pub(super) const LEASE_MAC_MISMATCH: &str = "lease-mac-mismatch";
/// How often expired leases are swept.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(5);
/// Per-client state counts of pool clients are kept under indices from here on (declared
/// clients use their index in `Policy::clients`, far below).
const POOL_CLIENT_INDEX: u32 = 0x8000_0000;

/// The DHCP server of one NIC, with what the appliance needs besides the server.
pub(super) struct ServedNic {
    nic: u8,
    server: Server,
    /// First address of the pool (for pool clients' state-limit indices).
    pool_first: u32,
    max_states: u32,
}

/// The DHCP servers of every served NIC.
#[derive(Default)]
pub(super) struct DhcpServers {
    served: Vec<ServedNic>,
    next_expiry: Option<Instant>,
}

impl DhcpServers {
    /// The servers `policy` declares, on NICs addressed as `configs` say (a NIC without an
    /// address serves nothing).
    pub(super) fn new(policy: &Policy, configs: &[NicConfig]) -> DhcpServers {
        let served = policy
            .dhcp_servers
            .iter()
            .filter_map(|d| served_nic(policy, configs, d))
            .collect();
        DhcpServers {
            served,
            next_expiry: None,
        }
    }

    fn on(&self, nic: u8) -> Option<&ServedNic> {
        self.served.iter().find(|s| s.nic == nic)
    }

    fn on_mut(&mut self, nic: u8) -> Option<&mut ServedNic> {
        self.served.iter_mut().find(|s| s.nic == nic)
    }

    /// `filter` with every served NIC accepting only its declared clients (leases are
    /// checked before it).
    fn restrict(&self, mut filter: SourceFilter) -> SourceFilter {
        for served in &self.served {
            filter.only_declared(served.nic);
        }
        filter
    }
}

/// The server of declaration `d`, if its NIC has an address.
fn served_nic(policy: &Policy, configs: &[NicConfig], d: &DhcpServer) -> Option<ServedNic> {
    let cidr = configs.get(d.nic as usize)?.ipv4?;
    let interface = policy.interface_on(d.nic)?;
    let redirects_dns = policy.dns.iter().any(|r| nic_in(policy, r.in_nic, d.nic));
    let reserved = policy
        .clients
        .iter()
        .filter(|c| c.nic == d.nic)
        .filter_map(|c| {
            Some(Reservation {
                ip: Ipv4Address::from_bits(c.ipv4?),
                mac: c.mac.map(EthernetAddress),
                name: String::from(policy.name(c.name)),
            })
        })
        .collect();
    let pool = d.pool.map(|p| {
        (
            Ipv4Address::from_bits(p.first),
            Ipv4Address::from_bits(p.last),
        )
    });
    Some(ServedNic {
        nic: d.nic,
        server: Server::new(ServerConfig {
            params: ServerParams {
                server: cidr.address(),
                subnet_mask: cidr.netmask(),
                router: Some(cidr.address()),
                dns: redirects_dns.then_some(cidr.address()),
                mtu: interface.mtu,
            },
            pool,
            lease_secs: d.lease_secs,
            reserved,
        }),
        pool_first: d.pool.map_or(0, |p| p.first),
        max_states: d.max_states,
    })
}

impl Appliance<'_> {
    /// Whether `pd` is a DHCP client's message for the server of its NIC: UDP 68 → 67 to
    /// the broadcast address or the appliance's address there.
    pub(super) fn is_for_dhcp_server(&self, pd: &PacketDesc) -> bool {
        let to_server = matches!(
            pd.ip.transport,
            Transport::Udp {
                src_port: DHCP_CLIENT_PORT,
                dst_port: DHCP_SERVER_PORT
            }
        );
        to_server
            && self.dhcp_servers.on(pd.nic).is_some()
            && match pd.ip.dst {
                IpAddress::Ipv4(dst) => {
                    dst.is_broadcast() || pd.ingress.is_some_and(|c| c.address() == dst)
                }
                IpAddress::Ipv6(_) => false,
            }
    }

    /// Answers a DHCP client's message (the appliance's own service: no rule decides it).
    pub(super) fn serve_dhcp(
        &mut self,
        pd: &mut PacketDesc,
        sink: &mut dyn FrameSink,
    ) -> Result<(), Dropped> {
        let request = ClientRequest::parse(pd.frame)
            .map_err(|unusable| Dropped::detail(DropReason::Malformed, unusable.as_str()))?;
        let nic = pd.nic;
        let Some(served) = self.dhcp_servers.on_mut(nic) else {
            return Err(DropReason::NicUnconfigured.into());
        };
        let outcome = served.server.handle(&request, pd.now);
        let params = *served.server.params();
        if outcome.exhausted {
            log::warn!(
                "nic{nic} dhcp: no address for {}: the pool is taken (or new leases are coming too fast)",
                request.client_mac
            );
        }
        for ended in outcome.ended {
            self.lease_ended(nic, ended);
        }
        if let Some((ip, mac)) = outcome.bound {
            log::info!("nic{nic} dhcp: {ip} leased to {mac}");
            self.neighbors.learn((nic, ip), mac, pd.now);
        }
        if let Some(answer) = outcome.answer {
            let (to, packet) = answer.build(&request, &params);
            self.send_ip_to(nic, to, &packet, sink);
        }
        Ok(())
    }

    /// A lease on `nic` ended: its holder's states go.
    fn lease_ended(&mut self, nic: u8, ip: Ipv4Address) {
        let removed = self.states.remove_bound_to(nic, ip.into());
        log::info!("nic{nic} dhcp: lease on {ip} ended, {removed} states dropped");
    }

    /// Whether `ip` on `nic` is a leased address and `mac` may send from it: `Some(Ok)`
    /// (and the lease's holder counts as active), `Some(Err)` for another MAC, `None` when
    /// no lease binds `ip` there.
    pub(super) fn check_leased(
        &mut self,
        nic: u8,
        ip: Ipv4Address,
        mac: EthernetAddress,
        now: Instant,
    ) -> Option<Result<(), Dropped>> {
        let served = self.dhcp_servers.on_mut(nic)?;
        let holder = served.server.holder(ip, now)?;
        if holder != mac {
            return Some(Err(Dropped::detail(
                DropReason::Spoofed,
                LEASE_MAC_MISMATCH,
            )));
        }
        served.server.seen(ip, now);
        Some(Ok(()))
    }

    /// The address `mac` holds a live lease of on `nic`, if it holds one.
    pub(super) fn pool_lease_of(
        &self,
        nic: u8,
        mac: EthernetAddress,
        now: Instant,
    ) -> Option<Ipv4Address> {
        let served = self.dhcp_servers.on(nic)?;
        served
            .server
            .leases()
            .of_mac(mac, now)
            .map(|entry| entry.ip)
    }

    /// The state-limit record of a pool client: `src` leased on `nic`.
    pub(super) fn pool_client_ref(
        &self,
        nic: u8,
        src: Ipv4Address,
        now: Instant,
    ) -> Option<ClientRef> {
        let served = self.dhcp_servers.on(nic)?;
        served.server.holder(src, now)?;
        let offset = src.to_bits().wrapping_sub(served.pool_first) & 0xffff;
        Some(ClientRef {
            index: POOL_CLIENT_INDEX | u32::from(nic) << 16 | offset,
            max_states: served.max_states,
        })
    }

    /// Sweeps expired leases (at most every [`EXPIRY_INTERVAL`]); returns when to look
    /// again, if any server runs.
    pub(super) fn poll_dhcp_servers(&mut self, now: Instant) -> Option<Instant> {
        if self.dhcp_servers.served.is_empty() {
            return None;
        }
        if self.dhcp_servers.next_expiry.is_none_or(|at| now >= at) {
            let mut ended = Vec::new();
            for served in &mut self.dhcp_servers.served {
                ended.extend(
                    served
                        .server
                        .expire(now)
                        .into_iter()
                        .map(|ip| (served.nic, ip)),
                );
            }
            for (nic, ip) in ended {
                self.lease_ended(nic, ip);
            }
            self.dhcp_servers.next_expiry = Some(now + EXPIRY_INTERVAL);
        }
        self.dhcp_servers.next_expiry
    }
}

/// The source filter for the appliance's topology, with served NICs restricted.
pub(super) fn source_filter(
    servers: &DhcpServers,
    configs: &[NicConfig],
    policy: &Policy,
) -> SourceFilter {
    let topology = Topology::from_policy(configs, policy);
    servers.restrict(SourceFilter::new(&topology))
}
