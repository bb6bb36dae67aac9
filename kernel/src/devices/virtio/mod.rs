//! virtio-net NICs: discovery over PCI (`q35`, `pc`) and MMIO (`microvm`, [`mmio`]), the
//! transports ([`pci`], [`transport`]) and the NICs themselves ([`net`]).
//!
//! NICs are named `nic0`..`nic7` in discovery order: PCI bus/slot/function order, or the
//! order of the `virtio_mmio.device=` entries on the kernel command line. Every device is
//! found first ([`discover_pci`], [`discover_mmio`]) and then brought up ([`bring_up`]),
//! so that each NIC's buffers can be sized from the memory there is for all of them.

pub mod hal;
pub mod mmio;
pub mod net;
pub mod pci;
pub mod transport;

use alloc::vec::Vec;
use core::fmt;

use virtio_drivers::transport::pci::bus::DeviceFunction;
use virtio_drivers::transport::pci::virtio_device_type;
use virtio_drivers::transport::DeviceType;

use super::ioapic::Trigger;
use super::pci::PciBus;
use crate::acpi::Firmware;
use crate::interrupts::{lines, Fired, Vector};
use net::Nic;
use pci::{QueueInterrupts, VirtioPciTransport};
use transport::NicTransport;

pub use mmio::discover_mmio;

/// Most NICs driven.
pub const MAX_NICS: usize = dataplane::policy::MAX_NICS;

/// Where a NIC sits.
#[derive(Clone, Copy, Debug)]
pub enum Location {
    /// A PCI function.
    Pci(DeviceFunction),
    /// A virtio-mmio window at this physical address.
    Mmio(u64),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Location::Pci(df) => write!(
                f,
                "virtio-pci 0000:{:02x}:{:02x}.{}",
                df.bus, df.device, df.function
            ),
            Location::Mmio(addr) => write!(f, "virtio-mmio {addr:#x}"),
        }
    }
}

/// What kind of interrupt line a NIC has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    /// A PCI INTx pin, routed by the chipset to a GSI.
    Intx,
    /// A virtio-mmio device's own GSI.
    Mmio,
}

/// How a NIC interrupts, once routed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NicInterrupt {
    /// MSI-X: a vector per queue (the same one if the device has a single table entry).
    Msix {
        /// The receive queue's vector.
        receive: Vector,
        /// The transmit queue's vector.
        transmit: Vector,
    },
    /// A line through the I/O APIC; the device's ISR must be read to deassert it.
    Line {
        /// Which kind.
        kind: LineKind,
        /// Its GSI.
        gsi: u32,
        /// The vector it arrives on.
        vector: Vector,
    },
    /// Nothing routed: the NIC is serviced whenever the main loop wakes for another reason
    /// (at least once a second).
    Polled,
}

impl NicInterrupt {
    /// Whether the NIC interrupted in `fired`.
    pub fn fired(&self, fired: &Fired) -> bool {
        match *self {
            NicInterrupt::Msix { receive, transmit } => {
                fired.contains(receive) || fired.contains(transmit)
            }
            NicInterrupt::Line { vector, .. } => fired.contains(vector),
            NicInterrupt::Polled => false,
        }
    }

    /// Whether the NIC's line fired in `fired`, so its ISR must be read before the line is
    /// unmasked (MSI-X needs no acknowledgement).
    pub fn needs_ack(&self, fired: &Fired) -> bool {
        matches!(self, NicInterrupt::Line { .. }) && self.fired(fired)
    }
}

impl fmt::Display for NicInterrupt {
    /// `msi-x`, `intx gsi 20`, `gsi 5` (virtio-mmio) or `polled`, as the console shows it.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            NicInterrupt::Msix { .. } => f.write_str("msi-x"),
            NicInterrupt::Line {
                kind: LineKind::Intx,
                gsi,
                ..
            } => write!(f, "intx gsi {gsi}"),
            NicInterrupt::Line {
                kind: LineKind::Mmio,
                gsi,
                ..
            } => write!(f, "gsi {gsi}"),
            NicInterrupt::Polled => f.write_str("polled"),
        }
    }
}

/// How a device found at discovery will interrupt: a line still to be routed once the NIC
/// is up, or an interrupt that needs no routing (MSI-X, or none).
#[derive(Clone, Copy, Debug)]
enum Wiring {
    Line {
        kind: LineKind,
        gsi: u32,
        trigger: Trigger,
    },
    Ready(NicInterrupt),
}

/// A device found, not yet brought up.
pub struct FoundDevice {
    transport: NicTransport,
    location: Location,
    wiring: Wiring,
}

/// A NIC and how it interrupts.
pub struct FoundNic {
    /// The device.
    pub nic: Nic,
    /// Where it is.
    pub location: Location,
    /// How it interrupts.
    pub interrupt: NicInterrupt,
}

/// A device that was found but could not be used (reported, not fatal).
#[derive(Debug)]
pub struct Skipped {
    /// Where it is.
    pub location: Location,
    /// Why it was skipped.
    pub reason: alloc::string::String,
}

/// Finds the virtio-net functions among `bus`'s, in enumeration order.
pub fn discover_pci(
    bus: &mut PciBus,
    firmware: &Firmware,
    found: &mut Vec<FoundDevice>,
    skipped: &mut Vec<Skipped>,
) {
    let functions: Vec<_> = bus
        .functions()
        .filter(|(_, info)| virtio_device_type(info) == Some(DeviceType::Network))
        .map(|(df, info)| (df, info.clone()))
        .collect();
    for (df, info) in functions {
        let location = Location::Pci(df);
        if found.len() >= MAX_NICS {
            skipped.push(Skipped {
                location,
                reason: "more than 8 NICs".into(),
            });
            continue;
        }
        let transport = match VirtioPciTransport::new(bus, df, &info, net::QUEUES) {
            Ok(t) => t,
            Err(e) => {
                skipped.push(Skipped {
                    location,
                    reason: alloc::format!("{e}"),
                });
                continue;
            }
        };
        let wiring = match transport.interrupts() {
            QueueInterrupts::Msix(_) => Wiring::Ready(
                match (
                    transport.interrupts().vector_for(net::RECEIVE_QUEUE),
                    transport.interrupts().vector_for(net::TRANSMIT_QUEUE),
                ) {
                    (Some(receive), Some(transmit)) => NicInterrupt::Msix { receive, transmit },
                    _ => NicInterrupt::Polled,
                },
            ),
            QueueInterrupts::Intx => match bus.intx(firmware, df) {
                Some((gsi, trigger)) => Wiring::Line {
                    kind: LineKind::Intx,
                    gsi,
                    trigger,
                },
                None => Wiring::Ready(NicInterrupt::Polled),
            },
        };
        found.push(FoundDevice {
            transport: NicTransport::Pci(transport),
            location,
            wiring,
        });
    }
}

/// Share of the free heap the NICs' buffers may take, all together.
const BUFFER_SHARE: usize = 2;
/// Share of the free heap a NIC's ring never takes when it goes deeper than its share
/// pays for (kept for everything else the appliance allocates), and at least.
const RESERVE_SHARE: usize = 8;
const MIN_RESERVE: usize = 512 * 1024;

/// Brings up every device found, in order, each NIC's buffers sized from its share of
/// `free_heap`, and routes their lines; records why any was skipped.
pub fn bring_up(
    devices: Vec<FoundDevice>,
    free_heap: usize,
    found: &mut Vec<FoundNic>,
    skipped: &mut Vec<Skipped>,
) {
    let budget = free_heap / BUFFER_SHARE / devices.len().max(1);
    let reserve = (free_heap / RESERVE_SHARE).max(MIN_RESERVE);
    for device in devices {
        adopt(device, budget, reserve, found, skipped);
    }
}

/// Brings up the NIC behind `device` with `budget` bytes for its buffers (more while the
/// heap keeps `reserve` free), and routes its line if it has one, or records why it was
/// skipped.
fn adopt(
    device: FoundDevice,
    budget: usize,
    reserve: usize,
    found: &mut Vec<FoundNic>,
    skipped: &mut Vec<Skipped>,
) {
    let FoundDevice {
        transport,
        location,
        wiring,
    } = device;
    let nic = match Nic::new(transport, found.len() as u8, budget, reserve) {
        Ok(nic) => nic,
        Err(e) => {
            skipped.push(Skipped {
                location,
                reason: alloc::format!("{e}"),
            });
            return;
        }
    };
    let interrupt = match wiring {
        Wiring::Line { kind, gsi, trigger } => match lines::route(gsi, trigger) {
            Ok(vector) => NicInterrupt::Line { kind, gsi, vector },
            Err(e) => {
                log::warn!("{location}: {e}: the NIC is polled");
                NicInterrupt::Polled
            }
        },
        Wiring::Ready(interrupt) => interrupt,
    };
    found.push(FoundNic {
        nic,
        location,
        interrupt,
    });
}
