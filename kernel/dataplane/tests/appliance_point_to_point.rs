//! Qubes' wiring: each qube on a point-to-point link (/32) whose appliance end has the one
//! gateway address all links share. Each qube resolves and pings the gateway on its own
//! link, and its answers go back out of that link.

mod appliance_common;

use appliance_common::*;
use dataplane::testutil::packets;
use smoltcp::wire::{ArpOperation, EthernetAddress};

const GATEWAY: [u8; 4] = [10, 137, 0, 1];

fn qube(nic: u8, last: u8) -> Host {
    Host {
        nic,
        mac: EthernetAddress([0x00, 0x16, 0x3e, 0, nic, last]),
        ip: [10, 137, 0, last],
    }
}

#[test]
fn every_qube_resolves_and_pings_the_shared_gateway_on_its_own_link() {
    let mut lab = Lab::new(&POINT_TO_POINT);
    for host in [qube(1, 10), qube(2, 11)] {
        let reply = lab.arp_request(host, GATEWAY).arp_to(host);
        assert_eq!(reply.operation, ArpOperation::Reply);
        assert_eq!(
            (reply.sender_mac, reply.sender_ip),
            (appliance_mac(host.nic), ip(GATEWAY))
        );
        let ping = packets::icmp_echo(host.ip, GATEWAY, true, 7, 1, b"qube");
        let echo = echo_of(&lab.send(host, &ping).ipv4_to(host));
        assert_eq!(
            (echo.src, echo.dst, echo.request),
            (ip(GATEWAY), ip(host.ip), false)
        );
    }
}
