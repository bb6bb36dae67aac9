//! `tcpdump` on a test host's link device: which packets matching a filter crossed it, and
//! when (wall-clock time, to compare with when the console said something).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::background::Background;
use crate::test_host::TestHost;
use crate::{Failure, Outcome};

/// A capture running in the background.
pub struct Capture {
    process: Background,
    filter: String,
}

/// One captured packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Captured {
    /// When it was captured.
    pub at: SystemTime,
    /// tcpdump's line for it.
    pub line: String,
}

impl Capture {
    /// Starts capturing packets matching `filter` (a pcap filter) on `host`'s link device,
    /// and waits until tcpdump captures.
    pub fn start(host: &TestHost, filter: &str) -> Outcome<Capture> {
        let child = host
            .spawn(
                "tcpdump",
                &["-i", host.tap(), "-n", "-l", "-tt", "-U", filter],
            )
            .map_err(|failure| {
                Failure::new(format!("{failure} (scripts/setup installs tcpdump)"))
            })?;
        let mut process = Background::new(format!("tcpdump {filter:?}"), child);
        // tcpdump opens the device within milliseconds; its "listening on" goes to stderr,
        // which is only read at the end.
        std::thread::sleep(Duration::from_millis(500));
        if process.has_exited() {
            let output = process.finish(Duration::from_secs(1))?;
            return Err(Failure::new(format!(
                "tcpdump {filter:?} exited at once: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(Capture {
            process,
            filter: filter.to_string(),
        })
    }

    /// Stops the capture; the packets it saw, in order.
    pub fn stop(self) -> Outcome<Vec<Captured>> {
        // SAFETY: kill(2) with the pid of a child this capture started and has not waited
        // for (so it cannot have been reused), and a plain termination signal.
        unsafe { libc::kill(self.process.pid() as libc::pid_t, libc::SIGTERM) };
        let output = self.process.finish(Duration::from_secs(5))?;
        let text = String::from_utf8_lossy(&output.stdout);
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                parse_line(line).ok_or_else(|| {
                    Failure::new(format!("tcpdump {:?} printed {line:?}", self.filter))
                })
            })
            .collect()
    }
}

/// A `tcpdump -tt` line: `1700000000.123456 IP ...`.
fn parse_line(line: &str) -> Option<Captured> {
    let (stamp, _) = line.split_once(' ')?;
    let (secs, micros) = stamp.split_once('.')?;
    let at = UNIX_EPOCH
        + Duration::from_secs(secs.parse().ok()?)
        + Duration::from_micros(micros.parse().ok()?);
    Some(Captured {
        at,
        line: line.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcpdump_lines_give_their_capture_time() {
        let captured =
            parse_line("1700000000.250000 IP 10.0.2.100 > 198.51.100.80: ICMP echo request")
                .unwrap();
        assert_eq!(
            captured.at,
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_250)
        );
        assert_eq!(parse_line("tcpdump: listening on mt1-0"), None);
    }
}
