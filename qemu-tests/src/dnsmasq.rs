//! A real DHCP server for the appliance's uplink: `dnsmasq` (DHCP only, its DNS server off)
//! in a test host's namespace, serving the host's link device, authoritative (it NAKs a
//! request for an address outside its range, as a restarted upstream with another range
//! does), with leases of [`MIN_LEASE`]. Stopped when dropped.
//!
//! Its duplicate-address ping is off (`--no-ping`): with it, dnsmasq holds its first OFFER
//! for an address up to 3 s while it waits for an echo reply, whatever the client does,
//! and the tests measure the client.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

use crate::daemon::Daemon;
use crate::leftovers::owned_name;
use crate::test_host::TestHost;
use crate::Outcome;

/// The shortest lease dnsmasq hands out.
pub const MIN_LEASE: Duration = Duration::from_secs(120);

/// What a server leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhcpPlan {
    /// The server host's own address on the link (also the router it names).
    pub server: Ipv4Cidr,
    /// The first and last address it leases (in `server`'s network).
    pub range: (Ipv4Address, Ipv4Address),
    /// The DNS server it names.
    pub dns: Ipv4Address,
}

/// A running dnsmasq.
pub struct Dnsmasq {
    process: Option<Daemon>,
    lease_file: PathBuf,
    started: Instant,
}

impl Dnsmasq {
    /// Starts dnsmasq in `host`'s namespace on its link device, leasing as `plan` says. The
    /// device must have `plan.server` already.
    pub fn start(host: &TestHost, plan: &DhcpPlan) -> Outcome<Dnsmasq> {
        static SERIAL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let lease_file = std::env::temp_dir().join(owned_name("moat-dnsmasq-", serial));
        let _ = std::fs::remove_file(&lease_file);
        let (first, last) = plan.range;
        let args = [
            "--keep-in-foreground".to_string(),
            "--conf-file=/dev/null".into(),
            "--log-facility=-".into(),
            "--log-dhcp".into(),
            "--port=0".into(),
            "--user=root".into(),
            "--pid-file=".into(),
            format!("--interface={}", host.tap()),
            "--bind-interfaces".into(),
            "--dhcp-authoritative".into(),
            "--no-ping".into(),
            format!(
                "--dhcp-range={first},{last},{},{}",
                plan.server.netmask(),
                MIN_LEASE.as_secs()
            ),
            format!("--dhcp-option=option:router,{}", plan.server.address()),
            format!("--dhcp-option=option:dns-server,{}", plan.dns),
            format!("--dhcp-leasefile={}", lease_file.display()),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = Instant::now();
        let process = Daemon::start(host, "dnsmasq", &args)?;
        Ok(Dnsmasq {
            process: Some(process),
            lease_file,
            started,
        })
    }

    /// When the server was started (just before its process was spawned).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Stops the server (SIGTERM); returns its log.
    pub fn stop(mut self) -> Outcome<String> {
        match self.process.take() {
            Some(process) => process.stop(),
            None => Ok(String::new()),
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        // A daemon still running when dropped is killed.
        self.process.take();
        let _ = std::fs::remove_file(&self.lease_file);
    }
}
