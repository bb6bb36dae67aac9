//! Per-client and per-source state limits hold for IPv6 as for IPv4: a client is one
//! source whatever address of its /64 and whichever family it sends from — a declared
//! client by its declared address, a DHCP pool client by the MAC that holds its lease —
//! and an IPv6 sender nobody names is counted by its /64.

mod appliance_common;

use appliance_common::*;
use dataplane::dhcp::ClientMessage;
use dataplane::drops::DropReason;
use dataplane::testutil::packets;
use dataplane::testutil::packets6::{self, addr};
use smoltcp::wire::{EthernetAddress, Ipv4Address};

/// A host on the clients' network with MAC `…:n` and IPv4 address `ip`, sending IPv6 from
/// `ip6` (an address of the clients' prefix).
fn host6(n: u8, ip: [u8; 4], ip6: &'static str) -> Host6 {
    Host6 {
        host: Host {
            nic: CLIENTS,
            mac: EthernetAddress([0x02, 0x43, 0, 0, 9, n]),
            ip,
        },
        ip: ip6,
    }
}

/// `host` at another address of its /64 (a privacy address, or a forged one).
fn at(host: Host6, ip6: &'static str) -> Host6 {
    Host6 { ip: ip6, ..host }
}

/// The lab, the uplink's router known for both families.
fn lab() -> Lab {
    let mut lab = Lab::new(&SERVED_DUAL_STACK);
    lab.teach(GATEWAY);
    lab.teach6(GATEWAY6).assert_nothing();
    lab
}

/// `host` takes a lease of the pool (DISCOVER, then REQUEST of what was offered).
fn lease(lab: &mut Lab, host: Host) -> Ipv4Address {
    let discover = ClientMessage::Discover.build(host.mac, 7, 0, Ipv4Address::BROADCAST);
    let sent = lab.receive(
        CLIENTS,
        packets::ethernet(host.mac, EthernetAddress::BROADCAST, &discover),
    );
    let offered = dataplane::dhcp::ServerMessage::parse(&sent.frames[0].1)
        .expect("an offer")
        .your_ip;
    let select = ClientMessage::Select {
        address: offered,
        server: ip(APPLIANCE_CLIENTS),
    };
    let request = select.build(host.mac, 8, 0, Ipv4Address::BROADCAST);
    lab.receive(
        CLIENTS,
        packets::ethernet(host.mac, EthernetAddress::BROADCAST, &request),
    );
    offered
}

/// `from` opens a TCP flow to the IPv6 server on `port`: whether it went out.
fn open6(lab: &mut Lab, from: Host6, port: u16) -> bool {
    let syn = packets6::tcp_syn(from.addr(), port, addr(SERVER6), 443);
    !lab.send6(from, &syn).frames.is_empty()
}

/// `from` opens a TCP flow to the IPv4 server on `port`: whether it went out.
fn open4(lab: &mut Lab, from: Host, port: u16) -> bool {
    let syn = packets::tcp_syn(from.ip, port, SERVER, 443);
    !lab.send(from, &syn).frames.is_empty()
}

#[test]
fn a_pool_clients_ipv6_flows_count_against_its_lease_whatever_address_it_picks() {
    let mut lab = lab();
    let leased = host6(1, [10, 137, 1, 100], "fd00:137:1::a:1");
    assert_eq!(lease(&mut lab, leased.host), ip(leased.host.ip));
    // max-states 2 of the pool: one IPv4 flow and one IPv6 flow...
    assert!(open4(&mut lab, leased.host, 40000));
    assert!(open6(&mut lab, leased, 40001));
    // ...and no more, from any address of the prefix.
    assert!(!open6(&mut lab, at(leased, "fd00:137:1::a:2"), 40002));
    assert!(!open6(&mut lab, at(leased, "fd00:137:1::bad:beef"), 40003));
    assert_eq!(lab.dropped(DropReason::StateLimit), 2);
    assert!(take_log_lines()
        .iter()
        .any(|l| l.contains("client-state-limit")));
}

#[test]
fn a_declared_client_is_one_source_over_both_families_and_every_address_of_its_prefix() {
    let mut lab = lab();
    let work = Host6 {
        host: CLIENT,
        ip: "fd00:137:1::10",
    };
    lab.teach6(work).assert_nothing();
    // max-states 3 of the client: IPv4 and IPv6 flows together.
    assert!(open4(&mut lab, work.host, 40000));
    assert!(open6(&mut lab, work, 40001));
    assert!(open6(&mut lab, work, 40002));
    assert!(!open6(&mut lab, work, 40003));
    assert!(!open4(&mut lab, work.host, 40004));
    assert_eq!(lab.dropped(DropReason::StateLimit), 2);
}

#[test]
fn an_ipv6_only_declared_client_has_its_own_limit() {
    let mut lab = lab();
    let v6only = host6(5, [10, 137, 1, 99], "fd00:137:1::20");
    for port in 40000..40003 {
        assert!(open6(&mut lab, v6only, port), "flow {port}");
    }
    assert!(!open6(&mut lab, v6only, 40003));
    // The declared dual-stack client is another source, with its own count.
    let work = Host6 {
        host: CLIENT,
        ip: "fd00:137:1::10",
    };
    assert!(open6(&mut lab, work, 40000));
}

#[test]
fn an_unnamed_ipv6_sender_is_limited_by_its_slash_64_not_per_address() {
    let mut lab = lab();
    // No lease, no declaration: SLAAC in the clients' prefix, hopping addresses.
    let stranger = host6(7, [0; 4], "fd00:137:1::7:1");
    let hops = [
        "fd00:137:1::7:1",
        "fd00:137:1::7:2",
        "fd00:137:1::7:3",
        "fd00:137:1::7:4",
        "fd00:137:1::7:5",
        "fd00:137:1::7:6",
    ];
    let opened = hops
        .iter()
        .enumerate()
        .filter(|&(i, &ip6)| open6(&mut lab, at(stranger, ip6), 41000 + i as u16))
        .count();
    // max-src-states 4 of the rule, for the whole /64.
    assert_eq!(opened, 4);
    assert_eq!(lab.dropped(DropReason::StateLimit), 2);
    assert!(take_log_lines()
        .iter()
        .any(|l| l.contains("source-state-limit")));
}
