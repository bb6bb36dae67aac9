//! Who a packet's source is, for the per-source shares of shared resources
//! ([`crate::share`]), and the next hops the appliance's own configuration names, whose
//! resolution no source can starve ([`crate::neighbor`]).

use alloc::vec::Vec;

use smoltcp::wire::Ipv4Address;

use super::Appliance;
use crate::neighbor::NeighborKey;
use crate::route::Route;
use crate::share::Source;

impl Appliance<'_> {
    /// The source `addr` on `nic`: a neighbour if it lies in the NIC's network or is a
    /// client declared there, else an address behind a router (the NIC's remote side).
    pub(super) fn source_of(&self, nic: u8, addr: Ipv4Address) -> Source {
        let on_link = self
            .configs
            .get(nic as usize)
            .and_then(|c| c.ipv4)
            .is_some_and(|cidr| cidr.contains_addr(&addr));
        if on_link || self.declared_client(nic, addr).is_some() {
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
        let dhcp_servers = self.nics.iter().filter_map(|n| n.uplink.lease_server());
        for addr in self.upstream_dns.iter().copied().chain(dhcp_servers) {
            if let Route::Forward { nic, next_hop, .. } = self.routes.lookup(addr) {
                keys.push((nic, next_hop));
            }
        }
        keys.extend(
            self.declared_clients
                .iter()
                .map(|&(nic, addr, _)| (nic, Ipv4Address::from_bits(addr))),
        );
        self.neighbors.set_configured(keys);
    }
}
