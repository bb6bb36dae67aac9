//! [`Lease`]: what a server's OFFER or ACK gives the client, and when it must be renewed,
//! rebound and given up.

use alloc::vec::Vec;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

use super::message::ServerMessage;

/// How long a lease lasts when the server does not say (RFC 2131 requires the option in
/// an ACK; some servers omit it in OFFERs).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(3600);
/// The shortest lease the client keeps: shorter ones are taken as this long, so that a
/// misconfigured server cannot make the client renew in a tight loop.
pub const MIN_LEASE: Duration = Duration::from_secs(10);

/// An address lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The address and its network.
    pub address: Ipv4Cidr,
    /// The default gateway, if the server named one.
    pub router: Option<Ipv4Address>,
    /// The DNS servers the server named, in its order.
    pub dns_servers: Vec<Ipv4Address>,
    /// The identifier (address) of the server that granted it.
    pub server: Ipv4Address,
    /// When it was granted.
    pub granted: Instant,
    /// How long it lasts from `granted`.
    pub duration: Duration,
    /// When to start renewing it with its server (T1), from `granted`.
    pub renew_after: Duration,
    /// When to start rebinding it with any server (T2), from `granted`.
    pub rebind_after: Duration,
}

/// Whether `address` can be a host's own address (not 0/8, loopback, multicast, broadcast or
/// reserved).
fn is_host_address(address: Ipv4Address) -> bool {
    !(address.is_unspecified()
        || address.octets()[0] == 0
        || address.is_loopback()
        || address.is_multicast()
        || address.is_broadcast()
        || address.octets()[0] >= 240)
}

impl Lease {
    /// The lease `message` (an OFFER or ACK) grants at `now`, or `None` if it does not grant
    /// a usable one: no host address, no or an invalid subnet mask, or a network that holds
    /// no host besides the address itself.
    pub fn granted_by(message: &ServerMessage, now: Instant) -> Option<Lease> {
        let mask = message.subnet_mask?;
        let address = Ipv4Cidr::from_netmask(message.your_ip, mask).ok()?;
        if !is_host_address(address.address())
            || address.prefix_len() == 0
            || Some(address.address()) == address.broadcast()
            || address.address() == address.network().address() && address.prefix_len() < 31
        {
            return None;
        }
        let duration = message
            .lease_secs
            .map_or(DEFAULT_LEASE, |secs| Duration::from_secs(secs.into()))
            .max(MIN_LEASE);
        let (renew_after, rebind_after) = timers(duration, message.renew_secs, message.rebind_secs);
        Some(Lease {
            address,
            router: message.router.filter(|r| is_host_address(*r)),
            dns_servers: message
                .dns_servers
                .iter()
                .copied()
                .filter(|s| is_host_address(*s))
                .collect(),
            server: message.server,
            granted: now,
            duration,
            renew_after,
            rebind_after,
        })
    }

    /// When renewing starts (T1).
    pub fn renew_at(&self) -> Instant {
        self.granted + self.renew_after
    }

    /// When rebinding starts (T2).
    pub fn rebind_at(&self) -> Instant {
        self.granted + self.rebind_after
    }

    /// When the lease runs out.
    pub fn expires_at(&self) -> Instant {
        self.granted + self.duration
    }

    /// Whether `other` configures the NIC the same way (address, network, gateway, DNS),
    /// whatever its server and times.
    pub fn same_configuration(&self, other: &Lease) -> bool {
        self.address == other.address
            && self.router == other.router
            && self.dns_servers == other.dns_servers
    }
}

/// T1 and T2 for a lease of `duration`: the server's values when they are in order
/// (T1 < T2 < lease), else RFC 2131's defaults, 0.5 and 0.875 of the lease.
fn timers(duration: Duration, t1: Option<u32>, t2: Option<u32>) -> (Duration, Duration) {
    let secs = |s: Option<u32>| s.map(|s| Duration::from_secs(s.into()));
    match (secs(t1), secs(t2)) {
        (Some(t1), Some(t2)) if t1 < t2 && t2 < duration => (t1, t2),
        (Some(t1), None) if t1 < duration * 7 / 8 => (t1, duration * 7 / 8),
        (None, Some(t2)) if t2 < duration => ((duration / 2).min(t2), t2),
        _ => (duration / 2, duration * 7 / 8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{DhcpMessageType, EthernetAddress};

    fn ack(your_ip: [u8; 4], mask: [u8; 4]) -> ServerMessage {
        ServerMessage {
            kind: DhcpMessageType::Ack,
            transaction_id: 1,
            client_mac: EthernetAddress([2, 0, 0, 0, 0, 1]),
            your_ip: your_ip.into(),
            server: Ipv4Address::new(10, 0, 2, 2),
            subnet_mask: Some(mask.into()),
            router: Some(Ipv4Address::new(10, 0, 2, 2)),
            dns_servers: alloc::vec![Ipv4Address::new(10, 0, 2, 3), Ipv4Address::UNSPECIFIED],
            lease_secs: Some(120),
            renew_secs: None,
            rebind_secs: None,
        }
    }

    #[test]
    fn an_ack_grants_its_address_network_gateway_dns_and_rfc_timers() {
        let now = Instant::from_secs(100);
        let lease = Lease::granted_by(&ack([10, 0, 2, 15], [255, 255, 255, 0]), now).unwrap();
        assert_eq!(
            lease.address,
            Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 15), 24)
        );
        assert_eq!(lease.router, Some(Ipv4Address::new(10, 0, 2, 2)));
        assert_eq!(lease.dns_servers, [Ipv4Address::new(10, 0, 2, 3)]);
        assert_eq!(lease.renew_at(), Instant::from_secs(160));
        assert_eq!(lease.rebind_at(), Instant::from_secs(205));
        assert_eq!(lease.expires_at(), Instant::from_secs(220));
    }

    #[test]
    fn unusable_grants_are_refused() {
        let now = Instant::from_secs(0);
        for (address, mask) in [
            ([0, 0, 0, 0], [255, 255, 255, 0]),
            ([127, 0, 0, 5], [255, 0, 0, 0]),
            ([224, 0, 0, 1], [255, 255, 255, 0]),
            ([10, 0, 2, 255], [255, 255, 255, 0]),
            ([10, 0, 2, 0], [255, 255, 255, 0]),
            ([10, 0, 2, 15], [255, 0, 255, 0]),
            ([10, 0, 2, 15], [0, 0, 0, 0]),
        ] {
            assert_eq!(
                Lease::granted_by(&ack(address, mask), now),
                None,
                "{address:?}"
            );
        }
        let mut no_mask = ack([10, 0, 2, 15], [255, 255, 255, 0]);
        no_mask.subnet_mask = None;
        assert_eq!(Lease::granted_by(&no_mask, now), None);
    }

    #[test]
    fn server_timers_are_used_only_when_in_order() {
        let lease = Duration::from_secs(800);
        let s = Duration::from_secs;
        assert_eq!(timers(lease, Some(100), Some(200)), (s(100), s(200)));
        assert_eq!(timers(lease, Some(300), Some(200)), (s(400), s(700)));
        assert_eq!(timers(lease, Some(900), None), (s(400), s(700)));
        assert_eq!(timers(lease, None, Some(300)), (s(300), s(300)));
    }

    #[test]
    fn tiny_leases_are_stretched_to_the_minimum() {
        let mut message = ack([10, 0, 2, 15], [255, 255, 255, 0]);
        message.lease_secs = Some(0);
        let lease = Lease::granted_by(&message, Instant::from_secs(0)).unwrap();
        assert_eq!(lease.duration, MIN_LEASE);
    }
}
