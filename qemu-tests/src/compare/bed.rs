//! One firewall VM — Moat, or the Linux comparator — on the comparison's topology: three
//! NICs on taps into network namespaces (the uplink's namespace plays the internet, one
//! client namespace per client network, as [`crate::tap_appliance`] wires Moat for the
//! real-client tests), the same QEMU machine, accelerator and memory for both.
//!
//! [`Bed::boot`] prepares the namespaces, their taps (made inside them, addressed, handed to
//! QEMU open, as libvirt does: [`crate::tap_fd`]) and the servers first, then starts QEMU
//! and pings the internet server from a client every 5 ms until the first reply: the time
//! from QEMU's start to that reply is the firewall's time to its first forwarded packet,
//! measured the same way for both, with no host set-up inside it.

use std::net::SocketAddrV4;
use std::process::Child;
use std::time::{Duration, Instant};

use image::accel::Accel;
use image::qemu::{stop, BootPath, Firmware, MacAddress, Machine, NicBackend};

use crate::addressing::{appliance_address, INTERNET_SERVER};
use crate::connection_rate::ConnectionSink;
use crate::forwarding_ruleset::{ALPHA_NIC, NICS};
use crate::kernels::KernelVariant;
use crate::linux_vm::vm::LinuxVm;
use crate::linux_vm::LinuxImage;
use crate::path_measures::CONNECTION_PORT;
use crate::qemu_process::QemuProcess;
use crate::tap_appliance::{address_all_in_place, client_on};
use crate::tap_fd::inheritable;
use crate::test_host::TestHost;
use crate::uplink_services::UplinkServices;
use crate::vm::{NicWiring, Vm, VmSpec};
use crate::{Failure, Outcome};

/// The first-packet ping's interval (root may go this low).
const PING_INTERVAL: &str = "0.005";

/// The firmware both firewalls start from: qboot, which starts a direct kernel boot in
/// about half of SeaBIOS's time under TCG (each kernel assigns the PCI BARs qboot leaves
/// unassigned), so that the measure is of the firewalls more than of the firmware.
pub const FIRMWARE: Firmware = Firmware::Qboot;

/// What to boot.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// Moat, built with this kernel variant.
    Moat(KernelVariant),
    /// The Linux comparator, this image.
    Linux(&'a LinuxImage),
}

impl Subject<'_> {
    /// Short name for tables.
    pub fn name(&self) -> String {
        match self {
            Subject::Moat(variant) => format!("Moat ({})", variant.name),
            Subject::Linux(image) => format!("Linux ({})", image.variant.name),
        }
    }
}

/// The running VM.
pub enum Firewall {
    /// Moat.
    Moat(Box<Vm>),
    /// The Linux comparator.
    Linux(LinuxVm),
}

impl Firewall {
    fn started(&self) -> Instant {
        match self {
            Firewall::Moat(vm) => vm.started(),
            Firewall::Linux(vm) => vm.started(),
        }
    }

    fn pid(&self) -> u32 {
        match self {
            Firewall::Moat(vm) => vm.pid(),
            Firewall::Linux(vm) => vm.pid(),
        }
    }

    /// Waits until the firewall reports it is ready (Moat's NIC lines checked too).
    pub fn wait_ready(&self, timeout: Duration) -> Outcome {
        match self {
            Firewall::Moat(vm) => vm.wait_ready().map(|_| ()),
            Firewall::Linux(vm) => vm.wait_ready(timeout),
        }
    }

    /// The serial console so far.
    pub fn transcript(&self) -> String {
        match self {
            Firewall::Moat(vm) => vm.console().transcript(),
            Firewall::Linux(vm) => vm.console().transcript(),
        }
    }

    /// Console lines so far.
    pub fn lines(&self) -> Vec<String> {
        match self {
            Firewall::Moat(vm) => vm.console().lines(),
            Firewall::Linux(vm) => vm.console().lines(),
        }
    }
}

/// A booted firewall between its hosts. Dropped in field order: QEMU first, then the
/// servers, then the namespaces and taps.
pub struct Bed {
    /// The VM.
    pub firewall: Firewall,
    /// Its QEMU process (CPU time).
    pub qemu: QemuProcess,
    /// From QEMU's start to the first ping reply through the firewall.
    pub first_forward: Duration,
    _services: Option<(UplinkServices, ConnectionSink)>,
    /// The uplink's host (the internet).
    pub uplink: TestHost,
    /// The client hosts: `clients[i - 1]` on `nic<i>`.
    pub clients: Vec<TestHost>,
}

impl Bed {
    /// Boots `subject` with `memory_mib` of RAM under `accel`; with `services`, the
    /// internet's servers (iperf3, web, DNS, a connection sink) run in the uplink's
    /// namespace. Fails if no ping passes within `timeout`, or QEMU ends first.
    pub fn boot(
        subject: Subject,
        accel: Accel,
        memory_mib: u32,
        services: bool,
        timeout: Duration,
    ) -> Outcome<Bed> {
        // Every host's side of the topology is ready before QEMU starts, as libvirt
        // prepares a VM's taps: each tap is made inside its host's namespace, addressed
        // there, and handed to QEMU open. The time measured is QEMU's and the guest's.
        let (uplink, uplink_tap) = TestHost::create_with_open_tap()?;
        let mut tap_fds = vec![uplink_tap];
        let mut clients = Vec::new();
        for _ in 1..NICS {
            let (client, tap) = TestHost::create_with_open_tap()?;
            clients.push(client);
            tap_fds.push(tap);
        }
        address_all_in_place(&uplink, &clients)?;
        let services = if services {
            let internet = UplinkServices::start(&uplink)?;
            let sink = ConnectionSink::start(
                uplink.namespace(),
                SocketAddrV4::new(INTERNET_SERVER, CONNECTION_PORT),
            )?;
            Some((internet, sink))
        } else {
            uplink.run_checked(
                "ip",
                &["addr", "add", &format!("{INTERNET_SERVER}/32"), "dev", "lo"],
            )?;
            None
        };
        let alpha = &clients[ALPHA_NIC - 1];
        // The connection-rate measure opens tens of thousands of connections: give the
        // client every port above 1023, so that it reuses a port (and its tuple) as late
        // as it can.
        alpha.run_checked(
            "sysctl",
            &["-q", "-w", "net.ipv4.ip_local_port_range=1024 65535"],
        )?;
        // The client knows its gateway's MAC (the firewall's nic1): no ARP while the VM
        // boots, whose failures would end the ping with "host unreachable".
        alpha.run_checked(
            "ip",
            &[
                "neigh",
                "replace",
                &appliance_address(ALPHA_NIC).address().to_string(),
                "lladdr",
                &MacAddress::for_nic(ALPHA_NIC).to_string(),
                "dev",
                alpha.tap(),
                "nud",
                "permanent",
            ],
        )?;
        let fds = tap_fds
            .iter()
            .map(inheritable)
            .collect::<Outcome<Vec<_>>>()?;
        let firewall = match subject {
            Subject::Moat(variant) => {
                let mut spec = VmSpec::new(Machine::Q35, BootPath::Kernel, NICS);
                spec.variant = variant;
                spec.accel = Some(accel);
                spec.firmware = FIRMWARE;
                spec.memory_mib = Some(memory_mib);
                spec.ready_timeout = Some(timeout);
                spec.report_on_drop = false;
                spec.nics = fds.iter().map(|&fd| NicWiring::TapFd(fd)).collect();
                Firewall::Moat(Box::new(Vm::start(spec)?))
            }
            Subject::Linux(image) => {
                let backends: Vec<NicBackend> =
                    fds.iter().map(|&fd| NicBackend::TapFd { fd }).collect();
                Firewall::Linux(LinuxVm::start(
                    image, accel, FIRMWARE, memory_mib, &backends,
                )?)
            }
        };
        // QEMU holds the taps now: only its descriptors may keep them alive.
        drop(tap_fds);
        let qemu = QemuProcess::of_pid(firewall.pid());
        let first_forward =
            first_forward(alpha, &qemu, firewall.started(), timeout).map_err(|failure| {
                Failure::new(format!(
                    "{failure}\n---- {} console ----\n{}",
                    subject.name(),
                    firewall.transcript()
                ))
            })?;
        Ok(Bed {
            firewall,
            qemu,
            first_forward,
            _services: services,
            uplink,
            clients,
        })
    }

    /// The client host on `nic<nic>`.
    pub fn client(&self, nic: usize) -> Outcome<&TestHost> {
        client_on(&self.clients, nic)
    }
}

/// Pings the internet server from `client` until a reply comes back: the time since
/// `started`. Fails when QEMU ends or `timeout` passes first.
fn first_forward(
    client: &TestHost,
    qemu: &QemuProcess,
    started: Instant,
    timeout: Duration,
) -> Outcome<Duration> {
    let deadline = started + timeout;
    let seconds = timeout.as_secs().max(1).to_string();
    let target = INTERNET_SERVER.to_string();
    let args = [
        "-n",
        "-q",
        "-c",
        "1",
        "-w",
        &seconds,
        "-i",
        PING_INTERVAL,
        &target,
    ];
    let mut ping: Child = client.spawn("ping", &args)?;
    loop {
        match ping.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(started.elapsed()),
            // An ICMP error ended it (a VM still setting up may send one): ping again.
            Ok(Some(_)) => ping = client.spawn("ping", &args)?,
            Ok(None) => {}
            Err(error) => return Err(Failure::new(format!("waiting for ping: {error}"))),
        }
        if !qemu.is_running() {
            stop(&mut ping);
            return Err(Failure::new("QEMU ended before a ping passed"));
        }
        if Instant::now() >= deadline {
            stop(&mut ping);
            return Err(Failure::new(format!(
                "no ping reply from {target} through the firewall within {} s",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
