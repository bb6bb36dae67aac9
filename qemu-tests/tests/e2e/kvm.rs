//! The KVM path users on real hardware take keeps working: whenever /dev/kvm exists, the
//! direct kernel boots under KVM to `moat: ready` and answers a ping, even where KVM is slow
//! (nested, emulating ring 0) and the suite otherwise runs under TCG.

use std::path::Path;
use std::time::Duration;

use image::accel::{kvm_usable, Accel, KVM_DEVICE};
use image::qemu::{BootPath, Machine};
use qemu_tests::expect::{answers_arp, answers_ping, appliance_on};
use qemu_tests::notice::notice;
use qemu_tests::vm::{Vm, VmSpec};
use qemu_tests::{Failure, Outcome};

/// Where every ring-0 instruction is emulated, boot and replies are minutes, not seconds.
const KVM_READY_TIMEOUT: Duration = Duration::from_secs(20 * 60);
const KVM_ANSWER_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[test]
fn direct_kernel_under_kvm_reaches_ready_and_answers_ping() -> Outcome {
    if !Path::new(KVM_DEVICE).exists() {
        notice(&format!("SKIPPED direct_kernel_under_kvm_reaches_ready_and_answers_ping: no {KVM_DEVICE} on this host"));
        return Ok(());
    }
    kvm_usable().map_err(|reason| {
        Failure::new(format!("{KVM_DEVICE} exists but is not usable: {reason}"))
    })?;
    let mut spec = VmSpec::new(Machine::Q35, BootPath::Kernel, 2);
    spec.accel = Some(Accel::Kvm);
    spec.ready_timeout = Some(KVM_READY_TIMEOUT);
    let vm = Vm::start(spec)?;
    let report = vm.wait_ready()?;
    let host = vm.host(1)?;
    let appliance = appliance_on(&report, 1)?;
    answers_arp(host, appliance, KVM_ANSWER_TIMEOUT)?;
    answers_ping(host, appliance, 1, KVM_ANSWER_TIMEOUT)
}
