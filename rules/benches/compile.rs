//! Compile time of generated rulesets at 10, 1,000 and 10,000 rules.
//!
//! Each size is measured in stages, in one run, so the figures read as ratios:
//! `parse` (the baseline: lexing and parsing only), `check` (+ name resolution and
//! normalisation), `analyse` (+ the shadowing and conflict analysis) and `compile` (the
//! whole pipeline: + lowering, digest and the matcher's index; no tests, as generated
//! rulesets have none).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rules::generate::generate;
use rules::source::SourceFile;
use rules::{analysis, check, compile_file, parser};

fn stages(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    for n in [10usize, 1_000, 10_000] {
        let file = SourceFile::new("generated.rules", generate(n, 1));
        group.bench_with_input(BenchmarkId::new("parse", n), &file, |b, file| {
            b.iter(|| parser::parse(file))
        });
        group.bench_with_input(BenchmarkId::new("check", n), &file, |b, file| {
            b.iter(|| {
                let (ruleset, _) = parser::parse(file);
                check::check(file, &ruleset)
            })
        });
        group.bench_with_input(BenchmarkId::new("analyse", n), &file, |b, file| {
            b.iter(|| {
                let (ruleset, _) = parser::parse(file);
                let (checked, _) = check::check(file, &ruleset);
                analysis::shadowing(&checked)
            })
        });
        group.bench_with_input(BenchmarkId::new("compile", n), &file, |b, file| {
            b.iter(|| {
                compile_file(file.clone())
                    .map(|c| c.policy.rules.len())
                    .map_err(|e| e.render())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
