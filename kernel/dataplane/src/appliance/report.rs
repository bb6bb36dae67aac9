//! The stats line: printed every few seconds when counters changed, and once more at
//! shutdown (by the kernel, through [`Stats`]'s `Display`).

use alloc::vec::Vec;
use core::fmt;

use smoltcp::time::{Duration, Instant};

use super::NicCounters;
use crate::drops::DropCounters;
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
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (i, nic) in self.nics.iter().enumerate() {
            write!(
                f,
                "nic{i} rx {} tx {} drop {}, ",
                nic.rx, nic.tx, nic.dropped
            )?;
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

/// Prints the stats line when it changed, at most once per interval.
#[derive(Debug)]
pub(super) struct Reporter {
    last_printed: Option<Stats>,
    next_at: Instant,
}

impl Reporter {
    pub(super) fn new(now: Instant) -> Reporter {
        Reporter {
            last_printed: None,
            next_at: now,
        }
    }

    pub(super) fn maybe_print(&mut self, now: Instant, stats: &Stats, interval: Duration) {
        if now < self.next_at || self.last_printed.as_ref() == Some(stats) {
            return;
        }
        log::info!("stats {stats}");
        self.last_printed = Some(stats.clone());
        self.next_at = now + interval;
    }
}
