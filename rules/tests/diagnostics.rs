//! One test per mistake a user can make: each pins the message, the position and (where
//! there is one) the hint the compiler gives.

use rules::compile;

/// Two interfaces and two clients, the base most tests add a line or two to.
const BASE: &str = "\
interface wan nic0 address 192.0.2.2/24 gateway 192.0.2.1 dns 192.0.2.53
interface lan nic1 address 10.137.0.1/24
client work     10.137.0.10 on lan
client personal 10.137.0.11 on lan
";

/// Compiles `BASE` + `extra` and returns the rendered diagnostics (the ruleset must fail).
fn errors(extra: &str) -> String {
    errors_of(&format!("{BASE}{extra}"))
}

fn errors_of(text: &str) -> String {
    match compile("t.rules", text) {
        Ok(_) => panic!("expected the ruleset to be rejected:\n{text}"),
        Err(e) => e.render(),
    }
}

/// Compiles and returns the rendered warnings (the ruleset must compile).
fn warnings(extra: &str) -> String {
    let text = format!("{BASE}{extra}");
    match compile("t.rules", &text) {
        Ok(c) => c.render_warnings(),
        Err(e) => panic!("expected the ruleset to compile:\n{}", e.render()),
    }
}

fn assert_has(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            haystack.contains(needle),
            "missing {needle:?} in:\n{haystack}"
        );
    }
}

#[test]
fn unknown_client_suggests_the_closest_name() {
    let out = errors("pass from wrok to any\n");
    assert_has(
        &out,
        &[
            "t.rules:5:11: error: unknown interface or client 'wrok'\n",
            "    5 | pass from wrok to any\n",
            "      |           ^^^^\n",
            "      = hint: did you mean 'work'?\n",
        ],
    );
}

#[test]
fn unknown_interface_in_a_client_declaration() {
    assert_has(
        &errors("client guest 10.137.0.12 on lna\n"),
        &[
            "5:29: error: unknown interface 'lna'",
            "did you mean 'lan'?",
        ],
    );
}

#[test]
fn a_client_is_not_an_interface() {
    assert_has(
        &errors("client guest 10.137.0.12 on work\n"),
        &["error: 'work' is a client, not an interface"],
    );
}

#[test]
fn unknown_table_suggests_the_closest_table() {
    let out = errors("table rfc1918 { 10.0.0.0/8 }\npass from lan to <rfc1819>\n");
    assert_has(
        &out,
        &[
            "6:19: error: unknown table 'rfc1819'",
            "did you mean 'rfc1918'?",
        ],
    );
}

#[test]
fn a_table_written_without_brackets_gets_a_hint() {
    let out = errors("table blocked { 10.0.0.0/8 }\npass from lan to blocked\n");
    assert_has(
        &out,
        &[
            "unknown interface or client 'blocked'",
            "'blocked' is a table: write <blocked>",
        ],
    );
}

#[test]
fn duplicate_names_point_at_the_first_declaration() {
    let out = errors("client work 10.137.0.12 on lan\n");
    assert_has(
        &out,
        &[
            "5:8: error: 'work' is already declared as a client at 3:8",
            "t.rules:3:8: note: the first declaration is here",
        ],
    );
    let out = errors("client lan 10.137.0.12 on lan\n");
    assert_has(&out, &["'lan' is already declared as an interface at 2:11"]);
}

#[test]
fn duplicate_tables_are_errors() {
    assert_has(
        &errors("table t { 1.2.3.4 }\ntable t { 5.6.7.8 }\npass to <t>\n"),
        &["6:7: error: table 't' is already declared"],
    );
}

#[test]
fn a_table_may_only_use_tables_declared_above_it() {
    let out = errors("table a { <b> }\ntable b { 1.2.3.4 }\npass to <a>\n");
    assert_has(
        &out,
        &[
            "5:12: error: unknown table 'b'",
            "a table can only use tables declared above it",
        ],
    );
}

#[test]
fn bad_cidr_in_a_table() {
    assert_has(
        &errors("table t { 10.0.0.0/33 }\n"),
        &["5:11: error: bad CIDR '10.0.0.0/33': prefix length 33 is out of range (0-32)"],
    );
}

#[test]
fn cidr_with_host_bits_suggests_the_network() {
    assert_has(
        &errors("pass to 10.1.2.3/8\n"),
        &[
            "5:9: error: CIDR '10.1.2.3/8' has host bits set",
            "did you mean 10.0.0.0/8?",
        ],
    );
}

#[test]
fn bad_port_number_and_reversed_range() {
    assert_has(
        &errors("pass to any tcp port 70000\n"),
        &["5:22: error: port 70000 is out of range (0-65535)"],
    );
    assert_has(
        &errors("pass to any tcp port 2000-1000\n"),
        &[
            "bad port range '2000-1000': 2000 is greater than 1000",
            "1000-2000",
        ],
    );
}

#[test]
fn client_outside_its_interfaces_network() {
    let out = errors("client guest 10.138.0.12 on lan\n");
    assert_has(
        &out,
        &[
            "5:14: error: 10.138.0.12 is outside interface 'lan''s network 10.137.0.0/24",
            "note: the interface is declared here",
        ],
    );
}

#[test]
fn client_on_the_appliances_own_or_a_reserved_address() {
    assert_has(
        &errors("client guest 10.137.0.1 on lan\n"),
        &["10.137.0.1 is the appliance's own address on 'lan'"],
    );
    assert_has(
        &errors("client guest 10.137.0.255 on lan\n"),
        &["10.137.0.255 is the broadcast address of 10.137.0.0/24"],
    );
}

#[test]
fn overlapping_clients_share_an_address() {
    let out = errors("client guest 10.137.0.10 on lan\n");
    assert_has(
        &out,
        &[
            "5:14: error: 10.137.0.10 is already the address of client 'work'",
            "3:8: note: declared here",
        ],
    );
}

#[test]
fn a_client_with_two_ipv4_addresses() {
    assert_has(
        &errors("client guest 10.137.0.12, 10.137.0.13 on lan\n"),
        &["client 'guest' has two IPv4 addresses"],
    );
}

#[test]
fn a_nic_used_twice() {
    let out = errors("interface dmz nic1 address 10.1.0.1/24\n");
    assert_has(
        &out,
        &["5:15: error: nic1 is already used by interface 'lan'"],
    );
}

#[test]
fn nic_number_out_of_range() {
    assert_has(
        &errors("interface dmz nic8 address 10.1.0.1/24\n"),
        &["5:15: error: nic8 is out of range", "nic0 .. nic7"],
    );
    assert_has(
        &errors("interface dmz eth1 address 10.1.0.1/24\n"),
        &["expected a NIC ('nic0' .. 'nic7'), found 'eth1'"],
    );
}

#[test]
fn two_uplinks() {
    let out = errors("interface wan2 nic2 dhcp\n");
    assert_has(
        &out,
        &[
            "5:11: error: two uplinks: 'wan' and 'wan2' both have a default route",
            "a 'gateway' or a 'gateway6'",
        ],
    );
}

#[test]
fn overlapping_interface_networks() {
    assert_has(
        &errors("interface dmz nic2 address 10.137.0.129/25\n"),
        &["network 10.137.0.128/25 overlaps interface 'lan''s 10.137.0.0/24"],
    );
}

#[test]
fn gateway_outside_the_network() {
    let text = "interface wan nic0 address 192.0.2.2/24 gateway 192.0.3.1\n";
    assert_has(
        &errors_of(text),
        &["1:49: error: gateway 192.0.3.1 is outside the network 192.0.2.0/24"],
    );
}

#[test]
fn interface_address_must_be_a_host_address() {
    assert_has(
        &errors_of("interface lan nic1 address 10.0.0.0/24\n"),
        &["10.0.0.0 is the network address of 10.0.0.0/24"],
    );
}

#[test]
fn nat_without_an_uplink() {
    let text = "interface lan nic1 address 10.0.0.1/24\ninterface dmz nic2 address 10.0.1.1/24\nnat from lan to dmz\n";
    assert_has(
        &errors_of(text),
        &[
            "3:17: error: masquerade leaves through the uplink, and 'dmz' is not the uplink",
            "no interface is the uplink",
        ],
    );
}

#[test]
fn nat_to_a_client_interface() {
    assert_has(
        &errors("nat from lan to lan\n"),
        &["'lan' is not the uplink", "the uplink is 'wan'"],
    );
}

#[test]
fn forward_to_a_non_client_address() {
    let out = errors("forward wan tcp port 8080 to 10.137.0.50 port 80\n");
    assert_has(
        &out,
        &[
            "5:30: error: forward to 10.137.0.50, which is not a client's address",
            "client NAME 10.137.0.50 on IFACE",
        ],
    );
}

#[test]
fn forward_of_a_portless_protocol() {
    assert_has(
        &errors("forward wan icmp port 1 to work\n"),
        &["port forwards are for tcp and udp"],
    );
}

#[test]
fn forward_range_running_past_the_last_port() {
    assert_has(
        &errors("forward wan tcp port 1000-2000 to work port 65000\n"),
        &["the range 1000-2000 mapped to port 65000 runs past 65535"],
    );
}

#[test]
fn overlapping_forwards() {
    let out =
        errors("forward wan tcp port 8000-8010 to work\nforward wan tcp port 8005 to personal\n");
    assert_has(
        &out,
        &["6:22: error: these ports are already forwarded by the forward at 5:1"],
    );
}

#[test]
fn dns_upstream_without_resolvers() {
    let text = "interface wan nic0 address 192.0.2.2/24 gateway 192.0.2.1\ninterface lan nic1 address 10.0.0.1/24\ndns from lan to upstream\n";
    assert_has(
        &errors_of(text),
        &[
            "3:17: error: the uplink 'wan' has no resolvers",
            "add 'dns A, ...' (or 'slaac', for IPv6 resolvers by RDNSS) to the uplink",
        ],
    );
}

#[test]
fn dns_upstream_of_a_slaac_uplink_takes_the_resolvers_its_router_advertises() {
    let text = "interface wan nic0 address 192.0.2.2/24 gateway 192.0.2.1 slaac\ninterface lan nic1 address 10.0.0.1/24 address6 fd00::1/64\ndns from lan to upstream\npass from lan to wan\n";
    if let Err(e) = compile("t.rules", text) {
        panic!("expected the ruleset to compile:\n{}", e.render());
    }
}

#[test]
fn dns_upstream_without_an_uplink() {
    let text = "interface lan nic1 address 10.0.0.1/24\ndns from lan to upstream\n";
    assert_has(
        &errors_of(text),
        &["'upstream' needs an uplink to learn resolvers on"],
    );
}

#[test]
fn dns_redirect_of_a_client_or_twice() {
    assert_has(
        &errors("dns from work to upstream\n"),
        &["'work' is a client; a DNS redirect applies to whole interfaces"],
    );
    assert_has(
        &errors("dns from lan to upstream\ndns from lan to 1.1.1.1\n"),
        &["6:10: error: DNS from this interface is already redirected at 5:1"],
    );
}

#[test]
fn port_on_a_portless_protocol() {
    let out = errors("pass from lan to any icmp port 80\n");
    assert_has(
        &out,
        &[
            "5:22: error: port on a portless protocol 'icmp'",
            "only tcp, udp and sctp have ports",
        ],
    );
}

#[test]
fn port_without_a_protocol() {
    assert_has(
        &errors("pass from lan to any port 80\n"),
        &[
            "5:22: error: a port needs a protocol",
            "tcp, udp or { tcp, udp }",
        ],
    );
}

#[test]
fn icmp_type_on_a_protocol_without_types() {
    assert_has(
        &errors("pass from lan to any tcp type echo-request\n"),
        &["5:22: error: ICMP type on protocol 'tcp', which has no types"],
    );
    assert_has(
        &errors("pass from lan to any type echo-request\n"),
        &["an ICMP type needs the protocol 'icmp' or 'icmp6'"],
    );
}

#[test]
fn unknown_icmp_type_and_code() {
    assert_has(
        &errors("pass icmp type echo-reqest\n"),
        &[
            "unknown ICMP type 'echo-reqest'",
            "did you mean 'echo-request'?",
        ],
    );
    assert_has(
        &errors("pass icmp type packet-too-big\n"),
        &["'packet-too-big' is an ICMPv6 type: use icmp6"],
    );
    assert_has(
        &errors("pass icmp type unreachable code port-unreach\n"),
        &[
            "unknown code 'port-unreach' for ICMP type 'unreachable'",
            "'port-unreachable'",
        ],
    );
    assert_has(
        &errors("pass { icmp, icmp6 } type 3\n"),
        &["type 3 means different messages in ICMP and ICMPv6"],
    );
}

#[test]
fn unknown_protocol_suggests_the_closest() {
    assert_has(
        &errors("pass from lan proto tpc\n"),
        &["unknown protocol 'tpc'", "did you mean 'tcp'?"],
    );
}

#[test]
fn state_limits_on_a_block_rule() {
    assert_has(
        &errors("block from lan max-states 10\n"),
        &["5:16: error: state limits only apply to 'pass' rules"],
    );
    assert_has(
        &errors("pass from lan max-states 0\n"),
        &["max-states must be at least 1"],
    );
}

#[test]
fn from_self_matches_nothing() {
    assert_has(
        &errors("pass from self to any\n"),
        &["5:11: error: 'from self' matches nothing"],
    );
}

#[test]
fn a_rule_that_matches_nothing() {
    assert_has(
        &errors("pass from lan to !any\n"),
        &["5:1: error: this rule matches no packet"],
    );
}

#[test]
fn the_default_given_twice() {
    assert_has(
        &errors("default block\ndefault reject log\n"),
        &[
            "6:1: error: the default is given twice",
            "5:1: note: the first 'default' is here",
        ],
    );
}

#[test]
fn unknown_statement_and_clause_suggest_keywords() {
    assert_has(
        &errors("pas from lan\n"),
        &[
            "5:1: error: unknown statement 'pas'",
            "did you mean 'pass'?",
        ],
    );
    assert_has(
        &errors("pass frm lan\n"),
        &[
            "5:6: error: unexpected 'frm' in a rule",
            "did you mean 'from'?",
        ],
    );
}

#[test]
fn several_errors_are_reported_in_one_run() {
    let out =
        errors("pass from wrok\npass from lan to any icmp port 80\nclient x 10.9.9.9 on lan\n");
    assert_has(
        &out,
        &[
            "unknown interface or client 'wrok'",
            "port on a portless protocol",
            "outside interface 'lan''s network",
            "t.rules: 3 errors",
        ],
    );
}

#[test]
fn a_rule_covered_by_one_earlier_rule_is_never_reached() {
    let out = errors("pass from lan to any tcp\npass from work to any tcp port 443\n");
    assert_has(
        &out,
        &[
            "6:1: error: rule at 6:1 is never reached: every packet it matches is decided by the rule at 5:1",
            "5:1: note: decided here (pass)",
        ],
    );
}

#[test]
fn a_rule_covered_by_a_union_of_earlier_rules_names_them_all() {
    let out = errors(
        "block from lan to any tcp port 0-1023\npass from lan to any udp\nreject from lan to any tcp port 1024-65535\npass from work to any { tcp, udp } port 0-65535\n",
    );
    assert_has(&out, &["8:1: error: rule at 8:1 is never reached: every packet it matches is decided by the rules at 5:1, 6:1 and 7:1"]);
}

#[test]
fn a_rule_partly_covered_is_not_an_error() {
    warnings("pass from work to any tcp port 443\npass from lan to any tcp port { 443, 80 }\n");
}

#[test]
fn a_special_case_after_a_general_rule_is_a_warning() {
    let out = warnings("pass from lan to any tcp port 22\nreject from work to 10.0.0.0/8\n");
    assert_has(
        &out,
        &[
            "6:1: warning: rule at 6:1 does not apply to all it names: the earlier rule at 5:1 decides some of its packets the other way",
            "e.g. tcp 10.137.0.10:49152 -> 10.0.0.0:22 on lan (out wan) is passed by 5:1",
            "move it above that rule if it is meant as an exception",
        ],
    );
}

#[test]
fn an_exception_for_fewer_senders_written_first_is_not_a_conflict() {
    let out = warnings("pass from work to any tcp port 22\nreject from lan to 10.0.0.0/8\n");
    assert!(!out.contains("does not apply"), "{out}");
}

#[test]
fn an_exception_carved_out_of_a_later_rule_is_not_a_conflict() {
    let out = warnings("pass from work to 10.0.0.0/8 tcp port 22\nreject from lan to 10.0.0.0/8\n");
    assert!(!out.contains("does not apply"), "{out}");
}

#[test]
fn a_forward_without_a_pass_rule_is_a_warning() {
    let out = warnings("forward wan tcp port 8022 to work port 22\n");
    assert_has(
        &out,
        &[
            "5:1: warning: no rule passes this forward's traffic: tcp from wan to work port 22",
            "add: pass forwarded from wan to work tcp port 22",
        ],
    );
    let out = warnings(
        "forward wan tcp port 8022 to work port 22\npass forwarded from wan to work tcp port 22\n",
    );
    assert!(out.is_empty(), "{out}");
}

#[test]
fn a_plain_pass_rule_for_a_forward_warns_that_it_opens_the_client_too() {
    let out =
        warnings("forward wan tcp port 8022 to work port 22\npass from wan to work tcp port 22\n");
    assert_has(
        &out,
        &[
            "6:1: warning: this rule passes the port forward's packets and also opens work itself: \
             tcp from wan straight to 10.137.0.10 port 22, without the forward",
            "5:1: note: the forward is here",
            "hint: to pass only what the forward translates, write: pass forwarded from wan to work tcp port 22",
        ],
    );
    // Opening the client on purpose, after the forward's own rule, is not flagged.
    let out = warnings(
        "forward wan tcp port 8022 to work port 22\n\
         pass forwarded from wan to work tcp port 22\n\
         pass from wan to work tcp port 22\n",
    );
    assert!(out.is_empty(), "{out}");
}

#[test]
fn a_forwarded_rule_no_forward_feeds_is_an_error() {
    for (extra, hint) in [
        (
            "pass forwarded from wan to work tcp port 22\n",
            "there is no 'forward' in the ruleset",
        ),
        (
            "forward wan tcp port 8022 to work port 22\npass forwarded from wan to work tcp port 23\n",
            "a forward's packets arrive on its interface",
        ),
    ] {
        let out = errors(extra);
        assert_has(
            &out,
            &[
                "error: this 'forwarded' rule matches no packet a port forward translates",
                hint,
            ],
        );
    }
}

#[test]
fn a_dns_redirect_without_a_pass_rule_is_a_warning() {
    assert_has(
        &warnings("dns from lan to upstream\n"),
        &["5:1: warning: no rule passes the redirected DNS queries"],
    );
    assert!(warnings("dns from lan to upstream\npass from lan to wan udp port 53\n").is_empty());
}

#[test]
fn an_unused_table_is_a_warning() {
    assert_has(
        &warnings("table spare { 1.2.3.4 }\n"),
        &["5:7: warning: table 'spare' is never used"],
    );
}

#[test]
fn a_failing_test_names_the_deciding_rule_and_both_verdicts() {
    let out = errors("pass from lan to wan tcp port 443\nblock log from lan\ntest pass tcp work:40000 -> 1.1.1.1:80\n");
    assert_has(
        &out,
        &["7:1: error: test failed: expected pass, got block log, decided by the rule at 6:1"],
    );
    let out = errors("test pass tcp work:40000 -> 1.1.1.1:80\n");
    assert_has(
        &out,
        &["expected pass, got block, decided by the built-in default (block)"],
    );
}

#[test]
fn test_lines_with_mistakes() {
    assert_has(
        &errors("test pass tcp 1.2.3.4:40000 -> 10.137.0.10:22\n"),
        &[
            "say which interface the packet arrives on",
            "add 'on IFACE'",
        ],
    );
    assert_has(
        &errors("test pass tcp work -> 1.1.1.1\n"),
        &["the destination needs a port"],
    );
    assert_has(
        &errors("test pass icmp work -> 1.1.1.1:80\n"),
        &["port on a portless protocol"],
    );
    assert_has(
        &errors("test pass icmp work -> 1.1.1.1\n"),
        &["an ICMP packet needs a type"],
    );
    assert_has(
        &errors("test pass tcp work:1 -> 1.1.1.1:80 on lna\n"),
        &["unknown interface 'lna'", "did you mean 'lan'?"],
    );
    assert_has(
        &errors("test pass tcp wrok:1 -> 1.1.1.1:80\n"),
        &["unknown client 'wrok'"],
    );
}

#[test]
fn a_test_with_no_route_for_its_destination() {
    // Without an uplink there is no route to 8.8.8.8: the data plane drops the packet, and
    // the test says so (a pass test fails naming the reason; a block test holds).
    let pass =
        "interface lan nic1 address 10.0.0.1/24\ntest pass tcp 10.0.0.5:1 -> 8.8.8.8:53 on lan\n";
    assert_has(
        &errors_of(pass),
        &["2:1: error: test failed: expected pass, got block (no-route), decided by the data plane: there is no route to 8.8.8.8"],
    );
    for block in ["test block", "test block because no-route"] {
        let text = format!(
            "interface lan nic1 address 10.0.0.1/24\n{block} tcp 10.0.0.5:1 -> 8.8.8.8:53 on lan\n"
        );
        assert!(compile("t.rules", &text).is_ok(), "{block}");
    }
}

#[test]
fn a_dns_test_must_hold_for_every_resolver_dhcp_may_hand_out() {
    let text = "interface wan nic0 dhcp\n\
                interface lan nic1 address 10.137.0.1/24\n\
                dns from lan to upstream\n\
                block from lan to 8.8.8.0/24\n\
                pass from lan to wan udp port 53\n\
                test pass udp 10.137.0.10:5000 -> self:53 on lan\n";
    let out = errors_of(text);
    assert_has(
        &out,
        &["6:1: error: test failed: expected pass, got block when the destination is 8.8.8.0, decided by the rule at 4:1"],
    );
    let fixed = text.replace("block from lan to 8.8.8.0/24\n", "");
    assert!(compile("t.rules", &fixed).is_ok());
}

#[test]
fn an_mtu_the_nics_cannot_carry_is_refused() {
    let out = errors_of("interface wan nic0 dhcp mtu 9000\n");
    assert_has(
        &out,
        &[
            "t.rules:1:29: error: '9000' is not a usable MTU\n",
            "      = hint: an MTU is 68 ..= 1500 bytes (the NICs carry 1,500-byte packets at most)\n",
        ],
    );
}

#[test]
fn an_mtu_given_twice_is_refused() {
    let out = errors_of("interface wan nic0 dhcp mtu 1400 mtu 1300\n");
    assert_has(&out, &["t.rules:1:34: error: 'mtu' given twice\n"]);
}
