//! The command line, run in-process through `rules::cli::run`.

use std::path::Path;

fn run(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = rules::cli::run(&args, &mut out, &mut err);
    (
        status,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn shipped(relative: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(relative)
        .display()
        .to_string()
}

fn scratch_file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("moat-rules-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn check_exits_zero_and_summarises_a_good_ruleset() {
    let (status, out, err) = run(&["check", &shipped("default.rules")]);
    assert_eq!(status, 0, "{err}");
    assert!(
        out.contains("ok: 2 rules")
            && out.contains("tests passed")
            && out.contains(" bytes (bound ")
            && out.contains("digest "),
        "{out}"
    );
}

#[test]
fn check_exits_one_with_diagnostics_on_a_bad_ruleset() {
    let path = scratch_file("bad.rules", "interface lan nic9\n");
    let (status, _, err) = run(&["check", &path]);
    assert_eq!(status, 1);
    assert!(
        err.contains("bad.rules:1:15: error: nic9 is out of range"),
        "{err}"
    );
}

#[test]
fn test_prints_every_test_and_its_result() {
    let (status, out, _) = run(&["test", &shipped("default.rules")]);
    assert_eq!(status, 0);
    assert!(
        out.contains("ok      25:1  test pass tcp 10.137.1.10:40000 -> 1.1.1.1:443 on clients"),
        "{out}"
    );
    assert!(out.contains("pass by the rule at 21:1"), "{out}");
    assert!(out.contains("block log by the default at 22:1"), "{out}");
    assert!(out.trim_end().ends_with("21 passed, 0 failed"), "{out}");
}

#[test]
fn test_reports_a_failure_with_the_deciding_rule_and_exits_one() {
    let path = scratch_file(
        "failing.rules",
        "interface lan nic1 address 10.0.0.1/24\nblock log from lan\ntest pass udp 10.0.0.5:1 -> self:53 on lan\n",
    );
    let (status, out, err) = run(&["test", &path]);
    assert_eq!(status, 1);
    assert!(
        out.contains("FAIL     3:1  test pass udp 10.0.0.5:1 -> self:53 on lan"),
        "{out}"
    );
    assert!(
        out.contains("expected pass, got block log, decided by the rule at 2:1"),
        "{out}"
    );
    assert!(err.contains("3:1: error: test failed"), "{err}");
}

#[test]
fn explain_shows_the_verdict_nat_and_why_earlier_rules_did_not_match() {
    let path = scratch_file(
        "explain.rules",
        "interface wan nic0 address 192.0.2.2/24 gateway 192.0.2.1\n\
         interface lan nic1 address 10.137.0.1/24\n\
         client work 10.137.0.10 on lan\n\
         client personal 10.137.0.11 on lan\n\
         nat from lan to wan\n\
         pass from personal to any tcp port 443\n\
         pass from work to any tcp port 22\n\
         pass from work to wan tcp\n",
    );
    let (status, out, err) = run(&[
        "explain",
        &path,
        "tcp 10.137.0.10:40000 -> 1.1.1.1:443 on lan",
    ]);
    assert_eq!(status, 0, "{err}");
    assert!(
        out.contains("packet:  tcp 10.137.0.10:40000 -> 1.1.1.1:443 on lan (out wan)"),
        "{out}"
    );
    assert!(out.contains("verdict: pass, by the rule at 8:1"), "{out}");
    assert!(
        out.contains("nat:     source becomes wan's address (masquerade at 5:1)"),
        "{out}"
    );
    assert!(
        out.contains("source address is 10.137.0.10, the rule wants 10.137.0.11"),
        "{out}"
    );
    assert!(
        out.contains("destination port is 443, the rule wants 22"),
        "{out}"
    );
}

#[test]
fn explain_reports_a_bad_packet_description() {
    let (status, _, err) = run(&[
        "explain",
        &shipped("default.rules"),
        "tcp 10.137.1.10:1 -> 1.1.1.1:443 on lna",
    ]);
    assert_eq!(status, 1);
    assert!(
        err.contains("<packet>:1:37: error: unknown interface 'lna'"),
        "{err}"
    );
}

#[test]
fn explain_shows_a_port_forward() {
    let (status, out, err) = run(&[
        "explain",
        &shipped("examples/home-router.rules"),
        "tcp 198.51.100.7:40000 -> self:2222 on wan",
    ]);
    assert_eq!(status, 0, "{err}");
    assert!(
        out.contains("(after the forward at 21:1 to 192.168.10.2:22)"),
        "{out}"
    );
    assert!(
        out.contains("verdict: pass log, by the rule at 22:1"),
        "{out}"
    );
}

#[test]
fn generate_prints_a_reproducible_ruleset() {
    let (status, out, _) = run(&["generate", "50", "--seed", "3"]);
    assert_eq!(status, 0);
    assert_eq!(out, rules::generate::generate(50, 3));
}

#[test]
fn compile_writes_the_policy_blob_the_kernel_decodes() {
    let dest = scratch_file("default.policy", "");
    let (status, out, err) = run(&["compile", &shipped("default.rules"), "-o", &dest]);
    assert_eq!(status, 0, "{err}");
    assert!(
        out.contains("ok: 2 rules") && out.contains("digest "),
        "{out}"
    );
    let blob = std::fs::read(&dest).unwrap();
    let decoded = dataplane::policy::codegen::blob::decode(&blob).unwrap();
    let text = std::fs::read_to_string(shipped("default.rules")).unwrap();
    let compiled = rules::compile(&shipped("default.rules"), &text).unwrap();
    let (decoded, compiled) = (decoded.as_policy(), compiled.policy.as_policy());
    assert_eq!(decoded.digest, compiled.digest);
    assert_eq!(decoded.rules, compiled.rules);
    assert!(out.contains(decoded.digest), "{out}");
}

#[test]
fn compile_of_a_broken_ruleset_writes_nothing_and_says_why() {
    let rules = scratch_file("broken-compile.rules", "this is not a ruleset {\n");
    let dest = format!("{rules}.policy");
    let (status, _, err) = run(&["compile", &rules, "-o", &dest]);
    assert_eq!(status, 1);
    assert!(err.contains("broken-compile.rules"), "{err}");
    assert!(!Path::new(&dest).exists());
}

#[test]
fn compile_without_an_output_file_prints_the_usage() {
    let (status, _, err) = run(&["compile", &shipped("default.rules")]);
    assert_eq!(status, 2);
    assert!(err.contains("rules compile FILE -o OUT"), "{err}");
}

#[test]
fn unknown_commands_print_the_usage() {
    let (status, _, err) = run(&["frobnicate"]);
    assert_eq!(status, 2);
    assert!(err.contains("usage: rules check FILE"));
}

#[test]
fn explain_of_a_tcp_packet_ends_with_a_newline_and_says_nothing_of_icmp_types() {
    let (status, out, err) = run(&[
        "explain",
        &shipped("default.rules"),
        "tcp 10.137.1.10:40000 -> 10.137.1.1:22 on clients",
    ]);
    assert_eq!(status, 0, "{err}");
    assert!(out.ends_with('\n') && !out.ends_with("\n\n"), "{out:?}");
    assert!(
        out.contains("= protocol is tcp, the rule wants icmp\n"),
        "the ICMP rule differs in the protocol, and only that is said: {out}"
    );
    assert!(!out.contains("ICMP type"), "{out}");
}

#[test]
fn explain_reports_a_drop_by_the_data_plane_with_its_reason() {
    let (status, out, err) = run(&[
        "explain",
        &shipped("default.rules"),
        "udp 10.137.1.10:4000 -> 127.0.0.1:53 on clients",
    ]);
    assert_eq!(status, 0, "{err}");
    assert!(
        out.contains("packet:  udp 10.137.1.10:4000 -> 127.0.0.1:53 on clients\n"),
        "{out}"
    );
    assert!(
        out.contains("verdict: block (martian-destination), by the data plane: 127.0.0.1 is in 127.0.0.0/8, which the appliance never forwards to\n"),
        "{out}"
    );
}
