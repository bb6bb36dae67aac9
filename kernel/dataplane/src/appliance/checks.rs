//! Whether a packet's source may arrive where it did: anti-spoofing
//! ([`SourceFilter`](crate::antispoof::SourceFilter)) and the sticky MACs of declared
//! clients.

use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpAddress};

use super::descriptor::PacketDesc;
use super::drop::Dropped;
use super::Appliance;
use crate::antispoof::Spoofed;
use crate::antispoof6;
use crate::drops::DropReason;
use crate::policy::ip_to_flow_addr;
use crate::state::ClientRef;

/// The detail of a drop line for a declared client's address sent from another MAC.
pub(super) const CLIENT_MAC_CHANGED: &str = "client-mac-changed";

impl Appliance<'_> {
    /// Refuses a source the ingress NIC may not have, or a declared client's address sent
    /// from a MAC other than the client's.
    pub(super) fn check_source(&self, pd: &PacketDesc) -> Result<(), Dropped> {
        let checked = match pd.ip.src {
            IpAddress::Ipv4(src) => self.sources.check(pd.nic, src),
            IpAddress::Ipv6(src) => antispoof6::check(self.routes.ipv6(), pd.nic, src),
        };
        if let Err(spoofed) = checked {
            let reason = match spoofed {
                Spoofed::MartianSource => DropReason::MartianSource,
                _ => DropReason::Spoofed,
            };
            return Err(Dropped::detail(reason, spoofed.as_str()));
        }
        if self.impersonates_client(pd.nic, pd.ip.src, pd.sender_mac, pd.now) {
            return Err(Dropped::detail(DropReason::Spoofed, CLIENT_MAC_CHANGED));
        }
        Ok(())
    }

    /// The index in `policy.clients` of the client declared with address `ip` (of either
    /// family) on `nic`.
    pub(super) fn declared_client(&self, nic: u8, ip: IpAddress) -> Option<usize> {
        let key = (nic, ip_to_flow_addr(ip));
        self.declared_clients
            .binary_search_by(|&(n, a, _)| (n, a).cmp(&key))
            .ok()
            .map(|at| self.declared_clients[at].2 as usize)
    }

    /// The client record for a source on a NIC, for per-client state limits.
    pub(super) fn client_ref(&self, nic: u8, src: IpAddress) -> Option<ClientRef> {
        self.declared_client(nic, src).map(|index| ClientRef {
            index: index as u32,
            max_states: self.policy.clients[index].max_states,
        })
    }

    /// The MAC the neighbour table (ARP, or neighbour discovery for IPv6) knows for `ip` on
    /// `nic`, if it is current.
    fn neighbor_mac(&self, nic: u8, ip: IpAddress, now: Instant) -> Option<EthernetAddress> {
        match ip {
            IpAddress::Ipv4(ip) => self.neighbors.lookup((nic, ip), now),
            IpAddress::Ipv6(ip) => self.neighbors6.lookup((nic, ip), now),
        }
    }

    /// Whether `mac` claims the address of a declared client on `nic` whose MAC the
    /// appliance already knows to be another one. Declared clients' MACs are sticky until
    /// their neighbour entry expires, so one client on a shared segment cannot take over
    /// another's address (ARP poisoning) or send as it.
    pub(super) fn impersonates_client(
        &self,
        nic: u8,
        ip: IpAddress,
        mac: EthernetAddress,
        now: Instant,
    ) -> bool {
        self.declared_client(nic, ip).is_some()
            && self
                .neighbor_mac(nic, ip, now)
                .is_some_and(|known| known != mac)
    }
}
