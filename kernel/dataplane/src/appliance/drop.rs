//! The one way a packet is dropped: counted under its reason, recorded in the trace, and
//! logged — when the deciding rule says `log`, or when the reason is one that is always
//! logged ([`DropReason::always_logged`]) — through the rate-limited drop log.
//!
//! A drop line names the NIC, then the rule (`block rule 14:1`, `reject default 8:1`) or
//! the reason with its detail (`spoofed (spoofed-not-a-client)`, `state-table-full`), then
//! the packet as it arrived.

use core::fmt;

use smoltcp::time::Instant;
use smoltcp::wire::Ipv4Address;

use super::descriptor::PacketDesc;
use super::trace::{Fate, Trace};
use super::Appliance;
use crate::drops::DropReason;
use crate::policy::{Action, Policy, Verdict};
use crate::share::Source;

/// Why a packet goes no further.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Dropped {
    /// The reason it is counted under.
    pub reason: DropReason,
    /// What the log line says about it.
    pub why: Why,
}

/// What a drop line says after the NIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Why {
    /// The reason alone.
    Reason,
    /// The reason and a detail (`spoofed (client-mac-changed)`).
    Detail(&'static str),
    /// The `block` or `reject` verdict of a rule or the default.
    Rule(Verdict),
}

impl Dropped {
    /// A drop for `reason`, with `detail` in its log line.
    pub fn detail(reason: DropReason, detail: &'static str) -> Dropped {
        Dropped {
            reason,
            why: Why::Detail(detail),
        }
    }

    /// A drop by the policy's `verdict`.
    pub fn rule(verdict: Verdict) -> Dropped {
        Dropped {
            reason: DropReason::Policy,
            why: Why::Rule(verdict),
        }
    }

    /// The detail of its log line, if it has one.
    fn detail_text(&self) -> Option<&'static str> {
        match self.why {
            Why::Detail(detail) => Some(detail),
            Why::Reason | Why::Rule(_) => None,
        }
    }

    /// Whether the drop is logged: a rule's own `log`, otherwise the reason's.
    fn logged(&self) -> bool {
        match self.why {
            Why::Rule(verdict) => verdict.log,
            Why::Reason | Why::Detail(_) => self.reason.always_logged(),
        }
    }
}

impl From<DropReason> for Dropped {
    fn from(reason: DropReason) -> Dropped {
        Dropped {
            reason,
            why: Why::Reason,
        }
    }
}

/// The drop line's cause: `block rule 14:1`, `spoofed (spoofed-not-a-client)`, ...
struct Cause<'a> {
    dropped: &'a Dropped,
    policy: &'a Policy<'a>,
}

impl fmt::Display for Cause<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let reason = self.dropped.reason;
        match self.dropped.why {
            Why::Reason => write!(f, "{reason}"),
            Why::Detail(detail) => write!(f, "{reason} ({detail})"),
            Why::Rule(verdict) => {
                let action = if verdict.action == Action::Reject {
                    "reject"
                } else {
                    "block"
                };
                let (kind, pos) = match verdict.rule.and_then(|i| self.policy.rules.get(i as usize))
                {
                    Some(rule) => ("rule", rule.pos),
                    None => ("default", self.policy.default.pos),
                };
                write!(f, "{action} {kind} {}:{}", pos.line, pos.column)
            }
        }
    }
}

impl Appliance<'_> {
    /// Drops the packet `pd` describes.
    pub(super) fn refuse_packet(&mut self, pd: &mut PacketDesc, dropped: Dropped) {
        let described = pd.described();
        let (nic, now) = (pd.nic, pd.now);
        let sender = self.sender_of(pd);
        let logged = self.log_refusal(nic, now, sender, &dropped, Some(&described));
        pd.trace.logged = logged;
        pd.trace.detail = dropped.detail_text();
        pd.trace.fate = Fate::Dropped(dropped.reason);
        self.count_drop(nic, dropped.reason);
    }

    /// Drops a frame that arrived on `nic` (described by `packet` in the log line, if it
    /// could be parsed). Its log line is charged to the NIC's unidentified senders, who
    /// share one share of the drop log.
    pub(super) fn refuse(
        &mut self,
        nic: u8,
        now: Instant,
        trace: &mut Trace,
        dropped: Dropped,
        packet: Option<&dyn fmt::Display>,
    ) {
        let unidentified = Source::neighbour(nic, Ipv4Address::UNSPECIFIED);
        trace.logged = self.log_refusal(nic, now, unidentified, &dropped, packet);
        trace.detail = dropped.detail_text();
        trace.fate = Fate::Dropped(dropped.reason);
        self.count_drop(nic, dropped.reason);
    }

    /// Writes the drop line if the drop is logged (within `sender`'s share of the drop
    /// log); returns whether it is logged.
    fn log_refusal(
        &mut self,
        nic: u8,
        now: Instant,
        sender: Source,
        dropped: &Dropped,
        packet: Option<&dyn fmt::Display>,
    ) -> bool {
        if !dropped.logged() {
            return false;
        }
        let cause = Cause {
            dropped,
            policy: &self.policy,
        };
        match packet {
            Some(packet) => {
                self.drop_log
                    .log(now, sender, format_args!("nic{nic} {cause} {packet}"))
            }
            None => self
                .drop_log
                .log(now, sender, format_args!("nic{nic} {cause}")),
        };
        true
    }
}
