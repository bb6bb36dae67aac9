//! The rulesets shipped with the crate compile, pass their own tests, and say nothing
//! surprising.

use std::path::Path;

fn compile_shipped(relative: &str) -> rules::Compiled {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    let text = std::fs::read_to_string(&path).unwrap();
    rules::compile(relative, &text)
        .map_err(|e| e.render())
        .unwrap()
}

#[test]
fn default_ruleset_is_clean_and_pins_each_promise_with_a_test() {
    let compiled = compile_shipped("default.rules");
    assert!(
        compiled.warnings.is_empty(),
        "{}",
        compiled.render_warnings()
    );
    let tests: Vec<&str> = compiled.tests.iter().map(|t| t.text.as_str()).collect();
    for promise in [
        "test pass tcp 10.137.1.10:40000 -> 1.1.1.1:443 on clients",
        "test pass udp 10.137.1.10:40000 -> 10.137.1.1:53 on clients",
        "test pass icmp 10.137.1.10 -> 10.137.1.1 on clients type echo-request",
        "test block log tcp 10.137.1.10:40000 -> 10.137.1.11:22 on clients",
        "test block log tcp 203.0.113.9:40000 -> 10.137.1.10:22 on uplink",
        "test block log icmp 10.0.2.2 -> 10.0.2.15 on uplink type echo-request",
        "test pass icmp6 [fd00:137:1::10] -> [fd00:137:1::1] on clients type echo-request",
        "test block log tcp [fd00:137:1::10]:40000 -> [fd00:137:1::11]:22 on clients",
        "test block log tcp [2001:db8::9]:40000 -> [fd00:137:1::10]:22 on uplink",
    ] {
        assert!(tests.contains(&promise), "missing {promise}");
    }
    let policy = compiled.policy.as_policy();
    assert_eq!(policy.masquerade.len(), 1, "clients are masqueraded");
    assert_eq!(policy.dns.len(), 1, "clients' DNS is redirected");
    assert!(policy.default.log, "drops are logged");
}

#[test]
fn examples_compile_without_warnings() {
    for example in [
        "examples/home-router.rules",
        "examples/locked-down.rules",
        "examples/ipv4-only.rules",
    ] {
        let compiled = compile_shipped(example);
        assert!(
            compiled.warnings.is_empty(),
            "{example}: {}",
            compiled.render_warnings()
        );
        assert!(!compiled.tests.is_empty(), "{example} has tests");
    }
}

#[test]
fn home_router_forwards_to_the_nas() {
    let compiled = compile_shipped("examples/home-router.rules");
    let forwards = compiled.policy.forwards;
    // Two statements, each to the NAS's IPv4 and IPv6 address (the SLAAC uplink has both).
    assert_eq!(forwards.len(), 4);
    for forward in &forwards[2..] {
        assert_eq!(
            (forward.ports.first, forward.ports.last, forward.target_port),
            (2222, 2223, 22)
        );
    }
    assert_ne!(forwards[2].target, forwards[3].target);
}

#[test]
fn generated_example_matches_its_generator() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/generated-1000.rules");
    let committed = std::fs::read_to_string(path).unwrap();
    assert_eq!(
        committed,
        rules::generate::generate(1000, 1),
        "regenerate with: rules generate 1000 --seed 1"
    );
}
