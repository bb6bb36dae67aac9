//! An uplink addressed by DHCP: nothing leaves before the lease; a lost DISCOVER is sent
//! again within about a second, so the lease follows within seconds of the server becoming
//! reachable; the lease configures the address, the default route and the DNS redirect's
//! resolver; it is renewed with its server at T1 and rebound with any server at T2; and
//! losing it removes the address while the client keeps looking.

mod appliance_common;

use appliance_common::*;
use dataplane::drops::DropReason;
use dataplane::testutil::packets;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{DhcpMessageType, EthernetAddress, Ipv4Address, Ipv4Cidr};

/// Time steps of the tests that watch the client's timing.
const STEP: Duration = Duration::from_millis(50);

/// The uplink's address, if it has one.
fn uplink_address(lab: &Lab) -> Option<Ipv4Cidr> {
    lab.appliance.nic_config(UPLINK).and_then(|c| c.ipv4)
}

/// Polls every [`STEP`] until `until`, answering any ARP request for the gateway; returns
/// the DHCP messages sent, with when.
fn run_until(lab: &mut Lab, until: Instant) -> Vec<(Instant, DhcpSeen)> {
    let mut seen = Vec::new();
    while lab.now() < until {
        lab.advance(STEP);
        let sent = lab.poll();
        let at = lab.now();
        seen.extend(dhcp_messages(&sent).into_iter().map(|m| (at, m)));
        answer_arp_for_gateway(lab, &sent);
    }
    seen
}

/// If `sent` asks for the gateway, the gateway answers; returns what that released.
fn answer_arp_for_gateway(lab: &mut Lab, sent: &Sent) -> Sent {
    let asks = sent.frames.iter().any(|(nic, frame)| {
        *nic == UPLINK
            && frame.len() == dataplane::arp::ARP_FRAME_LEN
            && dataplane::arp::parse(&frame[14..]).is_some_and(|m| m.target_ip == ip(GATEWAY.ip))
    });
    if asks {
        lab.arp_reply(GATEWAY)
    } else {
        Sent::default()
    }
}

#[test]
fn before_the_lease_nothing_is_routed_out_and_the_client_is_told() {
    let mut lab = Lab::new(&DHCP_UPLINK);
    lab.attach(CLIENT);
    assert_eq!(uplink_address(&lab), None);
    let syn = packets::tcp_syn(CLIENT.ip, 40000, SERVER, 443);
    let error = icmp_error_of(&lab.send(CLIENT, &syn).ipv4_to(CLIENT));
    assert_eq!(
        (error.src, error.dst, error.icmp_type, error.code),
        (ip(APPLIANCE_CLIENTS), ip(CLIENT.ip), 3, 0)
    );
    assert_eq!(lab.dropped(DropReason::NoRoute), 1);

    // Nothing but the DHCP client's answers is taken in on the unconfigured uplink.
    lab.send(
        GATEWAY,
        &packets::udp(SERVER, 53, [10, 0, 2, 15], 5000, b"?"),
    )
    .assert_nothing();
    assert_eq!(lab.dropped(DropReason::NicUnconfigured), 1);
}

#[test]
fn lease_configures_the_uplink_announces_it_and_opens_the_way_out() {
    let mut lab = Lab::new(&DHCP_UPLINK);
    lab.attach(CLIENT);
    take_log_lines();
    let after_ack = DhcpServer::default().lease(&mut lab);
    // The gratuitous ARP, then the gateway and the resolver the lease named are asked for.
    let ask =
        |target| dataplane::arp::request(appliance_mac(UPLINK), ip(APPLIANCE_UPLINK), ip(target));
    assert_eq!(
        after_ack.arp_broadcasts(),
        [
            (UPLINK, ask(APPLIANCE_UPLINK)),
            (UPLINK, ask(GATEWAY.ip)),
            (UPLINK, ask(RESOLVER.ip)),
        ]
    );
    assert_eq!(
        dhcp_log_lines(),
        ["nic0 dhcp: address 10.0.2.15/24 gateway 10.0.2.2 dns [10.0.2.3], lease 600 s from 10.0.2.2"]
    );
    let config = lab.appliance.nic_config(UPLINK).expect("nic0");
    assert_eq!(config.ipv4, Some(Ipv4Cidr::new(ip(APPLIANCE_UPLINK), 24)));
    assert_eq!(config.gateway, Some(ip(GATEWAY.ip)));

    lab.teach(GATEWAY);
    Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
}

#[test]
fn dns_redirect_uses_the_resolver_the_lease_named() {
    let mut lab = Lab::new(&DHCP_UPLINK);
    lab.attach(CLIENT);
    DhcpServer::default().lease(&mut lab);
    lab.teach(RESOLVER);
    let query = packets::udp(CLIENT.ip, 5353, APPLIANCE_CLIENTS, 53, b"query");
    let redirected = udp_of(&lab.send(CLIENT, &query).ipv4_to(RESOLVER));
    assert_eq!(
        (redirected.src, redirected.dst),
        (sock(APPLIANCE_UPLINK, 5353), sock(RESOLVER.ip, 53))
    );
}

#[test]
fn a_lost_first_discover_is_sent_again_within_about_a_second() {
    let mut lab = Lab::new(&DHCP_UPLINK);
    let booted = lab.now();
    let lost = dhcp_messages(&lab.poll());
    assert_eq!(
        lost.len(),
        1,
        "the first DISCOVER goes out at once (and is lost)"
    );
    let mut again = None;
    while again.is_none() && lab.now() < booted + Duration::from_secs(15) {
        lab.advance(STEP);
        let sent = lab.poll();
        if !dhcp_messages(&sent).is_empty() {
            again = Some((lab.now(), sent));
        }
    }
    let (at, sent) = again.expect("the DISCOVER is sent again");
    assert!(
        at - booted <= Duration::from_millis(1250),
        "the second DISCOVER came {} after the first",
        at - booted
    );
    DhcpServer::default().converse(&mut lab, sent);
    assert_eq!(
        uplink_address(&lab),
        Some(Ipv4Cidr::new(ip(APPLIANCE_UPLINK), 24))
    );
}

#[test]
fn the_lease_arrives_within_three_seconds_of_the_server_becoming_reachable() {
    let server = DhcpServer::default();
    for reachable_ms in [700, 2_300, 4_100, 6_650, 11_900, 30_200, 95_550] {
        let mut lab = Lab::new(&DHCP_UPLINK);
        let reachable = lab.now() + Duration::from_millis(reachable_ms);
        let mut sent = lab.poll();
        while uplink_address(&lab).is_none() {
            if lab.now() >= reachable {
                server.converse(&mut lab, sent);
            }
            lab.advance(STEP);
            sent = lab.poll();
        }
        let waited = lab.now() - reachable;
        assert!(
            waited < Duration::from_secs(3),
            "server reachable {reachable_ms} ms after boot: lease {waited} later"
        );
    }
}

#[test]
fn the_lease_is_renewed_with_its_server_at_t1_and_flows_go_on() {
    let mut lab = Lab::new(&DHCP_UPLINK);
    lab.attach(CLIENT);
    let server = DhcpServer::default();
    server.lease(&mut lab);
    lab.teach(GATEWAY);
    let mut connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
    let granted = lab.now();
    let before_t1 = run_until(&mut lab, granted + Duration::from_millis(299_950));
    assert!(before_t1.is_empty(), "nothing before T1: {before_t1:?}");

    lab.advance(STEP);
    let mut sent = lab.poll();
    sent.frames
        .extend(answer_arp_for_gateway(&mut lab, &sent).frames);
    let [renewal] = &dhcp_messages(&sent)[..] else {
        panic!("one renewal at T1: {sent:?}")
    };
    assert_eq!(
        (
            renewal.message_type,
            renewal.dst,
            renewal.ip_src,
            renewal.ip_dst,
            renewal.client_ip,
            renewal.requested_ip
        ),
        (
            DhcpMessageType::Request,
            GATEWAY.mac,
            ip(APPLIANCE_UPLINK),
            ip(GATEWAY.ip),
            ip(APPLIANCE_UPLINK),
            None
        ),
        "a renewal is unicast to the server, from the leased address"
    );
    take_log_lines();
    server.converse(&mut lab, sent);
    assert_eq!(
        dhcp_log_lines(),
        Vec::<String>::new(),
        "an unchanged renewal is not worth a console line"
    );
    assert_eq!(
        uplink_address(&lab),
        Some(Ipv4Cidr::new(ip(APPLIANCE_UPLINK), 24))
    );
    connection.client_sends(&mut lab, dataplane::packet::tcp_flags::ACK, b"still here");
    let until = lab.now() + Duration::from_secs(299);
    let until_next_t1 = run_until(&mut lab, until);
    assert!(until_next_t1.is_empty(), "{until_next_t1:?}");
}

#[test]
fn unanswered_renewals_turn_into_broadcast_rebinding_at_t2() {
    let mut lab = Lab::new(&DHCP_UPLINK);
    let server = DhcpServer::default();
    server.lease(&mut lab);
    let granted = lab.now();
    let seen = run_until(&mut lab, granted + Duration::from_secs(530));
    let t2 = granted + Duration::from_secs(525);
    assert!(seen.len() >= 4, "retransmissions: {seen:?}");
    for (at, message) in &seen {
        assert_eq!(message.message_type, DhcpMessageType::Request);
        assert_eq!(message.client_ip, ip(APPLIANCE_UPLINK));
        let expected = if *at < t2 {
            GATEWAY.mac
        } else {
            EthernetAddress::BROADCAST
        };
        assert_eq!(message.dst, expected, "at {}", *at - granted);
    }
    assert!(seen.iter().any(|(at, _)| *at >= t2), "a rebinding REQUEST");

    // Any server may extend it now.
    let (_, rebinding) = seen.last().expect("a REQUEST").clone();
    let ack = server.answer_to(&rebinding).expect("an ACK");
    server.send(&mut lab, &ack);
    let after = run_until(&mut lab, granted + Duration::from_secs(800));
    assert!(
        after.is_empty(),
        "rebound: quiet until the new T1: {after:?}"
    );
    assert_eq!(
        uplink_address(&lab),
        Some(Ipv4Cidr::new(ip(APPLIANCE_UPLINK), 24))
    );
}

#[test]
fn losing_the_lease_removes_the_address_and_the_client_keeps_looking() {
    let mut lab = Lab::new(&DHCP_UPLINK);
    lab.attach(CLIENT);
    DhcpServer::default().lease(&mut lab);
    take_log_lines();
    // The server never answers a renewal: the lease runs out.
    let until = lab.now() + Duration::from_secs(610);
    let seen = run_until(&mut lab, until);
    assert_eq!(uplink_address(&lab), None);
    assert_eq!(
        dhcp_log_lines(),
        ["nic0 dhcp: lease on 10.0.2.15/24 expired: address removed, 0 states dropped; looking for a server"]
    );
    let discovers: Vec<&(Instant, DhcpSeen)> = seen
        .iter()
        .filter(|(_, m)| m.message_type == DhcpMessageType::Discover)
        .collect();
    assert!(
        discovers.len() >= 3,
        "the client keeps looking: {discovers:?}"
    );
    assert!(discovers
        .iter()
        .all(|(_, m)| m.ip_src == Ipv4Address::UNSPECIFIED));
    lab.attach(CLIENT);
    let syn = packets::tcp_syn(CLIENT.ip, 40000, SERVER, 443);
    let error = icmp_error_of(&lab.send(CLIENT, &syn).ipv4_to(CLIENT));
    assert_eq!((error.icmp_type, error.code), (3, 0));
}
