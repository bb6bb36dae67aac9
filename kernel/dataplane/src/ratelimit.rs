//! A token bucket: at most `burst` events at once, refilled at `rate` events per second.
//!
//! Used wherever a flood must not turn into a flood of our own: ICMP errors and TCP resets
//! generated for dropped packets, drop-log lines on the console. The caller passes the time
//! (the data plane has no clock), so the bucket is deterministic under a fake clock.
//!
//! Tokens are counted in millionths, so a rate that does not divide a second (3 per second,
//! 7 per second) refills exactly, without drift. A clock that goes backwards refills nothing
//! (and never panics).
//!
//! ```
//! use dataplane::ratelimit::{Admission, TokenBucket};
//! use smoltcp::time::Instant;
//!
//! let mut lines = TokenBucket::new(10, 2);
//! let t0 = Instant::from_secs(1);
//! assert!(lines.try_take(t0));
//! assert!(lines.try_take(t0));
//! assert!(!lines.try_take(t0)); // burst spent
//! // 100 ms later one token came back; the admitted event learns one was suppressed.
//! assert_eq!(lines.admit(t0 + smoltcp::time::Duration::from_millis(100)),
//!            Admission::Admitted { suppressed: 1 });
//! ```

use smoltcp::time::Instant;

/// One token, in the bucket's fixed-point unit (millionths of a token).
const TOKEN: u64 = 1_000_000;

/// The outcome of asking a [`TokenBucket`] for one token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// The event may happen. `suppressed` events were refused since the previous admitted
    /// one (a log line can say "N more suppressed").
    Admitted {
        /// Events refused since the previous admission.
        suppressed: u64,
    },
    /// The bucket is empty: the event must not happen.
    Refused,
}

/// A token bucket. See the module documentation.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    /// Tokens added per second.
    rate: u32,
    /// Largest number of tokens held.
    burst: u32,
    /// Tokens held, in millionths.
    level: u64,
    /// When `level` was last brought up to date.
    refilled_at: Option<Instant>,
    /// Refusals since the last admission.
    suppressed: u64,
    /// Refusals since the bucket was made.
    refused_total: u64,
}

impl TokenBucket {
    /// A full bucket holding `burst` tokens, refilled at `rate` tokens per second. A rate of
    /// zero never refills (at most `burst` events, ever); a burst of zero refuses everything.
    pub fn new(rate: u32, burst: u32) -> TokenBucket {
        TokenBucket {
            rate,
            burst,
            level: burst as u64 * TOKEN,
            refilled_at: None,
            suppressed: 0,
            refused_total: 0,
        }
    }

    /// Takes one token if there is one at `now`.
    pub fn admit(&mut self, now: Instant) -> Admission {
        self.refill(now);
        if self.level >= TOKEN {
            self.level -= TOKEN;
            let suppressed = core::mem::take(&mut self.suppressed);
            Admission::Admitted { suppressed }
        } else {
            self.suppressed += 1;
            self.refused_total += 1;
            Admission::Refused
        }
    }

    /// Takes one token if there is one at `now`; `true` if the event may happen.
    pub fn try_take(&mut self, now: Instant) -> bool {
        matches!(self.admit(now), Admission::Admitted { .. })
    }

    /// Events refused since the bucket was made (for counters).
    pub fn refused_total(&self) -> u64 {
        self.refused_total
    }

    /// Whole tokens held at `now`: how many events it would admit.
    pub fn tokens(&mut self, now: Instant) -> u64 {
        self.refill(now);
        self.level / TOKEN
    }

    /// Whether the bucket holds its whole burst at `now` (nothing taken lately).
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.level >= self.burst as u64 * TOKEN
    }

    /// Takes one token, which [`TokenBucket::tokens`] said is there (for callers that
    /// check several buckets before taking from any).
    pub fn spend(&mut self) {
        self.level = self.level.saturating_sub(TOKEN);
    }

    fn refill(&mut self, now: Instant) {
        let Some(then) = self.refilled_at else {
            self.refilled_at = Some(now);
            return;
        };
        if now <= then {
            return;
        }
        let elapsed_micros = (now - then).total_micros();
        // One microsecond adds `rate` millionths of a token.
        let added = elapsed_micros.saturating_mul(self.rate as u64);
        self.level = self
            .level
            .saturating_add(added)
            .min(self.burst as u64 * TOKEN);
        self.refilled_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::time::Duration;

    fn at(ms: i64) -> Instant {
        Instant::from_millis(ms)
    }

    fn admitted_in(bucket: &mut TokenBucket, now: Instant, attempts: usize) -> usize {
        (0..attempts).filter(|_| bucket.try_take(now)).count()
    }

    #[test]
    fn full_bucket_admits_exactly_the_burst() {
        let mut bucket = TokenBucket::new(10, 5);
        assert_eq!(admitted_in(&mut bucket, at(0), 100), 5);
        assert_eq!(bucket.refused_total(), 95);
    }

    #[test]
    fn tokens_come_back_at_the_rate() {
        let mut bucket = TokenBucket::new(10, 5);
        admitted_in(&mut bucket, at(0), 5);
        assert!(!bucket.try_take(at(99)), "a token takes 100 ms at 10/s");
        assert!(bucket.try_take(at(100)));
        assert!(!bucket.try_take(at(100)));
        // A long pause refills up to the burst, never beyond.
        assert_eq!(admitted_in(&mut bucket, at(60_000), 100), 5);
    }

    #[test]
    fn sustained_flood_is_held_to_the_rate() {
        let mut bucket = TokenBucket::new(100, 10);
        // 10 seconds of a 10,000 events/s flood, one attempt every 100 us.
        let admitted = (0..100_000)
            .filter(|i| bucket.try_take(Instant::from_micros(i * 100)))
            .count();
        // The burst plus 100 per second for (almost) 10 seconds.
        assert!((1008..=1010).contains(&admitted), "admitted {admitted}");
    }

    #[test]
    fn rate_that_does_not_divide_a_second_refills_without_drift() {
        let mut bucket = TokenBucket::new(3, 2);
        assert_eq!(admitted_in(&mut bucket, at(0), 2), 2);
        // One attempt per millisecond for 30 s: exactly 3 per second come through, the
        // fractions of a token accumulating across attempts.
        let admitted = (1..=30_000).filter(|ms| bucket.try_take(at(*ms))).count();
        assert_eq!(admitted, 90);
    }

    #[test]
    fn admission_reports_how_many_were_suppressed() {
        let mut bucket = TokenBucket::new(1, 1);
        assert_eq!(bucket.admit(at(0)), Admission::Admitted { suppressed: 0 });
        for _ in 0..7 {
            assert_eq!(bucket.admit(at(10)), Admission::Refused);
        }
        assert_eq!(
            bucket.admit(at(1000)),
            Admission::Admitted { suppressed: 7 }
        );
        assert_eq!(
            bucket.admit(at(2000)),
            Admission::Admitted { suppressed: 0 }
        );
    }

    #[test]
    fn clock_going_backwards_refills_nothing() {
        let mut bucket = TokenBucket::new(10, 1);
        assert!(bucket.try_take(at(5000)));
        assert!(!bucket.try_take(at(1000)));
        assert!(
            !bucket.try_take(at(5050)),
            "only 50 ms since the last real refill"
        );
        assert!(bucket.try_take(at(5100)));
    }

    #[test]
    fn zero_rate_allows_only_the_burst_and_zero_burst_nothing() {
        let mut once = TokenBucket::new(0, 2);
        assert_eq!(admitted_in(&mut once, at(0), 5), 2);
        assert!(!once.try_take(at(0) + Duration::from_secs(3600)));
        let mut never = TokenBucket::new(1000, 0);
        assert!(!never.try_take(at(0)));
        assert!(!never.try_take(at(10_000)));
    }

    #[test]
    fn tokens_can_be_counted_before_one_is_spent() {
        let mut bucket = TokenBucket::new(10, 3);
        assert_eq!(bucket.tokens(at(0)), 3);
        assert!(bucket.is_full(at(0)));
        bucket.spend();
        assert_eq!(bucket.tokens(at(0)), 2);
        assert!(!bucket.is_full(at(0)));
        assert!(bucket.is_full(at(100)), "refilled after 100 ms at 10/s");
        assert_eq!(bucket.refused_total(), 0, "counting refuses nothing");
    }

    #[test]
    fn huge_gaps_and_rates_do_not_overflow() {
        let mut bucket = TokenBucket::new(u32::MAX, u32::MAX);
        assert!(bucket.try_take(Instant::from_micros(0)));
        assert!(bucket.try_take(Instant::from_micros(i64::MAX)));
    }
}
