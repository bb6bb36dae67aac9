//! One client never hurts another: every shared resource — the queue of packets waiting for
//! ARP, the state table's early drop, the ICMP-error and reset budgets, the drop log — gives
//! each source its share, and what one source floods it takes from its own share.

mod appliance_common;

use appliance_common::*;
use dataplane::appliance::ApplianceOptions;
use dataplane::drops::DropReason;
use dataplane::neighbor::REQUEST_INTERVAL;
use dataplane::testutil::packets;
use smoltcp::time::Duration;
use smoltcp::wire::{ArpOperation, Ipv4Packet};

/// `policy`'s network with both clients attached and the gateway and resolver known.
fn lab_with(policy: &'static dataplane::policy::PolicyBuf, options: ApplianceOptions) -> Lab {
    let mut lab = Lab::with_options(policy, options);
    lab.attach(CLIENT);
    lab.attach(CLIENT2);
    lab.teach(GATEWAY);
    lab.teach(RESOLVER);
    lab
}

fn small_table(capacity: usize) -> ApplianceOptions {
    ApplianceOptions {
        state_capacity: capacity,
        ..ApplianceOptions::default()
    }
}

/// The ARP requests among `sent`, as `(nic, target)`, whoever they were sent to.
fn arp_requests(sent: &Sent) -> Vec<(u8, [u8; 4])> {
    sent.frames
        .iter()
        .filter_map(|(nic, frame)| {
            let eth = smoltcp::wire::EthernetFrame::new_checked(&frame[..]).ok()?;
            let message = dataplane::arp::parse(eth.payload())?;
            (message.operation == ArpOperation::Request).then(|| (*nic, message.target_ip.octets()))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The ARP queue.

/// An unused address on the uplink's network: nobody answers ARP for it.
fn unused_uplink_address(i: u8) -> [u8; 4] {
    [10, 0, 2, 100 + i]
}

/// CLIENT2 sends a few datagrams to each of 16 unused addresses on the uplink's network.
fn probe_unused_addresses(lab: &mut Lab) {
    for i in 0..16 {
        for port in 0..4 {
            let packet = packets::udp(CLIENT2.ip, 6000 + port, unused_uplink_address(i), 9, b"?");
            lab.send(CLIENT2, &packet);
        }
    }
}

#[test]
fn one_client_flooding_unused_uplink_addresses_does_not_cut_everyone_off_the_gateway() {
    let mut lab = lab_with(&DEFAULT, ApplianceOptions::default());
    // CLIENT2 keeps packets waiting for 16 addresses that never answer, refreshing them
    // as they are given up, for longer than the gateway's entry lives.
    for _ in 0..65 {
        probe_unused_addresses(&mut lab);
        lab.advance(REQUEST_INTERVAL);
        lab.poll();
    }
    probe_unused_addresses(&mut lab);

    // The gateway's entry has expired: CLIENT's packet makes the appliance ask for it...
    let packet = packets::udp(CLIENT.ip, 5000, SERVER, 53, b"query");
    let sent = lab.send(CLIENT, &packet);
    assert!(
        arp_requests(&sent).contains(&(UPLINK, GATEWAY.ip)),
        "the gateway is asked for: {sent:?}"
    );
    // ...and the packet leaves once it answers.
    let released = lab.arp_reply(GATEWAY).each_ipv4_to(GATEWAY);
    assert_eq!(released.len(), 1, "CLIENT's packet waited for the gateway");
    assert_eq!(udp_of(&released[0]).payload, b"query");
}

#[test]
fn a_flooded_arp_queue_still_asks_for_every_new_destination() {
    let mut lab = lab_with(&DEFAULT, ApplianceOptions::default());
    probe_unused_addresses(&mut lab);
    // CLIENT wants an address on the uplink's network nobody asked for yet: it is asked
    // for at once, and its packet waits for the answer.
    let neighbour = Host {
        nic: UPLINK,
        mac: smoltcp::wire::EthernetAddress([0x02, 0x47, 0, 0, 0, 0x40]),
        ip: [10, 0, 2, 40],
    };
    let sent = lab.send(
        CLIENT,
        &packets::udp(CLIENT.ip, 5000, neighbour.ip, 9, b"hi"),
    );
    assert_eq!(arp_requests(&sent), [(UPLINK, neighbour.ip)]);
    let released = lab.arp_reply(neighbour).each_ipv4_to(neighbour);
    assert_eq!(
        released.len(),
        1,
        "CLIENT's packet was queued despite the flood"
    );
}

// ---------------------------------------------------------------------------------------
// The state table's early drop.

/// `client` asks the appliance for a name: the query is redirected to the resolver. Returns
/// the query as it left (masqueraded).
fn dns_query(lab: &mut Lab, client: Host, port: u16) -> Vec<u8> {
    let query = packets::udp(client.ip, port, APPLIANCE_CLIENTS, 53, b"example.org?");
    lab.send(client, &query).ipv4_to(RESOLVER)
}

/// The resolver answers the query `left` (as it left the appliance); the answer must reach
/// `client` at `port`.
fn dns_answer_reaches(lab: &mut Lab, left: &[u8], client: Host, port: u16) {
    let seen = udp_of(left);
    let answer = packets::udp(
        RESOLVER.ip,
        53,
        seen.src.ip().octets(),
        seen.src.port(),
        b"93.184.216.34",
    );
    let reached = udp_of(&lab.send(RESOLVER, &answer).ipv4_to(client));
    assert_eq!(reached.dst, sock(client.ip, port));
    assert_eq!(reached.payload, b"93.184.216.34");
}

#[test]
fn a_syn_flood_from_the_uplink_to_a_port_forward_does_not_evict_a_clients_pending_dns() {
    let mut lab = lab_with(&DECLARED, small_table(256));
    let left = dns_query(&mut lab, CLIENT2, 5353);
    // Far more SYNs than the table holds, from the uplink to the forwarded port, from one
    // address and from many.
    for n in 0..1024u16 {
        let source = if n % 2 == 0 {
            REMOTE
        } else {
            [198, 18, (n >> 8) as u8, n as u8]
        };
        let syn = packets::tcp_syn(source, 1024 + n, APPLIANCE_UPLINK, 8022);
        lab.send(GATEWAY, &syn).ipv4_to(CLIENT);
    }
    assert!(lab.appliance.state_stats().early_drops > 0);
    dns_answer_reaches(&mut lab, &left, CLIENT2, 5353);
}

#[test]
fn a_client_flooding_new_flows_evicts_its_own_half_open_states_not_another_clients() {
    let mut lab = lab_with(&DEFAULT, small_table(64));
    let left = dns_query(&mut lab, CLIENT, 5353);
    for port in 0..500u16 {
        let datagram = packets::udp(CLIENT2.ip, 10_000 + port, SERVER, 9, b"x");
        lab.send(CLIENT2, &datagram).ipv4_to(GATEWAY);
    }
    dns_answer_reaches(&mut lab, &left, CLIENT, 5353);
    // CLIENT2's own oldest flow was the one given up.
    let first = packets::udp(SERVER, 9, APPLIANCE_UPLINK, 10_000, b"late");
    lab.send(GATEWAY, &first).assert_nothing();
}

#[test]
fn the_biggest_consumer_cannot_take_a_quiet_clients_half_open_state() {
    let mut lab = lab_with(&DEFAULT, small_table(16));
    // CLIENT2 holds 15 answered (established) flows; CLIENT has one query in flight.
    for port in 0..15u16 {
        let out = lab
            .send(
                CLIENT2,
                &packets::udp(CLIENT2.ip, 7000 + port, SERVER, 9, b"x"),
            )
            .ipv4_to(GATEWAY);
        let back = packets::udp(SERVER, 9, APPLIANCE_UPLINK, udp_of(&out).src.port(), b"y");
        lab.send(GATEWAY, &back).ipv4_to(CLIENT2);
    }
    let left = dns_query(&mut lab, CLIENT, 5353);
    // The table is full: CLIENT2's next flow is refused rather than taking CLIENT's.
    lab.send(CLIENT2, &packets::udp(CLIENT2.ip, 8000, SERVER, 9, b"x"))
        .assert_nothing();
    assert_eq!(lab.dropped(DropReason::StateTableFull), 1);
    dns_answer_reaches(&mut lab, &left, CLIENT, 5353);
}

// ---------------------------------------------------------------------------------------
// The ICMP-error and reset budgets.

/// A datagram from `client` too big for the uplink, with DF set.
fn too_big_from(client: Host) -> Vec<u8> {
    let big = packets::udp(client.ip, 5000, SERVER, 9000, &[0xab; 1600]);
    assert!(Ipv4Packet::new_checked(&big[..]).unwrap().dont_frag());
    big
}

#[test]
fn time_exceeded_noise_from_one_client_does_not_deny_another_its_fragmentation_needed() {
    let mut lab = lab_with(&DEFAULT, ApplianceOptions::default());
    for port in 0..60 {
        let mut probe = packets::udp(CLIENT2.ip, 33434 + port, SERVER, 33434, b"trace");
        packets::set_ttl(&mut probe, 1);
        lab.send(CLIENT2, &probe);
    }
    let error = lab.send(CLIENT, &too_big_from(CLIENT)).ipv4_to(CLIENT);
    let seen = icmp_error_of(&error);
    assert_eq!((seen.icmp_type, seen.code), (3, 4), "fragmentation needed");
}

#[test]
fn a_random_source_flood_from_the_uplink_does_not_deny_a_client_its_errors() {
    let mut lab = lab_with(&DECLARED, ApplianceOptions::default());
    // Probes that run out of TTL here, to the forwarded port, from thousands of addresses:
    // the uplink's share of the budget runs out, the clients' does not.
    for n in 0..5000u32 {
        let source = [198, 18, (n >> 8) as u8, n as u8];
        let mut probe = packets::tcp_syn(source, 33434, APPLIANCE_UPLINK, 8022);
        packets::set_ttl(&mut probe, 1);
        lab.send(GATEWAY, &probe);
    }
    let error = lab.send(CLIENT, &too_big_from(CLIENT)).ipv4_to(CLIENT);
    assert_eq!(icmp_error_of(&error).code, 4, "fragmentation needed");
    let mut probe = packets::udp(CLIENT.ip, 33434, SERVER, 33434, b"trace");
    packets::set_ttl(&mut probe, 1);
    let error = lab.send(CLIENT, &probe).ipv4_to(CLIENT);
    assert_eq!(icmp_error_of(&error).icmp_type, 11, "time exceeded");
}

#[test]
fn reset_noise_from_one_client_does_not_deny_another_its_reset() {
    let mut lab = lab_with(&REJECTING, ApplianceOptions::default());
    for port in 0..200 {
        lab.send(
            CLIENT2,
            &packets::tcp_syn(CLIENT2.ip, 1024 + port, SERVER, 25),
        );
    }
    let reset = lab
        .send(CLIENT, &packets::tcp_syn(CLIENT.ip, 40000, SERVER, 25))
        .ipv4_to(CLIENT);
    assert_eq!(tcp_of(&reset).dst, sock(CLIENT.ip, 40000));
}

// ---------------------------------------------------------------------------------------
// The drop log.

fn drop_lines() -> Vec<String> {
    take_log_lines()
        .into_iter()
        .filter(|l| l.starts_with("drop "))
        .collect()
}

#[test]
fn one_clients_noise_does_not_hide_another_clients_drop_line() {
    let mut lab = lab_with(&DEFAULT, ApplianceOptions::default());
    take_log_lines();
    // CLIENT2 knocks on CLIENT's ports, many times a second, for a while.
    for tenth in 0..10u16 {
        lab.advance(Duration::from_millis(100));
        for port in 0..100 {
            let knock = packets::tcp_syn(CLIENT2.ip, 1024 + tenth * 100 + port, CLIENT.ip, 22);
            lab.send(CLIENT2, &knock).assert_nothing();
        }
    }
    let noise = drop_lines();
    assert!(
        noise.len() < 100,
        "CLIENT2's lines are rate-limited: {}",
        noise.len()
    );
    // CLIENT's one drop gets its line, and the suppressed count is still told.
    lab.send(
        CLIENT,
        &packets::tcp_syn(CLIENT.ip, 40000, APPLIANCE_CLIENTS, 22),
    )
    .assert_nothing();
    let lines = drop_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("drop nic1 block default") && lines[0].contains("10.137.1.10:40000"),
        "{lines:?}"
    );
    assert!(
        lines[0].contains("earlier drop lines suppressed)"),
        "{lines:?}"
    );
    assert!(lab.appliance.stats().log_lines_suppressed > 0);
}
