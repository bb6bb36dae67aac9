//! Who a packet's source is, for the per-source shares of shared resources
//! ([`crate::share`]), and the next hops the appliance's own configuration names, whose
//! resolution no source can starve ([`crate::neighbor`]).

use alloc::vec::Vec;

use smoltcp::wire::{IpAddress, Ipv4Address};

use super::Appliance;
use crate::neighbor::NeighborKey;
use crate::policy::flow_addr_to_ipv4;
use crate::route::Route;
use crate::share::Source;

impl Appliance<'_> {
    /// The source `addr` on `nic`: a neighbour if it lies in the NIC's network or is a
    /// client declared there, else an address behind a router (the NIC's remote side).
    /// An IPv6 sender: see [`Source::ipv6_sender`].
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
    /// through), and the declared clients. Called whenever the addressing changes.
    pub(super) fn configure_next_hops(&mut self) {
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
        keys.extend(self.declared_clients.iter().filter_map(|&(nic, addr, _)| {
            flow_addr_to_ipv4(addr).map(|a| (nic, Ipv4Address::from_bits(a)))
        }));
        self.neighbors.set_configured(keys);
    }
}
