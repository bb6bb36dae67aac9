//! The monotonic clock (TSC) and the wake-up timer (LAPIC one-shot), both calibrated once
//! against the PIT at boot.
//!
//! The appliance is tickless: [`arm_wakeup`] programs the LAPIC timer for the next deadline
//! the data plane asks for, and the CPU sleeps in `hlt` until then or until a NIC interrupts.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::devices::{lapic, pit};

/// Calibration interval.
const CALIBRATION_MS: u64 = 10;
/// Frequencies assumed if the machine has no PIT (with a warning).
const FALLBACK_TSC_HZ: u64 = 1_000_000_000;
const FALLBACK_LAPIC_HZ: u64 = 62_500_000;

static TSC_HZ: AtomicU64 = AtomicU64::new(FALLBACK_TSC_HZ);
static LAPIC_HZ: AtomicU64 = AtomicU64::new(FALLBACK_LAPIC_HZ);
static TSC_AT_BOOT: AtomicU64 = AtomicU64::new(0);

fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects; every x86_64 CPU has it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// What calibration measured.
#[derive(Clone, Copy, Debug)]
pub struct Calibration {
    /// TSC frequency in Hz.
    pub tsc_hz: u64,
    /// LAPIC timer tick frequency (after its divider) in Hz.
    pub lapic_hz: u64,
    /// Whether a PIT was found (else fallbacks were assumed).
    pub measured: bool,
}

/// Measures the TSC and LAPIC timer frequencies. Call once, after the LAPIC is up.
pub fn calibrate() -> Calibration {
    TSC_AT_BOOT.store(rdtsc(), Ordering::Relaxed);
    let mut tsc_start = 0;
    let mut lapic_start = 0;
    let measured = pit::wait_ms(CALIBRATION_MS, || {
        lapic::start_free_running();
        lapic_start = lapic::current_count();
        tsc_start = rdtsc();
    });
    let tsc_end = rdtsc();
    let lapic_end = lapic::current_count();
    lapic::arm_one_shot(0);
    if measured {
        let tsc_hz = (tsc_end - tsc_start) * 1000 / CALIBRATION_MS;
        let lapic_hz = (lapic_start.saturating_sub(lapic_end) as u64) * 1000 / CALIBRATION_MS;
        if tsc_hz > 0 && lapic_hz > 0 {
            TSC_HZ.store(tsc_hz, Ordering::Relaxed);
            LAPIC_HZ.store(lapic_hz, Ordering::Relaxed);
        }
    }
    Calibration {
        tsc_hz: TSC_HZ.load(Ordering::Relaxed),
        lapic_hz: LAPIC_HZ.load(Ordering::Relaxed),
        measured,
    }
}

/// Microseconds since calibration.
pub fn now_micros() -> u64 {
    let ticks = rdtsc().wrapping_sub(TSC_AT_BOOT.load(Ordering::Relaxed));
    let hz = TSC_HZ.load(Ordering::Relaxed).max(1);
    ((ticks as u128) * 1_000_000 / hz as u128) as u64
}

/// The data plane's notion of now.
pub fn now() -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros(now_micros() as i64)
}

/// Arms the wake-up timer to fire `after_micros` from now (clamped to what the LAPIC timer
/// can count; the caller re-arms after every wake-up anyway).
pub fn arm_wakeup(after_micros: u64) {
    let hz = LAPIC_HZ.load(Ordering::Relaxed);
    let ticks = ((after_micros as u128) * hz as u128 / 1_000_000).clamp(1, u32::MAX as u128);
    lapic::arm_one_shot(ticks as u32);
}
