//! The host programs and files Moat's tooling needs, where to find them and which Debian
//! package provides each (scripts/setup installs them all).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::shell;

/// A host prerequisite: a program on PATH or a directory of GRUB modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostTool {
    /// `qemu-system-x86_64`, the emulator.
    Qemu,
    /// `qemu-img`, converts the raw disk to qcow2.
    QemuImg,
    /// `grub-mkrescue`, makes the BIOS+UEFI disk image.
    GrubMkrescue,
    /// `xorriso`, used by grub-mkrescue.
    Xorriso,
    /// `mformat` (mtools), used by grub-mkrescue for the EFI system partition.
    Mformat,
    /// GRUB's modules for BIOS (`/usr/lib/grub/i386-pc`).
    GrubBiosModules,
    /// GRUB's modules for UEFI (`/usr/lib/grub/x86_64-efi`).
    GrubEfiModules,
}

impl HostTool {
    /// Program name (or module directory) that is looked for.
    pub fn name(self) -> &'static str {
        match self {
            HostTool::Qemu => "qemu-system-x86_64",
            HostTool::QemuImg => "qemu-img",
            HostTool::GrubMkrescue => "grub-mkrescue",
            HostTool::Xorriso => "xorriso",
            HostTool::Mformat => "mformat",
            HostTool::GrubBiosModules => "/usr/lib/grub/i386-pc",
            HostTool::GrubEfiModules => "/usr/lib/grub/x86_64-efi",
        }
    }

    /// The Debian package that provides it.
    pub fn package(self) -> &'static str {
        match self {
            HostTool::Qemu => "qemu-system-x86",
            HostTool::QemuImg => "qemu-utils",
            HostTool::GrubMkrescue => "grub-common",
            HostTool::Xorriso => "xorriso",
            HostTool::Mformat => "mtools",
            HostTool::GrubBiosModules => "grub-pc-bin",
            HostTool::GrubEfiModules => "grub-efi-amd64-bin",
        }
    }

    /// Finds the tool, or says which package to install.
    pub fn locate(self) -> Result<PathBuf> {
        let missing = Error::MissingTool {
            program: self.name(),
            package: self.package(),
        };
        match self {
            HostTool::GrubBiosModules | HostTool::GrubEfiModules => {
                let directory = PathBuf::from(self.name());
                if directory.join("moddep.lst").is_file() {
                    Ok(directory)
                } else {
                    Err(missing)
                }
            }
            _ => find_on_path(self.name()).ok_or(missing),
        }
    }
}

/// Every tool `image build` needs, located, or the first one that is missing.
pub fn locate_image_tools() -> Result<()> {
    for tool in [
        HostTool::GrubMkrescue,
        HostTool::Xorriso,
        HostTool::Mformat,
        HostTool::GrubBiosModules,
        HostTool::GrubEfiModules,
        HostTool::QemuImg,
    ] {
        tool.locate()?;
    }
    Ok(())
}

/// Runs a host tool to completion with its output captured; a failure carries the command
/// line and what the tool printed.
pub fn run_captured(command: &mut Command) -> Result<()> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            program: program.clone(),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    let words = std::iter::once(command.get_program()).chain(command.get_args());
    let mut printed = String::from_utf8_lossy(&output.stderr).into_owned();
    printed.push_str(&String::from_utf8_lossy(&output.stdout));
    Err(Error::ToolFailed {
        program,
        command: shell::command_line(words),
        status: output.status,
        output: printed,
    })
}

/// Finds an executable named `program` in the directories of `PATH`.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Environment variable that names the OVMF image to use for UEFI boots.
pub const OVMF_ENV: &str = "MOAT_OVMF";

/// Where Debian (and other distributions) install a combined OVMF image usable with `-bios`.
const OVMF_CANDIDATES: [&str; 3] = [
    "/usr/share/ovmf/OVMF.fd",
    "/usr/share/OVMF/OVMF.fd",
    "/usr/share/qemu/OVMF.fd",
];

/// Finds the UEFI firmware: `$MOAT_OVMF`, else the first OVMF image installed.
pub fn locate_ovmf() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(OVMF_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::MissingFirmware {
                looked_for: vec![format!("{} (from ${OVMF_ENV})", path.display())],
            })
        };
    }
    OVMF_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .ok_or_else(|| Error::MissingFirmware {
            looked_for: OVMF_CANDIDATES
                .iter()
                .map(|path| path.to_string())
                .collect(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_that_is_not_installed_names_its_package() {
        assert_eq!(find_on_path("moat-no-such-program"), None);
        let message = Error::MissingTool {
            program: HostTool::QemuImg.name(),
            package: HostTool::QemuImg.package(),
        }
        .to_string();
        assert!(
            message.contains("qemu-img") && message.contains("qemu-utils"),
            "{message}"
        );
    }

    #[test]
    fn sh_is_found_on_path() {
        assert!(find_on_path("sh").is_some());
    }
}
