//! PCI configuration space access: the PCI Express ECAM window (`q35`, from the ACPI MCFG),
//! mapped one bus (1 MiB) at a time as buses are found, or the legacy `0xcf8`/`0xcfc` port
//! pair (`pc`).
//!
//! Both are used only outside interrupt context (at boot): the port pair is an index/data
//! pair, but no handler ever touches it.

use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};
use x86_64::instructions::port::Port;
use x86_64::structures::port::{PortRead, PortWrite};

use crate::acpi::Firmware;
use crate::memory::paging;

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;

/// How this machine's configuration space is reached.
#[derive(Clone, Copy, Debug)]
pub enum ConfigSpace {
    /// The ECAM window at `base` covering buses `first_bus..=last_bus`.
    Ecam {
        /// Physical base of the window (bus `first_bus`).
        base: u64,
        /// First bus decoded.
        first_bus: u8,
        /// Last bus decoded.
        last_bus: u8,
    },
    /// The legacy port pair.
    PortIo,
}

impl ConfigSpace {
    /// ECAM if the firmware's MCFG names a window, else the legacy ports.
    pub fn of(firmware: &Firmware) -> ConfigSpace {
        match firmware.ecam {
            Some((base, first_bus, last_bus)) => ConfigSpace::Ecam {
                base,
                first_bus,
                last_bus,
            },
            None => ConfigSpace::PortIo,
        }
    }

    /// The physical address of `bus`'s 1 MiB ECAM slice, if this is ECAM and decodes it.
    fn ecam_slice(&self, bus: u8) -> Option<u64> {
        match *self {
            ConfigSpace::Ecam {
                base,
                first_bus,
                last_bus,
            } if (first_bus..=last_bus).contains(&bus) => {
                Some(base + (((bus - first_bus) as u64) << 20))
            }
            _ => None,
        }
    }

    /// Makes `bus` readable (maps its ECAM slice); `false` if it cannot be.
    pub fn map_bus(&self, bus: u8) -> bool {
        match self {
            ConfigSpace::Ecam { .. } => self
                .ecam_slice(bus)
                .is_some_and(|slice| paging::map_device(slice, 1 << 20).is_ok()),
            ConfigSpace::PortIo => true,
        }
    }

    /// Where byte `offset` of `df`'s configuration space is: its ECAM address, or (legacy)
    /// the CONFIG_DATA port after selecting its dword in CONFIG_ADDRESS.
    fn locate(&self, df: DeviceFunction, offset: u8) -> Location {
        match self {
            ConfigSpace::Ecam { .. } => match self.ecam_slice(df.bus) {
                Some(slice) => Location::Memory(
                    slice
                        + ((df.device as u64) << 15)
                        + ((df.function as u64) << 12)
                        + offset as u64,
                ),
                None => Location::Nowhere,
            },
            ConfigSpace::PortIo => {
                let address = 0x8000_0000
                    | (df.bus as u32) << 16
                    | (df.device as u32) << 11
                    | (df.function as u32) << 8
                    | (offset as u32 & 0xfc);
                // SAFETY: CONFIG_ADDRESS is the architectural PCI configuration index port;
                // configuration space is used only in the main flow (never by a handler), so
                // no other access comes between this select and the caller's data access.
                unsafe { Port::<u32>::new(CONFIG_ADDRESS).write(address) };
                Location::Port(CONFIG_DATA + (offset as u16 & 3))
            }
        }
    }

    /// Reads the naturally aligned register of `T`'s width at `offset` of `df` (all ones if
    /// the function is outside the window, as an absent device reads).
    fn read<T: PortRead + Copy>(&self, df: DeviceFunction, offset: u8, absent: T) -> T {
        match self.locate(df, offset) {
            // SAFETY: inside the ECAM slice of a bus mapped by `map_bus` before enumeration
            // found `df`; callers pass offsets aligned to `T`'s width.
            Location::Memory(address) => unsafe { (address as *const T).read_volatile() },
            // SAFETY: the data port of the dword `locate` just selected, at the register.
            Location::Port(port) => unsafe { Port::<T>::new(port).read() },
            Location::Nowhere => absent,
        }
    }

    /// Writes the naturally aligned register of `T`'s width at `offset` of `df`.
    fn write<T: PortWrite + Copy>(&self, df: DeviceFunction, offset: u8, value: T) {
        match self.locate(df, offset) {
            // SAFETY: as in `read`; what the write does is the caller's documented intent.
            Location::Memory(address) => unsafe { (address as *mut T).write_volatile(value) },
            // SAFETY: as in `read`.
            Location::Port(port) => unsafe { Port::<T>::new(port).write(value) },
            Location::Nowhere => {}
        }
    }

    /// Writes the 8-bit register at `offset` of `df`. Some devices (the i6300ESB watchdog)
    /// act only on accesses of their register's exact width.
    pub fn write_u8(&self, df: DeviceFunction, offset: u8, value: u8) {
        self.write(df, offset, value);
    }

    /// Writes the 16-bit register at `offset` (rounded down to 2-byte alignment) of `df`.
    pub fn write_u16(&self, df: DeviceFunction, offset: u8, value: u16) {
        self.write(df, offset & !1, value);
    }
}

/// Where a configuration register is reached.
enum Location {
    /// At this ECAM address.
    Memory(u64),
    /// Through this CONFIG_DATA port (its dword already selected).
    Port(u16),
    /// Nowhere: outside the ECAM window.
    Nowhere,
}

impl ConfigurationAccess for ConfigSpace {
    fn read_word(&self, df: DeviceFunction, offset: u8) -> u32 {
        self.read(df, offset & 0xfc, u32::MAX)
    }

    fn write_word(&mut self, df: DeviceFunction, offset: u8, data: u32) {
        self.write(df, offset & 0xfc, data);
    }

    unsafe fn unsafe_clone(&self) -> Self {
        *self
    }
}
