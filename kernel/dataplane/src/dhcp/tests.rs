//! The client's state machine, driven with server messages and a fake clock.

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress, Ipv4Address, Ipv4Cidr, Ipv4Packet,
    UdpPacket,
};

use super::*;

const MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0]);
const SERVER: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
const ADDRESS: Ipv4Address = Ipv4Address::new(10, 0, 2, 15);
const LEASE_SECS: u32 = 120;

/// What the client sent, decoded.
#[derive(Debug)]
struct Sent {
    destination: Destination,
    src: Ipv4Address,
    kind: DhcpMessageType,
    transaction_id: u32,
    client_ip: Ipv4Address,
    requested_ip: Option<Ipv4Address>,
    server: Option<Ipv4Address>,
}

fn decode(transmit: &Transmit) -> Sent {
    let ip = Ipv4Packet::new_checked(&transmit.packet[..]).unwrap();
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    let dhcp = DhcpPacket::new_checked(udp.payload()).unwrap();
    let repr = DhcpRepr::parse(&dhcp).unwrap();
    Sent {
        destination: transmit.destination,
        src: ip.src_addr(),
        kind: repr.message_type,
        transaction_id: repr.transaction_id,
        client_ip: repr.client_ip,
        requested_ip: repr.requested_ip,
        server: repr.server_identifier,
    }
}

fn at(ms: i64) -> Instant {
    Instant::from_millis(ms)
}

fn reply(kind: DhcpMessageType, transaction_id: u32) -> ServerMessage {
    ServerMessage {
        kind,
        transaction_id,
        client_mac: MAC,
        your_ip: ADDRESS,
        server: SERVER,
        subnet_mask: Some(Ipv4Address::new(255, 255, 255, 0)),
        router: Some(SERVER),
        dns_servers: vec![Ipv4Address::new(10, 0, 2, 3)],
        lease_secs: Some(LEASE_SECS),
        renew_secs: None,
        rebind_secs: None,
    }
}

fn usable(_: Ipv4Cidr) -> bool {
    false
}

/// A client, its clock, and what it sends.
struct Run {
    client: DhcpClient,
    now: Instant,
}

impl Run {
    fn new() -> Run {
        Run {
            client: DhcpClient::new(MAC, 99, at(0)),
            now: at(0),
        }
    }

    fn poll_at(&mut self, now: Instant) -> (Vec<Sent>, Option<Event>) {
        self.now = now;
        let mut out = Vec::new();
        let event = self.client.poll(now, &mut out);
        (out.iter().map(decode).collect(), event)
    }

    /// Polls at every deadline until `until`; what was sent, with when.
    fn run_until(&mut self, until: Instant) -> Vec<(Instant, Sent)> {
        let mut sent = Vec::new();
        while self.client.next_deadline() <= until {
            let at = self.client.next_deadline();
            let (out, _) = self.poll_at(at);
            sent.extend(out.into_iter().map(|s| (at, s)));
        }
        self.now = until;
        sent
    }

    fn receive(
        &mut self,
        message: ServerMessage,
        unusable: &dyn Fn(Ipv4Cidr) -> bool,
    ) -> (Vec<Sent>, Option<Event>) {
        let mut out = Vec::new();
        let event = self.client.receive(&message, self.now, unusable, &mut out);
        (out.iter().map(decode).collect(), event)
    }

    /// DISCOVER, OFFER, REQUEST, ACK at `self.now`; the lease.
    fn bind(&mut self) -> Lease {
        let (sent, _) = self.poll_at(self.now);
        let discover = &sent[0];
        assert_eq!(discover.kind, DhcpMessageType::Discover);
        let (sent, event) = self.receive(
            reply(DhcpMessageType::Offer, discover.transaction_id),
            &usable,
        );
        assert_eq!(event, None);
        let [request] = &sent[..] else {
            panic!("{sent:?}")
        };
        let (sent, event) =
            self.receive(reply(DhcpMessageType::Ack, request.transaction_id), &usable);
        assert!(sent.is_empty());
        match event {
            Some(Event::Bound(lease)) => lease,
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn discovers_at_once_then_every_one_to_two_seconds() {
    let mut run = Run::new();
    let sent = run.run_until(at(20_000));
    assert!(sent.iter().all(|(_, s)| s.kind == DhcpMessageType::Discover
        && s.destination == Destination::Broadcast
        && s.src == Ipv4Address::UNSPECIFIED));
    let times: Vec<i64> = sent.iter().map(|(t, _)| t.total_millis()).collect();
    assert_eq!(times[0], 0);
    let gaps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        (750..=1250).contains(&gaps[0]),
        "first retransmission after {} ms",
        gaps[0]
    );
    assert!(
        gaps[1..].iter().all(|g| (1500..=2500).contains(g)),
        "later gaps {gaps:?} ms"
    );
    assert!(sent.len() >= 9, "{} DISCOVERs in 20 s", sent.len());
}

#[test]
fn an_offer_is_requested_and_its_ack_binds() {
    let mut run = Run::new();
    let (sent, _) = run.poll_at(at(0));
    let xid = sent[0].transaction_id;
    run.now = at(300);
    let (sent, _) = run.receive(reply(DhcpMessageType::Offer, xid), &usable);
    let [request] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert_eq!(
        (
            request.kind,
            request.transaction_id,
            request.requested_ip,
            request.server
        ),
        (DhcpMessageType::Request, xid, Some(ADDRESS), Some(SERVER))
    );
    let (_, event) = run.receive(reply(DhcpMessageType::Ack, xid), &usable);
    let Some(Event::Bound(lease)) = event else {
        panic!("{event:?}")
    };
    assert_eq!(lease.address, Ipv4Cidr::new(ADDRESS, 24));
    assert_eq!(run.client.lease(), Some(&lease));
    assert_eq!(run.client.next_deadline(), at(300 + 60_000));
}

#[test]
fn messages_for_another_transaction_or_client_are_ignored() {
    let mut run = Run::new();
    let (sent, _) = run.poll_at(at(0));
    let xid = sent[0].transaction_id;
    let (sent, _) = run.receive(reply(DhcpMessageType::Offer, xid.wrapping_add(1)), &usable);
    assert!(sent.is_empty());
    let mut other = reply(DhcpMessageType::Offer, xid);
    other.client_mac = EthernetAddress([2, 0, 0, 0, 0, 9]);
    let (sent, _) = run.receive(other, &usable);
    assert!(sent.is_empty());
}

#[test]
fn renews_at_t1_by_unicast_rebinds_at_t2_by_broadcast_and_loses_the_lease_at_expiry() {
    let mut run = Run::new();
    run.bind();
    let sent = run.run_until(at(119_999));
    let renewals: Vec<&(Instant, Sent)> = sent
        .iter()
        .filter(|(_, s)| s.destination == Destination::Unicast(SERVER))
        .collect();
    let rebinds: Vec<&(Instant, Sent)> = sent
        .iter()
        .filter(|(_, s)| s.destination == Destination::Broadcast)
        .collect();
    assert_eq!(renewals[0].0, at(60_000));
    assert!(renewals
        .iter()
        .all(|(t, s)| *t < at(105_000) && s.src == ADDRESS && s.client_ip == ADDRESS));
    assert_eq!(rebinds[0].0, at(105_000));
    assert!(rebinds
        .iter()
        .all(|(_, s)| s.kind == DhcpMessageType::Request
            && s.client_ip == ADDRESS
            && s.requested_ip.is_none()));
    assert!(renewals.len() >= 3 && rebinds.len() >= 2, "{sent:?}");
    let (sent, event) = run.poll_at(at(120_000));
    assert_eq!(
        event.map(|e| matches!(
            e,
            Event::Lost {
                reason: LossReason::Expired,
                ..
            }
        )),
        Some(true)
    );
    assert_eq!(sent[0].kind, DhcpMessageType::Discover);
    assert_eq!(run.client.lease(), None);
}

#[test]
fn a_renewal_ack_extends_the_lease_and_reports_changes() {
    let mut run = Run::new();
    run.bind();
    let (sent, _) = run.poll_at(at(60_000));
    let xid = sent[0].transaction_id;
    let (_, event) = run.receive(reply(DhcpMessageType::Ack, xid), &usable);
    assert!(matches!(event, Some(Event::Renewed(_))), "{event:?}");
    assert_eq!(run.client.next_deadline(), at(120_000));
    let (sent, _) = run.poll_at(at(120_000));
    let mut changed = reply(DhcpMessageType::Ack, sent[0].transaction_id);
    changed.dns_servers = vec![Ipv4Address::new(9, 9, 9, 9)];
    let (_, event) = run.receive(changed, &usable);
    let Some(Event::Changed { old, new }) = event else {
        panic!("{event:?}")
    };
    assert_eq!(old.dns_servers, [Ipv4Address::new(10, 0, 2, 3)]);
    assert_eq!(new.dns_servers, [Ipv4Address::new(9, 9, 9, 9)]);
}

#[test]
fn a_nak_while_renewing_loses_the_lease_and_discovers_at_once() {
    let mut run = Run::new();
    run.bind();
    let (sent, _) = run.poll_at(at(60_000));
    let (sent, event) = run.receive(reply(DhcpMessageType::Nak, sent[0].transaction_id), &usable);
    assert_eq!(
        event.map(|e| matches!(
            e,
            Event::Lost {
                reason: LossReason::Refused(SERVER),
                ..
            }
        )),
        Some(true)
    );
    let [discover] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert_eq!(discover.kind, DhcpMessageType::Discover);
    assert_eq!(run.client.lease(), None);
}

#[test]
fn a_nak_to_a_request_goes_back_to_discovering_without_looping() {
    let mut run = Run::new();
    let (sent, _) = run.poll_at(at(0));
    let xid = sent[0].transaction_id;
    run.receive(reply(DhcpMessageType::Offer, xid), &usable);
    let (sent, event) = run.receive(reply(DhcpMessageType::Nak, xid), &usable);
    assert!(sent.is_empty() && event.is_none());
    assert!(run.client.next_deadline() >= at(750));
    let (sent, _) = run.poll_at(run.client.next_deadline());
    assert_eq!(sent[0].kind, DhcpMessageType::Discover);
    assert_ne!(sent[0].transaction_id, xid);
}

#[test]
fn an_unusable_offer_is_ignored_and_discovery_slows_down() {
    let mut run = Run::new();
    let refuse = |_: Ipv4Cidr| true;
    let mut refusals = 0;
    let mut last = at(0);
    while run.client.next_deadline() < at(120_000) {
        let (sent, _) = run.poll_at(run.client.next_deadline());
        let [discover] = &sent[..] else {
            panic!("{sent:?}")
        };
        let (sent, event) = run.receive(
            reply(DhcpMessageType::Offer, discover.transaction_id),
            &refuse,
        );
        assert!(sent.is_empty(), "nothing is requested: {sent:?}");
        assert!(matches!(
            event,
            Some(Event::Refused {
                declined: false,
                ..
            })
        ));
        refusals += 1;
        last = run.now;
    }
    assert!(refusals <= 8, "{refusals} DISCOVERs in 2 minutes");
    assert!(run.client.next_deadline() - last > Duration::from_secs(30));
    assert_eq!(run.client.lease(), None);
}

#[test]
fn an_unusable_ack_is_declined() {
    let mut run = Run::new();
    let (sent, _) = run.poll_at(at(0));
    let xid = sent[0].transaction_id;
    run.receive(reply(DhcpMessageType::Offer, xid), &usable);
    let (sent, event) = run.receive(reply(DhcpMessageType::Ack, xid), &|_| true);
    assert!(matches!(event, Some(Event::Refused { declined: true, .. })));
    let [decline] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert_eq!(
        (decline.kind, decline.requested_ip, decline.server),
        (DhcpMessageType::Decline, Some(ADDRESS), Some(SERVER))
    );
    assert!(run.client.next_deadline() >= at(10_000));
    assert_eq!(run.client.lease(), None);
}

#[test]
fn verifying_asks_any_server_about_the_held_address() {
    let mut run = Run::new();
    run.bind();
    run.now = at(5_000);
    let mut out = Vec::new();
    run.client.verify(run.now, &mut out);
    let [verify] = &out[..] else {
        panic!("{out:?}")
    };
    let verify = decode(verify);
    assert_eq!(
        (
            verify.destination,
            verify.src,
            verify.client_ip,
            verify.requested_ip,
            verify.server
        ),
        (
            Destination::Broadcast,
            Ipv4Address::UNSPECIFIED,
            Ipv4Address::UNSPECIFIED,
            Some(ADDRESS),
            None
        )
    );
    let (_, event) = run.receive(reply(DhcpMessageType::Nak, verify.transaction_id), &usable);
    assert!(matches!(event, Some(Event::Lost { .. })));
}

#[test]
fn an_unanswered_verification_keeps_the_lease_on_its_schedule() {
    let mut run = Run::new();
    run.bind();
    let mut out = Vec::new();
    run.client.verify(at(5_000), &mut out);
    let sent = run.run_until(at(59_999));
    assert_eq!(sent.len(), VERIFY_ATTEMPTS as usize - 1, "{sent:?}");
    assert!(run.client.lease().is_some());
    assert_eq!(run.client.next_deadline(), at(60_000));
}
