//! The hardware watchdog (i6300ESB on `q35` and `pc`, added by default as `image run` does):
//! a main loop that stops (`moat.fault=hang`: it spins with interrupts off) makes the
//! hypervisor reset the VM within a bounded time — the appliance boots again and says why,
//! or QEMU stops under `-no-reboot` — while a healthy appliance is never reset, idle or
//! kept busy by a flood for several timeouts.

use std::time::Duration;

use dataplane::testutil::datagram::{Ipv4Datagram, Ipv4Frame, Ipv4Header, Transport, UdpDatagram};
use image::qemu::{BootPath, Machine};
use qemu_tests::addressing::INTERNET_SERVER;
use qemu_tests::boot_report::{BootReport, FATAL_PREFIX};
use qemu_tests::expect::{
    answers_arp_and_ping_on_every_nic, answers_ping, appliance_on, stays_silent, ANSWER_TIMEOUT,
};
use qemu_tests::frame_flood::FrameFlood;
use qemu_tests::kernels::KernelVariant;
use qemu_tests::vm::{Vm, VmSpec};
use qemu_tests::{ensure, Failure, Outcome};
use smoltcp::wire::{EthernetProtocol, EthernetRepr};

/// The kernel's default watchdog timeout (`moat.watchdog`).
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long the watchdog may take to act once the main loop stops: its timeout, and plenty
/// for an emulated CPU on a busy host.
const ACTS_WITHIN: Duration = Duration::from_secs(5 + 60);
/// What the kernel prints just before it stops its main loop.
const HANG_LINE: &str = "moat: fault injection: the main loop stops (interrupts off)";
/// What the kernel says when it boots after the watchdog reset it.
const RESET_WARNING: &str = "moat: warning: the watchdog reset this VM";

/// A fault-injection kernel on `machine` whose main loop stops right after `moat: ready`.
fn hanging(machine: Machine) -> VmSpec {
    let mut spec = VmSpec::new(machine, BootPath::Kernel, 1);
    spec.variant = KernelVariant::FAULT_INJECTION;
    spec.kernel_cmdline = "moat.fault=hang".into();
    spec
}

/// Lines that are a banner (the first line of each boot).
fn banners(vm: &Vm) -> usize {
    vm.console()
        .count(|line| line.starts_with("moat ") && line.contains(": ruleset "))
}

fn no_fatal_report(vm: &Vm) -> Outcome {
    let fatal = vm.console().count(|line| line.starts_with(FATAL_PREFIX));
    ensure(fatal == 0, || {
        "the kernel printed a fatal report: the watchdog, not a fault, should end the hang"
            .to_string()
    })
}

#[test]
fn a_stopped_main_loop_is_reset_by_the_watchdog_and_the_appliance_boots_again() -> Outcome {
    let mut spec = hanging(Machine::Q35);
    spec.no_reboot = false;
    let vm = Vm::start(spec)?;
    vm.wait_ready()?;
    vm.console().wait_for_line(HANG_LINE, ACTS_WITHIN)?;
    vm.console().wait_until(
        "a second banner: the VM reset by the watchdog and booting again",
        ACTS_WITHIN,
        |snapshot| {
            let booted_again = snapshot
                .lines
                .iter()
                .filter(|line| line.starts_with("moat ") && line.contains(": ruleset "))
                .count()
                >= 2;
            booted_again.then_some(Ok(()))
        },
    )?;
    // The second boot knows why it happened.
    vm.console().wait_until(
        "the second boot's warning that the watchdog reset the VM",
        VmSpec::default_ready_timeout(BootPath::Kernel),
        |snapshot| {
            snapshot
                .lines
                .iter()
                .any(|line| line.starts_with(RESET_WARNING))
                .then_some(Ok(()))
        },
    )?;
    no_fatal_report(&vm)
}

#[test]
fn under_no_reboot_a_stopped_main_loop_ends_the_vm() -> Outcome {
    let mut vm = Vm::start(hanging(Machine::Pc))?;
    vm.wait_ready()?;
    vm.console().wait_for_line(HANG_LINE, ACTS_WITHIN)?;
    let status = vm.wait_exit(ACTS_WITHIN)?;
    // A watchdog reset under -no-reboot is a clean QEMU exit; a fatal report would be 3.
    ensure(status.success(), || {
        format!("QEMU exited with {status} after the hang, expected the watchdog's clean stop")
    })?;
    ensure(banners(&vm) == 1, || {
        "the VM booted again despite -no-reboot".to_string()
    })?;
    ensure(
        vm.console().count(|line| line.starts_with(RESET_WARNING)) == 0,
        || "the first boot claimed a watchdog reset before it".to_string(),
    )?;
    no_fatal_report(&vm)
}

#[test]
fn a_healthy_idle_appliance_is_not_reset_over_three_timeouts() -> Outcome {
    let mut spec = VmSpec::new(Machine::Q35, BootPath::Kernel, 2);
    spec.variant = KernelVariant::EVERY_NIC;
    let vm = Vm::start(spec)?;
    let report = vm.wait_ready()?;
    std::thread::sleep(TIMEOUT * 3);
    // Still the same boot (a reset would have ended QEMU under -no-reboot), still answering.
    answers_arp_and_ping_on_every_nic(&vm, &report)?;
    vm.check_still_the_first_boot()
}

#[test]
fn a_watchdog_turned_off_on_the_command_line_lets_a_stopped_main_loop_stop() -> Outcome {
    let mut spec = hanging(Machine::Q35);
    spec.kernel_cmdline = "moat.fault=hang moat.watchdog=off".into();
    let mut vm = Vm::start(spec)?;
    // Waiting for ready checks the `watchdog ... off` line.
    vm.wait_ready()?;
    vm.console().wait_for_line(HANG_LINE, ACTS_WITHIN)?;
    let report = BootReport::parse(&vm.console().lines())?;
    stays_silent(vm.host(0)?, appliance_on(&report, 0)?, TIMEOUT * 2)?;
    match vm.wait_exit(Duration::from_secs(1)) {
        Ok(status) => Err(Failure::new(format!(
            "QEMU exited ({status}) although the watchdog was off"
        ))),
        Err(_) => Ok(()),
    }
}

#[test]
fn a_main_loop_kept_busy_by_a_flood_for_three_timeouts_still_pets_the_watchdog() -> Outcome {
    // Each frame costs 200 µs more (`moat.fault=slow`), so the flood below keeps the main
    // loop busy round after round, never idle: only a pet between rounds keeps the
    // shortest watchdog (2 s) from resetting the VM.
    let mut spec = VmSpec::new(Machine::Q35, BootPath::Kernel, 2);
    spec.variant = KernelVariant::FAULT_INJECTION;
    spec.kernel_cmdline = "moat.fault=slow moat.watchdog=2".into();
    let vm = Vm::start(spec)?;
    let report = vm.wait_ready()?;
    let (uplink, client) = (vm.host(0)?, vm.host(1)?);
    let appliance = appliance_on(&report, 1)?;
    let frame = Ipv4Frame {
        ethernet: EthernetRepr {
            src_addr: client.station.mac,
            dst_addr: appliance.mac,
            ethertype: EthernetProtocol::Ipv4,
        },
        datagram: Ipv4Datagram {
            header: Ipv4Header {
                src: client.station.ip,
                dst: INTERNET_SERVER,
                ttl: 64,
                ident: 1,
                dont_fragment: true,
            },
            transport: Transport::Udp(UdpDatagram {
                src_port: 5_001,
                dst_port: 5_201,
                payload: vec![0x6d; 18],
            }),
        },
    }
    .emit();
    let busy = Duration::from_secs(6);
    let (collected, flooded) = std::thread::scope(|scope| {
        // The uplink's host answers the appliance's ARP requests for the gateway.
        let collected = scope.spawn(|| uplink.frames_within(busy + Duration::from_secs(1)));
        let flooded = FrameFlood {
            frames: vec![frame],
            duration: busy,
        }
        .send(client);
        (collected.join(), flooded)
    });
    let forwarded = collected
        .unwrap_or_else(|_| Err(Failure::new("the uplink's collector panicked")))?
        .len();
    let flooded = flooded?;
    eprintln!(
        "slow main loop: offered {} frames ({:.0}/s), forwarded {forwarded}",
        flooded.sent,
        flooded.rate()
    );
    ensure(forwarded > 0, || {
        "nothing of the flood was forwarded".to_string()
    })?;
    // Still the first boot, and still answering.
    answers_ping(client, appliance, 1, ANSWER_TIMEOUT)?;
    vm.check_still_the_first_boot()
}
