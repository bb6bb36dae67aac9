//! The Moat unikernel: boots, finds its NICs and runs the data plane.
//!
//! Only the hardware layer lives here (boot, memory, interrupts, ACPI, PCI, virtio); every
//! decision about packets is made by the portable `dataplane` crate.
#![no_std]
#![no_main]

extern crate alloc;

mod acpi;
mod boot;
mod cmdline;
mod console;
mod devices;
mod embedded_policy;
mod entropy;
mod fatal;
mod fault;
mod interrupts;
mod memory;
mod platform;
mod time;

use boot::BootInfo;

/// Version printed in the banner.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The 64-bit entry, called by the boot code with the boot protocol tag and the physical
/// address of the loader's information structure.
#[unsafe(no_mangle)]
pub extern "C" fn kernel_start(protocol: u32, info: u32) -> ! {
    time::mark_entry();
    console::init(false);
    // SAFETY: `protocol` and `info` are what the entry code received from the loader, and
    // the early identity map is still active.
    let boot = match unsafe { BootInfo::read(protocol, info) } {
        Ok(boot) => boot,
        Err(e) => fatal::stop(format_args!("cannot read boot information: {e}")),
    };
    platform::run(&boot)
}
