//! The appliance's periodic stats line, as far as the tests read it: the state table's fill
//! and what it did when full.
//!
//! ```text
//! moat: stats nic0 rx 40463 tx 216883 drop 5176, ..., states 64/64 (tcp 64 udp 0 icmp 0 other 0),
//!     nat ports 64, early drops 4938, refused 0, drops ...
//! ```
//!
//! Clauses are separated by `, `; `early drops` and `refused` appear only once non-zero.

use std::time::Duration;

use crate::console::Console;
use crate::Outcome;

/// What every stats line starts with.
pub const STATS_PREFIX: &str = "moat: stats ";

/// The state table, as one stats line reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateTableStats {
    /// Live states.
    pub live: u64,
    /// The table's capacity.
    pub capacity: u64,
    /// States evicted to make room for new ones (not yet established flows).
    pub early_drops: u64,
    /// New flows refused because the table (or a limit) was full.
    pub refused: u64,
}

impl StateTableStats {
    /// Reads the state-table clauses of a stats line; `None` if it is not one.
    pub fn parse(line: &str) -> Option<StateTableStats> {
        let rest = line.strip_prefix(STATS_PREFIX)?;
        let mut stats = None;
        let (mut early_drops, mut refused) = (0, 0);
        for clause in rest.split(", ") {
            if let Some(states) = clause.strip_prefix("states ") {
                let fill = states.split_whitespace().next()?;
                let (live, capacity) = fill.split_once('/')?;
                stats = Some((live.parse().ok()?, capacity.parse().ok()?));
            } else if let Some(count) = clause.strip_prefix("early drops ") {
                early_drops = count.parse().ok()?;
            } else if let Some(count) = clause.strip_prefix("refused ") {
                refused = count.parse().ok()?;
            }
        }
        let (live, capacity) = stats?;
        Some(StateTableStats {
            live,
            capacity,
            early_drops,
            refused,
        })
    }
}

/// Waits for a stats line whose state-table figures `wanted` accepts, and returns them.
pub fn wait_for_state_table(
    console: &Console,
    what: &str,
    timeout: Duration,
    wanted: impl Fn(&StateTableStats) -> bool,
) -> Outcome<StateTableStats> {
    console.wait_until(what, timeout, |snapshot| {
        snapshot
            .lines
            .iter()
            .filter_map(|line| StateTableStats::parse(line))
            .find(|stats| wanted(stats))
            .map(Ok)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_table_clauses_are_read() {
        let line = "moat: stats nic0 rx 40463 tx 216883 drop 5176, nic1 rx 1 tx 2 drop 0, \
                    states 64/64 (tcp 64 udp 0 icmp 0 other 0), nat ports 64, early drops 4938, \
                    refused 3, drops ethertype 18 policy 20";
        assert_eq!(
            StateTableStats::parse(line),
            Some(StateTableStats {
                live: 64,
                capacity: 64,
                early_drops: 4938,
                refused: 3
            })
        );
        let quiet = "moat: stats nic0 rx 0 tx 1 drop 0, states 0/110783 (tcp 0 udp 0 icmp 0 other 0), nat ports 0";
        assert_eq!(
            StateTableStats::parse(quiet),
            Some(StateTableStats {
                live: 0,
                capacity: 110_783,
                early_drops: 0,
                refused: 0
            })
        );
        assert_eq!(StateTableStats::parse("moat: ready"), None);
        assert_eq!(
            StateTableStats::parse("moat: stats nic0 rx 0 tx 1 drop 0"),
            None
        );
    }
}
