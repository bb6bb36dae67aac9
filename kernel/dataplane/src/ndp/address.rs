//! The appliance's own IPv6 addresses on one NIC and their duplicate address detection
//! (RFC 4862 §5.4).
//!
//! An address is **tentative** from the moment it is configured: the appliance sends
//! [`DAD_TRANSMITS`] neighbour solicitations for it from `::` to its solicited-node group,
//! [`RETRANS_TIMER`] apart, and uses it only if nobody answered within [`RETRANS_TIMER`] of
//! the last one — then it is **preferred**. A neighbour advertisement for a tentative
//! address, or another node's solicitation from `::` for it (two nodes doing DAD at once),
//! makes it **duplicate**: it is never used, and the caller says so on the console.

use alloc::vec::Vec;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, Ipv6Address, Ipv6Cidr};

/// Solicitations sent for each new address (RFC 4862's `DupAddrDetectTransmits`).
pub const DAD_TRANSMITS: u8 = 1;

/// Time between solicitations, and the wait after the last (RFC 4861's `RetransTimer`).
pub const RETRANS_TIMER: Duration = Duration::from_secs(1);

/// The link-local prefix, `fe80::/64`.
const LINK_LOCAL_PREFIX: u128 = 0xfe80 << 112;

/// The interface identifier made from `mac` (modified EUI-64, RFC 4291 appendix A).
fn interface_id(mac: EthernetAddress) -> u64 {
    let eui64 = mac.as_eui_64().unwrap_or([0; 8]);
    u64::from_be_bytes(eui64)
}

/// The link-local address of a NIC with `mac`: `fe80::` + its EUI-64.
pub fn link_local(mac: EthernetAddress) -> Ipv6Address {
    Ipv6Address::from_bits(LINK_LOCAL_PREFIX | u128::from(interface_id(mac)))
}

/// The address SLAAC forms in the /64 `prefix` for a NIC with `mac`.
pub fn slaac_address(prefix: Ipv6Address, mac: EthernetAddress) -> Ipv6Address {
    let upper = prefix.to_bits() & !u128::from(u64::MAX);
    Ipv6Address::from_bits(upper | u128::from(interface_id(mac)))
}

/// The solicited-node multicast group of `addr` (`ff02::1:ff00:0/104` + its low 24 bits).
pub fn solicited_node(addr: Ipv6Address) -> Ipv6Address {
    const GROUP: u128 = 0xff02_0000_0000_0000_0000_0001_ff00_0000;
    Ipv6Address::from_bits(GROUP | (addr.to_bits() & 0x00ff_ffff))
}

/// The Ethernet multicast address of an IPv6 multicast group (`33:33` + its low 32 bits,
/// RFC 2464 §7).
pub fn multicast_mac(group: Ipv6Address) -> EthernetAddress {
    let low = group.octets();
    EthernetAddress([0x33, 0x33, low[12], low[13], low[14], low[15]])
}

/// The prefix of `cidr`: its address with the host bits cleared.
pub fn network(cidr: Ipv6Cidr) -> Ipv6Cidr {
    let host_bits = 128 - u32::from(cidr.prefix_len());
    let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
    Ipv6Cidr::new(
        Ipv6Address::from_bits(cidr.address().to_bits() & mask),
        cidr.prefix_len(),
    )
}

/// Whether `addr` is link-local unicast (`fe80::/10`).
pub fn is_link_local(addr: Ipv6Address) -> bool {
    addr.segments()[0] & 0xffc0 == 0xfe80
}

/// Where an address came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The NIC's link-local address.
    LinkLocal,
    /// `address6` in the ruleset.
    Static,
    /// Formed from a router advertisement's prefix; valid until `valid_until`.
    Slaac {
        /// When the address stops being valid (the prefix's valid lifetime).
        valid_until: Instant,
    },
}

/// Where an address is in duplicate address detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DadState {
    /// Being checked: `sent` solicitations so far, the next step due at `next`.
    Tentative {
        /// Solicitations sent.
        sent: u8,
        /// When the next one is sent (or, after the last, when the address is preferred).
        next: Instant,
    },
    /// Checked: in use.
    Preferred,
    /// Someone else has it (at this MAC, if known): never used.
    Duplicate(Option<EthernetAddress>),
}

/// One of the appliance's addresses on a NIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnAddress {
    /// The address and its on-link prefix length.
    pub cidr: Ipv6Cidr,
    /// Where it came from.
    pub origin: Origin,
    /// Its duplicate address detection.
    pub state: DadState,
}

impl OwnAddress {
    /// Whether the address may be used (DAD passed).
    pub fn is_preferred(&self) -> bool {
        self.state == DadState::Preferred
    }
}

/// What [`Addresses::poll`] wants done.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DadWork {
    /// Addresses to send a DAD solicitation for now.
    pub solicit: Vec<Ipv6Address>,
    /// Addresses that passed DAD now.
    pub preferred: Vec<Ipv6Cidr>,
}

/// The addresses of one NIC. See the module documentation.
#[derive(Debug, Default)]
pub struct Addresses {
    list: Vec<OwnAddress>,
}

impl Addresses {
    /// Adds `cidr` (tentative, its first solicitation due now); `false` if the NIC has it.
    pub fn add(&mut self, cidr: Ipv6Cidr, origin: Origin, now: Instant) -> bool {
        if self.get(cidr.address()).is_some() {
            return false;
        }
        self.list.push(OwnAddress {
            cidr,
            origin,
            state: DadState::Tentative { sent: 0, next: now },
        });
        true
    }

    /// Removes `addr`; returns it if it was there.
    pub fn remove(&mut self, addr: Ipv6Address) -> Option<OwnAddress> {
        let at = self.list.iter().position(|a| a.cidr.address() == addr)?;
        Some(self.list.remove(at))
    }

    /// The entry for `addr`.
    pub fn get(&self, addr: Ipv6Address) -> Option<&OwnAddress> {
        self.list.iter().find(|a| a.cidr.address() == addr)
    }

    /// The entry for `addr`, to change it.
    pub fn get_mut(&mut self, addr: Ipv6Address) -> Option<&mut OwnAddress> {
        self.list.iter_mut().find(|a| a.cidr.address() == addr)
    }

    /// Every address, in the order they were added (the link-local first).
    pub fn iter(&self) -> impl Iterator<Item = &OwnAddress> {
        self.list.iter()
    }

    /// Records that someone else (at `mac`) has `addr`, if it is tentative here: it becomes
    /// duplicate. Returns whether it did.
    pub fn conflict(&mut self, addr: Ipv6Address, mac: Option<EthernetAddress>) -> bool {
        match self.get_mut(addr) {
            Some(own) if matches!(own.state, DadState::Tentative { .. }) => {
                own.state = DadState::Duplicate(mac);
                true
            }
            _ => false,
        }
    }

    /// Runs DAD: the solicitations due now and the addresses that passed.
    pub fn poll(&mut self, now: Instant) -> DadWork {
        let mut work = DadWork::default();
        for own in &mut self.list {
            let DadState::Tentative { sent, next } = &mut own.state else {
                continue;
            };
            if *next > now {
                continue;
            }
            if *sent < DAD_TRANSMITS {
                *sent += 1;
                *next = now + RETRANS_TIMER;
                work.solicit.push(own.cidr.address());
            } else {
                own.state = DadState::Preferred;
                work.preferred.push(own.cidr);
            }
        }
        work
    }

    /// The earliest time [`Addresses::poll`] has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.list
            .iter()
            .filter_map(|a| match a.state {
                DadState::Tentative { next, .. } => Some(next),
                _ => None,
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);

    fn t(ms: i64) -> Instant {
        Instant::from_millis(ms)
    }

    fn addr(text: &str) -> Ipv6Address {
        text.parse().unwrap()
    }

    #[test]
    fn link_local_is_the_modified_eui64_of_the_mac() {
        // What Linux forms for 52:54:00:12:34:56 (addr_gen_mode eui64).
        assert_eq!(link_local(MAC), addr("fe80::5054:ff:fe12:3456"));
        assert_eq!(
            slaac_address(addr("2001:db8:1:2::"), MAC),
            addr("2001:db8:1:2:5054:ff:fe12:3456")
        );
    }

    #[test]
    fn solicited_node_group_and_its_mac() {
        let group = solicited_node(addr("fd00::5054:ff:fe12:3456"));
        assert_eq!(group, addr("ff02::1:ff12:3456"));
        assert_eq!(
            multicast_mac(group),
            EthernetAddress([0x33, 0x33, 0xff, 0x12, 0x34, 0x56])
        );
    }

    #[test]
    fn an_address_is_preferred_after_one_unanswered_solicitation() {
        let mut list = Addresses::default();
        let cidr = Ipv6Cidr::new(addr("fd00::1"), 64);
        assert!(list.add(cidr, Origin::Static, t(0)));
        assert!(!list.add(cidr, Origin::Static, t(0)), "added once");
        assert_eq!(list.poll(t(0)).solicit, [cidr.address()]);
        assert!(!list.get(cidr.address()).unwrap().is_preferred());
        assert_eq!(list.next_deadline(), Some(t(1_000)));
        assert_eq!(list.poll(t(999)), DadWork::default());
        assert_eq!(list.poll(t(1_000)).preferred, [cidr]);
        assert!(list.get(cidr.address()).unwrap().is_preferred());
        assert_eq!(list.next_deadline(), None);
    }

    #[test]
    fn a_conflict_while_tentative_makes_the_address_duplicate_for_good() {
        let mut list = Addresses::default();
        let cidr = Ipv6Cidr::new(addr("fd00::1"), 64);
        list.add(cidr, Origin::Static, t(0));
        list.poll(t(0));
        assert!(list.conflict(cidr.address(), Some(MAC)));
        assert_eq!(
            list.get(cidr.address()).unwrap().state,
            DadState::Duplicate(Some(MAC))
        );
        assert_eq!(list.poll(t(5_000)), DadWork::default());
        assert!(!list.conflict(cidr.address(), None), "reported once");
    }

    #[test]
    fn a_preferred_address_is_not_given_up_to_a_late_claim() {
        let mut list = Addresses::default();
        let cidr = Ipv6Cidr::new(addr("fd00::1"), 64);
        list.add(cidr, Origin::Static, t(0));
        list.poll(t(0));
        list.poll(t(1_000));
        assert!(!list.conflict(cidr.address(), Some(MAC)));
        assert!(list.get(cidr.address()).unwrap().is_preferred());
    }
}
