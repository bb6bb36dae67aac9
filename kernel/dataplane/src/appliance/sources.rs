//! Who a packet's source is, for the per-source shares of shared resources
//! ([`crate::share`]) and the per-client state limits, and the next hops the appliance's
//! own configuration names, whose resolution no source can starve ([`crate::neighbor`]).
//!
//! An IPv6 sender is known by the client it is, not by its address (a host picks any
//! of the 2^64 addresses of its prefix): a declared client by its declared IPv6 address,
//! a DHCP pool client by the MAC that holds its lease. Either takes the share and the
//! state limit its IPv4 packets take — one client, one share, whatever the family. Every
//! other IPv6 sender on a NIC shares that NIC's one IPv6 class
//! ([`Source::ipv6_sender`]).

use alloc::vec::Vec;

use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpAddress, Ipv4Address, Ipv6Address};

use super::descriptor::PacketDesc;
use super::Appliance;
use crate::arp as arp_wire;
use crate::neighbor::NeighborKey;
use crate::policy::flow_addr_to_ipv4;
use crate::route::Route;
use crate::share::Source;
use crate::sink::FrameSink;
use crate::state::ClientRef;

/// The share key of a declared client without an IPv4 address: `0.x.y.z`, its index + 1.
/// No neighbour has such an address (`0.0.0.0/8` is never a source the appliance accepts
/// from a neighbour), so the key is the client's alone.
fn ipv6_only_client_key(index: usize) -> Ipv4Address {
    Ipv4Address::from_bits((index as u32 + 1) & 0x00ff_ffff)
}

impl Appliance<'_> {
    /// The source of the packet `pd` describes (see the module documentation).
    pub(super) fn sender_of(&self, pd: &PacketDesc) -> Source {
        match pd.ip.src {
            IpAddress::Ipv4(_) => self.source_of(pd.nic, pd.ip.src),
            IpAddress::Ipv6(src) => self
                .ipv6_client(pd.nic, src, pd.sender_mac, pd.now)
                .map_or(Source::ipv6_sender(pd.nic), |(source, _)| source),
        }
    }

    /// The client record of the packet `pd` describes, for per-client state limits: a
    /// declared client (by either of its addresses), or a DHCP pool client (by its leased
    /// IPv4 address, or for IPv6 by the MAC that holds the lease).
    pub(super) fn client_of(&self, pd: &PacketDesc) -> Option<ClientRef> {
        match pd.ip.src {
            IpAddress::Ipv4(src) => self
                .declared_client_ref(pd.nic, src.into())
                .or_else(|| self.pool_client_ref(pd.nic, src, pd.now)),
            IpAddress::Ipv6(src) => self
                .ipv6_client(pd.nic, src, pd.sender_mac, pd.now)
                .map(|(_, client)| client),
        }
    }

    /// The client an IPv6 sender is, with the share key its IPv4 packets use: a client
    /// declared with `addr` on `nic` (keyed by its IPv4 address, or by
    /// [`ipv6_only_client_key`] without one), or the pool client whose lease `mac` holds.
    fn ipv6_client(
        &self,
        nic: u8,
        addr: Ipv6Address,
        mac: EthernetAddress,
        now: Instant,
    ) -> Option<(Source, ClientRef)> {
        if let Some(client) = self.declared_client_ref(nic, addr.into()) {
            let index = client.index as usize;
            let key = self.policy.clients[index]
                .ipv4
                .map_or(ipv6_only_client_key(index), Ipv4Address::from_bits);
            return Some((Source::neighbour(nic, key), client));
        }
        let leased = self.pool_lease_of(nic, mac, now)?;
        let client = self.pool_client_ref(nic, leased, now)?;
        Some((Source::neighbour(nic, leased), client))
    }

    /// The source `addr` on `nic`: a neighbour if it lies in the NIC's network or is a
    /// client declared there, else an address behind a router (the NIC's remote side).
    /// An IPv6 sender whose MAC is not known here: see [`Source::ipv6_sender`]
    /// ([`Appliance::sender_of`] knows it by its client).
    pub(super) fn source_of(&self, nic: u8, addr: IpAddress) -> Source {
        let IpAddress::Ipv4(addr) = addr else {
            return Source::ipv6_sender(nic);
        };
        let on_link = self
            .configs
            .get(nic as usize)
            .and_then(|c| c.ipv4)
            .is_some_and(|cidr| cidr.contains_addr(&addr));
        if on_link || self.declared_client(nic, addr.into()).is_some() {
            Source::neighbour(nic, addr)
        } else {
            Source::remote(nic, addr)
        }
    }

    /// Tells the neighbour table which next hops the configuration names: each NIC's
    /// gateway, the upstream resolvers and DHCP servers (or the gateway they are reached
    /// through), and the declared clients; and which of them are routers (all but the
    /// clients). Called whenever the addressing changes.
    pub(super) fn configure_next_hops(&mut self) {
        let routers = self.routed_next_hops();
        let mut keys = routers.clone();
        self.neighbors.set_routers(routers);
        keys.extend(self.declared_clients.iter().filter_map(|&(nic, addr, _)| {
            flow_addr_to_ipv4(addr).map(|a| (nic, Ipv4Address::from_bits(a)))
        }));
        self.neighbors.set_configured(keys);
    }

    /// The IPv4 next hops that carry everyone's traffic: each addressed NIC's gateway, and
    /// the next hops toward the upstream resolvers and DHCP servers.
    fn routed_next_hops(&self) -> Vec<NeighborKey> {
        let mut keys: Vec<NeighborKey> = Vec::new();
        for (nic, config) in self.configs.iter().enumerate() {
            if let (Some(gateway), Some(_)) = (config.gateway, config.ipv4) {
                keys.push((nic as u8, gateway));
            }
        }
        let dhcp_servers = self
            .nics
            .iter()
            .filter_map(|n| n.uplink.lease_server().map(IpAddress::from));
        for addr in self.upstream_dns.iter().copied().chain(dhcp_servers) {
            if let Route::Forward {
                nic,
                next_hop: IpAddress::Ipv4(next_hop),
                ..
            } = self.routes.lookup(addr)
            {
                keys.push((nic, next_hop));
            }
        }
        keys
    }

    /// Asks for the MAC of each routed next hop (gateways, the next hops toward the
    /// resolvers) not known or asked for yet, as a router that knows its gateway does at
    /// boot: the first packet forwarded then finds it resolved instead of waiting for an
    /// ARP round trip. Declared clients are asked for when a packet goes to them.
    pub(super) fn solicit_next_hops(&mut self, now: Instant, sink: &mut dyn FrameSink) {
        for (nic, next_hop) in self.routed_next_hops() {
            let Some(cidr) = self.configs[nic as usize].ipv4 else {
                continue;
            };
            if self.neighbors.solicit((nic, next_hop), now) {
                let mac = self.configs[nic as usize].mac;
                let request = arp_wire::request(mac, cidr.address(), next_hop);
                self.send_arp(nic, EthernetAddress::BROADCAST, &request, sink);
            }
        }
    }
}
