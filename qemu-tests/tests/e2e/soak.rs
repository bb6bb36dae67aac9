//! The soak, short form (root; the long form is `scripts/bench soak`): on q35, pc and
//! microvm, one boot each, every flood — own-source SYN, random-source SYN, 64-byte UDP, ARP
//! requests, from client beta and from the uplink — for a few seconds at the highest rate
//! this host reaches, back to back, while client alpha downloads through NAT. After each
//! flood the appliance answers ping on both client networks and forwards a new connection,
//! a stats line has appeared since the flood began, and the download has arrived complete
//! and byte for byte intact (see `qemu_tests::soak`).

use std::time::Duration;

use image::qemu::Machine;
use qemu_tests::flood::Flood;
use qemu_tests::notice::require_root;
use qemu_tests::soak::{SoakAppliance, SoakPlan, Survival};
use qemu_tests::{ensure, Outcome};

/// A few seconds per flood; recovery generous for a shared host.
const PLAN: SoakPlan = SoakPlan {
    quiet: Duration::from_secs(1),
    flood: Duration::from_secs(2),
    recovery: Duration::from_secs(30),
    rate: None,
};
/// Frames each flood must at least get to the appliance, or it tested nothing (the
/// slowest here, SYNs through NAT, reach some 10,000 per second).
const MIN_REACHED: u64 = 2_000;

fn soak(test: &str, machine: Machine) -> Outcome {
    if !require_root(test)? {
        return Ok(());
    }
    let mut soak = SoakAppliance::boot(machine, true)?;
    let mut failures = Vec::new();
    for flood in Flood::ALL {
        let outcome = soak.run_flood(flood, PLAN)?;
        // Captured by libtest: shown with the console if the test fails.
        eprintln!("{machine}: {outcome}");
        if outcome.reached.packets < MIN_REACHED {
            failures.push(format!(
                "{flood}: only {} frames reached the appliance: the flood tested nothing",
                outcome.reached.packets
            ));
        }
        if outcome.quiet_rate <= 0.0 {
            failures.push(format!(
                "{flood}: the download did not move before the flood"
            ));
        }
        if !outcome.passed() {
            failures.push(outcome.to_string());
        }
        if !matches!(outcome.survival, Survival::Survived(_)) {
            break;
        }
    }
    ensure(failures.is_empty(), || {
        format!("{machine}: {}", failures.join("\n"))
    })
}

#[test]
fn q35_survives_every_flood_with_the_download_intact() -> Outcome {
    soak(
        "q35_survives_every_flood_with_the_download_intact",
        Machine::Q35,
    )
}

#[test]
fn pc_survives_every_flood_with_the_download_intact() -> Outcome {
    soak(
        "pc_survives_every_flood_with_the_download_intact",
        Machine::Pc,
    )
}

#[test]
fn microvm_survives_every_flood_with_the_download_intact() -> Outcome {
    soak(
        "microvm_survives_every_flood_with_the_download_intact",
        Machine::Microvm,
    )
}
