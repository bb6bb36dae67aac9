//! The Linux comparator VM under QEMU: the same machine, accelerator and NIC wiring as Moat
//! (q35, modern virtio-net-pci in slots `0x10 + i` with Moat's MACs, one vCPU), booted with
//! `-kernel`/`-initrd`; its serial console read like Moat's. Dropping it kills QEMU.

use std::process::Child;
use std::time::{Duration, Instant};

use image::accel::Accel;
use image::qemu::{stop, Boot, Firmware, Machine, Nic, NicBackend, QemuConfig};

use super::{LinuxImage, FAILED_PREFIX, READY_LINE};
use crate::console::Console;
use crate::{Failure, Outcome};

/// The kernel command line: the console on the serial port, a panic ends QEMU (it runs
/// with `-no-reboot`), IPv6 off (Moat forwards IPv4 only), and the firewall's log lines
/// (warnings) shown on the console like Moat's drop log, boot chatter (info) not.
pub const CMDLINE: &str = "console=ttyS0 panic=-1 ipv6.disable=1 loglevel=5";

/// A running Linux VM.
pub struct LinuxVm {
    child: Child,
    console: Console,
    started: Instant,
    description: String,
    command_line: String,
}

impl LinuxVm {
    /// Boots `image` with `memory_mib` of RAM and its NICs on `backends` (tap devices),
    /// started by `firmware`.
    pub fn start(
        image: &LinuxImage,
        accel: Accel,
        firmware: Firmware,
        memory_mib: u32,
        backends: &[NicBackend],
    ) -> Outcome<LinuxVm> {
        let boot = Boot::Kernel {
            elf: image.kernel.clone(),
            cmdline: CMDLINE.to_string(),
        };
        let mut config = QemuConfig::new(Machine::Q35, accel, boot);
        config.firmware = firmware;
        config.memory_mib = memory_mib;
        config.nics = backends
            .iter()
            .enumerate()
            .map(|(index, backend)| Nic::new(index, backend.clone()))
            .collect();
        config.extra_args = vec!["-initrd".into(), image.initrd.clone().into_os_string()];
        let line = config.command_line()?;
        let mut child = line.spawn_piped()?;
        let started = Instant::now();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Failure::new("QEMU's stdout is not piped"))?;
        Ok(LinuxVm {
            child,
            console: Console::attach(stdout),
            started,
            description: format!(
                "Linux {} + nftables ({}), q35, {firmware} firmware, {accel}, -m {memory_mib}",
                image.release, image.variant.name
            ),
            command_line: line.to_string(),
        })
    }

    /// When QEMU was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The serial console.
    pub fn console(&self) -> &Console {
        &self.console
    }

    /// Short description for messages.
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// The QEMU command line.
    pub fn command_line(&self) -> &str {
        &self.command_line
    }

    /// Waits for [`READY_LINE`], failing early when `/init` reports a failure or the
    /// kernel panics.
    pub fn wait_ready(&self, timeout: Duration) -> Outcome {
        self.console
            .wait_for_ready(&self.description, READY_LINE, timeout, |line| {
                line.starts_with(FAILED_PREFIX) || line.contains("Kernel panic")
            })
            .map_err(|failure| {
                Failure::new(format!(
                    "{failure}\n---- console ----\n{}",
                    self.console.transcript()
                ))
            })
    }
}

impl Drop for LinuxVm {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
