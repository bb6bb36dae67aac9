//! A real Linux host for the appliance to talk to: a network namespace holding the tap device
//! one of the appliance's NICs is wired to, so the host kernel's own stack (`ping`, `curl`,
//! `iperf3`) talks through the appliance. Root only.
//!
//! Life cycle: [`TestHost::create`] makes a persistent tap in the root namespace and an empty
//! namespace; QEMU opens the tap by name; [`TestHost::attach`] then moves the tap into the
//! namespace and addresses it. Alternatively ([`TestHost::create_with_open_tap`]) the tap is
//! made inside the namespace and handed to QEMU open, addressed before QEMU starts.
//! Dropping the host deletes both. Names carry the test process's
//! pid, and hosts left behind by a process that no longer exists (killed before its drops ran)
//! are removed the first time a host is created.

use std::os::fd::OwnedFd;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

use crate::leftovers::{owned_name, owner_is_dead};
use crate::tap_fd::open_tap_in;
use crate::{Failure, Outcome};

const NAMESPACE_PREFIX: &str = "moat-";
const TAP_PREFIX: &str = "mt";

/// A network namespace with a tap device (or, for a direct baseline link, one end of a veth
/// pair: see [`TestHost::veth_pair`]).
pub struct TestHost {
    namespace: String,
    /// The link device: a tap, or a veth end.
    tap: String,
}

/// What `ping` reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingSummary {
    /// Echo requests sent.
    pub transmitted: u32,
    /// Echo replies received.
    pub received: u32,
    /// ping's full output, for failure messages.
    pub output: String,
}

impl TestHost {
    /// Creates the namespace and the tap device (still in the root namespace, for QEMU).
    pub fn create() -> Outcome<TestHost> {
        let host = TestHost::with_namespace()?;
        ip(&["tuntap", "add", "dev", &host.tap, "mode", "tap"])?;
        Ok(host)
    }

    /// Two hosts joined directly by a veth pair, no appliance between them: the baseline
    /// that benchmarks compare the appliance's path with. Both ends stay in the root
    /// namespace until [`TestHost::attach`] moves each into its host's namespace.
    pub fn veth_pair() -> Outcome<(TestHost, TestHost)> {
        let (one, other) = (TestHost::with_namespace()?, TestHost::with_namespace()?);
        ip(&[
            "link", "add", &one.tap, "type", "veth", "peer", "name", &other.tap,
        ])?;
        Ok((one, other))
    }

    /// A new namespace, and the name its link device will have.
    fn with_namespace() -> Outcome<TestHost> {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(remove_hosts_of_dead_processes);
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let serial = NEXT.fetch_add(1, Ordering::Relaxed);
        let host = TestHost {
            namespace: owned_name(NAMESPACE_PREFIX, serial),
            tap: owned_name(TAP_PREFIX, serial),
        };
        ip(&["netns", "add", &host.namespace])?;
        Ok(host)
    }

    /// The tap device's name, for QEMU's `-netdev tap,ifname=`.
    pub fn tap(&self) -> &str {
        &self.tap
    }

    /// Moves the tap (or veth end) into the namespace, gives it `address` and brings it and
    /// loopback up.
    /// QEMU must have opened the tap already (it has once the guest prints anything): moved
    /// earlier, QEMU would not find it and would create a new tap of the same name.
    pub fn attach(&self, address: Ipv4Cidr) -> Outcome {
        ip(&["link", "set", &self.tap, "netns", &self.namespace])?;
        self.address_in_place(address)
    }

    /// Moves the tap (or veth end) into the namespace and brings it and loopback up, with
    /// no address (for a DHCP client to configure). The same ordering rule as
    /// [`TestHost::attach`] holds.
    pub fn attach_unaddressed(&self) -> Outcome {
        ip(&["link", "set", &self.tap, "netns", &self.namespace])?;
        self.bring_up()
    }

    /// Creates the namespace and, inside it, a tap device held open by the returned
    /// descriptor, for QEMU to inherit ([`crate::tap_fd`]): the host's side can be
    /// addressed ([`TestHost::address_in_place`]) before QEMU starts. The tap lives while a
    /// descriptor of it is open (this one, then QEMU's).
    pub fn create_with_open_tap() -> Outcome<(TestHost, OwnedFd)> {
        let host = TestHost::with_namespace()?;
        let fd = open_tap_in(&host.namespace, &host.tap)?;
        Ok((host, fd))
    }

    /// Brings the tap (in the namespace: created there by
    /// [`TestHost::create_with_open_tap`], or moved) and loopback up, with `address`.
    pub fn address_in_place(&self, address: Ipv4Cidr) -> Outcome {
        self.bring_up()?;
        ip(&[
            "-n",
            &self.namespace,
            "addr",
            "add",
            &address.to_string(),
            "dev",
            &self.tap,
        ])
    }

    /// Brings the link device (in the namespace) and loopback up.
    fn bring_up(&self) -> Outcome {
        ip(&["-n", &self.namespace, "link", "set", &self.tap, "up"])?;
        ip(&["-n", &self.namespace, "link", "set", "lo", "up"])
    }

    /// The network namespace's name.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Runs a program inside the namespace.
    pub fn run(&self, program: &str, args: &[&str]) -> Outcome<Output> {
        self.command(program, args).output().map_err(|error| {
            Failure::new(format!("running {program} in {}: {error}", self.namespace))
        })
    }

    /// Runs a program inside the namespace and fails unless it exits successfully.
    pub fn run_checked(&self, program: &str, args: &[&str]) -> Outcome<Output> {
        let output = self.run(program, args)?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(Failure::new(format!(
                "`{program} {}` in {} failed ({}): {}",
                args.join(" "),
                self.namespace,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }

    /// Starts a program inside the namespace in the background, its stdout and stderr piped.
    /// The caller owns the child and must end it (`ip netns exec` execs the program, so the
    /// child's pid is the program's).
    pub fn spawn(&self, program: &str, args: &[&str]) -> Outcome<Child> {
        self.command(program, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| {
                Failure::new(format!("starting {program} in {}: {error}", self.namespace))
            })
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.namespace, program])
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// `ping -c count` to `target` from inside the namespace.
    pub fn ping(&self, target: Ipv4Address, count: u32) -> Outcome<PingSummary> {
        let count_text = count.to_string();
        let output = self.run(
            "ping",
            &[
                "-n",
                "-c",
                &count_text,
                "-i",
                "0.2",
                "-W",
                "5",
                &target.to_string(),
            ],
        )?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        parse_ping_summary(&text)
            .map(|(transmitted, received)| PingSummary {
                transmitted,
                received,
                output: text.clone(),
            })
            .ok_or_else(|| Failure::new(format!("ping printed no summary:\n{text}")))
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.namespace]);
        let _ = ip(&["link", "del", &self.tap]);
    }
}

/// Parses `N packets transmitted, M received` from ping's output.
pub fn parse_ping_summary(output: &str) -> Option<(u32, u32)> {
    let line = output
        .lines()
        .find(|line| line.contains("packets transmitted"))?;
    let mut numbers = line.split(',').map(|part| {
        part.split_whitespace()
            .next()
            .and_then(|word| word.parse().ok())
    });
    Some((numbers.next()??, numbers.next()??))
}

fn ip(args: &[&str]) -> Outcome {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| Failure::new(format!("running `ip` (install iproute2): {error}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

fn remove_hosts_of_dead_processes() {
    let listing = |args: &[&str]| {
        Command::new("ip")
            .args(args)
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default()
    };
    for line in listing(&["netns", "list"]).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        if owner_is_dead(name, NAMESPACE_PREFIX) {
            let _ = ip(&["netns", "del", name]);
        }
    }
    for line in listing(&["-o", "link", "show"]).lines() {
        // "12: mt1234-0: <BROADCAST,..." (or "mt1234-0@if3:")
        let name = line
            .split(':')
            .nth(1)
            .unwrap_or_default()
            .trim()
            .split('@')
            .next()
            .unwrap_or_default();
        if owner_is_dead(name, TAP_PREFIX) {
            let _ = ip(&["link", "del", name]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_summaries_are_parsed() {
        let output = "PING 10.137.1.1 (10.137.1.1) 56(84) bytes of data.\n\n--- 10.137.1.1 ping statistics ---\n\
                      3 packets transmitted, 2 received, 33.3333% packet loss, time 402ms\n";
        assert_eq!(parse_ping_summary(output), Some((3, 2)));
        assert_eq!(
            parse_ping_summary("ping: connect: Network is unreachable"),
            None
        );
    }
}
