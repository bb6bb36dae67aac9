//! Building the cut tree from a policy's rules (host side, at compile time).
//!
//! Breadth-first: every pending region of the rule space holds the rules that intersect it,
//! in priority order, cut off after the first rule that covers the whole region (no later
//! rule can be the first match there). A region with few rules becomes a leaf; a larger one
//! is cut (see [`cut`](super::cut)) along the axis and window that leave the least to scan,
//! replicating rules at most `SPACE_FACTOR` times; adjacent children left with the same
//! rules share one subtree. A memory budget, reserved before each cut, bounds
//! the whole index: once spent, regions become leaves (longer scans, same answers).
//! A large ruleset is first split into groups of rules alike in how wide their addresses
//! are ([`forest`](super::forest)), and each group gets a tree and its share of the
//! budget, built one after the other into the same words.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec;
use alloc::vec::Vec;

use super::axis::{Axis, CLASS_TABLE_LEN};
use super::cut::{window_spans, Cut, Cutting, OpenChildren};
use super::fields::{everything, Fields, Range, Region, ALL_AXES};
use super::forest::{self, GROUPS};
use super::layout::{
    entry, origin_to_words, NodeShape, TreeRef, MAX_DEPTH, MAX_RULES, ORIGIN_WORDS,
};
use super::MatchIndexBuf;
use crate::policy::Policy;

/// A region with at most this many rules becomes a leaf.
const LEAF_RULES: usize = 4;
/// A region with at most this many rules is never cut so that a child keeps all of them
/// (see [`Builder::choose_cut`]).
const STALL_RULES: usize = 16;
/// A cut may make at most this many rule copies (counting children that repeat their
/// neighbour once) per rule of the region.
const SPACE_FACTOR: usize = 8;
/// A cut's window has at most `1 << MAX_CUT_BITS` slices.
const MAX_CUT_BITS: u32 = 12;
/// Words (4 bytes) the tree may use per rule, on top of [`BUDGET_BASE_WORDS`].
const BUDGET_WORDS_PER_RULE: usize = 64;
/// Words the index may always use, whatever the rule count.
const BUDGET_BASE_WORDS: usize = 1 << 10;

/// Words a pending region reserves: enough to become a leaf (a count, then one entry word
/// per rule).
const fn leaf_words(rules: usize) -> usize {
    1 + rules
}

/// Words the tree of an index over `rule_count` rules may take.
const fn tree_budget_words(rule_count: usize) -> usize {
    let words = BUDGET_BASE_WORDS.saturating_add(BUDGET_WORDS_PER_RULE.saturating_mul(rule_count));
    if words < TreeRef::MAX_OFFSET as usize {
        words
    } else {
        TreeRef::MAX_OFFSET as usize
    }
}

impl MatchIndexBuf {
    /// The most bytes an index over `rule_count` rules takes: its trees stay within a
    /// budget of `4 * (1,024 * trees + 64 * rule_count)` bytes (at most four trees), its
    /// roots take two words per tree, and its class table takes [`CLASS_TABLE_LEN`] bytes.
    pub const fn max_size_bytes(rule_count: usize) -> usize {
        let trees = (GROUPS - 1) * BUDGET_BASE_WORDS + tree_budget_words(rule_count);
        4 * (trees + 2 * GROUPS) + CLASS_TABLE_LEN
    }

    /// Builds the index over `policy.rules` (the policy's own `index` is ignored).
    ///
    /// A policy with more than [`MAX_RULES`] rules gets no index (the matcher then scans
    /// linearly); the compiler never makes one that large.
    pub fn build(policy: &Policy) -> MatchIndexBuf {
        if policy.rules.len() > MAX_RULES {
            return MatchIndexBuf::default();
        }
        let builder = Builder::new(policy);
        let groups = forest::groups(policy, |rule| builder.fields.live(rule));
        builder.run(groups)
    }
}

/// Drops every rule after the first one that covers the whole region.
fn cut_off_after_cover(fields: &Fields, rules: &mut Vec<u32>, region: &Region) {
    if let Some(at) = rules
        .iter()
        .position(|&rule| fields.cover_mask(rule, region) == ALL_AXES)
    {
        rules.truncate(at + 1);
    }
}

/// Where the reference to a built subtree is written.
#[derive(Clone, Copy)]
enum Slots {
    /// The root word of tree number `.0`.
    Root(usize),
    /// `tree[first..first + count]`.
    Children { first: usize, count: usize },
}

/// A region waiting to be made a leaf or cut.
struct Pending {
    region: Region,
    /// The rules that intersect the region, in priority order.
    rules: Vec<u32>,
    depth: usize,
    slots: Slots,
}

/// How good a cut is: smaller is better, field by field.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Score {
    /// Sum of the squared rule counts of the children that do not repeat their neighbour:
    /// proportional to the average scan left, keys falling where the rules are.
    spread: usize,
    /// Rule copies made (children repeating their neighbour counted once).
    copies: usize,
    /// Children made.
    children: usize,
}

struct Builder {
    fields: Fields,
    out: MatchIndexBuf,
    queue: VecDeque<Pending>,
    /// Words written plus words reserved for the rules of pending regions.
    committed: usize,
    budget: usize,
    /// Where each distinct leaf (by its entries) was written.
    leaf_at: BTreeMap<Vec<u32>, u32>,
}

impl Builder {
    fn new(policy: &Policy) -> Builder {
        let rule_count = policy.rules.len();
        let fields = Fields::new(policy);
        let classes: Vec<u8> = fields.classes().table().collect();
        debug_assert_eq!(classes.len(), CLASS_TABLE_LEN);
        Builder {
            fields,
            out: MatchIndexBuf {
                rule_count: rule_count as u32,
                classes,
                ..MatchIndexBuf::default()
            },
            queue: VecDeque::new(),
            committed: 0,
            budget: 0,
            leaf_at: BTreeMap::new(),
        }
    }

    /// Builds a tree over each group of rules (in priority order, the groups ordered by
    /// their first rules), one after the other; what a tree leaves of its budget passes to
    /// the next.
    fn run(mut self, groups: Vec<Vec<u32>>) -> MatchIndexBuf {
        for (tree, rules) in groups.into_iter().enumerate() {
            let Some(&first) = rules.first() else {
                continue;
            };
            self.out.roots.extend([first, TreeRef::NoMatch.encode()]);
            self.budget =
                (self.budget + tree_budget_words(rules.len())).min(TreeRef::MAX_OFFSET as usize);
            self.committed += leaf_words(rules.len());
            self.queue.push_back(Pending {
                region: everything(),
                rules,
                depth: 0,
                slots: Slots::Root(tree),
            });
            while let Some(pending) = self.queue.pop_front() {
                self.place(pending);
            }
        }
        if self.out.roots.is_empty() {
            // No rule can match: the walk stops at once and never needs the classes.
            self.out.classes.clear();
        }
        self.out
    }

    /// Turns a pending region into a subtree and writes its reference into its slots.
    fn place(&mut self, mut pending: Pending) {
        let reserved = leaf_words(pending.rules.len());
        cut_off_after_cover(&self.fields, &mut pending.rules, &pending.region);
        let built = if pending.rules.is_empty() {
            TreeRef::NoMatch
        } else if pending.rules.len() <= LEAF_RULES || pending.depth >= MAX_DEPTH {
            self.leaf(&pending.rules, &pending.region)
        } else {
            let cover_masks = pending
                .rules
                .iter()
                .map(|&rule| self.fields.cover_mask(rule, &pending.region))
                .collect();
            let cutting = Cutting {
                region: &pending.region,
                rules: &pending.rules,
                cover_masks,
            };
            match self.choose_cut(&cutting, reserved) {
                Some(cut) => self.node(cut, &cutting, pending.depth),
                None => self.leaf(&pending.rules, &pending.region),
            }
        };
        self.committed -= reserved;
        let word = built.encode();
        match pending.slots {
            Slots::Root(tree) => self.out.roots[2 * tree + 1] = word,
            Slots::Children { first, count } => self.out.tree[first..first + count].fill(word),
        }
    }

    /// A leaf holding `rules`, shared with any identical leaf already built.
    fn leaf(&mut self, rules: &[u32], region: &Region) -> TreeRef {
        let entries: Vec<u32> = rules
            .iter()
            .map(|&rule| entry(rule, self.fields.unchecked_dims(rule, region)))
            .collect();
        if let Some(&at) = self.leaf_at.get(&entries) {
            return TreeRef::Leaf(at);
        }
        let at = self.out.tree.len() as u32;
        self.out.tree.push(entries.len() as u32);
        self.out.tree.extend_from_slice(&entries);
        self.committed += leaf_words(entries.len());
        self.leaf_at.insert(entries, at);
        TreeRef::Leaf(at)
    }

    /// The best cut of a region: the one that leaves the least to scan, within the space
    /// factor and the memory budget (`reserved` is what the region's rules already hold of
    /// it). A cut that leaves some child with every rule of the region (a *stall*) is only
    /// taken when nothing better exists, it cuts an axis that the first rule does not cover
    /// (so that a child ends up inside that rule, which then decides it), and the region
    /// has more than [`STALL_RULES`] rules: for fewer, a leaf scans faster than the chain
    /// of stalls it takes to tell them apart (with wildcard-heavy rules, chains of up to
    /// 30 nodes that narrowed a region of 9 to 12 rules a class code at a time and ended
    /// in a leaf of all of them anyway).
    fn choose_cut(&self, cutting: &Cutting, reserved: usize) -> Option<Cut> {
        let n = cutting.rules.len();
        let mut best: Option<(Cut, Score)> = None;
        let mut fallback: Option<(Cut, Score)> = None;
        let mut open = OpenChildren::default();
        for axis in Axis::ALL {
            let boundaries = cutting.boundaries(&self.fields, axis);
            let range = cutting.region[axis.index()];
            let first_rule_covers = cutting.cover_masks[0] & 1 << axis.index() != 0;
            for span in window_spans(&boundaries) {
                // Twice as many slices as boundaries is as fine as a window usefully gets.
                let inside = boundaries.partition_point(|&b| b <= span.1)
                    - boundaries.partition_point(|&b| b < span.0);
                let max_bits = MAX_CUT_BITS.min(usize::BITS - inside.leading_zeros() + 1);
                for cut in self
                    .candidates(axis, range, span, max_bits)
                    .filter(Cut::splits)
                {
                    // The node, and a leaf's count word for each child: what is left of the
                    // budget bounds the rule copies.
                    let words = 1 + ORIGIN_WORDS + 2 * cut.children();
                    let affordable =
                        (self.budget + reserved).saturating_sub(self.committed + words);
                    let limit = (SPACE_FACTOR * n)
                        .saturating_sub(cut.children())
                        .min(affordable);
                    // Finer cuts of the same window only cost more.
                    let Some((score, largest)) =
                        self.score(cutting, &cut, &boundaries, limit, &mut open)
                    else {
                        break;
                    };
                    let slot = if largest < n {
                        &mut best
                    } else if n > STALL_RULES && !first_rule_covers {
                        &mut fallback
                    } else {
                        continue;
                    };
                    if slot.is_none_or(|(_, b)| score < b) {
                        *slot = Some((cut, score));
                    }
                }
            }
        }
        best.or(fallback).map(|(cut, _)| cut)
    }

    /// The cuts to try along `axis` with windows over `span`, of at most `1 << max_bits`
    /// slices. On the `Flow` axis, only slices that hold whole class codes of the packed
    /// dimensions below some dimension: a cut then resolves whole dimensions.
    fn candidates(
        &self,
        axis: Axis,
        range: Range,
        span: Range,
        max_bits: u32,
    ) -> impl Iterator<Item = Cut> + '_ {
        let flow = (axis == Axis::Flow).then(|| {
            self.fields
                .classes()
                .offsets
                .into_iter()
                .map(move |shift| Cut::with_shift(axis, range, span, shift))
        });
        let others = (axis != Axis::Flow).then(|| Cut::candidates(axis, range, span, max_bits));
        flow.into_iter()
            .flatten()
            .filter(move |cut| cut.window <= 1 << MAX_CUT_BITS)
            .chain(others.into_iter().flatten())
    }

    /// The score of a cut and its largest child, or `None` if it makes more than `limit`
    /// rule copies.
    fn score(
        &self,
        cutting: &Cutting,
        cut: &Cut,
        boundaries: &[u128],
        limit: usize,
        open: &mut OpenChildren,
    ) -> Option<(Score, usize)> {
        let run_starts = cut.run_starts(boundaries);
        let mut sizes = vec![0usize; cut.children()];
        let mut copies = 0;
        cutting.distribute(&self.fields, cut, open, |child, _| {
            sizes[child] += 1;
            copies += run_starts[child] as usize;
            copies <= limit
        });
        if copies > limit {
            return None;
        }
        let largest = sizes.iter().copied().max().unwrap_or(0);
        let spread = sizes
            .iter()
            .zip(&run_starts)
            .filter(|&(_, &starts)| starts)
            .map(|(&size, _)| size * size)
            .sum();
        Some((
            Score {
                spread,
                copies,
                children: cut.children(),
            },
            largest,
        ))
    }

    /// A cut node over `cutting`'s region; its children are queued.
    fn node(&mut self, cut: Cut, cutting: &Cutting, depth: usize) -> TreeRef {
        let at = self.out.tree.len();
        let shape = NodeShape {
            axis: cut.axis,
            shift: cut.shift,
            window: cut.window as u32,
        };
        self.out.tree.push(shape.encode());
        self.out.tree.extend(origin_to_words(cut.origin));
        let first_child = self.out.tree.len();
        let children = cut.children();
        self.out
            .tree
            .resize(first_child + children, TreeRef::NoMatch.encode());
        self.committed += self.out.tree.len() - at;

        // Children's rules as positions in `cutting.rules`.
        let mut lists: Vec<Vec<u32>> = vec![Vec::new(); children];
        cutting.distribute(
            &self.fields,
            &cut,
            &mut OpenChildren::default(),
            |child, at| {
                lists[child].push(at as u32);
                true
            },
        );

        let mut child = 0;
        while child < children {
            let mut last = child;
            while last + 1 < children && lists[last + 1] == lists[child] {
                last += 1;
            }
            if let Some(range) = cut.slice(child, last) {
                let mut region = *cutting.region;
                region[cut.axis.index()] = range;
                let rules: Vec<u32> = lists[child]
                    .iter()
                    .map(|&at| cutting.rules[at as usize])
                    .collect();
                self.committed += leaf_words(rules.len());
                self.queue.push_back(Pending {
                    region,
                    rules,
                    depth: depth + 1,
                    slots: Slots::Children {
                        first: first_child + child,
                        count: last + 1 - child,
                    },
                });
            }
            child = last + 1;
        }
        TreeRef::Node(at as u32)
    }
}
