//! [`TransmitWait`]: how long the main loop may wait for one NIC's device to complete a
//! transmission, when a frame for it finds its transmit ring full.
//!
//! Waiting briefly turns loss into backpressure: in a burst the device drains the ring
//! concurrently and a slot frees up within microseconds, and the frame goes out instead of
//! being dropped. But the main loop serves every NIC, and while it waits on one, nothing
//! else moves. A client that stops reading (a paused VM) completes nothing, and one that
//! reads slowly completes a transmission now and then — each wait would end with that
//! completion, and the appliance would go at the slow client's pace for everyone.
//!
//! So each NIC's waits draw on a budget of time, refilled at a fixed share of the time
//! that passes ([`SHARE`]) and holding at most [`MOST`]: a slow or stalled client can take
//! at most that share of the main loop, however many frames come for it, while a fast
//! device's short waits in a burst never run it dry. And a NIC whose wait ran out without
//! a completion is not waited on again until it completes one: a stalled device costs one
//! wait, not a share of the time for as long as it stays stalled.
//!
//! A device stalled for [`REPORT_STALL_AFTER`] is reported once ([`StallReport`]), and so
//! is its first completion after that: a client that stopped reading shows on the
//! console, one that reads slowly (each wait ends stalled, and the next completion ends
//! that) does not.

use smoltcp::time::{Duration, Instant};

/// The most a NIC's budget holds, and so the longest single wait. Under TCG, with bulk TCP
/// both ways in 8 MiB, waits for a super-frame's buffer to become lendable ran past 2 ms
/// (QEMU's main loop, busy with the other direction, completes the egress's transmissions
/// late) and super-frames were dropped; with 20 ms none were.
pub const MOST: Duration = Duration::from_millis(20);

/// The share of the time that passes added to each NIC's budget: one part in this many.
pub const SHARE: u64 = 8;

/// How long a device must stay stalled before it is reported.
pub const REPORT_STALL_AFTER: Duration = Duration::from_millis(1000);

/// What [`TransmitWait::report`] has to say about a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StallReport {
    /// It has completed no transmission for this long, and frames for it are dropped.
    Stalled(Duration),
    /// It completed a transmission again after a reported stall of this long.
    Resumed(Duration),
}

/// One NIC's budget for waiting on its transmit ring.
#[derive(Clone, Copy, Debug)]
pub struct TransmitWait {
    /// Waiting time left.
    balance: Duration,
    /// When the balance was last refilled.
    refilled: Instant,
    /// Since when the last wait ran out with nothing completed, if nothing has since.
    stalled_since: Option<Instant>,
    /// Whether that stall was reported.
    stall_reported: bool,
    /// A reported stall that ended, and how long it lasted, not yet reported.
    resumed_after: Option<Duration>,
}

impl TransmitWait {
    /// A full budget, at `now`.
    pub fn new(now: Instant) -> TransmitWait {
        TransmitWait {
            balance: MOST,
            refilled: now,
            stalled_since: None,
            stall_reported: false,
            resumed_after: None,
        }
    }

    /// How long a frame may wait for the device now: nothing while the device is stalled,
    /// else the balance (refilled for the time since the last call).
    pub fn patience(&mut self, now: Instant) -> Duration {
        if now > self.refilled {
            // Whole microseconds earned; the remainder counts towards the next call's.
            let earned = (now - self.refilled).total_micros() / SHARE;
            self.balance = (self.balance + Duration::from_micros(earned)).min(MOST);
            self.refilled += Duration::from_micros(earned * SHARE);
        }
        if self.is_stalled() {
            Duration::ZERO
        } else {
            self.balance
        }
    }

    /// A wait that ended at `now` took `waited`; `ran_out` if it ended without the device
    /// completing a transmission (the device is then stalled until it completes one).
    pub fn waited(&mut self, now: Instant, waited: Duration, ran_out: bool) {
        self.balance = if waited >= self.balance {
            Duration::ZERO
        } else {
            self.balance - waited
        };
        if ran_out && self.stalled_since.is_none() {
            self.stalled_since = Some(now);
            self.stall_reported = false;
        }
    }

    /// The device completed a transmission, at `now`: it is not stalled.
    pub fn completed(&mut self, now: Instant) {
        if let Some(since) = self.stalled_since.take() {
            if self.stall_reported {
                self.resumed_after = Some(now - since);
            }
        }
    }

    /// Whether frames for the device do not wait until it completes a transmission.
    pub fn is_stalled(&self) -> bool {
        self.stalled_since.is_some()
    }

    /// What to report at `now`, once each: a stall that has lasted
    /// [`REPORT_STALL_AFTER`], and the end of a reported stall.
    pub fn report(&mut self, now: Instant) -> Option<StallReport> {
        if let Some(after) = self.resumed_after.take() {
            return Some(StallReport::Resumed(after));
        }
        match self.stalled_since {
            Some(since) if !self.stall_reported && now - since >= REPORT_STALL_AFTER => {
                self.stall_reported = true;
                Some(StallReport::Stalled(now - since))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(micros: i64) -> Instant {
        Instant::from_micros(micros)
    }

    fn micros(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn a_fresh_budget_allows_the_longest_wait() {
        let mut wait = TransmitWait::new(at(0));
        assert_eq!(wait.patience(at(0)), MOST);
    }

    #[test]
    fn waiting_spends_the_budget_and_time_refills_a_share_of_itself() {
        let mut wait = TransmitWait::new(at(0));
        wait.waited(at(0), MOST, false);
        assert_eq!(wait.patience(at(0)), Duration::ZERO);
        // 800 µs later, an eighth of them.
        assert_eq!(wait.patience(at(800)), micros(100));
        wait.waited(at(800), micros(30), false);
        assert_eq!(wait.patience(at(800)), micros(70));
        // Never more than the most, however long it was quiet.
        assert_eq!(wait.patience(at(60_000_000)), MOST);
    }

    #[test]
    fn a_device_that_completes_slowly_gets_a_share_of_the_time_and_no_more() {
        // Frames come for it without pause; each waits as long as the budget lets it, and
        // the device completes one transmission every 1,000 µs.
        let mut wait = TransmitWait::new(at(0));
        const TOTAL: i64 = 4_000_000;
        let (mut now, mut waited_in_all, mut next_completion) = (0i64, 0u64, 1_000i64);
        while now < TOTAL {
            if now >= next_completion {
                wait.completed(at(now));
                next_completion += 1_000;
            }
            let patience = wait.patience(at(now)).total_micros() as i64;
            let until_completion = next_completion - now;
            let waited = patience.min(until_completion);
            let ran_out = waited < until_completion && patience > 0;
            wait.waited(at(now + waited), micros(waited as u64), ran_out);
            assert_eq!(
                wait.report(at(now + waited)),
                None,
                "a slow device is never reported"
            );
            waited_in_all += waited as u64;
            // Handling the frame (or dropping it) takes 2 µs.
            now += waited + 2;
        }
        let share = waited_in_all as f64 / TOTAL as f64;
        // The share, plus the full budget it started with.
        let most = 1.0 / SHARE as f64 + MOST.total_micros() as f64 / TOTAL as f64;
        assert!(share <= most + 0.005, "waited {share:.3} of the time");
        assert!(
            share >= 1.0 / SHARE as f64 - 0.02,
            "waited {share:.3} of the time"
        );
    }

    #[test]
    fn a_stalled_device_is_not_waited_on_until_it_completes_a_transmission() {
        let mut wait = TransmitWait::new(at(0));
        wait.waited(at(20_000), MOST, true);
        assert!(wait.is_stalled());
        // However long it stays stalled, and however full the budget gets again.
        assert_eq!(wait.patience(at(1_000_000)), Duration::ZERO);
        wait.completed(at(1_000_000));
        assert!(!wait.is_stalled());
        assert_eq!(wait.patience(at(1_000_000)), MOST);
    }

    #[test]
    fn a_wait_that_found_a_slot_leaves_the_device_unstalled() {
        let mut wait = TransmitWait::new(at(0));
        wait.waited(at(5), micros(5), false);
        assert!(!wait.is_stalled());
        assert_eq!(wait.patience(at(0)), MOST - micros(5));
    }

    #[test]
    fn a_clock_that_goes_back_adds_nothing() {
        let mut wait = TransmitWait::new(at(1_000));
        wait.waited(at(0), MOST, false);
        assert_eq!(wait.patience(at(500)), Duration::ZERO);
        assert_eq!(wait.patience(at(1_800)), micros(100));
    }

    #[test]
    fn a_stall_is_reported_once_after_a_second_and_so_is_its_end() {
        let mut wait = TransmitWait::new(at(0));
        wait.waited(at(20_000), MOST, true);
        assert_eq!(wait.report(at(500_000)), None);
        // Further waits do not restart it (none happen while stalled, but a lend wait
        // may record one).
        wait.waited(at(600_000), Duration::ZERO, true);
        assert_eq!(
            wait.report(at(1_020_000)),
            Some(StallReport::Stalled(micros(1_000_000)))
        );
        assert_eq!(wait.report(at(5_000_000)), None);
        wait.completed(at(6_020_000));
        assert_eq!(
            wait.report(at(6_500_000)),
            Some(StallReport::Resumed(micros(6_000_000)))
        );
        assert_eq!(wait.report(at(7_000_000)), None);
    }

    #[test]
    fn a_stall_that_ends_before_it_is_reported_is_never_reported() {
        let mut wait = TransmitWait::new(at(0));
        wait.waited(at(20_000), MOST, true);
        wait.completed(at(900_000));
        assert_eq!(wait.report(at(2_000_000)), None);
        assert_eq!(wait.report(at(3_000_000)), None);
    }
}
