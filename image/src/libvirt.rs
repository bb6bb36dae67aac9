//! A libvirt domain for the built image (`image libvirt-xml`): the same machine `image run`
//! boots — kernel (PVH) or disk (SeaBIOS or OVMF, then GRUB), virtio-net NICs in fixed PCI
//! slots with fixed MACs (so `nic<i>` is the i-th `<interface>`), the serial console, the
//! i6300ESB watchdog that resets a stopped appliance, and nothing an appliance does not use
//! (no balloon, no USB, no graphics, no option ROMs).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::qemu::{Boot, MacAddress, Machine, FIRST_NIC_PCI_SLOT, MAX_NICS};

/// The watchdog's PCI slot: where QEMU puts it on the command line `image run` makes.
const WATCHDOG_PCI_SLOT: usize = 0x01;

/// What one NIC is attached to on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibvirtNic {
    /// A libvirt network (`virsh net-list`).
    Network(String),
    /// An existing host bridge; libvirt makes a tap on it.
    Bridge(String),
    /// An existing tap device, used as it is (`type='ethernet'`, `managed='no'`).
    Tap(String),
}

impl FromStr for LibvirtNic {
    type Err = Error;

    /// Parses `network:NAME`, `bridge:NAME` or `tap:IFNAME`.
    fn from_str(text: &str) -> Result<LibvirtNic> {
        let (kind, name) = text.split_once(':').unwrap_or((text, ""));
        if name.is_empty() {
            return Err(invalid_nic(text));
        }
        match kind {
            "network" => Ok(LibvirtNic::Network(name.to_string())),
            "bridge" => Ok(LibvirtNic::Bridge(name.to_string())),
            "tap" => Ok(LibvirtNic::Tap(name.to_string())),
            _ => Err(invalid_nic(text)),
        }
    }
}

fn invalid_nic(text: &str) -> Error {
    Error::InvalidRequest(format!(
        "invalid libvirt NIC {text:?}: use `network:NAME`, `bridge:NAME` or `tap:IFNAME`"
    ))
}

/// Where the serial console goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibvirtConsole {
    /// A pseudo-terminal: `virsh console NAME`.
    Pty,
    /// A file QEMU writes the console to.
    File(PathBuf),
}

impl FromStr for LibvirtConsole {
    type Err = Error;

    /// Parses `pty` or `file:PATH`.
    fn from_str(text: &str) -> Result<LibvirtConsole> {
        match text.split_once(':') {
            None if text == "pty" => Ok(LibvirtConsole::Pty),
            Some(("file", path)) if path.starts_with('/') => {
                Ok(LibvirtConsole::File(PathBuf::from(path)))
            }
            _ => Err(Error::InvalidRequest(format!(
                "invalid console {text:?}: use `pty` or `file:ABSOLUTE_PATH`"
            ))),
        }
    }
}

/// The libvirt domain type: `kvm` (hardware virtualisation) or `qemu` (emulation, TCG).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DomainType {
    /// `<domain type='kvm'>`.
    Kvm,
    /// `<domain type='qemu'>`: TCG, for hosts whose KVM is missing or slower.
    Qemu,
}

/// One libvirt domain. See the module documentation.
#[derive(Debug, Clone)]
pub struct Domain {
    /// The domain's name.
    pub name: String,
    /// `kvm` or `qemu`.
    pub domain_type: DomainType,
    /// `q35` or `pc` (`microvm` has no libvirt support for what Moat needs).
    pub machine: Machine,
    /// Guest RAM in MiB.
    pub memory_mib: u32,
    /// What to boot; paths must be absolute (libvirt resolves nothing).
    pub boot: Boot,
    /// UEFI firmware for [`Boot::Uefi`].
    pub ovmf: Option<PathBuf>,
    /// NICs in order: the i-th is `nic<i>`.
    pub nics: Vec<LibvirtNic>,
    /// The serial console.
    pub console: LibvirtConsole,
}

/// `text` with XML's special characters escaped, for attribute values and text.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn absolute(path: &Path, what: &str) -> Result<String> {
    if path.is_absolute() {
        Ok(xml(&path.to_string_lossy()))
    } else {
        Err(Error::InvalidRequest(format!(
            "the {what} path {} must be absolute for libvirt",
            path.display()
        )))
    }
}

impl Domain {
    /// The domain XML, for `virsh define`.
    pub fn render(&self) -> Result<String> {
        self.check()?;
        let mut x = String::new();
        let kind = match self.domain_type {
            DomainType::Kvm => "kvm",
            DomainType::Qemu => "qemu",
        };
        let _ = writeln!(x, "<domain type='{kind}'>");
        let _ = writeln!(x, "  <name>{}</name>", xml(&self.name));
        let _ = writeln!(x, "  <memory unit='MiB'>{}</memory>", self.memory_mib);
        x.push_str("  <vcpu>1</vcpu>\n  <os>\n");
        let _ = writeln!(
            x,
            "    <type arch='x86_64' machine='{}'>hvm</type>",
            self.machine.qemu_name()
        );
        self.push_boot(&mut x)?;
        x.push_str("  </os>\n  <features><acpi/><apic/></features>\n");
        x.push_str("  <on_poweroff>destroy</on_poweroff>\n");
        x.push_str("  <on_reboot>restart</on_reboot>\n");
        x.push_str("  <on_crash>destroy</on_crash>\n");
        x.push_str("  <devices>\n");
        self.push_disk(&mut x)?;
        self.push_nics(&mut x);
        self.push_console(&mut x)?;
        let _ = writeln!(
            x,
            "    <watchdog model='i6300esb' action='reset'>{}</watchdog>",
            pci_address(WATCHDOG_PCI_SLOT)
        );
        x.push_str("    <controller type='usb' model='none'/>\n");
        x.push_str("    <memballoon model='none'/>\n");
        x.push_str("  </devices>\n</domain>\n");
        Ok(x)
    }

    fn check(&self) -> Result<()> {
        if self.machine == Machine::Microvm {
            return Err(Error::UnsupportedConfiguration(
                "libvirt domains are q35 or pc: microvm has no PCI bus for the watchdog".into(),
            ));
        }
        if self.nics.len() > MAX_NICS {
            return Err(Error::UnsupportedConfiguration(format!(
                "{} NICs: Moat drives at most {MAX_NICS}",
                self.nics.len()
            )));
        }
        Ok(())
    }

    fn push_boot(&self, x: &mut String) -> Result<()> {
        match &self.boot {
            Boot::Kernel { elf, cmdline } => {
                let _ = writeln!(x, "    <kernel>{}</kernel>", absolute(elf, "kernel")?);
                if !cmdline.is_empty() {
                    let _ = writeln!(x, "    <cmdline>{}</cmdline>", xml(cmdline));
                }
            }
            Boot::Bios { .. } => x.push_str("    <boot dev='hd'/>\n"),
            Boot::Uefi { .. } => {
                let ovmf = self.ovmf.as_deref().ok_or_else(|| {
                    Error::InvalidRequest("a UEFI domain needs the OVMF firmware's path".into())
                })?;
                let _ = writeln!(
                    x,
                    "    <loader readonly='yes' type='rom'>{}</loader>",
                    absolute(ovmf, "OVMF")?
                );
                x.push_str("    <boot dev='hd'/>\n");
            }
        }
        Ok(())
    }

    fn push_disk(&self, x: &mut String) -> Result<()> {
        let (Boot::Bios { disk } | Boot::Uefi { disk }) = &self.boot else {
            return Ok(());
        };
        let format = if disk.extension().is_some_and(|e| e == "qcow2") {
            "qcow2"
        } else {
            "raw"
        };
        let (dev, bus) = match self.machine {
            Machine::Pc => ("hda", "ide"),
            Machine::Q35 | Machine::Microvm => ("sda", "sata"),
        };
        x.push_str("    <disk type='file' device='disk'>\n");
        let _ = writeln!(x, "      <driver name='qemu' type='{format}'/>");
        let _ = writeln!(x, "      <source file='{}'/>", absolute(disk, "disk")?);
        let _ = writeln!(x, "      <target dev='{dev}' bus='{bus}'/>");
        x.push_str("    </disk>\n");
        Ok(())
    }

    fn push_nics(&self, x: &mut String) {
        for (index, nic) in self.nics.iter().enumerate() {
            let role = if index == 0 { "uplink" } else { "clients" };
            let (kind, source) = match nic {
                LibvirtNic::Network(name) => {
                    ("network", format!("<source network='{}'/>", xml(name)))
                }
                LibvirtNic::Bridge(name) => ("bridge", format!("<source bridge='{}'/>", xml(name))),
                LibvirtNic::Tap(name) => (
                    "ethernet",
                    format!("<target dev='{}' managed='no'/>", xml(name)),
                ),
            };
            let _ = writeln!(
                x,
                "    <interface type='{kind}'>  <!-- nic{index}: {role} -->"
            );
            let _ = writeln!(x, "      {source}");
            let _ = writeln!(x, "      <mac address='{}'/>", MacAddress::for_nic(index));
            x.push_str("      <model type='virtio-non-transitional'/>\n");
            x.push_str("      <rom enabled='no'/>\n");
            let _ = writeln!(x, "      {}", pci_address(FIRST_NIC_PCI_SLOT + index));
            x.push_str("    </interface>\n");
        }
    }

    fn push_console(&self, x: &mut String) -> Result<()> {
        match &self.console {
            LibvirtConsole::Pty => {
                x.push_str("    <serial type='pty'><target port='0'/></serial>\n");
                x.push_str("    <console type='pty'><target type='serial' port='0'/></console>\n");
            }
            LibvirtConsole::File(path) => {
                let _ = writeln!(
                    x,
                    "    <serial type='file'><source path='{}'/><target port='0'/></serial>",
                    absolute(path, "console")?
                );
            }
        }
        Ok(())
    }
}

/// A device's place on the root bus (slot `slot`), so PCI order — NIC naming — is fixed.
fn pci_address(slot: usize) -> String {
    format!("<address type='pci' domain='0x0000' bus='0x00' slot='{slot:#04x}' function='0x0'/>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel_domain() -> Domain {
        Domain {
            name: "moat".into(),
            domain_type: DomainType::Kvm,
            machine: Machine::Q35,
            memory_mib: 64,
            boot: Boot::Kernel {
                elf: "/var/lib/libvirt/images/moat.elf".into(),
                cmdline: String::new(),
            },
            ovmf: None,
            nics: vec![
                LibvirtNic::Network("default".into()),
                LibvirtNic::Bridge("moat-lan".into()),
            ],
            console: LibvirtConsole::Pty,
        }
    }

    #[test]
    fn the_readme_shows_exactly_what_the_command_writes() {
        let readme = include_str!("../../README.md");
        let section = &readme[readme.find("### libvirt").expect("a libvirt section")..];
        assert!(section.contains(
            "cargo run -p image -- libvirt-xml --artifacts /var/lib/libvirt/images > moat.xml"
        ));
        let start = section.find("```xml\n").expect("an XML block") + "```xml\n".len();
        let end = start + section[start..].find("```").expect("the block's end");
        // What `libvirt-xml --artifacts /var/lib/libvirt/images` makes with every default.
        assert_eq!(section[start..end], kernel_domain().render().unwrap());
    }

    #[test]
    fn nics_are_modern_virtio_in_fixed_slots_with_fixed_macs() {
        let xml = kernel_domain().render().unwrap();
        assert!(xml.contains("<interface type='network'>  <!-- nic0: uplink -->\n      <source network='default'/>\n      <mac address='52:54:00:12:34:00'/>\n      <model type='virtio-non-transitional'/>"), "{xml}");
        assert!(xml.contains("<source bridge='moat-lan'/>"));
        assert!(xml.contains("slot='0x11'"));
        assert!(xml.contains("<watchdog model='i6300esb' action='reset'>"));
        assert!(xml.contains("<kernel>/var/lib/libvirt/images/moat.elf</kernel>"));
    }

    #[test]
    fn a_tap_is_used_as_it_is_and_the_console_can_go_to_a_file() {
        let mut domain = kernel_domain();
        domain.nics = vec![LibvirtNic::Tap("mt1".into())];
        domain.console = LibvirtConsole::File("/tmp/moat console.log".into());
        domain.domain_type = DomainType::Qemu;
        let xml = domain.render().unwrap();
        assert!(xml.starts_with("<domain type='qemu'>"));
        assert!(xml.contains("<interface type='ethernet'>"));
        assert!(xml.contains("<target dev='mt1' managed='no'/>"));
        assert!(xml.contains("<source path='/tmp/moat console.log'/>"));
        assert!(!xml.contains("type='pty'"));
    }

    #[test]
    fn disk_boots_name_the_disk_and_uefi_its_firmware() {
        let mut domain = kernel_domain();
        domain.boot = Boot::Uefi {
            disk: "/images/moat.qcow2".into(),
        };
        assert!(domain.render().unwrap_err().to_string().contains("OVMF"));
        domain.ovmf = Some("/usr/share/ovmf/OVMF.fd".into());
        let xml = domain.render().unwrap();
        assert!(xml.contains("<loader readonly='yes' type='rom'>/usr/share/ovmf/OVMF.fd</loader>"));
        assert!(xml.contains("<driver name='qemu' type='qcow2'/>"));
        assert!(xml.contains("<target dev='sda' bus='sata'/>"));
        assert!(!xml.contains("<kernel>"));
    }

    #[test]
    fn relative_paths_and_special_characters_are_handled() {
        let mut domain = kernel_domain();
        domain.name = "a<b>&'c'".into();
        assert!(domain
            .render()
            .unwrap()
            .contains("<name>a&lt;b&gt;&amp;&apos;c&apos;</name>"));
        domain.boot = Boot::Kernel {
            elf: "target/moat/moat.elf".into(),
            cmdline: String::new(),
        };
        assert!(domain
            .render()
            .unwrap_err()
            .to_string()
            .contains("absolute"));
    }

    #[test]
    fn nic_and_console_specs_parse_or_say_what_they_take() {
        assert_eq!(
            "bridge:br0".parse::<LibvirtNic>().unwrap(),
            LibvirtNic::Bridge("br0".into())
        );
        assert!("user".parse::<LibvirtNic>().is_err());
        assert_eq!(
            "file:/tmp/c.log".parse::<LibvirtConsole>().unwrap(),
            LibvirtConsole::File("/tmp/c.log".into())
        );
        assert!("file:c.log".parse::<LibvirtConsole>().is_err());
    }
}
