//! Anti-spoofing: whether a packet's source address may arrive on the NIC it arrived on.
//!
//! [`SourceFilter::check`] applies these rules, built from the [`Topology`]:
//!
//! - **everywhere**: a martian source (0/8, 127/8, multicast, reserved, limited broadcast)
//!   and any of the appliance's own addresses are refused;
//! - **a client NIC with declared clients**: the source must be one of those clients'
//!   addresses — each client may only send as itself;
//! - **a client NIC without declared clients**: the source must lie in the NIC's connected
//!   network, and be neither its network nor its broadcast address;
//! - **the uplink**: a source in any client NIC's connected network, or equal to a declared
//!   client's address, is refused (nobody outside may pose as a client); anything else is
//!   accepted.
//!
//! Clients declared on the uplink itself are not clients for these rules. A filter is a few
//! sorted vectors; rebuild it with [`SourceFilter::new`] whenever the topology changes
//! (DHCP on the uplink).

use alloc::vec::Vec;

use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

use crate::packet::is_special_purpose;
use crate::route::Topology;

/// Why a source address is refused on a NIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Spoofed {
    /// The source can never be a host (0/8, 127/8, multicast, reserved, broadcast).
    MartianSource,
    /// The source is one of the appliance's own addresses.
    OwnAddress,
    /// On the uplink: the source belongs to a client network or is a declared client.
    ClientSourceOnUplink,
    /// On a client NIC with declared clients: the source is none of them.
    NotADeclaredClient,
    /// On a client NIC without declared clients: the source is outside its network, or is
    /// the network's own network or broadcast address.
    OutsideClientNetwork,
}

impl Spoofed {
    /// A short name for logs and counters.
    pub fn as_str(&self) -> &'static str {
        match self {
            Spoofed::MartianSource => "martian-source",
            Spoofed::OwnAddress => "spoofed-own-address",
            Spoofed::ClientSourceOnUplink => "spoofed-client-on-uplink",
            Spoofed::NotADeclaredClient => "spoofed-not-a-client",
            Spoofed::OutsideClientNetwork => "spoofed-outside-network",
        }
    }
}

/// An IPv4 network as a (network bits, mask) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Network {
    bits: u32,
    mask: u32,
}

impl Network {
    fn of(cidr: Ipv4Cidr) -> Network {
        let mask = cidr.netmask().to_bits();
        Network {
            bits: cidr.address().to_bits() & mask,
            mask,
        }
    }

    fn contains(&self, addr: u32) -> bool {
        addr & self.mask == self.bits
    }

    /// Whether `addr` is the network's own address or its broadcast (for prefixes that have
    /// them: /30 and shorter).
    fn is_network_or_broadcast(&self, addr: u32) -> bool {
        self.mask.count_ones() <= 30 && (addr == self.bits || addr == self.bits | !self.mask)
    }
}

/// What sources one NIC accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Accepts {
    /// The uplink: anything but clients' sources.
    Outside,
    /// Exactly these addresses (sorted).
    Clients(Vec<u32>),
    /// Hosts in this network.
    Network(Network),
    /// Nothing: a client NIC with neither declared clients nor a network.
    Nothing,
}

/// The anti-spoofing rules of a topology. See the module documentation.
#[derive(Clone, Debug)]
pub struct SourceFilter {
    /// NIC `i` accepts `accepts[i]`; NICs beyond the end accept nothing.
    accepts: Vec<Accepts>,
    /// The appliance's own addresses (sorted).
    own: Vec<u32>,
    /// Client networks refused on the uplink.
    client_networks: Vec<Network>,
    /// Client addresses refused on the uplink (sorted).
    client_hosts: Vec<u32>,
}

impl SourceFilter {
    /// The rules for `topology`.
    pub fn new(topology: &Topology) -> SourceFilter {
        let mut own: Vec<u32> = topology
            .nics
            .iter()
            .filter_map(|n| n.ipv4)
            .map(|c| c.address().to_bits())
            .collect();
        own.sort_unstable();
        let mut client_networks = Vec::new();
        let mut client_hosts = Vec::new();
        let accepts = (0..topology.nics.len() as u8)
            .map(|nic| {
                if topology.is_uplink(nic) {
                    return Accepts::Outside;
                }
                let network = topology.address_on(nic).map(Network::of);
                client_networks.extend(network);
                let mut clients: Vec<u32> = topology
                    .client_addresses_on(nic)
                    .map(|a| a.to_bits())
                    .collect();
                clients.sort_unstable();
                client_hosts.extend_from_slice(&clients);
                if !clients.is_empty() {
                    Accepts::Clients(clients)
                } else if let Some(network) = network {
                    Accepts::Network(network)
                } else {
                    Accepts::Nothing
                }
            })
            .collect();
        client_hosts.sort_unstable();
        SourceFilter {
            accepts,
            own,
            client_networks,
            client_hosts,
        }
    }

    /// Makes client NIC `nic` accept only its declared clients, not its whole network: its
    /// other hosts are admitted one by one elsewhere (by their DHCP lease).
    pub fn only_declared(&mut self, nic: u8) {
        if let Some(accepts) = self.accepts.get_mut(nic as usize) {
            if matches!(accepts, Accepts::Network(_)) {
                *accepts = Accepts::Clients(Vec::new());
            }
        }
    }

    /// Whether a packet from `src` may arrive on NIC `nic`.
    pub fn check(&self, nic: u8, src: Ipv4Address) -> Result<(), Spoofed> {
        if is_special_purpose(src) {
            return Err(Spoofed::MartianSource);
        }
        let bits = src.to_bits();
        if self.own.binary_search(&bits).is_ok() {
            return Err(Spoofed::OwnAddress);
        }
        match self.accepts.get(nic as usize).unwrap_or(&Accepts::Nothing) {
            Accepts::Outside => {
                let posing = self.client_hosts.binary_search(&bits).is_ok()
                    || self.client_networks.iter().any(|n| n.contains(bits));
                if posing {
                    Err(Spoofed::ClientSourceOnUplink)
                } else {
                    Ok(())
                }
            }
            Accepts::Clients(clients) => match clients.binary_search(&bits) {
                Ok(_) => Ok(()),
                Err(_) => Err(Spoofed::NotADeclaredClient),
            },
            Accepts::Network(network)
                if network.contains(bits) && !network.is_network_or_broadcast(bits) =>
            {
                Ok(())
            }
            Accepts::Network(_) | Accepts::Nothing => Err(Spoofed::OutsideClientNetwork),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::fixtures::*;

    fn lab_filter() -> SourceFilter {
        SourceFilter::new(&Lab::new().topology())
    }

    fn refused(filter: &SourceFilter, nic: u8, sources: &[[u8; 4]], reason: Spoofed) {
        for &src in sources {
            assert_eq!(filter.check(nic, ip(src)), Err(reason), "nic{nic} {src:?}");
        }
    }

    fn accepted(filter: &SourceFilter, nic: u8, sources: &[[u8; 4]]) {
        for &src in sources {
            assert_eq!(filter.check(nic, ip(src)), Ok(()), "nic{nic} {src:?}");
        }
    }

    #[test]
    fn declared_client_may_send_as_itself() {
        let filter = lab_filter();
        accepted(&filter, CLIENT_LAN, &[[10, 137, 1, 10]]);
        accepted(&filter, QUBES_VIF, &[[10, 137, 0, 17]]);
    }

    #[test]
    fn client_posing_as_a_neighbour_is_spoofed() {
        let filter = lab_filter();
        let lan_posers = [[10, 137, 1, 11], [10, 137, 0, 17]];
        refused(
            &filter,
            CLIENT_LAN,
            &lan_posers,
            Spoofed::NotADeclaredClient,
        );
        let vif_posers = [[10, 137, 1, 10], [8, 8, 8, 8]];
        refused(&filter, QUBES_VIF, &vif_posers, Spoofed::NotADeclaredClient);
    }

    #[test]
    fn lan_without_declared_clients_accepts_its_own_network_only() {
        let filter = lab_filter();
        accepted(
            &filter,
            OPEN_LAN,
            &[[192, 168, 50, 23], [192, 168, 50, 254]],
        );
        let outside = [[192, 168, 51, 23], [10, 137, 1, 10], [1, 1, 1, 1]];
        refused(&filter, OPEN_LAN, &outside, Spoofed::OutsideClientNetwork);
        let network_and_broadcast = [[192, 168, 50, 0], [192, 168, 50, 255]];
        refused(
            &filter,
            OPEN_LAN,
            &network_and_broadcast,
            Spoofed::OutsideClientNetwork,
        );
    }

    #[test]
    fn uplink_packet_from_client_network_is_spoofed() {
        let filter = lab_filter();
        let posers = [
            [10, 137, 1, 10],
            [10, 137, 1, 99],
            [10, 137, 0, 17],
            [192, 168, 50, 7],
        ];
        refused(&filter, UPLINK, &posers, Spoofed::ClientSourceOnUplink);
    }

    #[test]
    fn uplink_accepts_the_internet_and_its_own_network() {
        let filter = lab_filter();
        let outside = [
            [1, 1, 1, 1],
            [10, 0, 2, 2],
            [203, 0, 113, 5],
            [10, 137, 0, 18],
        ];
        accepted(&filter, UPLINK, &outside);
    }

    #[test]
    fn appliance_address_as_source_is_spoofed_on_every_nic() {
        let filter = lab_filter();
        let own = [
            [10, 0, 2, 15],
            [10, 137, 1, 1],
            [10, 138, 0, 1],
            [192, 168, 50, 1],
        ];
        for nic in [UPLINK, CLIENT_LAN, QUBES_VIF, OPEN_LAN] {
            refused(&filter, nic, &own, Spoofed::OwnAddress);
        }
    }

    #[test]
    fn martian_sources_are_refused_everywhere() {
        let filter = lab_filter();
        let martians = [
            [0, 0, 0, 0],
            [127, 0, 0, 1],
            [224, 0, 0, 1],
            [255, 255, 255, 255],
        ];
        for nic in [UPLINK, CLIENT_LAN, QUBES_VIF, OPEN_LAN] {
            refused(&filter, nic, &martians, Spoofed::MartianSource);
        }
    }

    #[test]
    fn unknown_nic_accepts_nothing() {
        refused(
            &lab_filter(),
            7,
            &[[1, 1, 1, 1]],
            Spoofed::OutsideClientNetwork,
        );
    }

    #[test]
    fn unaddressed_client_nic_without_clients_accepts_nothing() {
        let mut lab = Lab::new();
        lab.nics[OPEN_LAN as usize].ipv4 = None;
        let filter = SourceFilter::new(&lab.topology());
        refused(
            &filter,
            OPEN_LAN,
            &[[192, 168, 50, 23]],
            Spoofed::OutsideClientNetwork,
        );
        // Its old network is no longer a client network on the uplink.
        accepted(&filter, UPLINK, &[[192, 168, 50, 23]]);
    }

    #[test]
    fn client_declared_on_the_uplink_is_not_a_client() {
        let mut lab = Lab::new();
        lab.clients.push(client(UPLINK, [10, 0, 2, 50]));
        accepted(
            &SourceFilter::new(&lab.topology()),
            UPLINK,
            &[[10, 0, 2, 50]],
        );
    }

    #[test]
    fn point_to_point_network_accepts_the_other_end() {
        // A /31 has no network or broadcast address (RFC 3021).
        let nics = [
            nic([10, 0, 2, 15], 24, Some([10, 0, 2, 2])),
            nic([172, 16, 0, 0], 31, None),
        ];
        let filter = SourceFilter::new(&Topology {
            nics: &nics,
            uplink: Some(0),
            clients: &[],
        });
        accepted(&filter, 1, &[[172, 16, 0, 1]]);
        refused(&filter, 1, &[[172, 16, 0, 0]], Spoofed::OwnAddress);
    }

    #[test]
    fn without_an_uplink_every_nic_is_a_client_nic() {
        let lab = Lab::new();
        let topology = Topology {
            uplink: None,
            ..lab.topology()
        };
        let filter = SourceFilter::new(&topology);
        refused(
            &filter,
            UPLINK,
            &[[1, 1, 1, 1]],
            Spoofed::OutsideClientNetwork,
        );
        accepted(&filter, UPLINK, &[[10, 0, 2, 3]]);
    }
}
