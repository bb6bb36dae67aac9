//! A real IPv6 router for the appliance's uplink: `radvd` in a test host's namespace,
//! advertising a /64 prefix for SLAAC, itself as default router and, in an RDNSS option, the
//! DNS servers a [`RaPlan`] names; plus the IPv6 side of a [`TestHost`] (addresses, SLAAC
//! as Linux does it, the default router, `ping -6`). Stopped when dropped.
//!
//! radvd only advertises a default router when IPv6 forwarding is on in its namespace,
//! which [`Radvd::start`] turns on (in that namespace only). It answers router
//! solicitations at once and otherwise advertises every [`RaPlan::interval`].

use std::path::PathBuf;
use std::time::{Duration, Instant};

use smoltcp::wire::{Ipv6Address, Ipv6Cidr};

use crate::daemon::Daemon;
use crate::leftovers::owned_name;
use crate::test_host::TestHost;
use crate::{Failure, Outcome};

/// What a router advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaPlan {
    /// The on-link /64 prefix clients form addresses in (on-link, autonomous).
    pub prefix: Ipv6Cidr,
    /// Router lifetime (0: not a default router).
    pub router_lifetime: Duration,
    /// The DNS servers of the RDNSS option (none: no option).
    pub dns: Vec<Ipv6Address>,
    /// The link MTU option, if any.
    pub mtu: Option<u16>,
    /// The shortest and longest time between unsolicited advertisements (radvd's minimum
    /// is 3 s).
    pub interval: (Duration, Duration),
}

impl RaPlan {
    /// A default router for `prefix` naming `dns` as resolvers, advertising every 3–10 s.
    pub fn router(prefix: Ipv6Cidr, dns: &[Ipv6Address]) -> RaPlan {
        RaPlan {
            prefix,
            router_lifetime: Duration::from_secs(1800),
            dns: dns.to_vec(),
            mtu: None,
            interval: (Duration::from_secs(3), Duration::from_secs(10)),
        }
    }

    /// radvd's configuration for interface `device`.
    pub fn config(&self, device: &str) -> String {
        let mut text = format!(
            "interface {device} {{\n  AdvSendAdvert on;\n  MinRtrAdvInterval {};\n  MaxRtrAdvInterval {};\n  AdvDefaultLifetime {};\n",
            self.interval.0.as_secs(),
            self.interval.1.as_secs(),
            self.router_lifetime.as_secs(),
        );
        if let Some(mtu) = self.mtu {
            text.push_str(&format!("  AdvLinkMTU {mtu};\n"));
        }
        text.push_str(&format!(
            "  prefix {} {{ AdvOnLink on; AdvAutonomous on; AdvValidLifetime 86400; AdvPreferredLifetime 14400; }};\n",
            self.prefix
        ));
        if !self.dns.is_empty() {
            let servers: Vec<String> = self.dns.iter().map(ToString::to_string).collect();
            text.push_str(&format!(
                "  RDNSS {} {{ AdvRDNSSLifetime {}; }};\n",
                servers.join(" "),
                self.interval.1.as_secs() * 2
            ));
        }
        text.push_str("};\n");
        text
    }
}

/// A running radvd.
pub struct Radvd {
    process: Option<Daemon>,
    config: PathBuf,
    pid_file: PathBuf,
    started: Instant,
}

impl Radvd {
    /// Starts radvd in `host`'s namespace on its link device, advertising as `plan` says.
    /// The device must be up (it then has its link-local address, the advertisements'
    /// source).
    pub fn start(host: &TestHost, plan: &RaPlan) -> Outcome<Radvd> {
        static SERIAL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = std::env::temp_dir().join(owned_name("moat-radvd-", serial));
        let config = base.with_extension("conf");
        let pid_file = base.with_extension("pid");
        std::fs::write(&config, plan.config(host.tap()))
            .map_err(|e| Failure::new(format!("writing {}: {e}", config.display())))?;
        host.run_checked("sysctl", &["-qw", "net.ipv6.conf.all.forwarding=1"])?;
        let config_text = config.display().to_string();
        let pid_text = pid_file.display().to_string();
        let args = [
            "--nodaemon",
            "--config",
            &config_text,
            "--pidfile",
            &pid_text,
            "--logmethod",
            "stderr",
        ];
        let started = Instant::now();
        let process = Daemon::start(host, "radvd", &args)?;
        Ok(Radvd {
            process: Some(process),
            config,
            pid_file,
            started,
        })
    }

    /// When the router was started (just before its process was spawned).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Stops the router (SIGTERM: radvd then sends final advertisements with a router
    /// lifetime of 0, withdrawing itself); returns its log.
    pub fn stop(mut self) -> Outcome<String> {
        match self.process.take() {
            Some(process) => process.stop(),
            None => Ok(String::new()),
        }
    }
}

impl Drop for Radvd {
    fn drop(&mut self) {
        // A daemon still running when dropped is killed.
        self.process.take();
        let _ = std::fs::remove_file(&self.config);
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// The IPv6 side of a test host.
impl TestHost {
    /// Adds `address` to the link device, usable at once (no DAD wait).
    pub fn add_ipv6(&self, address: Ipv6Cidr) -> Outcome {
        let text = address.to_string();
        let device = self.tap().to_string();
        self.run_checked("ip", &["-6", "addr", "add", &text, "dev", &device, "nodad"])
            .map(|_| ())
    }

    /// The global IPv6 addresses of the link device, as `ip -6 addr` lists them.
    pub fn ipv6_addresses(&self) -> Outcome<Vec<Ipv6Cidr>> {
        let device = self.tap().to_string();
        let output = self.run_checked(
            "ip",
            &[
                "-6", "-o", "addr", "show", "dev", &device, "scope", "global",
            ],
        )?;
        Ok(parse_ipv6_addresses(&String::from_utf8_lossy(
            &output.stdout,
        )))
    }

    /// Waits up to `timeout` for an address in `prefix` (SLAAC, DAD passed: no longer
    /// `tentative`); returns it.
    pub fn slaac_address(&self, prefix: Ipv6Cidr, timeout: Duration) -> Outcome<Ipv6Address> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .ipv6_addresses()?
                .into_iter()
                .find(|cidr| prefix.contains_addr(&cidr.address()));
            if let Some(cidr) = found {
                return Ok(cidr.address());
            }
            if Instant::now() >= deadline {
                return Err(Failure::new(format!(
                    "{} got no SLAAC address in {prefix} within {timeout:?}",
                    self.namespace()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The IPv6 default router Linux took from advertisements, if any.
    pub fn default_router6(&self) -> Outcome<Option<Ipv6Address>> {
        let output = self.run_checked("ip", &["-6", "route", "show", "default"])?;
        Ok(parse_default_router(&String::from_utf8_lossy(
            &output.stdout,
        )))
    }

    /// `ping -6 -c count` to `target`, with a deadline (late replies still count).
    pub fn ping6(&self, target: Ipv6Address, count: u32) -> Outcome<crate::test_host::PingSummary> {
        let (count_text, target_text) = (count.to_string(), target.to_string());
        let deadline = (count * 2 + 5).to_string();
        let output = self.run(
            "ping",
            &[
                "-6",
                "-n",
                "-c",
                &count_text,
                "-i",
                "0.2",
                "-w",
                &deadline,
                &target_text,
            ],
        )?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        crate::test_host::parse_ping_summary(&text)
            .map(|(transmitted, received)| crate::test_host::PingSummary {
                transmitted,
                received,
                output: text.clone(),
            })
            .ok_or_else(|| Failure::new(format!("ping -6 printed no summary:\n{text}")))
    }
}

/// The addresses in `ip -6 -o addr show` output that DAD has passed (not `tentative`).
pub fn parse_ipv6_addresses(output: &str) -> Vec<Ipv6Cidr> {
    output
        .lines()
        .filter(|line| !line.contains("tentative") && !line.contains("dadfailed"))
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet6")?;
            let (address, prefix) = words.next()?.split_once('/')?;
            Some(Ipv6Cidr::new(address.parse().ok()?, prefix.parse().ok()?))
        })
        .collect()
}

/// The router of `ip -6 route show default` output (`default via fe80::1 dev ...`).
pub fn parse_default_router(output: &str) -> Option<Ipv6Address> {
    let mut words = output.split_whitespace();
    words.find(|w| *w == "via")?;
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radvd_config_names_the_prefix_router_and_resolvers() {
        let plan = RaPlan {
            mtu: Some(1400),
            ..RaPlan::router(
                Ipv6Cidr::new("2001:db8:1:2::".parse().unwrap(), 64),
                &["2001:db8::53".parse().unwrap()],
            )
        };
        let config = plan.config("mt1-0");
        assert!(config.starts_with("interface mt1-0 {\n  AdvSendAdvert on;\n"));
        assert!(config.contains("AdvDefaultLifetime 1800;"));
        assert!(config.contains("AdvLinkMTU 1400;"));
        assert!(config.contains("prefix 2001:db8:1:2::/64 { AdvOnLink on; AdvAutonomous on;"));
        assert!(config.contains("RDNSS 2001:db8::53 { AdvRDNSSLifetime 20; };"));
    }

    #[test]
    fn addresses_and_default_router_are_read_from_ip() {
        let addresses = "\
2: mt1-0    inet6 2001:db8:1:2:ccc:93ff:fee4:7104/64 scope global dynamic mngtmpaddr \\       valid_lft 86400sec preferred_lft 14400sec
2: mt1-0    inet6 fd00::5/64 scope global tentative \\       valid_lft forever preferred_lft forever
";
        assert_eq!(
            parse_ipv6_addresses(addresses),
            [Ipv6Cidr::new(
                "2001:db8:1:2:ccc:93ff:fee4:7104".parse().unwrap(),
                64
            )]
        );
        assert_eq!(
            parse_default_router("default via fe80::ff:fe00:1 dev mt1-0 proto ra metric 1024 expires 1798sec hoplimit 64 pref medium\n"),
            Some("fe80::ff:fe00:1".parse().unwrap())
        );
        assert_eq!(parse_default_router(""), None);
    }
}
