//! Deliberate faults, for the end-to-end tests that prove the kernel fails closed and that
//! the watchdog acts (`moat.fault=...` on the command line). Compiled in only with the
//! `fault-injection` feature: a release image reports the option and ignores it.

use crate::cmdline::Options;

#[cfg(feature = "fault-injection")]
mod injected {
    use core::sync::atomic::{AtomicBool, Ordering};

    use crate::cmdline::{InjectedFault, Options};
    use crate::{println, time};

    /// What each received frame costs under `moat.fault=slow`: enough that any flood keeps
    /// the main loop busy, round after round, without one idle round.
    const SLOW_FRAME_MICROS: u64 = 200;

    static SLOW: AtomicBool = AtomicBool::new(false);

    /// Triggers the fault the command line asks for (called once the appliance is ready).
    pub fn inject(options: &Options) {
        match options.fault {
            Some(InjectedFault::PageFault) => {
                // SAFETY: deliberately unsound — reading the unmapped page 0 must fault; this
                // is how the tests prove a page fault is reported and fails closed.
                let value = unsafe { core::ptr::read_volatile(0x10 as *const u64) };
                println!("moat: fault injection did not fault ({value})");
            }
            Some(InjectedFault::Panic) => {
                panic!("fault injection requested on the command line")
            }
            Some(InjectedFault::Hang) => {
                println!("moat: fault injection: the main loop stops (interrupts off)");
                x86_64::instructions::interrupts::disable();
                loop {
                    core::hint::spin_loop();
                }
            }
            Some(InjectedFault::SlowFrames) => {
                println!(
                    "moat: fault injection: each received frame costs {SLOW_FRAME_MICROS} µs more"
                );
                SLOW.store(true, Ordering::Relaxed);
            }
            None => {}
        }
    }

    /// Called for each received frame: spins for a while under `moat.fault=slow`.
    pub fn per_frame() {
        if SLOW.load(Ordering::Relaxed) {
            let until = time::now_micros() + SLOW_FRAME_MICROS;
            while time::now_micros() < until {
                core::hint::spin_loop();
            }
        }
    }
}

/// Triggers the fault the command line asks for (called once the appliance is ready).
pub fn inject(options: &Options) {
    #[cfg(feature = "fault-injection")]
    injected::inject(options);
    #[cfg(not(feature = "fault-injection"))]
    if options.fault.is_some() {
        log::warn!("moat.fault ignored: this image was built without fault injection");
    }
}

/// Called by the main loop for each received frame (`moat.fault=slow`); nothing in a
/// release image.
#[inline(always)]
pub fn per_frame() {
    #[cfg(feature = "fault-injection")]
    injected::per_frame();
}
