//! The local APIC (xAPIC, memory-mapped): end of interrupt and the one-shot timer.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::interrupts::{VECTOR_SPURIOUS, VECTOR_TIMER};
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

static BASE: AtomicU64 = AtomicU64::new(0);

fn read(reg: u64) -> u32 {
    let base = BASE.load(Ordering::Relaxed);
    // SAFETY: `base` is the LAPIC's mapped register page (set in `init`); registers are
    // 32-bit, 16-byte aligned.
    unsafe { ((base + reg) as *const u32).read_volatile() }
}

fn write(reg: u64, value: u32) {
    let base = BASE.load(Ordering::Relaxed);
    if base == 0 {
        return;
    }
    // SAFETY: as in `read`.
    unsafe { ((base + reg) as *mut u32).write_volatile(value) }
}

/// Maps and enables the LAPIC at `base`, with the timer masked.
pub fn init(base: u64) -> Result<(), paging::PagingError> {
    paging::map_device(base, 4096)?;
    BASE.store(base, Ordering::Relaxed);
    write(REG_TPR, 0);
    write(REG_SVR, (1 << 8) | VECTOR_SPURIOUS as u32);
    write(REG_TIMER_DIVIDE, DIVIDE_BY_16);
    write(REG_LVT_TIMER, LVT_MASKED | VECTOR_TIMER as u32);
    Ok(())
}

/// This CPU's APIC id.
pub fn id() -> u8 {
    (read(REG_ID) >> 24) as u8
}

/// Signals the end of the interrupt being handled.
pub fn end_of_interrupt() {
    write(REG_EOI, 0);
}

/// Starts the timer counting down from its maximum (for calibration).
pub fn start_free_running() {
    write(REG_LVT_TIMER, LVT_MASKED | VECTOR_TIMER as u32);
    write(REG_TIMER_INITIAL, u32::MAX);
}

/// The timer's current count.
pub fn current_count() -> u32 {
    read(REG_TIMER_CURRENT)
}

/// Arms a one-shot timer interrupt after `ticks` timer ticks (0 disarms it).
pub fn arm_one_shot(ticks: u32) {
    write(REG_LVT_TIMER, VECTOR_TIMER as u32);
    write(REG_TIMER_INITIAL, ticks);
}
