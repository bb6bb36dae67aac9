//! Failing closed: the panic handler and the end of every fatal path.
//!
//! A panic or CPU exception means the kernel's state can no longer be trusted, so it must
//! not move another packet: interrupts are disabled, a report is printed on the serial
//! console through a lock-free writer, and the CPU halts for good. When QEMU's
//! `isa-debug-exit` device is present (tests add it at port 0xf4), the kernel first writes
//! [`EXIT_FAILURE`] there so QEMU exits with status `(1 << 1) | 1 = 3`.

use core::fmt::Write;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::instructions::port::Port;

use crate::console::EmergencyWriter;

/// I/O port of QEMU's `isa-debug-exit` device (as the tests configure it).
const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Value written to the exit device on a fatal error (QEMU exit status 3).
pub const EXIT_FAILURE: u32 = 1;

/// Set once a fatal report has started, so a fault while reporting does not recurse.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Prints `moat: FATAL <what>` and stops the appliance for good.
pub fn stop(what: core::fmt::Arguments) -> ! {
    x86_64::instructions::interrupts::disable();
    if !STOPPING.swap(true, Ordering::SeqCst) {
        EmergencyWriter::send_queued();
        let _ = writeln!(EmergencyWriter, "moat: FATAL {what}");
        let _ = writeln!(EmergencyWriter, "moat: halted (fail closed)");
    }
    halt_forever(true)
}

/// Disables interrupts and halts forever; with `failure`, first asks QEMU's exit device
/// (if present) to end the VM with the failure status.
pub fn halt_forever(failure: bool) -> ! {
    x86_64::instructions::interrupts::disable();
    if failure {
        let mut port: Port<u32> = Port::new(DEBUG_EXIT_PORT);
        // SAFETY: port 0xf4 is QEMU's debug-exit device when present and unassigned (writes
        // ignored) otherwise; the kernel is stopping, so ending the VM is the intent.
        unsafe { port.write(EXIT_FAILURE) };
    }
    loop {
        x86_64::instructions::hlt();
    }
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    match info.location() {
        Some(at) => stop(format_args!(
            "panic at {}:{}:{}: {}",
            at.file(),
            at.line(),
            at.column(),
            info.message()
        )),
        None => stop(format_args!("panic: {}", info.message())),
    }
}
