//! A running QEMU process seen from the outside, through `/proc`: found by a tap device its
//! command line opens, its CPU time (guest and QEMU's own device work together), and
//! whether it has opened its tap devices yet.

use std::time::{Duration, Instant};

use crate::{Failure, Outcome};

/// A QEMU process (the appliance, or a comparator VM).
pub struct QemuProcess {
    pid: u32,
    ticks_per_second: f64,
}

impl QemuProcess {
    /// Finds the QEMU whose command line opens tap `tap` (tap names are unique to this
    /// process's test hosts).
    pub fn find_by_tap(tap: &str) -> Outcome<QemuProcess> {
        let needle = format!("ifname={tap},");
        let entries = std::fs::read_dir("/proc")
            .map_err(|error| Failure::new(format!("reading /proc: {error}")))?;
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let mut args = cmdline
                .split(|&byte| byte == 0)
                .map(String::from_utf8_lossy);
            let is_qemu = args
                .next()
                .is_some_and(|program| program.contains("qemu-system"));
            if is_qemu && args.any(|arg| arg.contains(&needle)) {
                return Ok(QemuProcess::of_pid(pid));
            }
        }
        Err(Failure::new(format!("no QEMU process opens tap {tap}")))
    }

    /// The QEMU this process started, as process `pid`.
    pub fn of_pid(pid: u32) -> QemuProcess {
        // SAFETY: sysconf(3) takes no pointers and has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        QemuProcess {
            pid,
            ticks_per_second: if ticks > 0 { ticks as f64 } else { 100.0 },
        }
    }

    /// User and system CPU time so far.
    pub fn cpu_time(&self) -> Outcome<Duration> {
        let path = format!("/proc/{}/stat", self.pid);
        let stat = std::fs::read_to_string(&path)
            .map_err(|error| Failure::new(format!("reading {path}: {error}")))?;
        // The fields after the command name (which may hold spaces) start with the state
        // (field 3); utime and stime are fields 14 and 15.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |index: usize| {
            fields
                .get(index)
                .and_then(|field| field.parse::<u64>().ok())
        };
        match (ticks(11), ticks(12)) {
            (Some(user), Some(system)) => Ok(Duration::from_secs_f64(
                (user + system) as f64 / self.ticks_per_second,
            )),
            _ => Err(Failure::new(format!(
                "{path} has no utime and stime: {stat}"
            ))),
        }
    }
}

impl QemuProcess {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the process still runs (exists, and is not a zombie waiting to be reaped).
    pub fn is_running(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .ok()
            .and_then(|stat| {
                let (_, rest) = stat.rsplit_once(')')?;
                rest.split_whitespace().next().map(|state| state != "Z")
            })
            .unwrap_or(false)
    }

    /// Waits until the process holds every tap in `taps` open (QEMU opens them while it sets
    /// up its devices, before the guest runs); a tap may move into a namespace only then.
    pub fn wait_taps_open(&self, taps: &[&str], timeout: Duration) -> Outcome {
        let deadline = Instant::now() + timeout;
        loop {
            let open = open_taps(self.pid);
            if taps.iter().all(|tap| open.iter().any(|name| name == tap)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Failure::new(format!(
                    "QEMU (pid {}) has not opened taps {taps:?} after {:.0} s (open: {open:?})",
                    self.pid,
                    timeout.as_secs_f64()
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// The tap devices process `pid` holds open (the `iff:` lines of its descriptors' fdinfo).
fn open_taps(pid: u32) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .filter_map(|info| parse_tap_fdinfo(&info))
        .collect()
}

/// The interface named by a tun/tap descriptor's fdinfo (`iff:\tNAME`).
pub fn parse_tap_fdinfo(info: &str) -> Option<String> {
    info.lines()
        .find_map(|line| line.strip_prefix("iff:"))
        .map(|name| name.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_descriptors_name_their_interface() {
        let info = "pos:\t0\nflags:\t0104002\nmnt_id:\t25\nino:\t1089\niff:\tmt4242-0\n";
        assert_eq!(parse_tap_fdinfo(info).as_deref(), Some("mt4242-0"));
        assert_eq!(parse_tap_fdinfo("pos:\t0\nflags:\t02\n"), None);
    }
}
