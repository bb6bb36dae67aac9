//! The imported Qubes example (`rules/qubes-example.rules`, made by `rules import-qubes`
//! from `rules/qubes/`) booted between real hosts (root; skipped loudly without it, failing
//! under CI): two qubes, each on its own point-to-point link configured as Qubes configures
//! a qube (a /32 address, the firewall's shared address 10.137.0.1 as gateway, DNS at
//! 10.139.1.1), get what their `qvm-firewall` rules allow, are refused at once what the
//! rules drop, resolve names through the virtual DNS servers, and never reach each other.

use std::net::Ipv4Addr;

use qemu_tests::addressing::{appliance_address, INTERNET_SERVER};
use qemu_tests::client_tools::{curl, dig, DigTransport, Fetch};
use qemu_tests::forwarding_ruleset::{ALPHA_NIC, BETA_NIC, REJECTED_PORT, WEB_PORT};
use qemu_tests::kernels::KernelVariant;
use qemu_tests::notice::require_root;
use qemu_tests::tap_appliance::{TapAppliance, TapSetup};
use qemu_tests::test_host::TestHost;
use qemu_tests::uplink_services::{INTERNET_WEB_SERVER, WEB_SERVER_NAME};
use qemu_tests::{ensure, Outcome};

use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

use crate::clients::{greeting, pings_all, url, CONNECT_TIMEOUT, TRANSFER_TIMEOUT};

/// The kernel built with the imported example.
const QUBES: KernelVariant = KernelVariant {
    name: "qubes-example",
    rules: Some("rules/qubes-example.rules"),
    features: &[],
};
/// The firewall's address on every qube's link.
const GATEWAY: &str = "10.137.0.1";
/// The qubes' addresses (`work` on nic1, `personal` on nic2).
const WORK: &str = "10.137.0.10";
const PERSONAL: &str = "10.137.0.11";
/// Qubes' virtual DNS servers.
const VIRTUAL_DNS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 139, 1, 1), Ipv4Addr::new(10, 139, 1, 2)];

/// Configures `host` as Qubes configures a qube: `address`/32, the gateway on-link, the
/// default route through it.
fn as_qube(host: &TestHost, address: &str) -> Outcome {
    let dev = host.tap();
    host.run_checked("ip", &["addr", "add", &format!("{address}/32"), "dev", dev])?;
    host.run_checked("ip", &["route", "add", GATEWAY, "dev", dev])?;
    host.run_checked(
        "ip",
        &["route", "add", "default", "via", GATEWAY, "dev", dev],
    )?;
    Ok(())
}

/// Fails unless a connection from `host` to `port` of the internet server is refused at
/// once (the qube's rules drop it: `reject`).
fn refused(host: &TestHost, port: u16) -> Outcome {
    let fetched = curl(
        host,
        &url(INTERNET_SERVER, port, "/"),
        CONNECT_TIMEOUT,
        TRANSFER_TIMEOUT,
    )?;
    ensure(
        fetched.outcome == Fetch::Refused && fetched.elapsed < CONNECT_TIMEOUT,
        || {
            format!(
                "{} to port {port}: expected refused at once, got {fetched:?}",
                host.namespace()
            )
        },
    )
}

#[test]
fn imported_qubes_rules_hold_for_real_qubes_on_point_to_point_links() -> Outcome {
    if !require_root("imported_qubes_rules_hold_for_real_qubes_on_point_to_point_links")? {
        return Ok(());
    }
    let gateway = Ipv4Address::new(10, 137, 0, 1);
    let addresses = [
        appliance_address(0),
        Ipv4Cidr::new(gateway, 32),
        Ipv4Cidr::new(gateway, 32),
    ];
    let appliance = TapAppliance::boot_with(TapSetup {
        variant: QUBES,
        clients_addressed: false,
        addresses: Some(&addresses),
        ..TapSetup::default()
    })?;
    let work = appliance.client(ALPHA_NIC)?;
    let personal = appliance.client(BETA_NIC)?;
    as_qube(work, WORK)?;
    as_qube(personal, PERSONAL)?;

    // Both qubes reach the shared gateway address on their own link.
    pings_all(work, gateway)?;
    pings_all(personal, gateway)?;

    // work: ICMP, HTTP to the one host its rules name; port 81 dropped (rejected); DNS
    // through either virtual server.
    pings_all(work, INTERNET_SERVER)?;
    let seen = greeting(work, &url(INTERNET_SERVER, WEB_PORT, "/"))?;
    ensure(seen.server == INTERNET_WEB_SERVER, || {
        format!("work reached {seen:?}")
    })?;
    refused(work, REJECTED_PORT)?;
    for server in VIRTUAL_DNS {
        let answer = dig(work, server, WEB_SERVER_NAME, DigTransport::Udp)?;
        ensure(
            answer.status == "NOERROR" && answer.addresses == [INTERNET_SERVER],
            || format!("dig @{server} {WEB_SERVER_NAME} from work: {answer:?}"),
        )?;
    }

    // personal: HTTP anywhere, echo requests; port 81 is not in its rules: rejected.
    greeting(personal, &url(INTERNET_SERVER, WEB_PORT, "/"))?;
    pings_all(personal, INTERNET_SERVER)?;
    refused(personal, REJECTED_PORT)?;
    let answer = dig(personal, VIRTUAL_DNS[1], WEB_SERVER_NAME, DigTransport::Tcp)?;
    ensure(answer.status == "NOERROR", || {
        format!("dig +tcp from personal: {answer:?}")
    })?;

    // The qubes never reach each other.
    let summary = personal.ping(
        WORK.parse().map_err(|_| qemu_tests::Failure::new("work"))?,
        2,
    )?;
    ensure(summary.received == 0, || {
        format!(
            "personal pinged work through the firewall:\n{}",
            summary.output
        )
    })
}
