//! The DHCP server on real packet bytes: clients' messages built with `smoltcp::wire` as a
//! client sends them, answers parsed back from the bytes the server builds.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress, IpAddress, Ipv4Address, Ipv4Packet,
    UdpPacket,
};

use super::server::{IDLE_RECLAIM, NEW_LEASE_BURST, OFFER_HOLD};
use super::{Answer, ClientRequest, Reservation, Server, ServerConfig, ServerParams, Unusable};
use crate::testutil::dhcp::ClientSends;

const SERVER: Ipv4Address = Ipv4Address::new(10, 137, 1, 1);
const WORK_MAC: EthernetAddress = EthernetAddress([0x00, 0x16, 0x3e, 0x5e, 0x6c, 0x00]);

fn mac(n: u16) -> EthernetAddress {
    let [a, b] = n.to_be_bytes();
    EthernetAddress([0x02, 0x42, 0, 0, a, b])
}

fn ip(last: u8) -> Ipv4Address {
    Ipv4Address::new(10, 137, 1, last)
}

fn at(secs: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(secs)
}

fn params() -> ServerParams {
    ServerParams {
        server: SERVER,
        subnet_mask: Ipv4Address::new(255, 255, 255, 0),
        router: Some(SERVER),
        dns: Some(SERVER),
        mtu: 1400,
    }
}

/// A server on 10.137.1.1/24 with pool .100-.103, clients `work` (.10, pinned) and
/// `laptop` (.11, unpinned).
fn server() -> Server {
    Server::new(ServerConfig {
        params: params(),
        pool: Some((ip(100), ip(103))),
        lease_secs: 3600,
        reserved: vec![
            Reservation {
                ip: ip(10),
                mac: Some(WORK_MAC),
                name: String::from("work"),
            },
            Reservation {
                ip: ip(11),
                mac: None,
                name: String::from("laptop"),
            },
        ],
    })
}

type Sent<'a> = ClientSends<'a>;

fn sent(kind: DhcpMessageType, mac: EthernetAddress) -> Sent<'static> {
    ClientSends::new(kind, mac)
}

fn frame(s: Sent) -> Vec<u8> {
    s.frame()
}

fn handle(server: &mut Server, s: Sent, now: Instant) -> super::server::Outcome {
    let request = ClientRequest::parse(&frame(s)).expect("a well-formed client message");
    server.handle(&request, now)
}

/// The reply's fields, parsed back from the bytes the server builds.
struct Reply {
    to_mac: EthernetAddress,
    to_ip: Ipv4Address,
    kind: DhcpMessageType,
    your_ip: Ipv4Address,
    options: Vec<(u8, Vec<u8>)>,
}

impl Reply {
    fn option(&self, kind: u8) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, d)| &d[..])
    }
}

fn reply(answer: Answer, to: Sent) -> Reply {
    let request = ClientRequest::parse(&frame(to)).unwrap();
    let (to_mac, bytes) = answer.build(&request, &params());
    let ip = Ipv4Packet::new_checked(&bytes[..]).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!(ip.src_addr(), SERVER);
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    assert!(udp.verify_checksum(
        &IpAddress::Ipv4(ip.src_addr()),
        &IpAddress::Ipv4(ip.dst_addr())
    ));
    assert_eq!((udp.src_port(), udp.dst_port()), (67, 68));
    assert!(udp.payload().len() >= 300, "BOOTP's minimum length");
    let packet = DhcpPacket::new_checked(udp.payload()).unwrap();
    let repr = DhcpRepr::parse(&packet).unwrap();
    assert_eq!(repr.server_identifier, Some(SERVER));
    assert_eq!(repr.client_hardware_address, to.mac);
    Reply {
        to_mac,
        to_ip: ip.dst_addr(),
        kind: repr.message_type,
        your_ip: repr.your_ip,
        options: packet
            .options()
            .map(|o| (o.kind, o.data.to_vec()))
            .collect(),
    }
}

#[test]
fn a_new_client_is_offered_the_lowest_pool_address_with_every_option() {
    let mut server = server();
    let discover = sent(DhcpMessageType::Discover, mac(1));
    let outcome = handle(&mut server, discover, at(0));
    let answer = outcome.answer.unwrap();
    let offer = reply(answer, discover);
    assert_eq!(
        (offer.kind, offer.your_ip, offer.to_mac, offer.to_ip),
        (DhcpMessageType::Offer, ip(100), mac(1), ip(100))
    );
    assert_eq!(offer.option(1), Some(&[255, 255, 255, 0][..]), "mask");
    assert_eq!(offer.option(3), Some(&SERVER.octets()[..]), "router");
    assert_eq!(offer.option(6), Some(&SERVER.octets()[..]), "dns");
    assert_eq!(offer.option(26), Some(&1400u16.to_be_bytes()[..]), "mtu");
    assert_eq!(offer.option(51), Some(&3600u32.to_be_bytes()[..]), "lease");
    assert_eq!(offer.option(58), Some(&1800u32.to_be_bytes()[..]), "renew");
    assert_eq!(offer.option(59), Some(&3150u32.to_be_bytes()[..]), "rebind");
    // An offer binds nothing.
    assert_eq!(server.holder(ip(100), at(1)), None);
    assert_eq!(outcome.bound, None);
}

#[test]
fn requesting_the_offer_binds_the_address_to_the_mac() {
    let mut server = server();
    handle(&mut server, sent(DhcpMessageType::Discover, mac(1)), at(0));
    let request = Sent {
        requested: Some(ip(100)),
        server: Some(SERVER),
        ..sent(DhcpMessageType::Request, mac(1))
    };
    let outcome = handle(&mut server, request, at(1));
    assert_eq!(
        reply(outcome.answer.unwrap(), request).kind,
        DhcpMessageType::Ack
    );
    assert_eq!(outcome.bound, Some((ip(100), mac(1))));
    assert_eq!(server.holder(ip(100), at(2)), Some(mac(1)));
    assert_eq!(
        server.holder(ip(100), at(1 + 3600)),
        None,
        "until it expires"
    );
    // Another client is offered the next address, and refused this one.
    let other = sent(DhcpMessageType::Discover, mac(2));
    let offered = handle(&mut server, other, at(2)).answer;
    assert!(matches!(offered, Some(Answer::Offer { address, .. }) if address == ip(101)));
    let steal = Sent {
        requested: Some(ip(100)),
        ..sent(DhcpMessageType::Request, mac(2))
    };
    assert_eq!(handle(&mut server, steal, at(3)).answer, Some(Answer::Nak));
}

#[test]
fn a_renewal_from_the_leased_address_is_acknowledged_to_that_address() {
    let mut server = server();
    let select = Sent {
        requested: Some(ip(102)),
        ..sent(DhcpMessageType::Request, mac(1))
    };
    handle(&mut server, select, at(0));
    let renew = Sent {
        client_ip: ip(102),
        ..sent(DhcpMessageType::Request, mac(1))
    };
    let answer = handle(&mut server, renew, at(1800)).answer.unwrap();
    let ack = reply(answer, renew);
    assert_eq!(
        (ack.kind, ack.to_ip, ack.to_mac),
        (DhcpMessageType::Ack, ip(102), mac(1))
    );
    assert_eq!(server.holder(ip(102), at(1800 + 3599)), Some(mac(1)));
}

#[test]
fn a_pinned_declared_client_gets_its_address_and_nothing_else() {
    let mut server = server();
    let discover = sent(DhcpMessageType::Discover, WORK_MAC);
    let answer = handle(&mut server, discover, at(0)).answer;
    assert!(matches!(answer, Some(Answer::Offer { address, .. }) if address == ip(10)));
    let pool = Sent {
        requested: Some(ip(100)),
        ..sent(DhcpMessageType::Request, WORK_MAC)
    };
    assert_eq!(handle(&mut server, pool, at(1)).answer, Some(Answer::Nak));
    // Nobody else gets work's address, whatever it asks.
    let impostor = Sent {
        requested: Some(ip(10)),
        host_name: Some("work"),
        ..sent(DhcpMessageType::Request, mac(9))
    };
    assert_eq!(
        handle(&mut server, impostor, at(2)).answer,
        Some(Answer::Nak)
    );
}

#[test]
fn a_host_name_claims_an_unpinned_declared_client_once() {
    let mut server = server();
    let laptop = Sent {
        host_name: Some("laptop"),
        ..sent(DhcpMessageType::Discover, mac(5))
    };
    let answer = handle(&mut server, laptop, at(0)).answer;
    assert!(matches!(answer, Some(Answer::Offer { address, .. }) if address == ip(11)));
    let request = Sent {
        kind: DhcpMessageType::Request,
        requested: Some(ip(11)),
        ..laptop
    };
    assert_eq!(
        handle(&mut server, request, at(1)).bound,
        Some((ip(11), mac(5)))
    );
    // A second host calling itself laptop gets a pool address, not laptop's.
    let twin = Sent {
        mac: mac(6),
        ..laptop
    };
    let answer = handle(&mut server, twin, at(2)).answer;
    assert!(matches!(answer, Some(Answer::Offer { address, .. }) if address == ip(100)));
    // Without the name, a client cannot ask for a declared address.
    let asks = Sent {
        requested: Some(ip(11)),
        ..sent(DhcpMessageType::Request, mac(7))
    };
    assert_eq!(handle(&mut server, asks, at(3)).answer, Some(Answer::Nak));
}

#[test]
fn a_client_from_another_network_is_told_at_once() {
    let mut server = server();
    let reboot = Sent {
        requested: Some(Ipv4Address::new(192, 168, 1, 50)),
        ..sent(DhcpMessageType::Request, mac(1))
    };
    let answer = handle(&mut server, reboot, at(0)).answer.unwrap();
    let nak = reply(answer, reboot);
    assert_eq!(
        (nak.kind, nak.to_ip, nak.to_mac),
        (
            DhcpMessageType::Nak,
            Ipv4Address::BROADCAST,
            EthernetAddress::BROADCAST
        )
    );
    assert_eq!(nak.option(3), None, "a NAK carries no parameters");
}

#[test]
fn a_request_for_another_server_frees_our_offer() {
    let mut server = server();
    handle(&mut server, sent(DhcpMessageType::Discover, mac(1)), at(0));
    let elsewhere = Sent {
        requested: Some(Ipv4Address::new(10, 137, 1, 200)),
        server: Some(Ipv4Address::new(10, 137, 1, 254)),
        ..sent(DhcpMessageType::Request, mac(1))
    };
    assert_eq!(handle(&mut server, elsewhere, at(1)).answer, None);
    assert!(server.leases().is_empty());
}

#[test]
fn release_ends_the_lease_and_decline_keeps_the_address_from_everyone() {
    let mut server = server();
    let bind = |server: &mut Server, m, a, t| {
        let request = Sent {
            requested: Some(a),
            ..sent(DhcpMessageType::Request, m)
        };
        handle(server, request, at(t)).bound
    };
    assert!(bind(&mut server, mac(1), ip(100), 0).is_some());
    let release = Sent {
        client_ip: ip(100),
        ..sent(DhcpMessageType::Release, mac(1))
    };
    assert_eq!(handle(&mut server, release, at(1)).ended, [ip(100)]);
    assert_eq!(server.holder(ip(100), at(1)), None);
    assert!(bind(&mut server, mac(2), ip(101), 2).is_some());
    let decline = Sent {
        requested: Some(ip(101)),
        ..sent(DhcpMessageType::Decline, mac(2))
    };
    assert_eq!(handle(&mut server, decline, at(3)).ended, [ip(101)]);
    assert_eq!(bind(&mut server, mac(3), ip(101), 4), None);
    let answer = handle(&mut server, sent(DhcpMessageType::Discover, mac(3)), at(4)).answer;
    assert!(matches!(answer, Some(Answer::Offer { address, .. }) if address == ip(100)));
}

#[test]
fn inform_is_answered_with_parameters_and_no_address() {
    let mut server = server();
    let inform = Sent {
        client_ip: ip(50),
        ..sent(DhcpMessageType::Inform, mac(1))
    };
    let answer = handle(&mut server, inform, at(0)).answer.unwrap();
    let ack = reply(answer, inform);
    assert_eq!(
        (ack.kind, ack.your_ip, ack.to_ip),
        (DhcpMessageType::Ack, Ipv4Address::UNSPECIFIED, ip(50))
    );
    assert_eq!(ack.option(51), None, "no lease");
    assert_eq!(ack.option(6), Some(&SERVER.octets()[..]));
}

#[test]
fn a_request_for_another_macs_lease_is_refused_before_it_is_read() {
    let mut bytes = frame(sent(DhcpMessageType::Discover, mac(1)));
    bytes[6..12].copy_from_slice(&mac(2).0); // sent from another MAC
    assert_eq!(
        ClientRequest::parse(&bytes),
        Err(Unusable::ForeignHardwareAddress)
    );
    let mut truncated = frame(sent(DhcpMessageType::Discover, mac(1)));
    truncated.truncate(14 + 20 + 8 + 100);
    assert_eq!(ClientRequest::parse(&truncated), Err(Unusable::Malformed));
}

#[test]
fn a_full_pool_takes_back_offers_and_idle_leases_but_never_an_active_one() {
    let mut server = server();
    // Four MACs take the whole pool (.100-.103).
    for n in 1..=4 {
        let request = Sent {
            requested: Some(ip(99 + n as u8)),
            ..sent(DhcpMessageType::Request, mac(n))
        };
        assert!(handle(&mut server, request, at(0)).bound.is_some());
    }
    let newcomer = sent(DhcpMessageType::Discover, mac(50));
    assert!(handle(&mut server, newcomer, at(10)).exhausted);
    // .101 keeps sending; the others go quiet.
    server.seen(ip(101), at(IDLE_RECLAIM.secs() + 5));
    let later = at(IDLE_RECLAIM.secs() + 10);
    let outcome = handle(&mut server, newcomer, later);
    assert!(matches!(outcome.answer, Some(Answer::Offer { address, .. }) if address == ip(100)));
    assert_eq!(outcome.ended, [ip(100)], "the reclaimed lease's states go");
    // The newcomer's outstanding offer is what the next newcomer takes first.
    let next = sent(DhcpMessageType::Discover, mac(51));
    let outcome = handle(&mut server, next, later + OFFER_HOLD / 2);
    assert!(matches!(outcome.answer, Some(Answer::Offer { address, .. }) if address == ip(100)));
    for _ in 0..8 {
        let m = mac(60);
        handle(&mut server, sent(DhcpMessageType::Discover, m), later);
    }
    assert_eq!(
        server.holder(ip(101), later),
        Some(mac(2)),
        "the active client keeps its lease"
    );
}

#[test]
fn new_leases_are_rate_limited_but_renewals_are_not() {
    let mut server = Server::new(ServerConfig {
        pool: Some((
            Ipv4Address::new(10, 137, 0, 0),
            Ipv4Address::new(10, 137, 3, 255),
        )),
        ..ServerConfig {
            params: params(),
            pool: None,
            lease_secs: 3600,
            reserved: Vec::new(),
        }
    });
    let request = |n: u16| Sent {
        requested: Some(Ipv4Address::from_bits(0x0a89_0000 + u32::from(n))),
        ..sent(DhcpMessageType::Request, mac(n))
    };
    let burst = NEW_LEASE_BURST as u16;
    for n in 0..burst {
        assert!(
            handle(&mut server, request(n), at(0)).bound.is_some(),
            "lease {n}"
        );
    }
    let over = handle(&mut server, request(burst), at(0));
    assert_eq!(
        (over.bound, over.answer),
        (None, None),
        "no answer: it retransmits"
    );
    assert!(
        handle(&mut server, request(0), at(0)).bound.is_some(),
        "a renewal"
    );
    assert!(
        handle(&mut server, request(burst), at(1)).bound.is_some(),
        "a second later"
    );
}
