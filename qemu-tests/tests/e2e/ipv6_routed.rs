//! A routed IPv6 prefix through the appliance with real Linux hosts (root; skipped loudly
//! without it, failing under CI). The lab is the IPv6 suite's ([`crate::ipv6`]: radvd on
//! the uplink host configures the appliance's `slaac` uplink; the host holds the server
//! address `2001:db8:5::80`) with one client, alpha, on a network with the global prefix
//! `2001:db8:77::/64` (`qemu-tests/rules/ipv6-routed.rules`). Only alpha's IPv4 is
//! masqueraded: the internet routes the prefix to the appliance's SLAAC address, sees
//! alpha's own IPv6 address, and reaches alpha where the policy opens it (ping, TCP port
//! 8080) and nowhere else.

use std::net::{IpAddr, SocketAddr};

use image::qemu::MacAddress;
use qemu_tests::client_tools::{curl, Fetch};
use qemu_tests::drop_log::{default_position, DROP_PREFIX};
use qemu_tests::kernels::KernelVariant;
use qemu_tests::notice::require_root;
use qemu_tests::test_host::TestHost;
use qemu_tests::uplink_services::INTERNET_WEB_SERVER;
use qemu_tests::web_server::WebServer;
use qemu_tests::{ensure, Outcome};
use smoltcp::wire::{EthernetAddress, Ipv6Address};

use crate::clients::{greeting, url, BLOCKED_WAIT};
use crate::ipv6::{
    address_client, pings_all, serve_ipv6_internet, start_appliance, v6, wait_for_drop_line,
    wait_for_server, SERVER, UPLINK_PREFIX,
};

/// The kernel built with the routed prefix's ruleset.
const IPV6_ROUTED: KernelVariant = KernelVariant {
    name: "ipv6-routed",
    rules: Some("qemu-tests/rules/ipv6-routed.rules"),
    features: &[],
};

/// `nic0`, the uplink.
const UPLINK_NIC: usize = 0;
/// `nic1`, alpha's network.
const ALPHA_NIC: u8 = 1;
/// The routed prefix.
const ROUTED_PREFIX: &str = "2001:db8:77::/64";
/// The appliance's address in it, alpha's default router.
const APPLIANCE_LAN: &str = "2001:db8:77::1";
/// Alpha's address.
const ALPHA: &str = "2001:db8:77::2";
/// The port the policy opens to alpha from the internet (and the server's web port).
const OPEN_PORT: u16 = 8080;
/// A port alpha also serves, which the policy leaves closed.
const CLOSED_PORT: u16 = 8081;

/// The address the appliance's uplink forms by SLAAC in the advertised prefix: the prefix
/// and the modified EUI-64 of the uplink's MAC (RFC 4291 appendix A).
fn appliance_uplink_address() -> Ipv6Address {
    let mac = EthernetAddress(MacAddress::for_nic(UPLINK_NIC).0);
    let interface_id = mac.as_eui_64().map_or(0, u64::from_be_bytes);
    Ipv6Address::from_bits(v6(UPLINK_PREFIX).to_bits() | u128::from(interface_id))
}

#[test]
fn a_routed_prefix_keeps_its_own_addresses_and_lets_in_only_what_the_policy_opens() -> Outcome {
    if !require_root(
        "a_routed_prefix_keeps_its_own_addresses_and_lets_in_only_what_the_policy_opens",
    )? {
        return Ok(());
    }
    let uplink = TestHost::create()?;
    let alpha = TestHost::create()?;
    let vm = start_appliance(IPV6_ROUTED, &[&uplink, &alpha])?;
    let _radvd = serve_ipv6_internet(&uplink, &[])?;
    address_client(&alpha, ALPHA_NIC, ALPHA, APPLIANCE_LAN)?;
    // The internet routes the prefix to the appliance, and answers it from the server's
    // address.
    let appliance = appliance_uplink_address().to_string();
    uplink.run_checked(
        "ip",
        &[
            "-6",
            "route",
            "add",
            ROUTED_PREFIX,
            "via",
            &appliance,
            "dev",
            uplink.tap(),
            "src",
            SERVER,
        ],
    )?;
    wait_for_server(&vm, &alpha)?;
    pings_all(&alpha, SERVER)?;

    // Out: the internet's web server sees alpha's own address, not the appliance's.
    let server = SocketAddr::new(v6(SERVER).into(), OPEN_PORT);
    let _internet_web = WebServer::start(uplink.namespace(), server, INTERNET_WEB_SERVER)?;
    let seen = greeting(&alpha, &url(server.ip(), OPEN_PORT, "/"))?;
    ensure(seen.peer.ip() == IpAddr::V6(v6(ALPHA)), || {
        format!(
            "curl {server} from alpha: the server saw {}, expected alpha's own {ALPHA} (routed, not masqueraded behind {appliance})",
            seen.peer
        )
    })?;

    // In: ping and the open port reach alpha, which sees the server's own address.
    pings_all(&uplink, ALPHA)?;
    let open = SocketAddr::new(v6(ALPHA).into(), OPEN_PORT);
    let closed = SocketAddr::new(v6(ALPHA).into(), CLOSED_PORT);
    let _alpha_web = WebServer::start(alpha.namespace(), open, "alpha")?;
    let _alpha_closed = WebServer::start(alpha.namespace(), closed, "alpha-closed")?;
    let seen = greeting(&uplink, &url(open.ip(), OPEN_PORT, "/"))?;
    ensure(
        seen.server == "alpha" && seen.peer.ip() == IpAddr::V6(v6(SERVER)),
        || {
            format!(
                "curl {open} from the internet: {seen:?}, expected alpha's server seeing {SERVER}"
            )
        },
    )?;

    // Alpha serves the closed port too (it answers alpha itself), but from the internet
    // the connection times out: the default drops the SYN, and logs it.
    greeting(&alpha, &url(closed.ip(), CLOSED_PORT, "/"))?;
    let attempt = curl(
        &uplink,
        &url(closed.ip(), CLOSED_PORT, "/"),
        BLOCKED_WAIT,
        BLOCKED_WAIT,
    )?;
    ensure(attempt.outcome == Fetch::TimedOut, || {
        format!("curl {closed} from the internet: expected a timeout (blocked by the default), got {attempt:?}")
    })?;
    let default = default_position(&IPV6_ROUTED.ruleset_text()?)?;
    wait_for_drop_line(
        &vm,
        "the internet's connection to the closed port logged",
        &[
            &format!("{DROP_PREFIX}nic0 block default {default} tcp [{SERVER}]:"),
            &format!("-> [{ALPHA}]:{CLOSED_PORT}"),
        ],
    )
}
