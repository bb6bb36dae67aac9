//! SLAAC on the uplink (RFC 4862, RFC 4861 §6.3.4, RFC 8106): what a router advertisement
//! on a `slaac` interface changes — addresses formed from its autonomous /64 prefixes, the
//! default router, the DNS servers of its RDNSS option — and the router solicitations that
//! ask for one.
//!
//! Solicitations go out once the link-local address passed DAD, [`SOLICIT_INTERVAL`] apart
//! up to [`MAX_SOLICITATIONS`] times, then every [`SOLICIT_BACKOFF`] for as long as no
//! router is known (so an upstream router that starts later, or comes back after its
//! lifetime ran out, is found without waiting for its next periodic advertisement).

use alloc::vec::Vec;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, Ipv6Address, Ipv6Cidr, NdiscPrefixInfoFlags, NdiscPrefixInformation,
};

use super::address::{is_link_local, slaac_address, Addresses, Origin};
use super::wire::{RaOptions, Rdnss};

/// Time between the first router solicitations (RFC 4861's `RTR_SOLICITATION_INTERVAL`).
pub const SOLICIT_INTERVAL: Duration = Duration::from_secs(4);
/// Solicitations sent quickly (RFC 4861's `MAX_RTR_SOLICITATIONS`).
pub const MAX_SOLICITATIONS: u8 = 3;
/// Time between later solicitations while no router is known.
pub const SOLICIT_BACKOFF: Duration = Duration::from_secs(60);
/// At most this many SLAAC addresses on the uplink at once: advertisements of ever new
/// prefixes (a hostile host on the uplink's link) cannot grow the list without bound.
pub const MAX_ADDRESSES: usize = 4;
/// RFC 4862 §5.5.3 e): a received valid lifetime shorter than this cannot shorten an
/// address's remaining lifetime below it (an unauthenticated RA cannot kill an address).
const TWO_HOURS: Duration = Duration::from_secs(2 * 3600);

/// What a router advertisement or the passing of time changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SlaacChange {
    /// New addresses (tentative: DAD follows).
    pub added: Vec<Ipv6Cidr>,
    /// Addresses whose valid lifetime ran out.
    pub removed: Vec<Ipv6Cidr>,
    /// The default router changed (to this, or to none).
    pub router: Option<Option<Ipv6Address>>,
    /// The DNS servers changed.
    pub dns: bool,
    /// Autonomous prefixes not used: [`MAX_ADDRESSES`] addresses were in use already.
    pub ignored: Vec<Ipv6Address>,
}

/// The uplink's SLAAC state. See the module documentation.
#[derive(Debug)]
pub struct Slaac {
    mac: EthernetAddress,
    router: Option<(Ipv6Address, Instant)>,
    dns: Vec<Ipv6Address>,
    dns_until: Instant,
    mtu: Option<u32>,
    solicitations: u8,
    next_solicit: Option<Instant>,
}

impl Slaac {
    /// The SLAAC state of a NIC with `mac`; it solicits once [`Slaac::start`] is called.
    pub fn new(mac: EthernetAddress) -> Slaac {
        Slaac {
            mac,
            router: None,
            dns: Vec::new(),
            dns_until: Instant::ZERO,
            mtu: None,
            solicitations: 0,
            next_solicit: None,
        }
    }

    /// Starts soliciting (the link-local address can be the source now).
    pub fn start(&mut self, now: Instant) {
        if self.next_solicit.is_none() {
            self.next_solicit = Some(now);
        }
    }

    /// The default router, if one is known.
    pub fn router(&self) -> Option<Ipv6Address> {
        self.router.map(|(router, _)| router)
    }

    /// The DNS servers of the last RDNSS option, while its lifetime lasts.
    pub fn dns(&self) -> &[Ipv6Address] {
        &self.dns
    }

    /// The link MTU the router announced, if any.
    pub fn mtu(&self) -> Option<u32> {
        self.mtu
    }

    /// Whether a router solicitation is due now; if so, the next one is scheduled.
    pub fn solicit_due(&mut self, now: Instant) -> bool {
        match self.next_solicit {
            Some(at) if at <= now && self.router.is_none() => {
                self.solicitations = self.solicitations.saturating_add(1);
                let wait = if self.solicitations < MAX_SOLICITATIONS {
                    SOLICIT_INTERVAL
                } else {
                    SOLICIT_BACKOFF
                };
                self.next_solicit = Some(now + wait);
                true
            }
            _ => false,
        }
    }

    /// Applies a router advertisement from `router` (link-local) with `router_lifetime` and
    /// `options`, forming addresses in `addresses`.
    pub fn advertised(
        &mut self,
        router: Ipv6Address,
        router_lifetime: Duration,
        options: &RaOptions,
        addresses: &mut Addresses,
        now: Instant,
    ) -> SlaacChange {
        let mut change = SlaacChange::default();
        let before = self.router();
        if router_lifetime > Duration::ZERO {
            // The newest advertising router is the default one (RFC 4861 lets a host
            // choose; one uplink router is the common case).
            self.router = Some((router, now + router_lifetime));
        } else if before == Some(router) {
            self.router = None;
        }
        if self.router() != before {
            change.router = Some(self.router());
        }
        if self.router.is_some() {
            self.solicitations = 0;
            self.next_solicit = Some(now + SOLICIT_BACKOFF);
        }
        for prefix in &options.prefixes {
            self.prefix(prefix, addresses, now, &mut change);
        }
        if let Some(Rdnss { lifetime, servers }) = &options.rdnss {
            let servers = if *lifetime == Duration::ZERO {
                Vec::new()
            } else {
                servers.clone()
            };
            self.dns_until = now + *lifetime;
            if servers != self.dns {
                self.dns = servers;
                change.dns = true;
            }
        }
        if let Some(mtu) = options.mtu.filter(|m| (1280..=1500).contains(m)) {
            self.mtu = Some(mtu);
        }
        change
    }

    /// One prefix information option (RFC 4862 §5.5.3).
    fn prefix(
        &mut self,
        info: &NdiscPrefixInformation,
        addresses: &mut Addresses,
        now: Instant,
        change: &mut SlaacChange,
    ) {
        let usable = info.flags.contains(NdiscPrefixInfoFlags::ADDRCONF)
            && info.prefix_len == 64
            && !is_link_local(info.prefix)
            && !info.prefix.is_multicast()
            && info.preferred_lifetime <= info.valid_lifetime;
        if !usable {
            return;
        }
        let address = slaac_address(info.prefix, self.mac);
        let valid = info.valid_lifetime;
        match addresses.get_mut(address) {
            Some(own) => {
                let Origin::Slaac { valid_until } = &mut own.origin else {
                    return;
                };
                let remaining = if *valid_until > now {
                    *valid_until - now
                } else {
                    Duration::ZERO
                };
                if valid > TWO_HOURS || valid > remaining {
                    *valid_until = now + valid;
                } else if remaining > TWO_HOURS {
                    *valid_until = now + TWO_HOURS;
                }
            }
            None if valid > Duration::ZERO => {
                let learned = addresses
                    .iter()
                    .filter(|a| matches!(a.origin, Origin::Slaac { .. }))
                    .count();
                if learned >= MAX_ADDRESSES {
                    change.ignored.push(info.prefix);
                    return;
                }
                let cidr = Ipv6Cidr::new(address, 64);
                let origin = Origin::Slaac {
                    valid_until: now + valid,
                };
                if addresses.add(cidr, origin, now) {
                    change.added.push(cidr);
                }
            }
            None => {}
        }
    }

    /// Expires the router, the DNS servers and addresses whose lifetimes ran out.
    pub fn expire(&mut self, addresses: &mut Addresses, now: Instant) -> SlaacChange {
        let mut change = SlaacChange::default();
        if self.router.is_some_and(|(_, until)| until <= now) {
            self.router = None;
            change.router = Some(None);
            self.solicitations = 0;
            self.next_solicit = Some(now);
        }
        if !self.dns.is_empty() && self.dns_until <= now {
            self.dns.clear();
            change.dns = true;
        }
        let expired: Vec<Ipv6Address> = addresses
            .iter()
            .filter(|a| matches!(a.origin, Origin::Slaac { valid_until } if valid_until <= now))
            .map(|a| a.cidr.address())
            .collect();
        for address in expired {
            if let Some(own) = addresses.remove(address) {
                change.removed.push(own.cidr);
            }
        }
        change
    }

    /// The earliest time [`Slaac::expire`] or a solicitation has work to do.
    pub fn next_deadline(&self, addresses: &Addresses) -> Option<Instant> {
        let solicit = self.next_solicit.filter(|_| self.router.is_none());
        let router = self.router.map(|(_, until)| until);
        let dns = (!self.dns.is_empty()).then_some(self.dns_until);
        let lifetimes = addresses.iter().filter_map(|a| match a.origin {
            Origin::Slaac { valid_until } => Some(valid_until),
            _ => None,
        });
        [solicit, router, dns]
            .into_iter()
            .flatten()
            .chain(lifetimes)
            .min()
    }
}
