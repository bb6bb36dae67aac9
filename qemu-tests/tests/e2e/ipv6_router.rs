//! The IPv6 test environment itself (root; skipped loudly without it, failing under CI): a
//! real `radvd` in one namespace configures a Linux host in another by SLAAC, as it will the
//! appliance's `slaac` uplink — prefix, default router and reachability — so a failure of
//! the IPv6 suites can be told apart from a broken environment.

use std::time::Duration;

use qemu_tests::notice::require_root;
use qemu_tests::radvd::{RaPlan, Radvd};
use qemu_tests::test_host::TestHost;
use qemu_tests::{ensure, Outcome};
use smoltcp::wire::{Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr};

/// A Linux host forms its address within a second or two of the first advertisement
/// (its own DAD takes one); allowed generously for a loaded machine.
const SLAAC_BOUND: Duration = Duration::from_secs(15);

#[test]
fn radvd_configures_a_linux_host_by_slaac() -> Outcome {
    if !require_root("radvd_configures_a_linux_host_by_slaac")? {
        return Ok(());
    }
    let (router, host) = TestHost::veth_pair()?;
    router.attach(Ipv4Cidr::new(Ipv4Address::new(192, 0, 2, 1), 24))?;
    host.attach(Ipv4Cidr::new(Ipv4Address::new(192, 0, 2, 2), 24))?;
    let prefix = Ipv6Cidr::new("2001:db8:1:2::".parse().unwrap(), 64);
    let router_address: Ipv6Address = "2001:db8:1:2::1".parse().unwrap();
    router.add_ipv6(Ipv6Cidr::new(router_address, 64))?;
    let radvd = Radvd::start(&router, &RaPlan::router(prefix, &[router_address]))?;
    // Linux solicits when the link comes up; radvd answers at once.
    let address = host.slaac_address(prefix, SLAAC_BOUND)?;
    ensure(prefix.contains_addr(&address), || {
        format!("{address} is not in {prefix}")
    })?;
    let gateway = host.default_router6()?;
    ensure(gateway.is_some_and(|g| g.segments()[0] == 0xfe80), || {
        format!("default router {gateway:?}: expected radvd's link-local address")
    })?;
    let ping = host.ping6(router_address, 3)?;
    ensure(ping.received >= 3, || ping.output.clone())?;
    radvd.stop()?;
    Ok(())
}
