//! The test network of the pipeline tests: an `Appliance` running a policy compiled from
//! real ruleset text, hosts that send it real frames, a fake clock, and readers that check
//! what comes out field by field.
//!
//! ```text
//!   SERVER 93.184.216.34, ROUTER 198.51.100.1, REMOTE 203.0.113.9  (behind the gateway)
//!                                  |
//!   uplink nic0 10.0.2.15/24 --- GATEWAY 10.0.2.2, RESOLVER 10.0.2.3
//!        appliance
//!   clients nic1 10.137.1.1/24 --- CLIENT 10.137.1.10, CLIENT2 10.137.1.11
//!   lab     nic2 10.137.2.1/24 --- LAB_CLIENT 10.137.2.10   (two-NIC rulesets only)
//! ```
//!
//! Hosts behind the gateway have no frames of their own: their packets arrive from, and
//! leave to, the gateway's MAC.

// Each test file uses a different part of this module.
#![allow(dead_code, unused_imports)]

mod connection;
mod crafting;
mod dhcp_server;
mod ipv6;
mod lab;
mod logs;
mod rulesets;
mod seen;

pub use connection::*;
pub use crafting::*;
pub use dhcp_server::*;
pub use ipv6::*;
pub use lab::*;
pub use logs::*;
pub use rulesets::*;
pub use seen::*;

use std::net::SocketAddrV4;

use smoltcp::wire::{EthernetAddress, Ipv4Address};

/// The appliance's NICs.
pub const UPLINK: u8 = 0;
pub const CLIENTS: u8 = 1;
pub const LAB: u8 = 2;

/// The appliance's address on the uplink, on the clients' NIC and on the lab NIC.
pub const APPLIANCE_UPLINK: [u8; 4] = [10, 0, 2, 15];
pub const APPLIANCE_CLIENTS: [u8; 4] = [10, 137, 1, 1];
pub const APPLIANCE_LAB: [u8; 4] = [10, 137, 2, 1];

/// Hosts behind the uplink's gateway.
pub const SERVER: [u8; 4] = [93, 184, 216, 34];
pub const OTHER_SERVER: [u8; 4] = [1, 1, 1, 1];
pub const ROUTER: [u8; 4] = [198, 51, 100, 1];
pub const REMOTE: [u8; 4] = [203, 0, 113, 9];

/// A host with its own frames on one of the appliance's NICs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Host {
    pub nic: u8,
    pub mac: EthernetAddress,
    pub ip: [u8; 4],
}

/// The uplink's gateway, also its DHCP server.
pub const GATEWAY: Host = Host {
    nic: UPLINK,
    mac: EthernetAddress([0x02, 0x47, 0, 0, 0, 0x02]),
    ip: [10, 0, 2, 2],
};
/// The uplink's DNS resolver.
pub const RESOLVER: Host = Host {
    nic: UPLINK,
    mac: EthernetAddress([0x02, 0x47, 0, 0, 0, 0x03]),
    ip: [10, 0, 2, 3],
};
/// Clients: two on the clients' network (`work` and `personal` where declared), one on
/// the lab network.
pub const CLIENT: Host = Host {
    nic: CLIENTS,
    mac: EthernetAddress([0x02, 0x43, 0, 0, 1, 10]),
    ip: [10, 137, 1, 10],
};
pub const CLIENT2: Host = Host {
    nic: CLIENTS,
    mac: EthernetAddress([0x02, 0x43, 0, 0, 1, 11]),
    ip: [10, 137, 1, 11],
};
pub const LAB_CLIENT: Host = Host {
    nic: LAB,
    mac: EthernetAddress([0x02, 0x43, 0, 0, 2, 10]),
    ip: [10, 137, 2, 10],
};

/// The appliance's MAC on NIC `nic`.
pub fn appliance_mac(nic: u8) -> EthernetAddress {
    EthernetAddress([0x52, 0x54, 0x00, 0x6d, 0x00, nic])
}

/// The appliance's address on NIC `nic`.
pub fn appliance_ip(nic: u8) -> [u8; 4] {
    match nic {
        UPLINK => APPLIANCE_UPLINK,
        CLIENTS => APPLIANCE_CLIENTS,
        LAB => APPLIANCE_LAB,
        _ => panic!("the test network has no nic{nic}"),
    }
}

/// An address.
pub fn ip(a: [u8; 4]) -> Ipv4Address {
    Ipv4Address::from(a)
}

/// An address and port.
pub fn sock(a: [u8; 4], port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip(a), port)
}
