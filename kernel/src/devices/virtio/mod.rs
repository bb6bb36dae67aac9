//! virtio-net NICs: discovery over PCI (`q35`, `pc`) and MMIO (`microvm`), and the NICs
//! themselves ([`nic`]).
//!
//! NICs are named `nic0`..`nic7` in discovery order: PCI bus/slot/function order, or the
//! order of the `virtio_mmio.device=` entries on the kernel command line.

pub mod hal;
pub mod nic;

use alloc::vec::Vec;
use core::fmt;
use core::ptr::NonNull;

use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::pci::bus::{Command, ConfigurationAccess, DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::{virtio_device_type, PciTransport};
use virtio_drivers::transport::{DeviceType, SomeTransport, Transport};

use super::ioapic::Trigger;
use super::pci;
use crate::acpi::Firmware;
use crate::memory::paging;
use hal::KernelHal;
use nic::Nic;

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

/// A NIC and how it interrupts.
pub struct FoundNic {
    /// The device.
    pub nic: Nic,
    /// Where it is.
    pub location: Location,
    /// The GSIs it may interrupt on, and how they signal.
    pub interrupts: Vec<(u32, Trigger)>,
}

/// A device that was found but could not be used (reported, not fatal).
#[derive(Debug)]
pub struct Skipped {
    /// Where it is.
    pub location: Location,
    /// Why it was skipped.
    pub reason: &'static str,
}

/// Finds virtio-net functions on PCI and brings them up.
pub fn discover_pci(firmware: &Firmware, found: &mut Vec<FoundNic>, skipped: &mut Vec<Skipped>) {
    match firmware.ecam {
        Some((base, first, last)) => {
            let ecam = pci::Ecam::new(base, first, last);
            let mut root = PciRoot::new(ecam);
            let (functions, topology) =
                list_virtio_net(&root, &ecam, |bus| ecam.map_bus(bus).is_ok());
            // q35 (ICH9): in APIC mode, INTx of the device in slot S, pin P (0 = INTA) on bus 0
            // reaches PIRQ E-H = GSI 20 + (S + P) mod 4, level-triggered, active-high (QEMU's
            // default chipset routing, matching its ACPI _PRT); deeper devices are swizzled
            // through their bridges first.
            let ich9_line = |df: DeviceFunction, pin: u8, _line: u8| {
                let (slot, intx) = topology.route_to_root(df, pin);
                alloc::vec![(
                    20 + ((slot + intx) % 4) as u32,
                    Trigger {
                        level: true,
                        active_low: false
                    }
                )]
            };
            bring_up(&mut root, &ecam, functions, ich9_line, found, skipped);
        }
        None => {
            let mut root = PciRoot::new(pci::PortIo);
            let (functions, _) = list_virtio_net(&root, &pci::PortIo, |_| true);
            // Legacy PCI (pc): the line register holds the ISA IRQ firmware routed INTx to.
            let isa_line = |_df: DeviceFunction, _pin: u8, line: u8| {
                let (gsi, trigger) = firmware.isa_irq(line);
                let trigger = if firmware.overrides_irq(line) {
                    trigger
                } else {
                    Trigger {
                        level: true,
                        active_low: true,
                    }
                };
                alloc::vec![(gsi, trigger)]
            };
            bring_up(&mut root, &pci::PortIo, functions, isa_line, found, skipped);
        }
    }
}

fn list_virtio_net<C: ConfigurationAccess>(
    root: &PciRoot<C>,
    access: &C,
    map_bus: impl FnMut(u8) -> bool,
) -> (Vec<DeviceFunction>, pci::BusTopology) {
    let mut functions = Vec::new();
    let topology = pci::enumerate(root, access, map_bus, |df, info| {
        if virtio_device_type(info) == Some(DeviceType::Network) {
            functions.push(df);
        }
    });
    (functions, topology)
}

fn bring_up<C: ConfigurationAccess>(
    root: &mut PciRoot<C>,
    access: &C,
    functions: Vec<DeviceFunction>,
    lines_for: impl Fn(DeviceFunction, u8, u8) -> Vec<(u32, Trigger)>,
    found: &mut Vec<FoundNic>,
    skipped: &mut Vec<Skipped>,
) {
    for df in functions {
        let location = Location::Pci(df);
        if found.len() >= MAX_NICS {
            skipped.push(Skipped {
                location,
                reason: "more than 8 NICs",
            });
            continue;
        }
        let (_, command) = root.get_status_command(df);
        root.set_command(df, command | Command::MEMORY_SPACE | Command::BUS_MASTER);
        let transport = match PciTransport::new::<KernelHal, C>(root, df) {
            Ok(t) => t,
            Err(_) => {
                skipped.push(Skipped {
                    location,
                    reason: "not a modern virtio device (use disable-legacy=on)",
                });
                continue;
            }
        };
        let (pin, line) = pci::interrupt_pin_line(access, df);
        let interrupts = if pin == 0 {
            Vec::new()
        } else {
            lines_for(df, pin, line)
        };
        adopt(
            SomeTransport::from(transport),
            location,
            interrupts,
            found,
            skipped,
        );
    }
}

/// Brings up the NIC behind `transport`, or records why it was skipped.
fn adopt(
    transport: SomeTransport<'static>,
    location: Location,
    interrupts: Vec<(u32, Trigger)>,
    found: &mut Vec<FoundNic>,
    skipped: &mut Vec<Skipped>,
) {
    match Nic::new(transport) {
        Ok(nic) => found.push(FoundNic {
            nic,
            location,
            interrupts,
        }),
        Err(e) => {
            log::warn!("{location}: {e}");
            skipped.push(Skipped {
                location,
                reason: "virtio-net initialisation failed",
            });
        }
    }
}

/// One `virtio_mmio.device=SIZE@BASE:IRQ` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioDevice {
    /// Size of the register window.
    pub size: u64,
    /// Physical base address.
    pub base: u64,
    /// Interrupt (GSI).
    pub irq: u32,
}

fn parse_number(text: &str) -> Option<u64> {
    let (digits, scale) = match text.as_bytes().last()? {
        b'K' | b'k' => (&text[..text.len() - 1], 1024),
        b'M' | b'm' => (&text[..text.len() - 1], 1024 * 1024),
        _ => (text, 1),
    };
    let value = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    value.checked_mul(scale)
}

/// Parses the `virtio_mmio.device=` entries of a command line, in order.
pub fn mmio_devices(cmdline: &str) -> impl Iterator<Item = MmioDevice> + '_ {
    cmdline.split_whitespace().filter_map(|word| {
        let spec = word.strip_prefix("virtio_mmio.device=")?;
        let (size, rest) = spec.split_once('@')?;
        let (base, irq) = rest.split_once(':')?;
        let irq = irq.split(':').next()?;
        Some(MmioDevice {
            size: parse_number(size)?,
            base: parse_number(base)?,
            irq: parse_number(irq)? as u32,
        })
    })
}

/// Finds virtio-mmio network devices and brings them up: those named on the command line
/// (`virtio_mmio.device=`, as Firecracker and QEMU without ACPI pass them) in command-line
/// order, else those the ACPI DSDT declares (QEMU `microvm` with ACPI). QEMU plugs the
/// first `-device` into the highest transport, so DSDT devices are taken from the highest
/// address down, which keeps `nic0` = the first `-device`.
pub fn discover_mmio(
    cmdline: &str,
    firmware: &Firmware,
    found: &mut Vec<FoundNic>,
    skipped: &mut Vec<Skipped>,
) {
    let mut devices: Vec<MmioDevice> = mmio_devices(cmdline).collect();
    if devices.is_empty() {
        devices = firmware
            .virtio_mmio()
            .map(|d| MmioDevice {
                size: d.size,
                base: d.base,
                irq: d.gsi,
            })
            .collect();
        devices.sort_by_key(|d| core::cmp::Reverse(d.base));
    }
    for device in devices {
        let location = Location::Mmio(device.base);
        if device.size < 0x100 || paging::map_device(device.base, device.size).is_err() {
            skipped.push(Skipped {
                location,
                reason: "unusable virtio-mmio window",
            });
            continue;
        }
        let Some(header) = NonNull::new(device.base as *mut VirtIOHeader) else {
            continue;
        };
        // SAFETY: the window is a virtio-mmio register block named by the hypervisor on the
        // command line, mapped just above as device memory, and used only by this transport.
        let transport = match unsafe { MmioTransport::new(header, device.size as usize) } {
            Ok(t) => t,
            Err(_) => {
                skipped.push(Skipped {
                    location,
                    reason: "not a virtio-mmio device",
                });
                continue;
            }
        };
        if transport.device_type() != DeviceType::Network {
            continue;
        }
        if found.len() >= MAX_NICS {
            skipped.push(Skipped {
                location,
                reason: "more than 8 NICs",
            });
            continue;
        }
        let interrupts = alloc::vec![(
            device.irq,
            Trigger {
                level: true,
                active_low: false
            }
        )];
        adopt(
            SomeTransport::from(transport),
            location,
            interrupts,
            found,
            skipped,
        );
    }
}
