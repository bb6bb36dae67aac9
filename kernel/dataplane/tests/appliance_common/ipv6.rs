//! The IPv6 side of the test network: every host of `mod.rs` also has an IPv6 address,
//! and the appliance has `address6` on each NIC (see [`super::rulesets::DUAL_STACK`]).
//!
//! ```text
//!   SERVER6 2001:db8:5::80, behind GATEWAY6 fe80::2 (the uplink's router)
//!   uplink  nic0 2001:db8:2::15/64
//!   clients nic1 fd00:137:1::1/64 --- CLIENT fd00:137:1::10, CLIENT2 fd00:137:1::11
//!   routed  (ROUTED_DUAL_STACK) nic1 2001:db8:137::1/64 --- ROUTED_CLIENT 2001:db8:137::10
//! ```

use dataplane::testutil::packets6::{self, addr};
use smoltcp::wire::{EthernetAddress, EthernetFrame, EthernetProtocol, Ipv6Address};

use super::{appliance_mac, Host, Lab, Sent, CLIENT, CLIENT2, GATEWAY, UPLINK};
use dataplane::testutil::packets;

/// A host with its IPv6 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Host6 {
    pub host: Host,
    pub ip: &'static str,
}

impl Host6 {
    pub fn addr(&self) -> Ipv6Address {
        addr(self.ip)
    }
}

pub const CLIENT6: Host6 = Host6 {
    host: CLIENT,
    ip: "fd00:137:1::10",
};
pub const CLIENT2_6: Host6 = Host6 {
    host: CLIENT2,
    ip: "fd00:137:1::11",
};
/// The uplink's IPv6 router, by its link-local address.
pub const GATEWAY6: Host6 = Host6 {
    host: GATEWAY,
    ip: "fe80::2",
};
/// A client of the routed (non-NAT) prefix.
pub const ROUTED_CLIENT: Host6 = Host6 {
    host: CLIENT,
    ip: "2001:db8:137::10",
};

pub const APPLIANCE6_UPLINK: &str = "2001:db8:2::15";
pub const APPLIANCE6_CLIENTS: &str = "fd00:137:1::1";
pub const SERVER6: &str = "2001:db8:5::80";

impl Lab {
    /// `from` sends the IPv6 `packet` to the appliance's MAC.
    pub fn send6(&mut self, from: Host6, packet: &[u8]) -> Sent {
        let frame = packets::ethernet_of(
            EthernetProtocol::Ipv6,
            from.host.mac,
            appliance_mac(from.host.nic),
            packet,
        );
        self.receive(from.host.nic, frame)
    }

    /// Pins `host`'s MAC in the appliance (no solicitation for it); nothing is sent.
    pub fn teach6(&mut self, host: Host6) -> Sent {
        self.appliance
            .pin_ipv6_neighbor(host.host.nic, host.addr(), host.host.mac);
        Sent::default()
    }

    /// Teaches the appliance the uplink router's and `clients`' MACs.
    pub fn teach6_all(&mut self, clients: &[Host6]) {
        self.teach6(GATEWAY6).assert_nothing();
        for &client in clients {
            self.teach6(client).assert_nothing();
        }
    }
}

impl Sent {
    /// The one frame sent, which must be an IPv6 packet out of `nic` to `mac`, with a valid
    /// upper-layer checksum; the packet.
    pub fn ipv6_to_mac(&self, nic: u8, mac: EthernetAddress) -> Vec<u8> {
        let [(out, frame)] = &self.frames[..] else {
            panic!(
                "expected exactly one frame, got {}: {self:?}",
                self.frames.len()
            )
        };
        assert_eq!(*out, nic, "egress NIC");
        let frame = EthernetFrame::new_checked(&frame[..]).expect("an Ethernet frame");
        assert_eq!(frame.src_addr(), appliance_mac(nic), "Ethernet source");
        assert_eq!(frame.dst_addr(), mac, "Ethernet destination");
        assert_eq!(frame.ethertype(), EthernetProtocol::Ipv6, "EtherType");
        let packet = frame.payload().to_vec();
        assert!(packets6::checksums_valid(&packet), "upper-layer checksum");
        packet
    }

    /// The one frame sent, an IPv6 packet to `host`.
    pub fn ipv6_to(&self, host: Host6) -> Vec<u8> {
        self.ipv6_to_mac(host.host.nic, host.host.mac)
    }

    /// The one frame sent, an IPv6 fragment out of the uplink to its router (its
    /// checksum covers the whole datagram: not checked here).
    pub fn ipv6_upstream_fragment(&self) -> Vec<u8> {
        let [(out, frame)] = &self.frames[..] else {
            panic!(
                "expected exactly one frame, got {}: {self:?}",
                self.frames.len()
            )
        };
        assert_eq!(*out, UPLINK, "egress NIC");
        let frame = EthernetFrame::new_checked(&frame[..]).expect("an Ethernet frame");
        assert_eq!(frame.dst_addr(), GATEWAY.mac, "Ethernet destination");
        frame.payload().to_vec()
    }

    /// The one frame sent, an IPv6 packet out of the uplink to its router.
    pub fn ipv6_upstream(&self) -> Vec<u8> {
        self.ipv6_to_mac(UPLINK, GATEWAY.mac)
    }
}
