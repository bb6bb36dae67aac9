//! `iperf3` between test hosts: a server in one namespace, clients in others, and the
//! client's JSON report read into the figures the tests and the forwarding benchmark use
//! (per-second intervals, bytes sent and received, UDP packets and losses).

use std::net::SocketAddr;
use std::process::Child;
use std::time::{Duration, Instant};

use image::qemu::stop;
use serde_json::Value;

use crate::background::Background;
use crate::test_host::TestHost;
use crate::{Failure, Outcome};

/// How long a server may take to start listening.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client may take beyond its test duration (connecting, the final exchange of
/// results) on an emulated appliance.
const CLIENT_GRACE: Duration = Duration::from_secs(60);

/// An `iperf3 --server` in a test host's namespace, killed when dropped.
pub struct IperfServer {
    child: Child,
    address: SocketAddr,
}

impl IperfServer {
    /// Starts a server on `address` (IPv4 or IPv6) in `host`'s namespace and waits until it
    /// listens.
    pub fn start(host: &TestHost, address: impl Into<SocketAddr>) -> Outcome<IperfServer> {
        let address = address.into();
        let (ip, port) = (address.ip().to_string(), address.port().to_string());
        let child = host.spawn("iperf3", &["--server", "--bind", &ip, "--port", &port])?;
        let mut server = IperfServer { child, address };
        let deadline = Instant::now() + SERVER_START_TIMEOUT;
        loop {
            let listening =
                host.run("ss", &["-H", "-l", "-t", "-n", "src", &address.to_string()])?;
            if !listening.stdout.is_empty() {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(Failure::new(format!(
                    "iperf3 server on {address} exited at start ({status}): install iperf3"
                )));
            }
            if Instant::now() >= deadline {
                return Err(Failure::new(format!(
                    "iperf3 server on {address} not listening after {} s",
                    SERVER_START_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for IperfServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// What a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IperfLoad {
    /// One TCP stream, as fast as it goes.
    Tcp,
    /// One TCP stream from the server to the client (`--reverse`).
    TcpReverse,
    /// UDP datagrams of `length` payload bytes at `bits_per_second` (0: as fast as the
    /// sender can).
    Udp {
        /// Target rate; 0 for unlimited.
        bits_per_second: u64,
        /// UDP payload bytes per datagram.
        length: usize,
    },
}

/// One client run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IperfRun {
    /// The server.
    pub server: SocketAddr,
    /// How long to send.
    pub seconds: u32,
    /// What to send.
    pub load: IperfLoad,
}

impl IperfRun {
    fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--client".to_string(),
            self.server.ip().to_string(),
            "--port".into(),
            self.server.port().to_string(),
            "--time".into(),
            self.seconds.to_string(),
            "--interval".into(),
            "1".into(),
            "--connect-timeout".into(),
            "20000".into(),
            "--json".into(),
        ];
        if self.load == IperfLoad::TcpReverse {
            args.push("--reverse".into());
        }
        if let IperfLoad::Udp {
            bits_per_second,
            length,
        } = self.load
        {
            args.extend([
                "--udp".into(),
                "--bitrate".into(),
                bits_per_second.to_string(),
                "--length".into(),
                length.to_string(),
            ]);
        }
        args
    }

    /// Starts the client in `host`'s namespace, in the background.
    pub fn start(&self, host: &TestHost) -> Outcome<RunningIperf> {
        let args = self.args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = host.spawn("iperf3", &args)?;
        Ok(RunningIperf {
            run: *self,
            process: Background::new(format!("iperf3 client to {}", self.server), child),
        })
    }

    /// Runs the client in `host`'s namespace to the end.
    pub fn run(&self, host: &TestHost) -> Outcome<IperfReport> {
        self.start(host)?.finish()
    }
}

/// A client running in the background.
pub struct RunningIperf {
    run: IperfRun,
    process: Background,
}

impl RunningIperf {
    /// Waits for the client to end (its duration and a grace period) and reads its report.
    pub fn finish(self) -> Outcome<IperfReport> {
        let timeout = Duration::from_secs(u64::from(self.run.seconds)) + CLIENT_GRACE;
        let output = self.process.finish(timeout)?;
        let json = String::from_utf8_lossy(&output.stdout);
        let report = IperfReport::parse(&json).map_err(|reason| {
            Failure::new(format!(
                "iperf3 client to {} ({}): {reason}; stderr: {}",
                self.run.server,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        })?;
        if output.status.success() {
            Ok(report)
        } else {
            Err(Failure::new(format!(
                "iperf3 client to {} exited with {}",
                self.run.server, output.status
            )))
        }
    }
}

/// One reporting interval of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IperfInterval {
    /// Start, in seconds from the start of the run.
    pub start: f64,
    /// End, in seconds.
    pub end: f64,
    /// Bytes sent in the interval.
    pub bytes: u64,
}

/// A client's report.
#[derive(Debug, Clone, PartialEq)]
pub struct IperfReport {
    /// Per-second intervals, as the client sent.
    pub intervals: Vec<IperfInterval>,
    /// Bytes the client sent.
    pub sent_bytes: u64,
    /// Bytes the server received.
    pub received_bytes: u64,
    /// Over how many seconds the server received them.
    pub received_seconds: f64,
    /// UDP: datagrams the server received (sent minus lost).
    pub received_packets: Option<u64>,
    /// UDP: datagrams lost on the way.
    pub lost_packets: Option<u64>,
}

impl IperfReport {
    /// Reads `iperf3 --json` output; an `error` the client reported is the error.
    pub fn parse(json: &str) -> Result<IperfReport, String> {
        let root: Value = serde_json::from_str(json)
            .map_err(|error| format!("its output is not JSON ({error}): {json:.200}"))?;
        if let Some(error) = root.get("error").and_then(Value::as_str) {
            return Err(format!("iperf3 reported: {error}"));
        }
        let number = |value: &Value, path: &str| -> Result<f64, String> {
            path.split('.')
                .try_fold(value, |value, key| value.get(key))
                .and_then(Value::as_f64)
                .ok_or_else(|| format!("its report lacks {path}"))
        };
        let intervals = root
            .get("intervals")
            .and_then(Value::as_array)
            .ok_or("its report lacks intervals")?
            .iter()
            .map(|interval| {
                Ok(IperfInterval {
                    start: number(interval, "sum.start")?,
                    end: number(interval, "sum.end")?,
                    bytes: number(interval, "sum.bytes")? as u64,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let end = root.get("end").ok_or("its report lacks end")?;
        let udp = end.get("sum").is_some();
        let (received_packets, lost_packets) = if udp {
            let packets = number(end, "sum_received.packets")? as u64;
            let lost = number(end, "sum_received.lost_packets")? as u64;
            (Some(packets.saturating_sub(lost)), Some(lost))
        } else {
            (None, None)
        };
        Ok(IperfReport {
            intervals,
            sent_bytes: number(end, "sum_sent.bytes")? as u64,
            received_bytes: number(end, "sum_received.bytes")? as u64,
            received_seconds: number(end, "sum_received.seconds")?,
            received_packets,
            lost_packets,
        })
    }

    /// Received throughput, bits per second.
    pub fn received_bits_per_second(&self) -> f64 {
        if self.received_seconds > 0.0 {
            self.received_bytes as f64 * 8.0 / self.received_seconds
        } else {
            0.0
        }
    }

    /// UDP: datagrams received per second.
    pub fn received_packets_per_second(&self) -> Option<f64> {
        let packets = self.received_packets? as f64;
        (self.received_seconds > 0.0).then(|| packets / self.received_seconds)
    }

    /// Intervals in which nothing at all got through: a stalled transfer.
    pub fn stalls(&self) -> Vec<IperfInterval> {
        self.intervals
            .iter()
            .filter(|interval| interval.bytes == 0)
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = r#"{"intervals":[
        {"sum":{"start":0,"end":1.0,"bytes":1000}},
        {"sum":{"start":1.0,"end":2.0,"bytes":0}}],
      "end":{"sum_sent":{"bytes":1000,"seconds":2.0},
             "sum_received":{"bytes":900,"seconds":2.0}}}"#;

    const UDP: &str = r#"{"intervals":[{"sum":{"start":0,"end":1.0,"bytes":180,"packets":10}}],
      "end":{"sum":{"bytes":180},"sum_sent":{"bytes":180,"seconds":1.0,"packets":10},
             "sum_received":{"bytes":144,"seconds":1.0,"packets":10,"lost_packets":2}}}"#;

    #[test]
    fn a_tcp_report_gives_intervals_totals_and_stalls() {
        let report = IperfReport::parse(TCP).unwrap();
        assert_eq!(report.intervals.len(), 2);
        assert_eq!(report.received_bytes, 900);
        assert_eq!(report.received_bits_per_second(), 3600.0);
        assert_eq!(report.stalls().len(), 1);
        assert_eq!(report.received_packets, None);
    }

    #[test]
    fn a_udp_report_counts_received_datagrams_without_the_lost_ones() {
        let report = IperfReport::parse(UDP).unwrap();
        assert_eq!(report.received_packets, Some(8));
        assert_eq!(report.lost_packets, Some(2));
        assert_eq!(report.received_packets_per_second(), Some(8.0));
    }

    #[test]
    fn errors_and_garbage_are_reported_not_panics() {
        let error = IperfReport::parse(r#"{"error":"unable to connect to server"}"#).unwrap_err();
        assert!(error.contains("unable to connect"), "{error}");
        assert!(IperfReport::parse("not json").is_err());
        assert!(IperfReport::parse(r#"{"intervals":[]}"#)
            .unwrap_err()
            .contains("end"));
    }

    #[test]
    fn udp_runs_ask_for_the_rate_and_datagram_size() {
        let run = IperfRun {
            server: "198.51.100.80:5201".parse().unwrap(),
            seconds: 5,
            load: IperfLoad::Udp {
                bits_per_second: 0,
                length: 18,
            },
        };
        let args = run.args().join(" ");
        assert!(args.contains("--udp --bitrate 0 --length 18"), "{args}");
        assert!(
            args.contains("--time 5") && args.contains("--json"),
            "{args}"
        );
    }
}
