//! The QEMU machine types Moat boots on.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A QEMU x86 machine type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Machine {
    /// `q35`: PCIe, ECAM, the default for modern guests.
    Q35,
    /// `pc` (i440FX): legacy PCI, configuration through port I/O.
    Pc,
    /// `microvm`: no PCI, virtio over MMIO; direct kernel boot (PVH) only.
    Microvm,
}

impl Machine {
    /// Every machine, in the order tests and benches visit them.
    pub const ALL: [Machine; 3] = [Machine::Q35, Machine::Pc, Machine::Microvm];

    /// Name as QEMU's `-machine` option spells it.
    pub fn qemu_name(self) -> &'static str {
        match self {
            Machine::Q35 => "q35",
            Machine::Pc => "pc",
            Machine::Microvm => "microvm",
        }
    }

    /// How NICs are attached on this machine, as the kernel reports it on the console.
    pub fn nic_transport(self) -> &'static str {
        match self {
            Machine::Q35 | Machine::Pc => "virtio-pci",
            Machine::Microvm => "virtio-mmio",
        }
    }

    /// Whether the machine can carry the i6300ESB watchdog (a PCI device: not `microvm`).
    pub fn offers_watchdog(self) -> bool {
        !matches!(self, Machine::Microvm)
    }

    /// Whether firmware can boot a disk on this machine (microvm has none that can).
    pub fn boots_disks(self) -> bool {
        !matches!(self, Machine::Microvm)
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.qemu_name())
    }
}

impl FromStr for Machine {
    type Err = Error;

    fn from_str(text: &str) -> Result<Machine, Error> {
        Machine::ALL
            .into_iter()
            .find(|machine| machine.qemu_name() == text)
            .ok_or_else(|| {
                Error::InvalidRequest(format!("unknown machine {text:?}: use q35, pc or microvm"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_names_round_trip() {
        for machine in Machine::ALL {
            assert_eq!(machine.to_string().parse::<Machine>().unwrap(), machine);
        }
        assert!("isapc"
            .parse::<Machine>()
            .unwrap_err()
            .to_string()
            .contains("q35, pc or microvm"));
    }
}
