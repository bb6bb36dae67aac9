//! Kernel command-line options: a `moat.` word the kernel cannot use is reported on the
//! console, after the banner, and the option keeps its default — never silently ignored.

use image::qemu::{BootPath, Machine};
use qemu_tests::boot_report::WatchdogReport;
use qemu_tests::vm::{Vm, VmSpec};
use qemu_tests::{ensure, Outcome};

/// What the state table line says its capacity is (`moat: N rules, state table M flows`).
fn state_table_capacity(lines: &[String]) -> Option<u64> {
    lines.iter().find_map(|line| {
        let rest = line.split(", state table ").nth(1)?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[test]
fn malformed_and_unknown_options_are_reported_and_the_defaults_kept() -> Outcome {
    let mut spec = VmSpec::new(Machine::Q35, BootPath::Kernel, 1);
    spec.kernel_cmdline =
        "moat.max-states=12x moat.watchdog=1 moat.max-state=64 moat.log=loud".into();
    let vm = Vm::start(spec)?;
    // The kernel still boots, its banner first; the report checks the watchdog runs.
    let report = vm.wait_ready()?;
    let lines = vm.console().lines();
    for (word, says) in [
        ("moat.max-states=12x", "a whole number of flows"),
        ("moat.watchdog=1", "from 2 to 600"),
        ("moat.max-state=64", "unknown option"),
        ("moat.log=loud", "`debug`"),
    ] {
        let reported = lines.iter().any(|line| {
            line.starts_with("moat: warning: ") && line.contains(word) && line.contains(says)
        });
        ensure(reported, || {
            format!("no console warning about `{word}` saying {says:?}")
        })?;
    }
    ensure(
        matches!(
            report.watchdog,
            Some(WatchdogReport::Running {
                timeout_seconds: 5,
                ..
            })
        ),
        || {
            format!(
                "a rejected moat.watchdog should keep the 5 s default, the kernel reported {:?}",
                report.watchdog
            )
        },
    )?;
    let capacity = state_table_capacity(&lines);
    ensure(capacity.is_some_and(|flows| flows > 12), || {
        format!("a rejected moat.max-states should keep the RAM-sized default, the kernel reported {capacity:?} flows")
    })
}

#[test]
fn a_valid_watchdog_timeout_is_used() -> Outcome {
    let mut spec = VmSpec::new(Machine::Pc, BootPath::Kernel, 1);
    spec.kernel_cmdline = "moat.watchdog=30".into();
    let vm = Vm::start(spec)?;
    let report = vm.wait_ready()?;
    ensure(
        matches!(
            report.watchdog,
            Some(WatchdogReport::Running {
                timeout_seconds: 30,
                ..
            })
        ),
        || format!("moat.watchdog=30 gave {:?}", report.watchdog),
    )?;
    ensure(
        vm.console()
            .count(|line| line.starts_with("moat: warning: "))
            == 0,
        || "a valid command line drew a warning".to_string(),
    )
}
