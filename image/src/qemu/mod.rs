//! The one place QEMU command lines are made: `image run`, the end-to-end harness and the
//! benches all describe a VM as a [`QemuConfig`] and get the same command line from it.

mod boot;
mod firmware;
mod machine;
mod nic;
mod process;

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

pub use boot::{Boot, BootPath};
pub use firmware::Firmware;
pub use machine::Machine;
pub use nic::{escape_option, MacAddress, Nic, NicBackend, MAX_NICS};
pub use process::{stop, wait_until};

use crate::accel::Accel;
use crate::error::{Error, Result};
use crate::host_tools::{locate_ovmf, HostTool};
use crate::shell;

/// The `isa-debug-exit` device: a write of `v` to port 0xf4 makes QEMU exit with status
/// `(v << 1) | 1`. The kernel writes 1 after a fatal error, so QEMU exits with 3.
pub const DEBUG_EXIT_DEVICE: &str = "isa-debug-exit,iobase=0xf4,iosize=0x04";
/// QEMU's exit status when the kernel reports a fatal error through `isa-debug-exit`.
pub const FATAL_EXIT_STATUS: i32 = 3;
/// The hardware watchdog on `q35` and `pc`, and what QEMU does when it expires: reset the
/// VM (which, under `-no-reboot`, stops it instead). Moat pets it from its main loop.
pub const WATCHDOG_ARGS: [&str; 4] = ["-device", "i6300esb", "-action", "watchdog=reset"];
/// First PCI slot used for NICs: `nic<i>` sits in slot `0x10 + i`, clear of the slots the
/// machines use themselves, so PCI order (and so NIC naming) is fixed.
pub const FIRST_NIC_PCI_SLOT: usize = 0x10;

/// Where the serial console (COM1) goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    /// The terminal, multiplexed with the QEMU monitor (`-serial mon:stdio`): Ctrl-A X quits,
    /// Ctrl-A C switches to the monitor (`system_powerdown` shuts Moat down).
    Terminal,
    /// QEMU's stdout only (`-serial stdio`), for a program that reads it through a pipe.
    Stdout,
}

/// Everything that describes one VM.
#[derive(Debug, Clone)]
pub struct QemuConfig {
    /// Machine type.
    pub machine: Machine,
    /// Accelerator (already resolved: see [`crate::accel`]).
    pub accel: Accel,
    /// What to boot and how.
    pub boot: Boot,
    /// The firmware before a direct kernel boot.
    pub firmware: Firmware,
    /// Guest RAM in MiB.
    pub memory_mib: u32,
    /// NICs in order: `nics[i]` becomes `nic<i>`.
    pub nics: Vec<Nic>,
    /// Serial console wiring.
    pub console: Console,
    /// A QMP socket (`-qmp unix:PATH,server=on,wait=off`) for e.g. `system_powerdown`.
    pub qmp_socket: Option<PathBuf>,
    /// Add the `isa-debug-exit` device so a fatal kernel error ends QEMU with status 3.
    pub debug_exit: bool,
    /// Add the i6300ESB watchdog ([`WATCHDOG_ARGS`]); on by default where the machine
    /// offers it (`q35`, `pc`).
    pub watchdog: bool,
    /// Pass `-no-reboot`: a reset (the watchdog's, or the guest's) ends QEMU instead of
    /// rebooting the VM. On by default.
    pub no_reboot: bool,
    /// CPU model (`-cpu`); `None` keeps QEMU's default.
    pub cpu: Option<String>,
    /// A file for the packet capture: COM2 (the second `-serial`) writes into it the pcap
    /// stream of what the appliance drops (`q35` and `pc`; `microvm` has one serial port).
    pub pcap: Option<PathBuf>,
    /// Arguments appended verbatim.
    pub extra_args: Vec<OsString>,
}

impl QemuConfig {
    /// A VM with the defaults of `boot`'s path: no NICs, console on stdout, no QMP, no exit
    /// device, the watchdog where the machine offers it, `-no-reboot`.
    pub fn new(machine: Machine, accel: Accel, boot: Boot) -> QemuConfig {
        QemuConfig {
            machine,
            accel,
            memory_mib: boot.path().default_memory_mib(),
            boot,
            firmware: Firmware::Default,
            nics: Vec::new(),
            console: Console::Stdout,
            qmp_socket: None,
            debug_exit: false,
            watchdog: machine.offers_watchdog(),
            no_reboot: true,
            cpu: None,
            pcap: None,
            extra_args: Vec::new(),
        }
    }

    /// Checks the combination and builds the command line.
    pub fn command_line(&self) -> Result<QemuCommandLine> {
        let args = self.args()?;
        Ok(QemuCommandLine {
            program: HostTool::Qemu.locate()?,
            args,
        })
    }

    /// QEMU's arguments for this VM.
    pub fn args(&self) -> Result<Vec<OsString>> {
        self.check()?;
        let mut args = Args::default();
        args.push_all(["-nodefaults", "-no-user-config", "-display", "none"]);
        if self.no_reboot {
            args.push_all(["-no-reboot"]);
        }
        args.push_pair("-machine", self.machine.qemu_name());
        args.push_pair("-accel", self.accel.qemu_name());
        if let Some(cpu) = &self.cpu {
            args.push_pair("-cpu", cpu);
        }
        args.push_pair("-m", self.memory_mib.to_string());
        args.push_pair(
            "-serial",
            match self.console {
                Console::Terminal => "mon:stdio",
                Console::Stdout => "stdio",
            },
        );
        if let Some(pcap) = &self.pcap {
            args.push_pair(
                "-chardev",
                format!(
                    "file,id=moat-pcap,path={}",
                    escape_option(&pcap.to_string_lossy())
                ),
            );
            args.push_pair("-serial", "chardev:moat-pcap");
        }
        self.push_boot(&mut args)?;
        self.push_nics(&mut args);
        if self.debug_exit {
            args.push_pair("-device", DEBUG_EXIT_DEVICE);
        }
        if self.watchdog {
            args.push_all(WATCHDOG_ARGS);
        }
        if let Some(socket) = &self.qmp_socket {
            args.push_pair(
                "-qmp",
                format!(
                    "unix:{},server=on,wait=off",
                    escape_option(&socket.to_string_lossy())
                ),
            );
        }
        args.0.extend(self.extra_args.iter().cloned());
        Ok(args.0)
    }

    fn check(&self) -> Result<()> {
        if self.firmware != Firmware::Default
            && (self.boot.path() != BootPath::Kernel || self.machine == Machine::Microvm)
        {
            return Err(Error::UnsupportedConfiguration(format!(
                "firmware {} starts direct kernel boots on q35 and pc only (microvm has its own)",
                self.firmware
            )));
        }
        if self.watchdog && !self.machine.offers_watchdog() {
            return Err(Error::UnsupportedConfiguration(format!(
                "machine {} has no PCI bus for the i6300esb watchdog",
                self.machine
            )));
        }
        if self.pcap.is_some() && self.machine == Machine::Microvm {
            return Err(Error::UnsupportedConfiguration(
                "machine microvm has one serial port (the console): the packet capture needs a second; use q35 or pc"
                    .into(),
            ));
        }
        if self.nics.len() > MAX_NICS {
            return Err(Error::UnsupportedConfiguration(format!(
                "{} NICs: Moat drives at most {MAX_NICS}",
                self.nics.len()
            )));
        }
        if !self.machine.boots_disks() && self.boot.path() != BootPath::Kernel {
            return Err(Error::UnsupportedConfiguration(format!(
                "machine {} boots only the kernel directly (PVH), not a disk through {} firmware",
                self.machine,
                self.boot.path()
            )));
        }
        let file = self.boot.file();
        if !file.is_file() {
            return Err(Error::MissingArtifact { path: file.clone() });
        }
        Ok(())
    }

    fn push_boot(&self, args: &mut Args) -> Result<()> {
        match &self.boot {
            Boot::Kernel { elf, cmdline } => {
                if let Some(bios) = self.firmware.bios_file() {
                    args.push_pair("-bios", bios);
                }
                args.push_pair("-kernel", elf);
                if !cmdline.is_empty() {
                    args.push_pair("-append", cmdline);
                }
            }
            Boot::Bios { disk } => args.push_pair("-drive", disk_drive(disk)),
            Boot::Uefi { disk } => {
                args.push_pair("-bios", locate_ovmf()?);
                args.push_pair("-drive", disk_drive(disk));
            }
        }
        if self.machine == Machine::Microvm {
            args.push_pair("-global", "virtio-mmio.force-legacy=false");
        }
        Ok(())
    }

    fn push_nics(&self, args: &mut Args) {
        for (index, nic) in self.nics.iter().enumerate() {
            let id = format!("nic{index}");
            args.push_pair("-netdev", nic.backend.netdev(&id));
            let device = match self.machine {
                Machine::Q35 | Machine::Pc => format!(
                    "virtio-net-pci,disable-legacy=on,netdev={id},mac={},addr={:#x},romfile=",
                    nic.mac,
                    FIRST_NIC_PCI_SLOT + index
                ),
                Machine::Microvm => format!("virtio-net-device,netdev={id},mac={}", nic.mac),
            };
            args.push_pair("-device", device);
        }
    }
}

/// The disk as the machine's own controller sees it (IDE on `pc`, AHCI on `q35`), with
/// `snapshot=on` so that the image is never written and several VMs can boot it at once.
fn disk_drive(disk: &std::path::Path) -> String {
    let format = if disk.extension() == Some(OsStr::new("qcow2")) {
        "qcow2"
    } else {
        "raw"
    };
    format!(
        "file={},format={format},if=ide,media=disk,snapshot=on",
        escape_option(&disk.to_string_lossy())
    )
}

#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn push_all<const N: usize>(&mut self, words: [&str; N]) {
        self.0.extend(words.into_iter().map(OsString::from));
    }

    fn push_pair(&mut self, option: &str, value: impl AsRef<OsStr>) {
        self.0.push(option.into());
        self.0.push(value.as_ref().to_owned());
    }
}

/// A complete QEMU invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuCommandLine {
    /// The QEMU binary.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
}

impl QemuCommandLine {
    /// A [`Command`] for this invocation. QEMU receives SIGKILL if the thread that spawns it
    /// exits first, so a VM never outlives a crashed harness or `image run`; spawn it from the
    /// thread that owns the VM.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        // SAFETY: the closure runs in the child between fork and exec and only calls prctl(2),
        // which is async-signal-safe; it touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command
    }
}

impl fmt::Display for QemuCommandLine {
    /// The command line, quoted so that it can be pasted into a shell.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words = std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(OsString::as_os_str));
        f.write_str(&shell::command_line(words))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel_config(machine: Machine, nics: usize) -> QemuConfig {
        // Any existing file stands in for the kernel: the command line is only built.
        let elf = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let mut config = QemuConfig::new(
            machine,
            Accel::Tcg,
            Boot::Kernel {
                elf,
                cmdline: String::new(),
            },
        );
        config.nics = (0..nics).map(|i| Nic::new(i, NicBackend::User)).collect();
        config
    }

    fn rendered(config: &QemuConfig) -> String {
        let line = QemuCommandLine {
            program: "qemu".into(),
            args: config.args().unwrap(),
        };
        line.to_string()
    }

    #[test]
    fn pci_nics_are_modern_virtio_with_fixed_slots_and_macs() {
        let line = rendered(&kernel_config(Machine::Q35, 2));
        assert!(line.contains(
            "-device virtio-net-pci,disable-legacy=on,netdev=nic0,mac=52:54:00:12:34:00,addr=0x10,romfile="
        ));
        assert!(line.contains("netdev=nic1,mac=52:54:00:12:34:01,addr=0x11"));
        assert!(line.contains("-nodefaults -no-user-config -display none"));
        assert!(!line.contains("force-legacy"));
    }

    #[test]
    fn qboot_starts_direct_kernel_boots_on_pci_machines_only() {
        for machine in [Machine::Q35, Machine::Pc] {
            let mut config = kernel_config(machine, 1);
            config.firmware = Firmware::Qboot;
            let line = rendered(&config);
            assert!(
                line.contains("-bios qboot.rom -kernel "),
                "{machine}: {line}"
            );
        }
        assert!(!rendered(&kernel_config(Machine::Q35, 1)).contains("-bios"));
        let mut microvm = kernel_config(Machine::Microvm, 1);
        microvm.watchdog = false;
        microvm.firmware = Firmware::Qboot;
        assert!(microvm.args().is_err());
        let mut disk = QemuConfig::new(
            Machine::Pc,
            Accel::Tcg,
            Boot::Bios {
                disk: PathBuf::from("moat.img"),
            },
        );
        disk.firmware = Firmware::Qboot;
        assert!(disk.args().is_err());
    }

    #[test]
    fn pci_machines_get_the_watchdog_with_the_reset_action_by_default() {
        for machine in [Machine::Q35, Machine::Pc] {
            let line = rendered(&kernel_config(machine, 1));
            assert!(
                line.contains("-device i6300esb -action watchdog=reset"),
                "{machine}: {line}"
            );
            assert!(line.contains("-no-reboot"), "{machine}: {line}");
        }
        let mut config = kernel_config(Machine::Q35, 1);
        config.watchdog = false;
        config.no_reboot = false;
        let line = rendered(&config);
        assert!(!line.contains("i6300esb"), "{line}");
        assert!(!line.contains("-no-reboot"), "{line}");
    }

    #[test]
    fn microvm_has_no_watchdog_and_refuses_one() {
        let mut config = kernel_config(Machine::Microvm, 1);
        assert!(!rendered(&config).contains("i6300esb"));
        config.watchdog = true;
        let error = config.args().unwrap_err();
        assert!(error.to_string().contains("watchdog"), "{error}");
    }

    #[test]
    fn microvm_nics_are_virtio_mmio_devices_in_modern_mode() {
        let line = rendered(&kernel_config(Machine::Microvm, 1));
        assert!(line.contains("-global virtio-mmio.force-legacy=false"));
        assert!(line.contains("-device virtio-net-device,netdev=nic0,mac=52:54:00:12:34:00"));
    }

    #[test]
    fn microvm_refuses_to_boot_a_disk() {
        let mut config = kernel_config(Machine::Microvm, 0);
        config.boot = Boot::Bios {
            disk: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"),
        };
        let error = config.args().unwrap_err();
        assert!(
            matches!(error, Error::UnsupportedConfiguration(_)),
            "{error}"
        );
    }

    #[test]
    fn the_packet_capture_is_the_second_serial_port_written_to_a_file() {
        let mut config = kernel_config(Machine::Q35, 1);
        config.pcap = Some(PathBuf::from("/tmp/drops.pcap"));
        let line = rendered(&config);
        let console = line.find("-serial stdio").expect("the console");
        let capture = line
            .find("-chardev file,id=moat-pcap,path=/tmp/drops.pcap -serial chardev:moat-pcap")
            .expect("the capture");
        assert!(console < capture, "COM1 stays the console: {line}");
        config.machine = Machine::Microvm;
        config.watchdog = false;
        let error = config.args().unwrap_err();
        assert!(error.to_string().contains("serial port"), "{error}");
    }

    #[test]
    fn more_than_eight_nics_are_refused() {
        let error = kernel_config(Machine::Q35, MAX_NICS + 1)
            .args()
            .unwrap_err();
        assert!(error.to_string().contains("at most 8"), "{error}");
    }

    #[test]
    fn a_missing_kernel_is_reported_before_qemu_runs() {
        let mut config = kernel_config(Machine::Q35, 0);
        config.boot = Boot::Kernel {
            elf: "/nonexistent/moat.elf".into(),
            cmdline: String::new(),
        };
        let error = config.args().unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent/moat.elf"),
            "{error}"
        );
    }

    #[test]
    fn disks_boot_through_the_machine_controller_without_being_written() {
        assert_eq!(
            disk_drive(std::path::Path::new("/a/moat.qcow2")),
            "file=/a/moat.qcow2,format=qcow2,if=ide,media=disk,snapshot=on"
        );
        assert!(disk_drive(std::path::Path::new("/a/moat.img")).contains("format=raw"));
    }
}
