//! A CPU exception or a panic prints a report and fails closed: QEMU exits with the failure
//! status when the exit device is present, and without it the appliance stops answering.

use std::time::Duration;

use image::qemu::{BootPath, Machine, FATAL_EXIT_STATUS};
use qemu_tests::boot_report::{BootReport, FATAL_PREFIX, HALTED_LINE, READY_LINE};
use qemu_tests::expect::{appliance_on, stays_silent};
use qemu_tests::kernels::KernelVariant;
use qemu_tests::vm::{Vm, VmSpec};
use qemu_tests::{ensure, Outcome};

const REPORT_TIMEOUT: Duration = Duration::from_secs(60);

fn fault_injected(fault: &str) -> VmSpec {
    let mut spec = VmSpec::new(Machine::Q35, BootPath::Kernel, 2);
    spec.variant = KernelVariant::FAULT_INJECTION;
    spec.kernel_cmdline = format!("moat.fault={fault}");
    spec
}

/// Boots with the fault injected, waits for the report and the halt line, checks QEMU's exit
/// status, and returns the report (the `moat: FATAL` lines).
fn fatal_report(spec: VmSpec) -> Outcome<Vec<String>> {
    let mut vm = Vm::start(spec)?;
    vm.console()
        .wait_for_line(READY_LINE, VmSpec::default_ready_timeout(BootPath::Kernel))?;
    vm.console().wait_for_line(HALTED_LINE, REPORT_TIMEOUT)?;
    let status = vm.wait_exit(REPORT_TIMEOUT)?;
    ensure(status.code() == Some(FATAL_EXIT_STATUS), || {
        format!("QEMU exited with {status} after the fault, expected the failure status {FATAL_EXIT_STATUS}")
    })?;
    let report: Vec<String> = vm
        .console()
        .lines()
        .into_iter()
        .filter(|line| line.starts_with(FATAL_PREFIX))
        .collect();
    ensure(!report.is_empty(), || {
        "no `moat: FATAL` line before the halt".to_string()
    })?;
    Ok(report)
}

#[test]
fn page_fault_prints_vector_error_code_rip_and_cr2_and_exits_with_the_failure_code() -> Outcome {
    let report = fatal_report(fault_injected("page"))?;
    let line = &report[0];
    for field in ["page fault", "vector 14", "error 0x", "rip 0x", "cr2 0x"] {
        ensure(line.contains(field), || {
            format!("page fault report lacks `{field}`: {line}")
        })?;
    }
    Ok(())
}

#[test]
fn panic_prints_message_and_location_and_exits_with_the_failure_code() -> Outcome {
    let report = fatal_report(fault_injected("panic"))?;
    let line = &report[0];
    ensure(line.contains("panic"), || {
        format!("panic report does not say panic: {line}")
    })?;
    let has_location = line
        .split(".rs:")
        .nth(1)
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    ensure(has_location, || {
        format!("panic report lacks a source location (file.rs:line): {line}")
    })?;
    ensure(line.contains("fault injection"), || {
        format!("panic report lacks the panic message: {line}")
    })
}

#[test]
fn after_a_page_fault_without_the_exit_device_the_appliance_stops_answering() -> Outcome {
    let mut spec = fault_injected("page");
    spec.debug_exit = false;
    let vm = Vm::start(spec)?;
    vm.console()
        .wait_for_line(READY_LINE, VmSpec::default_ready_timeout(BootPath::Kernel))?;
    vm.console().wait_for_line(HALTED_LINE, REPORT_TIMEOUT)?;
    let report = BootReport::parse(&vm.console().lines())?;
    stays_silent(
        vm.host(1)?,
        appliance_on(&report, 1)?,
        Duration::from_secs(3),
    )
}
