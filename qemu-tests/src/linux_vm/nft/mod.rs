//! A Moat ruleset as an nftables ruleset for the Linux comparator VM: the same policy,
//! translated from the *checked* ruleset the compiler produces (names resolved, every rule
//! normalised into product sets of flow keys), not re-parsed, so the two cannot read the
//! language differently.
//!
//! What the translation keeps, part by part:
//!
//! - [`spoof`]: Moat's anti-spoofing, before connection tracking;
//! - [`nat`]: port forwards and DNS redirects before the filter (the rules see the
//!   translated packet), masquerade after it;
//! - [`filter`]: the rules in order, `to self` in `input` and the rest in `forward`, first
//!   match wins; established and related packets pass before any rule (Moat's state
//!   table), invalid ones (TCP outside any connection) are dropped; the default at the end;
//! - `pass` accepts (connection tracking creates the state), `block` drops, `reject` answers
//!   TCP with a reset and everything else with ICMP administratively prohibited;
//! - state limits: a rule's `max-states` and `max-src-states` as `ct count` in a chain of
//!   the rule's own, a client's `max-states` as `ct count` per client before accepting;
//! - `log`: the packet is logged through one shared budget of 20 lines a second (bursts of
//!   50), like Moat's drop log, and spoofed packets are logged as Moat logs them.
//!
//! - `forwarded` rules: the connection mark the `dstnat` chain sets for a port forward.
//!
//! What has no translation is refused with a message, never approximated: interfaces
//! addressed by DHCP, DNS redirects to resolvers learned by DHCP, rules that allow IP
//! options (`allow-opts`), and clients with a pinned MAC. Moat's own drops before the rules
//! (malformed packets, IP options, unicast packets in link-layer broadcasts) are the data
//! plane's, not the ruleset's, and are not reproduced; the benchmarks send none.
//!
//! [`NftPolicy::decide`] evaluates the translated filter on a flow key, so tests can hold
//! it against the data plane's own `Policy::decide`.

pub mod filter;
pub mod nat;
pub mod spoof;
pub mod syntax;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;

use dataplane::policy::{Action, DefaultRule, FlowKey, SourcePos, OUT_SELF};
use rules::checked::{Addressing, Checked};
use rules::ranges::RangeSet;

use filter::{filter_rules, Chain, FilterRule};
use spoof::{spoof_rules, SpoofRule};
use syntax::interfaces;

/// The name of the nftables table.
pub const TABLE: &str = "moat";
/// The prefix of the VM's log lines.
const LOG_PREFIX: &str = "moat-linux:";

/// A translated ruleset.
#[derive(Debug, Clone)]
pub struct NftPolicy {
    /// NICs of the VM (`nic0` ..).
    pub nics: u8,
    /// Anti-spoofing drops.
    pub antispoof: Vec<SpoofRule>,
    /// The `dstnat` chain's rules.
    pub destination_nat: Vec<String>,
    /// The `srcnat` chain's rules.
    pub source_nat: Vec<String>,
    /// The filter rules, in order.
    pub filter: Vec<FilterRule>,
    /// What no rule decides.
    pub default: DefaultRule,
    /// Per-rule state limits: `(position, max-states, max-src-states)`.
    pub rule_limits: Vec<(SourcePos, u32, u32)>,
    /// Per-client state limits: `(nic, address, max-states)`.
    pub client_limits: Vec<(u8, std::net::Ipv4Addr, u32)>,
}

/// Translates `checked` for a VM with `nics` NICs.
pub fn translate(checked: &Checked, nics: u8) -> Result<NftPolicy, String> {
    if nics == 0 {
        return Err("a VM without NICs forwards nothing".into());
    }
    for interface in &checked.interfaces {
        if interface.addressing == Addressing::Dhcp {
            return Err(format!(
                "interface {} uses DHCP: the Linux comparator configures static addresses only",
                interface.name
            ));
        }
        if interface.nic >= nics {
            return Err(format!(
                "interface {} is on nic{}, but the VM has {nics} NICs",
                interface.name, interface.nic
            ));
        }
    }
    if let Some(rule) = checked.rules.iter().find(|rule| rule.allow_opts) {
        return Err(format!(
            "the rule at {}:{} allows IP options (allow-opts): nftables cannot filter them per rule",
            rule.pos.line, rule.pos.column
        ));
    }
    if let Some(client) = checked.clients.iter().find(|client| client.mac.is_some()) {
        return Err(format!(
            "client {} has a pinned MAC: the Linux comparator binds no MACs",
            client.name
        ));
    }
    let nic_set = RangeSet::range(0, u128::from(nics) - 1);
    let mut rule_limits: Vec<(SourcePos, u32, u32)> = checked
        .rules
        .iter()
        .filter(|rule| rule.limits.max_states > 0 || rule.limits.max_states_per_source > 0)
        .map(|rule| {
            (
                rule.pos,
                rule.limits.max_states,
                rule.limits.max_states_per_source,
            )
        })
        .collect();
    rule_limits.dedup();
    Ok(NftPolicy {
        nics,
        antispoof: spoof_rules(checked, nics),
        destination_nat: nat::destination_nat(checked)?,
        source_nat: nat::source_nat(checked, &nic_set),
        filter: filter_rules(&checked.rules, &nic_set, &own_destinations(checked)),
        default: checked.default,
        rule_limits,
        client_limits: checked
            .clients
            .iter()
            .filter(|c| c.max_states > 0)
            .filter_map(|c| Some((c.nic, c.ipv4?, c.max_states)))
            .collect(),
    })
}

/// What Moat routes to itself: its addresses, and the broadcast address of each connected
/// network of up to /30 (as flow addresses).
pub fn own_destinations(checked: &Checked) -> RangeSet {
    let v4 = |address: u32| {
        let flow = dataplane::policy::ipv4_to_flow_addr(address);
        (flow, flow)
    };
    RangeSet::from_ranges(checked.interfaces.iter().flat_map(|interface| {
        let address = interface.address().map(|a| v4(a.into()));
        let broadcast = interface
            .network()
            .filter(|&(_, len)| len <= 30)
            .map(|(network, len)| v4(u32::from(network) | (u32::MAX >> len)));
        address.into_iter().chain(broadcast)
    }))
}

impl NftPolicy {
    /// What the translated filter does with the first packet of a flow with `key`: the
    /// action and whether it is logged.
    pub fn decide(&self, key: &FlowKey) -> (Action, bool) {
        let chain = if key.out == OUT_SELF {
            Chain::Input
        } else {
            Chain::Forward
        };
        self.filter
            .iter()
            .filter(|rule| rule.chain == chain)
            .find(|rule| rule.matches(key))
            .map(|rule| (rule.action, rule.log))
            .unwrap_or((
                if self.default.reject {
                    Action::Reject
                } else {
                    Action::Block
                },
                self.default.log,
            ))
    }

    /// Whether anti-spoofing refuses a packet from `src` on `nic`.
    pub fn refuses_source(&self, nic: u8, src: std::net::Ipv4Addr) -> bool {
        self.antispoof.iter().any(|rule| rule.refuses(nic, src))
    }

    /// The ruleset as one `nft -f` file (the files of [`NftPolicy::render_files`] in a row).
    pub fn render(&self) -> String {
        self.render_files(usize::MAX).concat()
    }

    /// The ruleset as files for `nft -f`, loaded in order: the table with everything but
    /// the filter base chains, then the filter rules in regular chains of at most
    /// `rules_per_file` rules each (one file per chain), then the `input` and `forward`
    /// base chains, which jump to those chains in order and end with the default. Loaded
    /// in pieces, `nft` needs a fraction of the memory one transaction of 10,000 rules takes
    /// (more than a 128 MiB VM has); first match still wins, as a rule that decides ends the
    /// walk and a chain without a match returns to the next jump. With few rules the base
    /// chains hold them directly.
    pub fn render_files(&self, rules_per_file: usize) -> Vec<String> {
        let mut head = String::new();
        let _ = writeln!(
            head,
            "# Generated from a Moat ruleset by qemu-tests' nftables translation. Do not edit.\nflush ruleset\ntable ip {TABLE} {{"
        );
        let _ = writeln!(
            head,
            "\tlimit log_budget {{ rate 20/second burst 50 packets }}"
        );
        self.render_helpers(&mut head);
        self.render_antispoof(&mut head);
        chain(
            &mut head,
            "dstnat",
            Some("type nat hook prerouting priority dstnat; policy accept;"),
            &self.destination_nat,
        );
        chain(
            &mut head,
            "srcnat",
            Some("type nat hook postrouting priority srcnat; policy accept;"),
            &self.source_nat,
        );
        head.push_str("}\n");
        let mut files = vec![head];
        let mut bases = format!("table ip {TABLE} {{\n");
        for (name, base) in [(Chain::Input, "input"), (Chain::Forward, "forward")] {
            let mut lines = vec![
                "ct state established,related accept".to_string(),
                "ct state invalid drop".to_string(),
            ];
            if name == Chain::Input {
                lines.insert(0, "iifname \"lo\" accept".to_string());
            }
            let rules: Vec<String> = self
                .filter
                .iter()
                .filter(|rule| rule.chain == name)
                .map(|rule| {
                    format!(
                        "{} {} # {}:{}",
                        rule.render_matches(),
                        self.verdict(rule.action, rule.log, Some(rule.pos)),
                        rule.pos.line,
                        rule.pos.column
                    )
                })
                .collect();
            if rules.len() <= rules_per_file {
                lines.extend(rules);
            } else {
                for (index, piece) in rules.chunks(rules_per_file).enumerate() {
                    let part = format!("{base}_{index}");
                    let mut file = format!("table ip {TABLE} {{\n");
                    chain(&mut file, &part, None, piece);
                    file.push_str("}\n");
                    files.push(file);
                    lines.push(format!("jump {part}"));
                }
            }
            let default = if self.default.reject {
                Action::Reject
            } else {
                Action::Block
            };
            lines.push(format!(
                "{} # default",
                self.verdict(default, self.default.log, None)
            ));
            chain(
                &mut bases,
                base,
                Some(&format!(
                    "type filter hook {base} priority filter; policy drop;"
                )),
                &lines,
            );
        }
        bases.push_str("}\n");
        files.push(bases);
        files
    }

    /// The verdict statement of a rule with `action` and `log` (at `pos`, for its limits).
    fn verdict(&self, action: Action, log: bool, pos: Option<SourcePos>) -> String {
        let limited = pos.is_some_and(|pos| self.rule_limits.iter().any(|(p, _, _)| *p == pos));
        match (action, log) {
            (Action::Pass, _) if limited || log => {
                format!("jump {}", rule_chain(pos.unwrap_or_default()))
            }
            (Action::Pass, _) => self.accept().to_string(),
            (Action::Block, false) => "drop".to_string(),
            (Action::Block, true) => "jump log_block".to_string(),
            (Action::Reject, false) => "jump reject_packet".to_string(),
            (Action::Reject, true) => "jump log_reject".to_string(),
        }
    }

    /// How a passed packet is accepted: through the client limits, if any.
    fn accept(&self) -> &'static str {
        if self.client_limits.is_empty() {
            "accept"
        } else {
            "goto accept_new"
        }
    }

    fn render_helpers(&self, out: &mut String) {
        let log =
            |what: &str| format!("limit name \"log_budget\" log prefix \"{LOG_PREFIX} {what} \"");
        chain(
            out,
            "reject_packet",
            None,
            &[
                "meta l4proto 6 reject with tcp reset".to_string(),
                "reject with icmp type admin-prohibited".to_string(),
            ],
        );
        chain(out, "log_block", None, &[log("block"), "drop".into()]);
        chain(
            out,
            "log_reject",
            None,
            &[log("reject"), "goto reject_packet".into()],
        );
        chain(out, "log_spoofed", None, &[log("spoofed"), "drop".into()]);
        if !self.client_limits.is_empty() {
            let mut lines: Vec<String> = self
                .client_limits
                .iter()
                .map(|(nic, address, max)| {
                    format!(
                        "iifname {} ip saddr {address} ct count over {max} drop",
                        interfaces(&RangeSet::single((*nic).into()))
                    )
                })
                .collect();
            lines.push("accept".into());
            chain(out, "accept_new", None, &lines);
        }
        let logged_passes: Vec<SourcePos> = self
            .filter
            .iter()
            .filter(|rule| rule.action == Action::Pass)
            .filter(|rule| rule.log || self.rule_limits.iter().any(|(p, _, _)| *p == rule.pos))
            .map(|rule| rule.pos)
            .collect();
        let mut done: Vec<SourcePos> = Vec::new();
        for pos in logged_passes {
            if done.contains(&pos) {
                continue;
            }
            done.push(pos);
            let name = rule_chain(pos);
            let mut lines = Vec::new();
            if let Some(&(_, max, per_source)) = self.rule_limits.iter().find(|(p, _, _)| *p == pos)
            {
                if max > 0 {
                    lines.push(format!("ct count over {max} drop"));
                }
                if per_source > 0 {
                    let _ = writeln!(
                        out,
                        "\tset {name}_sources {{ type ipv4_addr; size 65535; flags dynamic; }}"
                    );
                    lines.push(format!(
                        "add @{name}_sources {{ ip saddr ct count over {per_source} }} drop"
                    ));
                }
            }
            if self.filter.iter().any(|rule| rule.pos == pos && rule.log) {
                lines.push(log("pass"));
            }
            lines.push(self.accept().to_string());
            chain(out, &name, None, &lines);
        }
    }

    fn render_antispoof(&self, out: &mut String) {
        let mut lines = vec!["iifname \"lo\" accept".to_string()];
        lines.extend(self.antispoof.iter().map(|rule| {
            format!(
                "{} jump log_spoofed # {}",
                rule.render_matches(),
                rule.reason
            )
        }));
        chain(
            out,
            "antispoof",
            Some("type filter hook prerouting priority raw; policy accept;"),
            &lines,
        );
    }
}

/// The chain of a `pass` rule that logs or limits its states.
fn rule_chain(pos: SourcePos) -> String {
    format!("rule_{}_{}", pos.line, pos.column)
}

/// Writes a chain with an optional base-chain header.
fn chain(out: &mut String, name: &str, header: Option<&str>, lines: &[String]) {
    let _ = writeln!(out, "\tchain {name} {{");
    if let Some(header) = header {
        let _ = writeln!(out, "\t\t{header}");
    }
    for line in lines {
        let _ = writeln!(out, "\t\t{line}");
    }
    out.push_str("\t}\n");
}
