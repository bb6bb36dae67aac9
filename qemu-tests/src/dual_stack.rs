//! The dual-stack forwarding appliance of `scripts/bench forward`
//! (`qemu-tests/rules/dual-stack.rules`): the forwarding suite's topology and IPv4 plan,
//! with static IPv6 on every interface and NAT66. [`address_ipv6`] gives the real hosts
//! around a [`TapAppliance`] booted with it their IPv6 side, so that the same measures run
//! over either family through one appliance.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use smoltcp::wire::Ipv6Cidr;

use crate::addressing::{appliance_address6, host_address6, INTERNET_SERVER6};
use crate::forwarding_ruleset::{IPERF_PORT, NICS, UPLINK_NIC};
use crate::iperf::IperfServer;
use crate::kernels::KernelVariant;
use crate::tap_appliance::TapAppliance;
use crate::test_host::TestHost;
use crate::{Failure, Outcome};

/// The ruleset, relative to the workspace root.
pub const RULESET: &str = "qemu-tests/rules/dual-stack.rules";

/// The kernel built with [`RULESET`].
pub const DUAL_STACK: KernelVariant = KernelVariant {
    name: "dual-stack",
    rules: Some(RULESET),
    features: &[],
};

/// How long the appliance's IPv6 addresses may take to pass duplicate address detection
/// and its neighbours to be resolved, before a client's ping must reach the server.
const IPV6_PATH_BOUND: Duration = Duration::from_secs(30);

/// Gives the hosts around `appliance` (booted with [`DUAL_STACK`]) their IPv6 addresses —
/// the uplink host the router's and, on its loopback, [`INTERNET_SERVER6`]; each client
/// its own with the appliance as default router — starts an iperf3 server on
/// [`INTERNET_SERVER6`] and waits until the client on `nic<client>` pings it through the
/// appliance. The server stops when dropped.
pub fn address_ipv6(appliance: &TapAppliance, client: usize) -> Outcome<IperfServer> {
    let uplink = &appliance.uplink;
    uplink.add_ipv6(Ipv6Cidr::new(
        host_address6(UPLINK_NIC),
        appliance_address6(UPLINK_NIC).prefix_len(),
    ))?;
    hold_internet_server6(uplink)?;
    for nic in 1..NICS {
        address_client6(appliance.client(nic)?, nic)?;
    }
    let server = IperfServer::start(
        uplink,
        SocketAddr::new(IpAddr::V6(INTERNET_SERVER6), IPERF_PORT),
    )?;
    let host = appliance.client(client)?;
    let deadline = Instant::now() + IPV6_PATH_BOUND;
    loop {
        let summary = host.ping6(INTERNET_SERVER6, 1)?;
        if summary.received == 1 {
            return Ok(server);
        }
        if Instant::now() >= deadline {
            return Err(Failure::new(format!(
                "no IPv6 path from nic{client}'s client to {INTERNET_SERVER6} through the appliance within {IPV6_PATH_BOUND:?}:\n{}",
                summary.output
            )));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Gives `host` (on `nic<nic>`'s segment, or its direct stand-in) its planned IPv6 address
/// and the appliance's as default router.
pub fn address_client6(host: &TestHost, nic: usize) -> Outcome {
    let network = appliance_address6(nic);
    host.add_ipv6(Ipv6Cidr::new(host_address6(nic), network.prefix_len()))?;
    let gateway = network.address().to_string();
    host.run_checked("ip", &["-6", "route", "add", "default", "via", &gateway])
        .map(|_| ())
}

/// Puts [`INTERNET_SERVER6`] on `host`'s loopback device (reached through `host` as
/// router).
pub fn hold_internet_server6(host: &TestHost) -> Outcome {
    let address = format!("{INTERNET_SERVER6}/128");
    host.run_checked("ip", &["-6", "addr", "add", &address, "dev", "lo"])
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addressing::appliance_address;
    use crate::kernels::workspace;

    #[test]
    fn the_ruleset_follows_the_address_plan_in_both_families() {
        let text = std::fs::read_to_string(workspace().unwrap().root.join(RULESET)).unwrap();
        for nic in 0..NICS {
            let declared = format!(
                "nic{nic} address {}/{} ",
                appliance_address(nic).address(),
                appliance_address(nic).prefix_len()
            );
            assert!(text.contains(&declared), "{declared:?}");
            assert!(
                text.contains(&format!("address6 {}", appliance_address6(nic))),
                "nic{nic}"
            );
        }
        assert!(text.contains(&format!("gateway6 {}", host_address6(UPLINK_NIC))));
        assert!(text.contains(&format!("[{INTERNET_SERVER6}]")));
    }
}
