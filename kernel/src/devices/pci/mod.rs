//! PCI: configuration space access ([`config`]), enumeration and INTx routing (here), and
//! MSI-X ([`msix`]).
//!
//! Enumeration walks bus 0 and every bus behind a PCI-to-PCI bridge, in bus/slot/function
//! order, which is what names NICs. Memory BARs the firmware left without an address are
//! given one ([`assign`]).

pub mod assign;
pub mod config;
pub mod msix;

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use virtio_drivers::transport::pci::bus::{
    BarInfo, Command, ConfigurationAccess, DeviceFunction, DeviceFunctionInfo, HeaderType, PciRoot,
};

pub use config::ConfigSpace;

use super::ioapic::Trigger;
use crate::acpi::Firmware;

/// Most buses scanned.
const MAX_BUSES: usize = 32;

/// The PCI-to-PCI bridges between bus 0 and the buses behind them: for each secondary bus,
/// the parent bus and the bridge's device number (for INTx swizzling).
#[derive(Clone, Copy, Debug, Default)]
struct BusTopology {
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
    fn route_to_root(&self, df: DeviceFunction, pin: u8) -> (u8, u8) {
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

/// A function's BAR: (bus, device, function), BAR index.
type BarKey = ((u8, u8, u8), u8);

/// The machine's PCI functions, enumerated once at boot, and the means to configure them.
pub struct PciBus {
    root: PciRoot<ConfigSpace>,
    config: ConfigSpace,
    topology: BusTopology,
    functions: Vec<(DeviceFunction, DeviceFunctionInfo)>,
    /// Memory BARs sized so far, and what sizing found (address and size).
    bars: BTreeMap<BarKey, Option<(u64, u64)>>,
    /// Functions all of whose BARs have been sized.
    sized: BTreeSet<(u8, u8, u8)>,
}

impl PciBus {
    /// Lists every function on bus 0 and the buses behind bridges, in bus/slot/function
    /// order, mapping each bus before it is read. A machine without PCI (`microvm`) has an
    /// empty list.
    pub fn scan(firmware: &Firmware) -> PciBus {
        let config = ConfigSpace::of(firmware);
        let root = PciRoot::new(config);
        let mut topology = BusTopology::default();
        let mut functions = Vec::new();
        let mut buses = [0u8; MAX_BUSES];
        let mut count = 1;
        let mut next = 0;
        while next < count {
            let bus = buses[next];
            next += 1;
            if !config.map_bus(bus) {
                continue;
            }
            for (df, info) in root.enumerate_bus(bus) {
                if info.header_type == HeaderType::PciPciBridge && count < MAX_BUSES {
                    let secondary = (config.read_word(df, 0x18) >> 8) as u8;
                    if secondary != 0 && !buses[..count].contains(&secondary) {
                        buses[count] = secondary;
                        count += 1;
                        topology.add(secondary, bus, df.device);
                    }
                }
                functions.push((df, info));
            }
        }
        PciBus {
            root,
            config,
            topology,
            functions,
            bars: BTreeMap::new(),
            sized: BTreeSet::new(),
        }
    }

    /// The functions found, in enumeration order.
    pub fn functions(&self) -> impl Iterator<Item = (DeviceFunction, &DeviceFunctionInfo)> {
        self.functions.iter().map(|(df, info)| (*df, info))
    }

    /// The root, for the `virtio-drivers` helpers (capabilities, BARs, command register).
    pub fn root(&mut self) -> &mut PciRoot<ConfigSpace> {
        &mut self.root
    }

    /// Direct configuration space access (registers `PciRoot` does not expose).
    pub fn config(&self) -> &ConfigSpace {
        &self.config
    }

    /// Sizes `df`'s BARs, then lets it decode its memory BARs and master the bus (DMA,
    /// MSI-X messages).
    ///
    /// Every BAR is sized here, once, with decoding off for all of them together: sizing
    /// writes a BAR (all ones, then back), and with decoding on each write — and each
    /// switch of decoding around a single BAR — makes the hypervisor rebuild the guest's
    /// memory map, a few hundred microseconds apiece under TCG. Done this way a device
    /// costs two such changes (decoding off, then on) instead of about ten.
    pub fn enable_memory_and_bus_master(&mut self, df: DeviceFunction) {
        let (_, command) = self.root.get_status_command(df);
        if !self.sized.contains(&(df.bus, df.device, df.function)) {
            let decoding = Command::IO_SPACE | Command::MEMORY_SPACE;
            if command.intersects(decoding) {
                self.root.set_command(df, command - decoding);
            }
            self.size_bars(df);
        }
        self.root
            .set_command(df, command | Command::MEMORY_SPACE | Command::BUS_MASTER);
    }

    /// Sizes every BAR of `df`, whose decoding the caller has switched off, and remembers
    /// what it found; returns each implemented BAR with its index.
    pub(super) fn size_bars(&mut self, df: DeviceFunction) -> Vec<(u8, BarInfo)> {
        let mut found = Vec::new();
        let mut bar = 0;
        while bar < 6 {
            let info = self.root.bar_info(df, bar).ok().flatten();
            let sized = info
                .as_ref()
                .and_then(|info| info.memory_address_size())
                .filter(|&(address, size)| address != 0 && size != 0);
            self.bars
                .insert(((df.bus, df.device, df.function), bar), sized);
            // A 64-bit BAR takes this slot and the next.
            let step = if info.as_ref().is_some_and(BarInfo::takes_two_entries) {
                2
            } else {
                1
            };
            if let Some(info) = info {
                found.push((bar, info));
            }
            bar += step;
        }
        self.sized.insert((df.bus, df.device, df.function));
        found
    }

    /// Records that the kernel placed `df`'s memory BAR `bar` (`size` bytes) at `address`.
    pub(super) fn placed_bar(&mut self, df: DeviceFunction, bar: u8, address: u64, size: u64) {
        self.bars.insert(
            ((df.bus, df.device, df.function), bar),
            Some((address, size)),
        );
    }

    /// Lets `df` decode its memory BARs, without sizing them: for a device whose register
    /// block has a size fixed by its datasheet, found with [`PciBus::memory_bar_address`].
    /// Costs nothing if the firmware left decoding on.
    pub fn enable_memory(&mut self, df: DeviceFunction) {
        let (_, command) = self.root.get_status_command(df);
        if !command.contains(Command::MEMORY_SPACE) {
            self.root.set_command(df, command | Command::MEMORY_SPACE);
        }
    }

    /// The address the firmware assigned to `df`'s memory BAR `bar` (read, not sized:
    /// sizing costs two remappings of the guest's memory under an emulating hypervisor),
    /// if it is a memory BAR with a non-zero address.
    pub fn memory_bar_address(&self, df: DeviceFunction, bar: u8) -> Option<u64> {
        if bar > 5 {
            return None;
        }
        let offset = 0x10 + 4 * bar;
        let low = self.config.read_word(df, offset);
        if low & 1 != 0 {
            return None; // An I/O BAR.
        }
        let high = match (low >> 1) & 0b11 {
            0b10 if bar < 5 => u64::from(self.config.read_word(df, offset + 4)),
            0b10 => return None,
            _ => 0,
        };
        let address = (high << 32) | u64::from(low & !0xf);
        (address != 0).then_some(address)
    }

    /// The address and size of `df`'s memory BAR `bar`, if the firmware assigned it one
    /// (sized by [`PciBus::enable_memory_and_bus_master`], which must come first; a BAR
    /// not sized there is sized now).
    pub fn memory_bar(&mut self, df: DeviceFunction, bar: u8) -> Option<(u64, u64)> {
        let key = ((df.bus, df.device, df.function), bar);
        if let Some(known) = self.bars.get(&key) {
            return *known;
        }
        let sized = self
            .root
            .bar_info(df, bar)
            .ok()
            .flatten()
            .and_then(|info| info.memory_address_size())
            .filter(|&(address, size)| address != 0 && size != 0);
        self.bars.insert(key, sized);
        sized
    }

    /// The GSI and signalling of `df`'s INTx line, if it has one.
    pub fn intx(&self, firmware: &Firmware, df: DeviceFunction) -> Option<(u32, Trigger)> {
        let value = self.config.read_word(df, 0x3c);
        let (pin, line) = ((value >> 8) as u8, value as u8);
        if pin == 0 {
            return None;
        }
        Some(match self.config {
            // q35 (ICH9): in APIC mode, INTx of the device in slot S, pin P (0 = INTA) on
            // bus 0 reaches PIRQ E-H = GSI 20 + (S + P) mod 4, level-triggered, active-high
            // (QEMU's default chipset routing, matching its ACPI _PRT); deeper devices are
            // swizzled through their bridges first.
            ConfigSpace::Ecam { .. } => {
                let (slot, intx) = self.topology.route_to_root(df, pin);
                (
                    20 + ((slot + intx) % 4) as u32,
                    Trigger {
                        level: true,
                        active_low: false,
                    },
                )
            }
            // Legacy PCI (pc): the line register holds the ISA IRQ firmware routed INTx to;
            // PCI interrupts are level-triggered, active-low unless the MADT says otherwise.
            ConfigSpace::PortIo => {
                let (gsi, trigger) = firmware.isa_irq(line);
                let trigger = if firmware.overrides_irq(line) {
                    trigger
                } else {
                    Trigger {
                        level: true,
                        active_low: true,
                    }
                };
                (gsi, trigger)
            }
        })
    }
}
