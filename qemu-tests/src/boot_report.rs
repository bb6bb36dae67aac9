//! The console lines the kernel promises, and the boot report parsed from them.
//!
//! ```text
//! moat <version>: ruleset <file name> sha256:<hex>                    banner, first moat line
//! moat: nic<i> <mac> <transport> <location> <interrupt> ipv4 <a.b.c.d/len|dhcp|none> offloads <o>
//!                                       one per NIC; <interrupt>: msi-x | intx gsi N | gsi N;
//!                                       <o>: tx=csum,tso4,tso6,ecn,ufo rx=csum,tso4,tso6,ecn,ufo | none
//! moat: entropy rdseed | rdrand | tsc-jitter only                  where the keys came from
//! moat: watchdog i6300esb <pci address> timeout <n> s | ... off (...) | none
//! moat: ready                                                        once, all NICs up
//! moat: shutdown                                                     after ACPI power button
//! moat: FATAL ...                                                    exception or panic report
//! moat: halted (fail closed)                                         after the report
//! ```

use image::qemu::MacAddress;
use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

use crate::{Failure, Outcome};

/// Printed exactly once, when every NIC is up.
pub const READY_LINE: &str = "moat: ready";
/// Printed when the ACPI power button was pressed, before powering off.
pub const SHUTDOWN_LINE: &str = "moat: shutdown";
/// Starts every line of a fatal-error report.
pub const FATAL_PREFIX: &str = "moat: FATAL";
/// Ends a fatal-error report: the appliance has stopped.
pub const HALTED_LINE: &str = "moat: halted (fail closed)";

/// The banner: which kernel, built with which ruleset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banner {
    /// Kernel version.
    pub version: String,
    /// File name of the ruleset compiled in.
    pub ruleset: String,
    /// sha256 of the ruleset, lowercase hex.
    pub ruleset_sha256: String,
}

/// How a NIC got its IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicIpv4 {
    /// A configured address.
    Static(Ipv4Cidr),
    /// From DHCP.
    Dhcp,
    /// None.
    Unnumbered,
}

/// One NIC as the kernel reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicReport {
    /// `i` of `nic<i>`.
    pub index: usize,
    /// Its MAC address.
    pub mac: MacAddress,
    /// `virtio-pci` or `virtio-mmio`.
    pub transport: String,
    /// Where the device sits (PCI address, MMIO base).
    pub location: String,
    /// How it interrupts: `msi-x`, `intx gsi N` (PCI INTx), `gsi N` (virtio-mmio line) or
    /// `polled`.
    pub interrupt: String,
    /// Its IPv4 configuration.
    pub ipv4: NicIpv4,
    /// The offloads negotiated with its device, as printed (`tx=csum,tso4 rx=csum`,
    /// `none`).
    pub offloads: String,
}

impl NicReport {
    /// Whether the device takes `offload` (`csum`, `tso4`, `tso6`, `ecn`, `ufo`) in `direction`
    /// (`tx` or `rx`).
    pub fn offloads(&self, direction: &str, offload: &str) -> bool {
        self.offloads.split_whitespace().any(|word| {
            word.strip_prefix(direction)
                .and_then(|rest| rest.strip_prefix('='))
                .is_some_and(|list| list.split(',').any(|o| o == offload))
        })
    }
}

/// What the kernel said about the hardware watchdog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchdogReport {
    /// Running: where the device is, and the timeout in seconds.
    Running {
        /// PCI address.
        location: String,
        /// Seconds without a pet before the hypervisor acts.
        timeout_seconds: u32,
    },
    /// Present but left stopped (`moat.watchdog=off`).
    Off,
    /// No watchdog device.
    Absent,
}

/// Banner, NICs and watchdog of one boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootReport {
    /// The banner.
    pub banner: Banner,
    /// NIC lines, in console order.
    pub nics: Vec<NicReport>,
    /// The watchdog line, if the kernel printed one before `moat: ready`.
    pub watchdog: Option<WatchdogReport>,
}

impl BootReport {
    /// Parses the console up to `moat: ready`. Fails if the banner is missing or malformed,
    /// or if it is not the first line the kernel printed.
    pub fn parse(lines: &[String]) -> Outcome<BootReport> {
        let kernel_lines: Vec<&String> = lines
            .iter()
            .filter(|line| line.starts_with("moat ") || line.starts_with("moat:"))
            .collect();
        let first = kernel_lines
            .first()
            .ok_or_else(|| Failure::new("the kernel printed nothing on the console"))?;
        let banner = parse_banner(first).ok_or_else(|| {
            Failure::new(format!(
                "the kernel's first console line is not the banner `moat <version>: ruleset <name> sha256:<hex>`: {first:?}"
            ))
        })?;
        let mut nics = Vec::new();
        let mut watchdog = None;
        for line in kernel_lines
            .iter()
            .take_while(|line| line.as_str() != READY_LINE)
        {
            if let Some(rest) = line.strip_prefix("moat: nic") {
                nics.push(
                    parse_nic(rest)
                        .ok_or_else(|| Failure::new(format!("malformed NIC line: {line:?}")))?,
                );
            } else if let Some(rest) = line.strip_prefix("moat: watchdog ") {
                watchdog =
                    Some(parse_watchdog(rest).ok_or_else(|| {
                        Failure::new(format!("malformed watchdog line: {line:?}"))
                    })?);
            }
        }
        Ok(BootReport {
            banner,
            nics,
            watchdog,
        })
    }
}

fn parse_banner(line: &str) -> Option<Banner> {
    let rest = line.strip_prefix("moat ")?;
    let (version, rest) = rest.split_once(": ruleset ")?;
    let (ruleset, hash) = rest.rsplit_once(" sha256:")?;
    let is_hex = hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (!version.is_empty() && !version.contains(' ') && !ruleset.is_empty() && is_hex).then(|| {
        Banner {
            version: version.to_string(),
            ruleset: ruleset.to_string(),
            ruleset_sha256: hash.to_string(),
        }
    })
}

/// Parses `<i> <mac> <transport> <location> <interrupt...> ipv4 <config> offloads
/// <offloads...>` (after `moat: nic`).
fn parse_nic(rest: &str) -> Option<NicReport> {
    let (rest, offloads) = rest.split_once(" offloads ")?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    let [index, mac, transport, location, interrupt @ .., ipv4_word, ipv4] = words.as_slice()
    else {
        return None;
    };
    if *ipv4_word != "ipv4" || interrupt.is_empty() || offloads.trim().is_empty() {
        return None;
    }
    Some(NicReport {
        index: index.parse().ok()?,
        mac: mac.parse().ok()?,
        transport: transport.to_string(),
        location: location.to_string(),
        interrupt: interrupt.join(" "),
        ipv4: parse_ipv4(ipv4)?,
        offloads: offloads.trim().to_string(),
    })
}

/// Parses `i6300esb <location> timeout <n> s`, `i6300esb <location> off (...)` or `none`
/// (after `moat: watchdog `).
fn parse_watchdog(rest: &str) -> Option<WatchdogReport> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    match words.as_slice() {
        ["none"] => Some(WatchdogReport::Absent),
        ["i6300esb", _, "off", ..] => Some(WatchdogReport::Off),
        ["i6300esb", location, "timeout", seconds, "s"] => Some(WatchdogReport::Running {
            location: location.to_string(),
            timeout_seconds: seconds.parse().ok()?,
        }),
        _ => None,
    }
}

fn parse_ipv4(text: &str) -> Option<NicIpv4> {
    match text {
        "dhcp" => Some(NicIpv4::Dhcp),
        "none" => Some(NicIpv4::Unnumbered),
        _ => {
            let (address, prefix) = text.split_once('/')?;
            let address: Ipv4Address = address.parse().ok()?;
            let prefix: u8 = prefix.parse().ok().filter(|prefix| *prefix <= 32)?;
            Some(NicIpv4::Static(Ipv4Cidr::new(address, prefix)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(String::from).collect()
    }

    #[test]
    fn banner_and_nic_lines_are_parsed_up_to_ready() {
        let console = lines(&format!(
            "Welcome to GRUB!\nmoat 0.1.0: ruleset default.rules sha256:{HASH}\nmoat: memory 64 MiB\n\
             moat: nic0 52:54:00:12:34:00 virtio-pci 0000:00:10.0 msi-x ipv4 10.0.2.15/24 offloads tx=csum,tso4,ecn,ufo rx=csum,tso4\n\
             moat: nic1 52:54:00:12:34:01 virtio-mmio 0xfeb00e00 gsi 12 ipv4 dhcp offloads none\n\
             moat: watchdog i6300esb 0000:00:01.0 timeout 5 s\n\
             moat: ready\nmoat: nic9 52:54:00:12:34:09 virtio-pci 0000:00:19.0 msi-x ipv4 none offloads none\n"
        ));
        let report = BootReport::parse(&console).unwrap();
        assert_eq!(report.banner.version, "0.1.0");
        assert_eq!(report.banner.ruleset, "default.rules");
        assert_eq!(report.nics.len(), 2);
        assert_eq!(report.nics[0].mac, MacAddress::for_nic(0));
        assert_eq!(
            report.nics[0].ipv4,
            NicIpv4::Static(Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 15), 24))
        );
        assert_eq!(report.nics[0].interrupt, "msi-x");
        assert_eq!(report.nics[1].transport, "virtio-mmio");
        assert_eq!(report.nics[1].location, "0xfeb00e00");
        assert_eq!(report.nics[1].interrupt, "gsi 12");
        assert_eq!(report.nics[1].ipv4, NicIpv4::Dhcp);
        assert!(report.nics[0].offloads("tx", "tso4") && report.nics[0].offloads("rx", "csum"));
        assert!(!report.nics[0].offloads("rx", "ufo") && !report.nics[0].offloads("tx", "tso"));
        assert_eq!(report.nics[1].offloads, "none");
        assert!(!report.nics[1].offloads("tx", "csum"));
        assert_eq!(
            report.watchdog,
            Some(WatchdogReport::Running {
                location: "0000:00:01.0".into(),
                timeout_seconds: 5
            })
        );
    }

    #[test]
    fn a_kernel_that_does_not_start_with_its_banner_is_reported() {
        let console = lines(&format!("moat: nic0 52:54:00:12:34:00 virtio-pci 00:10.0 msi-x ipv4 none offloads none\nmoat 0.1.0: ruleset r sha256:{HASH}"));
        let error = BootReport::parse(&console).unwrap_err();
        assert!(error.message().contains("not the banner"), "{error}");
    }

    #[test]
    fn malformed_banners_and_nic_lines_are_rejected() {
        assert_eq!(parse_banner("moat 0.1.0: ruleset r sha256:abc"), None);
        assert_eq!(
            parse_banner(&format!("moat : ruleset r sha256:{HASH}")),
            None
        );
        assert_eq!(
            parse_nic("0 52:54:00:12:34:00 virtio-pci ipv4 none offloads none"), // no location
            None
        );
        assert_eq!(
            parse_nic("0 52:54:00:12:34:00 virtio-pci 00:10.0 ipv4 none offloads none"), // no interrupt
            None
        );
        assert_eq!(
            parse_nic("0 52:54:00:12:34 virtio-pci 00:10.0 msi-x ipv4 none offloads none"),
            None
        );
        assert_eq!(
            parse_nic(
                "0 52:54:00:12:34:00 virtio-pci 00:10.0 msi-x ipv4 10.0.0.1/33 offloads none"
            ),
            None
        );
        assert_eq!(
            parse_nic("x 52:54:00:12:34:00 virtio-pci 00:10.0 msi-x ipv4 none offloads none"),
            None
        );
        assert_eq!(
            parse_nic("0 52:54:00:12:34:00 virtio-pci 00:10.0 msi-x ipv4 none"), // no offloads
            None
        );
        assert_eq!(
            parse_nic(
                "0 52:54:00:12:34:00 virtio-pci 0000:00:10.0 intx gsi 20 ipv4 none offloads none"
            )
            .map(|nic| nic.interrupt),
            Some("intx gsi 20".to_string())
        );
        assert_eq!(parse_watchdog("none"), Some(WatchdogReport::Absent));
        assert_eq!(
            parse_watchdog("i6300esb 0000:00:01.0 off (moat.watchdog=off)"),
            Some(WatchdogReport::Off)
        );
        assert_eq!(parse_watchdog("i6300esb 0000:00:01.0 timeout x s"), None);
        assert_eq!(parse_watchdog("sometimes"), None);
    }
}
