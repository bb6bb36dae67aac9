//! The monotonic clock (TSC) and the wake-up timer (LAPIC one-shot), both calibrated once
//! against the PIT at boot.
//!
//! Calibration samples the PIT count, the TSC and the LAPIC timer together, at the start
//! and after about [`CALIBRATION_MS`]; each sample brackets the PIT read between two TSC
//! reads and is retried if the bracket is long (the vCPU was descheduled mid-sample), so a
//! busy host does not skew the result.
//!
//! The appliance is tickless: [`arm_wakeup`] programs the LAPIC timer for the next deadline
//! the data plane asks for, and the CPU sleeps in `hlt` until then or until a NIC interrupts.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::devices::{lapic, pit};

/// Calibration interval. Each end's PIT read is bracketed by TSC reads a few microseconds
/// apart (the best of four), so 2 ms measure the frequencies to within about 0.2%, which
/// the data plane's timers (seconds, with a tick of milliseconds) do not notice; every
/// millisecond more is a millisecond more of boot.
const CALIBRATION_MS: u64 = 2;
/// Frequencies assumed if the machine has no PIT (with a warning).
const FALLBACK_TSC_HZ: u64 = 1_000_000_000;
const FALLBACK_LAPIC_HZ: u64 = 62_500_000;
/// Reads of an unchanged PIT count after which the PIT is considered absent.
const STUCK_READS: u32 = 100_000;

static TSC_HZ: AtomicU64 = AtomicU64::new(FALLBACK_TSC_HZ);
static LAPIC_HZ: AtomicU64 = AtomicU64::new(FALLBACK_LAPIC_HZ);
static TSC_AT_BOOT: AtomicU64 = AtomicU64::new(0);
static TSC_AT_ENTRY: AtomicU64 = AtomicU64::new(0);

/// Records the moment the kernel was entered (call first thing), for [`since_entry_micros`].
pub fn mark_entry() {
    TSC_AT_ENTRY.store(rdtsc(), Ordering::Relaxed);
}

/// Most boot steps [`checkpoint`] keeps (the boot notes 16; later ones are not kept).
const CHECKPOINTS: usize = 17;

/// Boot steps and the TSC when each ended, for the boot timeline (`moat.log=debug`).
static TIMELINE: spin::Mutex<([(&str, u64); CHECKPOINTS], usize)> =
    spin::Mutex::new(([("", 0); CHECKPOINTS], 0));

/// Notes that the boot step `label` just ended. Cheap (no console output), and usable
/// before calibration: the timeline is converted to microseconds when it is printed.
pub fn checkpoint(label: &'static str) {
    let tsc = rdtsc();
    let mut timeline = TIMELINE.lock();
    let (steps, len) = &mut *timeline;
    if let Some(slot) = steps.get_mut(*len) {
        *slot = (label, tsc);
        *len += 1;
    }
}

/// Calls `each` with every checkpoint's label, microseconds since kernel entry and
/// microseconds since the previous checkpoint (meaningful once calibrated).
pub fn for_each_checkpoint(mut each: impl FnMut(&str, u64, u64)) {
    let entry = TSC_AT_ENTRY.load(Ordering::Relaxed);
    let hz = TSC_HZ.load(Ordering::Relaxed).max(1) as u128;
    let micros = |ticks: u64| ((ticks as u128) * 1_000_000 / hz) as u64;
    let timeline = TIMELINE.lock();
    let (steps, len) = &*timeline;
    let mut previous = entry;
    for &(label, tsc) in &steps[..*len] {
        each(
            label,
            micros(tsc.wrapping_sub(entry)),
            micros(tsc.wrapping_sub(previous)),
        );
        previous = tsc;
    }
}

/// Microseconds since [`mark_entry`] (meaningful once calibrated).
pub fn since_entry_micros() -> u64 {
    let ticks = rdtsc().wrapping_sub(TSC_AT_ENTRY.load(Ordering::Relaxed));
    ((ticks as u128) * 1_000_000 / TSC_HZ.load(Ordering::Relaxed).max(1) as u128) as u64
}

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

#[derive(Clone, Copy)]
struct Sample {
    pit: u16,
    tsc: u64,
    lapic: u32,
    bracket: u64,
}

fn sample() -> Sample {
    let mut best: Option<Sample> = None;
    for _ in 0..4 {
        let before = rdtsc();
        let pit = pit::count();
        let after = rdtsc();
        let lapic = lapic::current_count();
        let s = Sample {
            pit,
            tsc: before / 2 + after / 2,
            lapic,
            bracket: after - before,
        };
        if best.is_none_or(|b| s.bracket < b.bracket) {
            best = Some(s);
        }
    }
    best.unwrap_or(Sample {
        pit: 0,
        tsc: rdtsc(),
        lapic: 0,
        bracket: 0,
    })
}

/// Measures the TSC and LAPIC timer frequencies. Call once, after the LAPIC is up.
pub fn calibrate() -> Calibration {
    TSC_AT_BOOT.store(rdtsc(), Ordering::Relaxed);
    let ticks = (pit::PIT_HZ * CALIBRATION_MS / 1000) as u16;
    pit::start();
    lapic::start_free_running();
    let first = sample();
    let mut last = first;
    let mut unchanged = 0u32;
    let measured = loop {
        let now = sample();
        if first.pit.wrapping_sub(now.pit) >= ticks {
            last = now;
            break true;
        }
        if now.pit == last.pit {
            unchanged += 1;
            if unchanged > STUCK_READS {
                break false;
            }
        } else {
            unchanged = 0;
            last = now;
        }
    };
    lapic::arm_one_shot(0);
    if measured {
        let elapsed = first.pit.wrapping_sub(last.pit) as u64;
        let tsc_hz = (last.tsc - first.tsc) * pit::PIT_HZ / elapsed;
        let lapic_hz = (first.lapic.saturating_sub(last.lapic) as u64) * pit::PIT_HZ / elapsed;
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
