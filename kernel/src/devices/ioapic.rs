//! I/O APICs: route global system interrupts (GSIs) to vectors on this CPU.
//!
//! The list of I/O APICs is written once at boot ([`init`]) and read-only afterwards, so
//! finding the one that serves a GSI takes no lock, in or out of interrupt context. Each
//! I/O APIC is programmed through an index/data register pair (IOREGSEL, IOWIN): every
//! access needs an [`InterruptsOff`] proof, so a handler (which runs with interrupts off)
//! can never move IOREGSEL between the main loop's select and its data access.

use spin::Once;

use crate::acpi::IoApicInfo;
use crate::interrupts::InterruptsOff;
use crate::memory::paging;

/// Most I/O APICs handled.
pub const MAX_IOAPICS: usize = 4;
const REG_VERSION: u32 = 0x01;
const REG_REDIRECTION: u32 = 0x10;
/// IOWIN's offset from IOREGSEL.
const IOWIN: u64 = 0x10;
const MASKED: u64 = 1 << 16;
const LEVEL: u64 = 1 << 15;
const ACTIVE_LOW: u64 = 1 << 13;

#[derive(Clone, Copy, Debug)]
struct IoApic {
    base: u64,
    gsi_base: u32,
    lines: u32,
}

/// The I/O APICs, set once by [`init`].
static IOAPICS: Once<[Option<IoApic>; MAX_IOAPICS]> = Once::new();

impl IoApic {
    fn read(&self, _off: &InterruptsOff, reg: u32) -> u32 {
        // SAFETY: `base` is a mapped I/O APIC register window (mapped in `init` before the
        // I/O APIC was listed): IOREGSEL at +0, IOWIN at +0x10, both 32-bit. Interrupts are
        // off (the proof), so no handler runs between the select and the read.
        unsafe {
            (self.base as *mut u32).write_volatile(reg);
            ((self.base + IOWIN) as *const u32).read_volatile()
        }
    }

    fn write(&self, _off: &InterruptsOff, reg: u32, value: u32) {
        // SAFETY: as in `read`: a mapped register window, accessed with interrupts off.
        unsafe {
            (self.base as *mut u32).write_volatile(reg);
            ((self.base + IOWIN) as *mut u32).write_volatile(value);
        }
    }

    fn entry(&self, off: &InterruptsOff, line: u32) -> u64 {
        let low = self.read(off, REG_REDIRECTION + 2 * line) as u64;
        let high = self.read(off, REG_REDIRECTION + 2 * line + 1) as u64;
        low | (high << 32)
    }

    fn set_entry(&self, off: &InterruptsOff, line: u32, value: u64) {
        // Mask first so the entry is never live half-written.
        self.write(
            off,
            REG_REDIRECTION + 2 * line,
            (value as u32) | MASKED as u32,
        );
        self.write(off, REG_REDIRECTION + 2 * line + 1, (value >> 32) as u32);
        self.write(off, REG_REDIRECTION + 2 * line, value as u32);
    }
}

/// Maps every I/O APIC in `found`, masks all their lines and freezes the list. Call once,
/// at boot, before interrupts are enabled; later calls change nothing.
pub fn init(
    off: &InterruptsOff,
    found: impl Iterator<Item = IoApicInfo>,
) -> Result<(), (u64, paging::PagingError)> {
    let mut list = [None; MAX_IOAPICS];
    for (slot, at) in list.iter_mut().zip(found) {
        paging::map_device(at.address, 4096).map_err(|e| (at.address, e))?;
        let mut apic = IoApic {
            base: at.address,
            gsi_base: at.gsi_base,
            lines: 0,
        };
        apic.lines = ((apic.read(off, REG_VERSION) >> 16) & 0xff) + 1;
        for line in 0..apic.lines {
            apic.set_entry(off, line, MASKED);
        }
        *slot = Some(apic);
    }
    IOAPICS.call_once(|| list);
    Ok(())
}

fn find(gsi: u32) -> Option<(IoApic, u32)> {
    IOAPICS
        .get()?
        .iter()
        .flatten()
        .find(|a| gsi >= a.gsi_base && gsi < a.gsi_base + a.lines)
        .map(|a| (*a, gsi - a.gsi_base))
}

/// How a line signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trigger {
    /// Level-triggered (else edge).
    pub level: bool,
    /// Active-low (else active-high).
    pub active_low: bool,
}

/// Routes `gsi` to `vector` on the CPU with APIC id `apic_id`, unmasked. Returns `false` if
/// no I/O APIC serves that GSI.
pub fn route(off: &InterruptsOff, gsi: u32, vector: u8, trigger: Trigger, apic_id: u8) -> bool {
    let Some((apic, line)) = find(gsi) else {
        return false;
    };
    let mut entry = vector as u64 | ((apic_id as u64) << 56);
    if trigger.level {
        entry |= LEVEL;
    }
    if trigger.active_low {
        entry |= ACTIVE_LOW;
    }
    apic.set_entry(off, line, entry);
    true
}

/// Masks or unmasks `gsi` (no effect if no I/O APIC serves it).
pub fn set_masked(off: &InterruptsOff, gsi: u32, masked: bool) {
    let Some((apic, line)) = find(gsi) else {
        return;
    };
    let entry = apic.entry(off, line);
    let new = if masked {
        entry | MASKED
    } else {
        entry & !MASKED
    };
    if new != entry {
        apic.write(off, REG_REDIRECTION + 2 * line, new as u32);
    }
}
