//! Whether a packet's source may arrive where it did: anti-spoofing
//! ([`SourceFilter`](crate::antispoof::SourceFilter)) and the MACs of declared clients —
//! pinned by the ruleset, or sticky while the client is active; whether its IPv4 options
//! may go on.

use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpAddress};

use super::descriptor::PacketDesc;
use super::drop::Dropped;
use super::Appliance;
use crate::antispoof::Spoofed;
use crate::antispoof6;
use crate::drops::DropReason;
use crate::ip_options::DETAIL_NOT_ALLOWED;
use crate::policy::ip_to_flow_addr;
use crate::state::ClientRef;

/// The detail of a drop line for a declared client's address sent from another MAC than
/// the one it is known at.
pub(super) const CLIENT_MAC_CHANGED: &str = "client-mac-changed";
/// The detail of a drop line for a client's address sent from another MAC than the one the
/// ruleset pins.
pub(super) const CLIENT_MAC_PINNED: &str = "client-mac-pinned";

impl Appliance<'_> {
    /// Refuses a source the ingress NIC may not have, or a declared client's address sent
    /// from a MAC other than the client's. A declared client's packet from its own MAC
    /// renews the appliance's binding of its address to that MAC, as its ARP messages do:
    /// an active client keeps its address.
    pub(super) fn check_source(&mut self, pd: &PacketDesc) -> Result<(), Dropped> {
        if let IpAddress::Ipv4(src) = pd.ip.src {
            // A DHCP server's lease (IPv4 only) binds its address to the client's MAC.
            if let Some(leased) = self.check_leased(pd.nic, src, pd.sender_mac, pd.now) {
                return leased;
            }
        }
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
        if let Some(detail) = self.refuses_client_mac(pd.nic, pd.ip.src, pd.sender_mac, pd.now) {
            return Err(Dropped::detail(DropReason::Spoofed, detail));
        }
        // A router forwards from its own MAC: its frames show it is there, in both families.
        self.neighbors.saw_frame_from(pd.nic, pd.sender_mac, pd.now);
        self.ndp.saw_frame_from(pd.nic, pd.sender_mac, pd.now);
        if self.declared_client(pd.nic, pd.ip.src).is_some() {
            match pd.ip.src {
                IpAddress::Ipv4(src) => {
                    self.neighbors.confirm((pd.nic, src), pd.sender_mac, pd.now);
                }
                IpAddress::Ipv6(src) => self.ndp.confirm(pd.nic, src, pd.sender_mac, pd.now),
            }
        }
        Ok(())
    }

    /// Refuses a frame whose offload metadata does not hold for its packet (see
    /// [`crate::offload::Offload::check`]), as malformed with the reason.
    pub(super) fn check_offload(&self, pd: &PacketDesc) -> Result<(), Dropped> {
        pd.offload
            .check(&pd.ip)
            .map_err(|e| Dropped::detail(DropReason::Malformed, e.as_str()))
    }

    /// Refuses a packet whose IPv4 options nothing may allow: a source route, route
    /// recording (see [`crate::ip_options`]). Whatever the rules say, to the appliance too.
    pub(super) fn check_options(&self, pd: &PacketDesc) -> Result<(), Dropped> {
        match pd.ip.options.never_forwarded() {
            Some(kind) => Err(Dropped::detail(DropReason::IpOptions, kind)),
            None => Ok(()),
        }
    }

    /// Refuses a packet with IPv4 options unless the rule that passed its flow allows them
    /// (`allow-opts`, pf's rule: `allowed`).
    pub(super) fn check_options_allowed(
        &self,
        pd: &PacketDesc,
        allowed: bool,
    ) -> Result<(), Dropped> {
        if pd.ip.options.present() && !allowed {
            return Err(Dropped::detail(DropReason::IpOptions, DETAIL_NOT_ALLOWED));
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

    /// The declared client with address `ip` (of either family) on `nic`, with its state
    /// limit.
    pub(super) fn declared_client_ref(&self, nic: u8, ip: IpAddress) -> Option<ClientRef> {
        self.declared_client(nic, ip).map(|index| ClientRef {
            index: index as u32,
            max_states: self.policy.clients[index].max_states,
        })
    }

    /// Why `mac` may not claim `ip`, the address of a declared client on `nic`, if it may
    /// not (a drop line's detail): the client's MAC is pinned by the ruleset and `mac` is
    /// another ([`CLIENT_MAC_PINNED`]), or the appliance knows the client at another MAC and
    /// that binding is still live ([`CLIENT_MAC_CHANGED`]). A declared client's binding is
    /// sticky while the client is active: its ARP messages and its IP traffic renew it (see
    /// [`Appliance::check_source`]), so another client on a shared segment cannot take its
    /// address over (ARP poisoning) or send as it.
    pub(super) fn refuses_client_mac(
        &self,
        nic: u8,
        ip: IpAddress,
        mac: EthernetAddress,
        now: Instant,
    ) -> Option<&'static str> {
        if let Some(pinned) = self.pinned_mac(nic, ip) {
            return (pinned != mac).then_some(CLIENT_MAC_PINNED);
        }
        let changed = self.declared_client(nic, ip).is_some()
            && self
                .neighbor_mac(nic, ip, now)
                .is_some_and(|known| known != mac);
        changed.then_some(CLIENT_MAC_CHANGED)
    }

    /// The MAC the neighbour table (ARP, or neighbour discovery for IPv6) knows for `ip` on
    /// `nic`, if it is current.
    fn neighbor_mac(&self, nic: u8, ip: IpAddress, now: Instant) -> Option<EthernetAddress> {
        match ip {
            IpAddress::Ipv4(ip) => self.neighbors.lookup((nic, ip), now),
            IpAddress::Ipv6(ip) => self.ndp.neighbor_mac(nic, ip, now),
        }
    }

    /// The MAC the ruleset pins for the client with address `ip` on `nic`, if it does.
    pub(super) fn pinned_mac(&self, nic: u8, ip: IpAddress) -> Option<EthernetAddress> {
        let key = (nic, ip_to_flow_addr(ip));
        self.pinned_macs
            .binary_search_by(|(k, _)| k.cmp(&key))
            .ok()
            .map(|at| self.pinned_macs[at].1)
    }
}
