//! `rules compile FILE -o OUT`, what `image build` runs: the policy blob it writes, what
//! it prints, and how it fails.

use std::path::{Path, PathBuf};

use dataplane::policy::codegen::blob;

/// A scratch directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("moat-rules-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn default_rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("default.rules")
}

/// Runs `rules compile rules -o out`: (status, stdout, stderr).
fn compile(rules: &Path, out: &Path) -> (i32, String, String) {
    let args = [
        "compile".to_string(),
        rules.display().to_string(),
        "-o".to_string(),
        out.display().to_string(),
    ];
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let status = rules::cli::run(&args, &mut stdout, &mut stderr);
    (
        status,
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

#[test]
fn the_default_ruleset_compiles_to_a_blob_with_its_name_and_digest() {
    let out = scratch("default").join("default.policy");
    let (status, stdout, stderr) = compile(&default_rules(), &out);
    assert_eq!(status, 0, "{stderr}");
    assert!(stderr.is_empty(), "no warnings expected: {stderr}");
    let bytes = std::fs::read(&out).unwrap();
    let (name, digest) = blob::identity(&bytes).unwrap();
    assert_eq!(name, "default.rules");
    assert_eq!(digest.len(), 64);
    assert!(digest.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(stdout.contains(&format!("digest {digest}")), "{stdout}");
    let tests: usize = stdout
        .split(", ")
        .find_map(|part| part.strip_suffix(" tests passed"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        tests >= 10,
        "the default ruleset pins its behaviour with tests: {stdout}"
    );
    let policy = blob::decode(&bytes).unwrap();
    assert_eq!(policy.as_policy().digest, digest);
}

#[test]
fn the_same_ruleset_gives_the_same_bytes_and_digest() {
    let dir = scratch("deterministic");
    let (a, b) = (dir.join("a.policy"), dir.join("b.policy"));
    assert_eq!(compile(&default_rules(), &a).0, 0);
    assert_eq!(compile(&default_rules(), &b).0, 0);
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
    let (a, b) = (dir.join("a.policy"), dir.join("b.policy"));
    assert_eq!(compile(&default_rules(), &a).0, 0);
    assert_eq!(compile(&changed, &b).0, 0);
    let (a, b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_ne!(blob::identity(&a).unwrap().1, blob::identity(&b).unwrap().1);
}

#[test]
fn a_broken_ruleset_prints_the_diagnostics_and_writes_nothing() {
    let dir = scratch("broken");
    let rules = dir.join("broken.rules");
    std::fs::write(
        &rules,
        "interface lan nic1 address 10.0.0.1/24\npass from lna\n",
    )
    .unwrap();
    let out = dir.join("broken.policy");
    let (status, _, stderr) = compile(&rules, &out);
    assert_eq!(status, 1);
    assert!(
        stderr.contains("broken.rules:2:11: error: unknown interface or client 'lna'"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean 'lan'?"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn a_failing_test_line_fails_the_compilation() {
    let dir = scratch("failing-test");
    let rules = dir.join("t.rules");
    std::fs::write(&rules, "interface lan nic1 address 10.0.0.1/24\ntest pass icmp 10.0.0.5 -> self on lan type echo-request\n").unwrap();
    let out = dir.join("t.policy");
    let (status, _, stderr) = compile(&rules, &out);
    assert_eq!(status, 1);
    assert!(stderr.contains("2:1: error: test failed: expected pass, got block, decided by the built-in default (block)"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn warnings_are_printed_and_the_blob_is_written() {
    let dir = scratch("warnings");
    let rules = dir.join("w.rules");
    std::fs::write(
        &rules,
        "interface lan nic1 address 10.0.0.1/24\ntable unused { 1.2.3.4 }\n",
    )
    .unwrap();
    let out = dir.join("w.policy");
    let (status, stdout, stderr) = compile(&rules, &out);
    assert_eq!(status, 0, "{stderr}");
    assert!(
        stderr.contains("w.rules:2:7: warning: table 'unused' is never used"),
        "{stderr}"
    );
    assert!(stdout.contains("1 warning"), "{stdout}");
    assert!(out.exists());
}

#[test]
fn a_missing_ruleset_file_is_named_in_the_error() {
    let (status, _, stderr) = compile(
        Path::new("/nonexistent/x.rules"),
        &scratch("missing").join("x.policy"),
    );
    assert_eq!(status, 1);
    assert!(
        stderr.starts_with("/nonexistent/x.rules: error: cannot read the ruleset"),
        "{stderr}"
    );
}
