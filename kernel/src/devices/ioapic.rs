//! I/O APICs: route global system interrupts (GSIs) to vectors on this CPU.

use spin::Mutex;

use crate::memory::paging;

/// Most I/O APICs handled.
const MAX_IOAPICS: usize = 4;
const REG_VERSION: u32 = 0x01;
const REG_REDIRECTION: u32 = 0x10;
const MASKED: u64 = 1 << 16;
const LEVEL: u64 = 1 << 15;
const ACTIVE_LOW: u64 = 1 << 13;

#[derive(Clone, Copy)]
struct IoApic {
    base: u64,
    gsi_base: u32,
    lines: u32,
}

struct IoApics {
    list: [Option<IoApic>; MAX_IOAPICS],
}

static IOAPICS: Mutex<IoApics> = Mutex::new(IoApics {
    list: [None; MAX_IOAPICS],
});

impl IoApic {
    fn read(&self, reg: u32) -> u32 {
        // SAFETY: `base` is a mapped IOAPIC register window: IOREGSEL at +0, IOWIN at +0x10.
        unsafe {
            (self.base as *mut u32).write_volatile(reg);
            ((self.base + 0x10) as *const u32).read_volatile()
        }
    }

    fn write(&self, reg: u32, value: u32) {
        // SAFETY: as in `read`.
        unsafe {
            (self.base as *mut u32).write_volatile(reg);
            ((self.base + 0x10) as *mut u32).write_volatile(value);
        }
    }

    fn entry(&self, line: u32) -> u64 {
        let low = self.read(REG_REDIRECTION + 2 * line) as u64;
        let high = self.read(REG_REDIRECTION + 2 * line + 1) as u64;
        low | (high << 32)
    }

    fn set_entry(&self, line: u32, value: u64) {
        // Mask first so the entry is never live half-written.
        self.write(REG_REDIRECTION + 2 * line, (value as u32) | MASKED as u32);
        self.write(REG_REDIRECTION + 2 * line + 1, (value >> 32) as u32);
        self.write(REG_REDIRECTION + 2 * line, value as u32);
    }
}

/// Registers (and maps) an I/O APIC from the MADT, masking all its lines.
pub fn add(base: u64, gsi_base: u32) -> Result<(), paging::PagingError> {
    paging::map_device(base, 4096)?;
    let mut apic = IoApic {
        base,
        gsi_base,
        lines: 0,
    };
    apic.lines = ((apic.read(REG_VERSION) >> 16) & 0xff) + 1;
    for line in 0..apic.lines {
        apic.set_entry(line, MASKED);
    }
    let mut ioapics = IOAPICS.lock();
    if let Some(slot) = ioapics.list.iter_mut().find(|s| s.is_none()) {
        *slot = Some(apic);
    }
    Ok(())
}

fn find(gsi: u32) -> Option<(IoApic, u32)> {
    let ioapics = IOAPICS.lock();
    ioapics
        .list
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
pub fn route(gsi: u32, vector: u8, trigger: Trigger, apic_id: u8) -> bool {
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
    x86_64::instructions::interrupts::without_interrupts(|| apic.set_entry(line, entry));
    true
}

/// Masks or unmasks `gsi` (no effect if it is not routed).
pub fn set_masked(gsi: u32, masked: bool) {
    let Some((apic, line)) = find(gsi) else {
        return;
    };
    x86_64::instructions::interrupts::without_interrupts(|| {
        let entry = apic.entry(line);
        let new = if masked {
            entry | MASKED
        } else {
            entry & !MASKED
        };
        if new != entry {
            apic.write(REG_REDIRECTION + 2 * line, new as u32);
        }
    });
}
