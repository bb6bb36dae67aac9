//! Choosing the accelerator: KVM or TCG.
//!
//! `/dev/kvm` opening is not evidence that KVM is fast. On some hosts it is a nested
//! hypervisor that emulates every ring-0 instruction, and all of a unikernel runs in ring 0:
//! there, a loop that TCG runs in 0.08 s takes 14 s under KVM. So `auto` picks KVM only when a
//! calibration boot ([`crate::calibrate`]) measures KVM faster than TCG, says which it chose
//! and why, and caches the choice for the rest of the process. `MOAT_ACCEL=kvm|tcg` forces.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use crate::calibrate::{calibrate, KvmOutcome};
use crate::error::{Error, Result};

/// Environment variable that forces the accelerator (`kvm` or `tcg`).
pub const ACCEL_ENV: &str = "MOAT_ACCEL";
/// The KVM device.
pub const KVM_DEVICE: &str = "/dev/kvm";

/// An accelerator QEMU runs the guest with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Accel {
    /// Hardware virtualisation through /dev/kvm.
    Kvm,
    /// QEMU's binary translator.
    Tcg,
}

impl Accel {
    /// Name as QEMU's `-accel` option spells it.
    pub fn qemu_name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.qemu_name())
    }
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelRequest {
    /// Measure, then pick the faster one (`MOAT_ACCEL` overrides).
    Auto,
    /// Exactly this accelerator.
    Force(Accel),
}

impl FromStr for AccelRequest {
    type Err = Error;

    fn from_str(text: &str) -> Result<AccelRequest> {
        match text {
            "auto" => Ok(AccelRequest::Auto),
            "kvm" => Ok(AccelRequest::Force(Accel::Kvm)),
            "tcg" => Ok(AccelRequest::Force(Accel::Tcg)),
            _ => Err(Error::InvalidRequest(format!(
                "unknown accelerator {text:?}: use auto, kvm or tcg"
            ))),
        }
    }
}

impl AccelRequest {
    /// The request in `MOAT_ACCEL`, if set (`auto` and empty mean not forced).
    pub fn from_env() -> Result<AccelRequest> {
        match std::env::var(ACCEL_ENV) {
            Err(_) => Ok(AccelRequest::Auto),
            Ok(text) if text.is_empty() => Ok(AccelRequest::Auto),
            Ok(text) => text
                .parse()
                .map_err(|error| Error::InvalidRequest(format!("{ACCEL_ENV}: {error}"))),
        }
    }
}

/// The accelerator chosen and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccelChoice {
    /// The accelerator to run with.
    pub accel: Accel,
    /// Why (forced by whom, or the measured times).
    pub reason: String,
}

impl fmt::Display for AccelChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "accelerator: {} ({})", self.accel, self.reason)
    }
}

/// Resolves a request: an explicit one wins, then `MOAT_ACCEL`, then the calibration.
pub fn choose(request: AccelRequest) -> Result<AccelChoice> {
    let (request, source) = match request {
        AccelRequest::Force(_) => (request, "asked for on the command line"),
        AccelRequest::Auto => (AccelRequest::from_env()?, "forced by MOAT_ACCEL"),
    };
    match request {
        AccelRequest::Force(Accel::Kvm) => {
            kvm_usable().map_err(|reason| Error::KvmUnusable { reason })?;
            Ok(AccelChoice {
                accel: Accel::Kvm,
                reason: source.to_string(),
            })
        }
        AccelRequest::Force(Accel::Tcg) => Ok(AccelChoice {
            accel: Accel::Tcg,
            reason: source.to_string(),
        }),
        AccelRequest::Auto => auto_choice(),
    }
}

/// The calibrated choice, measured once per process.
fn auto_choice() -> Result<AccelChoice> {
    static CHOICE: OnceLock<std::result::Result<AccelChoice, String>> = OnceLock::new();
    CHOICE
        .get_or_init(|| measure_choice().map_err(|error| error.to_string()))
        .clone()
        .map_err(|reason| Error::Calibration {
            accel: "auto",
            reason,
        })
}

fn measure_choice() -> Result<AccelChoice> {
    if let Err(reason) = kvm_usable() {
        return Ok(AccelChoice {
            accel: Accel::Tcg,
            reason: format!("auto: KVM not usable: {reason}"),
        });
    }
    let calibration = calibrate()?;
    let tcg = calibration.tcg.as_secs_f64();
    let (accel, verdict) = match calibration.kvm {
        KvmOutcome::Finished(kvm) if kvm < calibration.tcg => (
            Accel::Kvm,
            format!(
                "KVM took {:.3} s, faster than TCG's {tcg:.3} s",
                kvm.as_secs_f64()
            ),
        ),
        KvmOutcome::Finished(kvm) => (
            Accel::Tcg,
            format!(
                "KVM took {:.3} s, slower than TCG's {tcg:.3} s",
                kvm.as_secs_f64()
            ),
        ),
        KvmOutcome::SlowerThanTcg => (
            Accel::Tcg,
            format!("TCG took {tcg:.3} s; KVM had not finished by then and was stopped"),
        ),
        KvmOutcome::Failed(reason) => (
            Accel::Tcg,
            format!("TCG took {tcg:.3} s; KVM failed: {reason}"),
        ),
    };
    Ok(AccelChoice {
        accel,
        reason: format!(
            "auto: calibration boot ({}): {verdict}",
            calibration.workload
        ),
    })
}

/// Whether /dev/kvm can be opened for reading and writing, or why not.
pub fn kvm_usable() -> std::result::Result<(), String> {
    match std::fs::OpenOptions::new().read(true).write(true).open(KVM_DEVICE) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("{KVM_DEVICE} does not exist (no hardware virtualisation, or the kvm module is not loaded)"))
        }
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(format!("{KVM_DEVICE}: permission denied (add your user to the `kvm` group)"))
        }
        Err(error) => Err(format!("{KVM_DEVICE}: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_unknown_ones_are_refused() {
        assert_eq!("auto".parse::<AccelRequest>().unwrap(), AccelRequest::Auto);
        assert_eq!(
            "kvm".parse::<AccelRequest>().unwrap(),
            AccelRequest::Force(Accel::Kvm)
        );
        assert_eq!(
            "tcg".parse::<AccelRequest>().unwrap(),
            AccelRequest::Force(Accel::Tcg)
        );
        assert!("hvf"
            .parse::<AccelRequest>()
            .unwrap_err()
            .to_string()
            .contains("auto, kvm or tcg"));
    }

    #[test]
    fn an_explicit_tcg_request_needs_no_measurement() {
        let choice = choose(AccelRequest::Force(Accel::Tcg)).unwrap();
        assert_eq!(choice.accel, Accel::Tcg);
        assert!(choice.to_string().contains("command line"), "{choice}");
    }
}
