//! When the client sends its next message: exponential backoff from [`FIRST_DELAY`] up to a
//! cap, each delay randomized by up to ±[`JITTER_PERCENT`] % (RFC 2131 4.1 randomizes its
//! 4 s first delay by ±1 s: the same quarter, scaled), from a small seeded generator.

use smoltcp::time::Duration;

/// The delay before the first retransmission.
pub const FIRST_DELAY: Duration = Duration::from_secs(1);
/// How far each delay is randomized, either way, in percent.
pub const JITTER_PERCENT: u64 = 25;

/// A retransmission schedule.
#[derive(Clone, Debug)]
pub struct Backoff {
    /// Delays handed out since the last reset.
    attempts: u32,
    cap: Duration,
    rng: u64,
}

impl Backoff {
    /// A schedule whose delays grow up to `cap`, jittered from `seed`.
    pub fn new(cap: Duration, seed: u64) -> Backoff {
        Backoff {
            attempts: 0,
            cap,
            // xorshift must not start at zero.
            rng: seed | 1,
        }
    }

    /// Starts again from [`FIRST_DELAY`], growing up to `cap`.
    pub fn reset(&mut self, cap: Duration) {
        self.attempts = 0;
        self.cap = cap;
    }

    /// Lets the delays grow further, up to `cap` (keeping the count so far).
    pub fn raise_cap(&mut self, cap: Duration) {
        self.cap = self.cap.max(cap);
    }

    /// The next delay: `FIRST_DELAY × 2^n`, at most the cap, randomized.
    pub fn next_delay(&mut self) -> Duration {
        let doubled = FIRST_DELAY.total_millis() << self.attempts.min(16);
        self.attempts = self.attempts.saturating_add(1);
        let base = doubled.min(self.cap.total_millis()).max(1);
        let spread = base * JITTER_PERCENT / 100;
        let offset = self.random() % (2 * spread + 1);
        Duration::from_millis(base - spread + offset)
    }

    /// A random 32-bit value (transaction ids).
    pub fn random_u32(&mut self) -> u32 {
        (self.random() >> 32) as u32
    }

    /// xorshift64*: not cryptographic; it only keeps clients from retransmitting in step
    /// and transaction ids from being guessed by someone who cannot see the traffic.
    fn random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(delay: Duration, base_ms: u64) -> bool {
        let spread = base_ms * JITTER_PERCENT / 100;
        (base_ms - spread..=base_ms + spread).contains(&delay.total_millis())
    }

    #[test]
    fn delays_double_from_one_second_up_to_the_cap_with_jitter() {
        let mut backoff = Backoff::new(Duration::from_secs(4), 42);
        for base in [1000, 2000, 4000, 4000, 4000] {
            let delay = backoff.next_delay();
            assert!(within(delay, base), "{delay} is not {base} ms ± 25 %");
        }
    }

    #[test]
    fn jitter_spreads_the_delays() {
        let delays: alloc::vec::Vec<u64> = (0..32)
            .map(|seed| {
                Backoff::new(Duration::from_secs(2), seed)
                    .next_delay()
                    .total_millis()
            })
            .collect();
        let (min, max) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
        assert!(max - min > 200, "32 seeds gave delays {min}..{max} ms");
    }

    #[test]
    fn reset_starts_over_and_raising_the_cap_keeps_the_count() {
        let mut backoff = Backoff::new(Duration::from_secs(2), 7);
        for _ in 0..4 {
            backoff.next_delay();
        }
        backoff.raise_cap(Duration::from_secs(64));
        assert!(within(backoff.next_delay(), 16_000));
        backoff.reset(Duration::from_secs(2));
        assert!(within(backoff.next_delay(), 1000));
    }
}
