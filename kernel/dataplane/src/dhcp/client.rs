//! [`DhcpClient`]: the client's state machine (RFC 2131 figure 5, plus INIT-REBOOT-style
//! verification on demand). It sends nothing itself: [`DhcpClient::poll`],
//! [`DhcpClient::receive`] and [`DhcpClient::verify`] return the packets to send and
//! what changed.

use alloc::vec::Vec;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{DhcpMessageType, EthernetAddress, Ipv4Address, Ipv4Cidr};

use super::backoff::Backoff;
use super::lease::Lease;
use super::message::{ClientMessage, ServerMessage};

/// Longest wait between DISCOVERs while no server answers: a server that comes up is
/// found within this (plus jitter) and one round trip.
pub const SEARCH_CAP: Duration = Duration::from_secs(2);
/// Longest wait between DISCOVERs once a server answered with an unusable offer, and
/// between REQUESTs: RFC 2131's 64 s.
pub const PATIENT_CAP: Duration = Duration::from_secs(64);
/// REQUESTs sent for one offer before discovering again.
pub const REQUEST_ATTEMPTS: u32 = 4;
/// REQUESTs sent to verify a lease before keeping it on trust (RFC 2131 3.2 allows using it
/// for the rest of its time when no server answers).
pub const VERIFY_ATTEMPTS: u32 = 3;
/// Shortest wait between REQUESTs while renewing or rebinding. RFC 2131 4.4.5 says 60 s;
/// the short leases of VM networks (dnsmasq's minimum is 2 minutes) would then get one
/// renewal attempt and one rebinding attempt, so the client tries more often.
pub const MIN_RENEW_RETRANSMIT: Duration = Duration::from_secs(5);
/// Wait after a DHCPDECLINE before discovering again (RFC 2131 3.1.5).
pub const AFTER_DECLINE: Duration = Duration::from_secs(10);

/// Where a packet the client built goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Link-layer and IP broadcast on the client's NIC.
    Broadcast,
    /// Unicast to the server (renewing), routed like any packet the appliance sends.
    Unicast(Ipv4Address),
}

/// A packet for the client's NIC: a complete IPv4 packet and where it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Broadcast on the link, or routed to the server.
    pub destination: Destination,
    /// The IPv4 packet.
    pub packet: Vec<u8>,
}

/// Why a lease was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossReason {
    /// It ran out before any server extended it.
    Expired,
    /// The server named here refused it (DHCPNAK): the address is wrong on this network.
    Refused(Ipv4Address),
    /// A server renewed it into one the appliance cannot use (declined).
    Unusable,
}

/// What changed, for the appliance to apply and tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A lease was obtained while the client held none.
    Bound(Lease),
    /// The lease was extended unchanged.
    Renewed(Lease),
    /// The lease was extended with another configuration (address, network, gateway, DNS).
    Changed {
        /// What the NIC had.
        old: Lease,
        /// What it has now.
        new: Lease,
    },
    /// The lease is gone: the NIC must stop using its address.
    Lost {
        /// The lost lease.
        lease: Lease,
        /// Why.
        reason: LossReason,
    },
    /// A server offered (or acknowledged, and it was declined) a lease the appliance
    /// cannot use; the client keeps looking, more patiently.
    Refused {
        /// What was offered.
        offered: Lease,
        /// Whether it had been acknowledged and was declined (DHCPDECLINE sent).
        declined: bool,
    },
}

/// Where the client is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// INIT / SELECTING: DISCOVERs until an acceptable offer.
    Selecting,
    /// REQUESTING: asking for `offer`.
    Requesting { offer: Lease, sent: u32 },
    /// BOUND: nothing to do until T1.
    Bound(Lease),
    /// RENEWING: unicast REQUESTs to the lease's server until T2.
    Renewing(Lease),
    /// REBINDING: broadcast REQUESTs until the lease expires.
    Rebinding(Lease),
    /// Verifying the lease with whichever server answers (the network may have changed).
    Verifying { lease: Lease, sent: u32 },
}

/// A DHCP client for one NIC. See the [module documentation](super).
#[derive(Clone, Debug)]
pub struct DhcpClient {
    mac: EthernetAddress,
    phase: Phase,
    transaction_id: u32,
    /// When the current exchange started (for the `secs` field).
    exchange_started: Instant,
    /// When the client next has something to do.
    next: Instant,
    backoff: Backoff,
}

impl DhcpClient {
    /// A client for the NIC with MAC `mac`, which sends its first DISCOVER at the first
    /// [`DhcpClient::poll`] at or after `now`. `seed` randomizes transaction ids and
    /// retransmission times.
    pub fn new(mac: EthernetAddress, seed: u64, now: Instant) -> DhcpClient {
        let mut backoff = Backoff::new(SEARCH_CAP, seed);
        let transaction_id = backoff.random_u32();
        DhcpClient {
            mac,
            phase: Phase::Selecting,
            transaction_id,
            exchange_started: now,
            next: now,
            backoff,
        }
    }

    /// The lease the NIC may use now, if any.
    pub fn lease(&self) -> Option<&Lease> {
        match &self.phase {
            Phase::Bound(lease)
            | Phase::Renewing(lease)
            | Phase::Rebinding(lease)
            | Phase::Verifying { lease, .. } => Some(lease),
            Phase::Selecting | Phase::Requesting { .. } => None,
        }
    }

    /// When [`DhcpClient::poll`] next has something to do.
    pub fn next_deadline(&self) -> Instant {
        self.next
    }

    /// Runs the client's timers at `now`: retransmissions, renewal, rebinding, expiry.
    /// Packets to send are appended to `out`.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Transmit>) -> Option<Event> {
        if now < self.next {
            return None;
        }
        match core::mem::replace(&mut self.phase, Phase::Selecting) {
            Phase::Selecting => {
                self.send_discover(now, out);
                None
            }
            Phase::Requesting { offer, sent } if sent < REQUEST_ATTEMPTS => {
                self.send_select(offer, sent, now, out);
                None
            }
            Phase::Requesting { .. } => {
                // The server went quiet after its offer: look again.
                self.backoff.reset(SEARCH_CAP);
                self.start_selecting(now, out);
                None
            }
            Phase::Verifying { lease, sent }
                if sent < VERIFY_ATTEMPTS && now < lease.expires_at() =>
            {
                self.send_verify(lease, sent, now, out);
                None
            }
            Phase::Renewing(lease) | Phase::Rebinding(lease) => self.hold(lease, true, now, out),
            Phase::Bound(lease) | Phase::Verifying { lease, .. } => {
                self.hold(lease, false, now, out)
            }
        }
    }

    /// Handles a server's message (parsed from a frame the NIC received) at `now`.
    /// `unusable` tells whether the appliance can use a lease (it cannot if its network
    /// overlaps one of the appliance's other networks); an unusable offer is ignored and an
    /// unusable acknowledgement declined. Packets to send are appended to `out`.
    pub fn receive(
        &mut self,
        message: &ServerMessage,
        now: Instant,
        unusable: &dyn Fn(Ipv4Cidr) -> bool,
        out: &mut Vec<Transmit>,
    ) -> Option<Event> {
        if message.client_mac != self.mac || message.transaction_id != self.transaction_id {
            return None;
        }
        let granted = Lease::granted_by(message, now);
        match (&self.phase, message.kind) {
            (Phase::Selecting, DhcpMessageType::Offer) => {
                let offer = granted?;
                if unusable(offer.address) {
                    // Ignore it and keep discovering, without hurrying: the server is there
                    // and may well offer the same again.
                    self.backoff.raise_cap(PATIENT_CAP);
                    return Some(Event::Refused {
                        offered: offer,
                        declined: false,
                    });
                }
                self.backoff.reset(PATIENT_CAP);
                self.send_select(offer, 0, now, out);
                None
            }
            (Phase::Requesting { offer, .. }, DhcpMessageType::Ack) => {
                if message.server != offer.server {
                    return None;
                }
                let lease = granted?;
                if unusable(lease.address) {
                    self.decline(&lease, now, out);
                    return Some(Event::Refused {
                        offered: lease,
                        declined: true,
                    });
                }
                self.bind(lease.clone());
                Some(Event::Bound(lease))
            }
            (Phase::Requesting { offer, .. }, DhcpMessageType::Nak) => {
                if message.server != offer.server {
                    return None;
                }
                // Look again, without resetting the backoff: a server that offers and
                // then refuses must not make the client loop at network speed.
                self.phase = Phase::Selecting;
                self.new_exchange(now);
                self.next = now + self.backoff.next_delay();
                None
            }
            (
                Phase::Bound(held)
                | Phase::Renewing(held)
                | Phase::Rebinding(held)
                | Phase::Verifying { lease: held, .. },
                DhcpMessageType::Ack,
            ) => {
                let held = held.clone();
                let lease = granted?;
                if unusable(lease.address) {
                    self.decline(&lease, now, out);
                    return Some(Event::Lost {
                        lease: held,
                        reason: LossReason::Unusable,
                    });
                }
                self.bind(lease.clone());
                Some(if held.same_configuration(&lease) {
                    Event::Renewed(lease)
                } else {
                    Event::Changed {
                        old: held,
                        new: lease,
                    }
                })
            }
            (
                Phase::Bound(held)
                | Phase::Renewing(held)
                | Phase::Rebinding(held)
                | Phase::Verifying { lease: held, .. },
                DhcpMessageType::Nak,
            ) => {
                let lease = held.clone();
                self.backoff.reset(SEARCH_CAP);
                self.start_selecting(now, out);
                Some(Event::Lost {
                    lease,
                    reason: LossReason::Refused(message.server),
                })
            }
            _ => None,
        }
    }

    /// Asks the network at once whether the lease still holds — the appliance calls this
    /// when the uplink may have changed under it (the gateway moved to another MAC or
    /// stopped answering): a DHCPREQUEST as in INIT-REBOOT, which a server must NAK if the
    /// address is wrong on its network. Unanswered, the lease is kept on its normal
    /// schedule. Does nothing unless a lease is held and not already being verified.
    pub fn verify(&mut self, now: Instant, out: &mut Vec<Transmit>) {
        let lease = match &self.phase {
            Phase::Bound(lease) | Phase::Renewing(lease) | Phase::Rebinding(lease) => lease.clone(),
            _ => return,
        };
        self.new_exchange(now);
        self.backoff.reset(SEARCH_CAP);
        self.send_verify(lease, 0, now, out);
    }

    fn new_exchange(&mut self, now: Instant) {
        self.transaction_id = self.backoff.random_u32();
        self.exchange_started = now;
    }

    fn secs(&self, now: Instant) -> u16 {
        (now - self.exchange_started).secs().min(u16::MAX.into()) as u16
    }

    fn send(
        &self,
        message: ClientMessage,
        destination: Destination,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) {
        let to = match destination {
            Destination::Broadcast => Ipv4Address::BROADCAST,
            Destination::Unicast(server) => server,
        };
        out.push(Transmit {
            destination,
            packet: message.build(self.mac, self.transaction_id, self.secs(now), to),
        });
    }

    fn start_selecting(&mut self, now: Instant, out: &mut Vec<Transmit>) {
        self.new_exchange(now);
        self.send_discover(now, out);
    }

    fn send_discover(&mut self, now: Instant, out: &mut Vec<Transmit>) {
        self.phase = Phase::Selecting;
        self.send(ClientMessage::Discover, Destination::Broadcast, now, out);
        self.next = now + self.backoff.next_delay();
    }

    fn send_select(&mut self, offer: Lease, sent: u32, now: Instant, out: &mut Vec<Transmit>) {
        let message = ClientMessage::Select {
            address: offer.address.address(),
            server: offer.server,
        };
        self.send(message, Destination::Broadcast, now, out);
        self.phase = Phase::Requesting {
            offer,
            sent: sent + 1,
        };
        self.next = now + self.backoff.next_delay();
    }

    fn send_verify(&mut self, lease: Lease, sent: u32, now: Instant, out: &mut Vec<Transmit>) {
        let message = ClientMessage::Verify {
            address: lease.address.address(),
        };
        self.send(message, Destination::Broadcast, now, out);
        self.next = (now + self.backoff.next_delay()).min(lease.expires_at());
        self.phase = Phase::Verifying {
            lease,
            sent: sent + 1,
        };
    }

    fn decline(&mut self, lease: &Lease, now: Instant, out: &mut Vec<Transmit>) {
        let message = ClientMessage::Decline {
            address: lease.address.address(),
            server: lease.server,
        };
        self.send(message, Destination::Broadcast, now, out);
        self.phase = Phase::Selecting;
        self.new_exchange(now);
        self.backoff.raise_cap(PATIENT_CAP);
        self.next = now + self.backoff.next_delay().max(AFTER_DECLINE);
    }

    fn bind(&mut self, lease: Lease) {
        self.backoff.reset(SEARCH_CAP);
        self.next = lease.renew_at();
        self.phase = Phase::Bound(lease);
    }

    /// The timers of a held lease at `now`: renew after T1 (unicast), rebind after T2
    /// (broadcast), give it up when it expires. `extending` says whether the client was
    /// already renewing or rebinding (its retransmissions keep their transaction).
    fn hold(
        &mut self,
        lease: Lease,
        extending: bool,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> Option<Event> {
        if now >= lease.expires_at() {
            self.backoff.reset(SEARCH_CAP);
            self.start_selecting(now, out);
            return Some(Event::Lost {
                lease,
                reason: LossReason::Expired,
            });
        }
        if now < lease.renew_at() {
            self.next = lease.renew_at();
            self.phase = Phase::Bound(lease);
            return None;
        }
        let renewing = now < lease.rebind_at();
        if !extending {
            self.new_exchange(now);
        }
        let message = ClientMessage::Extend {
            address: lease.address.address(),
        };
        // RFC 2131 4.4.5: wait half the time left until T2 (renewing) or expiry
        // (rebinding) before retransmitting.
        let (destination, until) = if renewing {
            (Destination::Unicast(lease.server), lease.rebind_at())
        } else {
            (Destination::Broadcast, lease.expires_at())
        };
        self.send(message, destination, now, out);
        let wait = ((until - now) / 2).max(MIN_RENEW_RETRANSMIT);
        self.next = (now + wait).min(until);
        self.phase = if renewing {
            Phase::Renewing(lease)
        } else {
            Phase::Rebinding(lease)
        };
        None
    }
}
