//! Which packets the capture may record: a rate limit with shares, so that a flood costs
//! the capture what it costs the drop log — a bounded rate — and one sender never takes
//! the capture from the others (DESIGN: one client never hurts another).
//!
//! Each NIC has its own token bucket ([`NIC_RATE`] records per second, bursts of
//! [`NIC_BURST`]): a flood on the uplink never takes a client NIC's records. Within a NIC,
//! each source (IPv4 address, or Ethernet address for frames that are not IPv4) gets a
//! quarter of that: one noisy host leaves three quarters of its NIC's records to the
//! others. Sources are tracked in a small table ([`SOURCE_SLOTS`] per appliance); a new
//! source takes the slot of the one heard from longest ago.

use alloc::vec::Vec;

use smoltcp::time::Instant;

use crate::ratelimit::TokenBucket;

/// Records per second one NIC may add to the capture.
pub const NIC_RATE: u32 = 100;
/// Records one NIC may add in a burst.
pub const NIC_BURST: u32 = 200;
/// Share of its NIC's rate one source may use (1 / `SOURCE_SHARE`).
pub const SOURCE_SHARE: u32 = 4;
/// Sources tracked at once.
pub const SOURCE_SLOTS: usize = 64;

/// Who sent a frame, for its share: the NIC it arrived on and its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sender {
    /// The NIC the frame arrived on.
    pub nic: u8,
    /// Its IPv4 source address, or its Ethernet source (tagged so the two never collide).
    pub source: u64,
}

struct SourceSlot {
    sender: Sender,
    bucket: TokenBucket,
    heard: Instant,
}

/// The capture's rate limit. See the module documentation.
pub struct Admission {
    nics: Vec<TokenBucket>,
    sources: Vec<SourceSlot>,
}

impl Admission {
    /// Buckets for `nics` NICs, all full.
    pub fn new(nics: usize) -> Admission {
        Admission {
            nics: (0..nics)
                .map(|_| TokenBucket::new(NIC_RATE, NIC_BURST))
                .collect(),
            sources: Vec::with_capacity(SOURCE_SLOTS),
        }
    }

    /// Whether a frame from `sender` may be recorded at `now`.
    pub fn admit(&mut self, sender: Sender, now: Instant) -> bool {
        let Some(nic_bucket) = self.nics.get_mut(sender.nic as usize) else {
            return false;
        };
        let slot = match self.sources.iter().position(|s| s.sender == sender) {
            Some(i) => i,
            None => {
                let fresh = SourceSlot {
                    sender,
                    bucket: TokenBucket::new(NIC_RATE / SOURCE_SHARE, NIC_BURST / SOURCE_SHARE),
                    heard: now,
                };
                if self.sources.len() < SOURCE_SLOTS {
                    self.sources.push(fresh);
                    self.sources.len() - 1
                } else {
                    let oldest = self
                        .sources
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, s)| s.heard)
                        .map_or(0, |(i, _)| i);
                    self.sources[oldest] = fresh;
                    oldest
                }
            }
        };
        let source = &mut self.sources[slot];
        source.heard = now;
        // The source's share first: a refused source spends none of its NIC's tokens.
        source.bucket.try_take(now) && nic_bucket.try_take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(nic: u8, source: u64) -> Sender {
        Sender { nic, source }
    }

    fn admitted(admission: &mut Admission, sender: Sender, attempts: usize, now: Instant) -> usize {
        (0..attempts)
            .filter(|_| admission.admit(sender, now))
            .count()
    }

    #[test]
    fn one_source_gets_a_quarter_of_its_nic_and_leaves_the_rest_to_others() {
        let mut admission = Admission::new(2);
        let now = Instant::from_secs(5);
        let share = (NIC_BURST / SOURCE_SHARE) as usize;
        assert_eq!(admitted(&mut admission, from(1, 7), 1000, now), share);
        assert_eq!(admitted(&mut admission, from(1, 8), 10, now), 10);
    }

    #[test]
    fn a_flood_on_one_nic_never_takes_another_nics_records() {
        let mut admission = Admission::new(2);
        let now = Instant::from_secs(5);
        // A random-source flood on the uplink spends the uplink's whole burst...
        let flooded = (0..1000u64)
            .filter(|i| admission.admit(from(0, *i), now))
            .count();
        assert_eq!(flooded, NIC_BURST as usize);
        // ...and a client behind nic1 is recorded as if nothing happened.
        assert_eq!(admitted(&mut admission, from(1, 42), 5, now), 5);
    }

    #[test]
    fn the_rate_comes_back_with_time() {
        let mut admission = Admission::new(1);
        let t0 = Instant::from_secs(5);
        admitted(&mut admission, from(0, 1), 1000, t0);
        let later = t0 + smoltcp::time::Duration::from_secs(1);
        assert_eq!(
            admitted(&mut admission, from(0, 1), 1000, later),
            (NIC_RATE / SOURCE_SHARE) as usize
        );
    }

    #[test]
    fn a_nic_the_appliance_does_not_have_records_nothing() {
        let mut admission = Admission::new(1);
        assert!(!admission.admit(from(3, 1), Instant::from_secs(1)));
    }
}
