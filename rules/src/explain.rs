//! `explain`: what the appliance does with one packet, and why — the packet run through
//! the data plane itself ([`crate::dryrun`]), reported in the ruleset's own terms: the
//! packet as the rules saw it (after destination NAT and routing), the verdict and who
//! decided it (a rule and its line, the default, or the data plane and its reason), the
//! source NAT and the way out, what the sender was told, and for every earlier rule the
//! fields that kept it from matching.

use std::fmt::Write as _;

use dataplane::appliance::{Fate, Reply};
use dataplane::policy::{ipv4_to_flow_addr, FlowKey, Policy, Rule, OUT_SELF, REDIRECT_NONE};

use crate::checked::Checked;
use crate::concrete::{concrete, ConcretePacket};
use crate::describe::{nic_text, packet_extras, packet_text, sent_packet_text, set_text};
use crate::dryrun::{runs, Run};
use crate::outcome::{case_text, decided_by, redirect_text, routing_note, Observed};
use crate::parser::parse_packet;
use crate::ranges::RangeSet;
use crate::source::{pos_str, SourceFile};
use crate::space::Field;

/// Most distinct outcomes explained (a packet whose fate depends on what DHCP learns can
/// have many).
const MAX_OUTCOMES: usize = 3;

/// Explains `packet` (e.g. `tcp 10.137.0.10:40000 -> 1.1.1.1:443 on lan`) against a
/// compiled ruleset. The `Err` is the rendered diagnostic for a bad packet description.
/// The text ends with a newline.
pub fn explain(
    ruleset: &SourceFile,
    checked: &Checked,
    policy: &Policy,
    packet: &str,
) -> Result<String, String> {
    let packet_file = SourceFile::new("<packet>", packet);
    let spec = parse_packet(&packet_file).map_err(|d| d.render(&packet_file))?;
    let packet = concrete(checked, &spec).map_err(|d| d.render(&packet_file))?;
    let runs = runs(checked, policy, &packet);
    // Cases with the same outcome are explained once.
    let mut groups: Vec<(String, Vec<&Run>)> = Vec::new();
    for run in &runs {
        let redirect = run.trace.redirect.map(|r| (r.kind, r.rule));
        let outcome = format!(
            "{} {} {redirect:?}",
            Observed::of(run).words(),
            decided_by(checked, policy, run),
        );
        match groups.iter_mut().find(|(o, _)| *o == outcome) {
            Some((_, members)) => members.push(run),
            None => groups.push((outcome, vec![run])),
        }
    }
    let mut out = String::new();
    for (n, (_, members)) in groups.iter().enumerate().take(MAX_OUTCOMES) {
        if n > 0 {
            out.push('\n');
        }
        let every_case = members.len() == runs.len();
        explain_run(
            &mut out, ruleset, checked, policy, &runs, members[0], every_case,
        );
        if members.len() > 1 {
            let _ = writeln!(
                out,
                "(the same in {} of the {} cases of what DHCP may give)",
                members.len(),
                runs.len()
            );
        }
    }
    if groups.len() > MAX_OUTCOMES {
        let _ = writeln!(
            out,
            "\n({} more outcomes for other addresses DHCP may give)",
            groups.len() - MAX_OUTCOMES
        );
    }
    Ok(out)
}

/// The packet as it was sent, when the policy never saw it.
fn sent_text(checked: &Checked, packet: &ConcretePacket, run: &Run) -> String {
    let key = FlowKey {
        in_nic: packet.in_nic,
        out: OUT_SELF,
        protocol: packet.protocol,
        src: flow_addr(packet.src),
        dst: flow_addr(run.dst),
        src_port: packet.src_port,
        dst_port: packet.dst_port,
        icmp_type: packet.icmp.0,
        icmp_code: packet.icmp.1,
        redirect: REDIRECT_NONE,
    };
    sent_packet_text(checked, &key)
}

fn explain_run(
    out: &mut String,
    file: &SourceFile,
    checked: &Checked,
    policy: &Policy,
    runs: &[Run],
    run: &Run,
    every_case: bool,
) {
    let decision = run.trace.decision;
    let packet = match decision {
        Some(d) => packet_text(checked, &d.key),
        None => sent_text(checked, &run.packet, run),
    };
    let _ = writeln!(
        out,
        "packet:  {packet}{}{}",
        packet_extras(&run.packet),
        redirect_text(policy, run)
    );
    let case = case_text(checked, runs, run);
    if !every_case && !case.is_empty() {
        let _ = writeln!(out, "case:   {case}");
    }
    let _ = writeln!(
        out,
        "verdict: {}, by {}{}",
        Observed::of(run).words(),
        decided_by(checked, policy, run),
        routing_note(checked, run)
    );
    if let Some(d) = decision {
        let line = match d.verdict.rule.and_then(|i| policy.rules.get(i as usize)) {
            Some(rule) => rule.pos.line,
            None => policy.default.pos.line,
        };
        if line > 0 {
            let _ = writeln!(out, "{line:>7} | {}", file.line_text(line));
        }
    }
    if let Some(limits) = limits_text(checked, policy, run) {
        let _ = writeln!(out, "limits:  {limits}");
    }
    if let (
        Fate::Forwarded {
            nic,
            next_hop,
            translation,
        },
        false,
    ) = (run.trace.fate, run.neighbor_unreachable)
    {
        let _ = writeln!(out, "nat:     {}", masquerade(checked, policy, run));
        let leaves = translation.map_or_else(String::new, |t| format!(" as {}", t.after));
        let _ = writeln!(
            out,
            "out:     {} to {next_hop}{leaves}",
            nic_text(checked, nic)
        );
        if let Some(lease) = run.case.lease.filter(|l| l.nic == nic) {
            let _ = writeln!(
                out,
                "dhcp:    {}'s lease is learned at run time; {}/{} via {} stands in for it",
                nic_text(checked, nic),
                lease.address,
                crate::cases::LEASE_PREFIX_LEN,
                lease.gateway
            );
        }
        if let Some(advert) = run
            .case
            .advert
            .filter(|a| a.nic == nic && run.dst.is_ipv6())
        {
            let _ = writeln!(
                out,
                "slaac:   {}'s IPv6 address, router and resolver are learned at run time; an \
                 advertisement of {}/64 by {} with resolver {} stands in for them",
                nic_text(checked, nic),
                advert.prefix,
                crate::dryrun::ROUTER,
                advert.resolver
            );
        }
    }
    match run.trace.reply {
        Some(Reply::TcpReset) => {
            let _ = writeln!(out, "answer:  a TCP reset to the sender");
        }
        Some(Reply::Icmp { icmp_type, code }) => {
            let _ = writeln!(
                out,
                "answer:  ICMP type {icmp_type} code {code} to the sender"
            );
        }
        None => {}
    }
    if let Some(d) = decision {
        earlier_rules(out, file, checked, policy, &d.key, d.verdict.rule);
    }
}

/// The state limits a passed packet's flow counts against: its rule's and its client's.
fn limits_text(checked: &Checked, policy: &Policy, run: &Run) -> Option<String> {
    let verdict = run.trace.decision?.verdict;
    if !matches!(run.trace.fate, Fate::Forwarded { .. }) {
        return None;
    }
    let rule = verdict.rule.and_then(|i| policy.rules.get(i as usize))?;
    let mut limits = Vec::new();
    if rule.limits.max_states > 0 {
        limits.push(format!(
            "{} states by the rule (max-states)",
            rule.limits.max_states
        ));
    }
    if rule.limits.max_states_per_source > 0 {
        limits.push(format!(
            "{} per source address (max-src-states)",
            rule.limits.max_states_per_source
        ));
    }
    let client = checked.clients.iter().find(|c| {
        c.nic == run.packet.in_nic && c.ipv4.map(std::net::IpAddr::V4) == Some(run.packet.src)
    });
    if let Some(client) = client.filter(|c| c.max_states > 0) {
        limits.push(format!(
            "{} for client {} (max-states)",
            client.max_states, client.name
        ));
    }
    (!limits.is_empty()).then(|| format!("at most {}", limits.join(", ")))
}

/// The source NAT a forwarded packet got.
fn masquerade(checked: &Checked, policy: &Policy, run: &Run) -> String {
    match run.trace.masquerade.and_then(|i| policy.masquerade.get(i)) {
        Some(m) => format!(
            "source becomes {}'s address (masquerade at {})",
            nic_text(checked, m.out_nic),
            pos_str(m.pos)
        ),
        None => "none (the source address is kept)".to_string(),
    }
}

/// For every rule before the deciding one, the fields that kept it from matching `key`.
fn earlier_rules(
    out: &mut String,
    file: &SourceFile,
    checked: &Checked,
    policy: &Policy,
    key: &FlowKey,
    decided_by: Option<u32>,
) {
    let decided = decided_by.map_or(policy.rules.len(), |i| i as usize);
    let mut earlier: Vec<(u32, u32)> = Vec::new();
    for rule in &policy.rules[..decided] {
        if earlier.last() != Some(&(rule.pos.line, rule.pos.column)) {
            earlier.push((rule.pos.line, rule.pos.column));
        }
    }
    if earlier.is_empty() {
        return;
    }
    let _ = writeln!(out, "earlier rules that did not match:");
    for (line, column) in earlier {
        let parts: Vec<&Rule> = policy.rules[..decided]
            .iter()
            .filter(|r| (r.pos.line, r.pos.column) == (line, column))
            .collect();
        let _ = writeln!(out, "{line:>7} | {}", file.line_text(line).trim());
        let _ = writeln!(out, "        = {}", why_not(checked, policy, &parts, key));
    }
}

/// One field of a compiled rule as a range set.
fn rule_field(policy: &Policy, rule: &Rule, field: Field) -> RangeSet {
    let bytes = |span: dataplane::policy::Span| {
        RangeSet::from_ranges(
            span.of(policy.byte_ranges)
                .iter()
                .map(|r| (r.first.into(), r.last.into())),
        )
    };
    let ports = |span: dataplane::policy::Span| {
        RangeSet::from_ranges(
            span.of(policy.port_ranges)
                .iter()
                .map(|r| (r.first.into(), r.last.into())),
        )
    };
    let addrs = |span: dataplane::policy::Span| {
        RangeSet::from_ranges(
            span.of(policy.addr_ranges)
                .iter()
                .map(|r| (r.first, r.last)),
        )
    };
    match field {
        Field::InNic => bytes(rule.in_nic),
        Field::Out => bytes(rule.out),
        Field::Protocol => bytes(rule.protocol),
        Field::Src => addrs(rule.src),
        Field::Dst => addrs(rule.dst),
        Field::SrcPort => ports(rule.src_port),
        Field::DstPort => ports(rule.dst_port),
        Field::IcmpType => bytes(rule.icmp_type),
        Field::IcmpCode => bytes(rule.icmp_code),
        Field::Redirect => bytes(rule.redirect),
    }
}

/// Why none of a source rule's compiled parts matched `key`: the failing fields of the
/// part that came closest.
fn why_not(checked: &Checked, policy: &Policy, parts: &[&Rule], key: &FlowKey) -> String {
    let failing = |rule: &Rule| -> Vec<(Field, RangeSet)> {
        let failing: Vec<(Field, RangeSet)> = crate::space::EXPLAIN_ORDER
            .iter()
            .map(|&f| (f, rule_field(policy, rule, f)))
            .filter(|(f, set)| !set.contains(f.of_key(key)))
            .collect();
        // A rule for another protocol differs in the protocol; its ports or ICMP types say
        // nothing about a packet that has none (a TCP packet's ICMP type is no such thing).
        let other_protocol = failing.iter().any(|(f, _)| *f == Field::Protocol);
        failing
            .into_iter()
            .filter(|(f, _)| {
                !other_protocol
                    || !matches!(
                        f,
                        Field::SrcPort | Field::DstPort | Field::IcmpType | Field::IcmpCode
                    )
            })
            .collect()
    };
    let closest = parts
        .iter()
        .map(|r| failing(r))
        .min_by_key(Vec::len)
        .unwrap_or_default();
    let reasons: Vec<String> = closest
        .iter()
        .map(|(field, set)| {
            let value = set_text(checked, *field, &RangeSet::single(field.of_key(key)));
            format!(
                "{} is {value}, the rule wants {}",
                crate::space::describe(*field),
                set_text(checked, *field, set)
            )
        })
        .collect();
    if reasons.is_empty() {
        "it matches (this should not happen: the matcher disagrees with the rule's fields)"
            .to_string()
    } else {
        reasons.join("; ")
    }
}

/// An address in the flow address space.
fn flow_addr(addr: std::net::IpAddr) -> u128 {
    match addr {
        std::net::IpAddr::V4(a) => ipv4_to_flow_addr(a.into()),
        std::net::IpAddr::V6(a) => a.into(),
    }
}
