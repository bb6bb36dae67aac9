//! Every rule's fields as sorted, merged `u128` ranges on each [`Axis`]: the builder's view
//! of the rules.

use alloc::vec::Vec;

use super::axis::{Axis, FlowClasses, AXES, FLOW_DIMS};
use crate::policy::{Policy, Rule};

/// An inclusive range of coordinates on one axis (`first <= last`).
pub(super) type Range = (u128, u128);

/// A box of the rule space: one range per axis.
pub(super) type Region = [Range; AXES];

/// A rule's `Flow` field with more ranges than this is replaced by the one range around
/// them (see [`Fields::exact`]).
const MAX_FLOW_RANGES: usize = 16;

/// The whole rule space.
pub(super) fn everything() -> Region {
    core::array::from_fn(|a| (0, Axis::ALL[a].max()))
}

/// Every rule's field on every axis, each sorted and merged (overlapping and adjacent
/// ranges joined, so that a range lies inside the field exactly when it lies inside one of
/// its ranges). A field that matches nothing is empty.
pub(super) struct Fields {
    ranges: Vec<Range>,
    /// `starts[rule * AXES + axis]..starts[rule * AXES + axis + 1]` is the field in `ranges`.
    starts: Vec<u32>,
    /// Per rule, whether its `Flow` field is exact (see [`Fields::exact`]).
    exact_flow: Vec<bool>,
    /// The one-byte classes the `Flow` fields are made of.
    classes: FlowClasses,
}

impl Fields {
    /// The fields of every rule of `policy`.
    pub(super) fn new(policy: &Policy) -> Fields {
        let mut byte_ranges = Vec::new();
        for rule in policy.rules {
            for (d, dim) in FLOW_DIMS.into_iter().enumerate() {
                let ranges = dim
                    .ranges(policy, rule)
                    .filter(|&(first, last)| first <= last);
                byte_ranges.extend(ranges.map(|(first, last)| (d, first as u8, last as u8)));
            }
        }
        let classes = FlowClasses::new(byte_ranges.into_iter());
        let mut fields = Fields {
            ranges: Vec::new(),
            starts: Vec::new(),
            exact_flow: Vec::new(),
            classes,
        };
        let mut field = Vec::new();
        for rule in policy.rules {
            field.clear();
            let exact = fields.flow_field(policy, rule, &mut field);
            fields.exact_flow.push(exact);
            fields.push_field(&mut field);
            for axis in &Axis::ALL[1..] {
                field.clear();
                if let Some(dim) = axis.wide_dim() {
                    field.extend(
                        dim.ranges(policy, rule)
                            .filter(|&(first, last)| first <= last),
                    );
                }
                fields.push_field(&mut field);
            }
        }
        fields.starts.push(fields.ranges.len() as u32);
        fields
    }

    /// The class table the index stores for the walk to compute `Flow` coordinates.
    pub(super) fn classes(&self) -> &FlowClasses {
        &self.classes
    }

    fn push_field(&mut self, field: &mut [Range]) {
        self.starts.push(self.ranges.len() as u32);
        field.sort_unstable();
        merge_into(&mut self.ranges, field);
    }

    /// Fills `out` with the rule's `Flow` field: the product of its five one-byte fields in
    /// class codes. Returns whether it is exact; when the product has too many ranges, `out`
    /// gets the one range around them instead.
    fn flow_field(&self, policy: &Policy, rule: &Rule, out: &mut Vec<Range>) -> bool {
        // The codes a key can have so far, as ranges of the packed fields seen.
        let mut product: Vec<Range> = alloc::vec![(0, 0)];
        for (d, dim) in FLOW_DIMS.into_iter().enumerate() {
            let bits = self.classes.bits[d];
            let top = (1u128 << bits) - 1;
            let mut codes: Vec<Range> = dim
                .ranges(policy, rule)
                .filter(|&(first, last)| first <= last)
                .map(|(first, last)| {
                    let last = self.classes.class(d, last as u8);
                    // Codes past the last class never occur: extending to them keeps the
                    // field in fewer ranges.
                    let last = if last == self.classes.last_class(d) {
                        top
                    } else {
                        last
                    };
                    (self.classes.class(d, first as u8), last)
                })
                .collect();
            codes.sort_unstable();
            let mut merged = Vec::new();
            merge_into(&mut merged, &codes);
            let (Some(&(low, _)), Some(&(_, high))) = (product.first(), product.last()) else {
                return true;
            };
            let (Some(&(first, _)), Some(&(_, last))) = (merged.first(), merged.last()) else {
                return true;
            };
            let mut next = Vec::new();
            for &(lo, hi) in &product {
                if merged == [(0, top)] {
                    next.push((lo << bits, hi << bits | top));
                } else {
                    for prefix in lo..=hi {
                        next.extend(
                            merged
                                .iter()
                                .map(|&(a, b)| (prefix << bits | a, prefix << bits | b)),
                        );
                        if next.len() > MAX_FLOW_RANGES {
                            break;
                        }
                    }
                }
                if next.len() > MAX_FLOW_RANGES {
                    // Too many: the one range around them all, down to the last bit.
                    let below = self.classes.offsets[d];
                    let low_bits = (1u128 << below) - 1;
                    out.push((
                        (low << bits | first) << below,
                        (high << bits | last) << below | low_bits,
                    ));
                    return false;
                }
            }
            product = next;
        }
        out.extend(product);
        true
    }

    /// Rule `rule`'s field on `axis`.
    pub(super) fn of(&self, rule: u32, axis: Axis) -> &[Range] {
        let at = rule as usize * AXES + axis.index();
        &self.ranges[self.starts[at] as usize..self.starts[at + 1] as usize]
    }

    /// Whether the rule's `Flow` field is exact. An inexact one (made of too many ranges)
    /// holds every key the rule matches and more: the builder uses it to place the rule,
    /// never to decide that the rule covers a region.
    pub(super) fn exact(&self, rule: u32) -> bool {
        self.exact_flow[rule as usize]
    }

    /// Whether the rule can match any key at all (no field is empty).
    pub(super) fn live(&self, rule: u32) -> bool {
        Axis::ALL
            .iter()
            .all(|&axis| !self.of(rule, axis).is_empty())
    }

    /// The axes (bit [`Axis::index`]) on which the rule's field contains the whole region's
    /// range.
    pub(super) fn cover_mask(&self, rule: u32, region: &Region) -> u32 {
        Axis::ALL
            .iter()
            .filter(|&&axis| {
                (axis != Axis::Flow || self.exact(rule))
                    && covers(self.of(rule, axis), region[axis.index()])
            })
            .fold(0, |mask, axis| mask | 1 << axis.index())
    }

    /// The dimensions (bit [`Dim::index`](super::Dim::index)) a leaf must still check for
    /// the rule: those of the axes it does not cover in the region.
    pub(super) fn unchecked_dims(&self, rule: u32, region: &Region) -> u32 {
        let covered = self.cover_mask(rule, region);
        Axis::ALL
            .iter()
            .filter(|axis| covered & 1 << axis.index() == 0)
            .fold(0, |mask, axis| mask | axis.dims())
    }
}

/// The mask with every axis's bit set.
pub(super) const ALL_AXES: u32 = (1 << AXES) - 1;

/// Whether a merged field contains the whole of `range`.
pub(super) fn covers(field: &[Range], (lo, hi): Range) -> bool {
    field.iter().any(|&(first, last)| first <= lo && hi <= last)
}

/// Appends the sorted `field` to `out`, merging overlapping and adjacent ranges.
fn merge_into(out: &mut Vec<Range>, field: &[Range]) {
    let start = out.len();
    for &(first, last) in field {
        match out[start..].last_mut() {
            Some(prev) if prev.1 == u128::MAX || first <= prev.1 + 1 => prev.1 = prev.1.max(last),
            _ => out.push((first, last)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(field: &[Range]) -> Vec<Range> {
        let mut out = Vec::new();
        merge_into(&mut out, field);
        out
    }

    #[test]
    fn overlapping_and_adjacent_ranges_merge() {
        assert_eq!(
            merged(&[(1, 5), (3, 9), (10, 12), (14, 20)]),
            [(1, 12), (14, 20)]
        );
    }

    #[test]
    fn a_range_ending_at_the_top_absorbs_the_rest() {
        assert_eq!(merged(&[(0, u128::MAX), (7, 9)]), [(0, u128::MAX)]);
    }

    #[test]
    fn coverage_needs_one_range_to_hold_all_of_it() {
        let field = merged(&[(1, 5), (7, 9)]);
        assert!(covers(&field, (2, 5)));
        assert!(!covers(&field, (4, 7)));
    }
}
