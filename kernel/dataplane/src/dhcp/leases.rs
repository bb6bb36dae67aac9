//! The DHCP server's lease table for one interface: which address is offered to, bound to
//! or declined by which MAC, until when.
//!
//! # Bounds
//! Entries are keyed by address, and only addresses the server may give out (its pool and
//! the interface's declared clients) ever become keys, so the table never holds more
//! entries than that; a MAC holds at most one entry (granting another address ends its
//! previous one). The per-packet question — *who holds this address now?* — is one B-tree
//! lookup ([`LeaseTable::holder`]).

use alloc::collections::BTreeMap;

use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, Ipv4Address};

/// What an entry says about its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Offered to the MAC (DHCPOFFER), not yet requested.
    Offered,
    /// Bound to the MAC (DHCPACK): the MAC may send from the address.
    Bound,
    /// Declined by a client (DHCPDECLINE: another host uses it): given to nobody.
    Declined,
}

/// One address's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The address.
    pub ip: Ipv4Address,
    /// The MAC it is offered or bound to (the decliner's for [`Standing::Declined`]).
    pub mac: EthernetAddress,
    /// What the entry is.
    pub standing: Standing,
    /// When it ends.
    pub expires: Instant,
    /// When the holder last sent a packet from the address (or its last DHCP message).
    pub last_seen: Instant,
}

impl Entry {
    /// Whether the entry still holds its address at `now`.
    pub fn live(&self, now: Instant) -> bool {
        now < self.expires
    }
}

/// The lease table of one interface. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct LeaseTable {
    by_ip: BTreeMap<u32, Entry>,
    by_mac: BTreeMap<[u8; 6], u32>,
}

impl LeaseTable {
    /// The MAC `ip` is bound to at `now`, if a live lease binds it.
    pub fn holder(&self, ip: Ipv4Address, now: Instant) -> Option<EthernetAddress> {
        self.by_ip
            .get(&ip.to_bits())
            .filter(|e| e.standing == Standing::Bound && e.live(now))
            .map(|e| e.mac)
    }

    /// The live entry for `ip`, whatever its standing.
    pub fn entry(&self, ip: Ipv4Address, now: Instant) -> Option<&Entry> {
        self.by_ip.get(&ip.to_bits()).filter(|e| e.live(now))
    }

    /// The live offer or lease `mac` has.
    pub fn of_mac(&self, mac: EthernetAddress, now: Instant) -> Option<&Entry> {
        let ip = self.by_mac.get(&mac.0)?;
        self.by_ip
            .get(ip)
            .filter(|e| e.live(now) && e.standing != Standing::Declined)
    }

    /// Whether `ip` is free for `mac`: no live entry, or `mac`'s own.
    pub fn free_for(&self, ip: Ipv4Address, mac: EthernetAddress, now: Instant) -> bool {
        self.entry(ip, now)
            .is_none_or(|e| e.mac == mac && e.standing != Standing::Declined)
    }

    /// Records `ip` as `standing` for `mac` until `expires`. Any other entry of `mac` ends
    /// (one address per MAC), and so does any entry another MAC had for `ip`; returns the
    /// addresses whose *bound* lease ended that way.
    pub fn put(
        &mut self,
        ip: Ipv4Address,
        mac: EthernetAddress,
        standing: Standing,
        expires: Instant,
        now: Instant,
    ) -> [Option<Ipv4Address>; 2] {
        let mut ended = [None, None];
        if let Some(&previous) = self.by_mac.get(&mac.0) {
            if previous != ip.to_bits() {
                ended[0] = self.remove(Ipv4Address::from_bits(previous), now);
            }
        }
        if let Some(other) = self.by_ip.get(&ip.to_bits()).copied() {
            if other.mac != mac {
                ended[1] = self.remove(ip, now);
            }
        }
        let last_seen = now;
        self.by_ip.insert(
            ip.to_bits(),
            Entry {
                ip,
                mac,
                standing,
                expires,
                last_seen,
            },
        );
        if standing == Standing::Declined {
            if self.by_mac.get(&mac.0) == Some(&ip.to_bits()) {
                self.by_mac.remove(&mac.0);
            }
        } else {
            self.by_mac.insert(mac.0, ip.to_bits());
        }
        ended
    }

    /// Removes `ip`'s entry; returns `ip` if it was a live bound lease (whose holder's
    /// states must go).
    pub fn remove(&mut self, ip: Ipv4Address, now: Instant) -> Option<Ipv4Address> {
        let entry = self.by_ip.remove(&ip.to_bits())?;
        if self.by_mac.get(&entry.mac.0) == Some(&ip.to_bits()) {
            self.by_mac.remove(&entry.mac.0);
        }
        (entry.standing == Standing::Bound && entry.live(now)).then_some(ip)
    }

    /// Notes that the holder of `ip` sent a packet at `now` (an active client keeps its
    /// lease when the pool runs out).
    pub fn seen(&mut self, ip: Ipv4Address, now: Instant) {
        if let Some(entry) = self.by_ip.get_mut(&ip.to_bits()) {
            entry.last_seen = now;
        }
    }

    /// Removes entries that ended before `now`; returns the addresses of bound leases that
    /// expired (their holders' states must go). Visits every entry: call it seldom.
    pub fn expire(&mut self, now: Instant) -> alloc::vec::Vec<Ipv4Address> {
        let ended: alloc::vec::Vec<Entry> = self
            .by_ip
            .values()
            .filter(|e| !e.live(now))
            .copied()
            .collect();
        for entry in &ended {
            self.by_ip.remove(&entry.ip.to_bits());
            if self.by_mac.get(&entry.mac.0) == Some(&entry.ip.to_bits()) {
                self.by_mac.remove(&entry.mac.0);
            }
        }
        ended
            .iter()
            .filter(|e| e.standing == Standing::Bound)
            .map(|e| e.ip)
            .collect()
    }

    /// The live entries, by address.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.by_ip.values()
    }

    /// How many entries the table holds (live or not yet swept).
    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    /// Whether the table holds no entry.
    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::time::Duration;

    const A: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0xa]);
    const B: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0xb]);

    fn ip(last: u8) -> Ipv4Address {
        Ipv4Address::new(10, 137, 1, last)
    }

    fn at(secs: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(secs)
    }

    #[test]
    fn a_mac_holds_one_address_and_moving_ends_the_old_lease() {
        let mut table = LeaseTable::default();
        table.put(ip(100), A, Standing::Bound, at(60), at(0));
        let ended = table.put(ip(101), A, Standing::Bound, at(60), at(1));
        assert_eq!(ended, [Some(ip(100)), None]);
        assert_eq!(table.holder(ip(100), at(1)), None);
        assert_eq!(table.holder(ip(101), at(1)), Some(A));
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn a_lease_binds_only_until_it_expires() {
        let mut table = LeaseTable::default();
        table.put(ip(100), A, Standing::Bound, at(60), at(0));
        assert_eq!(table.holder(ip(100), at(59)), Some(A));
        assert_eq!(table.holder(ip(100), at(60)), None);
        assert!(table.free_for(ip(100), B, at(60)));
        assert_eq!(table.expire(at(60)), [ip(100)]);
        assert!(table.is_empty());
    }

    #[test]
    fn an_offer_binds_nothing_and_a_declined_address_is_nobodys() {
        let mut table = LeaseTable::default();
        table.put(ip(100), A, Standing::Offered, at(30), at(0));
        assert_eq!(table.holder(ip(100), at(1)), None);
        assert!(!table.free_for(ip(100), B, at(1)));
        table.put(ip(100), A, Standing::Declined, at(600), at(2));
        assert!(!table.free_for(ip(100), A, at(3)));
        assert_eq!(table.of_mac(A, at(3)), None);
    }
}
