//! The firmware QEMU runs before a direct kernel boot.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// Which firmware starts a direct kernel boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Firmware {
    /// QEMU's default: SeaBIOS on `q35` and `pc` (which assigns every PCI BAR), qboot on
    /// `microvm`.
    #[default]
    Default,
    /// qboot (`-bios qboot.rom`, shipped with QEMU) on `q35` and `pc`: it starts the kernel
    /// in about half of SeaBIOS's time under TCG and leaves PCI BARs unassigned, which the
    /// kernel then assigns itself. Direct kernel boot only: qboot boots no disks.
    Qboot,
}

/// qboot's image as QEMU finds it in its data directory.
const QBOOT_ROM: &str = "qboot.rom";

impl Firmware {
    /// The `-bios` file this firmware needs, if not QEMU's default.
    pub fn bios_file(self) -> Option<&'static str> {
        match self {
            Firmware::Default => None,
            Firmware::Qboot => Some(QBOOT_ROM),
        }
    }

    /// Name as `image run --firmware` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Firmware::Default => "default",
            Firmware::Qboot => "qboot",
        }
    }
}

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Firmware {
    type Err = Error;

    fn from_str(text: &str) -> Result<Firmware, Error> {
        match text {
            "default" => Ok(Firmware::Default),
            "qboot" => Ok(Firmware::Qboot),
            other => Err(Error::InvalidRequest(format!(
                "unknown firmware {other:?}: use default or qboot"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for firmware in [Firmware::Default, Firmware::Qboot] {
            assert_eq!(firmware.name().parse::<Firmware>().unwrap(), firmware);
        }
        assert!("seabios".parse::<Firmware>().is_err());
    }
}
