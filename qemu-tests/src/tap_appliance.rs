//! The appliance built with the forwarding ruleset between real Linux hosts (root): the
//! uplink's tap in a namespace that plays the internet ([`UplinkServices`]), and each client
//! network's tap in a namespace of its own with the client's address and the appliance as
//! default gateway. The hosts' own kernels then talk through the appliance with `ping`,
//! `curl`, `dig` and `iperf3`, as users' machines would.

use smoltcp::wire::Ipv4Cidr;

use image::qemu::{BootPath, Machine};

use crate::addressing::{appliance_address, host_address};
use crate::boot_report::BootReport;
use crate::forwarding_ruleset::{FORWARDING, NICS, UPLINK_NIC};
use crate::kernels::KernelVariant;
use crate::test_host::TestHost;
use crate::uplink_services::UplinkServices;
use crate::vm::{NicWiring, Vm, VmSpec};
use crate::{Failure, Outcome};

/// How [`TapAppliance::boot_with`] boots: by default the forwarding kernel on `q35` with
/// every client addressed as the address plan says.
#[derive(Clone, Copy, Debug)]
pub struct TapSetup<'a> {
    /// The kernel (its ruleset must have the forwarding ruleset's NICs).
    pub variant: KernelVariant,
    /// The machine (direct kernel boot).
    pub machine: Machine,
    /// The kernel command line.
    pub kernel_cmdline: &'a str,
    /// Whether the console is printed when the appliance is dropped.
    pub report_on_drop: bool,
    /// Whether client hosts get their planned address and default route (otherwise their
    /// link is only brought up, for a DHCP client to configure).
    pub clients_addressed: bool,
    /// The appliance's addresses, when its ruleset does not follow the address plan.
    pub addresses: Option<&'a [Ipv4Cidr]>,
    /// The NIC whose tap is opened without the virtio-net header (no offloads), if any.
    pub plain: Option<usize>,
    /// Guest RAM in MiB (`None`: the default).
    pub memory_mib: Option<u32>,
}

impl Default for TapSetup<'_> {
    fn default() -> Self {
        TapSetup {
            variant: FORWARDING,
            machine: Machine::Q35,
            kernel_cmdline: "",
            report_on_drop: true,
            clients_addressed: true,
            addresses: None,
            plain: None,
            memory_mib: None,
        }
    }
}

/// A running appliance between real hosts. Dropped in field order: QEMU first, then the
/// servers, then the namespaces and taps.
pub struct TapAppliance {
    /// The VM (its console carries the drop log).
    pub vm: Vm,
    /// What the kernel said at boot (its NICs and their offloads).
    pub report: BootReport,
    /// The internet's servers, in the uplink's namespace.
    pub services: UplinkServices,
    /// The uplink's host: the gateway `10.0.2.2`, holding the internet's addresses.
    pub uplink: TestHost,
    /// The client hosts; `clients[i - 1]` is on `nic<i>`.
    clients: Vec<TestHost>,
}

impl TapAppliance {
    /// Boots the forwarding kernel with `kernel_cmdline`, wires every NIC to a host and
    /// starts the internet's servers. The console is printed when it is dropped (libtest
    /// shows it for failing tests).
    pub fn boot(kernel_cmdline: &str) -> Outcome<TapAppliance> {
        TapAppliance::boot_with(TapSetup {
            kernel_cmdline,
            ..TapSetup::default()
        })
    }

    /// [`TapAppliance::boot`] of `variant` (a ruleset with the forwarding ruleset's
    /// topology), without printing the console when dropped (for benchmarks), with
    /// `memory_mib` of guest RAM (`None`: the default).
    pub fn boot_quietly(
        variant: KernelVariant,
        kernel_cmdline: &str,
        memory_mib: Option<u32>,
    ) -> Outcome<TapAppliance> {
        TapAppliance::boot_with(TapSetup {
            variant,
            kernel_cmdline,
            report_on_drop: false,
            memory_mib,
            ..TapSetup::default()
        })
    }

    /// [`TapAppliance::boot`] with `nic<plain>`'s tap opened without the virtio-net header:
    /// that NIC gets no offloads (what a socket NIC or an old host offers).
    pub fn boot_with_plain_nic(kernel_cmdline: &str, plain: usize) -> Outcome<TapAppliance> {
        TapAppliance::boot_with(TapSetup {
            kernel_cmdline,
            plain: Some(plain),
            ..TapSetup::default()
        })
    }

    /// Boots on `machine` (direct kernel); prints the console when dropped if
    /// `report_on_drop`.
    pub fn boot_on(
        machine: Machine,
        kernel_cmdline: &str,
        report_on_drop: bool,
    ) -> Outcome<TapAppliance> {
        TapAppliance::boot_with(TapSetup {
            machine,
            kernel_cmdline,
            report_on_drop,
            ..TapSetup::default()
        })
    }

    /// Boots `variant` (a ruleset with the forwarding ruleset's topology: an uplink and
    /// two client networks) on `machine`; prints the console when dropped if
    /// `report_on_drop`.
    pub fn boot_variant(
        variant: KernelVariant,
        machine: Machine,
        kernel_cmdline: &str,
        report_on_drop: bool,
    ) -> Outcome<TapAppliance> {
        TapAppliance::boot_with(TapSetup {
            variant,
            machine,
            kernel_cmdline,
            report_on_drop,
            ..TapSetup::default()
        })
    }

    /// Boots as `setup` says.
    pub fn boot_with(setup: TapSetup) -> Outcome<TapAppliance> {
        let TapSetup {
            variant,
            machine,
            kernel_cmdline,
            report_on_drop,
            clients_addressed,
            addresses,
            plain,
            memory_mib,
        } = setup;
        let uplink = TestHost::create()?;
        let clients = (1..NICS)
            .map(|_| TestHost::create())
            .collect::<Outcome<Vec<_>>>()?;
        let mut spec = VmSpec::new(machine, BootPath::Kernel, NICS);
        spec.variant = variant;
        spec.addresses = addresses.map(<[Ipv4Cidr]>::to_vec);
        spec.kernel_cmdline = kernel_cmdline.to_string();
        spec.report_on_drop = report_on_drop;
        spec.memory_mib = memory_mib;
        spec.nics = std::iter::once(&uplink)
            .chain(&clients)
            .enumerate()
            .map(|(nic, host)| match plain == Some(nic) {
                true => NicWiring::PlainTap(host.tap().to_string()),
                false => NicWiring::Tap(host.tap().to_string()),
            })
            .collect();
        let vm = Vm::start(spec)?;
        // QEMU has opened the taps once the guest runs; only then may they move.
        let report = vm.wait_ready()?;
        if clients_addressed {
            attach_all(&uplink, &clients)?;
        } else {
            attach(&uplink, UPLINK_NIC)?;
            for client in &clients {
                client.attach_unaddressed()?;
            }
        }
        let services = UplinkServices::start(&uplink)?;
        Ok(TapAppliance {
            vm,
            report,
            services,
            uplink,
            clients,
        })
    }

    /// The client host on `nic<nic>`.
    pub fn client(&self, nic: usize) -> Outcome<&TestHost> {
        client_on(&self.clients, nic)
    }
}

/// The client host on `nic<nic>` among `clients` (`clients[i - 1]` on `nic<i>`).
pub fn client_on(clients: &[TestHost], nic: usize) -> Outcome<&TestHost> {
    nic.checked_sub(1)
        .and_then(|index| clients.get(index))
        .ok_or_else(|| Failure::new(format!("nic{nic} has no client host")))
}

/// Moves every host's tap into its namespace ([`attach`]): `uplink` on `nic0`,
/// `clients[i - 1]` on `nic<i>` with the appliance as its default gateway.
pub fn attach_all(uplink: &TestHost, clients: &[TestHost]) -> Outcome {
    address_all(uplink, clients, attach)
}

/// [`attach_all`] for taps created inside their namespaces
/// ([`TestHost::create_with_open_tap`]): addressed where they are.
pub fn address_all_in_place(uplink: &TestHost, clients: &[TestHost]) -> Outcome {
    address_all(uplink, clients, |host, nic| {
        let prefix = appliance_address(nic).prefix_len();
        host.address_in_place(Ipv4Cidr::new(host_address(nic), prefix))
    })
}

/// Addresses the uplink's host and every client's with `address` (the host, its NIC's
/// index), and gives each client its default route through the appliance.
fn address_all(
    uplink: &TestHost,
    clients: &[TestHost],
    address: impl Fn(&TestHost, usize) -> Outcome,
) -> Outcome {
    address(uplink, UPLINK_NIC)?;
    for (index, client) in clients.iter().enumerate() {
        let nic = index + 1;
        address(client, nic)?;
        let gateway = appliance_address(nic).address().to_string();
        client.run_checked("ip", &["route", "add", "default", "via", &gateway])?;
    }
    Ok(())
}

/// Moves `host`'s tap into its namespace with the planned address of `nic<nic>`'s host.
pub fn attach(host: &TestHost, nic: usize) -> Outcome {
    let prefix = appliance_address(nic).prefix_len();
    host.attach(Ipv4Cidr::new(host_address(nic), prefix))
}
