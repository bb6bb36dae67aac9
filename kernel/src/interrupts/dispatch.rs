//! The one function every interrupt and exception enters, from the stubs.
//!
//! A device-interrupt handler does exactly three things: masks its line if it is a
//! level-triggered I/O APIC line ([`lines`]), records the vector in [`pending`], and
//! acknowledges the LAPIC. It takes no lock ([`MainLock`](super::MainLock) refuses) and
//! allocates nothing (the heap refuses).

use super::context::as_handler;
use super::{exceptions, lines, pending, TrapFrame, Vector};
use crate::devices::lapic;

/// Called by the stubs with interrupts disabled (every gate is an interrupt gate).
pub(super) extern "C" fn interrupt_dispatch(frame: &mut TrapFrame) {
    let vector = Vector::from_index(frame.vector as u8);
    if vector.is_exception() {
        exceptions::fatal(frame);
    }
    if vector == Vector::SPURIOUS {
        // Spurious interrupts are not acknowledged (Intel SDM 10.9).
        return;
    }
    as_handler(|off| {
        if let Some(gsi) = vector.gsi() {
            lines::mask_if_level(off, gsi);
        }
        // Timer, lines, MSI-X and any vector nobody routed (a stray message): all recorded,
        // all acknowledged; the main loop decides what each means.
        pending::record(vector);
        lapic::end_of_interrupt();
    });
}
