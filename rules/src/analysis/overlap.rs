//! Which rules can overlap a rule at all: the per-field bounds of every rule, and an index
//! over them that lists a rule's candidates without looking at every other rule.
//!
//! Two rules can share a key only if, in every field, the smallest-to-largest spans of
//! their values overlap. The index keeps, for each field, every rule's span in an aligned
//! block of the value space (the smallest power-of-two-sized, aligned block that holds the
//! span), grouped by block size. A query takes the field in which the fewest spans meet
//! the rule's (counted exactly by two binary searches over sorted ends), and lists the
//! rules of the blocks of each size that meet its span: one ordered-map range per size
//! in use, then only blocks that hold rules. So a rule about one client and port is
//! compared with the few rules near it, not with all 10,000; only rules wide in every
//! field (`any` to `any`) meet everything, and they are compared with everything, as
//! they must be.

use std::collections::BTreeMap;

use crate::checked::NormRule;
use crate::space::{Field, FIELDS};

/// The smallest and largest value of each field over a rule's parts: a cheap first test
/// of whether two rules can overlap at all. A field without values is `(u128::MAX, 0)`,
/// which overlaps nothing.
#[derive(Clone, Copy, Debug)]
pub(super) struct Bounds([(u128, u128); FIELDS]);

/// Fields in the order the bounds test checks them: the ones that tell rules apart most
/// often first.
const TEST_ORDER: [Field; FIELDS] = [
    Field::Dst,
    Field::DstPort,
    Field::Src,
    Field::Protocol,
    Field::InNic,
    Field::Out,
    Field::SrcPort,
    Field::IcmpType,
    Field::IcmpCode,
    Field::Redirect,
];

impl Bounds {
    pub(super) fn of(rule: &NormRule) -> Bounds {
        let mut b = [(u128::MAX, 0u128); FIELDS];
        for (i, field) in TEST_ORDER.iter().enumerate() {
            for part in &rule.parts {
                if let Some((lo, hi)) = part.get(*field).bounds() {
                    b[i] = (b[i].0.min(lo), b[i].1.max(hi));
                }
            }
        }
        Bounds(b)
    }

    /// Whether the spans overlap in every field.
    pub(super) fn overlap(&self, other: &Bounds) -> bool {
        self.0
            .iter()
            .zip(&other.0)
            .all(|(a, b)| a.0 <= b.1 && b.0 <= a.1)
    }

    /// Whether some field has no value (then the rule overlaps nothing).
    fn is_empty(&self) -> bool {
        self.0.iter().any(|&(lo, hi)| lo > hi)
    }
}

/// The spans of one field, for counting and for listing the rules that meet a span.
struct FieldIndex {
    /// The spans' first values, sorted.
    lows: Vec<u128>,
    /// The spans' last values, sorted.
    highs: Vec<u128>,
    /// For each block size in use (as a bit count), the rules by aligned block, each
    /// block's rules ascending.
    levels: Vec<(u32, BTreeMap<u128, Vec<u32>>)>,
}

/// Bits of the smallest aligned block that holds `lo..=hi` (128: the whole space).
fn level_of(lo: u128, hi: u128) -> u32 {
    u128::BITS - (lo ^ hi).leading_zeros()
}

/// The number of the aligned block of `1 << level` values that holds `value`.
fn block_of(value: u128, level: u32) -> u128 {
    value.checked_shr(level).unwrap_or(0)
}

impl FieldIndex {
    fn new(spans: impl Iterator<Item = (u32, (u128, u128))>) -> FieldIndex {
        let mut index = FieldIndex {
            lows: Vec::new(),
            highs: Vec::new(),
            levels: Vec::new(),
        };
        let mut levels: BTreeMap<u32, BTreeMap<u128, Vec<u32>>> = BTreeMap::new();
        for (rule, (lo, hi)) in spans {
            index.lows.push(lo);
            index.highs.push(hi);
            let level = level_of(lo, hi);
            levels
                .entry(level)
                .or_default()
                .entry(block_of(lo, level))
                .or_default()
                .push(rule);
        }
        index.lows.sort_unstable();
        index.highs.sort_unstable();
        index.levels = levels.into_iter().collect();
        index
    }

    /// How many spans meet `lo..=hi` (a span that starts after it and one that ends before
    /// it are never the same).
    fn count(&self, (lo, hi): (u128, u128)) -> usize {
        let after = self.lows.len() - self.lows.partition_point(|&l| l <= hi);
        let before = self.highs.partition_point(|&h| h < lo);
        self.lows.len() - after - before
    }

    /// Every rule whose block meets `lo..=hi` (a superset of the rules whose span does).
    fn rules_near(&self, (lo, hi): (u128, u128), mut visit: impl FnMut(u32)) {
        for (level, blocks) in &self.levels {
            for rules in blocks
                .range(block_of(lo, *level)..=block_of(hi, *level))
                .map(|(_, rules)| rules)
            {
                rules.iter().for_each(|&rule| visit(rule));
            }
        }
    }
}

/// Every rule's bounds, and per field an index of them.
pub(super) struct OverlapIndex {
    bounds: Vec<Bounds>,
    fields: Vec<FieldIndex>,
}

impl OverlapIndex {
    pub(super) fn new(rules: &[NormRule]) -> OverlapIndex {
        let bounds: Vec<Bounds> = rules.iter().map(Bounds::of).collect();
        let fields = (0..FIELDS)
            .map(|field| {
                FieldIndex::new(
                    bounds
                        .iter()
                        .enumerate()
                        .filter(|(_, b)| !b.is_empty())
                        .map(|(rule, b)| (rule as u32, b.0[field])),
                )
            })
            .collect();
        OverlapIndex { bounds, fields }
    }

    /// The bounds of rule `rule`.
    #[cfg(test)]
    pub(super) fn bounds(&self, rule: usize) -> &Bounds {
        &self.bounds[rule]
    }

    /// The rules before `rule` whose bounds overlap its bounds, ascending.
    pub(super) fn earlier_overlapping(&self, rule: usize) -> Vec<usize> {
        let mine = &self.bounds[rule];
        if mine.is_empty() {
            return Vec::new();
        }
        let Some(field) = (0..FIELDS).min_by_key(|&f| self.fields[f].count(mine.0[f])) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        self.fields[field].rules_near(mine.0[field], |other| {
            let other = other as usize;
            if other < rule && self.bounds[other].overlap(mine) {
                found.push(other);
            }
        });
        found.sort_unstable();
        found
    }
}
