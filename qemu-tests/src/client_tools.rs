//! The programs a user runs on a client, run in a test host's namespace and their results
//! read: `curl` (with its exit code, which tells a refused connection from a timeout) and
//! `dig` (a real resolver, asked over UDP or TCP).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use crate::test_host::TestHost;
use crate::{Failure, Outcome};

/// How `curl` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// The body of a complete response.
    Body(String),
    /// curl exit 7: the connection was refused (a TCP RST).
    Refused,
    /// curl exit 28: the connection or transfer timed out.
    TimedOut,
    /// Any other failure, with curl's exit code and message.
    Failed {
        /// curl's exit code.
        code: Option<i32>,
        /// What curl said.
        message: String,
    },
}

/// What `curl` did and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResult {
    /// How it ended.
    pub outcome: Fetch,
    /// How long curl ran.
    pub elapsed: Duration,
}

/// `curl` `url` from `host`, giving up connecting after `connect_timeout` and the whole
/// transfer after `max_time`.
pub fn curl(
    host: &TestHost,
    url: &str,
    connect_timeout: Duration,
    max_time: Duration,
) -> Outcome<FetchResult> {
    let connect = format!("{:.1}", connect_timeout.as_secs_f64());
    let max = format!("{:.1}", max_time.as_secs_f64());
    let started = Instant::now();
    let output = host.run(
        "curl",
        &[
            "--silent",
            "--show-error",
            "--fail",
            "--connect-timeout",
            &connect,
            "--max-time",
            &max,
            url,
        ],
    )?;
    let elapsed = started.elapsed();
    let outcome = match output.status.code() {
        Some(0) => Fetch::Body(String::from_utf8_lossy(&output.stdout).into_owned()),
        Some(7) => Fetch::Refused,
        Some(28) => Fetch::TimedOut,
        code => Fetch::Failed {
            code,
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        },
    };
    Ok(FetchResult { outcome, elapsed })
}

/// Over which transport `dig` asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigTransport {
    /// UDP (dig's default).
    Udp,
    /// TCP (`+tcp`).
    Tcp,
}

/// What `dig` got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigAnswer {
    /// The response code (`NOERROR`, `NXDOMAIN`, ...).
    pub status: String,
    /// The addresses of the answer section's A records.
    pub addresses: Vec<Ipv4Addr>,
    /// The server that answered, as dig reports it (`10.137.1.1#53(...)`).
    pub server: String,
}

/// Asks `resolver` for `name`'s A records with `dig`, from `host`.
pub fn dig(
    host: &TestHost,
    resolver: Ipv4Addr,
    name: &str,
    transport: DigTransport,
) -> Outcome<DigAnswer> {
    dig_at(host, resolver.into(), name, transport)
}

/// [`dig`] of a resolver of either family: dig asks over `resolver`'s (IPv6 for an IPv6
/// address).
pub fn dig_at(
    host: &TestHost,
    resolver: IpAddr,
    name: &str,
    transport: DigTransport,
) -> Outcome<DigAnswer> {
    let at = format!("@{resolver}");
    let mut args = vec![
        at.as_str(),
        name,
        "A",
        "+time=5",
        "+tries=3",
        "+noall",
        "+comments",
        "+answer",
        "+stats",
    ];
    if transport == DigTransport::Tcp {
        args.push("+tcp");
    }
    let output = host.run("dig", &args)?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(Failure::new(format!(
            "dig {} failed ({}): {}{}",
            args.join(" "),
            output.status,
            text.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    parse_dig(&text).ok_or_else(|| Failure::new(format!("dig printed no answer header:\n{text}")))
}

/// Reads dig's `status:` comment, its A records and its `SERVER:` line.
pub fn parse_dig(text: &str) -> Option<DigAnswer> {
    let status = text
        .lines()
        .find_map(|line| line.split("status: ").nth(1))?
        .split(',')
        .next()?
        .trim()
        .to_string();
    let addresses = text
        .lines()
        .filter(|line| !line.starts_with(';'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [_, _, "IN", "A", address] => address.parse().ok(),
                _ => None,
            }
        })
        .collect();
    let server = text
        .lines()
        .find_map(|line| line.strip_prefix(";; SERVER: "))
        .unwrap_or_default()
        .to_string();
    Some(DigAnswer {
        status,
        addresses,
        server,
    })
}

/// Round-trip times `ping` reported, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoundTrip {
    /// Fastest.
    pub min: f64,
    /// Mean.
    pub avg: f64,
    /// Slowest.
    pub max: f64,
}

/// Reads ping's `rtt min/avg/max/mdev = a/b/c/d ms` line.
pub fn parse_round_trip(output: &str) -> Option<RoundTrip> {
    let figures = output
        .lines()
        .find_map(|line| line.strip_prefix("rtt min/avg/max/mdev = "))?;
    let mut numbers = figures
        .trim_end_matches(" ms")
        .split('/')
        .map(|number| number.parse::<f64>().ok());
    Some(RoundTrip {
        min: numbers.next()??,
        avg: numbers.next()??,
        max: numbers.next()??,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_round_trip_line_is_read() {
        let output = "--- 198.51.100.80 ping statistics ---\n\
                      20 packets transmitted, 20 received, 0% packet loss, time 3805ms\n\
                      rtt min/avg/max/mdev = 0.412/0.981/2.310/0.402 ms\n";
        assert_eq!(
            parse_round_trip(output),
            Some(RoundTrip {
                min: 0.412,
                avg: 0.981,
                max: 2.310
            })
        );
        assert_eq!(parse_round_trip("100% packet loss"), None);
    }

    #[test]
    fn digs_status_answers_and_server_are_read() {
        let text = ";; Got answer:\n;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 4242\n\
                    ;; flags: qr aa rd ra; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 0\n\n\
                    www.moat.test.\t\t60\tIN\tA\t198.51.100.80\n\n\
                    ;; Query time: 3 msec\n;; SERVER: 10.137.1.1#53(10.137.1.1) (UDP)\n";
        let answer = parse_dig(text).unwrap();
        assert_eq!(answer.status, "NOERROR");
        assert_eq!(answer.addresses, [Ipv4Addr::new(198, 51, 100, 80)]);
        assert_eq!(answer.server, "10.137.1.1#53(10.137.1.1) (UDP)");
        let nxdomain =
            parse_dig(";; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 1\n").unwrap();
        assert_eq!(nxdomain.status, "NXDOMAIN");
        assert!(nxdomain.addresses.is_empty());
        assert_eq!(
            parse_dig("connection timed out; no servers could be reached"),
            None
        );
    }
}
