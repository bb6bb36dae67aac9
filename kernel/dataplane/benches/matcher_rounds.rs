//! The policy matcher's figures on a noisy host: the fastest of many rounds that alternate
//! the ruleset sizes in one process, and what each lookup walks (a count that no load
//! disturbs). The figures in `policy::index`'s module doc come from here.
//!
//! For each generated ruleset and size: the index's size and build time; per kind of key
//! (first matched early, late, or by the default) the trees, cut nodes, leaf entries and
//! field checks of an average lookup, and its fastest time in ns; then how late keys at
//! each size compare with late keys at 10 rules, measured in the same rounds.
//!
//! `nice cargo bench -p dataplane --bench matcher_rounds` (`-- ROUNDS` to change the 15).

use std::hint::black_box;
use std::time::Instant;

use dataplane::policy::index::tally::WalkCounts;
use dataplane::policy::{FlowKey, Policy, PolicyBuf};

mod support;

const SIZES: [usize; 3] = [10, 1_000, 10_000];
/// Keys per kind (cycled through by the lookups).
const KEYS: usize = 512;
/// Passes over the keys per timed sample.
const PASSES: usize = 20;
const KINDS: [&str; 3] = ["early", "late", "default"];

type Generator = fn(usize, u64) -> PolicyBuf;

const RULESETS: [(&str, Generator); 2] = [
    ("realistic", support::realistic_policy),
    ("wildcard-heavy", support::wildcard_heavy_policy),
];

/// One ruleset at one size, with its keys.
struct Case {
    ruleset: &'static str,
    size: usize,
    buf: PolicyBuf,
    build_ms: f64,
    keys: [Vec<FlowKey>; 3],
}

/// Nanoseconds per lookup over `PASSES` passes over `keys`.
fn sample(policy: &Policy, keys: &[FlowKey]) -> f64 {
    let start = Instant::now();
    for _ in 0..PASSES {
        for key in keys {
            black_box(policy.decide(black_box(key)));
        }
    }
    start.elapsed().as_nanos() as f64 / (PASSES * keys.len()) as f64
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(15);
    let mut cases = Vec::new();
    for (ruleset, generate) in RULESETS {
        for size in SIZES {
            let mut buf = generate(size, 1);
            let start = Instant::now();
            buf.build_index();
            let build_ms = start.elapsed().as_secs_f64() * 1e3;
            let sets = support::key_sets(&buf.as_policy(), KEYS, 7);
            cases.push(Case {
                ruleset,
                size,
                buf,
                build_ms,
                keys: [sets.early, sets.late, sets.default],
            });
        }
    }
    let mut fastest = vec![[f64::INFINITY; 3]; cases.len()];
    for _ in 0..rounds {
        for (case, best) in cases.iter().zip(&mut fastest) {
            let policy = case.buf.as_policy();
            for (kind, keys) in case.keys.iter().enumerate() {
                if !keys.is_empty() {
                    best[kind] = best[kind].min(sample(&policy, keys));
                }
            }
        }
    }
    println!("fastest of {rounds} rounds; per lookup: trees / nodes / entries / checks");
    for (case, best) in cases.iter().zip(&fastest) {
        let policy = case.buf.as_policy();
        println!(
            "{:<14} {:>6} rules: index {:>8} B, build {:>7.1} ms",
            case.ruleset,
            case.size,
            policy.index.size_bytes(),
            case.build_ms
        );
        for (kind, keys) in case.keys.iter().enumerate() {
            let mut counts = WalkCounts::default();
            for key in keys {
                let found = policy.index.first_match_counted(&policy, key, &mut counts);
                assert_eq!(
                    found,
                    dataplane::policy::reference::first_match(&policy, key)
                );
            }
            let [trees, nodes, entries, checks] = counts.per_lookup();
            println!(
                "    {:<8} {:>7.1} ns   {trees:.2} / {nodes:.2} / {entries:.2} / {checks:.2}",
                KINDS[kind], best[kind]
            );
        }
    }
    for (ruleset, _) in RULESETS {
        let late = |size| {
            cases
                .iter()
                .zip(&fastest)
                .find(|(c, _)| c.ruleset == ruleset && c.size == size)
                .map(|(_, best)| best[1])
                .unwrap_or(f64::NAN)
        };
        let ratios: Vec<String> = SIZES
            .iter()
            .map(|&size| format!("{size}: {:.2}x", late(size) / late(SIZES[0])))
            .collect();
        println!("{ruleset} late keys vs 10 rules: {}", ratios.join(", "));
    }
}
