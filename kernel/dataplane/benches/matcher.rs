//! The policy matcher at 10, 1,000 and 10,000 rules: nanoseconds per lookup of the indexed
//! matcher (`Policy::decide`) against the plain linear interpreter (`reference::decide`) in
//! the same run, with keys whose first match is early, late, or the default; and the time
//! to build the index.
//!
//! Two generated rulesets (see `support`): `realistic` (a segment-wide skeleton plus
//! per-client rules) and `wildcard-heavy` (a stress case where half the rules have an
//! `any` source). The index's size for each is printed before the measurements.
//!
//! `cargo bench -p dataplane --bench matcher` (add `-- lookup/realistic` to filter).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use dataplane::policy::index::MatchIndexBuf;
use dataplane::policy::{reference, FlowKey, PolicyBuf};

mod support;

const SIZES: [usize; 3] = [10, 1_000, 10_000];
/// Keys per kind (a power of two, cycled through by the lookups).
const KEYS: usize = 512;

type Generator = fn(usize, u64) -> PolicyBuf;

const RULESETS: [(&str, Generator); 2] = [
    ("realistic", support::realistic_policy),
    ("wildcard-heavy", support::wildcard_heavy_policy),
];

fn lookups(c: &mut Criterion) {
    for (ruleset, generate) in RULESETS {
        let mut group = c.benchmark_group(format!("lookup/{ruleset}"));
        for size in SIZES {
            let buf = generate(size, 1);
            let policy = buf.as_policy();
            let sets = support::key_sets(&policy, KEYS, 7);
            eprintln!(
                "{ruleset} {size} rules: index {} bytes; keys early/late/default {}/{}/{}",
                policy.index.size_bytes(),
                sets.early.len(),
                sets.late.len(),
                sets.default.len()
            );
            for (kind, keys) in [
                ("early", &sets.early),
                ("late", &sets.late),
                ("default", &sets.default),
            ] {
                if keys.is_empty() {
                    continue;
                }
                group.bench_with_input(
                    BenchmarkId::new(format!("indexed/{kind}"), size),
                    keys,
                    |b, keys| cycle(b, keys, |key| policy.decide(key)),
                );
                group.bench_with_input(
                    BenchmarkId::new(format!("linear/{kind}"), size),
                    keys,
                    |b, keys| cycle(b, keys, |key| reference::decide(&policy, key)),
                );
            }
        }
        group.finish();
    }
}

/// Looks up the keys one after the other, round and round.
fn cycle<T>(b: &mut criterion::Bencher, keys: &[FlowKey], decide: impl Fn(&FlowKey) -> T) {
    let mut i = 0;
    b.iter(|| {
        i = (i + 1) % keys.len();
        black_box(decide(black_box(&keys[i])))
    })
}

fn builds(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    for (ruleset, generate) in RULESETS {
        for size in SIZES {
            let buf = generate(size, 1);
            let policy = buf.as_policy();
            group.bench_with_input(BenchmarkId::new(ruleset, size), &policy, |b, policy| {
                b.iter(|| MatchIndexBuf::build(black_box(policy)))
            });
        }
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = lookups, builds
}
criterion_main!(benches);
