//! PCI configuration space access and enumeration.
//!
//! Two ways in: the PCI Express ECAM window from the ACPI MCFG table (`q35`), mapped one
//! bus (1 MiB) at a time as buses are found, or the legacy `0xcf8`/`0xcfc` port mechanism
//! (`pc`). Enumeration walks bus 0 and every bus behind a PCI-to-PCI bridge.

use virtio_drivers::transport::pci::bus::{
    ConfigurationAccess, DeviceFunction, DeviceFunctionInfo, HeaderType, PciRoot,
};
use x86_64::instructions::port::Port;

use crate::memory::paging;

/// Configuration space access through the legacy I/O ports.
#[derive(Clone, Copy)]
pub struct PortIo;

fn port_address(df: DeviceFunction, offset: u8) -> u32 {
    0x8000_0000
        | (df.bus as u32) << 16
        | (df.device as u32) << 11
        | (df.function as u32) << 8
        | (offset as u32 & 0xfc)
}

impl ConfigurationAccess for PortIo {
    fn read_word(&self, df: DeviceFunction, offset: u8) -> u32 {
        // SAFETY: CONFIG_ADDRESS/CONFIG_DATA are the architectural PCI configuration ports;
        // the kernel is single-threaded, so the address/data pair is not interleaved.
        unsafe {
            Port::<u32>::new(0xcf8).write(port_address(df, offset));
            Port::<u32>::new(0xcfc).read()
        }
    }

    fn write_word(&mut self, df: DeviceFunction, offset: u8, data: u32) {
        // SAFETY: as in `read_word`.
        unsafe {
            Port::<u32>::new(0xcf8).write(port_address(df, offset));
            Port::<u32>::new(0xcfc).write(data);
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        PortIo
    }
}

/// Configuration space access through the ECAM window.
#[derive(Clone, Copy)]
pub struct Ecam {
    base: u64,
    first_bus: u8,
    last_bus: u8,
}

impl Ecam {
    /// The ECAM window at `base` covering buses `first_bus..=last_bus`.
    pub fn new(base: u64, first_bus: u8, last_bus: u8) -> Ecam {
        Ecam {
            base,
            first_bus,
            last_bus,
        }
    }

    fn address(&self, df: DeviceFunction, offset: u8) -> Option<u64> {
        if df.bus < self.first_bus || df.bus > self.last_bus {
            return None;
        }
        Some(
            self.base
                + (((df.bus - self.first_bus) as u64) << 20)
                + ((df.device as u64) << 15)
                + ((df.function as u64) << 12)
                + (offset as u64 & 0xffc),
        )
    }

    /// Maps the configuration space of `bus` (call before touching it).
    pub fn map_bus(&self, bus: u8) -> Result<(), paging::PagingError> {
        if bus < self.first_bus || bus > self.last_bus {
            return Ok(());
        }
        paging::map_device(self.base + (((bus - self.first_bus) as u64) << 20), 1 << 20)
    }
}

impl ConfigurationAccess for Ecam {
    fn read_word(&self, df: DeviceFunction, offset: u8) -> u32 {
        match self.address(df, offset) {
            // SAFETY: inside the ECAM window of a bus mapped by `map_bus` before enumeration.
            Some(addr) => unsafe { (addr as *const u32).read_volatile() },
            None => u32::MAX,
        }
    }

    fn write_word(&mut self, df: DeviceFunction, offset: u8, data: u32) {
        if let Some(addr) = self.address(df, offset) {
            // SAFETY: as in `read_word`.
            unsafe { (addr as *mut u32).write_volatile(data) }
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        Ecam {
            base: self.base,
            first_bus: self.first_bus,
            last_bus: self.last_bus,
        }
    }
}

/// Most buses scanned.
const MAX_BUSES: usize = 32;

/// The PCI-to-PCI bridges between bus 0 and the buses behind them: for each secondary bus,
/// the parent bus and the bridge's device number (for INTx swizzling).
#[derive(Clone, Copy, Debug, Default)]
pub struct BusTopology {
    parents: [Option<(u8, u8, u8)>; MAX_BUSES],
}

impl BusTopology {
    fn add(&mut self, secondary: u8, parent_bus: u8, bridge_device: u8) {
        if let Some(slot) = self.parents.iter_mut().find(|p| p.is_none()) {
            *slot = Some((secondary, parent_bus, bridge_device));
        }
    }

    fn parent_of(&self, bus: u8) -> Option<(u8, u8)> {
        self.parents
            .iter()
            .flatten()
            .find(|(b, _, _)| *b == bus)
            .map(|&(_, parent, device)| (parent, device))
    }

    /// The device number on bus 0 and the INTx pin (0 = INTA) that `df`'s `pin` (1-based)
    /// arrives as, after the standard swizzle through each bridge
    /// (PCI-to-PCI Bridge Architecture 1.2, 9.1).
    pub fn route_to_root(&self, df: DeviceFunction, pin: u8) -> (u8, u8) {
        let mut device = df.device;
        let mut intx = pin.saturating_sub(1) % 4;
        let mut bus = df.bus;
        for _ in 0..MAX_BUSES {
            let Some((parent, bridge)) = self.parent_of(bus) else {
                break;
            };
            intx = (intx + device) % 4;
            device = bridge;
            bus = parent;
        }
        (device, intx)
    }
}

/// Lists every function on bus 0 and the buses behind bridges, in bus/slot/function order,
/// calling `map_bus` before each bus is read. `access` reads the same configuration space
/// as `root` (for the registers `PciRoot` does not expose). Returns the bridge topology.
pub fn enumerate<C: ConfigurationAccess>(
    root: &PciRoot<C>,
    access: &C,
    mut map_bus: impl FnMut(u8) -> bool,
    mut found: impl FnMut(DeviceFunction, &DeviceFunctionInfo),
) -> BusTopology {
    let mut topology = BusTopology::default();
    let mut buses = [0u8; MAX_BUSES];
    let mut count = 1;
    let mut next = 0;
    while next < count {
        let bus = buses[next];
        next += 1;
        if !map_bus(bus) {
            continue;
        }
        for (df, info) in root.enumerate_bus(bus) {
            if info.header_type == HeaderType::PciPciBridge && count < MAX_BUSES {
                let secondary = (access.read_word(df, 0x18) >> 8) as u8;
                if secondary != 0 && !buses[..count].contains(&secondary) {
                    buses[count] = secondary;
                    count += 1;
                    topology.add(secondary, bus, df.device);
                }
            }
            found(df, &info);
        }
    }
    topology
}

/// The interrupt pin (1 = INTA .. 4 = INTD, 0 = none) and line register of a function.
pub fn interrupt_pin_line<C: ConfigurationAccess>(access: &C, df: DeviceFunction) -> (u8, u8) {
    let value = access.read_word(df, 0x3c);
    ((value >> 8) as u8, value as u8)
}
