//! ACPI: what the firmware tells us about interrupt controllers, PCI and power.
//!
//! Read once at boot with the `acpi` crate (5.x, which works on stable Rust): the MADT
//! (LAPIC, I/O APICs, ISA interrupt overrides), the FADT (power-management registers, the
//! SCI) and the MCFG (PCI Express ECAM). There is no AML interpreter: the two facts needed
//! from the DSDT — the `\_S5` sleep type for power-off and, on hardware-reduced machines
//! (`microvm`), the Generic Event Device's registers — are found by [`aml`] pattern matching.

pub mod aml;
pub mod power;

use core::ptr::NonNull;

use acpi::fadt::Fadt;
use acpi::madt::{Madt, MadtEntry};
use acpi::mcfg::Mcfg;
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};

use crate::devices::ioapic::{Trigger, MAX_IOAPICS};
use crate::memory::paging;

/// Most interrupt overrides kept.
const MAX_OVERRIDES: usize = 16;

/// Identity-maps firmware tables read-only on demand.
#[derive(Clone, Copy, Debug)]
pub struct IdentityMapper;

impl AcpiHandler for IdentityMapper {
    /// Maps a firmware table. The `acpi` crate gives this no way to fail, and a table the
    /// kernel cannot read means it cannot find its interrupt controllers or NICs: a mapping
    /// failure, or a table at address 0, stops the boot with a report naming the table's
    /// address (fail closed) instead of handing out a pointer that does not work.
    unsafe fn map_physical_region<T>(
        &self,
        physical_address: usize,
        size: usize,
    ) -> PhysicalMapping<Self, T> {
        let Some(virt) = NonNull::new(physical_address as *mut T) else {
            crate::fatal::stop(format_args!(
                "the ACPI tables point at address 0 (for {size} bytes): malformed firmware tables"
            ));
        };
        if let Err(e) = paging::map_firmware(physical_address as u64, size as u64) {
            crate::fatal::stop(format_args!(
                "cannot map the ACPI table at {physical_address:#x} ({size} bytes): {e}"
            ));
        }
        // SAFETY: identity mapping: `[physical_address, +size)` was just mapped (read-only)
        // at its physical address, so `virt` is valid for `size` bytes; the caller (the acpi
        // crate) guarantees a `T` lives there. Nothing is unmapped later.
        unsafe { PhysicalMapping::new(physical_address, virt, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// An I/O APIC from the MADT.
#[derive(Clone, Copy, Debug)]
pub struct IoApicInfo {
    /// Register base (physical).
    pub address: u64,
    /// First GSI it serves.
    pub gsi_base: u32,
}

/// An ISA IRQ that is wired to a different GSI or with non-ISA polarity/trigger.
#[derive(Clone, Copy, Debug)]
pub struct IsaOverride {
    /// ISA IRQ number.
    pub irq: u8,
    /// GSI it arrives on.
    pub gsi: u32,
    /// Its signalling.
    pub trigger: Trigger,
}

/// The FADT's power-management facts.
#[derive(Clone, Copy, Debug, Default)]
pub struct PowerRegisters {
    /// ISA IRQ of the SCI.
    pub sci_irq: u16,
    /// Port to write `acpi_enable` to, to switch the chipset into ACPI mode (0 = already).
    pub smi_command: u32,
    /// Value for `smi_command`.
    pub acpi_enable: u8,
    /// PM1a event block (status at +0, enable at +len/2), I/O port.
    pub pm1a_event: u16,
    /// PM1 event block length.
    pub pm1_event_len: u8,
    /// PM1a control block, I/O port.
    pub pm1a_control: u16,
    /// Hardware-reduced ACPI (no PM1 blocks; sleep via the sleep control register).
    pub hardware_reduced: bool,
    /// Sleep control register (hardware-reduced): address space (0 memory, 1 I/O) and address.
    pub sleep_control: Option<(u8, u64)>,
}

/// Everything the kernel learned from ACPI.
#[derive(Clone, Copy, Debug)]
pub struct Firmware {
    /// LAPIC register base.
    pub lapic_address: u64,
    ioapics: [Option<IoApicInfo>; MAX_IOAPICS],
    overrides: [Option<IsaOverride>; MAX_OVERRIDES],
    /// PCI Express ECAM window (base, first bus, last bus), if any.
    pub ecam: Option<(u64, u8, u8)>,
    /// Power-management registers, if there is a FADT.
    pub power: Option<PowerRegisters>,
    /// `\_S5` sleep type values (SLP_TYPa, SLP_TYPb), if found in the DSDT.
    pub s5: Option<(u8, u8)>,
    /// Generic Event Device (hardware-reduced power button): register base and GSI.
    pub ged: Option<aml::GedResources>,
    virtio_mmio: [Option<aml::VirtioMmioResources>; aml::MAX_VIRTIO_MMIO],
}

/// Why ACPI could not be read.
#[derive(Debug)]
pub enum FirmwareError {
    /// No RSDP was passed or found.
    NoRsdp,
    /// The tables are malformed.
    Tables(acpi::AcpiError),
    /// There is no MADT (no way to find the interrupt controllers).
    NoMadt,
}

impl core::fmt::Display for FirmwareError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            FirmwareError::NoRsdp => f.write_str("no ACPI RSDP found (the appliance needs ACPI)"),
            FirmwareError::Tables(e) => write!(f, "malformed ACPI tables: {e:?}"),
            FirmwareError::NoMadt => {
                f.write_str("no ACPI MADT table: cannot find the interrupt controllers")
            }
        }
    }
}

impl Firmware {
    /// The I/O APICs.
    pub fn ioapics(&self) -> impl Iterator<Item = &IoApicInfo> {
        self.ioapics.iter().flatten()
    }

    /// The virtio-mmio devices the DSDT declares (microvm with ACPI), in DSDT order.
    pub fn virtio_mmio(&self) -> impl Iterator<Item = &aml::VirtioMmioResources> {
        self.virtio_mmio.iter().flatten()
    }

    /// Whether the MADT overrides ISA IRQ `irq`.
    pub fn overrides_irq(&self, irq: u8) -> bool {
        self.overrides.iter().flatten().any(|o| o.irq == irq)
    }

    /// Where ISA IRQ `irq` arrives: its GSI and signalling (identity, edge, active-high unless
    /// the MADT overrides it).
    pub fn isa_irq(&self, irq: u8) -> (u32, Trigger) {
        self.overrides
            .iter()
            .flatten()
            .find(|o| o.irq == irq)
            .map(|o| (o.gsi, o.trigger))
            .unwrap_or((
                irq as u32,
                Trigger {
                    level: false,
                    active_low: false,
                },
            ))
    }
}

/// MPS INTI flags → trigger, with ISA defaults for "conforms to bus".
fn inti_trigger(flags: u16) -> Trigger {
    let active_low = flags & 0b11 == 0b11;
    let level = (flags >> 2) & 0b11 == 0b11;
    Trigger { level, active_low }
}

/// Reads the ACPI tables, starting from `rsdp` if the boot loader gave one, else by
/// searching the BIOS areas.
pub fn discover(rsdp: Option<u64>) -> Result<Firmware, FirmwareError> {
    // SAFETY: `rsdp` is the address the boot loader reported (or a kernel copy of the
    // structure); the BIOS search only reads the architectural areas below 1 MiB, which are
    // mapped.
    let tables = unsafe {
        match rsdp {
            Some(address) => AcpiTables::from_rsdp(IdentityMapper, address as usize),
            None => AcpiTables::search_for_rsdp_bios(IdentityMapper),
        }
    }
    .map_err(|e| match e {
        acpi::AcpiError::NoValidRsdp => FirmwareError::NoRsdp,
        other => FirmwareError::Tables(other),
    })?;

    let madt = tables
        .find_table::<Madt>()
        .map_err(|_| FirmwareError::NoMadt)?;
    let mut firmware = Firmware {
        lapic_address: madt.get().local_apic_address as u64,
        ioapics: [None; MAX_IOAPICS],
        overrides: [None; MAX_OVERRIDES],
        ecam: None,
        power: None,
        s5: None,
        ged: None,
        virtio_mmio: [None; aml::MAX_VIRTIO_MMIO],
    };
    let (mut ioapic_count, mut override_count) = (0, 0);
    for entry in madt.get().entries() {
        match entry {
            MadtEntry::IoApic(io) if ioapic_count < MAX_IOAPICS => {
                firmware.ioapics[ioapic_count] = Some(IoApicInfo {
                    address: io.io_apic_address as u64,
                    gsi_base: io.global_system_interrupt_base,
                });
                ioapic_count += 1;
            }
            MadtEntry::InterruptSourceOverride(o)
                if o.bus == 0 && override_count < MAX_OVERRIDES =>
            {
                firmware.overrides[override_count] = Some(IsaOverride {
                    irq: o.irq,
                    gsi: o.global_system_interrupt,
                    trigger: inti_trigger(o.flags),
                });
                override_count += 1;
            }
            MadtEntry::LocalApicAddressOverride(o) => firmware.lapic_address = o.local_apic_address,
            _ => {}
        }
    }
    drop(madt);

    if let Ok(mcfg) = tables.find_table::<Mcfg>() {
        firmware.ecam = mcfg
            .entries()
            .iter()
            .find(|e| e.pci_segment_group == 0)
            .map(|e| (e.base_address, e.bus_number_start, e.bus_number_end));
    }

    if let Ok(fadt) = tables.find_table::<Fadt>() {
        let port = |block: Result<acpi::address::GenericAddress, acpi::AcpiError>| {
            block
                .ok()
                .filter(|g| g.address_space == acpi::address::AddressSpace::SystemIo)
                .map(|g| g.address as u16)
        };
        let sleep_control = fadt.sleep_control_register().ok().flatten().map(|g| {
            (
                if g.address_space == acpi::address::AddressSpace::SystemIo {
                    1
                } else {
                    0
                },
                g.address,
            )
        });
        let flags = { fadt.flags };
        let hardware_reduced = flags.system_is_hw_reduced_acpi();
        firmware.power = Some(PowerRegisters {
            sci_irq: fadt.sci_interrupt,
            smi_command: fadt.smi_cmd_port,
            acpi_enable: fadt.acpi_enable,
            pm1a_event: if hardware_reduced {
                0
            } else {
                port(fadt.pm1a_event_block()).unwrap_or(0)
            },
            pm1_event_len: fadt
                .pm1a_event_block()
                .map(|g| g.bit_width / 8)
                .unwrap_or(4),
            pm1a_control: if hardware_reduced {
                0
            } else {
                port(fadt.pm1a_control_block()).unwrap_or(0)
            },
            hardware_reduced,
            sleep_control,
        });
    }

    if let Ok(dsdt) = tables.dsdt() {
        match paging::map_firmware(dsdt.address as u64, dsdt.length as u64) {
            Ok(()) if dsdt.address != 0 => {
                // SAFETY: the DSDT's AML stream is `length` bytes at `address` (from its
                // header), mapped read-only just above at its physical address (non-zero,
                // checked); it is firmware memory that nobody writes.
                let aml_bytes = unsafe {
                    core::slice::from_raw_parts(dsdt.address as *const u8, dsdt.length as usize)
                };
                firmware.s5 = aml::sleep_type_s5(aml_bytes);
                firmware.ged = aml::generic_event_device(aml_bytes);
                firmware.virtio_mmio = aml::virtio_mmio_devices(aml_bytes).0;
            }
            Ok(()) => log::warn!("the DSDT is at address 0: no ACPI power-off"),
            Err(e) => log::warn!(
                "cannot map the DSDT at {:#x} ({} bytes): {e}: no ACPI power-off",
                dsdt.address,
                dsdt.length
            ),
        }
    }
    Ok(firmware)
}
