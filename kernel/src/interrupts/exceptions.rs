//! Reports for CPU exceptions. Every exception is fatal: the appliance fails closed.

use x86_64::registers::control::Cr2;

use super::TrapFrame;
use crate::memory::paging::is_stack_guard;

/// Names of the architectural exception vectors.
const NAMES: [&str; 32] = [
    "divide error",
    "debug",
    "non-maskable interrupt",
    "breakpoint",
    "overflow",
    "bound range exceeded",
    "invalid opcode",
    "device not available",
    "double fault",
    "coprocessor segment overrun",
    "invalid TSS",
    "segment not present",
    "stack-segment fault",
    "general protection fault",
    "page fault",
    "reserved (15)",
    "x87 floating-point error",
    "alignment check",
    "machine check",
    "SIMD floating-point error",
    "virtualization exception",
    "control protection exception",
    "reserved (22)",
    "reserved (23)",
    "reserved (24)",
    "reserved (25)",
    "reserved (26)",
    "reserved (27)",
    "hypervisor injection exception",
    "VMM communication exception",
    "security exception",
    "reserved (31)",
];

const VECTOR_DOUBLE_FAULT: u64 = 8;
const VECTOR_PAGE_FAULT: u64 = 14;

/// Prints the report for an exception and stops the appliance.
pub fn fatal(frame: &TrapFrame) -> ! {
    let name = NAMES
        .get(frame.vector as usize)
        .copied()
        .unwrap_or("unknown");
    let cr2 = Cr2::read_raw();
    let hint = if (frame.vector == VECTOR_PAGE_FAULT || frame.vector == VECTOR_DOUBLE_FAULT)
        && is_stack_guard(cr2)
    {
        " (kernel stack overflow)"
    } else if frame.vector == VECTOR_PAGE_FAULT {
        page_fault_cause(frame.error_code)
    } else {
        ""
    };
    crate::fatal::stop(format_args!(
        "{name} (vector {}) error {:#x} rip {:#x} cr2 {:#x} rsp {:#x}{hint}",
        frame.vector, frame.error_code, frame.rip, cr2, frame.rsp
    ))
}

fn page_fault_cause(error: u64) -> &'static str {
    let present = error & 1 != 0;
    let write = error & 2 != 0;
    let fetch = error & 16 != 0;
    match (present, write, fetch) {
        (false, _, _) => " (access to an unmapped page)",
        (true, _, true) => " (execute of a no-execute page)",
        (true, true, _) => " (write to a read-only page)",
        (true, false, false) => " (protection violation)",
    }
}
