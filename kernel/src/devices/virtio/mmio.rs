//! virtio-mmio NICs (`microvm`, Firecracker): found on the kernel command line or in the
//! ACPI DSDT, each with its own interrupt line.

use alloc::vec::Vec;
use core::ptr::NonNull;

use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};

use super::transport::NicTransport;
use super::{adopt, FoundNic, LineKind, Location, Skipped, Wiring, MAX_NICS};
use crate::acpi::Firmware;
use crate::devices::ioapic::Trigger;
use crate::memory::paging;

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
                reason: "unusable virtio-mmio window".into(),
            });
            continue;
        }
        let Some(header) = NonNull::new(device.base as *mut VirtIOHeader) else {
            skipped.push(Skipped {
                location,
                reason: "virtio-mmio window at address 0".into(),
            });
            continue;
        };
        // SAFETY: the window is a virtio-mmio register block the hypervisor named (on the
        // command line or in the DSDT), of at least 0x100 bytes (checked), mapped just above
        // as device memory, and used only by this transport.
        let transport = match unsafe { MmioTransport::new(header, device.size as usize) } {
            Ok(t) => t,
            Err(_) => {
                skipped.push(Skipped {
                    location,
                    reason: "not a virtio-mmio device".into(),
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
                reason: "more than 8 NICs".into(),
            });
            continue;
        }
        let wiring = Wiring::Line {
            kind: LineKind::Mmio,
            gsi: device.irq,
            trigger: Trigger {
                level: true,
                active_low: false,
            },
        };
        adopt(
            NicTransport::Mmio(transport),
            location,
            wiring,
            found,
            skipped,
        );
    }
}
