//! One client never hurts another: every shared resource — the queue of packets waiting for
//! ARP, the state table's early drop, the ICMP-error and reset budgets, the drop log — gives
//! each source its share, and what one source floods it takes from its own share.

mod appliance_common;

use appliance_common::*;
use dataplane::appliance::ApplianceOptions;
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
