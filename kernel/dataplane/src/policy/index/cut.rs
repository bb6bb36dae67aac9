//! Cuts: how the builder splits a region of the rule space along one axis.
//!
//! A cut along an axis places a *window* over the part of the region's range where the
//! region's rules have boundaries (where a rule's range starts or ends), and splits the
//! window into aligned slices of `1 << shift` coordinates. The coordinates below the window
//! and those above it form one child each: no rule starts or ends there, so they need no
//! further cut on this axis. Children are numbered as
//! [`layout::child_slot`](super::layout::child_slot) numbers them: 0 below the window,
//! `1..=window` its slices, `window + 1` above.

use alloc::vec;
use alloc::vec::Vec;

use super::axis::Axis;
use super::fields::{Fields, Range, Region, ALL_AXES};
use super::layout::child_slot;

/// One way to cut a region's range on one axis (see the module doc).
#[derive(Clone, Copy, Debug)]
pub(super) struct Cut {
    /// The axis cut.
    pub(super) axis: Axis,
    /// Slices are `1 << shift` coordinates wide.
    pub(super) shift: u32,
    /// The first slice starts at `origin << shift`.
    pub(super) origin: u128,
    /// Number of slices in the window.
    pub(super) window: usize,
    /// The region's range on `axis`.
    range: Range,
}

impl Cut {
    /// The cuts along `axis` for a region whose range there is `range`, with windows over
    /// `bounds` (inclusive) of one slice up to `1 << max_bits` slices.
    pub(super) fn candidates(
        axis: Axis,
        range: Range,
        bounds: Range,
        max_bits: u32,
    ) -> impl Iterator<Item = Cut> {
        let width_bits = 128 - (bounds.0 ^ bounds.1).leading_zeros();
        // A shift of 128 would be one slice holding the whole space: no cut at all.
        let fewest_bits = width_bits.saturating_sub(127);
        (fewest_bits..=max_bits.min(width_bits))
            .map(move |bits| Cut::with_shift(axis, range, bounds, width_bits - bits))
    }

    /// The cut along `axis` for a region whose range there is `range`, with a window of
    /// slices of `1 << shift` (`shift < 128`) over `bounds`.
    pub(super) fn with_shift(axis: Axis, range: Range, bounds: Range, shift: u32) -> Cut {
        let origin = bounds.0 >> shift;
        let window = ((bounds.1 >> shift) - origin + 1) as usize;
        Cut {
            axis,
            shift,
            origin,
            window,
            range,
        }
    }

    /// Which children may hold other rules than the child before them (a boundary falls
    /// at their start, or inside them or the child before): the others repeat their left
    /// neighbour, and the builder shares one subtree between them.
    pub(super) fn run_starts(&self, boundaries: &[u128]) -> Vec<bool> {
        let mut starts = vec![false; self.children()];
        starts[0] = true;
        starts[1] = true;
        for &b in boundaries {
            let child = self.child_of(b);
            starts[child] = true;
            let aligned = self
                .slice(child, child)
                .is_some_and(|(start, _)| start == b);
            if !aligned && child + 1 < starts.len() {
                starts[child + 1] = true;
            }
        }
        starts
    }

    /// Whether the cut splits the region's range at all (a window of one slice holding the
    /// whole range leaves it in one piece).
    pub(super) fn splits(&self) -> bool {
        self.slice(0, 0).is_some()
            || self.window > 1
            || self.slice(self.window + 1, self.window + 1).is_some()
    }

    /// Number of children (the window's slices, below and above).
    pub(super) fn children(&self) -> usize {
        self.window + 2
    }

    fn child_of(&self, coordinate: u128) -> usize {
        child_slot(coordinate, self.shift, self.origin, self.window as u32)
    }

    /// Children (as `first..=last`) that `range` reaches within the region, if any.
    fn children_of(&self, (first, last): Range) -> Option<(usize, usize)> {
        let (lo, hi) = self.range;
        if last < lo || hi < first {
            return None;
        }
        Some((self.child_of(first.max(lo)), self.child_of(last.min(hi))))
    }

    /// The coordinates of children `first..=last` (`None` if they hold none, as the part
    /// below a window that starts where the region does).
    pub(super) fn slice(&self, first: usize, last: usize) -> Option<Range> {
        let (lo, hi) = self.range;
        let start = match first {
            0 => lo,
            _ => self.slice_start(first - 1)?,
        };
        let end = if last > self.window {
            hi
        } else {
            match self.slice_start(last) {
                Some(next) => next.checked_sub(1)?,
                None => u128::MAX,
            }
        };
        let (start, end) = (start.max(lo), end.min(hi));
        (start <= end).then_some((start, end))
    }

    /// The first coordinate of window slice `k` (`k == window` is where the part above the
    /// window starts), or `None` if that is past the end of the space.
    fn slice_start(&self, k: usize) -> Option<u128> {
        let slice = self.origin.checked_add(k as u128)?;
        (slice <= u128::MAX >> self.shift).then(|| slice << self.shift)
    }
}

/// A region being cut: its rules (in priority order) and, for each, the axes on which it
/// covers the whole region.
pub(super) struct Cutting<'r> {
    /// The region.
    pub(super) region: &'r Region,
    /// The rules that intersect it.
    pub(super) rules: &'r [u32],
    /// `cover_masks[i]` is [`Fields::cover_mask`] of `rules[i]`.
    pub(super) cover_masks: Vec<u32>,
}

impl Cutting<'_> {
    /// The boundaries of the rules inside the region's range on `axis`, sorted and
    /// distinct: the coordinates where a rule's range starts, or the one after its end.
    pub(super) fn boundaries(&self, fields: &Fields, axis: Axis) -> Vec<u128> {
        let (lo, hi) = self.region[axis.index()];
        let mut boundaries = Vec::new();
        for &rule in self.rules {
            for &(first, last) in fields.of(rule, axis) {
                if first > lo && first <= hi {
                    boundaries.push(first);
                }
                if last >= lo && last < hi {
                    boundaries.push(last + 1);
                }
            }
        }
        boundaries.sort_unstable();
        boundaries.dedup();
        boundaries
    }

    /// Hands every (child, rule position) pair of `cut` to `visit`, rules in priority order,
    /// skipping the children that an earlier rule covers entirely (it decides them); stops
    /// early when `visit` returns `false`.
    pub(super) fn distribute(
        &self,
        fields: &Fields,
        cut: &Cut,
        open: &mut OpenChildren,
        mut visit: impl FnMut(usize, usize) -> bool,
    ) {
        open.reset(cut.children());
        let others = ALL_AXES & !(1 << cut.axis.index());
        for (at, &rule) in self.rules.iter().enumerate() {
            // A rule decides the children its field covers, if it covers the region on the
            // other axes (and its field on this one is exact, not the range around it).
            let may_decide = self.cover_masks[at] & others == others
                && (cut.axis != Axis::Flow || fields.exact(rule));
            // Two ranges of one field may reach the same child: hand it over once.
            let mut unvisited = 0;
            for &(first, last) in fields.of(rule, cut.axis) {
                let Some((c0, c1)) = cut.children_of((first, last)) else {
                    continue;
                };
                let mut child = open.first_from(c0.max(unvisited));
                unvisited = c1 + 1;
                while child <= c1 {
                    if !visit(child, at) {
                        return;
                    }
                    if may_decide
                        && cut
                            .slice(child, child)
                            .is_some_and(|(lo, hi)| first <= lo && hi <= last)
                    {
                        open.close(child);
                    }
                    child = open.first_from(child + 1);
                }
            }
        }
    }
}

/// Spans of boundaries worth a window: all of them and, when one gap between consecutive
/// boundaries is a large part of that span (IPv4 and IPv6 addresses, say), each side of it.
pub(super) fn window_spans(boundaries: &[u128]) -> Vec<Range> {
    let (Some(&first), Some(&last)) = (boundaries.first(), boundaries.last()) else {
        return Vec::new();
    };
    let mut spans = vec![(first, last)];
    let widest_gap = boundaries
        .windows(2)
        .enumerate()
        .max_by_key(|(_, pair)| pair[1] - pair[0]);
    if let Some((i, pair)) = widest_gap {
        if pair[1] - pair[0] >= (last - first) / 64 {
            spans.push((first, boundaries[i]));
            spans.push((boundaries[i + 1], last));
        }
    }
    spans
}

/// The children of a cut that no earlier rule decides yet: a "next open child" union-find,
/// so that a wide rule skips the decided children in near constant time.
#[derive(Default)]
pub(super) struct OpenChildren {
    next: Vec<u32>,
}

impl OpenChildren {
    fn reset(&mut self, children: usize) {
        self.next.clear();
        self.next.extend(0..=children as u32);
    }

    fn close(&mut self, child: usize) {
        self.next[child] = child as u32 + 1;
    }

    /// The first open child at or after `child` (the number of children if none).
    fn first_from(&mut self, child: usize) -> usize {
        let end = self.next.len() - 1;
        let mut root = child.min(end);
        while self.next[root] as usize != root {
            root = self.next[root] as usize;
        }
        let mut at = child.min(end);
        while at != root {
            let following = self.next[at] as usize;
            self.next[at] = root as u32;
            at = following;
        }
        root
    }
}
