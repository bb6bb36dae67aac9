//! The calibration boot behind the `auto` accelerator: the probe guest's ring-0 spin loop,
//! booted on `microvm` under TCG and then under KVM. KVM gets as long as TCG took: if it has
//! not finished by then it is the slower one and is stopped, so calibration costs at most
//! twice the TCG time (a few tenths of a second).

use std::io::Read;
use std::time::{Duration, Instant};

use crate::accel::Accel;
use crate::error::{Error, Result};
use crate::probe_guest::{probe_elf, DONE_LINE, EXIT_STATUS};
use crate::qemu::{stop, wait_until, Boot, Machine, QemuConfig};

/// Ring-0 loop iterations: about 0.1 s under TCG, a few ms under real KVM, about 15 s under
/// a hypervisor that emulates ring 0.
const SPIN_ITERATIONS: u32 = 20_000_000;
/// How long TCG may take before calibration gives up (a loaded host is slow, not broken).
const TCG_DEADLINE: Duration = Duration::from_secs(60);

/// What was measured.
#[derive(Debug, Clone)]
pub struct Calibration {
    /// What was booted, for the report.
    pub workload: String,
    /// Wall time of the TCG boot, from QEMU start to exit.
    pub tcg: Duration,
    /// What happened under KVM.
    pub kvm: KvmOutcome,
}

/// The KVM half of a calibration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvmOutcome {
    /// KVM finished within TCG's time; its wall time.
    Finished(Duration),
    /// KVM was still running when TCG's time was up, and was stopped.
    SlowerThanTcg,
    /// QEMU could not run the probe under KVM.
    Failed(String),
}

/// Boots the probe under TCG, then under KVM with TCG's time as the deadline.
pub fn calibrate() -> Result<Calibration> {
    let dir = std::env::temp_dir().join(format!("moat-calibrate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    let elf = dir.join("probe.elf");
    let result = std::fs::write(&elf, probe_elf(SPIN_ITERATIONS))
        .map_err(Error::io(&elf))
        .and_then(|()| {
            let boot = Boot::Kernel {
                elf: elf.clone(),
                cmdline: String::new(),
            };
            let tcg = match time_probe(&boot, Accel::Tcg, TCG_DEADLINE)? {
                ProbeRun::Finished(elapsed) => elapsed,
                ProbeRun::TimedOut => {
                    return Err(Error::Calibration {
                        accel: "tcg",
                        reason: format!(
                            "the probe did not finish within {} s",
                            TCG_DEADLINE.as_secs()
                        ),
                    })
                }
                ProbeRun::Failed(reason) => {
                    return Err(Error::Calibration {
                        accel: "tcg",
                        reason,
                    })
                }
            };
            let kvm = match time_probe(&boot, Accel::Kvm, tcg)? {
                ProbeRun::Finished(elapsed) => KvmOutcome::Finished(elapsed),
                ProbeRun::TimedOut => KvmOutcome::SlowerThanTcg,
                ProbeRun::Failed(reason) => KvmOutcome::Failed(reason),
            };
            let workload = format!(
                "{} M ring-0 loop iterations on microvm",
                SPIN_ITERATIONS / 1_000_000
            );
            Ok(Calibration { workload, tcg, kvm })
        });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

enum ProbeRun {
    Finished(Duration),
    TimedOut,
    Failed(String),
}

fn time_probe(boot: &Boot, accel: Accel, deadline: Duration) -> Result<ProbeRun> {
    let mut config = QemuConfig::new(Machine::Microvm, accel, boot.clone());
    config.memory_mib = 16;
    config.debug_exit = true;
    let line = config.command_line()?;
    let started = Instant::now();
    let mut child = line.spawn_piped()?;
    let waited = wait_until(&mut child, started + deadline);
    let Ok(Some(status)) = waited else {
        stop(&mut child);
        return match waited {
            Err(error) => Ok(ProbeRun::Failed(format!("waiting for QEMU: {error}"))),
            _ => Ok(ProbeRun::TimedOut),
        };
    };
    let elapsed = started.elapsed();
    let console = read_all(child.stdout.take());
    let errors = read_all(child.stderr.take());
    if status.code() == Some(EXIT_STATUS) && console.contains(DONE_LINE) {
        Ok(ProbeRun::Finished(elapsed))
    } else {
        Ok(ProbeRun::Failed(format!(
            "QEMU exited with {status}: {}",
            errors.trim()
        )))
    }
}

fn read_all(stream: Option<impl Read>) -> String {
    let mut text = String::new();
    if let Some(mut stream) = stream {
        let _ = stream.read_to_string(&mut text);
    }
    text
}
