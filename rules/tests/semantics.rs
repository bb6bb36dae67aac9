//! The compiled policy decides exactly as the source says.
//!
//! An independent interpreter reads the *syntax tree* — scopes, protocols, ports, ICMP
//! names, negations, tables, clients — and decides flow keys by first match. Its verdicts
//! must equal `Policy::decide` on the compiled policy, for feature-rich handwritten
//! rulesets and for generated ones, on keys drawn from the values where rules change
//! their mind.

use std::collections::HashMap;
use std::net::IpAddr;

use dataplane::policy::{ipv4_to_flow_addr, Action, FlowKey, Policy, OUT_SELF};
use dataplane::rng::SplitMix64;
use ipnetwork::IpNetwork;
use proptest::prelude::*;
use rules::ast::*;
use rules::names;
use rules::parser::parse;
use rules::source::SourceFile;

/// A ruleset exercising every kind of scope, negation, list, protocol, port and ICMP form.
const FEATURES: &str = "\
interface wan nic0 address 192.0.2.2/24 gateway 192.0.2.1 dns 192.0.2.53
interface lan nic1 address 10.0.0.1/24
interface dmz nic2 address 10.0.1.1/24
client work 10.0.0.10, fd00::10 on lan
client web 10.0.1.5 on dmz
table private { 10.0.0.0/8, 192.168.0.0/16, fc00::/7 }
table mixed { <private>, 203.0.113.0/25, 2001:db8::/32 }
block from !work to dmz tcp port 22
pass from work to !<private> { tcp, udp } port { 53, 443, 8000-8100 }
pass from { lan, 198.51.100.0/24, web } port 1024-65535 to <mixed> udp
reject log from dmz to !lan icmp type { echo-request, unreachable code port-unreachable }
pass from any to self { icmp, icmp6 } type echo-request
pass from !wan to { dmz, 2001:db8::/48 } proto { 47, 50 }
block from 10.0.0.0/25 port 0-1023 to any tcp
pass log from lan to wan sctp port 9000
pass from lan to wan
default reject log
";

/// The interpreter's view of the declarations.
struct Decls {
    nics: HashMap<String, u8>,
    clients: HashMap<String, (u8, Vec<u128>)>,
    tables: HashMap<String, Vec<(u128, u128)>>,
}

fn net_range(net: &IpNetwork) -> (u128, u128) {
    match net {
        IpNetwork::V4(n) => (
            ipv4_to_flow_addr(n.network().into()),
            ipv4_to_flow_addr(n.broadcast().into()),
        ),
        IpNetwork::V6(n) => (n.network().into(), n.broadcast().into()),
    }
}

fn flow(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => ipv4_to_flow_addr(a.into()),
        IpAddr::V6(a) => a.into(),
    }
}

impl Decls {
    fn of(ruleset: &Ruleset) -> Decls {
        let mut d = Decls {
            nics: HashMap::new(),
            clients: HashMap::new(),
            tables: HashMap::new(),
        };
        for s in &ruleset.statements {
            if let Statement::Interface(i) = s {
                d.nics.insert(i.name.value.clone(), i.nic.value as u8);
            }
        }
        for s in &ruleset.statements {
            match s {
                Statement::Client(c) => {
                    let addrs = c.addresses.iter().map(|a| flow(a.value)).collect();
                    d.clients
                        .insert(c.name.value.clone(), (d.nics[&c.on.value], addrs));
                }
                Statement::Table(t) => {
                    let mut ranges = Vec::new();
                    for e in &t.entries {
                        match e {
                            TableEntry::Net(n) => ranges.push(net_range(&n.value)),
                            TableEntry::Table(other) => {
                                ranges.extend(d.tables[&other.value].iter().copied())
                            }
                        }
                    }
                    d.tables.insert(t.name.value.clone(), ranges);
                }
                _ => {}
            }
        }
        d
    }

    fn scope_matches(&self, scope: &Scope, nic: u8, addr: u128, to: bool) -> bool {
        let any = scope.items.iter().any(|item| match item {
            ScopeItem::Any(_) => true,
            ScopeItem::SelfRef(_) => to && nic == OUT_SELF,
            ScopeItem::Name(n) => match self.clients.get(&n.value) {
                Some((c_nic, addrs)) => *c_nic == nic && addrs.contains(&addr),
                None => self.nics[&n.value] == nic,
            },
            ScopeItem::Table(t) => self.tables[&t.value]
                .iter()
                .any(|&(a, b)| a <= addr && addr <= b),
            ScopeItem::Net(n) => {
                let (a, b) = net_range(&n.value);
                a <= addr && addr <= b
            }
        });
        any != scope.negated
    }

    fn rule_matches(&self, rule: &FilterRule, key: &FlowKey) -> bool {
        let from = rule
            .from
            .as_ref()
            .is_none_or(|s| self.scope_matches(s, key.in_nic, key.src, false));
        let to = rule
            .to
            .as_ref()
            .is_none_or(|s| self.scope_matches(s, key.out, key.dst, true));
        let proto = rule
            .protocols
            .as_ref()
            .is_none_or(|p| p.items.iter().any(|i| i.value == key.protocol));
        let in_ports = |spec: &Option<PortSpec>, port: u16| {
            spec.as_ref().is_none_or(|s| {
                s.items
                    .iter()
                    .any(|r| r.value.0 <= port && port <= r.value.1)
            })
        };
        let icmp = rule.icmp.as_ref().is_none_or(|spec| {
            spec.items.iter().any(|item| {
                icmp_number(key.protocol, &item.ty.value, None) == Some(key.icmp_type)
                    && item.code.as_ref().is_none_or(|c| {
                        icmp_number(key.protocol, &c.value, Some(key.icmp_type))
                            == Some(key.icmp_code)
                    })
            })
        });
        from && to
            && proto
            && in_ports(&rule.src_ports, key.src_port)
            && in_ports(&rule.dst_ports, key.dst_port)
            && icmp
    }

    /// First match over the syntax tree.
    fn decide(&self, ruleset: &Ruleset, key: &FlowKey) -> Action {
        for s in &ruleset.statements {
            if let Statement::Filter(rule) = s {
                if self.rule_matches(rule, key) {
                    return rule.action.value;
                }
            }
        }
        let default = ruleset.statements.iter().find_map(|s| match s {
            Statement::Default(d) => Some(if d.reject {
                Action::Reject
            } else {
                Action::Block
            }),
            _ => None,
        });
        default.unwrap_or(Action::Block)
    }
}

/// A type (`of_type = None`) or a code of type `of_type`, by name or number.
fn icmp_number(protocol: u8, word: &IcmpWord, of_type: Option<u8>) -> Option<u8> {
    match (word, of_type) {
        (IcmpWord::Number(n), _) => Some(*n),
        (IcmpWord::Name(name), None) => names::icmp_types(protocol)
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.number),
        (IcmpWord::Name(name), Some(ty)) => names::icmp_types(protocol)
            .iter()
            .find(|t| t.number == ty)
            .and_then(|t| t.codes.iter().find(|(n, _)| n == name))
            .map(|&(_, c)| c),
    }
}

/// `values` and their neighbours, sorted and without repeats.
fn with_neighbours<T: Ord + Copy>(
    values: impl IntoIterator<Item = (T, T)>,
    step: impl Fn(T) -> (T, T),
) -> Vec<T> {
    let mut out = Vec::new();
    for (first, last) in values {
        out.extend([first, last, step(first).0, step(last).1]);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Values where some rule's field starts or ends, and their neighbours.
fn edges(policy: &Policy) -> (Vec<u128>, Vec<u16>, Vec<u8>) {
    let addr_edges = [
        (0, u128::MAX),
        (ipv4_to_flow_addr(0x0a00_000a), 0xfd00u128 << 112 | 0x10),
    ];
    let addrs = policy
        .addr_ranges
        .iter()
        .map(|r| (r.first, r.last))
        .chain(addr_edges);
    let ports = policy.port_ranges.iter().map(|r| (r.first, r.last)).chain([
        (0, 65535),
        (53, 443),
        (49152, 49152),
    ]);
    let well_known = [
        (0, 255),
        (1, 3),
        (6, 8),
        (17, 47),
        (50, 58),
        (128, 132),
        (OUT_SELF, OUT_SELF),
    ];
    let bytes = policy
        .byte_ranges
        .iter()
        .map(|r| (r.first, r.last))
        .chain(well_known);
    (
        with_neighbours(addrs, |v: u128| (v.saturating_sub(1), v.saturating_add(1))),
        with_neighbours(ports, |v: u16| (v.saturating_sub(1), v.saturating_add(1))),
        with_neighbours(bytes, |v: u8| (v.saturating_sub(1), v.saturating_add(1))),
    )
}

/// Checks `cases` keys drawn from the edges of `text`'s compiled policy.
fn agree(text: &str, cases: usize, seed: u64) {
    let compiled = rules::compile("t.rules", text)
        .map_err(|e| e.render())
        .unwrap();
    let file = SourceFile::new("t.rules", text);
    let (ruleset, _) = parse(&file);
    let decls = Decls::of(&ruleset);
    let policy = compiled.policy.as_policy();
    let (addrs, ports, bytes) = edges(&policy);
    let mut rng = SplitMix64::new(seed);
    let mut next = |n: usize| rng.below(n as u64) as usize;
    for _ in 0..cases {
        let nic = |r: usize| {
            if r % 5 == 4 {
                bytes[r % bytes.len()]
            } else {
                (r % 4) as u8
            }
        };
        let key = FlowKey {
            in_nic: nic(next(1000)),
            out: if next(6) == 0 {
                OUT_SELF
            } else {
                nic(next(1000))
            },
            protocol: bytes[next(bytes.len())],
            src: addrs[next(addrs.len())],
            dst: addrs[next(addrs.len())],
            src_port: ports[next(ports.len())],
            dst_port: ports[next(ports.len())],
            icmp_type: bytes[next(bytes.len())],
            icmp_code: bytes[next(bytes.len())],
            redirect: next(3) as u8,
        };
        let expected = decls.decide(&ruleset, &key);
        assert_eq!(policy.decide(&key).action, expected, "key {key:?}");
    }
}

#[test]
fn feature_rich_ruleset_compiles_to_the_same_decisions() {
    agree(FEATURES, 100_000, 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn generated_rulesets_compile_to_the_same_decisions(seed in 0u64..1_000_000) {
        agree(&rules::generate::generate(40, seed), 3_000, seed);
    }
}
