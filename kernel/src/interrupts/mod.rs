//! CPU exceptions and device interrupts.
//!
//! # The rule
//!
//! 1. **A handler only records and acknowledges.** It sets the bit of its vector in
//!    [`pending`] (atomics), masks its I/O APIC line if the line is level-triggered, and
//!    writes the LAPIC's end-of-interrupt register. Everything else — reading a device's
//!    status, draining its queues, unmasking its line — is the main loop's work.
//! 2. **Nothing taken in interrupt context is taken elsewhere with interrupts enabled.**
//!    Handlers take no lock at all: the kernel's only lock type, [`MainLock`], and the heap
//!    stop the kernel with a report if a handler reaches them. The state handlers read is
//!    written once at boot and read-only afterwards (the I/O APIC list, the level-line mask).
//! 3. **Register pairs shared with a handler are used with interrupts off.** The I/O APIC's
//!    IOREGSEL/IOWIN pair is reachable only through an [`InterruptsOff`] proof, which
//!    [`without_interrupts`] and the dispatcher alone can make.
//! 4. **Prefer messages to lines.** virtio-pci NICs interrupt through MSI-X: edge-triggered,
//!    one vector per queue, nothing to mask, nothing to read. INTx through the I/O APIC is
//!    the fallback for devices without MSI-X; `microvm`'s virtio-mmio devices keep their
//!    lines.
//!
//! Audit of what else could share state with a handler (none does):
//! - LAPIC: handlers write only EOI, a single register; the main loop programs the timer
//!   through single registers too (no index/data pair).
//! - PIT and PCI configuration ports (index/data pairs): used only by the main flow, at boot
//!   and for the watchdog's set-up, never by a handler.
//! - Console: its lock is a [`MainLock`]; exceptions and panics print through the lock-free
//!   emergency writer, so a fault while the console is held still gets reported.
//! - Power button (ACPI SCI, GED): the handler only masks the level-triggered line; the main
//!   loop reads and clears the event registers, then unmasks.
//! - Time: the TSC and atomics written once at calibration.
//!
//! Every vector has an entry stub ([`stubs`]) that calls [`dispatch`]; vectors 0-31 are CPU
//! exceptions, all fatal: a report is printed and the appliance stops (fail closed), see
//! [`exceptions`]. The vector layout is in [`vectors`]. [`wait`] halts the CPU until the
//! next interrupt when the main loop is idle.

mod context;
mod descriptors;
mod dispatch;
mod exceptions;
pub mod lines;
mod pending;
mod stubs;
mod vectors;

pub use context::{forbid_in_handler, without_interrupts, InterruptsOff, MainLock};
pub use pending::{take, Fired};
pub use vectors::Vector;

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

/// Loads the GDT, TSS and IDT. Interrupts stay disabled until the first [`wait`].
pub fn init() {
    descriptors::init();
}

/// Halts until the next interrupt unless one fired already. Enables interrupts: only the
/// main loop calls it, holding no lock and no [`InterruptsOff`].
pub fn wait() {
    x86_64::instructions::interrupts::disable();
    if pending::any() {
        x86_64::instructions::interrupts::enable();
    } else {
        // `sti; hlt` is atomic: an interrupt arriving between the check and the halt is
        // delivered after `hlt` starts, so it wakes the CPU instead of being lost.
        x86_64::instructions::interrupts::enable_and_hlt();
    }
}
