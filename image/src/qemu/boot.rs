//! How the appliance is booted: the kernel ELF directly (PVH), or the disk image through
//! firmware and GRUB (Multiboot2).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::artifacts::Artifacts;
use crate::error::Error;

/// The three boot paths, as chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BootPath {
    /// `qemu -kernel moat.elf` through the PVH note.
    Kernel,
    /// `moat.img` through SeaBIOS and GRUB.
    Bios,
    /// `moat.img` through OVMF and GRUB.
    Uefi,
}

impl BootPath {
    /// Every boot path.
    pub const ALL: [BootPath; 3] = [BootPath::Kernel, BootPath::Bios, BootPath::Uefi];

    /// Name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BootPath::Kernel => "kernel",
            BootPath::Bios => "bios",
            BootPath::Uefi => "uefi",
        }
    }

    /// Guest memory used when none is asked for: OVMF needs more than the kernel does.
    pub fn default_memory_mib(self) -> u32 {
        match self {
            BootPath::Kernel | BootPath::Bios => 64,
            BootPath::Uefi => 128,
        }
    }

    /// The boot of this path from a set of artifacts (the disk paths boot the raw image).
    pub fn boot_from(self, artifacts: &Artifacts, kernel_cmdline: &str) -> Boot {
        match self {
            BootPath::Kernel => Boot::Kernel {
                elf: artifacts.elf.clone(),
                cmdline: kernel_cmdline.to_string(),
            },
            BootPath::Bios => Boot::Bios {
                disk: artifacts.disk.clone(),
            },
            BootPath::Uefi => Boot::Uefi {
                disk: artifacts.disk.clone(),
            },
        }
    }
}

impl fmt::Display for BootPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BootPath {
    type Err = Error;

    fn from_str(text: &str) -> Result<BootPath, Error> {
        BootPath::ALL
            .into_iter()
            .find(|path| path.name() == text)
            .ok_or_else(|| {
                Error::InvalidRequest(format!(
                    "unknown boot path {text:?}: use kernel, bios or uefi"
                ))
            })
    }
}

/// One boot, with the file it boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// Direct kernel boot; `cmdline` goes to `-append`.
    Kernel {
        /// The kernel ELF.
        elf: PathBuf,
        /// Kernel command line (may be empty).
        cmdline: String,
    },
    /// Disk image through SeaBIOS.
    Bios {
        /// Raw or qcow2 disk image (chosen by its `.qcow2` extension).
        disk: PathBuf,
    },
    /// Disk image through OVMF.
    Uefi {
        /// Raw or qcow2 disk image (chosen by its `.qcow2` extension).
        disk: PathBuf,
    },
}

impl Boot {
    /// The boot path this boot takes.
    pub fn path(&self) -> BootPath {
        match self {
            Boot::Kernel { .. } => BootPath::Kernel,
            Boot::Bios { .. } => BootPath::Bios,
            Boot::Uefi { .. } => BootPath::Uefi,
        }
    }

    /// The file booted.
    pub fn file(&self) -> &PathBuf {
        match self {
            Boot::Kernel { elf, .. } => elf,
            Boot::Bios { disk } | Boot::Uefi { disk } => disk,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_paths_boot_the_raw_image_and_the_kernel_path_the_elf() {
        let artifacts = Artifacts::in_dir(std::path::Path::new("/a"));
        assert_eq!(
            BootPath::Kernel.boot_from(&artifacts, "x").file(),
            &PathBuf::from("/a/moat.elf")
        );
        assert_eq!(
            BootPath::Uefi.boot_from(&artifacts, "").file(),
            &PathBuf::from("/a/moat.img")
        );
        assert_eq!(
            BootPath::Bios.boot_from(&artifacts, "").path(),
            BootPath::Bios
        );
    }

    #[test]
    fn boot_path_names_round_trip() {
        for path in BootPath::ALL {
            assert_eq!(path.name().parse::<BootPath>().unwrap(), path);
        }
        assert!("pxe".parse::<BootPath>().is_err());
    }
}
