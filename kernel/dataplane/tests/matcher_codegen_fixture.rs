//! The compiled policy as Rust source: emission is deterministic, gives the checked-in
//! fixture (compiled and checked by `matcher_codegen`), and refuses bad names.
//!
//! After a deliberate change to the emitted form, regenerate the fixture with
//! `MOAT_UPDATE_FIXTURES=1 cargo test -p dataplane --test matcher_codegen_fixture` (this test
//! does not include the fixture, so it builds even when the old one no longer compiles).

#[path = "../benches/support/mod.rs"]
mod support;

#[path = "matcher_fixtures/policy.rs"]
mod fixture;

use dataplane::policy::codegen::emit_policy;
use fixture::{emitted_source, fixture, FIXTURE};

#[test]
fn emission_gives_the_checked_in_fixture() {
    let source = emitted_source(&fixture().as_policy());
    if std::env::var_os("MOAT_UPDATE_FIXTURES").is_some() {
        std::fs::write(FIXTURE, &source).expect("fixture written");
    }
    let checked_in = std::fs::read_to_string(FIXTURE).expect("fixture readable");
    assert!(
        checked_in == source,
        "emitted source differs from {FIXTURE}: regenerate it (see the module doc)"
    );
}

#[test]
fn emission_is_deterministic() {
    assert_eq!(
        emitted_source(&fixture().as_policy()),
        emitted_source(&fixture().as_policy())
    );
}

#[test]
fn a_policy_whose_index_was_not_built_is_emitted_with_one() {
    let mut buf = fixture();
    buf.rules.push(buf.rules[0]);
    // The index is now stale (one rule more than it was built for).
    let emitted = emitted_source(&buf.as_policy());
    buf.build_index();
    assert_eq!(emitted, emitted_source(&buf.as_policy()));
}

#[test]
fn a_static_name_that_is_not_an_identifier_is_refused() {
    let buf = fixture();
    for name in ["", "1POLICY", "MY POLICY", "POLICY;", "_"] {
        assert!(
            emit_policy(&buf.as_policy(), name, &mut String::new()).is_err(),
            "{name:?}"
        );
    }
}
