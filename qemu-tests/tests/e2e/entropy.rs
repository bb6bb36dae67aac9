//! The boot says where the entropy of its keys came from: the CPU's generator when it has
//! one, TSC jitter alone when it has none — and it boots either way.

use image::accel::Accel;
use image::qemu::{BootPath, Machine};
use qemu_tests::vm::{Vm, VmSpec};
use qemu_tests::{ensure, Failure, Outcome};

/// The `moat: entropy ...` line of a TCG boot with `-cpu <cpu>`.
fn entropy_line(cpu: &str) -> Outcome<String> {
    let mut spec = VmSpec::new(Machine::Q35, BootPath::Kernel, 1);
    spec.accel = Some(Accel::Tcg);
    spec.extra_qemu_args = vec!["-cpu".into(), cpu.into()];
    let vm = Vm::start(spec)?;
    vm.wait_ready()?;
    vm.console()
        .lines()
        .into_iter()
        .find(|line| line.starts_with("moat: entropy "))
        .ok_or_else(|| Failure::new(format!("no `moat: entropy` line with -cpu {cpu}")))
}

#[test]
fn a_cpu_with_rdrand_keys_the_appliance_from_it() -> Outcome {
    // TCG's `max` model has RDRAND (and RDSEED in QEMU versions that emulate it).
    let line = entropy_line("max")?;
    ensure(
        line == "moat: entropy rdrand" || line == "moat: entropy rdseed",
        || format!("-cpu max: {line:?}"),
    )
}

#[test]
fn a_cpu_without_a_generator_falls_back_to_tsc_jitter_and_says_so() -> Outcome {
    let line = entropy_line("qemu64,-rdrand,-rdseed")?;
    ensure(line == "moat: entropy tsc-jitter only", || {
        format!("-cpu qemu64 without generators: {line:?}")
    })
}
