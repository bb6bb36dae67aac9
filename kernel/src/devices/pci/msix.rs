//! MSI-X (PCI Local Bus 3.0, 6.8.2): a function's table of messages, each a write of a
//! vector number to this CPU's LAPIC. Edge-triggered by nature: nothing to mask in a
//! handler, nothing to read to deassert.
//!
//! The table is programmed once, at boot, with the function's MSI-X function-masked, and
//! INTx is switched off at the same time, so the device signals through exactly one path.

use virtio_drivers::transport::pci::bus::{Command, ConfigurationAccess, DeviceFunction};

use super::PciBus;
use crate::devices::lapic;
use crate::devices::mmio::MmioRegion;
use crate::interrupts::Vector;

/// Capability ID of MSI-X.
const CAP_ID_MSIX: u8 = 0x11;
/// Message control (offset 2 of the capability).
const CONTROL: u8 = 2;
const CONTROL_ENABLE: u16 = 1 << 15;
const CONTROL_FUNCTION_MASK: u16 = 1 << 14;
const CONTROL_TABLE_SIZE: u16 = 0x7ff;
/// Table offset and BAR indicator (offset 4 of the capability).
const TABLE: u8 = 4;
/// One table entry: message address (low, high), message data, vector control.
const ENTRY_SIZE: u64 = 16;
const ENTRY_ADDRESS_LOW: u64 = 0;
const ENTRY_ADDRESS_HIGH: u64 = 4;
const ENTRY_DATA: u64 = 8;
const ENTRY_VECTOR_CONTROL: u64 = 12;
const ENTRY_MASKED: u32 = 1;

/// A function's MSI-X capability.
#[derive(Clone, Copy, Debug)]
pub struct MsixCapability {
    df: DeviceFunction,
    offset: u8,
    table_size: u16,
    table_bar: u8,
    table_offset: u32,
}

/// Why MSI-X could not be turned on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsixError {
    /// The BAR holding the table is not an assigned memory BAR.
    TableBarUnusable(u8),
    /// The table does not fit its BAR, or cannot be mapped.
    TableOutOfRange,
    /// More vectors asked for than the table has entries.
    TooManyVectors,
}

impl core::fmt::Display for MsixError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            MsixError::TableBarUnusable(bar) => {
                write!(
                    f,
                    "the MSI-X table's BAR {bar} is not an assigned memory BAR"
                )
            }
            MsixError::TableOutOfRange => f.write_str("the MSI-X table lies outside its BAR"),
            MsixError::TooManyVectors => f.write_str("more vectors than MSI-X table entries"),
        }
    }
}

/// `df`'s MSI-X capability, if it has one.
pub fn find(bus: &mut PciBus, df: DeviceFunction) -> Option<MsixCapability> {
    let capability = bus.root().capabilities(df).find(|c| c.id == CAP_ID_MSIX)?;
    let control = capability.private_header;
    let table = bus.config().read_word(df, capability.offset + TABLE);
    Some(MsixCapability {
        df,
        offset: capability.offset,
        table_size: (control & CONTROL_TABLE_SIZE) + 1,
        table_bar: (table & 0x7) as u8,
        table_offset: table & !0x7,
    })
}

impl MsixCapability {
    /// Entries in the function's table.
    pub fn table_size(&self) -> u16 {
        self.table_size
    }

    /// Points table entry `i` at `vectors[i]` on this CPU, masks every other entry, enables
    /// MSI-X and disables INTx.
    pub fn enable(&self, bus: &mut PciBus, vectors: &[Vector]) -> Result<(), MsixError> {
        if vectors.len() > self.table_size as usize {
            return Err(MsixError::TooManyVectors);
        }
        let config = *bus.config();
        let control = (config.read_word(self.df, self.offset) >> 16) as u16;
        // Enabled but function-masked while the table is written.
        config.write_u16(
            self.df,
            self.offset + CONTROL,
            control | CONTROL_ENABLE | CONTROL_FUNCTION_MASK,
        );
        let table = match self.map_table(bus) {
            Ok(table) => table,
            Err(e) => {
                config.write_u16(self.df, self.offset + CONTROL, control & !CONTROL_ENABLE);
                return Err(e);
            }
        };
        let apic_id = lapic::id();
        for entry in 0..self.table_size as u64 {
            let at = entry * ENTRY_SIZE;
            match vectors.get(entry as usize) {
                Some(&vector) => {
                    let (address, data) = lapic::msi_message(apic_id, vector);
                    table.write_u32(at + ENTRY_VECTOR_CONTROL, ENTRY_MASKED);
                    table.write_u32(at + ENTRY_ADDRESS_LOW, address as u32);
                    table.write_u32(at + ENTRY_ADDRESS_HIGH, (address >> 32) as u32);
                    table.write_u32(at + ENTRY_DATA, data);
                    table.write_u32(at + ENTRY_VECTOR_CONTROL, 0);
                }
                None => table.write_u32(at + ENTRY_VECTOR_CONTROL, ENTRY_MASKED),
            }
        }
        let (_, command) = bus.root().get_status_command(self.df);
        bus.root()
            .set_command(self.df, command | Command::INTERRUPT_DISABLE);
        config.write_u16(
            self.df,
            self.offset + CONTROL,
            (control | CONTROL_ENABLE) & !CONTROL_FUNCTION_MASK,
        );
        Ok(())
    }

    /// Turns MSI-X off again and INTx back on (the fallback when the device refuses the
    /// vectors it was given).
    pub fn disable(&self, bus: &mut PciBus) {
        let config = *bus.config();
        let control = (config.read_word(self.df, self.offset) >> 16) as u16;
        config.write_u16(
            self.df,
            self.offset + CONTROL,
            control & !(CONTROL_ENABLE | CONTROL_FUNCTION_MASK),
        );
        let (_, command) = bus.root().get_status_command(self.df);
        bus.root()
            .set_command(self.df, command & !Command::INTERRUPT_DISABLE);
    }

    fn map_table(&self, bus: &mut PciBus) -> Result<MmioRegion, MsixError> {
        let unusable = MsixError::TableBarUnusable(self.table_bar);
        let (bar_address, bar_size) = bus.memory_bar(self.df, self.table_bar).ok_or(unusable)?;
        let length = self.table_size as u64 * ENTRY_SIZE;
        let end = (self.table_offset as u64)
            .checked_add(length)
            .ok_or(MsixError::TableOutOfRange)?;
        if end > bar_size {
            return Err(MsixError::TableOutOfRange);
        }
        // SAFETY: the range is this function's MSI-X table, inside a memory BAR the firmware
        // assigned to it (checked above); only this window writes the table.
        unsafe { MmioRegion::map(bar_address + self.table_offset as u64, length) }
            .map_err(|_| MsixError::TableOutOfRange)
    }
}
