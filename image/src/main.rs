//! `image`: build Moat's boot artifacts and boot them under QEMU.
//!
//! ```text
//! cargo run -p image -- build [--rules FILE] [--features fault-injection]
//! cargo run -p image -- run [--machine q35|pc|microvm] [--accel auto|kvm|tcg]
//!                           [--boot kernel|bios|uefi] [--memory MIB] [--nic SPEC]...
//! cargo run -p image -- libvirt-xml [--boot kernel|bios|uefi] [--nic network:NAME|bridge:NAME|tap:IF]...
//! cargo run -p image -- accel
//! ```

use std::ffi::OsString;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use image::accel::{self, AccelRequest};
use image::artifacts::{self, Artifacts, BuildRequest};
use image::kernel_build::Diagnostics;
use image::libvirt::{Domain, DomainType, LibvirtConsole, LibvirtNic};
use image::qemu::{Boot, BootPath, Console, Firmware, Machine, Nic, NicBackend, QemuConfig};
use image::workspace::Workspace;
use image::{Error, Result};

/// Build Moat's boot artifacts and boot them under QEMU.
#[derive(Parser)]
#[command(name = "image", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the kernel and write moat.elf, moat.img (BIOS+UEFI) and moat.qcow2.
    Build(BuildArgs),
    /// Boot an artifact under QEMU with the serial console on this terminal.
    Run(RunArgs),
    /// Write a libvirt domain XML for the built image (for `virsh define`).
    LibvirtXml(LibvirtArgs),
    /// Print the accelerator `auto` chooses on this host, and why.
    Accel,
}

#[derive(Args)]
struct LibvirtArgs {
    /// The domain's name.
    #[arg(long, default_value = "moat")]
    name: String,
    /// Domain type: kvm, or qemu (TCG: where KVM is missing or slower, as `image accel` tells).
    #[arg(long = "type", value_enum, default_value = "kvm")]
    domain_type: DomainType,
    /// Machine type: q35 or pc.
    #[arg(long, default_value = "q35")]
    machine: Machine,
    /// Boot path: kernel (moat.elf), bios or uefi (moat.qcow2 through GRUB).
    #[arg(long, default_value = "kernel")]
    boot: BootPath,
    /// Firmware before a direct kernel boot on q35 or pc: default (SeaBIOS) or qboot
    /// (starts the kernel in about half the time; the kernel assigns the PCI BARs).
    #[arg(long, default_value = "default")]
    firmware: Firmware,
    /// Guest RAM in MiB [default: 64, 128 for uefi].
    #[arg(long, short = 'm', value_name = "MIB")]
    memory: Option<u32>,
    /// A NIC, in order nic0, nic1, ...: `network:NAME` (a libvirt network), `bridge:NAME`
    /// or `tap:IFNAME` (an existing tap) [default: nic0 network:default, nic1 bridge:moat-lan].
    #[arg(long = "nic", value_name = "SPEC")]
    nics: Vec<LibvirtNic>,
    /// Serial console: `pty` (`virsh console`) or `file:PATH`.
    #[arg(long, default_value = "pty", value_name = "pty|file:PATH")]
    console: LibvirtConsole,
    /// Kernel command line (kernel boot only).
    #[arg(long, default_value = "", value_name = "CMDLINE")]
    append: String,
    /// Directory holding the artifacts the domain boots [default: <target>/moat].
    #[arg(long, value_name = "DIR")]
    artifacts: Option<PathBuf>,
    /// Write the XML to this file instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct BuildArgs {
    /// Ruleset to compile into the image [default: rules/default.rules].
    #[arg(long, env = "MOAT_RULES", value_name = "FILE")]
    rules: Option<PathBuf>,
    /// Cargo features of the kernel (e.g. fault-injection, for tests only).
    #[arg(long, value_delimiter = ',', value_name = "FEATURE")]
    features: Vec<String>,
    /// Kernel command line GRUB passes when booting the disk image.
    #[arg(long, default_value = "", value_name = "CMDLINE")]
    cmdline: String,
    /// Directory to write the artifacts to [default: <target>/moat].
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Write the ruleset into this already built Moat kernel ELF (cargo's
    /// target/x86_64-unknown-none/release/moat) instead of building the kernel.
    #[arg(long, value_name = "FILE", conflicts_with = "features")]
    elf: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    /// Machine type: q35, pc or microvm (microvm boots the kernel directly only).
    #[arg(long, default_value = "q35")]
    machine: Machine,
    /// Accelerator: auto (measure, pick the faster), kvm or tcg. MOAT_ACCEL=kvm|tcg forces.
    #[arg(long, default_value = "auto")]
    accel: AccelRequest,
    /// Boot path: kernel (PVH, `-kernel`), bios (SeaBIOS + GRUB) or uefi (OVMF + GRUB).
    #[arg(long, default_value = "kernel")]
    boot: BootPath,
    /// Firmware before a direct kernel boot on q35 or pc: default (SeaBIOS) or qboot
    /// (starts the kernel in about half the time; the kernel assigns the PCI BARs).
    #[arg(long, default_value = "default")]
    firmware: Firmware,
    /// Guest RAM in MiB [default: 64, 128 for uefi].
    #[arg(long, short = 'm', value_name = "MIB")]
    memory: Option<u32>,
    /// A NIC, in order nic0, nic1, ...: `user` (QEMU user networking), `tap:IFNAME`,
    /// `plain-tap:IFNAME` (a tap without offloads) or `dgram:LOCAL_SOCKET:REMOTE_SOCKET`
    /// (unix datagram sockets) [default: nic0 user, nic1 a dgram socket pair under
    /// <target>/moat/run for a client VM].
    #[arg(long = "nic", value_name = "SPEC")]
    nics: Vec<NicBackend>,
    /// Kernel command line (direct kernel boot only), e.g. `moat.fault=page`.
    #[arg(long, default_value = "", value_name = "CMDLINE")]
    append: String,
    /// Directory holding the artifacts [default: <target>/moat].
    #[arg(long, value_name = "DIR")]
    artifacts: Option<PathBuf>,
    /// Boot this file instead of the artifact (an ELF for kernel, a disk for bios/uefi;
    /// `.qcow2` disks are opened as qcow2).
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Open a QMP socket here (e.g. for `system_powerdown`).
    #[arg(long, value_name = "PATH")]
    qmp: Option<PathBuf>,
    /// Add isa-debug-exit so a fatal kernel error ends QEMU with status 3.
    #[arg(long)]
    debug_exit: bool,
    /// CPU model for `-cpu` [default: QEMU's].
    #[arg(long, value_name = "MODEL")]
    cpu: Option<String>,
    /// Write the packet capture (dropped packets, pcap format, for `tcpdump -r` and
    /// Wireshark) to this file, through a second serial port (q35 and pc).
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Print the QEMU command line and exit without booting.
    #[arg(long)]
    dry_run: bool,
    /// Extra QEMU arguments, after `--`.
    #[arg(last = true, value_name = "QEMU_ARGS")]
    qemu_args: Vec<OsString>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Build(args) => build(args),
        Command::Run(args) => run(args),
        Command::LibvirtXml(args) => libvirt_xml(args),
        Command::Accel => accel::choose(AccelRequest::Auto).map(|choice| println!("{choice}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("image: error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn build(args: BuildArgs) -> Result<()> {
    let workspace = Workspace::discover()?;
    let request = BuildRequest {
        rules: args.rules,
        features: args.features,
        kernel_elf: args.elf,
        kernel_cmdline: args.cmdline,
        out_dir: args.out_dir,
        diagnostics: Diagnostics::Terminal,
    };
    print_digests(&artifacts::build(&workspace, &request)?)
}

fn print_digests(artifacts: &Artifacts) -> Result<()> {
    for digest in artifacts.digests()? {
        println!("{digest}");
    }
    Ok(())
}

fn run(args: RunArgs) -> Result<()> {
    let workspace = Workspace::discover()?;
    let artifact_dir = args
        .artifacts
        .clone()
        .unwrap_or_else(|| workspace.artifact_dir());
    let artifacts = Artifacts::in_dir(&artifact_dir);
    let mut boot = args.boot.boot_from(&artifacts, &args.append);
    if let Some(file) = &args.file {
        boot = match boot {
            Boot::Kernel { cmdline, .. } => Boot::Kernel {
                elf: file.clone(),
                cmdline,
            },
            Boot::Bios { .. } => Boot::Bios { disk: file.clone() },
            Boot::Uefi { .. } => Boot::Uefi { disk: file.clone() },
        };
    }
    if !args.append.is_empty() && args.boot != BootPath::Kernel {
        return Err(Error::InvalidRequest(
            "--append works with --boot kernel only; the disk image's command line is set by `image build --cmdline`"
                .into(),
        ));
    }

    let nics = if args.nics.is_empty() {
        default_nics(&artifact_dir)?
    } else {
        args.nics.clone()
    };
    for backend in &nics {
        if let NicBackend::UnixDgram { local, .. } = backend {
            remove_stale_socket(local)?;
        }
    }
    if !boot.file().is_file() {
        return Err(Error::MissingArtifact {
            path: boot.file().clone(),
        });
    }
    let choice = accel::choose(args.accel)?;
    eprintln!("image: {choice}");

    let mut config = QemuConfig::new(args.machine, choice.accel, boot);
    config.firmware = args.firmware;
    if let Some(memory) = args.memory {
        config.memory_mib = memory;
    }
    config.nics = nics
        .into_iter()
        .enumerate()
        .map(|(index, backend)| Nic::new(index, backend))
        .collect();
    config.console = Console::Terminal;
    config.qmp_socket = args.qmp;
    config.debug_exit = args.debug_exit;
    config.cpu = args.cpu;
    config.pcap = args.pcap.clone();
    config.extra_args = args.qemu_args;
    let line = config.command_line()?;
    describe_nics(&config.nics);
    if let Some(pcap) = &args.pcap {
        eprintln!(
            "image: packet capture of dropped packets -> {} (tcpdump -r {} after the VM stops)",
            pcap.display(),
            pcap.display()
        );
    }
    eprintln!("image: {line}");
    if args.dry_run {
        return Ok(());
    }
    eprintln!("image: serial console follows; Ctrl-A X quits, Ctrl-A C opens the QEMU monitor");
    let error = line.command().exec();
    Err(Error::Spawn {
        program: line.program.display().to_string(),
        source: error,
    })
}

fn libvirt_xml(args: LibvirtArgs) -> Result<()> {
    let artifact_dir = match args.artifacts {
        Some(dir) => dir,
        None => Workspace::discover()?.artifact_dir(),
    };
    let artifact_dir = std::path::absolute(&artifact_dir).map_err(Error::io(&artifact_dir))?;
    if !args.append.is_empty() && args.boot != BootPath::Kernel {
        return Err(Error::InvalidRequest(
            "--append works with --boot kernel only; the disk image's command line is set by `image build --cmdline`"
                .into(),
        ));
    }
    let artifacts = Artifacts::in_dir(&artifact_dir);
    // libvirt gets the qcow2 (what its storage tools expect); QEMU's command line the raw disk.
    let boot = match args.boot.boot_from(&artifacts, &args.append) {
        Boot::Bios { .. } => Boot::Bios {
            disk: artifacts.qcow2.clone(),
        },
        Boot::Uefi { .. } => Boot::Uefi {
            disk: artifacts.qcow2.clone(),
        },
        kernel => kernel,
    };
    let nics = if args.nics.is_empty() {
        vec![
            LibvirtNic::Network("default".into()),
            LibvirtNic::Bridge("moat-lan".into()),
        ]
    } else {
        args.nics
    };
    let domain = Domain {
        name: args.name,
        domain_type: args.domain_type,
        machine: args.machine,
        memory_mib: args.memory.unwrap_or(args.boot.default_memory_mib()),
        ovmf: (args.boot == BootPath::Uefi)
            .then(image::host_tools::locate_ovmf)
            .transpose()?,
        boot,
        nics,
        console: args.console,
    };
    let xml = domain.render()?;
    match &args.out {
        Some(path) => std::fs::write(path, xml).map_err(Error::io(path)),
        None => {
            print!("{xml}");
            Ok(())
        }
    }
}

/// nic0 on QEMU user networking (the uplink, no root needed) and nic1 on a unix datagram
/// socket pair a client VM can attach to.
fn default_nics(artifact_dir: &Path) -> Result<Vec<NicBackend>> {
    let socket_dir = artifact_dir.join("run");
    std::fs::create_dir_all(&socket_dir).map_err(Error::io(&socket_dir))?;
    Ok(vec![
        NicBackend::User,
        NicBackend::UnixDgram {
            local: socket_dir.join("nic1.sock"),
            remote: socket_dir.join("nic1-peer.sock"),
        },
    ])
}

fn describe_nics(nics: &[Nic]) {
    for (index, nic) in nics.iter().enumerate() {
        let wiring = match &nic.backend {
            NicBackend::User => "QEMU user networking (10.0.2.0/24, gateway 10.0.2.2)".to_string(),
            NicBackend::Tap { ifname } => format!("tap device {ifname}"),
            NicBackend::TapFd { fd } => format!("tap device open as descriptor {fd}"),
            NicBackend::PlainTap { ifname } => {
                format!("tap device {ifname}, without the virtio-net header (no offloads)")
            }
            NicBackend::UnixDgram { local, remote } => format!(
                "unix datagram socket {}; attach a client VM with -netdev dgram,id=n,local.type=unix,local.path={},remote.type=unix,remote.path={}",
                local.display(),
                remote.display(),
                local.display()
            ),
        };
        eprintln!("image: nic{index} {}: {wiring}", nic.mac);
    }
}

/// QEMU cannot bind a datagram socket whose file is left over from a previous run.
fn remove_stale_socket(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(Error::io(path))
        }
        Ok(_) => Err(Error::InvalidRequest(format!(
            "{} exists and is not a socket; not removing it",
            path.display()
        ))),
        Err(_) => Ok(()),
    }
}
