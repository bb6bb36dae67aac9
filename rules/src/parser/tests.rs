//! Parser tests: what each statement reads as, and how syntax errors are reported.

use super::*;
use crate::ast::*;
use dataplane::policy::Action;

fn parse_ok(text: &str) -> Ruleset {
    let file = SourceFile::new("t.rules", text);
    let (ruleset, diags) = parse(&file);
    assert!(diags.is_empty(), "{}", diags.render(&file));
    ruleset
}

fn parse_errors(text: &str) -> Vec<String> {
    let file = SourceFile::new("t.rules", text);
    let (_, diags) = parse(&file);
    diags.iter().map(|d| d.render(&file)).collect()
}

fn only_rule(text: &str) -> FilterRule {
    match parse_ok(text).statements.pop() {
        Some(Statement::Filter(rule)) => rule,
        other => panic!("expected a filter rule, got {other:?}"),
    }
}

#[test]
fn illustrated_rule_reads_scopes_protocol_and_port_list() {
    let rule = only_rule("pass  from work     to any         tcp port { 22, 443 }\n");
    assert_eq!(rule.action.value, Action::Pass);
    assert_eq!(
        rule.from.unwrap().items,
        vec![ScopeItem::Name(Located {
            value: "work".into(),
            loc: Loc::new(11, 15)
        })]
    );
    assert_eq!(
        rule.protocols
            .unwrap()
            .items
            .iter()
            .map(|p| p.value)
            .collect::<Vec<_>>(),
        vec![6]
    );
    let ports: Vec<_> = rule
        .dst_ports
        .unwrap()
        .items
        .iter()
        .map(|p| p.value)
        .collect();
    assert_eq!(ports, vec![(22, 22), (443, 443)]);
    assert!(rule.src_ports.is_none());
}

#[test]
fn port_right_after_from_scope_is_the_source_port() {
    let rule = only_rule("pass from any port 1024:65535 to self udp port 53");
    assert_eq!(rule.src_ports.unwrap().items[0].value, (1024, 65535));
    assert_eq!(rule.dst_ports.unwrap().items[0].value, (53, 53));
}

#[test]
fn negated_table_and_reject_log_parse() {
    let rule = only_rule("reject log from lan to !<rfc1918>");
    assert_eq!(rule.action.value, Action::Reject);
    assert!(rule.log.is_some());
    let to = rule.to.unwrap();
    assert!(to.negated);
    assert!(matches!(&to.items[0], ScopeItem::Table(n) if n.value == "rfc1918"));
}

#[test]
fn icmp_types_with_codes_parse() {
    let rule = only_rule(
        "pass from lan to self icmp type { echo-request, unreachable code port-unreachable, 11 }",
    );
    let icmp = rule.icmp.unwrap();
    assert_eq!(icmp.items.len(), 3);
    assert_eq!(
        icmp.items[1].code.as_ref().unwrap().value,
        IcmpWord::Name("port-unreachable".into())
    );
    assert_eq!(icmp.items[2].ty.value, IcmpWord::Number(11));
}

#[test]
fn declarations_parse() {
    let ruleset = parse_ok(
        "interface uplink nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3, 1.1.1.1\n\
         interface lan nic1 address 10.137.1.1/24\n\
         client work 10.137.1.10, fd00::10 on lan max-states 100\n\
         table rfc1918 {\n  10.0.0.0/8, 172.16.0.0/12\n  192.168.0.0/16\n}\n\
         nat from lan to uplink\n\
         forward uplink tcp port 8022 to work port 22\n\
         dns from lan to upstream\n\
         default block log\n",
    );
    assert_eq!(ruleset.statements.len(), 8);
    let Statement::Interface(uplink) = &ruleset.statements[0] else {
        panic!()
    };
    assert_eq!(uplink.dns.len(), 2);
    assert!(matches!(
        uplink.addressing,
        Addressing::Static {
            prefix_len: 24,
            gateway: Some(_),
            ..
        }
    ));
    let Statement::Table(table) = &ruleset.statements[3] else {
        panic!()
    };
    assert_eq!(table.entries.len(), 3);
    let Statement::Client(client) = &ruleset.statements[2] else {
        panic!()
    };
    assert_eq!(client.addresses.len(), 2);
    assert_eq!(client.max_states.as_ref().unwrap().value, 100);
}

#[test]
fn test_lines_parse_ports_v6_brackets_and_icmp() {
    let ruleset = parse_ok(
        "test pass tcp 10.137.0.10:40000 -> 1.1.1.1:443 on lan\n\
         test block log udp [fd00::10]:5000 -> [2001:db8::1]:53 on lan\n\
         test pass icmp work -> self type echo-request\n",
    );
    let Statement::Test(t) = &ruleset.statements[1] else {
        panic!()
    };
    assert!(t.log);
    assert_eq!(t.packet.dst.port.as_ref().unwrap().value, 53);
    let Statement::Test(t) = &ruleset.statements[2] else {
        panic!()
    };
    assert_eq!(t.packet.src.host.value, Host::Client("work".into()));
    assert_eq!(t.packet.dst.host.value, Host::SelfRef);
    assert!(t.packet.on.is_none());
}

#[test]
fn every_broken_line_is_reported_once() {
    let errors = parse_errors(
        "pas from lan\npass from lan to any tpc\nblock log\ninterface x nic1 adress 1.2.3.4/24\n",
    );
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[0].contains("t.rules:1:1: error: unknown statement 'pas'")
            && errors[0].contains("did you mean 'pass'?")
    );
    assert!(
        errors[1].contains("t.rules:2:22: error: unexpected 'tpc' in a rule")
            && errors[1].contains("did you mean 'tcp'?")
    );
    assert!(
        errors[2].contains("t.rules:4:18: error: unexpected 'adress'")
            && errors[2].contains("did you mean 'address'?")
    );
}

#[test]
fn bad_cidrs_are_reported_with_the_reason() {
    let errors =
        parse_errors("table t { 10.0.0.0/33 }\ntable u { 10.0.0.1/8 }\ntable v { 10.0.0.300 }\n");
    assert_eq!(errors.len(), 3);
    assert!(
        errors[0].contains("bad CIDR '10.0.0.0/33': prefix length 33 is out of range (0-32)"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("CIDR '10.0.0.1/8' has host bits set")
            && errors[1].contains("did you mean 10.0.0.0/8?")
    );
    assert!(errors[2].contains("bad address or CIDR '10.0.0.300'"));
}

#[test]
fn bad_ports_and_ranges_are_reported() {
    let errors = parse_errors("pass tcp port 65536\npass tcp port 80-20\npass tcp port htps\n");
    assert_eq!(errors.len(), 3);
    assert!(errors[0].contains("port 65536 is out of range (0-65535)"));
    assert!(
        errors[1].contains("bad port range '80-20': 80 is greater than 20")
            && errors[1].contains("20-80")
    );
    assert!(
        errors[2].contains("'htps' is not a port number or a known service")
            && errors[2].contains("'https'")
    );
}

#[test]
fn default_pass_is_refused() {
    let errors = parse_errors("default pass\n");
    assert!(errors[0].contains("error: the default cannot be 'pass'"));
}

#[test]
fn reserved_words_cannot_be_names() {
    let errors = parse_errors("client any 10.0.0.2 on lan\n");
    assert!(errors[0].contains("'any' is a reserved word and cannot name a client"));
}

#[test]
fn negated_lists_are_refused_with_a_hint() {
    let errors = parse_errors("pass to !{ 10.0.0.0/8, 1.2.3.4 }\npass to { !10.0.0.0/8 }\n");
    assert!(errors[0].contains("a list cannot be negated") && errors[0].contains("!<table>"));
    assert!(errors[1].contains("negation inside a list is ambiguous"));
}

#[test]
fn clauses_given_twice_are_errors() {
    let errors = parse_errors("pass from lan from uplink\n");
    assert!(errors[0].contains("'from' given twice in one rule"));
}

#[test]
fn packet_descriptions_parse_on_their_own() {
    let file = SourceFile::new("<packet>", "tcp 10.137.0.10:40000 -> 1.1.1.1:443 on lan");
    let packet = parse_packet(&file).unwrap();
    assert_eq!(packet.on.unwrap().value, "lan");
    let file = SourceFile::new("<packet>", "tcp 10.137.0.10:40000 -> ");
    let errors = parse_packet(&file).unwrap_err();
    assert!(errors.render(&file).contains(
        "expected the destination (an address, a client or 'self'), found the end of the file"
    ));
}

#[test]
fn ipv6_interface_words_parse_in_any_order() {
    let ruleset = parse_ok(
        "interface wan nic0 dhcp slaac\n\
         interface lan nic1 ra address6 fd00::1/64 address 10.0.0.1/24\n\
         interface dmz nic2 address6 2001:db8::2/64 gateway6 fe80::1\n",
    );
    let interfaces: Vec<&InterfaceDecl> = ruleset
        .statements
        .iter()
        .map(|s| match s {
            Statement::Interface(i) => i,
            other => panic!("expected an interface, got {other:?}"),
        })
        .collect();
    assert!(matches!(interfaces[0].addressing6, Addressing6::Slaac(_)));
    assert!(interfaces[0].ra.is_none());
    assert!(matches!(
        interfaces[1].addressing6,
        Addressing6::Static {
            prefix_len: 64,
            gateway: None,
            ..
        }
    ));
    assert_eq!(interfaces[1].ra, Some(Loc::new(49, 51)));
    let Addressing6::Static {
        gateway: Some(gateway),
        ..
    } = &interfaces[2].addressing6
    else {
        panic!("{:?}", interfaces[2].addressing6)
    };
    assert_eq!(
        gateway.value,
        "fe80::1".parse::<std::net::Ipv6Addr>().unwrap()
    );
}

#[test]
fn gateway6_before_address6_still_belongs_to_it_and_without_it_is_an_error() {
    parse_ok("interface wan nic0 gateway6 fe80::1 address6 2001:db8::2/64\n");
    let errors = parse_errors("interface wan nic0 dhcp gateway6 fe80::1\n");
    assert!(
        errors[0].contains("1:34: error: an IPv6 gateway needs a static IPv6 address"),
        "{errors:?}"
    );
}
