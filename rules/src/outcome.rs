//! What the data plane did with a packet ([`Run`]), in the language's words: the verdict as
//! a `test` line states it, who decided it — a rule, the default, or the data plane itself
//! (and why) — and the destination NAT on the way.

use std::net::IpAddr;

use dataplane::appliance::{Fate, RedirectKind};
use dataplane::drops::DropReason;
use dataplane::ip_options;
use dataplane::packet::SPECIAL_PURPOSE;
use dataplane::policy::{flow_addr_to_ipv4, Action, DnsUpstream, Policy, Verdict, OUT_SELF};

use smoltcp::wire::{IpAddress, Ipv4Cidr};

use crate::checked::Checked;
use crate::concrete::Destination;
use crate::describe::nic_text;
use crate::dryrun::Run;
use crate::source::pos_str;

/// A run's verdict as a `test` line states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observed {
    /// `pass` if the packet went on (forwarded, or to the appliance's own stack); `reject` if
    /// a `reject` rule dropped it; `block` for every other drop.
    pub action: Action,
    /// Whether it was logged (a passed packet: whether its rule says `log`).
    pub log: bool,
    /// Why it was dropped (`None` if it went on).
    pub reason: Option<DropReason>,
}

impl Observed {
    /// The verdict of `run`.
    pub fn of(run: &Run) -> Observed {
        let decided = run.trace.decision.map(|d| d.verdict);
        if run.neighbor_unreachable {
            return Observed {
                action: Action::Block,
                log: false,
                reason: Some(DropReason::NeighborUnreachable),
            };
        }
        match run.trace.fate {
            Fate::Forwarded { .. } | Fate::Local => Observed {
                action: Action::Pass,
                log: decided.is_some_and(|v| v.log),
                reason: None,
            },
            Fate::Dropped(reason) => Observed {
                action: match (reason, decided) {
                    (DropReason::Policy, Some(verdict)) => verdict.action,
                    _ => Action::Block,
                },
                log: run.trace.logged,
                reason: Some(reason),
            },
        }
    }

    /// `pass`, `block log`, `block (martian-destination)`, ...
    pub fn words(&self) -> String {
        let log = if self.log { " log" } else { "" };
        match self.reason {
            Some(reason) if reason != DropReason::Policy => {
                format!("{}{log} ({reason})", action_word(self.action))
            }
            _ => format!("{}{log}", action_word(self.action)),
        }
    }
}

/// The word for an action.
pub fn action_word(action: Action) -> &'static str {
    match action {
        Action::Pass => "pass",
        Action::Block => "block",
        Action::Reject => "reject",
    }
}

/// Which rule decided a verdict: `the rule at L:C`, `the default at L:C` or `the built-in
/// default (block)`.
pub fn decider(policy: &Policy, verdict: &Verdict) -> String {
    match verdict.rule.and_then(|i| policy.rules.get(i as usize)) {
        Some(rule) => format!("the rule at {}", pos_str(rule.pos)),
        None if policy.default.pos.line > 0 => {
            format!("the default at {}", pos_str(policy.default.pos))
        }
        None => "the built-in default (block)".to_string(),
    }
}

/// Who decided a run's fate: the deciding rule, or the data plane and why.
pub fn decided_by(checked: &Checked, policy: &Policy, run: &Run) -> String {
    let verdict = run.trace.decision.map(|d| d.verdict);
    let fate = match Observed::of(run).reason {
        Some(reason) => Fate::Dropped(reason),
        None => run.trace.fate,
    };
    match (fate, verdict) {
        (Fate::Dropped(DropReason::Policy), Some(verdict)) => decider(policy, &verdict),
        (Fate::Dropped(reason), verdict) => {
            let after = match verdict {
                Some(v) if v.action == Action::Pass => {
                    format!(", after {} passed it", decider(policy, &v))
                }
                _ => String::new(),
            };
            format!(
                "the data plane{after}: {}",
                why_dropped(checked, run, reason)
            )
        }
        (_, Some(verdict)) => decider(policy, &verdict),
        (_, None) => "the data plane (no rule is asked about it)".to_string(),
    }
}

/// The special-purpose block `addr` lies in, as text.
fn special_block(addr: IpAddr) -> Option<String> {
    let IpAddr::V4(v4) = addr else { return None };
    SPECIAL_PURPOSE
        .iter()
        .find(|b| b.contains_addr(&v4))
        .map(|b| b.to_string())
}

/// Why the data plane dropped the packet of `run`, in words, with the packet's particulars.
pub fn why_dropped(checked: &Checked, run: &Run, reason: DropReason) -> String {
    let key = run.trace.decision.map(|d| d.key);
    let dst = run.trace.redirect.map_or(run.dst, |r| IpAddr::from(r.to));
    let src = run.packet.src;
    let iface = nic_text(checked, run.packet.in_nic);
    let detail = run
        .trace
        .detail
        .map_or_else(String::new, |d| format!(" ({d})"));
    match reason {
        DropReason::MartianDestination => match special_block(dst) {
            Some(block) => format!("{dst} is in {block}, which the appliance never forwards to"),
            None => format!("{dst} is never forwarded to"),
        },
        DropReason::MartianSource => match special_block(src) {
            Some(block) => format!("{src} is never a packet's source: it is in {block}"),
            None => format!("{src} is never a packet's source"),
        },
        DropReason::Spoofed => format!("{src} may not send from {iface}{detail}"),
        DropReason::NicUnconfigured if src.is_ipv6() => format!("{iface} has no IPv6 address"),
        DropReason::NicUnconfigured => format!("{iface} has no IPv4 address"),
        DropReason::NoRoute if key.is_some_and(|k| k.out == OUT_SELF) => format!(
            "{dst} is the appliance's own address on another interface, which it answers only there"
        ),
        DropReason::NoRoute => format!("there is no route to {dst}"),
        DropReason::NeighborUnreachable => match run.trace.fate {
            Fate::Forwarded { nic, next_hop, .. } => format!(
                "no answer to {} for {next_hop} on {} that the appliance accepts (it learns \
                 neighbours only from senders allowed there), so the packet waited and was dropped",
                if next_hop.version() == smoltcp::wire::IpVersion::Ipv6 {
                    "neighbour discovery"
                } else {
                    "ARP"
                },
                nic_text(checked, nic)
            ),
            _ => reason.meaning().to_string(),
        },
        DropReason::IpOptions => match run.trace.detail {
            Some(ip_options::DETAIL_SOURCE_ROUTE) => {
                "it carries a source route (an IP option), which the appliance never forwards"
                    .to_string()
            }
            Some(ip_options::DETAIL_RECORD_ROUTE) => {
                "it asks to record its route (an IP option), which the \
                                     appliance never forwards"
                    .to_string()
            }
            _ => "it carries IP options, and the rule that passed it does not say allow-opts"
                .to_string(),
        },
        _ => format!("{}{detail}", reason.meaning()),
    }
}

/// `" for the appliance itself (10.0.2.255 is uplink's broadcast address)"` when routing
/// took a packet that is not addressed to one of the appliance's addresses as addressed to
/// it, else empty.
pub fn routing_note(checked: &Checked, run: &Run) -> String {
    let to_self = run.trace.decision.is_some_and(|d| d.key.out == OUT_SELF);
    let IpAddr::V4(dst) = run.dst else {
        return String::new();
    };
    if !to_self {
        return String::new();
    }
    if dst.is_broadcast() {
        return " for the appliance itself (the limited broadcast)".to_string();
    }
    let broadcast_of = checked.interfaces.iter().find(|i| {
        i.network()
            .is_some_and(|(net, len)| Ipv4Cidr::new(net, len).broadcast() == Some(dst))
    });
    match broadcast_of {
        Some(iface) => format!(
            " for the appliance itself ({dst} is {}'s broadcast address)",
            iface.name
        ),
        None => String::new(),
    }
}

/// `" (after the forward at 20:1 to 192.168.10.2:22)"` for a redirected packet, else empty.
pub fn redirect_text(policy: &Policy, run: &Run) -> String {
    let Some(redirect) = run.trace.redirect else {
        return String::new();
    };
    match redirect.kind {
        RedirectKind::PortForward => {
            let pos = policy.forwards.get(redirect.rule).map(|f| f.pos);
            format!(
                " (after the forward at {} to {}:{})",
                pos.map_or_else(|| "?".into(), pos_str),
                redirect.to,
                redirect.to_port
            )
        }
        RedirectKind::Dns => {
            let dns = policy.dns.get(redirect.rule);
            let learned = dns.is_some_and(|d| d.upstream == DnsUpstream::Learned);
            let to = match redirect.to {
                IpAddress::Ipv4(_) if learned && run.case.resolver.is_some() => {
                    format!("the resolver DHCP names ({} here)", redirect.to)
                }
                IpAddress::Ipv6(_) if learned && run.case.advert.is_some() => {
                    format!("the resolver the router advertises ({} here)", redirect.to)
                }
                _ => redirect.to.to_string(),
            };
            format!(
                " (after the DNS redirect at {} to {to})",
                dns.map_or_else(|| "?".into(), |d| pos_str(d.pos)),
            )
        }
    }
}

/// What a run assumed about what DHCP or SLAAC learns, when it matters: `" when the destination is
/// 8.8.8.0"` (the resolver the redirected query went to) or `" when wan's address is
/// 1.0.0.0"` (a packet to the appliance's learned address).
pub fn case_text(checked: &Checked, runs: &[Run], run: &Run) -> String {
    if runs.len() < 2 {
        return String::new();
    }
    let resolver = |r: &Run| match r.trace.redirect.map(|d| d.to) {
        Some(IpAddress::Ipv6(_)) => r.case.advert.map(|a| IpAddr::V6(a.resolver)),
        _ => r.case.resolver.map(IpAddr::V4),
    };
    let resolvers_vary = runs.iter().any(|r| resolver(r) != resolver(run));
    match (resolver(run), run.case.lease) {
        (Some(resolver), _) if resolvers_vary => format!(" when the destination is {resolver}"),
        (_, Some(lease)) if run.packet.dst == Destination::LearnedSelf => format!(
            " when {}'s address is {}",
            nic_text(checked, lease.nic),
            lease.address
        ),
        _ => String::new(),
    }
}

/// A flow address as text (IPv4 when mapped).
pub fn addr_text(addr: u128) -> String {
    match flow_addr_to_ipv4(addr) {
        Some(v4) => std::net::Ipv4Addr::from(v4).to_string(),
        None => std::net::Ipv6Addr::from(addr).to_string(),
    }
}
