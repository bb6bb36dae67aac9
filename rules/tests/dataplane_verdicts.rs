//! `test` lines are judged by what the data plane does with the packet — including its
//! drops that no rule decides (martian, spoofed, no route, ...) — not by the matcher alone.

fn default_rules_with(lines: &str) -> String {
    let default = include_str!("../default.rules");
    format!("{default}{lines}")
}

fn errors(text: &str) -> String {
    match rules::compile("t.rules", text) {
        Ok(_) => String::new(),
        Err(e) => e.render(),
    }
}

fn compiles(text: &str) -> bool {
    rules::compile("t.rules", text).is_ok()
}

/// The three packets: the matcher alone passes them; the kernel drops all three.
const UNFORWARDABLE: [&str; 3] = [
    "udp 10.137.1.10:4000 -> 127.0.0.1:53 on clients",
    "udp 10.137.1.10:4000 -> 224.0.0.1:53 on clients",
    "udp 10.137.1.10:4000 -> 10.0.2.255:53 on clients",
];

#[test]
fn packets_the_kernel_drops_fail_pass_tests_with_the_kernels_reasons() {
    let lines: String = UNFORWARDABLE
        .iter()
        .map(|p| format!("test pass {p}\n"))
        .collect();
    let out = errors(&default_rules_with(&lines));
    for expected in [
        "53:1: error: test failed: expected pass, got block (martian-destination), decided by the data plane: 127.0.0.1 is in 127.0.0.0/8, which the appliance never forwards to",
        "54:1: error: test failed: expected pass, got block (martian-destination), decided by the data plane: 224.0.0.1 is in 224.0.0.0/4, which the appliance never forwards to",
        "55:1: error: test failed: expected pass, got block log, decided by the default at 22:1 for the appliance itself (10.0.2.255 is uplink's broadcast address)",
    ] {
        assert!(out.contains(expected), "missing {expected}\nin:\n{out}");
    }
}

#[test]
fn packets_the_kernel_drops_pass_block_tests_and_name_their_reasons() {
    let lines = format!(
        "test block because martian-destination {}\n\
         test block because martian-destination {}\n\
         test block log because policy {}\n",
        UNFORWARDABLE[0], UNFORWARDABLE[1], UNFORWARDABLE[2]
    );
    let text = default_rules_with(&lines);
    assert!(compiles(&text), "{}", errors(&text));
    let wrong_reason = default_rules_with(&format!(
        "test block because no-route {}\n",
        UNFORWARDABLE[0]
    ));
    assert!(
        errors(&wrong_reason).contains(
            "expected block (no-route), got block (martian-destination), decided by the data plane"
        ),
        "{}",
        errors(&wrong_reason)
    );
}

#[test]
fn a_block_log_test_needs_the_drop_logged() {
    // A martian destination is counted, not logged.
    let text = default_rules_with(&format!("test block log {}\n", UNFORWARDABLE[0]));
    assert!(
        errors(&text).contains("expected block log, got block (martian-destination)"),
        "{}",
        errors(&text)
    );
    // A spoofed source is always logged.
    let spoofed = default_rules_with(
        "test block log because spoofed tcp 10.0.2.99:40000 -> 1.1.1.1:443 on clients\n",
    );
    assert!(compiles(&spoofed), "{}", errors(&spoofed));
}

#[test]
fn a_spoofed_source_is_reported_with_its_detail() {
    let text = default_rules_with("test pass tcp 10.0.2.99:40000 -> 1.1.1.1:443 on clients\n");
    assert!(
        errors(&text).contains(
            "expected pass, got block log (spoofed), decided by the data plane: 10.0.2.99 may not send from clients (spoofed-outside-network)"
        ),
        "{}",
        errors(&text)
    );
}

#[test]
fn the_appliances_address_on_another_interface_is_not_answered_from_here() {
    // `pass from clients to self` passes it, but the appliance answers for 10.0.2.15 only
    // on the uplink.
    let text = default_rules_with(
        "test pass icmp 10.137.1.10 -> 10.0.2.15 on clients type echo-request\n",
    );
    assert!(
        errors(&text).contains(
            "expected pass, got block (no-route), decided by the data plane, after the rule at 20:1 passed it"
        ),
        "{}",
        errors(&text)
    );
}

#[test]
fn dns_goes_to_the_first_resolver_only_as_in_the_kernel() {
    let ruleset = |blocked: &str| {
        format!(
            "interface wan nic0 address 192.0.2.2/24 gateway 192.0.2.1\n\
             interface lan nic1 address 10.137.0.1/24\n\
             dns from lan to 1.1.1.1, 8.8.8.8\n\
             block from lan to {blocked}\n\
             pass from lan to wan udp port 53\n\
             test pass udp 10.137.0.10:5000 -> self:53 on lan\n"
        )
    };
    // The second resolver never sees a query: blocking it changes nothing.
    assert!(
        compiles(&ruleset("8.8.8.8")),
        "{}",
        errors(&ruleset("8.8.8.8"))
    );
    // Blocking the first does.
    assert!(
        errors(&ruleset("1.1.1.1")).contains(
            "expected pass, got block, decided by the rule at 4:1 (after the DNS redirect at 3:1 to 1.1.1.1)"
        ),
        "{}",
        errors(&ruleset("1.1.1.1"))
    );
}

#[test]
fn ipv6_on_an_interface_without_ipv6_is_dropped_as_unconfigured() {
    let text = "interface wan nic0 address 192.0.2.2/24 gateway 192.0.2.1\n\
                interface lan nic1 address 10.137.0.1/24\n\
                client work 10.137.0.10, fd00::10 on lan\n\
                pass from work to wan\n\
                test pass tcp [fd00::10]:40000 -> [2001:db8::1]:443 on lan\n";
    assert!(
        errors(text).contains(
            "expected pass, got block (unconfigured), decided by the data plane: lan has no IPv6 address"
        ),
        "{}",
        errors(text)
    );
}

#[test]
fn because_goes_with_block_and_names_a_drop_reason() {
    let out = errors(&default_rules_with(
        "test pass because policy tcp 10.137.1.10:1 -> 1.1.1.1:443 on clients\n",
    ));
    assert!(out.contains("'because' goes with 'block' only"), "{out}");
    let out = errors(&default_rules_with(
        "test block because martian-destinaton tcp 10.137.1.10:1 -> 127.0.0.1:443 on clients\n",
    ));
    assert!(
        out.contains("unknown drop reason 'martian-destinaton'"),
        "{out}"
    );
    assert!(out.contains("did you mean 'martian-destination'?"), "{out}");
}
