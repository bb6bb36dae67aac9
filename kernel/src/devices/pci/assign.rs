//! Addresses for the memory BARs the firmware left unassigned.
//!
//! SeaBIOS and OVMF give every BAR an address before the kernel starts; a minimal firmware
//! does not (qboot, which starts a VM in a fraction of SeaBIOS's time, assigns none), and
//! the devices then cannot be reached. As Linux does, the kernel then assigns them itself:
//! every memory BAR of the functions on bus 0 is sized (decoding off meanwhile), those
//! with an address are kept where they are, and the others are placed — largest first,
//! each aligned to its size — in the 32-bit PCI hole: from the end of the last memory-map
//! region and of the ECAM window below the I/O APIC, up to the I/O APIC (0xfec00000, where
//! the chipset's own registers begin). 64-bit BARs are placed there too (the kernel maps
//! only the first 4 GiB).
//!
//! Functions behind a bridge are left alone: their BARs would need the bridge's windows
//! programmed as well, and firmware that leaves BARs unassigned has no bridges to set up
//! on the machines Moat runs on (`q35`, `pc`); a NIC there is reported as skipped, as
//! before. The pass runs only if a device the kernel drives (a virtio-net NIC, the
//! watchdog) has its memory decoding off and a BAR without an address — what a firmware
//! that assigned nothing leaves. SeaBIOS switches decoding on for what it assigned: then
//! nothing is sized and nothing is written, and the check costs a few configuration
//! reads. (A BAR the device does not implement also reads as zero, so a function with
//! decoding off may be sized in vain, as under OVMF, which leaves decoding to drivers.)

use alloc::vec::Vec;

use virtio_drivers::transport::pci::bus::{
    BarInfo, Command, ConfigurationAccess, DeviceFunction, DeviceFunctionInfo, MemoryBarType,
};
use virtio_drivers::transport::pci::virtio_device_type;
use virtio_drivers::transport::DeviceType;

use super::PciBus;
use crate::acpi::Firmware;
use crate::boot::Region;
use crate::devices::watchdog;

/// Where the chipset's registers (I/O APIC, HPET, local APIC, firmware flash) begin: the
/// PCI hole ends here.
const HOLE_END: u64 = 0xfec0_0000;
/// The hole starts on a 1 MiB boundary.
const HOLE_ALIGN: u64 = 1 << 20;

/// One BAR that needs an address.
#[derive(Clone, Copy, Debug)]
struct Request {
    df: DeviceFunction,
    bar: u8,
    size: u64,
    wide: bool,
}

/// Gives every unassigned memory BAR of the functions on bus 0 an address (see the module
/// documentation); returns how many were assigned. Says on the console what it did and
/// which BARs did not fit.
pub fn assign_unassigned(bus: &mut PciBus, firmware: &Firmware, regions: &[Region]) -> usize {
    let functions: Vec<(DeviceFunction, bool)> = bus
        .functions()
        .filter(|(df, _)| df.bus == 0)
        .map(|(df, info)| (df, driven(info)))
        .collect();
    if !functions
        .iter()
        .any(|&(df, driven)| driven && left_unassigned(bus, df))
    {
        return 0;
    }
    let mut used: Vec<(u64, u64)> = Vec::new();
    let mut requests: Vec<Request> = Vec::new();
    for &(df, _) in &functions {
        size_bars(bus, df, &mut used, &mut requests);
    }
    let window = hole(firmware, regions);
    requests.sort_by_key(|r| core::cmp::Reverse(r.size));
    let mut assigned = 0;
    for request in requests {
        let Some(address) = place(request.size, window, &used) else {
            log::warn!(
                "{}: no room for BAR {} ({} KiB) in the PCI hole {:#x}-{:#x}",
                request.df,
                request.bar,
                request.size / 1024,
                window.0,
                window.1
            );
            continue;
        };
        write_bar(bus, request, address);
        used.push((address, address + request.size));
        assigned += 1;
    }
    if assigned > 0 {
        log::info!(
            "pci: {assigned} memory BARs left unassigned by the firmware given addresses in {:#x}-{:#x}",
            window.0,
            window.1
        );
    }
    assigned
}

/// Whether the kernel drives the function: a virtio-net NIC or the watchdog.
fn driven(info: &DeviceFunctionInfo) -> bool {
    virtio_device_type(info) == Some(DeviceType::Network) || watchdog::is_watchdog(info)
}

/// Whether `df` looks left unassigned: its memory decoding off and a memory BAR without an
/// address (read, not sized: a BAR that is not implemented reads as zero too, so this may
/// be a false alarm, which only costs sizing).
fn left_unassigned(bus: &mut PciBus, df: DeviceFunction) -> bool {
    let (_, command) = bus.root().get_status_command(df);
    if command.contains(Command::MEMORY_SPACE) {
        return false;
    }
    let mut bar = 0;
    while bar < 6 {
        let value = bus.config().read_word(df, 0x10 + 4 * bar);
        let wide = value & 1 == 0 && (value >> 1) & 0b11 == 0b10;
        if value & 1 == 0 && bus.memory_bar_address(df, bar).is_none() {
            return true;
        }
        bar += if wide { 2 } else { 1 };
    }
    false
}

/// Sizes `df`'s BARs with decoding off (then switched back as it was), noting the memory
/// ranges in use and the memory BARs that need an address.
fn size_bars(
    bus: &mut PciBus,
    df: DeviceFunction,
    used: &mut Vec<(u64, u64)>,
    requests: &mut Vec<Request>,
) {
    let (_, command) = bus.root().get_status_command(df);
    let decoding = Command::IO_SPACE | Command::MEMORY_SPACE;
    if command.intersects(decoding) {
        bus.root().set_command(df, command - decoding);
    }
    for (bar, info) in bus.size_bars(df) {
        let wide = info.takes_two_entries();
        if let BarInfo::Memory {
            address_type,
            address,
            size,
            ..
        } = info
        {
            if size > 0 && address != 0 {
                // Kept where the firmware put it.
                used.push((address, address.saturating_add(size)));
            } else if size > 0 && address_type != MemoryBarType::Below1MiB {
                requests.push(Request {
                    df,
                    bar,
                    size,
                    wide,
                });
            }
        }
    }
    if command.intersects(decoding) {
        bus.root().set_command(df, command);
    }
}

/// The 32-bit PCI hole: above every memory-map region and the ECAM window that lie below
/// [`HOLE_END`], up to the lowest interrupt controller or [`HOLE_END`].
fn hole(firmware: &Firmware, regions: &[Region]) -> (u64, u64) {
    let mut end = HOLE_END;
    for ioapic in firmware.ioapics() {
        end = end.min(ioapic.address);
    }
    end = end.min(firmware.lapic_address);
    let ecam = firmware.ecam.map(|(base, first, last)| {
        let buses = u64::from(last.saturating_sub(first)) + 1;
        (base, base + (buses << 20))
    });
    let start = regions
        .iter()
        .map(|r| (r.start, r.end))
        .chain(ecam)
        .filter(|&(start, _)| start < end)
        .map(|(_, region_end)| region_end)
        .max()
        .unwrap_or(0);
    (start.div_ceil(HOLE_ALIGN) * HOLE_ALIGN, end)
}

/// The lowest address in `window` aligned to `size` (a power of two) where `size` bytes
/// overlap nothing in `used`.
fn place(size: u64, window: (u64, u64), used: &[(u64, u64)]) -> Option<u64> {
    if !size.is_power_of_two() {
        return None;
    }
    let mut at = window.0.checked_next_multiple_of(size)?;
    loop {
        let end = at.checked_add(size)?;
        if end > window.1 {
            return None;
        }
        match used.iter().find(|&&(s, e)| s < end && at < e) {
            None => return Some(at),
            // Past the range in the way, realigned.
            Some(&(_, e)) => at = e.checked_next_multiple_of(size)?,
        }
    }
}

/// Writes `address` into the BAR of `request` (decoding is off).
fn write_bar(bus: &mut PciBus, request: Request, address: u64) {
    let offset = 0x10 + 4 * request.bar;
    let mut config = *bus.config();
    let flags = config.read_word(request.df, offset) & 0xf;
    config.write_word(request.df, offset, (address as u32 & !0xf) | flags);
    if request.wide {
        config.write_word(request.df, offset + 4, (address >> 32) as u32);
    }
    bus.placed_bar(request.df, request.bar, address, request.size);
}
