//! Before a firewall's figures count, real clients check that it enforces the ruleset: what
//! the forwarding ruleset passes, rejects, blocks, redirects and forwards, seen from the
//! client and uplink namespaces. A comparison against a firewall that enforces a weaker
//! policy would be worthless, so any difference fails the benchmark.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::time::Duration;

use crate::addressing::{appliance_address, host_address, INTERNET_SERVER};
use crate::client_tools::{dig, DigTransport};
use crate::compare::bed::Bed;
use crate::forwarding_ruleset::{
    ALPHA_FORWARD_PORT, ALPHA_NIC, BETA_NIC, BLOCKED_PORT, REJECTED_PORT, UPLINK_NIC, WEB_PORT,
};
use crate::netns::in_namespace;
use crate::test_host::TestHost;
use crate::uplink_services::WEB_SERVER_NAME;
use crate::{Failure, Outcome};

/// How long a connection attempt may take before it counts as unanswered.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// What a host saw when it tried something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The TCP connection was accepted.
    Open,
    /// It was refused (a reset: from the firewall's `reject`, or from a host without a
    /// server, which means the firewall let it through).
    Refused,
    /// Nothing came back.
    Silent,
    /// Ping answered / DNS answered with the expected address.
    Answered,
}

/// One check: what is tried, and what the ruleset says must be seen.
struct Check {
    what: &'static str,
    expected: Seen,
}

const CHECKS: [Check; 9] = [
    Check {
        what: "client to the internet web server (pass, NAT)",
        expected: Seen::Open,
    },
    Check {
        what: "client to the internet, port 81 (reject)",
        expected: Seen::Refused,
    },
    Check {
        what: "client to the internet, port 82 (block)",
        expected: Seen::Silent,
    },
    Check {
        what: "client to the other client's port 80 (no client-to-client)",
        expected: Seen::Silent,
    },
    Check {
        what: "client pings the firewall (pass to self)",
        expected: Seen::Answered,
    },
    Check {
        what: "client pings the other client (blocked)",
        expected: Seen::Silent,
    },
    Check {
        what: "client asks the firewall for DNS (redirected upstream)",
        expected: Seen::Answered,
    },
    Check {
        what: "uplink to the firewall's port 22 (nothing inbound)",
        expected: Seen::Silent,
    },
    Check {
        what: "uplink to the forwarded port 8080 (reaches the client: refused there)",
        expected: Seen::Refused,
    },
];

/// Runs every check against the firewall in `bed`; fails naming each check whose result is
/// not what the ruleset says. Returns the number of checks.
pub fn check_policy(bed: &Bed) -> Outcome<usize> {
    let alpha = bed.client(ALPHA_NIC)?;
    let beta_address = host_address(BETA_NIC);
    let firewall_on_alpha = appliance_address(ALPHA_NIC).address();
    let firewall_on_uplink = appliance_address(UPLINK_NIC).address();
    let seen = [
        connect(alpha, INTERNET_SERVER, WEB_PORT)?,
        connect(alpha, INTERNET_SERVER, REJECTED_PORT)?,
        connect(alpha, INTERNET_SERVER, BLOCKED_PORT)?,
        connect(alpha, beta_address, WEB_PORT)?,
        ping(alpha, firewall_on_alpha)?,
        ping(alpha, beta_address)?,
        match dig(alpha, firewall_on_alpha, WEB_SERVER_NAME, DigTransport::Udp) {
            Ok(answer) if answer.addresses.contains(&INTERNET_SERVER) => Seen::Answered,
            _ => Seen::Silent,
        },
        connect(&bed.uplink, firewall_on_uplink, 22)?,
        connect(&bed.uplink, firewall_on_uplink, ALPHA_FORWARD_PORT)?,
    ];
    let wrong: Vec<String> = CHECKS
        .iter()
        .zip(seen)
        .filter(|(check, seen)| check.expected != *seen)
        .map(|(check, seen)| {
            format!(
                "{}: expected {:?}, saw {seen:?}",
                check.what, check.expected
            )
        })
        .collect();
    if wrong.is_empty() {
        Ok(CHECKS.len())
    } else {
        Err(Failure::new(format!(
            "the firewall does not enforce the ruleset:\n  {}",
            wrong.join("\n  ")
        )))
    }
}

fn connect(host: &TestHost, address: Ipv4Addr, port: u16) -> Outcome<Seen> {
    let target = SocketAddr::V4(SocketAddrV4::new(address, port));
    in_namespace(host.namespace(), || {
        Ok(match TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) {
            Ok(_) => Seen::Open,
            Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => Seen::Refused,
            Err(_) => Seen::Silent,
        })
    })
}

fn ping(host: &TestHost, address: Ipv4Addr) -> Outcome<Seen> {
    let summary = host.ping(address, 3)?;
    Ok(if summary.received > 0 {
        Seen::Answered
    } else {
        Seen::Silent
    })
}
