//! A pcap file read the way users read it: with `tcpdump -r`, one line per packet.

use std::path::Path;
use std::process::Command;

use crate::{Failure, Outcome};

/// tcpdump's line for every packet in `file` (`-nn -S -tt -e`: numeric addresses and ports,
/// absolute sequence numbers, epoch timestamps, link-level headers). Fails naming tcpdump's
/// complaint if it cannot read the file.
pub fn read_with_tcpdump(file: &Path) -> Outcome<Vec<String>> {
    let output = Command::new("tcpdump")
        .args(["-r"])
        .arg(file)
        .args(["-nn", "-S", "-tt", "-e"])
        .output()
        .map_err(|error| {
            Failure::new(format!(
                "running tcpdump -r {}: {error} (scripts/setup installs tcpdump)",
                file.display()
            ))
        })?;
    if !output.status.success() {
        return Err(Failure::new(format!(
            "tcpdump -r {} failed ({}): {}",
            file.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}
