//! [`RingDepth`]: how many receive buffers a NIC keeps posted, decided from how the device
//! uses them.
//!
//! A ring rests at a shallow *base* depth (eight 64 KiB buffers): a NIC without traffic
//! holds no more, and boot does not zero megabytes of buffers that the first forwarded
//! packets would wait behind. That depth holds a bulk TCP transfer back: the device runs
//! out of buffers between two rounds of the main loop and waits for a refill (measured
//! under TCG at `-m 8`: 8 posted gave 0.68 of the rate of 64 posted; 16 gave 0.96). So a
//! NIC whose ring runs nearly dry goes deeper, doubling up to a most: freely as far as its
//! own share of memory pays for, beyond that with buffers from the heap's headroom — only
//! if the heap can spare them all for the new depth while keeping a reserve (a depth the
//! pool cannot fill would only make it keep more buffers back from lending); and one whose
//! ring has not run short for [`SHALLOW_AFTER`] halves back towards its base, so that the
//! buffers beyond its share go back to the heap for the NIC that needs them next — the one
//! that receives the next transfer, say, when the direction turns.
//!
//! "Nearly dry": at the refill, at most a quarter of the buffers posted at the previous
//! refill are still posted — and the ring had been filled to the depth, so a ring that is
//! still growing towards its depth (the pool allocates a few buffers a round) does not count.

use smoltcp::time::{Duration, Instant};

/// How long a deepened ring must not run short before it halves.
pub const SHALLOW_AFTER: Duration = Duration::from_millis(1000);

/// The depth of one NIC's receive ring.
#[derive(Clone, Copy, Debug)]
pub struct RingDepth {
    base: usize,
    most: usize,
    depth: usize,
    /// Buffers posted at the end of the previous refill.
    posted_at_refill: usize,
    /// When the ring last ran short (or changed depth).
    last_short: Instant,
}

/// What a refill decided about the depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DepthChange {
    /// The depth stays.
    Same,
    /// The ring goes deeper: post more buffers.
    Deeper,
    /// The ring goes shallower: buffers beyond it may go back to the heap.
    Shallower,
}

impl RingDepth {
    /// A ring kept `base` deep, and never deeper than `most` (at least `base`).
    pub fn new(base: usize, most: usize, now: Instant) -> RingDepth {
        RingDepth {
            base,
            most: most.max(base),
            depth: base,
            posted_at_refill: 0,
            last_short: now,
        }
    }

    /// Buffers to keep posted now.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The depth the NIC's own share pays for.
    pub fn base(&self) -> usize {
        self.base
    }

    /// The deepest the ring may go.
    pub fn most(&self) -> usize {
        self.most
    }

    /// At the start of a refill, with `still_posted` buffers not yet used by the device:
    /// goes deeper if the ring ran nearly dry since the last refill and `affordable` says
    /// memory allows the deeper ring, shallower if a deepened ring has not run short for
    /// [`SHALLOW_AFTER`].
    pub fn before_refill(
        &mut self,
        still_posted: usize,
        now: Instant,
        affordable: impl FnOnce(usize) -> bool,
    ) -> DepthChange {
        let was_full = self.posted_at_refill >= self.depth;
        let ran_short = was_full && still_posted * 4 <= self.posted_at_refill;
        if ran_short {
            self.last_short = now;
            let deeper = (self.depth * 2).min(self.most);
            if deeper > self.depth && affordable(deeper) {
                self.depth = deeper;
                return DepthChange::Deeper;
            }
            return DepthChange::Same;
        }
        if self.depth > self.base && now - self.last_short >= SHALLOW_AFTER {
            self.depth = (self.depth / 2).max(self.base);
            self.last_short = now;
            return DepthChange::Shallower;
        }
        DepthChange::Same
    }

    /// Back to the base depth at once (the heap needs its memory back); whether the depth
    /// changed.
    pub fn back_to_base(&mut self, now: Instant) -> bool {
        let changed = self.depth != self.base;
        self.depth = self.base;
        self.last_short = now;
        changed
    }

    /// At the end of a refill: `posted` buffers are posted now.
    pub fn after_refill(&mut self, posted: usize) {
        self.posted_at_refill = posted;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Instant {
        Instant::from_millis(ms)
    }

    /// A refill that finds `still` of the buffers posted last time, then posts up to the
    /// depth (as a pool with buffers to spare does).
    fn refill(ring: &mut RingDepth, still: usize, ms: i64) -> DepthChange {
        let change = ring.before_refill(still, at(ms), |_| true);
        ring.after_refill(ring.depth());
        change
    }

    #[test]
    fn a_ring_that_runs_dry_doubles_up_to_its_most() {
        let mut ring = RingDepth::new(8, 64, at(0));
        ring.after_refill(8);
        assert_eq!(refill(&mut ring, 0, 1), DepthChange::Deeper);
        assert_eq!(ring.depth(), 16);
        assert_eq!(refill(&mut ring, 4, 2), DepthChange::Deeper);
        assert_eq!(ring.depth(), 32);
        assert_eq!(refill(&mut ring, 0, 3), DepthChange::Deeper);
        assert_eq!(refill(&mut ring, 0, 4), DepthChange::Same);
        assert_eq!(ring.depth(), 64);
    }

    #[test]
    fn a_ring_with_buffers_left_keeps_its_depth() {
        let mut ring = RingDepth::new(8, 64, at(0));
        ring.after_refill(8);
        // Three of eight left: more than a quarter.
        assert_eq!(refill(&mut ring, 3, 1), DepthChange::Same);
        assert_eq!(ring.depth(), 8);
    }

    #[test]
    fn a_ring_not_yet_filled_to_its_depth_does_not_go_deeper() {
        let mut ring = RingDepth::new(8, 64, at(0));
        ring.after_refill(8);
        assert_eq!(refill(&mut ring, 0, 1), DepthChange::Deeper);
        // The pool could post only 12 of 16 (it grows a few buffers a round): the device
        // using all 12 says nothing about whether 16 are enough.
        ring.after_refill(12);
        assert_eq!(ring.before_refill(0, at(2), |_| true), DepthChange::Same);
        assert_eq!(ring.depth(), 16);
    }

    #[test]
    fn a_ring_goes_only_as_deep_as_memory_allows() {
        let mut ring = RingDepth::new(8, 64, at(0));
        ring.after_refill(8);
        let mut asked = Vec::new();
        let change = ring.before_refill(0, at(1), |depth| {
            asked.push(depth);
            depth <= 16
        });
        assert_eq!(change, DepthChange::Deeper);
        ring.after_refill(16);
        let change = ring.before_refill(0, at(2), |depth| {
            asked.push(depth);
            depth <= 16
        });
        assert_eq!(change, DepthChange::Same);
        assert_eq!(ring.depth(), 16);
        assert_eq!(asked, [16, 32]);
    }

    #[test]
    fn a_deepened_ring_halves_back_to_its_base_once_quiet() {
        let mut ring = RingDepth::new(8, 64, at(0));
        ring.after_refill(8);
        refill(&mut ring, 0, 10);
        refill(&mut ring, 0, 20);
        assert_eq!(ring.depth(), 32);
        // Busy but never short: the depth stays for a second after the last shortage.
        assert_eq!(refill(&mut ring, 20, 500), DepthChange::Same);
        assert_eq!(refill(&mut ring, 32, 1019), DepthChange::Same);
        assert_eq!(refill(&mut ring, 32, 1020), DepthChange::Shallower);
        assert_eq!(ring.depth(), 16);
        assert_eq!(refill(&mut ring, 16, 1500), DepthChange::Same);
        assert_eq!(refill(&mut ring, 16, 2020), DepthChange::Shallower);
        assert_eq!(ring.depth(), 8);
        assert_eq!(refill(&mut ring, 8, 9000), DepthChange::Same);
        assert_eq!(ring.depth(), 8);
    }

    #[test]
    fn a_ring_sent_back_to_its_base_starts_deepening_again_from_there() {
        let mut ring = RingDepth::new(8, 64, at(0));
        ring.after_refill(8);
        refill(&mut ring, 0, 1);
        refill(&mut ring, 0, 2);
        assert_eq!(ring.depth(), 32);
        assert!(ring.back_to_base(at(3)));
        assert_eq!(ring.depth(), 8);
        assert!(!ring.back_to_base(at(4)));
        // Posted beyond the base when it was sent back: that ring was not short.
        ring.after_refill(20);
        assert_eq!(ring.before_refill(10, at(5), |_| true), DepthChange::Same);
        ring.after_refill(8);
        assert_eq!(refill(&mut ring, 0, 6), DepthChange::Deeper);
        assert_eq!(ring.depth(), 16);
    }

    #[test]
    fn a_ring_whose_share_pays_for_its_most_never_changes() {
        let mut ring = RingDepth::new(64, 64, at(0));
        ring.after_refill(64);
        assert_eq!(refill(&mut ring, 0, 1), DepthChange::Same);
        assert_eq!(refill(&mut ring, 64, 5000), DepthChange::Same);
        assert_eq!(ring.depth(), 64);
    }
}
