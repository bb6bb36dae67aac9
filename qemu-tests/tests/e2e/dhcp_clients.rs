//! Clients with no configuration (root; skipped loudly without it, failing under CI): the
//! appliance's DHCP server gives busybox's `udhcpc` (on `lan1`) and ISC's `dhclient` (on
//! `lan2`) an address from the pool, the appliance as router and DNS server, the
//! interface's MTU and the lease time; each then reaches the internet through the
//! appliance with `ping` and `curl`, and a source address nobody leased gets nowhere.

use std::net::IpAddr;

use qemu_tests::addressing::{appliance_address, INTERNET_SERVER};
use qemu_tests::dhcp_clients::{dhclient, udhcpc, ClientLease, DHCP_CLIENTS};
use qemu_tests::forwarding_ruleset::{ALPHA_NIC, BETA_NIC, WEB_PORT};
use qemu_tests::notice::require_root;
use qemu_tests::tap_appliance::{TapAppliance, TapSetup};
use qemu_tests::test_host::TestHost;
use qemu_tests::uplink_services::INTERNET_WEB_SERVER;
use qemu_tests::{ensure, Outcome};
use smoltcp::wire::Ipv4Address;

use crate::clients::{greeting, pings_all, url};

/// `lan1`'s MTU in the ruleset.
const LAN1_MTU: u16 = 1400;
/// The lease time in the ruleset.
const LEASE_SECS: u32 = 600;

/// Fails unless `lease` is what the ruleset serves on `nic<nic>`: a pool address, the
/// appliance as router and DNS server, a /24, the lease time, and `mtu` if given.
fn check_lease(lease: &ClientLease, nic: usize, mtu: Option<u16>) -> Outcome<Ipv4Address> {
    let appliance = appliance_address(nic).address();
    let address = lease.address()?;
    let [a, b, c, d] = address.octets();
    ensure(
        [a, b, c] == [10, 137, nic as u8] && (100..=149).contains(&d),
        || format!("{} got {address}, outside lan{nic}'s pool", lease.client),
    )?;
    let told = (
        lease.router()?,
        lease.dns()?,
        lease.mask()?,
        lease.lease_secs(),
    );
    let expected = (
        appliance,
        appliance,
        Ipv4Address::new(255, 255, 255, 0),
        Some(LEASE_SECS),
    );
    ensure(told == expected, || {
        format!(
            "{} was told (router, dns, mask, lease) {told:?}, expected {expected:?}",
            lease.client
        )
    })?;
    if mtu.is_some() {
        ensure(lease.mtu() == mtu, || {
            format!(
                "{} was told MTU {:?}, expected {mtu:?}",
                lease.client,
                lease.mtu()
            )
        })?;
    }
    Ok(address)
}

/// Fails unless `host` pings and fetches from the internet, seen there as the appliance.
fn reaches_the_internet(host: &TestHost) -> Outcome {
    pings_all(host, INTERNET_SERVER)?;
    let seen = greeting(host, &url(INTERNET_SERVER, WEB_PORT, "/"))?;
    let uplink = appliance_address(0).address();
    ensure(
        seen.server == INTERNET_WEB_SERVER && seen.peer.ip() == IpAddr::from(uplink),
        || {
            format!(
                "{} reached `{}` as {}",
                host.namespace(),
                seen.server,
                seen.peer
            )
        },
    )
}

#[test]
fn clients_without_configuration_get_an_address_and_reach_the_internet() -> Outcome {
    let test = "clients_without_configuration_get_an_address_and_reach_the_internet";
    if !require_root(test)? {
        return Ok(());
    }
    let appliance = TapAppliance::boot_with(TapSetup {
        variant: DHCP_CLIENTS,
        clients_addressed: false,
        ..TapSetup::default()
    })?;
    let busybox = appliance.client(ALPHA_NIC)?;
    let leased = check_lease(&udhcpc(busybox)?, ALPHA_NIC, Some(LAN1_MTU))?;
    reaches_the_internet(busybox)?;
    let isc = appliance.client(BETA_NIC)?;
    check_lease(&dhclient(isc)?, BETA_NIC, None)?;
    reaches_the_internet(isc)?;
    appliance.vm.console().wait_until(
        "the leases on the console",
        std::time::Duration::from_secs(5),
        |snapshot| {
            let told = |nic: usize| {
                snapshot
                    .lines
                    .iter()
                    .any(|l| l.contains(&format!("nic{nic} dhcp: ")) && l.contains(" leased to "))
            };
            (told(ALPHA_NIC) && told(BETA_NIC)).then_some(Ok(()))
        },
    )?;

    // An address nobody leased is refused, even inside the served network.
    let unleased = Ipv4Address::new(10, 137, 1, 77);
    busybox.run_checked(
        "ip",
        &[
            "addr",
            "add",
            &format!("{unleased}/24"),
            "dev",
            busybox.tap(),
        ],
    )?;
    let from = unleased.to_string();
    let summary = busybox.run(
        "ping",
        &[
            "-c",
            "2",
            "-W",
            "1",
            "-I",
            &from,
            &INTERNET_SERVER.to_string(),
        ],
    )?;
    ensure(!summary.status.success(), || {
        format!(
            "ping from the unleased {unleased} (next to the lease {leased}) got through:\n{}",
            String::from_utf8_lossy(&summary.stdout)
        )
    })
}
