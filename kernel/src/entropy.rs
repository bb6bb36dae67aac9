//! Boot entropy: the words the appliance's keys are drawn from
//! ([`dataplane::keys::ApplianceKeys::draw`], one word per 64 bits of key, none shared).
//!
//! Each word is the CPU's random number generator's output — RDSEED (a conditioned
//! hardware entropy source) when CPUID says the CPU has it, else RDRAND (a DRBG reseeded
//! from it) — mixed with TSC jitter: the low bits of the time a short loop takes, sampled
//! many times. Either instruction may fail (report no value, under load or when the
//! hypervisor withholds it); each is retried a bounded number of times and then the next
//! source is used, down to TSC jitter alone. QEMU's TCG only offers RDRAND with some
//! `-cpu` models (`max`, recent Intel ones), so the jitter fallback is what a default TCG
//! boot gets: it differs at every boot by when and how fast the host ran the guest, but it
//! is no cryptographic source. It only has to keep the keys unknown to a remote sender, who
//! sees neither the TSC nor the hardware generator's output. The boot console says which
//! source was used ([`Entropy::source`]).

use core::arch::x86_64::{__cpuid, __cpuid_count, _rdrand64_step, _rdseed64_step, _rdtsc};
use core::fmt;

use dataplane::rng::mix;

/// The hardware source a word came from, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// No hardware generator answered: TSC jitter only.
    TscJitter,
    /// RDRAND (mixed with TSC jitter).
    Rdrand,
    /// RDSEED (mixed with TSC jitter).
    Rdseed,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Source::TscJitter => "tsc-jitter only",
            Source::Rdrand => "rdrand",
            Source::Rdseed => "rdseed",
        })
    }
}

/// RDSEED attempts per word before falling back to RDRAND (RDSEED runs dry under load;
/// Intel's guidance is to retry with a pause).
const RDSEED_ATTEMPTS: usize = 64;
/// RDRAND attempts per word (Intel's guidance: 10 failures in a row mean a broken unit).
const RDRAND_ATTEMPTS: usize = 10;
/// TSC samples folded into one word of jitter.
const JITTER_SAMPLES: u32 = 32;

/// The boot's entropy. See the module documentation.
pub struct Entropy {
    has_rdseed: bool,
    has_rdrand: bool,
    /// The weakest source any word so far came from.
    weakest: Option<Source>,
}

impl Entropy {
    /// Asks CPUID which generators the CPU has.
    pub fn probe() -> Entropy {
        let max_leaf = __cpuid(0).eax;
        let has_rdrand = __cpuid(1).ecx & (1 << 30) != 0;
        let has_rdseed = max_leaf >= 7 && __cpuid_count(7, 0).ebx & (1 << 18) != 0;
        Entropy {
            has_rdseed,
            has_rdrand,
            weakest: None,
        }
    }

    /// A fresh 64-bit word.
    pub fn next_word(&mut self) -> u64 {
        let (hardware, source) = self.hardware_word();
        self.weakest = Some(self.weakest.map_or(source, |w| w.min(source)));
        hardware ^ jitter_word()
    }

    /// The weakest source the words drawn so far came from (TSC jitter if none was drawn).
    pub fn source(&self) -> Source {
        self.weakest.unwrap_or(Source::TscJitter)
    }

    fn hardware_word(&self) -> (u64, Source) {
        if self.has_rdseed {
            // SAFETY: CPUID said the CPU has RDSEED.
            if let Some(word) = unsafe { rdseed() } {
                return (word, Source::Rdseed);
            }
        }
        if self.has_rdrand {
            // SAFETY: CPUID said the CPU has RDRAND.
            if let Some(word) = unsafe { rdrand() } {
                return (word, Source::Rdrand);
            }
        }
        (0, Source::TscJitter)
    }
}

/// Whether a generator's word is plausible: some AMD parts report success with all ones
/// (or zero) when their generator is broken.
fn plausible(word: u64) -> bool {
    word != 0 && word != u64::MAX
}

/// # Safety
/// The CPU must support RDSEED (CPUID.(EAX=7,ECX=0):EBX bit 18).
#[target_feature(enable = "rdseed")]
unsafe fn rdseed() -> Option<u64> {
    let mut word = 0u64;
    for _ in 0..RDSEED_ATTEMPTS {
        if _rdseed64_step(&mut word) == 1 && plausible(word) {
            return Some(word);
        }
        core::hint::spin_loop();
    }
    None
}

/// # Safety
/// The CPU must support RDRAND (CPUID.1:ECX bit 30).
#[target_feature(enable = "rdrand")]
unsafe fn rdrand() -> Option<u64> {
    let mut word = 0u64;
    for _ in 0..RDRAND_ATTEMPTS {
        if _rdrand64_step(&mut word) == 1 && plausible(word) {
            return Some(word);
        }
    }
    None
}

/// One word of TSC jitter: the time each of [`JITTER_SAMPLES`] short loops takes, each
/// loop's length depending on what came before, folded through [`mix`].
fn jitter_word() -> u64 {
    let mut pool = 0u64;
    // SAFETY: reading the TSC has no side effects.
    let mut last = unsafe { _rdtsc() };
    for sample in 0..JITTER_SAMPLES {
        let spins = 16 + (pool & 0x3f);
        let mut sink = last;
        for i in 0..spins {
            sink = core::hint::black_box(sink.rotate_left(7) ^ i);
        }
        // SAFETY: as above.
        let now = unsafe { _rdtsc() };
        let delta = now.wrapping_sub(last);
        last = now;
        pool = mix(pool ^ delta.rotate_left(sample * 2) ^ sink);
    }
    pool ^ last
}
