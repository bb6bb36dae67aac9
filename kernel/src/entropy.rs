//! Boot entropy for the data plane's keyed hash and NAT port choice.
//!
//! RDRAND when the CPU has it (QEMU's default CPU models under KVM do; TCG's usually not),
//! mixed with the TSC, which differs at every boot by the time the firmware and the host
//! took. Not a cryptographic key source: it only has to be unpredictable to a remote
//! sender, who neither sees the TSC nor the RDRAND output.

use core::arch::x86_64::{__cpuid, _rdrand64_step, _rdtsc};

fn has_rdrand() -> bool {
    let leaf1 = __cpuid(1);
    leaf1.ecx & (1 << 30) != 0
}

/// # Safety
/// The CPU must support RDRAND (CPUID.1:ECX bit 30).
#[target_feature(enable = "rdrand")]
unsafe fn rdrand() -> Option<u64> {
    let mut value = 0u64;
    for _ in 0..10 {
        if _rdrand64_step(&mut value) == 1 {
            return Some(value);
        }
    }
    None
}

/// SplitMix64's finaliser: spreads every input bit over the output.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A 64-bit seed that differs at every boot.
pub fn boot_seed() -> u64 {
    // SAFETY: reading the TSC has no side effects.
    let tsc = unsafe { _rdtsc() };
    let random = if has_rdrand() {
        // SAFETY: CPUID just said the CPU has RDRAND.
        unsafe { rdrand() }
    } else {
        None
    };
    mix(tsc ^ random.unwrap_or(0).rotate_left(32))
}
