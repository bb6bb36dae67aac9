//! Interrupt lines through the I/O APIC (INTx, virtio-mmio, the ACPI SCI and GED).
//!
//! A level-triggered line stays asserted until its device is serviced, so its handler masks
//! it before acknowledging; the main loop services the device and then unmasks the line
//! ([`unmask_serviced`]). Both sides touch the I/O APIC only with interrupts off (the
//! handler by construction, the main loop through [`without_interrupts`]), so one can never
//! interrupt the other half-way through a register pair. Edge-triggered lines are never
//! masked.

use core::sync::atomic::{AtomicU64, Ordering};

use super::context::{without_interrupts, InterruptsOff};
use super::pending::Fired;
use super::vectors::MAX_GSI;
use super::Vector;
use crate::devices::{ioapic, lapic};

/// Bit `n` set: GSI `n` is routed and level-triggered.
static LEVEL_LINES: AtomicU64 = AtomicU64::new(0);

/// Why a line could not be routed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// The GSI is above the ones the kernel routes ([`MAX_GSI`]).
    GsiOutOfRange(u32),
    /// No I/O APIC serves that GSI.
    NoIoApic(u32),
}

impl core::fmt::Display for RouteError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            RouteError::GsiOutOfRange(gsi) => {
                write!(f, "GSI {gsi} is above the {MAX_GSI} the kernel routes")
            }
            RouteError::NoIoApic(gsi) => write!(f, "no I/O APIC serves GSI {gsi}"),
        }
    }
}

/// Routes `gsi` to this CPU, unmasked, and returns the vector it arrives on. Routing a line
/// twice (two devices sharing it) is harmless.
pub fn route(gsi: u32, trigger: ioapic::Trigger) -> Result<Vector, RouteError> {
    let vector = Vector::for_gsi(gsi).ok_or(RouteError::GsiOutOfRange(gsi))?;
    if trigger.level {
        LEVEL_LINES.fetch_or(1 << gsi, Ordering::Relaxed);
    }
    let routed =
        without_interrupts(|off| ioapic::route(off, gsi, vector.index(), trigger, lapic::id()));
    if routed {
        Ok(vector)
    } else {
        Err(RouteError::NoIoApic(gsi))
    }
}

fn is_level(gsi: u32) -> bool {
    gsi <= MAX_GSI && LEVEL_LINES.load(Ordering::Relaxed) & (1 << gsi) != 0
}

/// In the handler of `gsi`'s vector: masks the line if it is level-triggered, so that it
/// does not fire again before the main loop has serviced the device.
pub(super) fn mask_if_level(off: &InterruptsOff, gsi: u32) {
    if is_level(gsi) {
        ioapic::set_masked(off, gsi, true);
    }
}

/// Unmasks the level-triggered lines that fired in `fired`, once the main loop has serviced
/// every device on them. A device that asserted its line again meanwhile interrupts at once.
pub fn unmask_serviced(fired: &Fired) {
    let level = LEVEL_LINES.load(Ordering::Relaxed);
    if level == 0 {
        return;
    }
    without_interrupts(|off| {
        for gsi in 0..=MAX_GSI {
            let serviced = level & (1 << gsi) != 0
                && Vector::for_gsi(gsi).is_some_and(|vector| fired.contains(vector));
            if serviced {
                ioapic::set_masked(off, gsi, false);
            }
        }
    });
}
