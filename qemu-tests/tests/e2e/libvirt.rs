//! The appliance under libvirt, from the domain XML `image libvirt-xml` writes: `virsh
//! define` and `virsh start` boot it — the kernel, or `moat.qcow2` through SeaBIOS and GRUB
//! — (domain type `qemu`: this host's KVM is slower than TCG), a client pings through it,
//! and `virsh shutdown` makes it log `moat: shutdown` and leaves the domain shut off. Root
//! only; the domain is undefined whatever happens.

use std::time::Duration;

use image::libvirt::{Domain, DomainType, LibvirtConsole, LibvirtNic};
use image::qemu::{Boot, BootPath, Machine};
use qemu_tests::addressing::host_address;
use qemu_tests::boot_report::{READY_LINE, SHUTDOWN_LINE};
use qemu_tests::forwarding_ruleset::{ALPHA_NIC, FORWARDING, NICS, UPLINK_NIC};
use qemu_tests::kernels::artifacts;
use qemu_tests::libvirt_domain::{ensure_libvirtd, DomainDir, LibvirtDomain};
use qemu_tests::notice::require_root;
use qemu_tests::tap_appliance::{attach_all, client_on};
use qemu_tests::test_host::TestHost;
use qemu_tests::vm::VmSpec;
use qemu_tests::{ensure, Outcome};

const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);
const PINGS: u32 = 3;

/// A domain of the forwarding image booted by `boot` (the kernel, or `moat.qcow2` through
/// SeaBIOS and GRUB), its NICs on the hosts' taps, started by libvirt; returns once the
/// console says `moat: ready` and the watchdog runs.
fn start_domain(boot: BootPath, uplink: &TestHost, clients: &[TestHost]) -> Outcome<LibvirtDomain> {
    ensure_libvirtd()?;
    let dir = DomainDir::create()?;
    let built = artifacts(FORWARDING)?;
    let boot_spec = match boot {
        BootPath::Kernel => Boot::Kernel {
            elf: dir.copy_in(&built.elf)?,
            cmdline: String::new(),
        },
        BootPath::Bios => Boot::Bios {
            disk: dir.copy_in(&built.qcow2)?,
        },
        BootPath::Uefi => Boot::Uefi {
            disk: dir.copy_in(&built.qcow2)?,
        },
    };
    let console = dir.path.join("console.log");
    let domain = Domain {
        name: dir.name.clone(),
        domain_type: DomainType::Qemu,
        machine: Machine::Q35,
        memory_mib: boot.default_memory_mib(),
        boot: boot_spec,
        ovmf: None,
        nics: std::iter::once(uplink)
            .chain(clients)
            .map(|host| LibvirtNic::Tap(host.tap().to_string()))
            .collect(),
        console: LibvirtConsole::File(console.clone()),
    };
    let running = LibvirtDomain::start(&domain, dir, console)?;
    running.wait_for_console_line(READY_LINE, VmSpec::default_ready_timeout(boot))?;
    let lines = running.console_lines();
    ensure(
        lines
            .iter()
            .any(|l| l.starts_with("moat: watchdog i6300esb ") && l.ends_with(" timeout 5 s")),
        || format!("the domain's watchdog is not running: {lines:#?}"),
    )?;
    Ok(running)
}

fn hosts() -> Outcome<(TestHost, Vec<TestHost>)> {
    let uplink = TestHost::create()?;
    let clients = (1..NICS)
        .map(|_| TestHost::create())
        .collect::<Outcome<Vec<_>>>()?;
    Ok((uplink, clients))
}

#[test]
fn libvirt_boots_the_generated_domain_pings_through_it_and_shuts_it_down() -> Outcome {
    if !require_root("libvirt_boots_the_generated_domain_pings_through_it_and_shuts_it_down")? {
        return Ok(());
    }
    let (uplink, clients) = hosts()?;
    let running = start_domain(BootPath::Kernel, &uplink, &clients)?;
    // QEMU has opened the taps: into the namespaces with them, and ping the uplink's host
    // from a client, through the appliance (NAT).
    attach_all(&uplink, &clients)?;
    let ping = client_on(&clients, ALPHA_NIC)?.ping(host_address(UPLINK_NIC), PINGS)?;
    ensure(ping.received == PINGS, || {
        format!(
            "{} of {PINGS} pings through the libvirt domain came back:\n{}",
            ping.received, ping.output
        )
    })?;
    moat_shuts_down_on_virsh_shutdown(&running)
}

#[test]
fn libvirt_boots_the_generated_disk_domain_through_seabios_and_shuts_it_down() -> Outcome {
    if !require_root("libvirt_boots_the_generated_disk_domain_through_seabios_and_shuts_it_down")? {
        return Ok(());
    }
    let (uplink, clients) = hosts()?;
    let running = start_domain(BootPath::Bios, &uplink, &clients)?;
    let lines = running.console_lines();
    ensure(
        lines
            .iter()
            .any(|l| l.starts_with("moat: boot multiboot2,")),
        || format!("the disk domain did not boot through GRUB (Multiboot2): {lines:#?}"),
    )?;
    moat_shuts_down_on_virsh_shutdown(&running)
}

fn moat_shuts_down_on_virsh_shutdown(running: &LibvirtDomain) -> Outcome {
    qemu_tests::libvirt_domain::virsh(&["shutdown", running.name()])?;
    running.wait_for_console_line(SHUTDOWN_LINE, SHUTDOWN_TIMEOUT)?;
    running.wait_for_state("shut off", SHUTDOWN_TIMEOUT)
}
