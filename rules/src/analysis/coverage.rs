//! Port forwards and DNS redirects against the rules.
//!
//! Filter rules see packets after destination NAT (pf's `rdr` semantics), so a forward
//! also needs a `pass` rule for the translated packet. Forgetting it is easy, and the
//! forward then silently does nothing: that deserves a warning. Writing it as a plain
//! `pass` rule is easy too, and then the rule also passes the same packets sent straight
//! to the client's private address — the forward was meant to expose one port through the
//! appliance's address, not the client: a warning names the rule, and `pass forwarded`
//! passes only what a forward translated. A `forwarded` rule that no forward feeds is an
//! error: it can never match.

use std::net::{IpAddr, Ipv4Addr};

use dataplane::policy::{
    ipv4_to_flow_addr, Action, Policy, OUT_SELF, REDIRECT_DNS, REDIRECT_FORWARD, REDIRECT_NONE,
};
use dataplane::route::{Route, RouteTable, Topology};

use super::Remainder;
use crate::cases::{self, Case};
use crate::checked::{Checked, DnsTarget, ForwardDef};
use crate::describe::nic_text;
use crate::diag::{Diagnostic, Diagnostics};
use crate::dryrun;
use crate::names::{TCP, UDP};
use crate::ranges::RangeSet;
use crate::space::{Field, KeySet};

/// Most pieces the analysis follows before it assumes some packet can pass.
const PIECE_LIMIT: usize = 4096;

/// Whether some key of `keys` is decided `pass` by the first rule that matches it.
fn some_packet_passes(checked: &Checked, keys: KeySet) -> bool {
    let mut remainder = Remainder::new(vec![keys], PIECE_LIMIT);
    for rule in &checked.rules {
        if !remainder.touches(&rule.parts) {
            continue;
        }
        if rule.action == Action::Pass {
            return true;
        }
        if !remainder.subtract(&rule.parts) {
            return true;
        }
        if remainder.is_empty() {
            return false;
        }
    }
    false
}

fn single(n: u128) -> RangeSet {
    RangeSet::single(n)
}

fn flow_v4(a: Ipv4Addr) -> u128 {
    ipv4_to_flow_addr(a.into())
}

/// `a` in the unified flow address space.
fn flow_addr(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => flow_v4(v4),
        IpAddr::V6(v6) => v6.into(),
    }
}

/// The data plane's routing table for `policy` (with a stand-in lease on an interface
/// addressed by DHCP): where a translated packet leaves is the kernel's decision.
fn routes(checked: &Checked, policy: &Policy) -> RouteTable {
    let nics = policy
        .interfaces
        .iter()
        .map(|i| i.nic + 1)
        .max()
        .unwrap_or(0);
    let case = Case {
        lease: cases::dhcp_nic(checked).map(|nic| cases::stand_in_lease(checked, nic, &[])),
        resolver: None,
        advert: None,
    };
    let config = dryrun::config(policy, nics, &case);
    RouteTable::new(&Topology::from_policy(&config.nics, policy))
}

/// The egress of a packet to `dst` (a NIC, or [`OUT_SELF`]), if it has a route.
fn egress(routes: &RouteTable, dst: IpAddr) -> Option<u8> {
    match routes.lookup(dst.into()) {
        Route::Forward { nic, .. } => Some(nic),
        Route::Local { .. } => Some(OUT_SELF),
        Route::Unreachable => None,
    }
}

/// Where forward `f`'s translated packets leave: where the kernel routes an IPv4 target;
/// the NIC of the client that owns an IPv6 target (a declared client's address is on its
/// NIC's link: the kernel's IPv6 routes say the same once the NIC is addressed, which the
/// analysis's table, built before any neighbour discovery, is not).
fn forward_egress(checked: &Checked, routes: &RouteTable, f: &ForwardDef) -> Option<u8> {
    match f.target {
        IpAddr::V4(_) => egress(routes, f.target),
        IpAddr::V6(v6) => checked
            .clients
            .iter()
            .find(|c| c.ipv6 == Some(v6))
            .map(|c| c.nic),
    }
}

/// Port forwards and DNS redirects against the rules: a warning for each forward and DNS
/// redirect that no rule lets through, and for each plain `pass` rule that passes a
/// forward's packets and also opens its target to the same packets sent to it directly;
/// an error for each `forwarded` rule that no forward sends packets.
pub fn translations(checked: &Checked, policy: &Policy) -> Diagnostics {
    let mut diags = Diagnostics::new();
    let routes = routes(checked, policy);
    let forwards: Vec<(&ForwardDef, u8)> = checked
        .forwards
        .iter()
        .filter_map(|f| Some((f, forward_egress(checked, &routes, f)?)))
        .collect();
    for &(f, out) in &forwards {
        let keys = forward_keys(f, out, REDIRECT_FORWARD);
        if !some_packet_passes(checked, keys.clone()) {
            let (from, client, proto, ports) = forward_words(checked, f);
            diags.push(
                Diagnostic::warning(f.loc, format!("no rule passes this forward's traffic: {proto} from {from} to {client} port {ports}"))
                    .with_hint(format!(
                        "rules see the translated packet; add: pass forwarded from {from} to {client} {proto} port {ports}"
                    )),
            );
            continue;
        }
        opened_directly(checked, f, out, &keys, &mut diags);
    }
    forwarded_rules_fed(checked, &forwards, &mut diags);
    dns_without_pass(checked, &routes, &mut diags);
    diags
}

/// The packets of forward `f`, leaving through `out`, as the rules see them: translated by
/// it (`redirect` [`REDIRECT_FORWARD`]), or the same packets sent straight to its target
/// ([`REDIRECT_NONE`]).
fn forward_keys(f: &ForwardDef, out: u8, redirect: u8) -> KeySet {
    let not_icmp = single(0);
    KeySet::everything()
        .restrict(Field::InNic, &single(f.in_nic.into()))
        .restrict(Field::Out, &single(out.into()))
        .restrict(Field::Protocol, &single(f.protocol.into()))
        .restrict(Field::Dst, &single(flow_addr(f.target)))
        .restrict(
            Field::DstPort,
            &RangeSet::range(f.target_port.into(), f.translate_port(f.ports.1).into()),
        )
        .restrict(Field::IcmpType, &not_icmp)
        .restrict(Field::IcmpCode, &not_icmp)
        .restrict(Field::Redirect, &single(redirect.into()))
}

/// How a forward's translated traffic reads: `(from, client, proto, ports)`.
fn forward_words(checked: &Checked, f: &ForwardDef) -> (String, String, &'static str, String) {
    let last = f.translate_port(f.ports.1);
    let proto = if f.protocol == TCP { "tcp" } else { "udp" };
    let client = checked
        .clients
        .iter()
        .find(|c| {
            c.ipv4.map(IpAddr::V4) == Some(f.target) || c.ipv6.map(IpAddr::V6) == Some(f.target)
        })
        .map_or_else(|| "the client".to_string(), |c| c.name.clone());
    let ports = if f.target_port == last {
        f.target_port.to_string()
    } else {
        format!("{}-{last}", f.target_port)
    };
    (nic_text(checked, f.in_nic), client, proto, ports)
}

/// The rules that decide some key of `keys` (each key's first match), in order; `None`
/// when the analysis gives up (too many pieces).
fn deciding_rules(checked: &Checked, keys: KeySet) -> Option<Vec<usize>> {
    let mut remainder = Remainder::new(vec![keys], PIECE_LIMIT);
    let mut deciding = Vec::new();
    for (i, rule) in checked.rules.iter().enumerate() {
        if remainder.is_empty() {
            break;
        }
        if remainder.touches(&rule.parts) {
            deciding.push(i);
            if !remainder.subtract(&rule.parts) {
                return None;
            }
        }
    }
    Some(deciding)
}

/// Warns about each plain `pass` rule that passes some of forward `f`'s translated packets
/// (`translated`) and also the same packets sent straight to the forward's target: the
/// forward was meant to expose one port of the client through the appliance's address, and
/// the rule opens the client's private address too, to anyone upstream who routes it via
/// the appliance.
fn opened_directly(
    checked: &Checked,
    f: &ForwardDef,
    out: u8,
    translated: &KeySet,
    diags: &mut Diagnostics,
) {
    let passing = |keys: KeySet| -> Vec<usize> {
        deciding_rules(checked, keys)
            .unwrap_or_default()
            .into_iter()
            .filter(|&i| checked.rules[i].action == Action::Pass)
            .collect()
    };
    let through_forward = passing(translated.clone());
    let direct = passing(forward_keys(f, out, REDIRECT_NONE));
    let (from, client, proto, ports) = forward_words(checked, f);
    for i in through_forward.into_iter().filter(|i| direct.contains(i)) {
        let rule = &checked.rules[i];
        diags.push(
            Diagnostic::warning(
                rule.loc,
                format!(
                    "this rule passes the port forward's packets and also opens {client} itself: \
                     {proto} from {from} straight to {} port {ports}, without the forward",
                    f.target
                ),
            )
            .with_note(f.loc, "the forward is here")
            .with_hint(format!(
                "to pass only what the forward translates, write: pass forwarded from {from} to {client} {proto} port {ports}"
            )),
        );
    }
}

/// An error for each `forwarded` rule that matches none of the forwards' packets: it can
/// never match.
fn forwarded_rules_fed(checked: &Checked, forwards: &[(&ForwardDef, u8)], diags: &mut Diagnostics) {
    let fed: Vec<KeySet> = forwards
        .iter()
        .map(|&(f, out)| forward_keys(f, out, REDIRECT_FORWARD))
        .collect();
    for rule in checked.rules.iter().filter(|r| r.forwarded) {
        if rule
            .parts
            .iter()
            .any(|p| fed.iter().any(|k| p.intersects(k)))
        {
            continue;
        }
        let hint = if checked.forwards.is_empty() {
            "there is no 'forward' in the ruleset".to_string()
        } else {
            "a forward's packets arrive on its interface, to its client's address and port, \
             with its protocol"
                .to_string()
        };
        diags.push(
            Diagnostic::error(
                rule.loc,
                "this 'forwarded' rule matches no packet a port forward translates",
            )
            .with_hint(hint),
        );
    }
}

/// Warns about each DNS redirect whose queries no rule lets through.
fn dns_without_pass(checked: &Checked, routes: &RouteTable, diags: &mut Diagnostics) {
    let not_icmp = single(0);
    for d in &checked.dns {
        // Queries go to the first resolver only (see `nat::dns_redirect`).
        let (resolvers, out) = match &d.target {
            DnsTarget::Static(list) | DnsTarget::Learned(Some(list)) => match list.first() {
                Some(&first) => (single(flow_v4(first)), egress(routes, first.into())),
                None => continue,
            },
            DnsTarget::Learned(None) => (
                RangeSet::range(0, u128::MAX),
                checked.uplink().map(|u| u.nic),
            ),
        };
        let Some(out) = out else { continue };
        let keys = KeySet::everything()
            .restrict(Field::InNic, &d.in_nics)
            .restrict(Field::Out, &single(out.into()))
            .restrict(
                Field::Protocol,
                &RangeSet::from_ranges([(TCP.into(), TCP.into()), (UDP.into(), UDP.into())]),
            )
            .restrict(Field::Dst, &resolvers)
            .restrict(Field::DstPort, &single(53))
            .restrict(Field::IcmpType, &not_icmp)
            .restrict(Field::IcmpCode, &not_icmp)
            .restrict(Field::Redirect, &single(REDIRECT_DNS.into()));
        if !some_packet_passes(checked, keys) {
            let to = nic_text(checked, out);
            diags.push(
                Diagnostic::warning(d.loc, "no rule passes the redirected DNS queries")
                    .with_hint(format!("rules see the translated packet; add e.g.: pass from IFACE to {to} udp port 53")),
            );
        }
    }
}
