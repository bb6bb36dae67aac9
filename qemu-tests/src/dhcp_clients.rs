//! Real DHCP clients in a test host's namespace — busybox's `udhcpc` and ISC's `dhclient`
//! — configuring the host from the appliance's DHCP server, and what they were told.
//!
//! Both run with a script of ours instead of the distribution's (which would rewrite the
//! machine's `/etc/resolv.conf`): it sets the address and the default route the server
//! gave, and writes every variable the client passed to a file the test reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use smoltcp::wire::Ipv4Address;

use crate::background::Background;
use crate::kernels::KernelVariant;
use crate::leftovers::owned_name;
use crate::test_host::TestHost;
use crate::{Failure, Outcome};

/// The kernel whose client networks are served by DHCP
/// (`qemu-tests/rules/dhcp-clients.rules`: the forwarding topology, `lan1` with MTU 1400).
pub const DHCP_CLIENTS: KernelVariant = KernelVariant {
    name: "dhcp-clients",
    rules: Some("qemu-tests/rules/dhcp-clients.rules"),
    features: &[],
};

/// How long a client may take to get a lease from an emulated appliance on a shared host.
pub const LEASE_TIMEOUT: Duration = Duration::from_secs(30);

/// The script both clients run: `$1` is udhcpc's event, `$reason` dhclient's.
const SCRIPT: &str = r#"#!/bin/sh
event="${1:-$reason}"
case "$event" in
  bound|renew|BOUND|RENEW|REBIND|REBOOT)
    address="${ip:-$new_ip_address}"
    mask="${subnet:-$new_subnet_mask}"
    gateway="${router:-$new_routers}"
    ip addr flush dev "$interface"
    ip addr add "$address/$mask" dev "$interface"
    ip route replace default via "${gateway%% *}" dev "$interface"
    env > "LEASE_FILE.tmp" && mv "LEASE_FILE.tmp" "LEASE_FILE"
    ;;
esac
exit 0
"#;

/// What a client was told, as the variables it passed to its script.
#[derive(Clone, Debug)]
pub struct ClientLease {
    /// Which client (`udhcpc` or `dhclient`).
    pub client: &'static str,
    vars: BTreeMap<String, String>,
}

impl ClientLease {
    /// The variable udhcpc calls `udhcpc` and dhclient `new_<dhclient>`.
    fn value(&self, udhcpc: &str, dhclient: &str) -> Option<&str> {
        let name = match self.client {
            "udhcpc" => udhcpc.to_string(),
            _ => format!("new_{dhclient}"),
        };
        self.vars.get(&name).map(String::as_str)
    }

    fn address_of(&self, udhcpc: &str, dhclient: &str) -> Outcome<Ipv4Address> {
        let text = self.value(udhcpc, dhclient).unwrap_or("");
        let first = text.split_whitespace().next().unwrap_or("");
        first.parse().map_err(|_| {
            Failure::new(format!(
                "{} gave no {udhcpc} address ({text:?}): {:?}",
                self.client, self.vars
            ))
        })
    }

    /// The leased address.
    pub fn address(&self) -> Outcome<Ipv4Address> {
        self.address_of("ip", "ip_address")
    }

    /// The router.
    pub fn router(&self) -> Outcome<Ipv4Address> {
        self.address_of("router", "routers")
    }

    /// The (first) DNS server.
    pub fn dns(&self) -> Outcome<Ipv4Address> {
        self.address_of("dns", "domain_name_servers")
    }

    /// The subnet mask.
    pub fn mask(&self) -> Outcome<Ipv4Address> {
        self.address_of("subnet", "subnet_mask")
    }

    /// The interface MTU option, if the server sent one.
    pub fn mtu(&self) -> Option<u16> {
        self.value("mtu", "interface_mtu")?.parse().ok()
    }

    /// The lease time, seconds.
    pub fn lease_secs(&self) -> Option<u32> {
        self.value("lease", "dhcp_lease_time")?.parse().ok()
    }
}

/// The script and lease files of one client run; removed when dropped.
struct Files {
    script: PathBuf,
    lease: PathBuf,
    extra: Vec<PathBuf>,
}

impl Files {
    fn new(client: &str) -> Outcome<Files> {
        static SERIAL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = std::env::temp_dir().join(owned_name(&format!("moat-{client}-"), serial));
        let script = base.with_extension("sh");
        let lease = base.with_extension("env");
        let _ = std::fs::remove_file(&lease);
        let text = SCRIPT.replace("LEASE_FILE", &lease.display().to_string());
        write_executable(&script, &text)?;
        Ok(Files {
            script,
            lease,
            extra: Vec::new(),
        })
    }

    fn read(&self, client: &'static str) -> Option<ClientLease> {
        let text = std::fs::read_to_string(&self.lease).ok()?;
        let vars = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(ClientLease { client, vars })
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        for path in [&self.script, &self.lease].into_iter().chain(&self.extra) {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn write_executable(path: &Path, text: &str) -> Outcome {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text)
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)))
        .map_err(|error| Failure::new(format!("writing {}: {error}", path.display())))
}

/// Runs `udhcpc` on `host`'s link until it has a lease (asking for the MTU option too), and
/// returns what it was told.
pub fn udhcpc(host: &TestHost) -> Outcome<ClientLease> {
    let files = Files::new("udhcpc")?;
    let script = files.script.display().to_string();
    let retries = LEASE_TIMEOUT.as_secs().to_string();
    let output = host.run(
        "udhcpc",
        &[
            "-f",
            "-q",
            "-n",
            "-i",
            host.tap(),
            "-s",
            &script,
            "-t",
            &retries,
            "-T",
            "1",
            "-O",
            "mtu",
        ],
    )?;
    files.read("udhcpc").ok_or_else(|| {
        Failure::new(format!(
            "udhcpc in {} got no lease ({}): {}{}",
            host.namespace(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    })
}

/// Runs `dhclient` on `host`'s link until it has a lease, then stops it; returns what it
/// was told.
pub fn dhclient(host: &TestHost) -> Outcome<ClientLease> {
    let mut files = Files::new("dhclient")?;
    let config = files.script.with_extension("conf");
    let leases = files.script.with_extension("leases");
    let pid = files.script.with_extension("pid");
    files
        .extra
        .extend([config.clone(), leases.clone(), pid.clone()]);
    std::fs::write(
        &config,
        "request subnet-mask, routers, domain-name-servers, interface-mtu;\n",
    )
    .map_err(|error| Failure::new(format!("writing {}: {error}", config.display())))?;
    let [script, config, leases, pid] =
        [&files.script, &config, &leases, &pid].map(|p| p.display().to_string());
    let child = host.spawn(
        "dhclient",
        &[
            "-d",
            "-v",
            "-1",
            "-sf",
            &script,
            "-cf",
            &config,
            "-lf",
            &leases,
            "-pf",
            &pid,
            host.tap(),
        ],
    )?;
    let mut process = Background::new(format!("dhclient in {}", host.namespace()), child);
    let deadline = Instant::now() + LEASE_TIMEOUT;
    while Instant::now() < deadline && !process.has_exited() {
        if let Some(lease) = files.read("dhclient") {
            return Ok(lease);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(process);
    Err(Failure::new(format!(
        "dhclient in {} got no lease within {} s",
        host.namespace(),
        LEASE_TIMEOUT.as_secs()
    )))
}
