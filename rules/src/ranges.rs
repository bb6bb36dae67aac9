//! [`RangeSet`]: a set of numbers kept as sorted, disjoint, non-adjacent inclusive ranges.
//!
//! Every field of a normalised rule is one of these, over the field's own domain (`0..=255`
//! for interfaces, protocols and ICMP, `0..=65535` for ports, all of `u128` for addresses).

/// A set of `u128` values as sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct RangeSet {
    ranges: Vec<(u128, u128)>,
}

impl RangeSet {
    /// The empty set.
    pub fn empty() -> RangeSet {
        RangeSet { ranges: Vec::new() }
    }

    /// `first..=last`.
    pub fn range(first: u128, last: u128) -> RangeSet {
        debug_assert!(first <= last);
        RangeSet {
            ranges: vec![(first, last)],
        }
    }

    /// `{ value }`.
    pub fn single(value: u128) -> RangeSet {
        RangeSet::range(value, value)
    }

    /// The union of arbitrary (unsorted, overlapping) ranges; ranges with `first > last`
    /// are ignored.
    pub fn from_ranges(ranges: impl IntoIterator<Item = (u128, u128)>) -> RangeSet {
        let mut sorted: Vec<(u128, u128)> = ranges.into_iter().filter(|(a, b)| a <= b).collect();
        sorted.sort_unstable();
        let mut merged: Vec<(u128, u128)> = Vec::with_capacity(sorted.len());
        for (first, last) in sorted {
            match merged.last_mut() {
                Some(prev) if first <= prev.1.saturating_add(1) => prev.1 = prev.1.max(last),
                _ => merged.push((first, last)),
            }
        }
        RangeSet { ranges: merged }
    }

    /// The ranges, sorted and disjoint.
    pub fn ranges(&self) -> &[(u128, u128)] {
        &self.ranges
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether `value` is in the set.
    pub fn contains(&self, value: u128) -> bool {
        let i = self.ranges.partition_point(|&(_, last)| last < value);
        self.ranges.get(i).is_some_and(|&(first, _)| first <= value)
    }

    /// Smallest and largest member.
    pub fn bounds(&self) -> Option<(u128, u128)> {
        Some((self.ranges.first()?.0, self.ranges.last()?.1))
    }

    /// Whether this is all of `0..=max`.
    pub fn is_full(&self, max: u128) -> bool {
        self.ranges == [(0, max)]
    }

    /// `self ∪ other`.
    pub fn union(&self, other: &RangeSet) -> RangeSet {
        RangeSet::from_ranges(self.ranges.iter().chain(other.ranges.iter()).copied())
    }

    /// `self ∩ other`.
    pub fn intersect(&self, other: &RangeSet) -> RangeSet {
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < self.ranges.len() && j < other.ranges.len() {
            let (a, b) = (self.ranges[i], other.ranges[j]);
            let (first, last) = (a.0.max(b.0), a.1.min(b.1));
            if first <= last {
                out.push((first, last));
            }
            if a.1 < b.1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        RangeSet { ranges: out }
    }

    /// Whether `self ∩ other` is non-empty (without building it).
    pub fn intersects(&self, other: &RangeSet) -> bool {
        let (mut i, mut j) = (0, 0);
        while i < self.ranges.len() && j < other.ranges.len() {
            let (a, b) = (self.ranges[i], other.ranges[j]);
            if a.0.max(b.0) <= a.1.min(b.1) {
                return true;
            }
            if a.1 < b.1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        false
    }

    /// The complement within `0..=max`.
    pub fn complement(&self, max: u128) -> RangeSet {
        let mut out = Vec::new();
        let mut next = Some(0u128);
        for &(first, last) in &self.ranges {
            if let Some(n) = next {
                if first > n {
                    out.push((n, first - 1));
                }
            }
            next = last.checked_add(1);
        }
        if let Some(n) = next {
            if n <= max {
                out.push((n, max));
            }
        }
        RangeSet { ranges: out }
    }

    /// `self \ other`.
    pub fn subtract(&self, other: &RangeSet) -> RangeSet {
        self.intersect(&other.complement(u128::MAX))
    }

    /// Whether every member of `self` is in `other`.
    pub fn is_subset(&self, other: &RangeSet) -> bool {
        self.ranges.iter().all(|&(first, last)| {
            let i = other.ranges.partition_point(|&(_, l)| l < first);
            other
                .ranges
                .get(i)
                .is_some_and(|&(f, l)| f <= first && last <= l)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(ranges: &[(u128, u128)]) -> RangeSet {
        RangeSet::from_ranges(ranges.iter().copied())
    }

    #[test]
    fn overlapping_and_adjacent_ranges_merge() {
        assert_eq!(
            set(&[(5, 9), (1, 3), (4, 4), (20, 30), (25, 26)]).ranges(),
            &[(1, 9), (20, 30)]
        );
    }

    #[test]
    fn complement_covers_the_gaps_up_to_the_domain_end() {
        assert_eq!(
            set(&[(0, 0), (10, 20)]).complement(255).ranges(),
            &[(1, 9), (21, 255)]
        );
        assert!(set(&[(0, u128::MAX)]).complement(u128::MAX).is_empty());
        assert_eq!(RangeSet::empty().complement(7).ranges(), &[(0, 7)]);
    }

    fn arb_set() -> impl Strategy<Value = RangeSet> {
        prop::collection::vec((0u128..64, 0u128..8), 0..5)
            .prop_map(|v| RangeSet::from_ranges(v.into_iter().map(|(a, len)| (a, a + len))))
    }

    proptest! {
        #[test]
        fn set_operations_agree_with_membership(a in arb_set(), b in arb_set(), x in 0u128..80) {
            prop_assert_eq!(a.union(&b).contains(x), a.contains(x) || b.contains(x));
            prop_assert_eq!(a.intersect(&b).contains(x), a.contains(x) && b.contains(x));
            prop_assert_eq!(a.subtract(&b).contains(x), a.contains(x) && !b.contains(x));
            prop_assert_eq!(a.complement(255).contains(x), !a.contains(x));
            prop_assert_eq!(a.intersects(&b), !a.intersect(&b).is_empty());
            prop_assert_eq!(a.is_subset(&b), a.subtract(&b).is_empty());
        }
    }
}
