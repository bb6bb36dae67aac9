//! The appliance's addresses as the tests expect them, and the test hosts' own addresses.
//!
//! This is the one place addressing lives. Until the ruleset language lands the kernel uses a
//! build-time default (nic0 `10.0.2.15/24` behind QEMU user networking's gateway `10.0.2.2`,
//! `nic<i>` `10.137.<i>.1/24`); when rulesets declare the interfaces, the tests' own rulesets
//! (`qemu-tests/rules/`) must say the same, or this plan changes with them.

use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr};

/// The appliance's address and prefix on `nic<index>`.
pub fn appliance_address(index: usize) -> Ipv4Cidr {
    match index {
        0 => Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 15), 24),
        _ => Ipv4Cidr::new(Ipv4Address::new(10, 137, index as u8, 1), 24),
    }
}

/// The appliance's IPv6 address and prefix on `nic<index>`, for dual-stack rulesets
/// (`qemu-tests/rules/dual-stack.rules`): `2001:db8:1:2::15/64` on the uplink,
/// `fd00:137:<i>::1/64` (unique local) on client networks.
pub fn appliance_address6(index: usize) -> Ipv6Cidr {
    match index {
        0 => Ipv6Cidr::new(Ipv6Address::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0x15), 64),
        _ => Ipv6Cidr::new(
            Ipv6Address::new(0xfd00, 0x137, index as u16, 0, 0, 0, 0, 1),
            64,
        ),
    }
}

/// The test host's IPv6 address on `nic<index>`'s segment: the uplink's router
/// `2001:db8:1:2::1` on nic0, `::2` elsewhere.
pub fn host_address6(index: usize) -> Ipv6Address {
    match index {
        0 => Ipv6Address::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 1),
        _ => Ipv6Address::new(0xfd00, 0x137, index as u16, 0, 0, 0, 0, 2),
    }
}

/// The test host on `nic<index>`'s segment: the uplink's gateway on nic0, `.2` elsewhere.
pub fn host_address(index: usize) -> Ipv4Address {
    match index {
        0 => Ipv4Address::new(10, 0, 2, 2),
        _ => Ipv4Address::new(10, 137, index as u8, 2),
    }
}

/// The test host's MAC on `nic<index>`'s segment (locally administered, "moat" in ASCII).
pub fn host_mac(index: usize) -> EthernetAddress {
    EthernetAddress([0x02, 0x6d, 0x6f, 0x61, 0x74, index as u8])
}

/// A server "on the internet": not on any of the appliance's networks, so the appliance
/// reaches it through the uplink's gateway. The uplink test host holds it (web and iperf3
/// servers). From TEST-NET-2 (RFC 5737): it exists only inside the tests' namespaces.
pub const INTERNET_SERVER: Ipv4Address = Ipv4Address::new(198, 51, 100, 80);

/// [`INTERNET_SERVER`]'s IPv6 address (documentation prefix, RFC 3849), off every
/// appliance network: held by the uplink test host.
pub const INTERNET_SERVER6: Ipv6Address = Ipv6Address::new(0x2001, 0xdb8, 5, 0, 0, 0, 0, 0x80);

/// The upstream DNS resolver, also held by the uplink test host: the forwarding ruleset's
/// uplink names it with `dns`.
pub const UPSTREAM_RESOLVER: Ipv4Address = Ipv4Address::new(198, 51, 100, 53);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_host_shares_its_segment_with_the_appliance_and_not_its_address() {
        for index in 0..image::qemu::MAX_NICS {
            let appliance = appliance_address(index);
            assert!(appliance.contains_addr(&host_address(index)), "nic{index}");
            assert_ne!(appliance.address(), host_address(index), "nic{index}");
            assert!(host_mac(index).is_unicast() && host_mac(index).is_local());
            let appliance6 = appliance_address6(index);
            assert!(
                appliance6.contains_addr(&host_address6(index)),
                "nic{index}"
            );
            assert_ne!(appliance6.address(), host_address6(index), "nic{index}");
            assert!(!appliance6.contains_addr(&INTERNET_SERVER6), "nic{index}");
        }
    }

    #[test]
    fn the_internet_is_on_none_of_the_appliance_networks() {
        for index in 0..image::qemu::MAX_NICS {
            for server in [INTERNET_SERVER, UPSTREAM_RESOLVER] {
                assert!(
                    !appliance_address(index).contains_addr(&server),
                    "nic{index}"
                );
            }
        }
    }
}
