//! Routing: where a packet for a destination address goes. This module holds the IPv4
//! routes; the IPv6 ones are [`Ipv6Routes`] (see [`crate::route6`]), and
//! [`RouteTable::lookup`] and [`RouteTable::toward`] answer for both families.
//!
//! The table is derived from the [`Topology`] (the NICs' addressing and the policy's
//! clients) and has four kinds of routes, longest prefix first:
//!
//! - **local** — each of the appliance's own addresses (a /32) resolves to
//!   [`Route::Local`] with the NIC that owns it, whichever NIC the packet came in on; so does
//!   the broadcast address of each connected network (a directed broadcast is delivered to
//!   the appliance, never forwarded: RFC 2644);
//! - **client host routes** — each declared client's address (a /32) on its NIC, with the
//!   client itself as next hop, even when that address lies outside the NIC's connected
//!   network (Qubes-style clients with a /32 address and the appliance as gateway);
//! - **connected networks** — each addressed NIC's network, next hop = the destination;
//! - **default** — `0.0.0.0/0` via the uplink's gateway, when the uplink has an address and
//!   its gateway lies in the uplink's connected network (an off-link gateway could not be
//!   resolved by ARP, so no default route is installed).
//!
//! NICs without an IPv4 address (unconfigured, or the uplink before DHCP answered) carry no
//! routes: the policy model says such a NIC forwards nothing. Destinations that may never be
//! forwarded (0/8, 127/8, multicast, reserved, limited broadcast) resolve to
//! [`Route::Unreachable`]; link-local broadcast and multicast are the caller's business (they
//! are delivered to the ingress NIC's local stack, never routed).
//!
//! A table is a handful of entries, rebuilt in microseconds with [`RouteTable::set_nic`]
//! when DHCP (re)configures the uplink. Lookups are a binary search over host routes and a
//! scan of at most one prefix route per NIC.

use alloc::vec::Vec;

use smoltcp::wire::{IpAddress, Ipv4Address, Ipv4Cidr, IPV6_MIN_MTU};

use crate::config::NicConfig;
use crate::packet::is_special_purpose;
use crate::policy::{Client, Policy};
use crate::route6::{Ipv6Routes, Nic6};

/// The Ethernet MTU every NIC has unless told otherwise.
pub const DEFAULT_MTU: u16 = 1500;

/// The smallest MTU an IPv4 link may have (RFC 791): smaller values are raised to it.
pub const MIN_MTU: u16 = 68;

/// What the routing table, anti-spoofing and proxy ARP are built from: each NIC's addressing,
/// which NIC is the uplink, and the clients the policy declares.
#[derive(Clone, Copy, Debug)]
pub struct Topology<'a> {
    /// NIC `i` is `nics[i]`.
    pub nics: &'a [NicConfig],
    /// The NIC that carries the default route, if any.
    pub uplink: Option<u8>,
    /// The declared clients (only their NIC and IPv4 address matter here).
    pub clients: &'a [Client],
}

impl<'a> Topology<'a> {
    /// The topology of `nics` as `policy` declares it (uplink flag, clients).
    pub fn from_policy(nics: &'a [NicConfig], policy: &Policy<'a>) -> Topology<'a> {
        Topology {
            nics,
            uplink: policy.interfaces.iter().find(|i| i.uplink).map(|i| i.nic),
            clients: policy.clients,
        }
    }

    /// The appliance's address and connected network on `nic`, if it has one.
    pub fn address_on(&self, nic: u8) -> Option<Ipv4Cidr> {
        self.nics.get(nic as usize).and_then(|n| n.ipv4)
    }

    /// Whether `nic` is the uplink.
    pub fn is_uplink(&self, nic: u8) -> bool {
        self.uplink == Some(nic)
    }

    /// Whether `addr` is one of the appliance's own addresses (on any NIC).
    pub fn is_own_address(&self, addr: Ipv4Address) -> bool {
        self.nics
            .iter()
            .any(|n| n.ipv4.is_some_and(|c| c.address() == addr))
    }

    /// The IPv4 addresses of the clients declared on `nic`.
    pub fn client_addresses_on(&self, nic: u8) -> impl Iterator<Item = Ipv4Address> + '_ {
        self.clients
            .iter()
            .filter(move |c| c.nic == nic)
            .filter_map(|c| c.ipv4.map(Ipv4Address::from_bits))
    }

    /// Every declared client with an IPv6 address, as `(nic, address)`.
    pub fn client_ipv6_addresses(
        &self,
    ) -> impl Iterator<Item = (u8, smoltcp::wire::Ipv6Address)> + '_ {
        self.clients.iter().filter_map(|c| {
            c.ipv6
                .map(|a| (c.nic, smoltcp::wire::Ipv6Address::from_bits(a)))
        })
    }

    /// Every declared client with an IPv4 address, as `(nic, address)`.
    pub fn client_addresses(&self) -> impl Iterator<Item = (u8, Ipv4Address)> + '_ {
        self.clients
            .iter()
            .filter_map(|c| c.ipv4.map(|a| (c.nic, Ipv4Address::from_bits(a))))
    }
}

/// Where a packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Addressed to the appliance itself: its address on `nic` (or the broadcast address of
    /// `nic`'s connected network).
    Local {
        /// The NIC that owns the address.
        nic: u8,
    },
    /// Forward out of `nic` to the neighbour `next_hop` (the destination itself when it is
    /// on-link), in frames of at most `mtu` bytes of IP.
    Forward {
        /// Egress NIC.
        nic: u8,
        /// The neighbour whose MAC the frame is sent to (of the destination's family).
        next_hop: IpAddress,
        /// The egress NIC's MTU.
        mtu: u16,
    },
    /// No route (send ICMP network unreachable, where that is allowed).
    Unreachable,
}

/// What a matching route does, before the destination is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Local {
        nic: u8,
    },
    /// On-link: the next hop is the destination itself.
    OnLink {
        nic: u8,
    },
    Via {
        nic: u8,
        gateway: Ipv4Address,
    },
}

/// A host route (/32). Sorted by address; for one address, the first one pushed wins.
#[derive(Clone, Copy, Debug)]
struct HostRoute {
    addr: u32,
    target: Target,
}

/// A prefix route shorter than /32.
#[derive(Clone, Copy, Debug)]
struct PrefixRoute {
    network: u32,
    mask: u32,
    nic: u8,
}

/// The routing table. See the module documentation.
#[derive(Clone, Debug)]
pub struct RouteTable {
    nics: Vec<NicConfig>,
    mtus: Vec<u16>,
    uplink: Option<u8>,
    clients: Vec<(u8, Ipv4Address)>,
    hosts: Vec<HostRoute>,
    /// Connected networks shorter than /32, longest prefix first.
    prefixes: Vec<PrefixRoute>,
    default: Option<Target>,
    ipv6: Ipv6Routes,
}

fn mask_of(prefix_len: u8) -> u32 {
    match prefix_len {
        0 => 0,
        len => u32::MAX << (32 - len.min(32) as u32),
    }
}

impl RouteTable {
    /// The table for `topology`, every NIC with [`DEFAULT_MTU`].
    pub fn new(topology: &Topology) -> RouteTable {
        let mut table = RouteTable {
            nics: topology.nics.to_vec(),
            mtus: alloc::vec![DEFAULT_MTU; topology.nics.len()],
            uplink: topology.uplink,
            clients: topology.client_addresses().collect(),
            hosts: Vec::new(),
            prefixes: Vec::new(),
            default: None,
            ipv6: Ipv6Routes::new(
                topology.nics.len(),
                topology.uplink,
                topology.client_ipv6_addresses(),
            ),
        };
        table.rebuild();
        table
    }

    /// Replaces NIC `nic`'s addressing (DHCP bound, renewed with a new address, or lost its
    /// lease) and rebuilds the routes. Unknown NICs are ignored.
    pub fn set_nic(&mut self, nic: u8, config: NicConfig) {
        if let Some(slot) = self.nics.get_mut(nic as usize) {
            *slot = config;
            self.rebuild();
        }
    }

    /// Sets NIC `nic`'s MTU (e.g. as the virtio device reports it); values below
    /// [`MIN_MTU`] are raised to it. Unknown NICs are ignored.
    pub fn set_mtu(&mut self, nic: u8, mtu: u16) {
        if let Some(slot) = self.mtus.get_mut(nic as usize) {
            *slot = mtu.max(MIN_MTU);
        }
    }

    /// Replaces NIC `nic`'s IPv6 addressing (static, or as SLAAC learned it).
    pub fn set_nic_ipv6(&mut self, nic: u8, addressing: Nic6) {
        self.ipv6.set_nic(nic, addressing);
    }

    /// The IPv6 routes.
    pub fn ipv6(&self) -> &Ipv6Routes {
        &self.ipv6
    }

    /// The IPv6 MTU of NIC `nic`: its MTU, at least IPv6's minimum of 1,280 bytes.
    pub fn ipv6_mtu(&self, nic: u8) -> u16 {
        self.mtu(nic).max(IPV6_MIN_MTU as u16)
    }

    /// The MTU of NIC `nic` ([`DEFAULT_MTU`] for unknown NICs).
    pub fn mtu(&self, nic: u8) -> u16 {
        self.mtus.get(nic as usize).copied().unwrap_or(DEFAULT_MTU)
    }

    fn rebuild(&mut self) {
        self.hosts.clear();
        self.prefixes.clear();
        self.default = None;
        let addressed = || {
            self.nics
                .iter()
                .enumerate()
                .filter_map(|(i, n)| Some((i as u8, n.ipv4?)))
        };
        // Local routes first: for a duplicate address, the first pushed wins.
        for (nic, cidr) in addressed() {
            self.hosts.push(HostRoute {
                addr: cidr.address().to_bits(),
                target: Target::Local { nic },
            });
        }
        for (nic, cidr) in addressed() {
            if let Some(broadcast) = cidr.broadcast() {
                self.hosts.push(HostRoute {
                    addr: broadcast.to_bits(),
                    target: Target::Local { nic },
                });
            }
        }
        for &(nic, addr) in &self.clients {
            if self
                .nics
                .get(nic as usize)
                .is_some_and(|n| n.ipv4.is_some())
            {
                self.hosts.push(HostRoute {
                    addr: addr.to_bits(),
                    target: Target::OnLink { nic },
                });
            }
        }
        for (nic, cidr) in addressed() {
            let mask = mask_of(cidr.prefix_len());
            if cidr.prefix_len() < 32 {
                self.prefixes.push(PrefixRoute {
                    network: cidr.address().to_bits() & mask,
                    mask,
                    nic,
                });
            }
        }
        // A stable sort keeps the first pushed of equal addresses first.
        self.hosts.sort_by_key(|h| h.addr);
        self.hosts.dedup_by_key(|h| h.addr);
        self.prefixes
            .sort_by_key(|p| core::cmp::Reverse(p.mask.count_ones()));
        self.default = self.uplink.and_then(|nic| {
            let config = self.nics.get(nic as usize)?;
            let (cidr, gateway) = (config.ipv4?, config.gateway?);
            cidr.contains_addr(&gateway)
                .then_some(Target::Via { nic, gateway })
        });
    }

    /// Where a packet for `dst` goes.
    pub fn lookup(&self, dst: IpAddress) -> Route {
        match dst {
            IpAddress::Ipv4(dst) => self.lookup_ipv4(dst),
            IpAddress::Ipv6(dst) => self.ipv6.lookup(dst, |nic| self.ipv6_mtu(nic)),
        }
    }

    /// Where a packet for `dst` goes when it must leave through `nic` (see
    /// [`RouteTable::toward_ipv4`] and [`Ipv6Routes::toward`]).
    pub fn toward(&self, nic: u8, dst: IpAddress) -> Route {
        match dst {
            IpAddress::Ipv4(dst) => self.toward_ipv4(nic, dst),
            IpAddress::Ipv6(dst) => self.ipv6.toward(nic, dst, |nic| self.ipv6_mtu(nic)),
        }
    }

    /// Where a packet for the IPv4 address `dst` goes.
    pub fn lookup_ipv4(&self, dst: Ipv4Address) -> Route {
        if is_special_purpose(dst) {
            return Route::Unreachable;
        }
        let bits = dst.to_bits();
        let target = match self.hosts.binary_search_by_key(&bits, |h| h.addr) {
            Ok(i) => Some(self.hosts[i].target),
            Err(_) => self
                .prefixes
                .iter()
                .find(|p| bits & p.mask == p.network)
                .map(|p| Target::OnLink { nic: p.nic })
                .or(self.default),
        };
        self.resolve(target, dst)
    }

    /// Where a packet for `dst` goes when it must leave through `nic` — a packet of a
    /// state (or an ICMP error about one), which leaves through the NIC its state records
    /// whatever address routing would say: to `dst` itself when it is on-link there (a
    /// client declared on `nic`, or an address of `nic`'s connected network), else to the
    /// gateway when `nic` carries the default route. The appliance's own addresses and its
    /// networks' broadcasts are [`Route::Local`]; anything else, and every special-purpose
    /// address, is [`Route::Unreachable`].
    pub fn toward_ipv4(&self, nic: u8, dst: Ipv4Address) -> Route {
        if is_special_purpose(dst) {
            return Route::Unreachable;
        }
        let bits = dst.to_bits();
        let host = self
            .hosts
            .binary_search_by_key(&bits, |h| h.addr)
            .ok()
            .map(|i| self.hosts[i].target);
        let target = match host {
            Some(local @ Target::Local { .. }) => Some(local),
            Some(Target::OnLink { nic: client_nic }) if client_nic == nic => {
                Some(Target::OnLink { nic })
            }
            _ if self
                .prefixes
                .iter()
                .any(|p| p.nic == nic && bits & p.mask == p.network) =>
            {
                Some(Target::OnLink { nic })
            }
            _ => self
                .default
                .filter(|&target| matches!(target, Target::Via { nic: via, .. } if via == nic)),
        };
        self.resolve(target, dst)
    }

    /// The route a matching `target` gives a packet for `dst`.
    fn resolve(&self, target: Option<Target>, dst: Ipv4Address) -> Route {
        match target {
            Some(Target::Local { nic }) => Route::Local { nic },
            Some(Target::OnLink { nic }) => Route::Forward {
                nic,
                next_hop: dst.into(),
                mtu: self.mtu(nic),
            },
            Some(Target::Via { nic, gateway }) => Route::Forward {
                nic,
                next_hop: gateway.into(),
                mtu: self.mtu(nic),
            },
            None => Route::Unreachable,
        }
    }
}

/// Test topologies shared by the routing, anti-spoofing and proxy-ARP tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use crate::policy::{SourcePos, Span};
    use smoltcp::wire::EthernetAddress;

    /// The lab's uplink: 10.0.2.15/24 via 10.0.2.2.
    pub(crate) const UPLINK: u8 = 0;
    /// A client LAN, 10.137.1.1/24, with one declared client 10.137.1.10.
    pub(crate) const CLIENT_LAN: u8 = 1;
    /// A Qubes-style vif, 10.138.0.1/32, with a client 10.137.0.17 outside any network.
    pub(crate) const QUBES_VIF: u8 = 2;
    /// A client LAN, 192.168.50.1/24, with no declared clients.
    pub(crate) const OPEN_LAN: u8 = 3;

    /// A statically addressed NIC.
    pub(crate) fn nic(addr: [u8; 4], prefix_len: u8, gateway: Option<[u8; 4]>) -> NicConfig {
        NicConfig {
            mac: EthernetAddress([0x52, 0x54, 0, 0, 0, addr[3]]),
            ipv4: Some(Ipv4Cidr::new(Ipv4Address::from(addr), prefix_len)),
            gateway: gateway.map(Ipv4Address::from),
            dhcp: false,
        }
    }

    /// A declared client with an IPv4 address.
    pub(crate) fn client(nic: u8, addr: [u8; 4]) -> Client {
        Client {
            name: Span::EMPTY,
            nic,
            ipv4: Some(u32::from_be_bytes(addr)),
            ipv6: None,
            mac: None,
            max_states: 0,
            pos: SourcePos::default(),
        }
    }

    pub(crate) fn ip(a: [u8; 4]) -> Ipv4Address {
        Ipv4Address::from(a)
    }

    /// The lab: NICs [`UPLINK`], [`CLIENT_LAN`], [`QUBES_VIF`], [`OPEN_LAN`] and their
    /// clients, editable before taking its [`Lab::topology`].
    pub(crate) struct Lab {
        pub(crate) nics: Vec<NicConfig>,
        pub(crate) clients: Vec<Client>,
    }

    impl Lab {
        pub(crate) fn new() -> Lab {
            Lab {
                nics: alloc::vec![
                    nic([10, 0, 2, 15], 24, Some([10, 0, 2, 2])),
                    nic([10, 137, 1, 1], 24, None),
                    nic([10, 138, 0, 1], 32, None),
                    nic([192, 168, 50, 1], 24, None),
                ],
                clients: alloc::vec![
                    client(CLIENT_LAN, [10, 137, 1, 10]),
                    client(QUBES_VIF, [10, 137, 0, 17])
                ],
            }
        }

        pub(crate) fn topology(&self) -> Topology<'_> {
            Topology {
                nics: &self.nics,
                uplink: Some(UPLINK),
                clients: &self.clients,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::policy::{Interface, Ipv4Config, Ipv6Config, PolicyBuf, SourcePos, Span};

    fn forward(nic: u8, next_hop: [u8; 4]) -> Route {
        Route::Forward {
            nic,
            next_hop: ip(next_hop).into(),
            mtu: DEFAULT_MTU,
        }
    }

    fn lab_table() -> RouteTable {
        RouteTable::new(&Lab::new().topology())
    }

    #[test]
    fn own_addresses_are_local_whatever_nic_owns_them() {
        let table = lab_table();
        assert_eq!(
            table.lookup(ip([10, 0, 2, 15]).into()),
            Route::Local { nic: UPLINK }
        );
        assert_eq!(
            table.lookup(ip([10, 137, 1, 1]).into()),
            Route::Local { nic: CLIENT_LAN }
        );
        assert_eq!(
            table.lookup(ip([10, 138, 0, 1]).into()),
            Route::Local { nic: QUBES_VIF }
        );
    }

    #[test]
    fn directed_broadcast_is_local_never_forwarded() {
        let table = lab_table();
        assert_eq!(
            table.lookup(ip([10, 137, 1, 255]).into()),
            Route::Local { nic: CLIENT_LAN }
        );
        assert_eq!(
            table.lookup(ip([10, 0, 2, 255]).into()),
            Route::Local { nic: UPLINK }
        );
    }

    #[test]
    fn connected_network_is_on_link() {
        let table = lab_table();
        assert_eq!(
            table.lookup(ip([10, 137, 1, 77]).into()),
            forward(CLIENT_LAN, [10, 137, 1, 77])
        );
        assert_eq!(
            table.lookup(ip([10, 0, 2, 3]).into()),
            forward(UPLINK, [10, 0, 2, 3])
        );
    }

    #[test]
    fn qubes_client_outside_any_network_gets_a_host_route() {
        let table = lab_table();
        assert_eq!(
            table.lookup(ip([10, 137, 0, 17]).into()),
            forward(QUBES_VIF, [10, 137, 0, 17])
        );
        // Its neighbours in 10.137.0.0/24 are not routed to the vif: they go to the default.
        assert_eq!(
            table.lookup(ip([10, 137, 0, 18]).into()),
            forward(UPLINK, [10, 0, 2, 2])
        );
    }

    #[test]
    fn toward_a_nic_resolves_on_that_nic_whatever_address_routing_says() {
        let table = lab_table();
        let cases = [
            // On-link on the NIC asked about, wherever address routing has it.
            (
                CLIENT_LAN,
                [10, 137, 1, 77],
                forward(CLIENT_LAN, [10, 137, 1, 77]),
            ),
            (
                QUBES_VIF,
                [10, 137, 0, 17],
                forward(QUBES_VIF, [10, 137, 0, 17]),
            ),
            // Off-link: the uplink's gateway; no other NIC has one.
            (UPLINK, [10, 137, 1, 77], forward(UPLINK, [10, 0, 2, 2])),
            (UPLINK, [1, 1, 1, 1], forward(UPLINK, [10, 0, 2, 2])),
            (CLIENT_LAN, [1, 1, 1, 1], Route::Unreachable),
            // Another NIC's client is not on-link here.
            (OPEN_LAN, [10, 137, 0, 17], Route::Unreachable),
            // The appliance's own addresses stay local, martians unreachable.
            (UPLINK, [10, 137, 1, 1], Route::Local { nic: CLIENT_LAN }),
            (UPLINK, [127, 0, 0, 1], Route::Unreachable),
        ];
        for (nic, dst, route) in cases {
            assert_eq!(table.toward(nic, ip(dst).into()), route, "nic{nic} {dst:?}");
        }
    }

    #[test]
    fn everything_else_goes_via_the_uplink_gateway() {
        let table = lab_table();
        assert_eq!(
            table.lookup(ip([1, 1, 1, 1]).into()),
            forward(UPLINK, [10, 0, 2, 2])
        );
    }

    #[test]
    fn longest_prefix_wins_over_a_covering_network() {
        // nic1 holds 10.0.0.0/8, nic2 the more specific 10.1.0.0/16, nic3 a client inside it.
        let nics = [
            nic([192, 168, 0, 2], 24, Some([192, 168, 0, 1])),
            nic([10, 0, 0, 1], 8, None),
            nic([10, 1, 0, 1], 16, None),
            nic([172, 16, 0, 1], 30, None),
        ];
        let clients = [client(3, [10, 1, 2, 3])];
        let table = RouteTable::new(&Topology {
            nics: &nics,
            uplink: Some(0),
            clients: &clients,
        });
        assert_eq!(
            table.lookup(ip([10, 9, 9, 9]).into()),
            forward(1, [10, 9, 9, 9])
        );
        assert_eq!(
            table.lookup(ip([10, 1, 9, 9]).into()),
            forward(2, [10, 1, 9, 9])
        );
        assert_eq!(
            table.lookup(ip([10, 1, 2, 3]).into()),
            forward(3, [10, 1, 2, 3])
        );
        assert_eq!(
            table.lookup(ip([8, 8, 8, 8]).into()),
            forward(0, [192, 168, 0, 1])
        );
    }

    #[test]
    fn unforwardable_destinations_are_unreachable() {
        let table = lab_table();
        for a in [
            [0, 0, 0, 0],
            [127, 0, 0, 1],
            [224, 0, 0, 251],
            [240, 0, 0, 1],
            [255, 255, 255, 255],
        ] {
            assert_eq!(table.lookup(ip(a).into()), Route::Unreachable, "{a:?}");
        }
    }

    #[test]
    fn without_uplink_address_only_connected_networks_route() {
        let mut lab = Lab::new();
        lab.nics[UPLINK as usize] = NicConfig {
            ipv4: None,
            gateway: None,
            dhcp: true,
            ..lab.nics[0]
        };
        let table = RouteTable::new(&lab.topology());
        assert_eq!(table.lookup(ip([1, 1, 1, 1]).into()), Route::Unreachable);
        assert_eq!(table.lookup(ip([10, 0, 2, 15]).into()), Route::Unreachable);
        assert_eq!(
            table.lookup(ip([10, 137, 1, 10]).into()),
            forward(CLIENT_LAN, [10, 137, 1, 10])
        );
    }

    #[test]
    fn dhcp_lease_on_the_uplink_installs_the_default_route() {
        let mut lab = Lab::new();
        let leased = lab.nics[UPLINK as usize];
        lab.nics[UPLINK as usize] = NicConfig {
            ipv4: None,
            gateway: None,
            dhcp: true,
            ..leased
        };
        let mut table = RouteTable::new(&lab.topology());
        table.set_nic(UPLINK, leased);
        assert_eq!(
            table.lookup(ip([9, 9, 9, 9]).into()),
            forward(UPLINK, [10, 0, 2, 2])
        );
        assert_eq!(
            table.lookup(ip([10, 0, 2, 15]).into()),
            Route::Local { nic: UPLINK }
        );
        // A renewal with a new address moves the local route and the gateway.
        table.set_nic(UPLINK, nic([10, 0, 3, 20], 24, Some([10, 0, 3, 1])));
        assert_eq!(
            table.lookup(ip([10, 0, 3, 20]).into()),
            Route::Local { nic: UPLINK }
        );
        assert_eq!(
            table.lookup(ip([10, 0, 2, 15]).into()),
            forward(UPLINK, [10, 0, 3, 1])
        );
    }

    #[test]
    fn off_link_gateway_installs_no_default_route() {
        let mut lab = Lab::new();
        lab.nics[UPLINK as usize].gateway = Some(ip([192, 168, 7, 1]));
        let table = RouteTable::new(&lab.topology());
        assert_eq!(table.lookup(ip([1, 1, 1, 1]).into()), Route::Unreachable);
    }

    #[test]
    fn gateway_on_a_client_nic_is_not_a_default_route() {
        let mut lab = Lab::new();
        lab.nics[CLIENT_LAN as usize].gateway = Some(ip([10, 137, 1, 254]));
        lab.nics[UPLINK as usize].gateway = None;
        let table = RouteTable::new(&lab.topology());
        assert_eq!(table.lookup(ip([1, 1, 1, 1]).into()), Route::Unreachable);
    }

    #[test]
    fn client_on_an_unaddressed_nic_gets_no_route() {
        let mut lab = Lab::new();
        lab.nics[QUBES_VIF as usize].ipv4 = None;
        let table = RouteTable::new(&lab.topology());
        assert_eq!(
            table.lookup(ip([10, 137, 0, 17]).into()),
            forward(UPLINK, [10, 0, 2, 2])
        );
    }

    #[test]
    fn client_declared_with_the_appliance_address_stays_local() {
        let mut lab = Lab::new();
        lab.clients.push(client(CLIENT_LAN, [10, 137, 1, 1]));
        let table = RouteTable::new(&lab.topology());
        assert_eq!(
            table.lookup(ip([10, 137, 1, 1]).into()),
            Route::Local { nic: CLIENT_LAN }
        );
    }

    #[test]
    fn egress_mtu_is_per_nic_and_never_below_the_ipv4_minimum() {
        let mut table = lab_table();
        table.set_mtu(UPLINK, 1400);
        table.set_mtu(CLIENT_LAN, 20);
        assert!(matches!(
            table.lookup(ip([1, 1, 1, 1]).into()),
            Route::Forward { mtu: 1400, .. }
        ));
        assert!(matches!(
            table.lookup(ip([10, 137, 1, 10]).into()),
            Route::Forward { mtu: MIN_MTU, .. }
        ));
        assert_eq!(
            table.lookup(ip([10, 137, 0, 17]).into()),
            forward(QUBES_VIF, [10, 137, 0, 17])
        );
        // The MTU survives a rebuild.
        table.set_nic(UPLINK, Lab::new().nics[0]);
        assert_eq!(table.mtu(UPLINK), 1400);
    }

    #[test]
    fn topology_from_policy_finds_the_uplink_and_clients() {
        let lab = Lab::new();
        let mut policy = PolicyBuf::default();
        for (nic, uplink) in [(UPLINK, false), (CLIENT_LAN, false), (QUBES_VIF, true)] {
            policy.interfaces.push(Interface {
                mtu: crate::policy::MAX_MTU,
                name: Span::EMPTY,
                nic,
                ipv4: Ipv4Config::None,
                ipv6: Ipv6Config::None,
                router_adverts: false,
                dns_servers: Span::EMPTY,
                uplink,
                pos: SourcePos::default(),
            });
        }
        policy.clients = lab.clients.clone();
        let policy = policy.as_policy();
        let topology = Topology::from_policy(&lab.nics, &policy);
        assert_eq!(topology.uplink, Some(QUBES_VIF));
        let on_lan: Vec<_> = topology.client_addresses_on(CLIENT_LAN).collect();
        assert_eq!(on_lan, [ip([10, 137, 1, 10])]);
        assert!(topology.is_own_address(ip([10, 138, 0, 1])));
        assert!(!topology.is_own_address(ip([10, 137, 1, 10])));
    }
}
