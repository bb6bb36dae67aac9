//! Packets of a state leave through the NIC the state records, whatever address routing
//! would say.

mod appliance_common;

use appliance_common::*;
use dataplane::appliance::ApplianceOptions;
use dataplane::testutil::packets;
use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv4Cidr};

/// A host of the clients' network, 10.137.1.200.
const FAR_CLIENT: Host = Host {
    nic: CLIENTS,
    mac: EthernetAddress([0x02, 0x43, 0, 0, 1, 200]),
    ip: [10, 137, 1, 200],
};

#[test]
fn packets_of_a_state_leave_through_the_states_nic_when_address_routing_disagrees() {
    // The lab NIC addressed inside the clients' network (no valid ruleset or lease does
    // this): by address, 10.137.1.128/25 is nic2's, though FAR_CLIENT sits on nic1.
    let mut lab = Lab::with_config(&TWO_NETWORKS, ApplianceOptions::default(), |config| {
        config.nics[LAB as usize].ipv4 = Some(Ipv4Cidr::new(Ipv4Address::new(10, 137, 1, 129), 25));
    });
    lab.attach(FAR_CLIENT);
    lab.teach(GATEWAY);
    let probe = packets::udp(FAR_CLIENT.ip, 5000, SERVER, 33434, b"probe");
    let left = lab.send(FAR_CLIENT, &probe).ipv4_to(GATEWAY);
    let outside = udp_of(&left).src;

    // The reply goes back the way the flow came in.
    let reply = packets::udp(SERVER, 33434, APPLIANCE_UPLINK, outside.port(), b"echo");
    let back = lab.send(GATEWAY, &reply).ipv4_to(FAR_CLIENT);
    assert_eq!(udp_of(&back).dst, sock(FAR_CLIENT.ip, 5000));

    // So does an ICMP error about the flow.
    let error = packets::icmp_error(ROUTER, APPLIANCE_UPLINK, 11, 0, &with_ttl(left, 1));
    let arrived = lab.send(GATEWAY, &error).ipv4_to(FAR_CLIENT);
    assert_eq!(
        icmp_error_of(&arrived).quoted_src,
        sock(FAR_CLIENT.ip, 5000)
    );

    // And the appliance's own answers go back the way the packet came.
    let expiring = with_ttl(probe, 1);
    let answer = lab.send(FAR_CLIENT, &expiring).ipv4_to(FAR_CLIENT);
    assert_eq!(
        (icmp_error_of(&answer).src, icmp_error_of(&answer).icmp_type),
        (ip(APPLIANCE_CLIENTS), 11)
    );
}
