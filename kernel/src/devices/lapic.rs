//! The local APIC (xAPIC, memory-mapped): end of interrupt and the one-shot timer.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::interrupts::Vector;
use crate::memory::paging;

const REG_ID: u64 = 0x20;
const REG_TPR: u64 = 0x80;
const REG_EOI: u64 = 0xb0;
const REG_SVR: u64 = 0xf0;
const REG_LVT_TIMER: u64 = 0x320;
const REG_TIMER_INITIAL: u64 = 0x380;
const REG_TIMER_CURRENT: u64 = 0x390;
const REG_TIMER_DIVIDE: u64 = 0x3e0;
/// Divide configuration value for "divide by 16".
const DIVIDE_BY_16: u32 = 0x3;
const LVT_MASKED: u32 = 1 << 16;

/// The LAPIC's register page, once mapped (0 before [`init`]).
static BASE: AtomicU64 = AtomicU64::new(0);

/// The address of register `reg`, once the register page is mapped.
fn register(reg: u64) -> Option<*mut u32> {
    match BASE.load(Ordering::Relaxed) {
        0 => None,
        base => Some((base + reg) as *mut u32),
    }
}

/// Reads `reg`; 0 before [`init`] (nothing to read yet).
fn read(reg: u64) -> u32 {
    match register(reg) {
        // SAFETY: `BASE` is set only after `init` mapped the LAPIC's 4 KiB register page
        // (uncached); `reg` is one of this module's register offsets, all 16-byte aligned
        // 32-bit registers inside that page, and reading them has no side effect.
        Some(address) => unsafe { address.read_volatile() },
        None => 0,
    }
}

/// Writes `reg`; ignored before [`init`].
fn write(reg: u64, value: u32) {
    if let Some(address) = register(reg) {
        // SAFETY: as in `read`: a register of the mapped page. Writes program the LAPIC
        // (EOI, timer, spurious vector) as each caller documents.
        unsafe { address.write_volatile(value) }
    }
}

/// Maps and enables the LAPIC at `base`, with the timer masked.
pub fn init(base: u64) -> Result<(), paging::PagingError> {
    paging::map_device(base, 4096)?;
    BASE.store(base, Ordering::Relaxed);
    write(REG_TPR, 0);
    write(REG_SVR, (1 << 8) | Vector::SPURIOUS.index() as u32);
    write(REG_TIMER_DIVIDE, DIVIDE_BY_16);
    write(REG_LVT_TIMER, LVT_MASKED | Vector::TIMER.index() as u32);
    Ok(())
}

/// This CPU's APIC id.
pub fn id() -> u8 {
    (read(REG_ID) >> 24) as u8
}

/// Base of the x86 MSI address window (Intel SDM 10.11.1).
const MSI_ADDRESS_BASE: u64 = 0xfee0_0000;

/// The MSI message (address, data) that delivers `vector` to the LAPIC with id `apic_id`:
/// physical destination, fixed delivery, edge-triggered.
pub fn msi_message(apic_id: u8, vector: Vector) -> (u64, u32) {
    (
        MSI_ADDRESS_BASE | (apic_id as u64) << 12,
        vector.index() as u32,
    )
}

/// Signals the end of the interrupt being handled.
pub fn end_of_interrupt() {
    write(REG_EOI, 0);
}

/// Starts the timer counting down from its maximum (for calibration).
pub fn start_free_running() {
    write(REG_LVT_TIMER, LVT_MASKED | Vector::TIMER.index() as u32);
    write(REG_TIMER_INITIAL, u32::MAX);
}

/// The timer's current count.
pub fn current_count() -> u32 {
    read(REG_TIMER_CURRENT)
}

/// Arms a one-shot timer interrupt after `ticks` timer ticks (0 disarms it).
pub fn arm_one_shot(ticks: u32) {
    write(REG_LVT_TIMER, Vector::TIMER.index() as u32);
    write(REG_TIMER_INITIAL, ticks);
}
