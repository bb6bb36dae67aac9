//! `rules import-qubes`: sample `qvm-firewall QUBE list --raw` output imported into a
//! Qubes-like layout keeps Qubes' semantics, and everything the import cannot honour
//! exactly is an error naming the file and line.

use std::net::IpAddr;

use rules::qubes::{import, Environment, Imported, QubeRules};

const LAYOUT_PATH: &str = "rules/qubes/layout.rules";
const LAYOUT: &str = include_str!("../qubes/layout.rules");
const WORK: &str = include_str!("../qubes/work.raw");
const PERSONAL: &str = include_str!("../qubes/personal.raw");
/// 2026-12-06.
const NOW: u64 = 1_796_515_200;

fn no_resolver(name: &str) -> Result<Vec<IpAddr>, String> {
    Err(format!("no resolver in the tests (asked for {name})"))
}

fn qube(name: &str, text: &str) -> QubeRules {
    QubeRules {
        qube: name.to_string(),
        path: format!("rules/qubes/{name}.raw"),
        text: text.to_string(),
    }
}

fn import_with(
    layout: &str,
    qubes: &[QubeRules],
    resolve: &dyn Fn(&str) -> Result<Vec<IpAddr>, String>,
) -> Result<Imported, String> {
    import(
        LAYOUT_PATH,
        layout,
        qubes,
        &Environment { resolve, now: NOW },
    )
}

/// The sample layout with both sample qubes' rules.
fn sample_import() -> Imported {
    import_with(
        LAYOUT,
        &[qube("work", WORK), qube("personal", PERSONAL)],
        &no_resolver,
    )
    .expect("the sample imports")
}

/// The layout without its test lines (which are about the sample raw files).
fn untested_layout() -> String {
    LAYOUT
        .lines()
        .filter(|l| !l.starts_with("test "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The imported lines of `text` (after the marker), without their comments.
fn imported_rules(text: &str) -> Vec<String> {
    let start = text.find("# --- Imported").expect("the import marker");
    text[start..]
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_shipped_example_is_what_the_sample_raw_output_imports_to() {
    let imported = sample_import();
    assert_eq!(
        imported.text,
        include_str!("../qubes-example.rules"),
        "re-import: cargo run -p rules -- import-qubes rules/qubes/layout.rules work=rules/qubes/work.raw personal=rules/qubes/personal.raw -o rules/qubes-example.rules"
    );
    assert!(imported.warnings.is_empty());
}

#[test]
fn qubes_rules_keep_their_order_drop_rejects_and_the_default_drop_closes_each_qube() {
    let imported = sample_import();
    assert_eq!(
        imported_rules(&imported.text),
        [
            "block log from { work, personal } to { work, personal }",
            "pass   from work to 198.51.100.53 { tcp, udp } port 53",
            "pass   from work to uplink icmp",
            "pass   from work to uplink tcp port 443",
            "pass   from work to 198.51.100.80 tcp port 80",
            "reject from work tcp port 25",
            "reject from work",
            "pass   from personal to 198.51.100.53 { tcp, udp } port 53",
            "pass   from personal to uplink tcp port 80",
            "pass   from personal to uplink tcp port 443",
            "pass   from personal to uplink icmp type 8",
            "reject from personal",
        ]
    );
}

#[test]
fn a_host_name_is_resolved_when_importing_into_all_its_addresses() {
    let raw = "action=accept dsthost=updates.example proto=tcp dstports=443-443\naction=drop\n";
    let resolve = |name: &str| -> Result<Vec<IpAddr>, String> {
        assert_eq!(name, "updates.example");
        Ok(vec![
            "203.0.113.10".parse().unwrap(),
            "203.0.113.11".parse().unwrap(),
        ])
    };
    let imported = import_with(&untested_layout(), &[qube("work", raw)], &resolve).unwrap();
    let rules = imported_rules(&imported.text);
    assert!(
        rules.contains(
            &"pass   from work to { 203.0.113.10, 203.0.113.11 } tcp port 443".to_string()
        ),
        "{rules:#?}"
    );
    assert_eq!(
        imported.warnings,
        ["rules/qubes/layout.rules: warning: client 'personal' has no imported rules: the layout's rules and default decide its traffic"]
    );
}

#[test]
fn a_host_name_that_does_not_resolve_is_refused_never_left_out() {
    let raw = "action=accept dsthost=updates.example proto=tcp\naction=drop\n";
    let error = import_with(LAYOUT, &[qube("work", raw)], &no_resolver).unwrap_err();
    assert!(
        error
            .starts_with("rules/qubes/work.raw:1: error: dsthost=updates.example does not resolve"),
        "{error}"
    );
}

#[test]
fn what_cannot_be_honoured_exactly_is_an_error_naming_file_and_line() {
    let cases = [
        (
            "action=accept proto=gre\n",
            "rules/qubes/work.raw:1: error: unknown proto 'gre'",
        ),
        (
            "action=accept\naction=allow\n",
            "rules/qubes/work.raw:2: error: unknown action 'allow'",
        ),
        (
            "action=accept dstports=80-80\n",
            "rules/qubes/work.raw:1: error: dstports= needs proto=tcp",
        ),
        (
            "action=accept proto=tcp icmptype=8\n",
            "rules/qubes/work.raw:1: error: icmptype= needs proto=icmp",
        ),
        (
            "action=accept srchost=1.2.3.4\n",
            "rules/qubes/work.raw:1: error: unknown key 'srchost'",
        ),
        ("\n# nothing\n", "rules/qubes/work.raw: error: no rules"),
        (
            "action=accept proto=tcp expire=1999999999\n",
            "rules/qubes/work.raw:1: error: the rule expires at 1999999999",
        ),
    ];
    for (raw, expected) in cases {
        let error = import_with(LAYOUT, &[qube("work", raw)], &no_resolver).unwrap_err();
        assert!(error.starts_with(expected), "{raw:?}: {error}");
    }
    let stranger = import_with(LAYOUT, &[qube("banking", "action=drop\n")], &no_resolver);
    assert!(stranger
        .unwrap_err()
        .contains("the layout declares no client 'banking'"));
}

#[test]
fn an_expired_rule_is_left_out_and_rules_after_a_catch_all_are_noted_not_emitted() {
    let raw = "action=accept proto=tcp dstports=22-22 expire=1000\naction=accept\naction=drop proto=udp\n";
    let imported = import_with(&untested_layout(), &[qube("work", raw)], &no_resolver).unwrap();
    let work: Vec<String> = imported_rules(&imported.text)
        .into_iter()
        .filter(|r| r.contains("from work"))
        .collect();
    assert_eq!(work, ["pass   from work to uplink"]);
    assert!(imported.text.contains("# line 1: expired, left out"));
    assert!(imported
        .text
        .contains("# line 3: never reached after a rule matching everything"));
}

#[test]
fn dns_to_resolvers_learned_by_dhcp_cannot_be_named_and_is_refused() {
    let layout = LAYOUT.replace(
        "address 10.0.2.15/24 gateway 10.0.2.2 dns 198.51.100.53",
        "dhcp",
    );
    let error = import_with(&layout, &[qube("work", WORK)], &no_resolver).unwrap_err();
    assert!(
        error.contains("the uplink learns its resolvers by DHCP"),
        "{error}"
    );
}
