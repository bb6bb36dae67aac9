//! Which ARP requests the appliance answers with its own MAC, proxy ARP included.
//!
//! Qubes-style clients get an address (often a /32) and the appliance as gateway, and may
//! ARP for any address — their gateway's, or a peer's they believe on-link. So on a client
//! NIC, [`decide`] answers a request from a **declared client** for **any** target other
//! than the client's own address: whatever it asks for, its frames come to the appliance,
//! where routing and the policy decide. (On a segment shared by several declared clients
//! this sends their traffic to each other through the appliance too — which is what
//! isolation wants.) A request whose target is the sender's own address (a gratuitous ARP
//! or duplicate-address probe) is never answered: that would tell the client its address is
//! taken.
//!
//! Everywhere, including the uplink, a request for the appliance's own address on that NIC
//! is answered. Nothing else is answered on the uplink, nor for hosts that are not declared
//! clients, nor for targets that cannot be hosts (0/8, 127/8, multicast, broadcast), nor on
//! a NIC without an IPv4 address (it carries no traffic).
//!
//! The decision is a pure function of the request and the [`Topology`]; building and
//! sending the reply is [`crate::arp`]'s job.

use smoltcp::wire::ArpOperation;

use crate::arp::ArpMessage;
use crate::packet::is_special_purpose;
use crate::route::Topology;

/// Whether and why to answer an ARP request with the appliance's MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpAnswer {
    /// The target is the appliance's own address on this NIC.
    OwnAddress,
    /// Proxy ARP: a declared client asks for another address.
    Proxy,
    /// Do not answer.
    Ignore,
}

impl ArpAnswer {
    /// Whether a reply with the appliance's MAC is sent.
    pub fn replies(&self) -> bool {
        !matches!(self, ArpAnswer::Ignore)
    }
}

/// Decides how to answer `message`, received on NIC `nic`. See the module documentation.
pub fn decide(topology: &Topology, nic: u8, message: &ArpMessage) -> ArpAnswer {
    if message.operation != ArpOperation::Request {
        return ArpAnswer::Ignore;
    }
    let Some(cidr) = topology.address_on(nic) else {
        return ArpAnswer::Ignore;
    };
    if message.target_ip == cidr.address() {
        return ArpAnswer::OwnAddress;
    }
    if topology.is_uplink(nic) {
        return ArpAnswer::Ignore;
    }
    if topology
        .client_addresses_on(nic)
        .any(|client| client == message.sender_ip)
    {
        for_client(message)
    } else {
        ArpAnswer::Ignore
    }
}

/// The answer to `message` from a client on a client NIC (a declared client, or one holding
/// a DHCP lease there): proxy ARP for any target but the client's own address and targets
/// that cannot be hosts.
pub fn for_client(message: &ArpMessage) -> ArpAnswer {
    if message.operation != ArpOperation::Request
        || message.target_ip == message.sender_ip
        || is_special_purpose(message.target_ip)
    {
        ArpAnswer::Ignore
    } else {
        ArpAnswer::Proxy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arp;
    use crate::route::fixtures::*;
    use smoltcp::wire::EthernetAddress;

    const CLIENT_MAC: EthernetAddress = EthernetAddress([0x00, 0x16, 0x3e, 0x5e, 0x6c, 0x11]);

    /// "Who has `target`? Tell `sender`", parsed from the bytes of a real frame.
    fn who_has(target: [u8; 4], sender: [u8; 4]) -> ArpMessage {
        let mut frame = [0u8; arp::ARP_FRAME_LEN];
        let request = arp::request(CLIENT_MAC, ip(sender), ip(target));
        arp::emit(&mut frame, EthernetAddress::BROADCAST, &request);
        arp::parse(&frame[14..]).expect("a valid ARP request")
    }

    /// The lab's answer on `nic` to "who has `target`? tell `sender`".
    fn answer(nic: u8, target: [u8; 4], sender: [u8; 4]) -> ArpAnswer {
        decide(&Lab::new().topology(), nic, &who_has(target, sender))
    }

    const QUBES_CLIENT: [u8; 4] = [10, 137, 0, 17];
    const LAN_CLIENT: [u8; 4] = [10, 137, 1, 10];

    #[test]
    fn qubes_client_gets_our_mac_for_its_gateway() {
        // Qubes gives the client 10.137.0.17 and a gateway it believes is 10.137.0.1.
        assert_eq!(
            answer(QUBES_VIF, [10, 137, 0, 1], QUBES_CLIENT),
            ArpAnswer::Proxy
        );
    }

    #[test]
    fn declared_client_gets_our_mac_for_any_other_address() {
        for target in [[10, 137, 1, 20], [8, 8, 8, 8], [10, 0, 2, 2]] {
            let reply = answer(CLIENT_LAN, target, LAN_CLIENT);
            assert_eq!(reply, ArpAnswer::Proxy, "{target:?}");
            assert!(reply.replies());
        }
    }

    #[test]
    fn client_probing_its_own_address_is_not_answered() {
        let reply = answer(QUBES_VIF, QUBES_CLIENT, QUBES_CLIENT);
        assert_eq!(reply, ArpAnswer::Ignore);
        assert!(!reply.replies());
    }

    #[test]
    fn our_own_address_is_answered_on_every_nic() {
        assert_eq!(
            answer(UPLINK, [10, 0, 2, 15], [10, 0, 2, 2]),
            ArpAnswer::OwnAddress
        );
        assert_eq!(
            answer(CLIENT_LAN, [10, 137, 1, 1], LAN_CLIENT),
            ArpAnswer::OwnAddress
        );
        assert_eq!(
            answer(OPEN_LAN, [192, 168, 50, 1], [192, 168, 50, 9]),
            ArpAnswer::OwnAddress
        );
        // Also a duplicate-address probe (sender 0.0.0.0) for our address: we hold it.
        assert_eq!(
            answer(OPEN_LAN, [192, 168, 50, 1], [0, 0, 0, 0]),
            ArpAnswer::OwnAddress
        );
    }

    #[test]
    fn uplink_never_proxies() {
        for target in [[10, 0, 2, 3], LAN_CLIENT, [1, 1, 1, 1]] {
            assert_eq!(
                answer(UPLINK, target, [10, 0, 2, 2]),
                ArpAnswer::Ignore,
                "{target:?}"
            );
        }
        // Not even for a "client" address posing from the uplink.
        assert_eq!(answer(UPLINK, [10, 0, 2, 3], LAN_CLIENT), ArpAnswer::Ignore);
    }

    #[test]
    fn undeclared_hosts_get_no_proxy() {
        assert_eq!(
            answer(CLIENT_LAN, LAN_CLIENT, [10, 137, 1, 11]),
            ArpAnswer::Ignore
        );
        assert_eq!(
            answer(OPEN_LAN, [192, 168, 50, 2], [192, 168, 50, 9]),
            ArpAnswer::Ignore
        );
        // A client declared on another NIC is a stranger here.
        assert_eq!(
            answer(CLIENT_LAN, [10, 137, 1, 20], QUBES_CLIENT),
            ArpAnswer::Ignore
        );
    }

    #[test]
    fn targets_that_cannot_be_hosts_get_no_proxy() {
        for target in [
            [0, 0, 0, 0],
            [127, 0, 0, 1],
            [224, 0, 0, 1],
            [255, 255, 255, 255],
        ] {
            assert_eq!(
                answer(QUBES_VIF, target, QUBES_CLIENT),
                ArpAnswer::Ignore,
                "{target:?}"
            );
        }
    }

    #[test]
    fn replies_are_never_answered() {
        let mut reply = who_has([10, 137, 0, 1], QUBES_CLIENT);
        reply.operation = ArpOperation::Reply;
        assert_eq!(
            decide(&Lab::new().topology(), QUBES_VIF, &reply),
            ArpAnswer::Ignore
        );
    }

    #[test]
    fn nic_without_address_answers_nothing() {
        let mut lab = Lab::new();
        lab.nics[QUBES_VIF as usize].ipv4 = None;
        let request = who_has([10, 137, 0, 1], QUBES_CLIENT);
        assert_eq!(
            decide(&lab.topology(), QUBES_VIF, &request),
            ArpAnswer::Ignore
        );
        assert_eq!(decide(&lab.topology(), 9, &request), ArpAnswer::Ignore);
    }
}
