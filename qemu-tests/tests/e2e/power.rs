//! The ACPI power button (QEMU's `system_powerdown`, what `virsh shutdown` sends) makes the
//! appliance log `moat: shutdown` and power off, so QEMU exits with status 0.

use std::time::Duration;

use image::qemu::{BootPath, Machine};
use qemu_tests::boot_report::SHUTDOWN_LINE;
use qemu_tests::vm::{Vm, VmSpec};
use qemu_tests::{ensure, Outcome};

const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

fn power_button_shuts_down_cleanly(machine: Machine) -> Outcome {
    let mut vm = Vm::start(VmSpec::new(machine, BootPath::Kernel, 2))?;
    vm.wait_ready()?;
    vm.power_button()?;
    vm.console()
        .wait_for_line(SHUTDOWN_LINE, SHUTDOWN_TIMEOUT)?;
    let status = vm.wait_exit(SHUTDOWN_TIMEOUT)?;
    ensure(status.code() == Some(0), || {
        format!("QEMU exited with {status} after `{SHUTDOWN_LINE}`, expected 0")
    })
}

#[test]
fn power_button_on_q35_logs_shutdown_and_qemu_exits_cleanly() -> Outcome {
    power_button_shuts_down_cleanly(Machine::Q35)
}

#[test]
fn power_button_on_pc_logs_shutdown_and_qemu_exits_cleanly() -> Outcome {
    power_button_shuts_down_cleanly(Machine::Pc)
}

#[test]
fn power_button_on_microvm_logs_shutdown_and_qemu_exits_cleanly() -> Outcome {
    power_button_shuts_down_cleanly(Machine::Microvm)
}
