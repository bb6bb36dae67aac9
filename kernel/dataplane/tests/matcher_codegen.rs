//! The compiled policy as Rust source, compiled: the static that `emit_policy` wrote for
//! the fixture policy (checked in as `matcher_fixtures/emitted_policy.rs` and included here)
//! holds the same data and decides exactly like the `PolicyBuf` it came from.
//!
//! `matcher_codegen_fixture` pins that emission still gives exactly those bytes, and
//! regenerates them (see its doc) after a deliberate change to the emitted form.

#[path = "../benches/support/mod.rs"]
mod support;

#[path = "matcher_fixtures/policy.rs"]
mod fixture;

mod emitted {
    include!("matcher_fixtures/emitted_policy.rs");
}

use dataplane::policy::*;
use fixture::fixture;

#[test]
fn the_static_policy_holds_the_same_data_as_its_buffer() {
    let buf = fixture();
    let (policy, fixed) = (buf.as_policy(), &emitted::POLICY);
    assert_eq!(fixed.source_name, policy.source_name);
    assert_eq!(fixed.digest, policy.digest);
    assert_eq!(fixed.interfaces, policy.interfaces);
    assert_eq!(fixed.clients, policy.clients);
    assert_eq!(fixed.rules, policy.rules);
    assert_eq!(fixed.default, policy.default);
    assert_eq!(fixed.masquerade, policy.masquerade);
    assert_eq!(fixed.forwards, policy.forwards);
    assert_eq!(fixed.dns, policy.dns);
    assert_eq!(fixed.names, policy.names);
    assert_eq!(fixed.addr_ranges, policy.addr_ranges);
    assert_eq!(fixed.port_ranges, policy.port_ranges);
    assert_eq!(fixed.byte_ranges, policy.byte_ranges);
    assert_eq!(fixed.ipv4_addrs, policy.ipv4_addrs);
    assert_eq!(
        (fixed.index.rule_count, fixed.index.roots),
        (policy.index.rule_count, policy.index.roots)
    );
    assert_eq!(
        (fixed.index.classes, fixed.index.tree),
        (policy.index.classes, policy.index.tree)
    );
}

#[test]
fn the_static_policy_decides_like_its_buffer() {
    let buf = fixture();
    let policy = buf.as_policy();
    let sets = support::key_sets(&policy, 500, 9);
    let mut rng = support::Rng::new(3);
    let random = (0..2_000).map(|_| support::random_key(&mut rng));
    let keys: Vec<FlowKey> = sets
        .early
        .into_iter()
        .chain(sets.late)
        .chain(sets.default)
        .chain(random)
        .collect();
    assert!(keys.len() > 2_500);
    for key in &keys {
        assert_eq!(emitted::POLICY.decide(key), policy.decide(key), "{key:?}");
    }
}
