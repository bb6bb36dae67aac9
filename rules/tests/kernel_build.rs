//! The kernel build entry point: what it writes, what it returns, and how it fails.

use std::path::{Path, PathBuf};

use rules::compile_for_kernel;

/// A scratch directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("moat-rules-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn default_rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("default.rules")
}

#[test]
fn default_ruleset_compiles_to_a_static_policy_with_name_and_digest() {
    let out = scratch("default").join("policy.rs");
    let summary = compile_for_kernel(&default_rules(), &out).unwrap();
    assert_eq!(summary.ruleset_name, "default.rules");
    assert_eq!(summary.digest.len(), 64);
    assert!(summary.digest.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(
        summary.tests_passed >= 10,
        "the default ruleset pins its behaviour with tests"
    );
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    let source = std::fs::read_to_string(&out).unwrap();
    assert!(source.contains("pub const RULESET_NAME: &str = \"default.rules\";"));
    assert!(source.contains(&format!(
        "pub const RULESET_DIGEST: &str = \"{}\";",
        summary.digest
    )));
    assert!(source.contains("pub static POLICY: ::dataplane::policy::Policy<'static> ="));
    assert!(
        source.contains(&format!("digest: \"{}\"", summary.digest)),
        "the policy carries its digest"
    );
}

#[test]
fn the_same_ruleset_gives_the_same_bytes_and_digest() {
    let dir = scratch("deterministic");
    let (a, b) = (dir.join("a.rs"), dir.join("b.rs"));
    let first = compile_for_kernel(&default_rules(), &a).unwrap();
    let second = compile_for_kernel(&default_rules(), &b).unwrap();
    assert_eq!(first.digest, second.digest);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn a_changed_rule_changes_the_digest() {
    let dir = scratch("digest");
    let text = std::fs::read_to_string(default_rules()).unwrap();
    let changed = dir.join("default.rules");
    std::fs::write(
        &changed,
        text.replacen(
            "pass from clients to uplink",
            "pass log from clients to uplink",
            1,
        ),
    )
    .unwrap();
    let original = compile_for_kernel(&default_rules(), &dir.join("a.rs")).unwrap();
    let edited = compile_for_kernel(&changed, &dir.join("b.rs")).unwrap();
    assert_ne!(original.digest, edited.digest);
}

#[test]
fn a_broken_ruleset_returns_the_rendered_diagnostics_and_writes_nothing() {
    let dir = scratch("broken");
    let rules = dir.join("broken.rules");
    std::fs::write(
        &rules,
        "interface lan nic1 address 10.0.0.1/24\npass from lna\n",
    )
    .unwrap();
    let out = dir.join("policy.rs");
    let err = compile_for_kernel(&rules, &out).unwrap_err();
    assert!(
        err.contains("broken.rules:2:11: error: unknown interface or client 'lna'"),
        "{err}"
    );
    assert!(err.contains("did you mean 'lan'?"), "{err}");
    assert!(!out.exists());
}

#[test]
fn a_failing_test_line_fails_the_build() {
    let dir = scratch("failing-test");
    let rules = dir.join("t.rules");
    std::fs::write(&rules, "interface lan nic1 address 10.0.0.1/24\ntest pass icmp 10.0.0.5 -> self on lan type echo-request\n").unwrap();
    let err = compile_for_kernel(&rules, &dir.join("policy.rs")).unwrap_err();
    assert!(err.contains("2:1: error: test failed: expected pass, got block, decided by the built-in default (block)"), "{err}");
}

#[test]
fn warnings_are_carried_for_the_build_script_to_show() {
    let dir = scratch("warnings");
    let rules = dir.join("w.rules");
    std::fs::write(
        &rules,
        "interface lan nic1 address 10.0.0.1/24\ntable unused { 1.2.3.4 }\n",
    )
    .unwrap();
    let summary = compile_for_kernel(&rules, &dir.join("policy.rs")).unwrap();
    assert_eq!(summary.warnings.len(), 1);
    assert!(summary.warnings[0].contains("w.rules:2:7: warning: table 'unused' is never used"));
}

#[test]
fn a_missing_ruleset_file_is_named_in_the_error() {
    let err = compile_for_kernel(
        Path::new("/nonexistent/x.rules"),
        &scratch("missing").join("p.rs"),
    )
    .unwrap_err();
    assert!(
        err.starts_with("/nonexistent/x.rules: error: cannot read the ruleset"),
        "{err}"
    );
}
