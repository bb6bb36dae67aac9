//! CPU exceptions and device interrupts.
//!
//! Every vector has an entry stub ([`stubs`]); [`interrupt_dispatch`] decides:
//! - vectors 0-31 are CPU exceptions: all fatal — a report is printed and the appliance
//!   stops (fail closed), see [`exceptions`];
//! - the LAPIC timer and IOAPIC lines only record that they fired and acknowledge the
//!   interrupt. Level-triggered lines are masked until the main loop has serviced the
//!   device ([`unmask_line`]), so a device that keeps its line asserted cannot starve it.
//!
//! Interrupt handlers never touch packets or take locks the main loop holds: the main loop
//! does all the work, and [`wait`] halts the CPU until the next interrupt when it is idle.

mod descriptors;
mod exceptions;
mod stubs;

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::devices::{ioapic, lapic};

/// Vector of the LAPIC timer.
pub const VECTOR_TIMER: u8 = 0x20;
/// Vector of IOAPIC line (GSI) `n` is `VECTOR_GSI_BASE + n`.
pub const VECTOR_GSI_BASE: u8 = 0x30;
/// Highest GSI the kernel routes.
pub const MAX_GSI: u32 = 63;
/// The LAPIC's spurious-interrupt vector.
pub const VECTOR_SPURIOUS: u8 = 0xff;

/// The general-purpose registers saved by the stubs, then the vector, the error code and the
/// frame the CPU pushed.
#[repr(C)]
#[derive(Debug)]
#[allow(missing_docs)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

static TIMER_FIRED: AtomicBool = AtomicBool::new(false);
static PENDING_LINES: AtomicU64 = AtomicU64::new(0);
static LEVEL_LINES: AtomicU64 = AtomicU64::new(0);

/// Loads the GDT, TSS and IDT.
pub fn init() {
    descriptors::init();
}

/// Called by the stubs with interrupts disabled.
extern "C" fn interrupt_dispatch(frame: &mut TrapFrame) {
    let vector = frame.vector as u8;
    match vector {
        0..=31 => exceptions::fatal(frame),
        VECTOR_TIMER => {
            TIMER_FIRED.store(true, Ordering::Release);
            lapic::end_of_interrupt();
        }
        VECTOR_SPURIOUS => {}
        v if v >= VECTOR_GSI_BASE && (v - VECTOR_GSI_BASE) as u32 <= MAX_GSI => {
            let gsi = (v - VECTOR_GSI_BASE) as u32;
            if LEVEL_LINES.load(Ordering::Relaxed) & (1 << gsi) != 0 {
                ioapic::set_masked(gsi, true);
            }
            PENDING_LINES.fetch_or(1 << gsi, Ordering::AcqRel);
            lapic::end_of_interrupt();
        }
        // A vector nobody routed (a stray MSI, a mis-set device): acknowledge and go on.
        _ => lapic::end_of_interrupt(),
    }
}

/// The vector that IOAPIC line `gsi` is routed to.
pub fn vector_for_gsi(gsi: u32) -> Option<u8> {
    (gsi <= MAX_GSI).then(|| VECTOR_GSI_BASE + gsi as u8)
}

/// Notes that line `gsi` is level-triggered (masked while pending).
pub fn set_level_triggered(gsi: u32) {
    if gsi <= MAX_GSI {
        LEVEL_LINES.fetch_or(1 << gsi, Ordering::Relaxed);
    }
}

/// Takes the set of lines that fired since the last call (bit `n` = GSI `n`), and whether
/// the timer fired.
pub fn take_pending() -> (u64, bool) {
    (
        PENDING_LINES.swap(0, Ordering::AcqRel),
        TIMER_FIRED.swap(false, Ordering::AcqRel),
    )
}

/// Re-enables level-triggered lines in `lines` after their devices were serviced.
pub fn unmask_lines(lines: u64) {
    let level = lines & LEVEL_LINES.load(Ordering::Relaxed);
    for gsi in 0..=MAX_GSI {
        if level & (1 << gsi) != 0 {
            ioapic::set_masked(gsi, false);
        }
    }
}

/// Halts until the next interrupt unless one is already pending. Enables interrupts.
pub fn wait() {
    x86_64::instructions::interrupts::disable();
    if PENDING_LINES.load(Ordering::Acquire) == 0 && !TIMER_FIRED.load(Ordering::Acquire) {
        // `sti; hlt` is atomic: an interrupt arriving between the check and the halt is
        // delivered after `hlt` starts, so it wakes the CPU instead of being lost.
        x86_64::instructions::interrupts::enable_and_hlt();
    } else {
        x86_64::instructions::interrupts::enable();
    }
}
