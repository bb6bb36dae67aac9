//! The appliance's runtime configuration: each NIC's MAC (from the hardware) and addressing
//! (from the compiled policy).

use alloc::vec::Vec;

use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv4Cidr};

use crate::policy::{Ipv4Config, Policy};

/// How one NIC is addressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NicConfig {
    /// The NIC's MAC address.
    pub mac: EthernetAddress,
    /// The appliance's IPv4 address and connected network on this NIC (`None` until DHCP
    /// configures it, or if the NIC has no IPv4).
    pub ipv4: Option<Ipv4Cidr>,
    /// Default gateway reachable through this NIC.
    pub gateway: Option<Ipv4Address>,
    /// Whether the address comes from DHCP.
    pub dhcp: bool,
}

/// Configuration of every NIC, indexed by NIC number, and the resolvers known at start.
#[derive(Clone, Debug, Default)]
pub struct ApplianceConfig {
    /// NIC `i` is `nics[i]`.
    pub nics: Vec<NicConfig>,
    /// The uplink's DNS resolvers as known at start (its static `dns` list), which a
    /// `dns ... to upstream` redirect uses until DHCP names others. The first is the one
    /// queries go to.
    pub upstream_dns: Vec<Ipv4Address>,
}

impl ApplianceConfig {
    /// Builds the configuration for NICs with MACs `macs` (in NIC order) from `policy`'s
    /// interface declarations. NICs the policy does not declare get no address: they carry
    /// no traffic. The upstream resolvers are the uplink's static `dns` list.
    pub fn from_policy(policy: &Policy, macs: &[EthernetAddress]) -> ApplianceConfig {
        let nics = macs
            .iter()
            .enumerate()
            .map(|(i, mac)| {
                let declared = policy.interface_on(i as u8).map(|iface| iface.ipv4);
                let (ipv4, gateway, dhcp) = match declared {
                    Some(Ipv4Config::Static {
                        address,
                        prefix_len,
                        gateway,
                    }) => (
                        Some(Ipv4Cidr::new(Ipv4Address::from_bits(address), prefix_len)),
                        gateway.map(Ipv4Address::from_bits),
                        false,
                    ),
                    Some(Ipv4Config::Dhcp) => (None, None, true),
                    Some(Ipv4Config::None) | None => (None, None, false),
                };
                NicConfig {
                    mac: *mac,
                    ipv4,
                    gateway,
                    dhcp,
                }
            })
            .collect();
        let upstream_dns = policy
            .interfaces
            .iter()
            .filter(|i| i.uplink)
            .flat_map(|i| i.dns_servers.of(policy.ipv4_addrs))
            .map(|a| Ipv4Address::from_bits(*a))
            .collect();
        ApplianceConfig { nics, upstream_dns }
    }
}
