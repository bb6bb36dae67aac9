//! Port forwards and DNS redirects whose translated traffic no rule passes.
//!
//! Filter rules see packets after destination NAT (pf's `rdr` semantics), so a forward
//! also needs a `pass` rule for the translated packet. Forgetting it is easy, and the
//! forward then silently does nothing: that deserves a warning.

use std::net::Ipv4Addr;

use dataplane::policy::{ipv4_to_flow_addr, Action, Policy, OUT_SELF};
use dataplane::route::{Route, RouteTable, Topology};

use super::Remainder;
use crate::cases::{self, Case};
use crate::checked::{Checked, DnsTarget};
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
    };
    let config = dryrun::config(policy, nics, &case);
    RouteTable::new(&Topology::from_policy(&config.nics, policy))
}

/// The egress of a packet to `dst` (a NIC, or [`OUT_SELF`]), if it has a route.
fn egress(routes: &RouteTable, dst: Ipv4Addr) -> Option<u8> {
    match routes.lookup(dst.into()) {
        Route::Forward { nic, .. } => Some(nic),
        Route::Local { .. } => Some(OUT_SELF),
        Route::Unreachable => None,
    }
}

/// Warns about each forward and DNS redirect that no rule lets through.
pub fn translations_without_pass(checked: &Checked, policy: &Policy) -> Diagnostics {
    let mut diags = Diagnostics::new();
    let not_icmp = single(0);
    let routes = routes(checked, policy);
    for f in &checked.forwards {
        let Some(out) = egress(&routes, f.target) else {
            continue;
        };
        let last = f.translate_port(f.ports.1);
        let keys = KeySet::everything()
            .restrict(Field::InNic, &single(f.in_nic.into()))
            .restrict(Field::Out, &single(out.into()))
            .restrict(Field::Protocol, &single(f.protocol.into()))
            .restrict(Field::Dst, &single(flow_v4(f.target)))
            .restrict(
                Field::DstPort,
                &RangeSet::range(f.target_port.into(), last.into()),
            )
            .restrict(Field::IcmpType, &not_icmp)
            .restrict(Field::IcmpCode, &not_icmp);
        if !some_packet_passes(checked, keys) {
            let proto = if f.protocol == TCP { "tcp" } else { "udp" };
            let client = checked
                .clients
                .iter()
                .find(|c| c.ipv4 == Some(f.target))
                .map_or("the client", |c| c.name.as_str());
            let from = nic_text(checked, f.in_nic);
            let ports = if f.target_port == last {
                f.target_port.to_string()
            } else {
                format!("{}-{last}", f.target_port)
            };
            diags.push(
                Diagnostic::warning(f.loc, format!("no rule passes this forward's traffic: {proto} from {from} to {client} port {ports}"))
                    .with_hint(format!(
                        "rules see the translated packet; add: pass from {from} to {client} {proto} port {ports}"
                    )),
            );
        }
    }
    for d in &checked.dns {
        // Queries go to the first resolver only (see `nat::dns_redirect`).
        let (resolvers, out) = match &d.target {
            DnsTarget::Static(list) | DnsTarget::Learned(Some(list)) => match list.first() {
                Some(&first) => (single(flow_v4(first)), egress(&routes, first)),
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
            .restrict(Field::IcmpCode, &not_icmp);
        if !some_packet_passes(checked, keys) {
            let to = nic_text(checked, out);
            diags.push(
                Diagnostic::warning(d.loc, "no rule passes the redirected DNS queries")
                    .with_hint(format!("rules see the translated packet; add e.g.: pass from IFACE to {to} udp port 53")),
            );
        }
    }
    diags
}
