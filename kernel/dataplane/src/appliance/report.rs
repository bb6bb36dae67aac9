//! The stats line: printed every few seconds when counters changed (with the counter lines
//! that changed, [`super::counter_lines`]), and once more at shutdown with every non-zero
//! counter ([`super::Appliance::report_final`]).

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use smoltcp::time::{Duration, Instant};

use super::counter_lines::{changed_drops, CaptureLine, RuleLine};
use super::{DeviceLosses, NicCounters};
use crate::capture::CaptureStats;
use crate::drops::DropCounters;
use crate::rule_counters::RuleCount;
use crate::state::StateStats;

/// A snapshot of the appliance's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Per-NIC counters, by NIC index.
    pub nics: Vec<NicCounters>,
    /// Drops by reason.
    pub drops: DropCounters,
    /// The state table.
    pub states: StateStats,
    /// Drop-log lines withheld by the rate limit.
    pub log_lines_suppressed: u64,
    /// ICMP errors and TCP resets withheld by the rate limit.
    pub errors_rate_limited: u64,
    /// The packet capture's records, if it is on (reported on its own line).
    pub capture: Option<CaptureStats>,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (i, nic) in self.nics.iter().enumerate() {
            write!(f, "nic{i} rx {} tx {} drop {}", nic.rx, nic.tx, nic.dropped)?;
            if !nic.device.is_empty() {
                write_device_losses(f, &nic.device)?;
            }
            f.write_str(", ")?;
        }
        let s = &self.states;
        write!(
            f,
            "states {}/{} (tcp {} udp {} icmp {} other {}), nat ports {}",
            s.live,
            s.capacity,
            s.by_protocol.tcp,
            s.by_protocol.udp,
            s.by_protocol.icmp,
            s.by_protocol.other,
            s.nat_ports_in_use
        )?;
        if s.early_drops > 0 || s.refused.total() > 0 {
            write!(
                f,
                ", early drops {}, refused {}",
                s.early_drops,
                s.refused.total()
            )?;
        }
        let mut drops = self.drops.nonzero().peekable();
        if drops.peek().is_some() {
            f.write_str(", drops")?;
            for (reason, count) in drops {
                write!(f, " {reason} {count}")?;
            }
        }
        if self.log_lines_suppressed > 0 {
            write!(f, ", log lines suppressed {}", self.log_lines_suppressed)?;
        }
        if self.errors_rate_limited > 0 {
            write!(f, ", icmp errors rate-limited {}", self.errors_rate_limited)?;
        }
        Ok(())
    }
}

/// ` (driver lost: tx ring full N, tx too big N, rx dropped N)`, naming the non-zero ones.
fn write_device_losses(f: &mut fmt::Formatter, losses: &DeviceLosses) -> fmt::Result {
    let named = [
        ("tx ring full", losses.tx_ring_full),
        ("tx too big", losses.tx_too_big),
        ("rx dropped", losses.rx_dropped),
    ];
    f.write_str(" (driver lost:")?;
    let mut first = true;
    for (name, count) in named.into_iter().filter(|(_, count)| *count > 0) {
        let separator = if first { " " } else { ", " };
        write!(f, "{separator}{name} {count}")?;
        first = false;
    }
    f.write_str(")")
}

/// Prints the stats line and the counter lines ([`super::counter_lines`]) that changed, at
/// most once per interval (never with no interval: `moat.stats=off`).
#[derive(Debug)]
pub(super) struct Reporter {
    interval: Option<Duration>,
    last_printed: Option<Stats>,
    /// Each rule line's counters as last printed, by line.
    last_rules: Vec<RuleCount>,
    last_drops: DropCounters,
    next_at: Instant,
}

impl Reporter {
    /// A reporter for a policy of `rule_lines` rule lines (the default's included): their
    /// last printed counters are kept from the start, so that reports allocate nothing.
    pub(super) fn new(now: Instant, interval: Option<Duration>, rule_lines: usize) -> Reporter {
        Reporter {
            interval,
            last_printed: None,
            last_rules: if interval.is_some() {
                vec![RuleCount::default(); rule_lines]
            } else {
                Vec::new()
            },
            last_drops: DropCounters::default(),
            next_at: now,
        }
    }

    /// Longest the appliance may wait before asking [`Reporter::due`] again.
    pub(super) fn wait_at_most(&self, longest: Duration) -> Duration {
        self.interval.map_or(longest, |i| i.min(longest))
    }

    /// Whether a report is due at `now`.
    pub(super) fn due(&self, now: Instant) -> bool {
        self.interval.is_some() && now >= self.next_at
    }

    /// Prints what changed since the last report: the stats line, then a line per rule
    /// and per drop reason whose counters moved.
    pub(super) fn print_changes(
        &mut self,
        now: Instant,
        stats: &Stats,
        rules: impl Iterator<Item = RuleLine>,
    ) {
        let Some(interval) = self.interval else {
            return;
        };
        if self.last_printed.as_ref() == Some(stats) {
            return;
        }
        log::info!("stats {stats}");
        for (i, line) in rules.enumerate() {
            let before = self.last_rules.get(i).copied().unwrap_or_default();
            if before != line.count {
                log::info!("stats {line}");
            }
            match self.last_rules.get_mut(i) {
                Some(last) => *last = line.count,
                None => self.last_rules.push(line.count),
            }
        }
        for line in changed_drops(&stats.drops, &self.last_drops) {
            log::info!("stats {line}");
        }
        let last_capture = self.last_printed.as_ref().and_then(|s| s.capture);
        if let Some(capture) = stats.capture.filter(|c| Some(*c) != last_capture) {
            log::info!("stats {}", CaptureLine(capture));
        }
        self.last_drops = stats.drops;
        self.last_printed = Some(stats.clone());
        self.next_at = now + interval;
    }
}

/// Prints the final report: the stats line (as `final …`), then a line for every rule and
/// drop reason with a non-zero counter.
pub(super) fn print_final(stats: &Stats, rules: impl Iterator<Item = RuleLine>) {
    log::info!("final {stats}");
    for line in rules.filter(|l| l.count != RuleCount::default()) {
        log::info!("stats {line}");
    }
    for line in changed_drops(&stats.drops, &DropCounters::default()) {
        log::info!("stats {line}");
    }
    if let Some(capture) = stats.capture {
        log::info!("stats {}", CaptureLine(capture));
    }
}
