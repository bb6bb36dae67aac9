//! IPv6 routing: the IPv6 half of [`RouteTable`](crate::route::RouteTable).
//!
//! Built from each NIC's IPv6 addresses (static `address6`, or learned by SLAAC; the
//! addressing module hands them over), the declared clients' IPv6 addresses and the
//! uplink's IPv6 gateway. Like IPv4's, longest match first:
//!
//! - **local** — each of the appliance's own addresses (link-local ones included) is
//!   [`Route::Local`] on the NIC that owns it;
//! - **client host routes** — a declared client's IPv6 address on its NIC, on-link, even
//!   outside that NIC's prefixes;
//! - **connected prefixes** — each address's prefix, on-link on its NIC;
//! - **default** — `::/0` via the uplink's IPv6 gateway (a link-local router address, as
//!   router advertisements give it, or one inside an uplink prefix).
//!
//! Never routed ([`Route::Unreachable`] from [`is_never_routed`]): the unspecified address,
//! loopback, multicast, IPv4-mapped addresses, and link-local destinations that are not the
//! appliance's own — a link-local address means nothing beyond its link, and the appliance
//! is not on the sender's link's far side (RFC 4291 §2.5.6).

use alloc::vec::Vec;

use smoltcp::wire::{EthernetAddress, IpAddress, Ipv6Address, Ipv6Cidr};

use crate::policy::{Interface, Ipv6Config};

use crate::route::Route;

/// Whether a packet for `dst` must never be forwarded: unspecified, loopback, multicast,
/// IPv4-mapped, link-local, or the documentation-free "discard" prefix is not special here.
pub fn is_never_routed(dst: Ipv6Address) -> bool {
    dst.is_unspecified()
        || dst.is_loopback()
        || dst.is_multicast()
        || dst.to_ipv4_mapped().is_some()
        || is_link_local(dst)
}

/// Whether `addr` is link-local unicast (`fe80::/10`).
pub fn is_link_local(addr: Ipv6Address) -> bool {
    addr.segments()[0] & 0xffc0 == 0xfe80
}

/// One NIC's IPv6 addressing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Nic6 {
    /// The appliance's addresses with their on-link prefixes (link-local included).
    pub addresses: Vec<Ipv6Cidr>,
    /// The default router on this NIC (only the uplink's is used).
    pub gateway: Option<Ipv6Address>,
}

/// The link-local address a NIC with MAC `mac` has: `fe80::` and the MAC's modified EUI-64
/// (RFC 4291 §2.5.1).
pub fn link_local_of(mac: EthernetAddress) -> Ipv6Address {
    let mut octets = [0u8; 16];
    octets[..2].copy_from_slice(&[0xfe, 0x80]);
    octets[8..].copy_from_slice(&mac.as_eui_64().unwrap_or_default());
    Ipv6Address::from(octets)
}

impl Nic6 {
    /// The addressing `interface` declares for a NIC with MAC `mac`: its link-local
    /// address and its static `address6` (with `gateway6`), if it has IPv6 at all. SLAAC
    /// addresses come later, from the addressing module.
    pub fn declared(interface: &Interface, mac: EthernetAddress) -> Nic6 {
        let link_local = Ipv6Cidr::new(link_local_of(mac), 64);
        match interface.ipv6 {
            Ipv6Config::None => Nic6::default(),
            Ipv6Config::Slaac => Nic6 {
                addresses: alloc::vec![link_local],
                gateway: None,
            },
            Ipv6Config::Static {
                address,
                prefix_len,
                gateway,
            } => Nic6 {
                addresses: alloc::vec![
                    link_local,
                    Ipv6Cidr::new(Ipv6Address::from_bits(address), prefix_len)
                ],
                gateway: gateway.map(Ipv6Address::from_bits),
            },
        }
    }
}

/// The IPv6 routes. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct Ipv6Routes {
    nics: Vec<Nic6>,
    uplink: Option<u8>,
    /// Declared clients' addresses, as `(address, nic)`, sorted.
    clients: Vec<(Ipv6Address, u8)>,
}

/// What a matching route does.
enum Target {
    OnLink(u8),
    Via(u8, Ipv6Address),
}

impl Ipv6Routes {
    /// Routes for `nic_count` NICs without IPv6 yet, `uplink` carrying the default route,
    /// and the declared clients' `(nic, address)`.
    pub fn new(
        nic_count: usize,
        uplink: Option<u8>,
        clients: impl Iterator<Item = (u8, Ipv6Address)>,
    ) -> Ipv6Routes {
        let mut clients: Vec<(Ipv6Address, u8)> = clients.map(|(nic, a)| (a, nic)).collect();
        clients.sort_unstable();
        Ipv6Routes {
            nics: alloc::vec![Nic6::default(); nic_count],
            uplink,
            clients,
        }
    }

    /// Replaces NIC `nic`'s IPv6 addressing (unknown NICs are ignored).
    pub fn set_nic(&mut self, nic: u8, addressing: Nic6) {
        if let Some(slot) = self.nics.get_mut(nic as usize) {
            *slot = addressing;
        }
    }

    /// NIC `nic`'s IPv6 addressing.
    pub fn nic(&self, nic: u8) -> Option<&Nic6> {
        self.nics.get(nic as usize)
    }

    /// The NIC owning the appliance address `addr`, if it is one.
    pub fn owner_of(&self, addr: Ipv6Address) -> Option<u8> {
        self.nics
            .iter()
            .position(|n| n.addresses.iter().any(|c| c.address() == addr))
            .map(|i| i as u8)
    }

    /// The appliance's address on `nic` to send from towards `dst`: a link-local one for a
    /// link-local `dst`, else a global (or unique local) one if `nic` has one, else its
    /// link-local address.
    pub fn source_for(&self, nic: u8, dst: Ipv6Address) -> Option<Ipv6Address> {
        let addresses = &self.nic(nic)?.addresses;
        let link_local = addresses.iter().find(|c| is_link_local(c.address()));
        let wider = addresses.iter().find(|c| !is_link_local(c.address()));
        let chosen = if is_link_local(dst) {
            link_local
        } else {
            wider.or(link_local)
        };
        chosen.map(|c| c.address())
    }

    /// Whether `addr` lies in one of `nic`'s on-link prefixes (link-local included).
    pub fn on_link(&self, nic: u8, addr: Ipv6Address) -> bool {
        self.nic(nic)
            .is_some_and(|n| n.addresses.iter().any(|c| c.contains_addr(&addr)))
    }

    /// The NIC carrying the default route, if any.
    pub fn uplink(&self) -> Option<u8> {
        self.uplink
    }

    /// Every NIC but the uplink.
    pub fn client_nics(&self) -> impl Iterator<Item = u8> + '_ {
        (0..self.nics.len() as u8).filter(move |&nic| Some(nic) != self.uplink)
    }

    /// The NIC of the client declared with address `addr`, if one is.
    pub fn client_nic(&self, addr: Ipv6Address) -> Option<u8> {
        self.clients
            .binary_search_by(|(a, _)| a.cmp(&addr))
            .ok()
            .map(|at| self.clients[at].1)
    }

    /// Whether `nic` has any IPv6 address (else it carries no IPv6 at all).
    pub fn has_ipv6(&self, nic: u8) -> bool {
        self.nic(nic).is_some_and(|n| !n.addresses.is_empty())
    }

    fn default_route(&self) -> Option<Target> {
        let nic = self.uplink?;
        let gateway = self.nic(nic)?.gateway?;
        (is_link_local(gateway) || self.on_link(nic, gateway)).then_some(Target::Via(nic, gateway))
    }

    /// Where a packet for `dst` goes.
    pub fn lookup(&self, dst: Ipv6Address, mtu: impl Fn(u8) -> u16) -> Route {
        if let Some(nic) = self.owner_of(dst) {
            return Route::Local { nic };
        }
        if is_never_routed(dst) {
            return Route::Unreachable;
        }
        let target = match self.client_nic(dst).filter(|&nic| self.has_ipv6(nic)) {
            Some(nic) => Some(Target::OnLink(nic)),
            None => self
                .longest_prefix(dst, |_| true)
                .map(Target::OnLink)
                .or_else(|| self.default_route()),
        };
        resolve(target, dst, mtu)
    }

    /// Where a packet for `dst` goes when it must leave through `nic` (a packet of a
    /// state): on-link there, else via `nic`'s gateway when `nic` is the uplink.
    pub fn toward(&self, nic: u8, dst: Ipv6Address, mtu: impl Fn(u8) -> u16) -> Route {
        if let Some(owner) = self.owner_of(dst) {
            return Route::Local { nic: owner };
        }
        if is_never_routed(dst) {
            return Route::Unreachable;
        }
        let target = if self.client_nic(dst) == Some(nic)
            || self.longest_prefix(dst, |n| n == nic).is_some()
        {
            Some(Target::OnLink(nic))
        } else {
            self.default_route()
                .filter(|t| matches!(t, Target::Via(via, _) if *via == nic))
        };
        resolve(target, dst, mtu)
    }

    /// The NIC of the longest non-link-local prefix holding `dst`, among NICs `keep` accepts.
    fn longest_prefix(&self, dst: Ipv6Address, keep: impl Fn(u8) -> bool) -> Option<u8> {
        self.nics
            .iter()
            .enumerate()
            .filter(|&(i, _)| keep(i as u8))
            .flat_map(|(i, n)| n.addresses.iter().map(move |c| (i as u8, c)))
            .filter(|(_, c)| !is_link_local(c.address()) && c.contains_addr(&dst))
            .max_by_key(|(_, c)| c.prefix_len())
            .map(|(nic, _)| nic)
    }
}

fn resolve(target: Option<Target>, dst: Ipv6Address, mtu: impl Fn(u8) -> u16) -> Route {
    match target {
        Some(Target::OnLink(nic)) => Route::Forward {
            nic,
            next_hop: IpAddress::Ipv6(dst),
            mtu: mtu(nic),
        },
        Some(Target::Via(nic, gateway)) => Route::Forward {
            nic,
            next_hop: IpAddress::Ipv6(gateway),
            mtu: mtu(nic),
        },
        None => Route::Unreachable,
    }
}
