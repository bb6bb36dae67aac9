//! The filter rules: each normalised Moat rule ([`NormRule`], a union of product sets of
//! flow keys) as nftables rules in the `input` chain (`to self`) or the `forward` chain
//! (every other egress), in the ruleset's order, so the first rule that matches a packet
//! decides it in both.
//!
//! A flow key carries ports only for TCP, UDP and SCTP and an ICMP type and code only for
//! ICMP (the other fields are 0: see the data plane's `flow_key`). A product set that
//! constrains ports or ICMP fields therefore becomes one nftables rule per protocol class —
//! TCP/UDP/SCTP with `th sport`/`th dport`, ICMP with `icmp type`/`icmp code`, everything
//! else with neither — each kept only if the zeros that class has in the key lie in the
//! set. The key's destination NAT (a `forwarded` rule) is the connection's mark, which the
//! `dstnat` chain sets (see [`super::nat`]). Fields a set leaves whole are not written. Only IPv4 is translated: the Linux VM, like Moat,
//! forwards no IPv6 (it boots with IPv6 disabled).

use dataplane::policy::{Action, FlowKey, SourcePos, OUT_SELF};
use rules::checked::NormRule;
use rules::ranges::RangeSet;
use rules::space::{Field, KeySet};

use super::syntax::{field_match, ipv4_space};

/// TCP, UDP and SCTP: the protocols whose ports are in the flow key (nftables' `th`
/// reads all three: their headers start with the two ports).
const PORT_PROTOCOLS: [(u128, u128); 3] = [(6, 6), (17, 17), (132, 132)];
/// ICMP: the protocol whose type and code are in the flow key.
const ICMP: u128 = 1;

/// The base chain a rule sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    /// Packets addressed to the VM itself (`to self`).
    Input,
    /// Packets it forwards.
    Forward,
}

/// One nftables filter rule: matches (fields a rule leaves whole are absent) and what the
/// Moat rule it came from does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRule {
    /// Its chain.
    pub chain: Chain,
    /// Field constraints, all of which must hold.
    pub matches: Vec<(Field, RangeSet)>,
    /// The action.
    pub action: Action,
    /// Whether the packet is logged.
    pub log: bool,
    /// The Moat rule's position in its source.
    pub pos: SourcePos,
}

impl FilterRule {
    /// Whether the rule matches `key` (whose chain is the caller's business).
    pub fn matches(&self, key: &FlowKey) -> bool {
        self.matches
            .iter()
            .all(|(field, set)| set.contains(field.of_key(key)))
    }

    /// The rule's match expressions, in nftables syntax.
    pub fn render_matches(&self) -> String {
        self.matches
            .iter()
            .map(|(field, set)| field_match(*field, set))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `rules` as nftables rules, for a VM whose interfaces are the NICs in `nics` and whose
/// own destinations (what Moat routes to itself: its addresses and its networks' broadcast
/// addresses) are `own`. A rule's parts that differ in one field only are merged first, so
/// that `from { lan1, lan2 }` stays one rule; a part reaches the `input` chain only if it
/// can match a packet addressed to the VM.
pub fn filter_rules(rules: &[NormRule], nics: &RangeSet, own: &RangeSet) -> Vec<FilterRule> {
    let mut out = Vec::new();
    for rule in rules {
        let mut parts = rule.parts.clone();
        KeySet::coalesce(&mut parts);
        for part in &parts {
            for (chain, matches) in translate_part(part, nics, own) {
                out.push(FilterRule {
                    chain,
                    matches,
                    action: rule.action,
                    log: rule.log,
                    pos: rule.pos,
                });
            }
        }
    }
    out
}

/// One product set as the chains and match lists it becomes.
fn translate_part(
    part: &KeySet,
    nics: &RangeSet,
    own: &RangeSet,
) -> Vec<(Chain, Vec<(Field, RangeSet)>)> {
    let mut common = Vec::new();
    let in_nic = part.get(Field::InNic).intersect(nics);
    if in_nic.is_empty() {
        return Vec::new();
    }
    if in_nic != *nics {
        common.push((Field::InNic, in_nic));
    }
    for field in [Field::Src, Field::Dst] {
        let addresses = part.get(field).intersect(&ipv4_space());
        if addresses.is_empty() {
            return Vec::new();
        }
        if addresses != ipv4_space() {
            common.push((field, addresses));
        }
    }
    let redirect = part.get(Field::Redirect);
    if !redirect.is_full(Field::Redirect.max()) {
        common.push((Field::Redirect, redirect.clone()));
    }
    let classes = protocol_classes(part);
    let mut chains = Vec::new();
    let out = part.get(Field::Out);
    if out.contains(u128::from(OUT_SELF)) && part.get(Field::Dst).intersects(own) {
        chains.push((Chain::Input, None));
    }
    let out_nics = out.intersect(nics);
    if !out_nics.is_empty() {
        chains.push((Chain::Forward, (out_nics != *nics).then_some(out_nics)));
    }
    let mut rules = Vec::new();
    for (chain, out_match) in chains {
        for class in &classes {
            let mut matches = common.clone();
            if let Some(out_nics) = &out_match {
                matches.push((Field::Out, out_nics.clone()));
            }
            matches.extend(class.iter().cloned());
            rules.push((chain, matches));
        }
    }
    rules
}

/// The protocol, port and ICMP matches of a product set: one list per protocol class it
/// needs (one list without protocol split when neither ports nor ICMP fields are
/// constrained).
fn protocol_classes(part: &KeySet) -> Vec<Vec<(Field, RangeSet)>> {
    let constrained = |field: Field| {
        let set = part.get(field);
        (!set.is_full(field.max())).then(|| (field, set.clone()))
    };
    let ports: Vec<_> = [Field::SrcPort, Field::DstPort]
        .into_iter()
        .filter_map(constrained)
        .collect();
    let icmp: Vec<_> = [Field::IcmpType, Field::IcmpCode]
        .into_iter()
        .filter_map(constrained)
        .collect();
    let protocols = part.get(Field::Protocol);
    let protocol_match = |set: RangeSet| (Field::Protocol, set);
    if ports.is_empty() && icmp.is_empty() {
        return vec![constrained(Field::Protocol).into_iter().collect()];
    }
    let zero_in = |fields: &[(Field, RangeSet)]| fields.iter().all(|(_, set)| set.contains(0));
    let mut classes = Vec::new();
    let port_protocols = protocols.intersect(&RangeSet::from_ranges(PORT_PROTOCOLS));
    if !port_protocols.is_empty() && zero_in(&icmp) {
        let mut class = vec![protocol_match(port_protocols)];
        class.extend(ports.iter().cloned());
        classes.push(class);
    }
    let icmp_protocol = protocols.intersect(&RangeSet::single(ICMP));
    if !icmp_protocol.is_empty() && zero_in(&ports) {
        let mut class = vec![protocol_match(icmp_protocol)];
        class.extend(icmp.iter().cloned());
        classes.push(class);
    }
    let others = protocols
        .subtract(&RangeSet::from_ranges(PORT_PROTOCOLS))
        .subtract(&RangeSet::single(ICMP));
    if !others.is_empty() && zero_in(&ports) && zero_in(&icmp) {
        classes.push(vec![protocol_match(others)]);
    }
    classes
}
