//! IPv6 neighbour discovery (RFC 4861) and address autoconfiguration (RFC 4862): the
//! appliance's IPv6 addresses on each NIC, resolving next hops, and its router duties.
//!
//! [`NeighborDiscovery`] is one for the whole appliance. The forward path hands it every
//! ND message it receives ([`NeighborDiscovery::receive`]), asks it for next hops'
//! MACs ([`NeighborDiscovery::next_hop_mac`]) and runs its timers
//! ([`NeighborDiscovery::poll`]). What it guarantees:
//!
//! - **Addresses.** Every NIC whose interface has IPv6 (`address6` or `slaac`) has a
//!   link-local address made from its MAC ([`address::link_local`]); static addresses come
//!   from the ruleset, SLAAC addresses from the uplink's router advertisements
//!   ([`slaac`]). Each passes duplicate address detection before the appliance answers for
//!   it or sends from it ([`address`]); one that someone else has is never used, and the
//!   console says so.
//! - **Answers.** Neighbour solicitations for a usable address of the NIC they arrive on
//!   are answered (whether sent to the address, its solicited-node group or all nodes);
//!   nothing else is (no proxy ND).
//! - **Resolution.** Next hops are resolved with solicitations to their solicited-node
//!   group, through the neighbour table shared with ARP ([`crate::neighbor`]: reachable,
//!   stale, probe, incomplete, bounded queues); queued packets are sent by this module
//!   when the answer comes. Multicast, broadcast and zero MACs are never learned.
//! - **Router duties.** Router advertisements on `ra` interfaces ([`advertise`]), periodic
//!   and in answer to solicitations (rate-limited).
//! - **Guards.** Router advertisements are accepted only on a `slaac` uplink: on a client
//!   interface they are dropped ([`NdDrop::RaFromClient`], RA guard). On a client
//!   interface a neighbour advertisement (or a solicitation's sender) may only claim an
//!   address the sender can have: a link-local one, or one in the interface's prefix that
//!   is neither the appliance's nor another declared client's — and a declared client's
//!   binding to its MAC holds while it is fresh, so a neighbour cannot take it over.
//!   Messages that fail are dropped with an [`NdDrop`] for the caller to count and log.

pub mod address;
pub mod advertise;
pub mod slaac;
pub mod wire;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Ipv6Address, Ipv6Cidr,
    NdiscNeighborFlags, NdiscRepr, ETHERNET_HEADER_LEN, IPV6_LINK_LOCAL_ALL_NODES,
    IPV6_LINK_LOCAL_ALL_ROUTERS,
};

use crate::arp::is_station;
use crate::neighbor::{Enqueued, NeighborTable, Resolution};
use crate::policy::{DnsUpstream, Ipv6Config, Policy};
use crate::ratelimit::TokenBucket;
use crate::rng::SplitMix64;
use crate::share::SourceClass;
use crate::sink::FrameSink;

use address::{
    is_link_local, link_local, multicast_mac, solicited_node, Addresses, DadState, Origin,
};
use advertise::{AdvertContent, Advertiser};
use slaac::{Slaac, SlaacChange};
use wire::{advert, solicit, NdError, NdFrame, Outgoing, RaOptions};

/// What [`NeighborDiscovery::receive`] did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NdOutcome {
    /// Not an ND message: the caller goes on with it.
    NotNd,
    /// Taken care of (answered, learned, or ignored as RFC 4861 says).
    Handled,
    /// Refused: the caller counts it (and logs it when [`NdDrop::is_logged`]).
    Dropped(NdDrop),
}

/// Why an ND message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NdDrop {
    /// It fails RFC 4861's validity checks (the text names the check).
    Invalid(&'static str),
    /// The NIC has no IPv6.
    NoIpv6,
    /// A router advertisement on an interface that does not take them (RA guard).
    RaFromClient,
    /// A client claims an address outside its interface's prefix.
    ForeignTarget,
    /// A client claims another declared client's address (or one bound to another MAC).
    ClientAddressTaken,
    /// A neighbour claims one of the appliance's own addresses.
    ClaimsApplianceAddress,
}

impl NdDrop {
    /// The detail the drop log and counters show.
    pub fn as_str(&self) -> &'static str {
        match self {
            NdDrop::Invalid(what) => what,
            NdDrop::NoIpv6 => "nd-no-ipv6",
            NdDrop::RaFromClient => "ra-guard",
            NdDrop::ForeignTarget => "nd-target-outside-prefix",
            NdDrop::ClientAddressTaken => "nd-target-of-another-client",
            NdDrop::ClaimsApplianceAddress => "nd-target-is-the-appliance",
        }
    }

    /// Whether the drop is security-relevant and logged (everything but a NIC without
    /// IPv6, which is only counted).
    pub fn is_logged(&self) -> bool {
        !matches!(self, NdDrop::NoIpv6)
    }
}

/// Where a packet for a next hop goes ([`NeighborDiscovery::next_hop_mac`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextHop {
    /// Send it to this MAC now.
    Resolved(EthernetAddress),
    /// Queued until the next hop answers; this module sends it then.
    Queued,
    /// Dropped (no IPv6 on the NIC, or a queue bound reached).
    Dropped,
}

/// Whose packet waits for a resolution, for the queues' shares ([`crate::share`]): a
/// neighbour on a NIC (`Neighbour(nic, address)`), or all the addresses behind a router on
/// a NIC together (`Remote(nic)`).
pub type SourceClass6 = SourceClass<Ipv6Address>;

/// A change the forward path must follow (routes, anti-spoofing, NAT, DNS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NdEvent {
    /// A new address on `nic` (a SLAAC address, tentative while DAD runs).
    AddressAdded {
        /// The NIC.
        nic: u8,
        /// The address and its prefix.
        cidr: Ipv6Cidr,
    },
    /// An address is gone (its lifetime ran out, or DAD found it in use).
    AddressRemoved {
        /// The NIC.
        nic: u8,
        /// The address and its prefix.
        cidr: Ipv6Cidr,
    },
    /// The default router on `nic` changed.
    GatewayChanged {
        /// The NIC.
        nic: u8,
        /// The new router, or none.
        gateway: Option<Ipv6Address>,
    },
    /// The uplink's DNS servers changed ([`NeighborDiscovery::dns_servers`]).
    DnsChanged,
    /// A next hop never answered: `dropped` packets waiting for it were dropped.
    Unreachable {
        /// The NIC.
        nic: u8,
        /// How many packets.
        dropped: usize,
    },
}

/// A neighbour advertisement's fields, as [`NeighborDiscovery::receive`] hands them on.
struct NeighborAdvert {
    flags: NdiscNeighborFlags,
    target: Ipv6Address,
    lladdr: Option<smoltcp::wire::RawHardwareAddress>,
}

/// One NIC's IPv6 state.
#[derive(Debug)]
struct NdNic {
    mac: EthernetAddress,
    /// Whether the interface has IPv6 at all.
    enabled: bool,
    /// Whether it is the uplink (no client guards; RAs accepted with `slaac`).
    uplink: bool,
    addresses: Addresses,
    static_gateway: Option<Ipv6Address>,
    slaac: Option<Slaac>,
    advertiser: Option<Advertiser>,
    /// Whether the advertised resolver comes and goes with the upstream resolvers (a
    /// `to upstream` redirect), rather than being always there (a static list).
    resolver_follows_upstream: bool,
}

impl NdNic {
    /// Whether `addr` is on this NIC's link: link-local, or in one of its prefixes.
    fn on_link(&self, addr: Ipv6Address) -> bool {
        is_link_local(addr)
            || self
                .addresses
                .iter()
                .any(|a| !matches!(a.state, DadState::Duplicate(_)) && a.cidr.contains_addr(&addr))
    }

    /// The address to send a solicitation for `target` from: a usable one in its prefix,
    /// else the link-local one if usable.
    fn source_for(&self, target: Ipv6Address) -> Option<Ipv6Address> {
        let usable = || self.addresses.iter().filter(|a| a.is_preferred());
        usable()
            .find(|a| a.origin != Origin::LinkLocal && a.cidr.contains_addr(&target))
            .or_else(|| usable().find(|a| a.origin == Origin::LinkLocal))
            .map(|a| a.cidr.address())
    }

    /// The link-local address, if usable.
    fn usable_link_local(&self) -> Option<Ipv6Address> {
        self.addresses
            .iter()
            .find(|a| a.origin == Origin::LinkLocal && a.is_preferred())
            .map(|a| a.cidr.address())
    }

    fn gateway(&self) -> Option<Ipv6Address> {
        self.static_gateway
            .or_else(|| self.slaac.as_ref().and_then(Slaac::router))
    }
}

/// The appliance's neighbour discovery. See the module documentation.
#[derive(Debug)]
pub struct NeighborDiscovery {
    nics: Vec<NdNic>,
    cache: NeighborTable<Ipv6Address>,
    /// `(nic, address)` of every declared client with an IPv6 address, sorted.
    declared: Vec<(u8, Ipv6Address)>,
    /// The MACs the ruleset pins declared clients to (`client ... mac M`), by `(nic,
    /// address)`, sorted.
    pinned: Vec<((u8, Ipv6Address), EthernetAddress)>,
    /// Neighbours set by [`NeighborDiscovery::learn_static`]: never solicited, never
    /// expire, never rebound.
    statics: BTreeMap<(u8, Ipv6Address), EthernetAddress>,
    events: Vec<NdEvent>,
    rng: SplitMix64,
    /// The console lines of SLAAC changes: advertisements are the uplink neighbours' to
    /// send, so their lines are rate-limited.
    console: TokenBucket,
}

/// SLAAC console lines per second, and in a burst.
const CONSOLE_RATE: (u32, u32) = (1, 10);

impl NeighborDiscovery {
    /// Neighbour discovery for NICs with `macs` (in NIC order) as `policy` declares them,
    /// started at `now`. Static and link-local addresses are known at once (tentative:
    /// DAD starts at the first [`NeighborDiscovery::poll`]).
    pub fn from_policy(
        policy: &Policy,
        macs: &[EthernetAddress],
        seed: u64,
        now: Instant,
    ) -> NeighborDiscovery {
        let nics = macs
            .iter()
            .enumerate()
            .map(|(i, &mac)| nic_from_policy(policy, i as u8, mac, now))
            .collect();
        let mut declared: Vec<(u8, Ipv6Address)> = policy
            .clients
            .iter()
            .filter_map(|c| Some((c.nic, Ipv6Address::from_bits(c.ipv6?))))
            .collect();
        declared.sort_unstable();
        let mut pinned: Vec<((u8, Ipv6Address), EthernetAddress)> = policy
            .clients
            .iter()
            .filter_map(|c| {
                let key = (c.nic, Ipv6Address::from_bits(c.ipv6?));
                Some((key, EthernetAddress(c.mac?)))
            })
            .collect();
        pinned.sort_unstable();
        let mut nd = NeighborDiscovery {
            nics,
            cache: NeighborTable::new(),
            declared,
            pinned,
            statics: BTreeMap::new(),
            events: Vec::new(),
            rng: SplitMix64::new(seed),
            console: TokenBucket::new(CONSOLE_RATE.0, CONSOLE_RATE.1),
        };
        nd.refresh_configured();
        nd
    }

    /// Tells the neighbour table the configured next hops — every NIC's default router and
    /// the declared clients — whose resolution is outside the sources' shares, so that no
    /// flood of unresolvable destinations can starve it; and which are the routers, which
    /// the frames they forward confirm.
    fn refresh_configured(&mut self) {
        let routers = self
            .nics
            .iter()
            .enumerate()
            .filter_map(|(i, n)| Some((i as u8, n.gateway()?)));
        let routers: Vec<_> = routers.collect();
        let keys = routers
            .iter()
            .copied()
            .chain(self.declared.iter().copied())
            .collect();
        self.cache.set_configured(keys);
        self.cache.set_routers(routers);
    }

    /// The addresses of `nic` that are not known to be duplicates (link-local first; the
    /// ones still in DAD included, so that routing knows the prefixes at once).
    pub fn addresses(&self, nic: u8) -> impl Iterator<Item = Ipv6Cidr> + '_ {
        self.nics
            .get(nic as usize)
            .into_iter()
            .flat_map(|n| n.addresses.iter())
            .filter(|a| !matches!(a.state, DadState::Duplicate(_)))
            .map(|a| a.cidr)
    }

    /// Whether `addr` is one of the appliance's addresses on `nic` (DAD running or passed).
    pub fn is_own(&self, nic: u8, addr: Ipv6Address) -> bool {
        self.addresses(nic).any(|c| c.address() == addr)
    }

    /// The link-local address of `nic`, once it passed DAD.
    pub fn link_local(&self, nic: u8) -> Option<Ipv6Address> {
        self.nics.get(nic as usize)?.usable_link_local()
    }

    /// The default router on `nic` (`gateway6`, or learned from router advertisements).
    pub fn gateway(&self, nic: u8) -> Option<Ipv6Address> {
        self.nics.get(nic as usize)?.gateway()
    }

    /// Whether `addr` is on `nic`'s link (link-local, or inside one of its prefixes).
    pub fn on_link(&self, nic: u8, addr: Ipv6Address) -> bool {
        self.nics
            .get(nic as usize)
            .is_some_and(|n| n.enabled && n.on_link(addr))
    }

    /// The IPv6 neighbour table's `(entries, queued packets, neighbours resolving)`, for
    /// [`crate::appliance::Footprint`].
    pub fn cache_footprint(&self) -> (usize, usize, usize) {
        (
            self.cache.len(),
            self.cache.pending(),
            self.cache.resolving(),
        )
    }

    /// The DNS servers learned on the uplink (RDNSS).
    pub fn dns_servers(&self) -> &[Ipv6Address] {
        self.nics
            .iter()
            .find_map(|n| n.slaac.as_ref())
            .map_or(&[], Slaac::dns)
    }

    /// The changes since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<NdEvent> {
        core::mem::take(&mut self.events)
    }

    /// The MAC neighbour `addr` on `nic` is known at now (a static entry, or a live cache
    /// entry): what a declared client's sticky binding is checked against.
    pub fn neighbor_mac(
        &self,
        nic: u8,
        addr: Ipv6Address,
        now: Instant,
    ) -> Option<EthernetAddress> {
        self.statics
            .get(&(nic, addr))
            .copied()
            .or_else(|| self.cache.lookup((nic, addr), now))
    }

    /// A declared client's packet from `mac` renews its binding there, as its
    /// advertisements do (an active client keeps its address).
    pub fn confirm(&mut self, nic: u8, addr: Ipv6Address, mac: EthernetAddress, now: Instant) {
        self.cache.confirm((nic, addr), mac, now);
    }

    /// A frame from `mac` came in on `nic`: a default router known at that MAC is there
    /// (see [`NeighborTable::saw_frame_from`]).
    pub fn saw_frame_from(&mut self, nic: u8, mac: EthernetAddress, now: Instant) {
        self.cache.saw_frame_from(nic, mac, now);
    }

    /// Sets `addr` on `nic` at `mac` for good: packets go there without solicitation, and
    /// no advertisement rebinds it (tests; neighbours a ruleset pins).
    pub fn learn_static(&mut self, nic: u8, addr: Ipv6Address, mac: EthernetAddress) {
        self.statics.insert((nic, addr), mac);
    }

    /// Processes a frame that arrived on `nic`: an ND message is answered, learned from,
    /// or refused; anything else is [`NdOutcome::NotNd`].
    pub fn receive(
        &mut self,
        nic: u8,
        frame: &[u8],
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> NdOutcome {
        let nd = match NdFrame::parse(frame) {
            Ok(nd) => nd,
            Err(NdError::NotNd) => return NdOutcome::NotNd,
            Err(NdError::Invalid(what)) => return NdOutcome::Dropped(NdDrop::Invalid(what)),
        };
        if !self.nics.get(nic as usize).is_some_and(|n| n.enabled) {
            return NdOutcome::Dropped(NdDrop::NoIpv6);
        }
        let result = match nd.message {
            NdiscRepr::NeighborSolicit {
                target_addr,
                lladdr,
            } => self.neighbor_solicit(
                nic,
                &nd,
                target_addr,
                lladdr.and_then(wire::ethernet),
                now,
                sink,
            ),
            NdiscRepr::NeighborAdvert {
                flags,
                target_addr,
                lladdr,
            } => {
                let received = NeighborAdvert {
                    flags,
                    target: target_addr,
                    lladdr,
                };
                self.neighbor_advert(nic, &nd, received, now, sink)
            }
            NdiscRepr::RouterAdvert {
                router_lifetime, ..
            } => self.router_advert(nic, &nd, router_lifetime, now, sink),
            NdiscRepr::RouterSolicit { .. } => {
                if let Some(advertiser) = &mut self.nics[nic as usize].advertiser {
                    advertiser.solicited(now);
                }
                Ok(())
            }
            // A router follows no redirects (RFC 4861 §8.3 is for hosts).
            NdiscRepr::Redirect { .. } => Ok(()),
        };
        match result {
            Ok(()) => NdOutcome::Handled,
            Err(drop) => NdOutcome::Dropped(drop),
        }
    }

    fn neighbor_solicit(
        &mut self,
        nic: u8,
        nd: &NdFrame,
        target: Ipv6Address,
        sender_mac: Option<EthernetAddress>,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Result<(), NdDrop> {
        if target.is_multicast() {
            return Err(NdDrop::Invalid("nd-target-multicast"));
        }
        let dad = nd.src.is_unspecified();
        if dad && (nd.dst != solicited_node(target) || sender_mac.is_some()) {
            return Err(NdDrop::Invalid("nd-dad-malformed"));
        }
        let state = &mut self.nics[nic as usize];
        let Some(own) = state.addresses.get(target).copied() else {
            // Not ours. The sender may still refresh what we know of it.
            if !dad {
                if let Some(mac) = sender_mac {
                    let bindable = self.may_claim(nic, nd.src, nd.src).is_ok()
                        && self.sticky_client(nic, nd.src, mac, now).is_ok();
                    if bindable {
                        self.release((nic, nd.src), mac, false, now, sink);
                    }
                }
            }
            return Ok(());
        };
        match own.state {
            DadState::Tentative { .. } if dad => {
                self.duplicate(nic, target, None);
                Ok(())
            }
            DadState::Preferred if dad => {
                // Another node wants our address: defend it (to all nodes, RFC 4861 §7.2.4).
                let mac = state.mac;
                Outgoing {
                    eth_src: mac,
                    eth_dst: multicast_mac(IPV6_LINK_LOCAL_ALL_NODES),
                    src: target,
                    dst: IPV6_LINK_LOCAL_ALL_NODES,
                    message: advert(target, mac, false),
                    rdnss: None,
                }
                .send(nic, sink);
                Ok(())
            }
            DadState::Preferred => {
                self.may_claim(nic, nd.src, nd.src)?;
                let reply_to = sender_mac.or(is_station(nd.eth_src).then_some(nd.eth_src));
                let Some(reply_mac) = reply_to else {
                    return Err(NdDrop::Invalid("nd-no-source-link-address"));
                };
                let mac = self.nics[nic as usize].mac;
                Outgoing {
                    eth_src: mac,
                    eth_dst: reply_mac,
                    src: target,
                    dst: nd.src,
                    message: advert(target, mac, true),
                    rdnss: None,
                }
                .send(nic, sink);
                if let Some(sender) = sender_mac {
                    // Answered either way; learned only if the binding may change.
                    self.sticky_client(nic, nd.src, sender, now)?;
                    self.release((nic, nd.src), sender, true, now, sink);
                }
                Ok(())
            }
            // Tentative (not ours yet) or duplicate (never ours): silent.
            DadState::Tentative { .. } | DadState::Duplicate(_) => Ok(()),
        }
    }

    fn neighbor_advert(
        &mut self,
        nic: u8,
        nd: &NdFrame,
        received: NeighborAdvert,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Result<(), NdDrop> {
        let NeighborAdvert {
            flags,
            target,
            lladdr,
        } = received;
        if target.is_multicast() {
            return Err(NdDrop::Invalid("nd-target-multicast"));
        }
        let solicited = flags.contains(NdiscNeighborFlags::SOLICITED);
        if solicited && nd.dst.is_multicast() {
            return Err(NdDrop::Invalid("nd-solicited-to-multicast"));
        }
        let claimant = lladdr.and_then(wire::ethernet).or(Some(nd.eth_src));
        if let Some(own) = self.nics[nic as usize].addresses.get(target).copied() {
            if matches!(own.state, DadState::Tentative { .. }) {
                self.duplicate(nic, target, claimant);
                return Ok(());
            }
            // Logged by the caller's (rate-limited) drop log, like every refusal here.
            return Err(NdDrop::ClaimsApplianceAddress);
        }
        self.may_claim(nic, target, nd.src)?;
        let key = (nic, target);
        let mac = match lladdr {
            Some(raw) => match wire::ethernet(raw) {
                Some(mac) => mac,
                None => return Err(NdDrop::Invalid("nd-link-address-unusable")),
            },
            // Without a target link-layer address only a confirmation of what we know.
            None => match self.cache.mac_of(key) {
                Some(mac) if solicited => mac,
                _ => return Ok(()),
            },
        };
        self.sticky_client(nic, target, mac, now)?;
        let known = self.cache.mac_of(key);
        let overrides = flags.contains(NdiscNeighborFlags::OVERRIDE) || known == Some(mac);
        if solicited && overrides {
            self.release(key, mac, true, now, sink);
        } else if overrides || known.is_none() {
            // Unsolicited: updates an entry we have, creates none (RFC 4861 §7.2.5).
            self.release(key, mac, false, now, sink);
        }
        Ok(())
    }

    fn router_advert(
        &mut self,
        nic: u8,
        nd: &NdFrame,
        router_lifetime: smoltcp::time::Duration,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Result<(), NdDrop> {
        let state = &mut self.nics[nic as usize];
        if !state.uplink {
            return Err(NdDrop::RaFromClient);
        }
        if !is_link_local(nd.src) {
            return Err(NdDrop::Invalid("ra-source-not-link-local"));
        }
        let options = RaOptions::parse(nd.options).map_err(|e| match e {
            NdError::Invalid(what) => NdDrop::Invalid(what),
            NdError::NotNd => NdDrop::Invalid("nd-malformed"),
        })?;
        let Some(slaac) = &mut state.slaac else {
            // A static uplink takes nothing from advertisements.
            return Ok(());
        };
        let change = slaac.advertised(nd.src, router_lifetime, &options, &mut state.addresses, now);
        if let Some(mac) = options.source_mac {
            self.release((nic, nd.src), mac, true, now, sink);
        }
        self.apply(nic, change, now);
        Ok(())
    }

    /// Whether a neighbour on `nic` (sending from `src`) may claim `target`. On the uplink
    /// anything but the appliance's own addresses may be claimed; on a client interface,
    /// see the module documentation.
    fn may_claim(&self, nic: u8, target: Ipv6Address, src: Ipv6Address) -> Result<(), NdDrop> {
        if self.nics.iter().any(|n| n.addresses.get(target).is_some()) {
            return Err(NdDrop::ClaimsApplianceAddress);
        }
        let state = &self.nics[nic as usize];
        if state.uplink || is_link_local(target) {
            return Ok(());
        }
        if let Some(&(owner_nic, _)) = self.declared.iter().find(|(_, a)| *a == target) {
            if owner_nic != nic {
                return Err(NdDrop::ClientAddressTaken);
            }
        }
        if !state.on_link(target) {
            return Err(NdDrop::ForeignTarget);
        }
        let src_is_other_client = src != target && self.declared.iter().any(|(_, a)| *a == src);
        if src_is_other_client && self.declared.binary_search(&(nic, target)).is_ok() {
            return Err(NdDrop::ClientAddressTaken);
        }
        Ok(())
    }

    /// A declared client's address is only ever at the MAC the ruleset pins it to, and
    /// otherwise stays bound to the MAC it was confirmed at while that binding is fresh:
    /// another MAC claiming it is refused.
    fn sticky_client(
        &self,
        nic: u8,
        target: Ipv6Address,
        mac: EthernetAddress,
        now: Instant,
    ) -> Result<(), NdDrop> {
        let key = (nic, target);
        let pinned = self
            .pinned
            .binary_search_by_key(&key, |(k, _)| *k)
            .ok()
            .map(|at| self.pinned[at].1);
        if let Some(pin) = pinned.or_else(|| self.statics.get(&key).copied()) {
            return if pin == mac {
                Ok(())
            } else {
                Err(NdDrop::ClientAddressTaken)
            };
        }
        let declared = self.declared.binary_search(&key).is_ok();
        match self.cache.lookup(key, now) {
            Some(bound) if declared && bound != mac => Err(NdDrop::ClientAddressTaken),
            _ => Ok(()),
        }
    }

    /// Records `mac` for `key` (`create`: even if there is no entry yet) and sends the
    /// packets that were waiting for it.
    fn release(
        &mut self,
        key: (u8, Ipv6Address),
        mac: EthernetAddress,
        create: bool,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) {
        if !is_station(mac) {
            return;
        }
        let waiting = if create {
            self.cache.learn(key, mac, now)
        } else {
            self.cache.refresh(key, mac, now)
        };
        let (nic, _) = key;
        let own_mac = self.nics[nic as usize].mac;
        for packet in waiting {
            send_ipv6(nic, own_mac, mac, &packet, sink);
        }
    }

    /// DAD found `addr` on `nic` in use (at `mac`, if known).
    fn duplicate(&mut self, nic: u8, addr: Ipv6Address, mac: Option<EthernetAddress>) {
        let state = &mut self.nics[nic as usize];
        let Some(own) = state.addresses.get(addr).copied() else {
            return;
        };
        if !state.addresses.conflict(addr, mac) {
            return;
        }
        match mac {
            Some(mac) => {
                log::warn!("nic{nic} duplicate address {addr} (in use by {mac}): not using it")
            }
            None => log::warn!(
                "nic{nic} duplicate address {addr} (another node is claiming it): not using it"
            ),
        }
        self.events.push(NdEvent::AddressRemoved {
            nic,
            cidr: own.cidr,
        });
    }

    /// Follows what SLAAC changed on `nic`, and says so on the console (rate-limited).
    fn apply(&mut self, nic: u8, change: SlaacChange, now: Instant) {
        for cidr in change.added {
            if self.console.try_take(now) {
                log::info!("nic{nic} slaac: address {cidr}");
            }
            self.events.push(NdEvent::AddressAdded { nic, cidr });
        }
        for cidr in change.removed {
            if self.console.try_take(now) {
                log::info!("nic{nic} slaac: address {cidr} expired");
            }
            self.events.push(NdEvent::AddressRemoved { nic, cidr });
        }
        for prefix in change.ignored {
            if self.console.try_take(now) {
                log::warn!(
                    "nic{nic} slaac: prefix {prefix}/64 ignored: {} addresses are in use already",
                    slaac::MAX_ADDRESSES
                );
            }
        }
        if let Some(gateway) = change.router {
            if self.console.try_take(now) {
                match gateway {
                    Some(router) => log::info!("nic{nic} slaac: default router {router}"),
                    None => log::warn!("nic{nic} slaac: no default router"),
                }
            }
            self.events.push(NdEvent::GatewayChanged { nic, gateway });
            self.refresh_configured();
        }
        if change.dns {
            if self.console.try_take(now) {
                log::info!("nic{nic} slaac: dns {:?}", self.dns_servers());
            }
            self.events.push(NdEvent::DnsChanged);
        }
    }

    /// Whether any upstream resolver (IPv4 or IPv6: a query crosses families if it must)
    /// is known now: the advertisements of the interfaces whose DNS goes `to upstream`
    /// name the appliance as resolver only while one is.
    pub fn set_upstream_resolver(&mut self, known: bool, now: Instant) {
        for nic in self.nics.iter_mut().filter(|n| n.resolver_follows_upstream) {
            if let Some(advertiser) = &mut nic.advertiser {
                advertiser.set_upstream_resolver(known, now);
            }
        }
    }

    /// Where to send an IPv6 packet (`packet`: from its IPv6 header on) for `next_hop` on
    /// `nic`. An unresolved next hop is solicited and the packet queued; this module sends
    /// it when the answer comes. `source`: whose packet it is — a source over its share of
    /// resolutions gives up its own oldest one, or has the packet dropped; the default
    /// routers and declared clients are outside the shares ([`crate::neighbor`]).
    pub fn next_hop_mac(
        &mut self,
        nic: u8,
        next_hop: Ipv6Address,
        packet: &[u8],
        source: SourceClass6,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> NextHop {
        if !self.nics.get(nic as usize).is_some_and(|n| n.enabled) {
            return NextHop::Dropped;
        }
        if let Some(mac) = self.resolved_mac(nic, next_hop, now, sink) {
            return NextHop::Resolved(mac);
        }
        let key = (nic, next_hop);
        match self.cache.enqueue(key, packet, now, source) {
            Enqueued::SendRequest { queued, displaced } => {
                if let Some(((nic, _), dropped)) = displaced {
                    self.events.push(NdEvent::Unreachable { nic, dropped });
                }
                self.solicit(nic, next_hop, None, sink);
                if queued {
                    NextHop::Queued
                } else {
                    NextHop::Dropped
                }
            }
            Enqueued::Queued => NextHop::Queued,
            Enqueued::Dropped => NextHop::Dropped,
        }
    }

    /// The MAC to send a packet for `next_hop` on `nic` to right now, if it is known (a
    /// stale entry is solicited, and used meanwhile); `None` when a packet would have to
    /// wait for a resolution (or the NIC has no IPv6). Nothing is queued: the forward path
    /// asks this before it decides whether a frame leaves as it is (with its offload
    /// metadata) or is finished in software and queued by [`Self::next_hop_mac`].
    pub fn resolved_mac(
        &mut self,
        nic: u8,
        next_hop: Ipv6Address,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Option<EthernetAddress> {
        if !self.nics.get(nic as usize).is_some_and(|n| n.enabled) {
            return None;
        }
        if next_hop.is_multicast() {
            return Some(multicast_mac(next_hop));
        }
        let key = (nic, next_hop);
        if let Some(&mac) = self.statics.get(&key) {
            return Some(mac);
        }
        match self.cache.resolve(key, now) {
            Resolution::Known(to) => Some(to),
            Resolution::Verify(to) => {
                self.solicit(nic, next_hop, Some(to), sink);
                Some(to)
            }
            Resolution::Unknown => None,
        }
    }

    /// Sends a solicitation for `target` on `nic`: to `unicast` (a probe of a known MAC) or
    /// to its solicited-node group. Nothing if the NIC has no usable source address yet.
    fn solicit(
        &self,
        nic: u8,
        target: Ipv6Address,
        unicast: Option<EthernetAddress>,
        sink: &mut dyn FrameSink,
    ) {
        let state = &self.nics[nic as usize];
        let Some(src) = state.source_for(target) else {
            return;
        };
        let (eth_dst, dst) = match unicast {
            Some(mac) => (mac, target),
            None => {
                let group = solicited_node(target);
                (multicast_mac(group), group)
            }
        };
        Outgoing {
            eth_src: state.mac,
            eth_dst,
            src,
            dst,
            message: solicit(target, Some(state.mac)),
            rdnss: None,
        }
        .send(nic, sink);
    }

    /// Runs timers: DAD, router solicitations and advertisements, SLAAC lifetimes, the
    /// neighbour table's retries and probes.
    pub fn poll(&mut self, now: Instant, sink: &mut dyn FrameSink) {
        for index in 0..self.nics.len() {
            self.poll_nic(index as u8, now, sink);
        }
        let work = self.cache.poll(now);
        for &(key, mac) in &work.unicast {
            self.solicit(key.0, key.1, Some(mac), sink);
        }
        for &key in &work.broadcast {
            self.solicit(key.0, key.1, None, sink);
        }
        for &((nic, _), dropped) in &work.gave_up {
            self.events.push(NdEvent::Unreachable { nic, dropped });
        }
    }

    fn poll_nic(&mut self, nic: u8, now: Instant, sink: &mut dyn FrameSink) {
        let state = &mut self.nics[nic as usize];
        if !state.enabled {
            return;
        }
        let mac = state.mac;
        let dad = state.addresses.poll(now);
        for target in dad.solicit {
            let group = solicited_node(target);
            Outgoing {
                eth_src: mac,
                eth_dst: multicast_mac(group),
                src: Ipv6Address::UNSPECIFIED,
                dst: group,
                message: solicit(target, None),
                rdnss: None,
            }
            .send(nic, sink);
        }
        for cidr in dad.preferred {
            if is_link_local(cidr.address()) {
                if let Some(slaac) = &mut state.slaac {
                    slaac.start(now);
                }
                if let Some(advertiser) = &mut state.advertiser {
                    advertiser.start(now);
                }
            }
        }
        let Some(link_local) = state.usable_link_local() else {
            return;
        };
        if let Some(slaac) = &mut state.slaac {
            if slaac.solicit_due(now) {
                Outgoing {
                    eth_src: mac,
                    eth_dst: multicast_mac(IPV6_LINK_LOCAL_ALL_ROUTERS),
                    src: link_local,
                    dst: IPV6_LINK_LOCAL_ALL_ROUTERS,
                    message: NdiscRepr::RouterSolicit {
                        lladdr: Some(mac.into()),
                    },
                    rdnss: None,
                }
                .send(nic, sink);
            }
            let change = slaac.expire(&mut state.addresses, now);
            self.apply(nic, change, now);
        }
        let state = &mut self.nics[nic as usize];
        if let Some(advertiser) = &mut state.advertiser {
            if advertiser.due(now, &mut self.rng) {
                let rdnss = advertiser.rdnss();
                let resolvers = rdnss
                    .as_ref()
                    .map(|(_, resolver)| core::slice::from_ref(resolver));
                Outgoing {
                    eth_src: mac,
                    eth_dst: multicast_mac(IPV6_LINK_LOCAL_ALL_NODES),
                    src: link_local,
                    dst: IPV6_LINK_LOCAL_ALL_NODES,
                    message: advertiser.message(mac),
                    rdnss: rdnss.map(|(lifetime, _)| lifetime).zip(resolvers),
                }
                .send(nic, sink);
            }
        }
    }

    /// The earliest time [`NeighborDiscovery::poll`] has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let nics = self.nics.iter().filter(|n| n.enabled).flat_map(|n| {
            [
                n.addresses.next_deadline(),
                n.slaac.as_ref().and_then(|s| s.next_deadline(&n.addresses)),
                n.advertiser.as_ref().and_then(Advertiser::next_deadline),
            ]
        });
        nics.chain([self.cache.next_deadline()]).flatten().min()
    }
}

/// The IPv6 state of NIC `nic` with `mac` as `policy` declares it.
fn nic_from_policy(policy: &Policy, nic: u8, mac: EthernetAddress, now: Instant) -> NdNic {
    let interface = policy.interface_on(nic);
    let ipv6 = interface.map_or(Ipv6Config::None, |i| i.ipv6);
    let mut state = NdNic {
        mac,
        enabled: ipv6 != Ipv6Config::None,
        uplink: interface.is_some_and(|i| i.uplink),
        addresses: Addresses::default(),
        static_gateway: None,
        slaac: None,
        advertiser: None,
        resolver_follows_upstream: false,
    };
    if !state.enabled {
        return state;
    }
    state
        .addresses
        .add(Ipv6Cidr::new(link_local(mac), 64), Origin::LinkLocal, now);
    match ipv6 {
        Ipv6Config::Static {
            address,
            prefix_len,
            gateway,
        } => {
            let cidr = Ipv6Cidr::new(Ipv6Address::from_bits(address), prefix_len);
            state.addresses.add(cidr, Origin::Static, now);
            state.static_gateway = gateway.map(Ipv6Address::from_bits);
            if interface.is_some_and(|i| i.router_adverts) {
                let upstream = dns_upstream(policy, nic);
                let resolver = upstream.is_some().then_some(cidr.address());
                state.resolver_follows_upstream = matches!(upstream, Some(DnsUpstream::Learned));
                let mut advertiser = Advertiser::new(AdvertContent {
                    prefix: address::network(cidr),
                    mtu: interface.map_or(crate::policy::MAX_MTU, |i| i.mtu),
                    resolver,
                });
                if matches!(upstream, Some(DnsUpstream::Static(_))) {
                    // A static list is always there.
                    advertiser.set_upstream_resolver(true, now);
                }
                state.advertiser = Some(advertiser);
            }
        }
        Ipv6Config::Slaac => state.slaac = Some(Slaac::new(mac)),
        Ipv6Config::None => {}
    }
    state
}

/// Where the DNS redirect for clients arriving on `nic` (the first that covers it, as the
/// data plane applies them) sends queries, if one covers it: it takes IPv6 queries to
/// either family's resolvers, so the router advertisements there name the appliance as
/// resolver — always for a static list, while one is known for `to upstream`.
fn dns_upstream(policy: &Policy, nic: u8) -> Option<DnsUpstream> {
    policy
        .dns
        .iter()
        .find(|redirect| {
            redirect
                .in_nic
                .of(policy.byte_ranges)
                .iter()
                .any(|r| (r.first..=r.last).contains(&nic))
        })
        .map(|redirect| redirect.upstream)
}

/// Sends `packet` (an IPv6 packet) to `to` on `nic`, with an Ethernet header.
fn send_ipv6(
    nic: u8,
    from: EthernetAddress,
    to: EthernetAddress,
    packet: &[u8],
    sink: &mut dyn FrameSink,
) {
    sink.transmit(nic, ETHERNET_HEADER_LEN + packet.len(), &mut |out| {
        let mut frame = EthernetFrame::new_unchecked(&mut *out);
        EthernetRepr {
            src_addr: from,
            dst_addr: to,
            ethertype: EthernetProtocol::Ipv6,
        }
        .emit(&mut frame);
        frame.payload_mut().copy_from_slice(packet);
    });
}
