//! The DHCP server of one client interface (RFC 2131's server side): which address a
//! client gets, and for how long.
//!
//! # Who gets which address
//! In this order, for a client with MAC `m`:
//! 1. a declared client whose MAC the ruleset pins to `m` gets its declared address;
//! 2. a client that already has an offer or a lease keeps its address;
//! 3. a client whose host-name option is a declared client's name, of a client without a
//!    pinned MAC, gets that client's address unless another MAC holds it;
//! 4. otherwise an address from the pool: the one the client asks for if it is free, else
//!    the lowest free one.
//!
//! A REQUEST (or INIT-REBOOT, RENEWING, REBINDING) is acknowledged when the address is one
//! the client may hold by these rules, and refused with a NAK otherwise — a client that
//! moved from another network, or asks for a declared client's address, is told at once.
//!
//! # Bounds (a client spraying MACs)
//! The lease table only ever holds the pool's and the declared clients' addresses (see
//! [`super::leases`]). An offer holds its address for [`OFFER_HOLD`]. When the pool is
//! full, a new client gets the address of the oldest outstanding offer, or of the lease
//! whose holder has been silent longest, if that holder has sent nothing for
//! [`IDLE_RECLAIM`]; a holder that keeps sending keeps its address. New leases on one
//! interface are rate-limited ([`NEW_LEASE_RATE`] per second, bursts of
//! [`NEW_LEASE_BURST`]): a client cycling through MACs takes minutes to fill a pool, and
//! must keep every address it took busy to hold it.

use alloc::string::String;
use alloc::vec::Vec;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{DhcpMessageType, EthernetAddress, Ipv4Address};

use super::leases::{LeaseTable, Standing};
use super::request::{Answer, ClientRequest, ServerParams};
use crate::ratelimit::TokenBucket;

/// How long an offer holds its address for the client it was made to.
pub const OFFER_HOLD: Duration = Duration::from_secs(30);
/// How long a declined address (DHCPDECLINE: some host already uses it) is given to nobody.
pub const DECLINE_HOLD: Duration = Duration::from_secs(600);
/// How long a lease's holder must have been silent before a full pool takes its address
/// back for a new client.
pub const IDLE_RECLAIM: Duration = Duration::from_secs(120);
/// New leases per second on one interface, sustained.
pub const NEW_LEASE_RATE: u32 = 2;
/// New leases on one interface in a burst.
pub const NEW_LEASE_BURST: u32 = 32;

/// A declared client of the served interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// Its declared address.
    pub ip: Ipv4Address,
    /// The MAC the ruleset pins it to, if it does.
    pub mac: Option<EthernetAddress>,
    /// Its name in the ruleset (matched against the host-name option).
    pub name: String,
}

/// What a server is configured with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// The options every answer carries.
    pub params: ServerParams,
    /// The pool, both ends included (`None`: only declared clients are served).
    pub pool: Option<(Ipv4Address, Ipv4Address)>,
    /// The lease time granted.
    pub lease_secs: u32,
    /// The interface's declared clients.
    pub reserved: Vec<Reservation>,
}

/// What handling one request did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The answer to send, if any.
    pub answer: Option<Answer>,
    /// A lease bound (or renewed): the address and the MAC it is bound to.
    pub bound: Option<(Ipv4Address, EthernetAddress)>,
    /// Leases that ended (released, declined, moved, reclaimed): their holders' states go.
    pub ended: Vec<Ipv4Address>,
    /// A DISCOVER could not be offered an address (the pool is exhausted or new leases are
    /// over their rate).
    pub exhausted: bool,
}

/// The DHCP server of one interface. See the module documentation.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    leases: LeaseTable,
    new_leases: TokenBucket,
}

impl Server {
    /// A server with `config` and no leases.
    pub fn new(config: ServerConfig) -> Server {
        Server {
            config,
            leases: LeaseTable::default(),
            new_leases: TokenBucket::new(NEW_LEASE_RATE, NEW_LEASE_BURST),
        }
    }

    /// The options every answer carries.
    pub fn params(&self) -> &ServerParams {
        &self.config.params
    }

    /// The lease table.
    pub fn leases(&self) -> &LeaseTable {
        &self.leases
    }

    /// The MAC `ip` is leased to at `now`, if a live lease binds it.
    pub fn holder(&self, ip: Ipv4Address, now: Instant) -> Option<EthernetAddress> {
        self.leases.holder(ip, now)
    }

    /// Notes a packet from the holder of `ip` (it keeps its lease when the pool is full).
    pub fn seen(&mut self, ip: Ipv4Address, now: Instant) {
        self.leases.seen(ip, now);
    }

    /// Removes ended entries; returns the addresses of bound leases that expired.
    pub fn expire(&mut self, now: Instant) -> Vec<Ipv4Address> {
        self.leases.expire(now)
    }

    /// Handles one client message.
    pub fn handle(&mut self, request: &ClientRequest, now: Instant) -> Outcome {
        let mut outcome = Outcome::default();
        let mac = request.client_mac;
        let lease_secs = self.config.lease_secs;
        match request.kind {
            DhcpMessageType::Discover => match self.choose(request, now, &mut outcome) {
                Some(address) => {
                    if self.leases.holder(address, now) != Some(mac) {
                        let until = now + OFFER_HOLD;
                        self.put(address, mac, Standing::Offered, until, now, &mut outcome);
                    }
                    outcome.answer = Some(Answer::Offer {
                        address,
                        lease_secs,
                    });
                }
                None => outcome.exhausted = true,
            },
            DhcpMessageType::Request => {
                if request
                    .server
                    .is_some_and(|s| s != self.config.params.server)
                {
                    // The client took another server's offer: ours is free again.
                    if let Some(offer) = self.leases.of_mac(mac, now) {
                        if offer.standing == Standing::Offered {
                            let ip = offer.ip;
                            self.leases.remove(ip, now);
                        }
                    }
                    return outcome;
                }
                let wanted = request
                    .requested_ip
                    .or(Some(request.client_ip).filter(|ip| *ip != Ipv4Address::UNSPECIFIED));
                let Some(address) = wanted else {
                    return outcome;
                };
                let renewing = self.leases.holder(address, now) == Some(mac);
                if self.may_hold(request, address, now)
                    && (renewing || self.new_leases.try_take(now))
                {
                    let until = now + Duration::from_secs(u64::from(lease_secs));
                    self.put(address, mac, Standing::Bound, until, now, &mut outcome);
                    outcome.bound = Some((address, mac));
                    outcome.answer = Some(Answer::Ack {
                        address,
                        lease_secs,
                    });
                } else if self.may_hold(request, address, now) {
                    // Over the new-lease rate: no answer; the client retransmits.
                } else {
                    outcome.answer = Some(Answer::Nak);
                }
            }
            DhcpMessageType::Decline => {
                let declined = request
                    .requested_ip
                    .filter(|&ip| self.leases.entry(ip, now).is_some_and(|e| e.mac == mac));
                // A decline costs a new lease's token: declining is no faster a way to
                // use the pool up.
                if let Some(ip) = declined.filter(|_| self.new_leases.try_take(now)) {
                    outcome.ended.extend(self.leases.remove(ip, now));
                    let until = now + DECLINE_HOLD;
                    self.put(ip, mac, Standing::Declined, until, now, &mut outcome);
                }
            }
            DhcpMessageType::Release => {
                if self.leases.holder(request.client_ip, now) == Some(mac) {
                    outcome
                        .ended
                        .extend(self.leases.remove(request.client_ip, now));
                }
            }
            DhcpMessageType::Inform if request.client_ip != Ipv4Address::UNSPECIFIED => {
                outcome.answer = Some(Answer::Inform);
            }
            _ => {}
        }
        outcome
    }

    /// Records an entry, collecting the bound leases it ends.
    fn put(
        &mut self,
        ip: Ipv4Address,
        mac: EthernetAddress,
        standing: Standing,
        until: Instant,
        now: Instant,
        outcome: &mut Outcome,
    ) {
        let ended = self.leases.put(ip, mac, standing, until, now);
        outcome.ended.extend(ended.into_iter().flatten());
    }

    /// The address a DISCOVER is offered (see the module documentation), or `None`.
    fn choose(
        &mut self,
        request: &ClientRequest,
        now: Instant,
        outcome: &mut Outcome,
    ) -> Option<Ipv4Address> {
        let mac = request.client_mac;
        if let Some(pinned) = self.config.reserved.iter().find(|r| r.mac == Some(mac)) {
            return Some(pinned.ip);
        }
        if let Some(entry) = self.leases.of_mac(mac, now) {
            return Some(entry.ip);
        }
        if let Some(named) = self.named_reservation(request, now) {
            return Some(named);
        }
        let (first, last) = self.config.pool?;
        let pool = first.to_bits()..=last.to_bits();
        if let Some(asked) = request.requested_ip {
            if pool.contains(&asked.to_bits()) && self.leases.free_for(asked, mac, now) {
                return Some(asked);
            }
        }
        let free = pool
            .clone()
            .map(Ipv4Address::from_bits)
            .find(|&ip| self.leases.entry(ip, now).is_none());
        if free.is_some() {
            return free;
        }
        // The pool is full: the oldest offer, else the longest-silent idle lease.
        let reclaim = self
            .leases
            .entries()
            .filter(|e| pool.contains(&e.ip.to_bits()) && e.standing != Standing::Declined)
            .filter(|e| e.standing == Standing::Offered || now - e.last_seen >= IDLE_RECLAIM)
            .min_by_key(|e| (e.standing == Standing::Bound, e.last_seen))
            .map(|e| e.ip)?;
        outcome.ended.extend(self.leases.remove(reclaim, now));
        Some(reclaim)
    }

    /// The declared address `request`'s host name names, if its client has no pinned MAC
    /// and no other MAC holds the address.
    fn named_reservation(&self, request: &ClientRequest, now: Instant) -> Option<Ipv4Address> {
        let name = request.host_name.as_deref()?;
        self.config
            .reserved
            .iter()
            .find(|r| r.mac.is_none() && r.name == name)
            .map(|r| r.ip)
            .filter(|&ip| self.leases.free_for(ip, request.client_mac, now))
    }

    /// Whether the client of `request` may hold `address` (see the module documentation).
    fn may_hold(&self, request: &ClientRequest, address: Ipv4Address, now: Instant) -> bool {
        let mac = request.client_mac;
        if let Some(pinned) = self.config.reserved.iter().find(|r| r.mac == Some(mac)) {
            return pinned.ip == address;
        }
        if let Some(reserved) = self.config.reserved.iter().find(|r| r.ip == address) {
            return reserved.mac.is_none()
                && self.leases.free_for(address, mac, now)
                && (self
                    .leases
                    .of_mac(mac, now)
                    .is_some_and(|e| e.ip == address)
                    || request.host_name.as_deref() == Some(reserved.name.as_str()));
        }
        let in_pool = self.config.pool.is_some_and(|(first, last)| {
            (first.to_bits()..=last.to_bits()).contains(&address.to_bits())
        });
        in_pool && self.leases.free_for(address, mac, now)
    }
}
