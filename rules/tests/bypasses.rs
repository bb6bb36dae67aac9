//! The policy bypasses of issue 8 as the language sees them: what `test` lines and
//! `explain` report (both run the packet through the data plane), what the checker accepts
//! and what it warns about.

use rules::explain::explain;

fn compiled(text: &str) -> rules::Compiled {
    match rules::compile("t.rules", text) {
        Ok(compiled) => compiled,
        Err(e) => panic!("does not compile:\n{}", e.render()),
    }
}

fn errors(text: &str) -> String {
    match rules::compile("t.rules", text) {
        Ok(_) => String::new(),
        Err(e) => e.render(),
    }
}

fn explained(text: &str, packet: &str) -> String {
    let c = compiled(text);
    explain(&c.file, &c.checked, &c.policy.as_policy(), packet)
        .unwrap_or_else(|e| panic!("{packet}: {e}"))
}

const NETWORK: &str = "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3
interface clients nic1 address 10.137.1.1/24
nat from clients to uplink
";

// 1. SCTP ports.

const SCTP: &str = "block from clients to uplink sctp port 9999
pass from clients to uplink
default block log
";

#[test]
fn sctp_ports_decide_test_lines() {
    let text = format!(
        "{NETWORK}{SCTP}\
         test block sctp 10.137.1.10:40000 -> 1.1.1.1:9999 on clients\n\
         test pass sctp 10.137.1.10:40000 -> 1.1.1.1:9998 on clients\n"
    );
    compiled(&text);
    let wrong =
        format!("{NETWORK}{SCTP}test pass sctp 10.137.1.10:40000 -> 1.1.1.1:9999 on clients\n");
    assert!(
        errors(&wrong)
            .contains("test failed: expected pass, got block, decided by the rule at 4:1"),
        "{}",
        errors(&wrong)
    );
}

#[test]
fn explain_shows_sctp_ports_kept_through_masquerade() {
    let text = format!("{NETWORK}{SCTP}");
    let blocked = explained(&text, "sctp 10.137.1.10:40000 -> 1.1.1.1:9999 on clients");
    assert!(
        blocked.contains("packet:  sctp 10.137.1.10:40000 -> 1.1.1.1:9999 on clients (out uplink)"),
        "{blocked}"
    );
    assert!(
        blocked.contains("verdict: block, by the rule at 4:1"),
        "{blocked}"
    );
    let passed = explained(&text, "sctp 10.137.1.10:40000 -> 1.1.1.1:9998 on clients");
    assert!(
        passed.contains("out:     uplink to 10.0.2.2 as sctp 10.0.2.15:40000 -> 1.1.1.1:9998"),
        "{passed}"
    );
    assert!(
        passed.contains("destination port is 9998, the rule wants 9999"),
        "{passed}"
    );
}

#[test]
fn ports_are_refused_on_protocols_the_data_plane_reads_no_ports_of() {
    // UDP-Lite (136) and DCCP (33) start with ports too, but the data plane does not read
    // them: a port there would be a promise the kernel does not keep.
    for protocol in ["proto 136", "proto 33"] {
        let text = format!("{NETWORK}pass from clients to uplink {protocol} port 80\n");
        assert!(
            errors(&text).contains("port on a portless protocol"),
            "{protocol}: {}",
            errors(&text)
        );
    }
}

// 4. Unicast packets in link-layer broadcasts; 11. MACs no station has.

const OUT: &str = "pass from clients to self icmp type echo-request
pass from clients to uplink
default block log
";

#[test]
fn a_unicast_packet_sent_as_a_link_broadcast_is_blocked_by_the_data_plane() {
    let text = format!(
        "{NETWORK}{OUT}\
         test block log because link-broadcast tcp 10.137.1.10:40000 -> 1.1.1.1:443 on clients broadcast\n\
         test pass tcp 10.137.1.10:40000 -> 1.1.1.1:443 on clients\n\
         test pass icmp 10.137.1.10 -> 10.137.1.1 on clients type echo-request broadcast\n"
    );
    compiled(&text);
    let out = explained(
        &format!("{NETWORK}{OUT}"),
        "tcp 10.137.1.10:40000 -> 1.1.1.1:443 on clients broadcast",
    );
    assert!(
        out.contains(
            "packet:  tcp 10.137.1.10:40000 -> 1.1.1.1:443 on clients (out uplink) broadcast"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "verdict: block log (link-broadcast), by the data plane, after the rule at 5:1 passed it: \
             a unicast packet sent to the link's broadcast or a multicast address"
        ),
        "{out}"
    );
}

#[test]
fn a_frame_from_a_mac_no_station_has_is_dropped_as_malformed() {
    for mac in [
        "ff:ff:ff:ff:ff:ff",
        "01:00:5e:00:00:01",
        "00:00:00:00:00:00",
    ] {
        let text = format!(
            "{NETWORK}{OUT}\
             test block log because malformed udp 10.137.1.10:4000 -> 1.1.1.1:53 on clients mac {mac}\n"
        );
        compiled(&text);
    }
    let out = explained(
        &format!("{NETWORK}{OUT}"),
        "udp 10.137.1.10:4000 -> 1.1.1.1:53 on clients mac ff:ff:ff:ff:ff:ff",
    );
    assert!(
        out.contains("by the data plane: not a packet the appliance can parse (bad-source-mac)"),
        "{out}"
    );
}

#[test]
fn a_packet_description_refuses_what_is_not_a_mac_or_an_option() {
    for (clause, expected) in [
        (
            "mac 02:00:00:00:00",
            "'02:00:00:00:00' is not a MAC address",
        ),
        ("mac 02:00:00:00:00:0g", "is not a MAC address"),
        ("options lsr", "unknown IP option 'lsr'"),
        ("options { lsrr, lsrr }", "an option given twice"),
        ("broadcst", "did you mean 'broadcast'?"),
    ] {
        let text = format!(
            "{NETWORK}{OUT}test pass udp 10.137.1.10:4000 -> 1.1.1.1:53 on clients {clause}\n"
        );
        assert!(
            errors(&text).contains(expected),
            "{clause}: {}",
            errors(&text)
        );
    }
}

// 3. IP options.

const OPTIONS: &str = "pass from clients to uplink udp port 5004 allow-opts
pass from clients to uplink
default block log
";

#[test]
fn ip_options_pass_only_where_a_rule_allows_them_and_never_as_a_route() {
    let text = format!(
        "{NETWORK}{OPTIONS}\
         test pass udp 10.137.1.10:5000 -> 1.1.1.1:5004 on clients options router-alert\n\
         test pass udp 10.137.1.10:5000 -> 1.1.1.1:5005 on clients\n\
         test block log because ip-options udp 10.137.1.10:5000 -> 1.1.1.1:5005 on clients options router-alert\n\
         test block log because ip-options udp 10.137.1.10:5000 -> 1.1.1.1:5004 on clients options lsrr\n\
         test block log because ip-options udp 10.137.1.10:5000 -> 1.1.1.1:5004 on clients options {{ router-alert, ssrr }}\n\
         test block log because ip-options udp 10.137.1.10:5000 -> 1.1.1.1:5004 on clients options record-route\n\
         test block log because ip-options udp 10.137.1.10:5000 -> 1.1.1.1:5004 on clients options timestamp\n"
    );
    compiled(&text);
}

#[test]
fn explain_says_which_options_and_whose_rule() {
    let text = format!("{NETWORK}{OPTIONS}");
    let out = explained(
        &text,
        "udp 10.137.1.10:5000 -> 1.1.1.1:5005 on clients options router-alert",
    );
    assert!(
        out.contains("packet:  udp 10.137.1.10:5000 -> 1.1.1.1:5005 on clients (out uplink) options router-alert"),
        "{out}"
    );
    assert!(
        out.contains(
            "verdict: block log (ip-options), by the data plane, after the rule at 5:1 passed it: \
             it carries IP options, and the rule that passed it does not say allow-opts"
        ),
        "{out}"
    );
    let routed = explained(
        &text,
        "udp 10.137.1.10:5000 -> 1.1.1.1:5004 on clients options lsrr",
    );
    assert!(
        routed.contains(
            "by the data plane: it carries a source route (an IP option), which the appliance never forwards"
        ),
        "{routed}"
    );
}

#[test]
fn allow_opts_is_for_pass_rules_only() {
    let text = format!("{NETWORK}block from clients to uplink udp port 5004 allow-opts\n");
    assert!(
        errors(&text).contains("'allow-opts' only applies to 'pass' rules"),
        "{}",
        errors(&text)
    );
}

// 10. State limits in the shipped ruleset.

#[test]
fn the_default_ruleset_gives_each_client_a_share_of_the_state_table_and_explain_says_so() {
    let text = include_str!("../default.rules");
    let c = compiled(text);
    let policy = c.policy.as_policy();
    let passing_out = policy
        .rules
        .iter()
        .find(|r| r.limits.max_states_per_source > 0)
        .expect("a per-source state limit");
    assert_eq!(passing_out.limits.max_states_per_source, 4096);
    let out = explained(text, "tcp 10.137.1.10:40000 -> 1.1.1.1:443 on clients");
    assert!(
        out.contains("limits:  at most 4096 per source address (max-src-states)"),
        "{out}"
    );
    let limited = format!(
        "{NETWORK}client work 10.137.1.10 on clients max-states 500\n\
         pass from clients to uplink max-states 20000 max-src-states 1000\n"
    );
    let out = explained(&limited, "tcp work:40000 -> 1.1.1.1:443");
    assert!(
        out.contains(
            "limits:  at most 20000 states by the rule (max-states), 1000 per source address \
             (max-src-states), 500 for client work (max-states)"
        ),
        "{out}"
    );
}

// 6. A port forward's pass rule.

const FORWARD: &str = "client work 10.137.1.10 on clients
forward uplink tcp port 8022 to work port 22
pass forwarded from uplink to work tcp port 22
default block log
";

#[test]
fn a_forwarded_rule_passes_the_forward_and_not_the_clients_own_address() {
    let text = format!(
        "{NETWORK}{FORWARD}\
         test pass tcp 203.0.113.9:40000 -> self:8022 on uplink\n\
         test block log tcp 203.0.113.9:40000 -> work:22 on uplink\n"
    );
    compiled(&text);
    let out = explained(
        &format!("{NETWORK}{FORWARD}"),
        "tcp 203.0.113.9:40000 -> work:22 on uplink",
    );
    assert!(
        out.contains("verdict: block log, by the default at 7:1"),
        "{out}"
    );
    assert!(
        out.contains("= destination NAT is none, the rule wants a port forward"),
        "{out}"
    );
}
