//! One client never hurts another: every shared resource — the queue of packets waiting for
//! ARP, the state table's early drop, the ICMP-error and reset budgets, the drop log — gives
//! each source its share, and what one source floods it takes from its own share.

mod appliance_common;

use appliance_common::*;
use dataplane::appliance::ApplianceOptions;
use dataplane::drops::DropReason;
use dataplane::neighbor::REQUEST_INTERVAL;
use dataplane::testutil::packets;
use smoltcp::wire::ArpOperation;

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
