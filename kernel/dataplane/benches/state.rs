//! The state table's per-packet costs at 1,000 and 65,536 live states, each next to two
//! baselines measured in the same run on the same flows:
//!
//! - `btreemap`: a plain `BTreeMap<FlowTuple, u32>` holding the same tuples (both directions);
//! - `hashmap`: std's `HashMap` (also keyed SipHash-1-3) holding the same tuples.
//!
//! Measured operations:
//! - `hit`: a packet of a live UDP flow (either direction, in random order): the tuple is
//!   taken from the parsed summary, the state found, its pseudo-state and timeout updated.
//!   Baselines: tuple + `get`.
//! - `new-flow`: the first packet of a flow: lookup (miss), insert, and removal again so the
//!   table stays at its size. Baselines: `get` (miss), two `insert`s, two `remove`s.
//!
//! After criterion's report, a summary prints each operation's median time per packet and
//! its ratio to the `BTreeMap` baseline.
//!
//! `cargo bench -p dataplane --bench state`.

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant as WallClock};

use criterion::{BenchmarkId, Criterion};
use dataplane::packet::IpSummary;
use dataplane::state::{FlowTuple, Lookup, NewFlow, StateConfig, StateTable, Timeouts};
use dataplane::testutil::packets;
use smoltcp::time::Instant;
use support::Rng;

mod support;

const SIZES: [usize; 2] = [1_000, 65_536];
/// New flows cycled through by the `new-flow` measurement.
const NEW_FLOWS: usize = 4_096;
/// Packets cycled through by the `hit` measurement.
const HITS: usize = 8_192;

/// Median nanoseconds per operation of every (operation, structure, size) measured.
static RESULTS: Mutex<BTreeMap<(String, String, usize), Vec<f64>>> = Mutex::new(BTreeMap::new());

fn record(operation: &str, structure: &str, size: usize, elapsed: Duration, iterations: u64) {
    let per_op = elapsed.as_nanos() as f64 / iterations.max(1) as f64;
    let mut results = RESULTS.lock().unwrap_or_else(|e| e.into_inner());
    results
        .entry((operation.into(), structure.into(), size))
        .or_default()
        .push(per_op);
}

/// The `n`-th client datagram: a client address in 10.0.0.0/8, a port, a server.
fn datagram(n: u64, rng: &mut Rng) -> Vec<u8> {
    let client = 0x0a00_0000 | (n as u32 & 0x00ff_ffff);
    let server = [93, 184, (rng.next_u64() % 256) as u8, 34];
    packets::udp(
        client.to_be_bytes(),
        1024 + (n % 60_000) as u16,
        server,
        443,
        b"x",
    )
}

fn summary(packet: &[u8]) -> IpSummary {
    IpSummary::parse(packet).expect("bench packet parses")
}

fn tuple(summary: &IpSummary) -> FlowTuple {
    FlowTuple::of(summary).expect("bench packet has a tuple")
}

struct Setting {
    table: StateTable,
    btree: BTreeMap<FlowTuple, u32>,
    hash: HashMap<FlowTuple, u32>,
    /// Packets of live flows, both directions, in random order.
    hits: Vec<IpSummary>,
    /// First packets of flows not in the table.
    new_flows: Vec<IpSummary>,
}

fn setting(size: usize) -> Setting {
    let now = Instant::from_secs(0);
    let mut rng = Rng::new(size as u64);
    let mut table = StateTable::new(StateConfig {
        capacity: size + 1,
        hash_key: *b"moat-state-bench",
        timeouts: Timeouts::default(),
    });
    let (mut btree, mut hash) = (BTreeMap::new(), HashMap::new());
    let mut live = Vec::with_capacity(size);
    for n in 0..size as u64 {
        let first = summary(&datagram(n, &mut rng));
        let flow = NewFlow::new(1, 0, tuple(&first));
        table
            .insert(&flow, &first, now)
            .expect("room for every flow");
        for t in [flow.original, flow.original.reversed()] {
            btree.insert(t, n as u32);
            hash.insert(t, n as u32);
        }
        live.push(first);
    }
    let hits = (0..HITS)
        .map(|_| {
            let first = live[(rng.next_u64() % size as u64) as usize];
            if rng.next_u64() % 2 == 0 {
                first
            } else {
                let t = tuple(&first);
                let (src, dst) = first.ipv4_addresses().expect("IPv4 flows");
                summary(&packets::udp(
                    dst.octets(),
                    t.dst_port,
                    src.octets(),
                    t.src_port,
                    b"y",
                ))
            }
        })
        .collect();
    let new_flows = (0..NEW_FLOWS as u64)
        .map(|n| summary(&datagram(size as u64 + n, &mut rng)))
        .collect();
    Setting {
        table,
        btree,
        hash,
        hits,
        new_flows,
    }
}

/// Runs `op` over `inputs`, round and round, timing it for criterion and the summary.
fn measure<T>(
    b: &mut criterion::Bencher,
    (operation, structure, size): (&str, &str, usize),
    inputs: &[T],
    mut op: impl FnMut(&T),
) {
    b.iter_custom(|iterations| {
        let start = WallClock::now();
        for i in 0..iterations as usize {
            op(&inputs[i % inputs.len()]);
        }
        let elapsed = start.elapsed();
        record(operation, structure, size, elapsed, iterations);
        elapsed
    });
}

fn benchmarks(c: &mut Criterion) {
    let now = Instant::from_secs(1);
    for size in SIZES {
        let Setting {
            mut table,
            mut btree,
            mut hash,
            hits,
            new_flows,
        } = setting(size);
        let mut group = c.benchmark_group("state/hit");
        group.bench_function(BenchmarkId::new("state-table", size), |b| {
            measure(b, ("hit", "state-table", size), &hits, |s| {
                black_box(
                    table.lookup(
                        if s.ipv4_addresses()
                            .is_some_and(|(src, _)| src.octets()[0] == 10)
                        {
                            1
                        } else {
                            0
                        },
                        s,
                        now,
                    ),
                );
            })
        });
        group.bench_function(BenchmarkId::new("btreemap", size), |b| {
            measure(b, ("hit", "btreemap", size), &hits, |s| {
                black_box(btree.get(&tuple(s)));
            })
        });
        group.bench_function(BenchmarkId::new("hashmap", size), |b| {
            measure(b, ("hit", "hashmap", size), &hits, |s| {
                black_box(hash.get(&tuple(s)));
            })
        });
        group.finish();

        let mut group = c.benchmark_group("state/new-flow");
        group.bench_function(BenchmarkId::new("state-table", size), |b| {
            measure(b, ("new-flow", "state-table", size), &new_flows, |s| {
                assert_eq!(table.lookup(1, s, now), Lookup::Miss);
                let id = table
                    .insert(&NewFlow::new(1, 0, tuple(s)), s, now)
                    .expect("room for one more");
                table.remove(id);
            })
        });
        group.bench_function(BenchmarkId::new("btreemap", size), |b| {
            measure(b, ("new-flow", "btreemap", size), &new_flows, |s| {
                let t = tuple(s);
                assert!(!btree.contains_key(&t));
                btree.insert(t, 0);
                btree.insert(t.reversed(), 0);
                btree.remove(&t);
                btree.remove(&t.reversed());
            })
        });
        group.bench_function(BenchmarkId::new("hashmap", size), |b| {
            measure(b, ("new-flow", "hashmap", size), &new_flows, |s| {
                let t = tuple(s);
                assert!(!hash.contains_key(&t));
                hash.insert(t, 0);
                hash.insert(t.reversed(), 0);
                hash.remove(&t);
                hash.remove(&t.reversed());
            })
        });
        group.finish();
        assert_eq!(table.len(), size, "the table is back to its size");
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn print_ratios() {
    let mut results = RESULTS.lock().unwrap_or_else(|e| e.into_inner());
    println!("\nstate table vs baselines, same run (median ns per packet; ratio = state table / BTreeMap)");
    println!(
        "{:<10} {:>7} {:>12} {:>10} {:>10} {:>8}",
        "operation", "states", "state-table", "btreemap", "hashmap", "ratio"
    );
    for operation in ["hit", "new-flow"] {
        for size in SIZES {
            let mut get = |structure: &str| {
                results
                    .get_mut(&(operation.into(), structure.into(), size))
                    .map(|v| median(v))
            };
            let (Some(table), Some(btree), Some(hash)) =
                (get("state-table"), get("btreemap"), get("hashmap"))
            else {
                continue;
            };
            println!(
                "{operation:<10} {size:>7} {table:>12.1} {btree:>10.1} {hash:>10.1} {:>8.2}",
                table / btree
            );
        }
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    benchmarks(&mut criterion);
    criterion.final_summary();
    print_ratios();
}
