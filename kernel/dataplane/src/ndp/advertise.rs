//! Router advertisements on a client interface (`ra` in the ruleset; RFC 4861 §6.2).
//!
//! Once the interface's link-local address passed DAD, the appliance advertises itself
//! [`INITIAL_ADVERTS`] times [`INITIAL_INTERVAL`] apart, then every [`MIN_INTERVAL`] to
//! [`MAX_INTERVAL`] (random), and in answer to router solicitations — at most one
//! advertisement per [`MIN_DELAY_BETWEEN_RAS`], so a client's flood of solicitations
//! cannot make it flood the link. Each advertisement carries the interface's /64 prefix
//! (on-link, autonomous), its MTU, the NIC's MAC and, when the appliance redirects the
//! interface's DNS, its own address as resolver (RDNSS). A query to that address goes to
//! an upstream resolver of either family (crossing families if it must), so for a
//! redirect `to upstream` the resolver is named only while the uplink knows one: without
//! one the query would go unanswered. A resolver that goes away is
//! withdrawn at once (an RDNSS option with lifetime zero, RFC 8106 §5.1); one that comes
//! is announced at once, both within the rate limit.

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, Ipv6Address, Ipv6Cidr, NdiscPrefixInfoFlags, NdiscPrefixInformation,
    NdiscRepr, NdiscRouterFlags,
};

use super::address::network;
use crate::rng::SplitMix64;

/// Advertisements sent quickly after start (RFC 4861's `MAX_INITIAL_RTR_ADVERTISEMENTS`).
pub const INITIAL_ADVERTS: u8 = 3;
/// Time between them (at most RFC 4861's `MAX_INITIAL_RTR_ADVERT_INTERVAL`, 16 s).
pub const INITIAL_INTERVAL: Duration = Duration::from_secs(4);
/// Shortest time between periodic advertisements (RFC 4861's default `MinRtrAdvInterval`).
pub const MIN_INTERVAL: Duration = Duration::from_secs(200);
/// Longest time between periodic advertisements (RFC 4861's default `MaxRtrAdvInterval`).
pub const MAX_INTERVAL: Duration = Duration::from_secs(600);
/// Shortest time between two advertisements (RFC 4861's `MIN_DELAY_BETWEEN_RAS`).
pub const MIN_DELAY_BETWEEN_RAS: Duration = Duration::from_secs(3);
/// Router lifetime advertised (RFC 4861's default, 3 × `MaxRtrAdvInterval`).
pub const ROUTER_LIFETIME: Duration = Duration::from_secs(1800);
/// Valid lifetime of the advertised prefix (RFC 4861's default).
pub const PREFIX_VALID: Duration = Duration::from_secs(30 * 24 * 3600);
/// Preferred lifetime of the advertised prefix (RFC 4861's default).
pub const PREFIX_PREFERRED: Duration = Duration::from_secs(7 * 24 * 3600);
/// Lifetime of the advertised resolver (RFC 8106: between `MaxRtrAdvInterval` and twice
/// it).
pub const RDNSS_LIFETIME: Duration = Duration::from_secs(1200);
/// The hop limit clients are told to use.
pub const CUR_HOP_LIMIT: u8 = 64;

/// What an interface advertises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvertContent {
    /// The on-link /64 prefix.
    pub prefix: Ipv6Cidr,
    /// The link MTU.
    pub mtu: u16,
    /// The resolver to announce (the appliance's own address), if it answers DNS here.
    pub resolver: Option<Ipv6Address>,
}

/// Whether the advertisements name the resolver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Announced {
    /// No: no upstream resolver to redirect to (and none was announced).
    No,
    /// Yes, with [`RDNSS_LIFETIME`].
    Yes,
    /// It was announced and is gone: the next advertisement withdraws it.
    Withdrawing,
}

/// The advertising schedule of one interface. See the module documentation.
#[derive(Debug)]
pub struct Advertiser {
    content: AdvertContent,
    announced: Announced,
    sent: u8,
    next: Option<Instant>,
    last: Option<Instant>,
}

impl Advertiser {
    /// An advertiser of `content`, silent until [`Advertiser::start`].
    pub fn new(content: AdvertContent) -> Advertiser {
        Advertiser {
            content,
            announced: Announced::No,
            sent: 0,
            next: None,
            last: None,
        }
    }

    /// What it advertises.
    pub fn content(&self) -> &AdvertContent {
        &self.content
    }

    /// Whether an upstream resolver is there to redirect queries to (see the module
    /// documentation): a change is advertised as soon as the rate limit allows.
    pub fn set_upstream_resolver(&mut self, known: bool, now: Instant) {
        if self.content.resolver.is_none() {
            return;
        }
        let announced = match (known, self.announced) {
            (true, Announced::Yes) | (false, Announced::No | Announced::Withdrawing) => return,
            (true, _) => Announced::Yes,
            (false, Announced::Yes) => Announced::Withdrawing,
        };
        self.announced = announced;
        self.solicited(now);
    }

    /// The RDNSS option of the advertisement being sent, if it carries one: the resolver
    /// and its lifetime (zero to withdraw it, once).
    pub fn rdnss(&mut self) -> Option<(Duration, Ipv6Address)> {
        let resolver = self.content.resolver?;
        match self.announced {
            Announced::No => None,
            Announced::Yes => Some((RDNSS_LIFETIME, resolver)),
            Announced::Withdrawing => {
                self.announced = Announced::No;
                Some((Duration::ZERO, resolver))
            }
        }
    }

    /// Starts advertising (the link-local address passed DAD).
    pub fn start(&mut self, now: Instant) {
        if self.next.is_none() {
            self.next = Some(now);
        }
    }

    /// A router solicitation arrived: advertise as soon as the rate limit allows.
    pub fn solicited(&mut self, now: Instant) {
        let Some(next) = self.next else {
            return; // not started: the first advertisement follows DAD anyway
        };
        let earliest = self.last.map_or(now, |last| last + MIN_DELAY_BETWEEN_RAS);
        let at = if earliest > now { earliest } else { now };
        if at < next {
            self.next = Some(at);
        }
    }

    /// Whether an advertisement is due now; if so, it counts as sent and the next one is
    /// scheduled.
    pub fn due(&mut self, now: Instant, rng: &mut SplitMix64) -> bool {
        match self.next {
            Some(at) if at <= now => {
                self.sent = self.sent.saturating_add(1);
                self.last = Some(now);
                let wait = if self.sent < INITIAL_ADVERTS {
                    INITIAL_INTERVAL
                } else {
                    let spread = (MAX_INTERVAL - MIN_INTERVAL).total_millis();
                    MIN_INTERVAL + Duration::from_millis(rng.below(spread + 1))
                };
                self.next = Some(now + wait);
                true
            }
            _ => false,
        }
    }

    /// When the next advertisement is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.next
    }

    /// The advertisement, from a NIC with `mac`.
    pub fn message(&self, mac: EthernetAddress) -> NdiscRepr<'static> {
        NdiscRepr::RouterAdvert {
            hop_limit: CUR_HOP_LIMIT,
            flags: NdiscRouterFlags::empty(),
            router_lifetime: ROUTER_LIFETIME,
            reachable_time: Duration::ZERO,
            retrans_time: Duration::ZERO,
            lladdr: Some(mac.into()),
            mtu: Some(u32::from(self.content.mtu)),
            prefix_info: Some(NdiscPrefixInformation {
                prefix_len: self.content.prefix.prefix_len(),
                flags: NdiscPrefixInfoFlags::ON_LINK | NdiscPrefixInfoFlags::ADDRCONF,
                valid_lifetime: PREFIX_VALID,
                preferred_lifetime: PREFIX_PREFERRED,
                prefix: network(self.content.prefix).address(),
            }),
        }
    }
}
