//! Filter rules: protocols, ports and ICMP types, and the product of all parts into
//! [`KeySet`]s.

use dataplane::policy::{Action, StateLimits, REDIRECT_FORWARD};

use super::scope::{ScopePart, Side};
use super::Checker;
use crate::ast::{FilterRule, IcmpItem, IcmpSpec, IcmpWord, Located, ProtoSpec};
use crate::checked::NormRule;
use crate::diag::Diagnostic;
use crate::names::{self, ICMP, ICMP6};
use crate::ranges::RangeSet;
use crate::space::{Field, KeySet};

/// The protocol-related fields of one product piece of a rule.
#[derive(Clone, Debug)]
struct ProtoPart {
    protocols: RangeSet,
    src_ports: RangeSet,
    dst_ports: RangeSet,
    icmp_types: RangeSet,
    icmp_codes: RangeSet,
}

fn full(field: Field) -> RangeSet {
    RangeSet::range(0, field.max())
}

fn ports_of(spec: Option<&crate::ast::PortSpec>, field: Field) -> RangeSet {
    match spec {
        Some(spec) => RangeSet::from_ranges(
            spec.items
                .iter()
                .map(|p| (p.value.0.into(), p.value.1.into())),
        ),
        None => full(field),
    }
}

impl Checker<'_> {
    /// Checks and normalises a filter rule.
    pub(super) fn filter(&mut self, rule: &FilterRule) {
        match self.normalise(rule) {
            Ok(norm) => self.out.rules.push(norm),
            Err(d) => self.error(d),
        }
    }

    fn normalise(&mut self, rule: &FilterRule) -> Result<NormRule, Diagnostic> {
        let everywhere = || {
            vec![ScopePart {
                nics: RangeSet::range(0, 255),
                addrs: RangeSet::range(0, u128::MAX),
            }]
        };
        let from = match &rule.from {
            Some(scope) => self.scope(scope, Side::From)?,
            None => everywhere(),
        };
        let to = match &rule.to {
            Some(scope) => self.scope(scope, Side::To)?,
            None => everywhere(),
        };
        let protocols = self.protocol_parts(rule)?;
        let redirect = match rule.forwarded {
            Some(_) => RangeSet::single(REDIRECT_FORWARD.into()),
            None => full(Field::Redirect),
        };
        let limits = self.limits(rule)?;
        let mut parts = Vec::new();
        for f in &from {
            for t in &to {
                for p in &protocols {
                    let part = KeySet::everything()
                        .restrict(Field::InNic, &f.nics)
                        .restrict(Field::Src, &f.addrs)
                        .restrict(Field::Out, &t.nics)
                        .restrict(Field::Dst, &t.addrs)
                        .restrict(Field::Protocol, &p.protocols)
                        .restrict(Field::SrcPort, &p.src_ports)
                        .restrict(Field::DstPort, &p.dst_ports)
                        .restrict(Field::IcmpType, &p.icmp_types)
                        .restrict(Field::IcmpCode, &p.icmp_codes)
                        .restrict(Field::Redirect, &redirect);
                    if !part.is_empty() && !parts.contains(&part) {
                        parts.push(part);
                    }
                }
            }
        }
        if parts.is_empty() {
            return Err(
                Diagnostic::error(rule.action.loc, "this rule matches no packet")
                    .with_hint("a negation or an empty table leaves nothing for it to match"),
            );
        }
        Ok(NormRule {
            loc: rule.loc,
            pos: self.pos(rule.loc),
            action: rule.action.value,
            log: rule.log.is_some(),
            allow_opts: rule.allow_opts.is_some(),
            forwarded: rule.forwarded.is_some(),
            limits,
            parts,
        })
    }

    /// `max-states` / `max-src-states` and `allow-opts`, which only `pass` rules may have.
    fn limits(&self, rule: &FilterRule) -> Result<StateLimits, Diagnostic> {
        if let (Some(loc), false) = (rule.allow_opts, rule.action.value == Action::Pass) {
            return Err(
                Diagnostic::error(loc, "'allow-opts' only applies to 'pass' rules").with_hint(
                    "packets with IP options are dropped unless a pass rule allows them",
                ),
            );
        }
        let limits = StateLimits {
            max_states: rule.max_states.as_ref().map_or(0, |m| m.value),
            max_states_per_source: rule.max_src_states.as_ref().map_or(0, |m| m.value),
        };
        if rule.action.value != Action::Pass {
            if let Some(m) = rule.max_states.as_ref().or(rule.max_src_states.as_ref()) {
                return Err(
                    Diagnostic::error(m.loc, "state limits only apply to 'pass' rules")
                        .with_hint("block and reject create no state"),
                );
            }
        }
        Ok(limits)
    }

    /// The protocol, port and ICMP pieces of a rule.
    fn protocol_parts(&self, rule: &FilterRule) -> Result<Vec<ProtoPart>, Diagnostic> {
        let port_clause = rule.src_ports.as_ref().or(rule.dst_ports.as_ref());
        if let Some(ports) = port_clause {
            let Some(spec) = &rule.protocols else {
                return Err(Diagnostic::error(ports.loc, "a port needs a protocol")
                    .with_hint("say which: tcp, udp or { tcp, udp }"));
            };
            if let Some(p) = spec.items.iter().find(|p| !names::has_ports(p.value)) {
                return Err(Diagnostic::error(
                    p.loc,
                    format!("port on a portless protocol '{}'", protocol_text(p.value)),
                )
                .with_hint("only tcp, udp and sctp have ports"));
            }
        }
        let src_ports = ports_of(rule.src_ports.as_ref(), Field::SrcPort);
        let dst_ports = ports_of(rule.dst_ports.as_ref(), Field::DstPort);
        let Some(icmp) = &rule.icmp else {
            let protocols = match &rule.protocols {
                Some(spec) => RangeSet::from_ranges(
                    spec.items.iter().map(|p| (p.value.into(), p.value.into())),
                ),
                None => full(Field::Protocol),
            };
            let (icmp_types, icmp_codes) = (full(Field::IcmpType), full(Field::IcmpCode));
            return Ok(vec![ProtoPart {
                protocols,
                src_ports,
                dst_ports,
                icmp_types,
                icmp_codes,
            }]);
        };
        let spec = icmp_protocols(rule.protocols.as_ref(), icmp)?;
        let mut parts = Vec::new();
        for protocol in spec {
            for (types, codes) in icmp_parts(
                protocol,
                icmp,
                spec_has_both_families(rule.protocols.as_ref()),
            )? {
                parts.push(ProtoPart {
                    protocols: RangeSet::single(protocol.into()),
                    src_ports: src_ports.clone(),
                    dst_ports: dst_ports.clone(),
                    icmp_types: types,
                    icmp_codes: codes,
                });
            }
        }
        Ok(parts)
    }
}

/// How a protocol number reads in messages.
fn protocol_text(protocol: u8) -> String {
    names::protocol_name(protocol).map_or_else(|| protocol.to_string(), str::to_string)
}

fn spec_has_both_families(spec: Option<&ProtoSpec>) -> bool {
    spec.is_some_and(|s| {
        s.items.iter().any(|p| p.value == ICMP) && s.items.iter().any(|p| p.value == ICMP6)
    })
}

/// The protocols of a rule with `type`: all must be ICMP or ICMPv6.
fn icmp_protocols(spec: Option<&ProtoSpec>, icmp: &IcmpSpec) -> Result<Vec<u8>, Diagnostic> {
    let Some(spec) = spec else {
        return Err(Diagnostic::error(
            icmp.loc,
            "an ICMP type needs the protocol 'icmp' or 'icmp6'",
        )
        .with_hint("write: icmp type echo-request"));
    };
    if let Some(p) = spec.items.iter().find(|p| !names::is_icmp(p.value)) {
        return Err(Diagnostic::error(
            p.loc,
            format!(
                "ICMP type on protocol '{}', which has no types",
                protocol_text(p.value)
            ),
        )
        .with_hint("ICMP types apply to 'icmp' and 'icmp6' only"));
    }
    let mut protocols: Vec<u8> = spec.items.iter().map(|p| p.value).collect();
    protocols.sort_unstable();
    protocols.dedup();
    Ok(protocols)
}

/// `(types, codes)` pieces of an ICMP clause for one protocol: all types without a code
/// in one piece, then one piece per type with a code.
fn icmp_parts(
    protocol: u8,
    icmp: &IcmpSpec,
    both_families: bool,
) -> Result<Vec<(RangeSet, RangeSet)>, Diagnostic> {
    let mut plain = Vec::new();
    let mut parts = Vec::new();
    for item in &icmp.items {
        let ty = icmp_type(protocol, &item.ty, both_families)?;
        match &item.code {
            None => plain.push((ty.into(), ty.into())),
            Some(code) => {
                let code = icmp_code(protocol, ty, item, code)?;
                parts.push((RangeSet::single(ty.into()), RangeSet::single(code.into())));
            }
        }
    }
    if !plain.is_empty() {
        parts.insert(0, (RangeSet::from_ranges(plain), full(Field::IcmpCode)));
    }
    Ok(parts)
}

fn family(protocol: u8) -> &'static str {
    if protocol == ICMP6 {
        "ICMPv6"
    } else {
        "ICMP"
    }
}

/// An ICMP type number by name or number.
fn icmp_type(
    protocol: u8,
    word: &Located<IcmpWord>,
    both_families: bool,
) -> Result<u8, Diagnostic> {
    let name = match &word.value {
        IcmpWord::Number(n) if both_families => {
            return Err(Diagnostic::error(
                word.loc,
                format!("type {n} means different messages in ICMP and ICMPv6"),
            )
            .with_hint("write one rule for icmp and one for icmp6, or use a type name"))
        }
        IcmpWord::Number(n) => return Ok(*n),
        IcmpWord::Name(name) => name,
    };
    if let Some(t) = names::icmp_types(protocol)
        .iter()
        .find(|t| t.name == name.as_str())
    {
        return Ok(t.number);
    }
    let other = if protocol == ICMP6 { ICMP } else { ICMP6 };
    let hint = if names::icmp_types(other)
        .iter()
        .any(|t| t.name == name.as_str())
    {
        Some(format!(
            "'{name}' is an {} type: use {}",
            family(other),
            protocol_text(other)
        ))
    } else {
        names::did_you_mean(name, names::icmp_types(protocol).iter().map(|t| t.name))
    };
    Err(Diagnostic::error(
        word.loc,
        format!("unknown {} type '{name}'", family(protocol)),
    )
    .with_hint_opt(hint))
}

/// An ICMP code number by name (among `ty`'s codes) or number.
fn icmp_code(
    protocol: u8,
    ty: u8,
    item: &IcmpItem,
    word: &Located<IcmpWord>,
) -> Result<u8, Diagnostic> {
    let name = match &word.value {
        IcmpWord::Number(n) => return Ok(*n),
        IcmpWord::Name(name) => name,
    };
    let codes = names::icmp_types(protocol)
        .iter()
        .find(|t| t.number == ty)
        .map_or(&[][..], |t| t.codes);
    if let Some(&(_, code)) = codes.iter().find(|(n, _)| *n == name.as_str()) {
        return Ok(code);
    }
    let type_text = match &item.ty.value {
        IcmpWord::Name(n) => n.clone(),
        IcmpWord::Number(n) => n.to_string(),
    };
    let hint = if codes.is_empty() {
        Some(format!(
            "{} type '{type_text}' has no named codes; give a number",
            family(protocol)
        ))
    } else {
        names::did_you_mean(name, codes.iter().map(|(n, _)| *n))
    };
    Err(Diagnostic::error(
        word.loc,
        format!(
            "unknown code '{name}' for {} type '{type_text}'",
            family(protocol)
        ),
    )
    .with_hint_opt(hint))
}
