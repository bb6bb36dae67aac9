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
//! So each NIC's waits draw on a budget of time ([`WaitBudget`]), refilled at a fixed share
//! of the time that passes ([`SHARE`]) and holding at most [`MOST`]: a slow or stalled
//! client can take at most that share of the main loop, however many frames come for it,
//! while a fast device's short waits in a burst never run it dry. The waits of NICs that
//! wait much ([`WAITS_MUCH`] in the last second or two: slow clients) draw on one more
//! budget, which they share, refilled at [`SHARED_SHARE`]: however many clients read
//! slowly, together they take at most that share of the time, and NICs that seldom wait
//! keep their short waits in a burst whatever the slow ones use. And a NIC whose wait ran
//! out without a completion is not waited on again until it completes one: a stalled
//! device costs one wait, not a share of the time for as long as it stays stalled.
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

/// The share of the time that passes added to the budget the NICs that wait much share:
/// one part in this many. Larger than a NIC's own, so that one slow client is held back by
/// its own budget alone.
pub const SHARED_SHARE: u64 = 4;

/// A NIC that waited this long in the present window of [`RECENT`] and the one before it
/// waits much: its waits draw on the shared budget too. A slow client waits an eighth of
/// the time (125 ms a second); bulk TCP through a NIC that keeps up, in 8 MiB under TCG,
/// waited 26 ms in 10 s.
pub const WAITS_MUCH: Duration = Duration::from_millis(20);

/// The window over which a NIC's waiting is counted.
pub const RECENT: Duration = Duration::from_millis(1000);

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

/// Waiting time: earned at one part in `share` of the time that passes, held up to
/// [`MOST`], spent by waits.
#[derive(Clone, Copy, Debug)]
pub struct WaitBudget {
    /// Waiting time left.
    balance: Duration,
    /// When the balance was last refilled.
    refilled: Instant,
    /// One part in this many of the time passing is earned.
    share: u64,
}

impl WaitBudget {
    /// A full budget earning one part in `share` of the time from `now` on.
    pub const fn new(now: Instant, share: u64) -> WaitBudget {
        WaitBudget {
            balance: MOST,
            refilled: now,
            share,
        }
    }

    /// The balance at `now`, refilled for the time since the last call.
    pub fn balance(&mut self, now: Instant) -> Duration {
        if now > self.refilled {
            // Whole microseconds earned; the remainder counts towards the next call's.
            let earned = (now - self.refilled).total_micros() / self.share;
            self.balance = (self.balance + Duration::from_micros(earned)).min(MOST);
            self.refilled += Duration::from_micros(earned * self.share);
        }
        self.balance
    }

    /// Spends `waited` (down to nothing).
    pub fn spend(&mut self, waited: Duration) {
        self.balance = less(self.balance, waited);
    }
}

/// `from` less `taken`, or nothing if that is more.
fn less(from: Duration, taken: Duration) -> Duration {
    if taken >= from {
        Duration::ZERO
    } else {
        from - taken
    }
}

/// How long a NIC waited lately: in the present window of [`RECENT`], and in the one before.
#[derive(Clone, Copy, Debug)]
struct RecentWaiting {
    window_start: Instant,
    present: Duration,
    before: Duration,
}

impl RecentWaiting {
    /// Moves the windows on to `now`'s.
    fn roll(&mut self, now: Instant) {
        if now < self.window_start + RECENT {
            return;
        }
        let passed = (now - self.window_start).total_micros() / RECENT.total_micros();
        self.before = if passed == 1 {
            self.present
        } else {
            Duration::ZERO
        };
        self.present = Duration::ZERO;
        self.window_start += Duration::from_micros(passed * RECENT.total_micros());
    }

    /// Whether the NIC waited [`WAITS_MUCH`] in the two windows up to `now`.
    fn much(&mut self, now: Instant) -> bool {
        self.roll(now);
        self.present + self.before >= WAITS_MUCH
    }
}

/// One NIC's budget for waiting on its transmit ring, and its device's stalls.
#[derive(Clone, Copy, Debug)]
pub struct TransmitWait {
    /// The NIC's own waiting time.
    budget: WaitBudget,
    /// How long it waited lately.
    recent: RecentWaiting,
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
            budget: WaitBudget::new(now, SHARE),
            recent: RecentWaiting {
                window_start: now,
                present: Duration::ZERO,
                before: Duration::ZERO,
            },
            stalled_since: None,
            stall_reported: false,
            resumed_after: None,
        }
    }

    /// How long a frame may wait for the device now: nothing while the device is stalled,
    /// else the NIC's balance — or, if the NIC waits much, that or the balance slow NICs
    /// share (`shared`), whichever is less.
    pub fn patience(&mut self, now: Instant, shared: &mut WaitBudget) -> Duration {
        let own = self.budget.balance(now);
        if self.is_stalled() {
            Duration::ZERO
        } else if self.recent.much(now) {
            own.min(shared.balance(now))
        } else {
            own
        }
    }

    /// A wait that ended at `now` took `waited`, from this NIC's budget (and the `shared`
    /// one, if the NIC waits much); `ran_out` if it ended without the device completing a
    /// transmission (the device is then stalled until it completes one).
    pub fn waited(
        &mut self,
        now: Instant,
        waited: Duration,
        ran_out: bool,
        shared: &mut WaitBudget,
    ) {
        self.budget.spend(waited);
        if self.recent.much(now) {
            shared.spend(waited);
        }
        self.recent.present += waited;
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
        let mut all = WaitBudget::new(at(0), SHARED_SHARE);
        assert_eq!(wait.patience(at(0), &mut all), MOST);
    }

    #[test]
    fn waiting_spends_the_budget_and_time_refills_a_share_of_itself() {
        let mut wait = TransmitWait::new(at(0));
        let mut all = WaitBudget::new(at(0), SHARED_SHARE);
        wait.waited(at(0), MOST, false, &mut all);
        assert_eq!(wait.patience(at(0), &mut all), Duration::ZERO);
        // 800 µs later, an eighth of them.
        assert_eq!(wait.patience(at(800), &mut all), micros(100));
        wait.waited(at(800), micros(30), false, &mut all);
        assert_eq!(wait.patience(at(800), &mut all), micros(70));
        // Never more than the most, however long it was quiet.
        assert_eq!(wait.patience(at(60_000_000), &mut all), MOST);
    }

    /// The share of 4 s that frames for `devices` slow devices wait, coming for each in
    /// turn without pause (handling or dropping each takes 2 µs), each device completing
    /// one transmission every 1,000 µs (staggered). Asserts that none is reported stalled.
    fn share_waited_for_slow_devices(devices: usize) -> f64 {
        const TOTAL: i64 = 4_000_000;
        const EVERY: i64 = 1_000;
        let mut all = WaitBudget::new(at(0), SHARED_SHARE);
        let mut waits = vec![TransmitWait::new(at(0)); devices];
        let mut next_completion: Vec<i64> = (0..devices)
            .map(|device| EVERY + device as i64 * EVERY / devices as i64)
            .collect();
        let (mut now, mut waited_in_all) = (0i64, 0u64);
        for device in (0..devices).cycle() {
            if now >= TOTAL {
                break;
            }
            let wait = &mut waits[device];
            if now >= next_completion[device] {
                wait.completed(at(now));
                next_completion[device] += EVERY * ((now - next_completion[device]) / EVERY + 1);
            }
            let patience = wait.patience(at(now), &mut all).total_micros() as i64;
            let until_completion = next_completion[device] - now;
            let waited = patience.min(until_completion);
            // The kernel does not wait (nor record a wait) when there is no patience.
            if patience > 0 {
                let ran_out = waited < until_completion;
                wait.waited(at(now + waited), micros(waited as u64), ran_out, &mut all);
            }
            assert_eq!(
                wait.report(at(now + waited)),
                None,
                "a slow device is never reported"
            );
            waited_in_all += waited as u64;
            now += waited + 2;
        }
        waited_in_all as f64 / TOTAL as f64
    }

    /// Whether `share` of the time is one part in `parts`: not much less, and no more but
    /// for the waits before the budget bound them (`head_start`).
    fn is_the_share(share: f64, parts: u64, head_start: Duration) -> bool {
        let most = 1.0 / parts as f64 + head_start.total_micros() as f64 / 4_000_000.0;
        share <= most + 0.005 && share >= 1.0 / parts as f64 - 0.03
    }

    #[test]
    fn a_device_that_completes_slowly_gets_a_share_of_the_time_and_no_more() {
        let share = share_waited_for_slow_devices(1);
        // Its budget starts full.
        assert!(
            is_the_share(share, SHARE, MOST),
            "waited {share:.3} of the time"
        );
    }

    #[test]
    fn many_slow_devices_together_get_the_shared_share_and_no_more() {
        // Twelve: their own shares would add up to more than the whole time.
        let share = share_waited_for_slow_devices(12);
        // The shared budget starts full, and each device waits as much as makes it one
        // that waits much (plus one wait of up to 1 ms) before it draws on it.
        let head_start = MOST + (WAITS_MUCH + micros(1_000)) * 12;
        assert!(
            is_the_share(share, SHARED_SHARE, head_start),
            "waited {share:.3} of the time"
        );
    }

    #[test]
    fn slow_devices_leave_a_device_that_seldom_waits_its_own_budget() {
        let mut all = WaitBudget::new(at(0), SHARED_SHARE);
        let mut slow = [TransmitWait::new(at(0)); 3];
        let mut seldom = TransmitWait::new(at(0));
        // The slow ones wait all they may, again and again, for two seconds; the other
        // waits 100 µs now and then.
        let (mut now, mut round) = (0, 0);
        while now < 2_000_000 {
            round += 1;
            let wait = &mut slow[round % 3];
            let patience = wait.patience(at(now), &mut all);
            now += patience.total_micros() as i64 + 5;
            wait.waited(at(now), patience, false, &mut all);
            if round % 10_000 == 0 {
                assert_eq!(seldom.patience(at(now), &mut all), MOST);
                now += 100;
                seldom.waited(at(now), micros(100), false, &mut all);
            }
        }
        assert!(slow[0].patience(at(now), &mut all) < micros(100));
        assert_eq!(seldom.patience(at(now), &mut all), MOST);
        // Even a long wait of its own is its own budget's.
        seldom.waited(at(now + 15_000), micros(15_000), false, &mut all);
        assert_eq!(
            seldom.patience(at(now + 15_000), &mut all),
            MOST - micros(15_000) + micros(1_875)
        );
    }

    #[test]
    fn a_nic_that_waited_much_counts_as_one_for_two_windows() {
        let mut all = WaitBudget::new(at(0), SHARED_SHARE);
        let mut wait = TransmitWait::new(at(0));
        let emptied = |now: i64| {
            let mut empty = WaitBudget::new(at(now), SHARED_SHARE);
            empty.spend(MOST);
            empty
        };
        // Its waits so far drew on its own budget alone.
        assert_eq!(wait.patience(at(400_000), &mut emptied(400_000)), MOST);
        wait.waited(at(500_000), WAITS_MUCH, false, &mut all);
        // Now it waits much: with the shared budget empty, it may not wait, in this window
        // and the next.
        assert_eq!(
            wait.patience(at(600_000), &mut emptied(600_000)),
            Duration::ZERO
        );
        assert_eq!(
            wait.patience(at(1_500_000), &mut emptied(1_500_000)),
            Duration::ZERO
        );
        // After a quiet window it draws on its own budget alone again.
        assert_eq!(wait.patience(at(2_100_000), &mut emptied(2_100_000)), MOST);
    }

    #[test]
    fn a_stalled_device_is_not_waited_on_until_it_completes_a_transmission() {
        let mut wait = TransmitWait::new(at(0));
        let mut all = WaitBudget::new(at(0), SHARED_SHARE);
        wait.waited(at(20_000), MOST, true, &mut all);
        assert!(wait.is_stalled());
        // However long it stays stalled, and however full the budget gets again.
        assert_eq!(wait.patience(at(1_000_000), &mut all), Duration::ZERO);
        wait.completed(at(1_000_000));
        assert!(!wait.is_stalled());
        assert_eq!(wait.patience(at(1_000_000), &mut all), MOST);
    }

    #[test]
    fn a_wait_that_found_a_slot_leaves_the_device_unstalled() {
        let mut wait = TransmitWait::new(at(0));
        let mut all = WaitBudget::new(at(0), SHARED_SHARE);
        wait.waited(at(5), micros(5), false, &mut all);
        assert!(!wait.is_stalled());
        assert_eq!(wait.patience(at(0), &mut all), MOST - micros(5));
    }

    #[test]
    fn a_clock_that_goes_back_adds_nothing() {
        let mut wait = TransmitWait::new(at(1_000));
        let mut all = WaitBudget::new(at(1_000), SHARED_SHARE);
        wait.waited(at(0), MOST, false, &mut all);
        assert_eq!(wait.patience(at(500), &mut all), Duration::ZERO);
        assert_eq!(wait.patience(at(1_800), &mut all), micros(100));
    }

    #[test]
    fn a_stall_is_reported_once_after_a_second_and_so_is_its_end() {
        let mut wait = TransmitWait::new(at(0));
        let mut all = WaitBudget::new(at(0), SHARED_SHARE);
        wait.waited(at(20_000), MOST, true, &mut all);
        assert_eq!(wait.report(at(500_000)), None);
        // Further waits do not restart it (none happen while stalled, but a lend wait
        // may record one).
        wait.waited(at(600_000), Duration::ZERO, true, &mut all);
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
        let mut all = WaitBudget::new(at(0), SHARED_SHARE);
        wait.waited(at(20_000), MOST, true, &mut all);
        wait.completed(at(900_000));
        assert_eq!(wait.report(at(2_000_000)), None);
        assert_eq!(wait.report(at(3_000_000)), None);
    }
}
