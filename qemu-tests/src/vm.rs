//! One appliance under test: QEMU started from a [`VmSpec`], its console, the test end of
//! each dgram NIC, and a QMP socket. Dropping a [`Vm`] always kills QEMU and removes its
//! sockets, also when the test panicked; it then prints the serial console, which libtest
//! shows for failing tests only.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use image::accel::Accel;
use image::qemu::{
    stop, wait_until, Boot, BootPath, Firmware, MacAddress, Machine, Nic, NicBackend, QemuConfig,
};

use crate::accel::harness_accel;
use crate::addressing::{appliance_address, host_address, host_mac};
use crate::boot_report::{BootReport, NicIpv4, WatchdogReport, FATAL_PREFIX, READY_LINE};
use crate::console::Console;
use crate::kernels::{artifacts, KernelVariant};
use crate::leftovers::{owned_name, owner_is_dead};
use crate::qmp::Qmp;
use crate::segment_host::SegmentHost;
use crate::{ensure, Failure, Outcome};
use dataplane::testutil::link::Station;

/// The packet capture's file name in a VM's run directory.
const PCAP_FILE: &str = "capture.pcap";

/// How one NIC is wired on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NicWiring {
    /// A unix datagram socket pair whose test end is a [`SegmentHost`] (rootless).
    Dgram,
    /// An existing tap device (root).
    Tap(String),
    /// An existing tap device opened without the virtio-net header (root): the NIC gets no
    /// offloads.
    PlainTap(String),
    /// A tap device already open in this process, passed to QEMU by descriptor number (see
    /// [`crate::tap_fd`]; the descriptor must be inheritable).
    TapFd(i32),
}

/// What to boot, and how.
#[derive(Debug, Clone)]
pub struct VmSpec {
    /// Machine type.
    pub machine: Machine,
    /// Boot path.
    pub boot: BootPath,
    /// Which kernel build.
    pub variant: KernelVariant,
    /// NICs in order.
    pub nics: Vec<NicWiring>,
    /// Guest RAM; `None` for the boot path's default.
    pub memory_mib: Option<u32>,
    /// Kernel command line (direct kernel boot).
    pub kernel_cmdline: String,
    /// Accelerator; `None` for the suite's automatic choice.
    pub accel: Option<Accel>,
    /// How long the boot may take to reach `moat: ready`; `None` for the path's default.
    pub ready_timeout: Option<Duration>,
    /// Boot the qcow2 conversion instead of the raw disk (bios and uefi paths).
    pub qcow2: bool,
    /// Add `isa-debug-exit`, so that a fatal error ends QEMU with status 3.
    pub debug_exit: bool,
    /// Add the i6300ESB watchdog (default: where the machine offers it, as `image run` does).
    pub watchdog: bool,
    /// The firmware before a direct kernel boot (default: QEMU's).
    pub firmware: Firmware,
    /// Pass `-no-reboot` (default): a reset ends QEMU instead of rebooting the appliance.
    pub no_reboot: bool,
    /// QEMU arguments appended verbatim (e.g. `-global virtio-net-pci.vectors=0`).
    pub extra_qemu_args: Vec<String>,
    /// Wire the packet capture (COM2) to a file in the VM's run directory
    /// ([`Vm::pcap_path`]).
    pub pcap: bool,
    /// Print the command line and serial console when the VM is dropped (libtest shows it
    /// for failing tests only; benches turn it off).
    pub report_on_drop: bool,
    /// The addresses the kernel's ruleset gives its NICs, in NIC order, when they are not
    /// the address plan's ([`appliance_address`]): checked against the boot report.
    pub addresses: Option<Vec<smoltcp::wire::Ipv4Cidr>>,
    /// The size of the pipe QEMU writes the console to, when not the system's default
    /// (64 KiB): a test of a console nobody reads fills a small one sooner.
    pub console_pipe_bytes: Option<usize>,
}

impl VmSpec {
    /// The release kernel on `machine` by `boot`, with `nics` dgram NICs.
    pub fn new(machine: Machine, boot: BootPath, nics: usize) -> VmSpec {
        VmSpec {
            machine,
            boot,
            variant: KernelVariant::RELEASE,
            nics: vec![NicWiring::Dgram; nics],
            memory_mib: None,
            kernel_cmdline: String::new(),
            accel: None,
            ready_timeout: None,
            qcow2: false,
            debug_exit: true,
            watchdog: machine.offers_watchdog(),
            firmware: Firmware::Default,
            no_reboot: true,
            extra_qemu_args: Vec::new(),
            pcap: false,
            report_on_drop: true,
            addresses: None,
            console_pipe_bytes: None,
        }
    }

    /// How each NIC should say it interrupts (a prefix of its interrupt words): `msi-x` on
    /// PCI machines, `intx gsi` when the spec turns MSI-X off (`virtio-net-pci.vectors=0`),
    /// `gsi` (its own line) for virtio-mmio.
    pub fn expected_nic_interrupt(&self) -> &'static str {
        let msix_off = self
            .extra_qemu_args
            .iter()
            .any(|arg| arg.contains("virtio-net-pci.vectors=0"));
        match self.machine {
            Machine::Microvm => "gsi",
            Machine::Q35 | Machine::Pc if msix_off => "intx gsi",
            Machine::Q35 | Machine::Pc => "msi-x",
        }
    }

    /// Generous time to `moat: ready` for an emulated CPU on a busy host; firmware and GRUB
    /// dominate the disk paths.
    pub fn default_ready_timeout(boot: BootPath) -> Duration {
        Duration::from_secs(match boot {
            BootPath::Kernel => 90,
            BootPath::Bios => 180,
            BootPath::Uefi => 300,
        })
    }
}

/// A running appliance.
pub struct Vm {
    child: Child,
    console: Console,
    qemu_errors: Arc<Mutex<String>>,
    hosts: Vec<Option<SegmentHost>>,
    run_dir: PathBuf,
    qmp_socket: PathBuf,
    spec: VmSpec,
    accel: Accel,
    command_line: String,
    started: Instant,
}

impl Vm {
    /// Builds (once) the kernel the spec needs and starts QEMU.
    pub fn start(spec: VmSpec) -> Outcome<Vm> {
        let artifacts = artifacts(spec.variant)?;
        Vm::start_from(spec, &artifacts)
    }

    /// Starts QEMU on `artifacts` instead of the spec's kernel variant (e.g. a kernel ELF a
    /// test modified).
    pub fn start_from(spec: VmSpec, artifacts: &image::artifacts::Artifacts) -> Outcome<Vm> {
        let accel = match spec.accel {
            Some(accel) => accel,
            None => harness_accel()?,
        };
        let run_dir = new_run_dir()?;
        let result = Vm::start_in(spec, artifacts, accel, &run_dir);
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&run_dir);
        }
        result
    }

    fn start_in(
        spec: VmSpec,
        artifacts: &image::artifacts::Artifacts,
        accel: Accel,
        run_dir: &Path,
    ) -> Outcome<Vm> {
        let mut nics = Vec::new();
        let mut hosts = Vec::new();
        for (index, wiring) in spec.nics.iter().enumerate() {
            let (backend, host) = match wiring {
                NicWiring::Dgram => {
                    let host_socket = run_dir.join(format!("nic{index}-host.sock"));
                    let vm_socket = run_dir.join(format!("nic{index}-vm.sock"));
                    let station = Station {
                        mac: host_mac(index),
                        ip: host_address(index),
                    };
                    let host = SegmentHost::bind(index, station, &host_socket, &vm_socket)?;
                    (
                        NicBackend::UnixDgram {
                            local: vm_socket,
                            remote: host_socket,
                        },
                        Some(host),
                    )
                }
                NicWiring::Tap(ifname) => (
                    NicBackend::Tap {
                        ifname: ifname.clone(),
                    },
                    None,
                ),
                NicWiring::PlainTap(ifname) => (
                    NicBackend::PlainTap {
                        ifname: ifname.clone(),
                    },
                    None,
                ),
                NicWiring::TapFd(fd) => (NicBackend::TapFd { fd: *fd }, None),
            };
            nics.push(Nic::new(index, backend));
            hosts.push(host);
        }
        let qmp_socket = run_dir.join("qmp.sock");
        let mut boot = spec.boot.boot_from(artifacts, &spec.kernel_cmdline);
        if spec.qcow2 {
            boot = match boot {
                Boot::Bios { .. } => Boot::Bios {
                    disk: artifacts.qcow2.clone(),
                },
                Boot::Uefi { .. } => Boot::Uefi {
                    disk: artifacts.qcow2.clone(),
                },
                kernel @ Boot::Kernel { .. } => kernel,
            };
        }
        let mut config = QemuConfig::new(spec.machine, accel, boot);
        if let Some(memory) = spec.memory_mib {
            config.memory_mib = memory;
        }
        config.nics = nics;
        config.qmp_socket = Some(qmp_socket.clone());
        config.debug_exit = spec.debug_exit;
        config.watchdog = spec.watchdog;
        config.firmware = spec.firmware;
        config.no_reboot = spec.no_reboot;
        config.extra_args = spec.extra_qemu_args.iter().map(Into::into).collect();
        config.pcap = spec.pcap.then(|| run_dir.join(PCAP_FILE));
        let line = config.command_line()?;

        let mut child = line.spawn_piped()?;
        let started = Instant::now();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Failure::new("QEMU's stdout is not piped"))?;
        if let Some(bytes) = spec.console_pipe_bytes {
            resize_pipe(&stdout, bytes)?;
        }
        let console = Console::attach(stdout);
        let qemu_errors = Arc::new(Mutex::new(String::new()));
        if let Some(mut stderr) = child.stderr.take() {
            let sink = Arc::clone(&qemu_errors);
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text);
                sink.lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push_str(&text);
            });
        }
        Ok(Vm {
            child,
            console,
            qemu_errors,
            hosts,
            run_dir: run_dir.to_path_buf(),
            qmp_socket,
            spec,
            accel,
            command_line: line.to_string(),
            started,
        })
    }

    /// The serial console.
    pub fn console(&self) -> &Console {
        &self.console
    }

    /// The accelerator this VM runs with.
    pub fn accel(&self) -> Accel {
        self.accel
    }

    /// When QEMU was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The test end of `nic<index>` (dgram NICs only).
    pub fn host(&self, index: usize) -> Outcome<&SegmentHost> {
        self.hosts
            .get(index)
            .and_then(Option::as_ref)
            .ok_or_else(|| Failure::new(format!("nic{index} is not a dgram NIC of this VM")))
    }

    /// Short description for messages: machine, boot path, NIC count, accelerator.
    pub fn describe(&self) -> String {
        format!(
            "{} {}{} boot, {} NIC(s), {}, {} kernel",
            self.spec.machine,
            self.spec.boot,
            if self.spec.qcow2 { " (qcow2)" } else { "" },
            self.spec.nics.len(),
            self.accel,
            self.spec.variant.name
        )
    }

    /// Waits for `moat: ready` (failing early on a fatal report or a QEMU exit), then checks
    /// the banner and that each NIC line names the expected MAC, transport and address.
    pub fn wait_ready(&self) -> Outcome<BootReport> {
        let timeout = self
            .spec
            .ready_timeout
            .unwrap_or_else(|| VmSpec::default_ready_timeout(self.spec.boot));
        self.console
            .wait_for_ready(&self.describe(), READY_LINE, timeout, |line| {
                line.starts_with(FATAL_PREFIX)
            })
            .map_err(|failure| self.with_qemu_errors(failure))?;
        let report = BootReport::parse(&self.console.lines())?;
        self.check_nics(&report)?;
        self.check_ready_once()?;
        Ok(report)
    }

    /// Fails if the kernel printed a fatal report or booted more than once (a reset, e.g.
    /// by the watchdog, with `-no-reboot` off).
    pub fn check_still_the_first_boot(&self) -> Outcome {
        let fatal = self.console.count(|line| line.starts_with(FATAL_PREFIX));
        ensure(fatal == 0, || {
            "the appliance printed a fatal report".to_string()
        })?;
        self.check_ready_once()
    }

    /// Fails unless `moat: ready` has appeared exactly once so far.
    pub fn check_ready_once(&self) -> Outcome {
        let count = self.console.count(|line| line == READY_LINE);
        ensure(count == 1, || {
            format!("`{READY_LINE}` appeared {count} times, expected exactly once")
        })
    }

    fn check_nics(&self, report: &BootReport) -> Outcome {
        ensure(report.nics.len() == self.spec.nics.len(), || {
            format!(
                "the kernel reported {} NIC(s), QEMU has {}",
                report.nics.len(),
                self.spec.nics.len()
            )
        })?;
        for (position, nic) in report.nics.iter().enumerate() {
            let expected_mac = MacAddress::for_nic(position);
            ensure(nic.index == position, || {
                format!("NIC line {position} names nic{}", nic.index)
            })?;
            ensure(nic.mac == expected_mac, || {
                format!(
                    "nic{position} has MAC {}, but the device in that slot has {expected_mac}",
                    nic.mac
                )
            })?;
            ensure(nic.transport == self.spec.machine.nic_transport(), || {
                format!(
                    "nic{position} transport {}, expected {}",
                    nic.transport,
                    self.spec.machine.nic_transport()
                )
            })?;
            let expected_interrupt = self.spec.expected_nic_interrupt();
            ensure(nic.interrupt.starts_with(expected_interrupt), || {
                format!(
                    "nic{position} interrupts by `{}`, expected `{expected_interrupt}`",
                    nic.interrupt
                )
            })?;
            let planned = self.spec.addresses.as_ref().and_then(|a| a.get(position));
            let expected_ipv4 = NicIpv4::Static(
                planned
                    .copied()
                    .unwrap_or_else(|| appliance_address(position)),
            );
            ensure(nic.ipv4 == expected_ipv4, || {
                format!(
                    "nic{position} ipv4 {:?}, expected {expected_ipv4:?}",
                    nic.ipv4
                )
            })?;
        }
        self.check_watchdog(report)
    }

    fn check_watchdog(&self, report: &BootReport) -> Outcome {
        let turned_off = self.spec.kernel_cmdline.contains("moat.watchdog=off");
        let as_expected = match &report.watchdog {
            Some(WatchdogReport::Running { .. }) => self.spec.watchdog && !turned_off,
            Some(WatchdogReport::Off) => self.spec.watchdog && turned_off,
            Some(WatchdogReport::Absent) => !self.spec.watchdog,
            None => false,
        };
        ensure(as_expected, || {
            format!(
                "the kernel reported the watchdog as {:?}, but QEMU {} one{}",
                report.watchdog,
                if self.spec.watchdog { "has" } else { "has no" },
                if turned_off {
                    " (moat.watchdog=off)"
                } else {
                    ""
                }
            )
        })
    }

    /// Presses the ACPI power button (what `virsh shutdown` does).
    pub fn power_button(&self) -> Outcome {
        match Qmp::connect(&self.qmp_socket)?.execute("system_powerdown") {
            Ok(_) => Ok(()),
            // The command went out and the appliance powered off before QEMU answered:
            // whether it exited cleanly is for `wait_exit` to tell.
            Err(failure) if failure.to_string().contains("QEMU closed the monitor") => Ok(()),
            Err(failure) => Err(failure),
        }
    }

    /// Runs a human-monitor command (`info registers`, `x/32gx 0x...`) and returns what it
    /// printed.
    pub fn monitor(&self, command_line: &str) -> Outcome<String> {
        let printed = Qmp::connect(&self.qmp_socket)?.execute_with(
            "human-monitor-command",
            serde_json::json!({ "command-line": command_line }),
        )?;
        printed
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Failure::new(format!("QMP human-monitor-command returned {printed}")))
    }

    /// The packet capture's file, if the spec asked for one (complete once QEMU exited).
    pub fn pcap_path(&self) -> Option<PathBuf> {
        self.spec.pcap.then(|| self.run_dir.join(PCAP_FILE))
    }

    /// The kernel ELF this VM boots (for symbolising addresses).
    pub fn kernel_elf(&self) -> Outcome<PathBuf> {
        Ok(artifacts(self.spec.variant)?.elf)
    }

    /// Waits for QEMU to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Outcome<ExitStatus> {
        match wait_until(&mut self.child, Instant::now() + timeout) {
            Ok(Some(status)) => Ok(status),
            Ok(None) => Err(Failure::new(format!(
                "QEMU ({}) still running {:.0} s after it should have exited",
                self.describe(),
                timeout.as_secs_f64()
            ))),
            Err(error) => Err(Failure::new(format!("waiting for QEMU: {error}"))),
        }
    }

    fn with_qemu_errors(&self, failure: Failure) -> Failure {
        let errors = self
            .qemu_errors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .trim()
            .to_string();
        if errors.is_empty() {
            failure
        } else {
            Failure::new(format!("{failure}\nQEMU said: {errors}"))
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        stop(&mut self.child);
        self.hosts.clear();
        let _ = std::fs::remove_dir_all(&self.run_dir);
        if !self.spec.report_on_drop {
            return;
        }
        // Captured by libtest, shown only if the test fails.
        eprintln!(
            "---- {} ----\n$ {}\n---- serial console ({:.1} s) ----\n{}\n---- QEMU stderr ----\n{}",
            self.describe(),
            self.command_line,
            self.started.elapsed().as_secs_f64(),
            self.console.transcript(),
            self.qemu_errors
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .trim()
        );
    }
}

/// Sets the capacity of the pipe `end` belongs to (Linux rounds it up to a page).
fn resize_pipe(end: &impl std::os::fd::AsRawFd, bytes: usize) -> Outcome {
    let size = libc::c_int::try_from(bytes)
        .map_err(|_| Failure::new(format!("a console pipe of {bytes} bytes is too big")))?;
    // SAFETY: F_SETPIPE_SZ only changes the capacity of the pipe behind a descriptor this
    // process owns (QEMU's stdout, held by `end` for the call).
    let result = unsafe { libc::fcntl(end.as_raw_fd(), libc::F_SETPIPE_SZ, size) };
    if result < 0 {
        return Err(Failure::new(format!(
            "resizing the console pipe to {bytes} bytes: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// A fresh directory for one VM's sockets. Unix socket paths must stay under 108 bytes, so it
/// lives directly in the temporary directory.
fn new_run_dir() -> Outcome<PathBuf> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static SWEEP: Once = Once::new();
    let base = std::env::temp_dir();
    let base = if base.as_os_str().len() > 40 {
        PathBuf::from("/tmp")
    } else {
        base
    };
    SWEEP.call_once(|| remove_run_dirs_of_dead_processes(&base));
    let dir = base.join(owned_name(
        RUN_DIR_PREFIX,
        NEXT.fetch_add(1, Ordering::Relaxed),
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .map_err(|error| Failure::new(format!("creating {}: {error}", dir.display())))?;
    Ok(dir)
}

const RUN_DIR_PREFIX: &str = "moat-qt-";

fn remove_run_dirs_of_dead_processes(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        if owner_is_dead(&entry.file_name().to_string_lossy(), RUN_DIR_PREFIX) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
