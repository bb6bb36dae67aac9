//! The appliance built with the DHCP-uplink ruleset (`qemu-tests/rules/dhcp-uplink.rules`)
//! between real hosts (root): the uplink's tap in a namespace where the tests run a real
//! DHCP server ([`Dnsmasq`]) — and restart it with another range and another MAC, as a
//! restarted upstream VM comes back — and a client's tap in a namespace of its own.

use std::time::{Duration, Instant, SystemTime};

use image::qemu::{BootPath, Machine};
use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv4Cidr};

use crate::addressing::{appliance_address, host_address, UPSTREAM_RESOLVER};
use crate::boot_report::{FATAL_PREFIX, READY_LINE};
use crate::dnsmasq::{DhcpPlan, Dnsmasq};
use crate::kernels::KernelVariant;
use crate::test_host::TestHost;
use crate::vm::{NicWiring, Vm, VmSpec};
use crate::{Failure, Outcome};

/// The kernel built with the DHCP-uplink ruleset.
pub const DHCP_UPLINK: KernelVariant = KernelVariant {
    name: "dhcp-uplink",
    rules: Some("qemu-tests/rules/dhcp-uplink.rules"),
    features: &[],
};

/// `nic0`: the uplink, addressed by DHCP.
pub const UPLINK_NIC: usize = 0;
/// `nic1`: the client network.
pub const CLIENT_NIC: usize = 1;

/// The upstream as the appliance first meets it: 10.0.2.0/24 behind 10.0.2.2.
pub const FIRST_UPSTREAM: DhcpPlan = DhcpPlan {
    server: Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 2), 24),
    range: (
        Ipv4Address::new(10, 0, 2, 100),
        Ipv4Address::new(10, 0, 2, 150),
    ),
    dns: UPSTREAM_RESOLVER,
};

/// The upstream after its restart: another network, behind another gateway address.
pub const RESTARTED_UPSTREAM: DhcpPlan = DhcpPlan {
    server: Ipv4Cidr::new(Ipv4Address::new(10, 0, 3, 2), 24),
    range: (
        Ipv4Address::new(10, 0, 3, 100),
        Ipv4Address::new(10, 0, 3, 150),
    ),
    dns: UPSTREAM_RESOLVER,
};

/// The restarted upstream's MAC (locally administered, "moat" in ASCII).
pub const RESTARTED_MAC: EthernetAddress = EthernetAddress([0x02, 0x6d, 0x6f, 0x61, 0x74, 0xf0]);

/// What the console said about a lease, and when the test saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSeen {
    /// The leased address.
    pub address: Ipv4Cidr,
    /// The console line.
    pub line: String,
    /// Its index among the console's lines.
    pub index: usize,
    /// When the test saw it.
    pub at: Instant,
    /// The same, in wall-clock time.
    pub wall: SystemTime,
}

/// A running appliance with a DHCP uplink. Dropped in field order: QEMU first, then the
/// namespaces and taps.
pub struct DhcpUplinkAppliance {
    /// The VM.
    pub vm: Vm,
    /// The upstream's host; its tap stays in the root namespace, unattached, until
    /// [`DhcpUplinkAppliance::attach_uplink`].
    pub uplink: TestHost,
    /// The client host, `10.137.1.2` behind the appliance.
    pub client: TestHost,
}

/// The address a console line announces a lease of: `moat: nic0 dhcp: address A ...` or
/// `... address OLD -> NEW ...`.
pub fn leased_address(line: &str) -> Option<Ipv4Cidr> {
    let rest = line.strip_prefix("moat: nic0 dhcp: address ")?;
    let mut words = rest.split_whitespace();
    let first = words.next()?;
    let text = match words.next() {
        Some("->") => words.next()?,
        _ => first,
    };
    let (address, prefix) = text.split_once('/')?;
    Some(Ipv4Cidr::new(address.parse().ok()?, prefix.parse().ok()?))
}

impl DhcpUplinkAppliance {
    /// Boots the DHCP-uplink kernel with the uplink's tap not yet attached (the appliance
    /// starts before its upstream, as in every real deployment) and the client attached.
    pub fn boot() -> Outcome<DhcpUplinkAppliance> {
        let uplink = TestHost::create()?;
        let client = TestHost::create()?;
        let mut spec = VmSpec::new(Machine::Q35, BootPath::Kernel, 2);
        spec.variant = DHCP_UPLINK;
        spec.nics = vec![
            NicWiring::Tap(uplink.tap().to_string()),
            NicWiring::Tap(client.tap().to_string()),
        ];
        let vm = Vm::start(spec)?;
        // `Vm::wait_ready` expects static addresses: wait for the line itself.
        vm.console().wait_until(
            &format!("`{READY_LINE}`"),
            VmSpec::default_ready_timeout(BootPath::Kernel),
            |snapshot| {
                if let Some(fatal) = snapshot.lines.iter().find(|l| l.starts_with(FATAL_PREFIX)) {
                    return Some(Err(Failure::new(format!("the kernel failed: {fatal}"))));
                }
                snapshot
                    .lines
                    .iter()
                    .any(|line| line == READY_LINE)
                    .then_some(Ok(()))
            },
        )?;
        let prefix = appliance_address(CLIENT_NIC).prefix_len();
        client.attach(Ipv4Cidr::new(host_address(CLIENT_NIC), prefix))?;
        let gateway = appliance_address(CLIENT_NIC).address().to_string();
        client.run_checked("ip", &["route", "add", "default", "via", &gateway])?;
        Ok(DhcpUplinkAppliance { vm, uplink, client })
    }

    /// Moves the uplink's tap into its namespace with `plan`'s server address and starts a
    /// DHCP server there.
    pub fn attach_uplink(&self, plan: &DhcpPlan) -> Outcome<Dnsmasq> {
        self.uplink.attach(plan.server)?;
        Dnsmasq::start(&self.uplink, plan)
    }

    /// Turns the uplink's host into a restarted upstream VM: `old` stopped (its log is
    /// returned), the link device with a new MAC and `plan`'s address only, and a new DHCP
    /// server leasing as `plan` says.
    pub fn restart_upstream(&self, old: Dnsmasq, plan: &DhcpPlan) -> Outcome<(Dnsmasq, String)> {
        let log = old.stop()?;
        let tap = self.uplink.tap();
        self.uplink
            .run_checked("ip", &["addr", "flush", "dev", tap])?;
        let mac = RESTARTED_MAC.to_string().replace('-', ":");
        self.uplink
            .run_checked("ip", &["link", "set", "dev", tap, "address", &mac])?;
        let address = plan.server.to_string();
        self.uplink
            .run_checked("ip", &["addr", "add", &address, "dev", tap])?;
        Ok((Dnsmasq::start(&self.uplink, plan)?, log))
    }

    /// Waits up to `timeout` for the console's first lease line after line `after`.
    pub fn wait_for_lease(&self, after: usize, timeout: Duration) -> Outcome<LeaseSeen> {
        self.vm
            .console()
            .wait_until("a DHCP lease on the console", timeout, |snapshot| {
                let (index, line, address) = snapshot
                    .lines
                    .iter()
                    .enumerate()
                    .skip(after)
                    .find_map(|(i, line)| Some((i, line, leased_address(line)?)))?;
                Some(Ok(LeaseSeen {
                    address,
                    line: line.clone(),
                    index,
                    at: Instant::now(),
                    wall: SystemTime::now(),
                }))
            })
    }

    /// The console lines from index `from` on that mention the uplink (its lease or its
    /// gateway).
    pub fn uplink_lines(&self, from: usize) -> Vec<String> {
        self.vm
            .console()
            .lines()
            .into_iter()
            .skip(from)
            .filter(|line| {
                line.starts_with("moat: nic0 ") || line.starts_with("moat: warning: nic0 ")
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_lines_give_the_new_address() {
        assert_eq!(
            leased_address(
                "moat: nic0 dhcp: address 10.0.2.117/24 gateway 10.0.2.2 dns [198.51.100.53], lease 120 s from 10.0.2.2"
            ),
            Some(Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 117), 24))
        );
        assert_eq!(
            leased_address(
                "moat: nic0 dhcp: address 10.0.2.117/24 -> 10.0.3.101/24 gateway 10.0.2.2 -> 10.0.3.2 dns [198.51.100.53], lease 120 s from 10.0.3.2"
            ),
            Some(Ipv4Cidr::new(Ipv4Address::new(10, 0, 3, 101), 24))
        );
        assert_eq!(
            leased_address("moat: warning: nic0 dhcp: lease on 10.0.2.117/24 expired: ..."),
            None
        );
    }

    #[test]
    fn the_restarted_upstream_is_another_network_at_another_mac() {
        let (first, restarted) = (FIRST_UPSTREAM, RESTARTED_UPSTREAM);
        assert!(!first.server.contains_addr(&restarted.server.address()));
        for plan in [first, restarted] {
            assert!(plan.server.contains_addr(&plan.range.0));
            assert!(plan.server.contains_addr(&plan.range.1));
        }
        assert!(RESTARTED_MAC.is_unicast() && RESTARTED_MAC.is_local());
    }
}
