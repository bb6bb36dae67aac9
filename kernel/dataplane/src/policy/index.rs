//! The fast matcher: a decision tree that cuts the rule space (the HiCuts family), packed
//! into integer slices that the kernel reads from its policy blob.
//!
//! # How a key is matched
//!
//! The key is seen on five [axes](axis): source and destination address, source and
//! destination port as they are, and the six one-byte dimensions (ingress NIC, egress,
//! protocol, ICMP type and code, destination NAT) packed into one `Flow` coordinate of class
//! codes, so that a
//! single cut can resolve all of them. From the root, each **cut node** splits one axis of
//! its region into a window of aligned slices (plus "below" and "above" the window) and
//! sends the key to the child its coordinate falls in: a shift, a subtraction, two
//! comparisons and one load. A **leaf** lists the rules that can still be the first match in
//! its region, in priority order, each with the dimensions it does not cover there; the
//! first entry whose remaining dimensions match is the answer (usually the first or second
//! entry: regions are cut until they hold at most four rules, and a rule that covers its
//! whole region ends the list, since no later rule can be first there).
//!
//! # How the trees are built (on the host, see `build` and `forest`)
//!
//! The builder (`MatchIndexBuf::build`, with `PolicyBuf::build_index`) is compiled with the
//! `codegen` feature only: the kernel reads an index built by the compiler from its policy
//! blob and carries no builder.
//!
//! A ruleset of more than 64 rules is first split into up to four groups by whether each
//! rule's source and destination are wide (more than a /8), and each group gets its own
//! tree (EffiCuts' answer to HiCuts' weak spot): in one tree, every rule to "the whole
//! uplink" or from `any` is copied into every region cut along that field, and with
//! thousands of rules those copies filled the memory budget before the narrow rules were
//! told apart. A lookup first descends all the trees together, a level at a time, to the
//! leaf the key falls in in each (the trees do not depend on each other, so the loads of
//! their nodes overlap instead of queueing one tree after the other); it then scans those
//! leaves in the order of the trees' first rules, keeps the earliest match, skips a tree
//! whose first rule comes after it, and stops scanning a leaf at the first entry after it.
//!
//! Each tree is built breadth first from the whole space. For a region, every axis and
//! several windows are tried (over all the rule boundaries inside the region, and over each
//! side of the widest gap between them, e.g. IPv4 against IPv6 addresses); the cut that
//! leaves the least to scan wins, as long as it copies rules at most eight times per rule
//! of the region and fits the memory budget. Adjacent children left with the same rules
//! share one subtree, identical leaves are stored once. Building is deterministic: the
//! same rules give the same words.
//!
//! # Cost
//!
//! - **Lookup**: six class-table loads, then per tree one node per level and a short leaf
//!   scan. The depth does not grow with the rule count as such but with how finely rules
//!   must be told apart; the builder never goes deeper than [`layout::MAX_DEPTH`] (32).
//!   When a budget runs out, regions become leaves as they are: the scans get longer, the
//!   answers stay the same. Any word that does not make sense (a damaged index) is
//!   caught and answered by a linear scan, never a panic.
//! - **Memory**: at most `MatchIndexBuf::max_size_bytes`: 4 × (1,024 per tree + 64 ×
//!   rules) bytes for the trees, two words per tree for the roots, and a 1,542-byte class
//!   table (none when no rule can match). `rules check` prints the size and the bound.
//!
//! Measured on rulesets compiled from `rules generate` text (`realistic`: rules mostly about
//! one client or network; `wildcard-heavy`: half the sources `any` or interface-wide) with
//! `cargo bench -p dataplane --bench matcher_rounds`, on a shared 2-core VM under a load
//! average of 2.4–2.6: the lookups are the fastest of 25 rounds that alternate the sizes
//! in one process (ns for keys first matched by an early rule / a late rule / the
//! default), and the walk's work per late key is counted (trees / cut nodes / leaf
//! entries / field checks), which no load disturbs. `cargo bench -p dataplane --bench
//! matcher` measures the lookups with criterion, noisier under load.
//!
//! | ruleset        |  rules |  index |   build | lookup (ns)     | late key's walk      | late vs 10 |
//! |----------------|-------:|-------:|--------:|-----------------|----------------------|-----------:|
//! | realistic      |     10 | 1.6 KB |  0.0 ms | 33 / 74 / 30    | 1 / 1.0 / 4.0 / 19.5 |       1.0× |
//! | realistic      |  1,000 |  42 KB |   10 ms | 90 / 114 / 55   | 4 / 7.2 / 7.4 / 21.4 |      1.54× |
//! | realistic      | 10,000 | 385 KB |  136 ms | 109 / 137 / 54  | 4 / 9.9 / 4.4 / 16.6 |      1.86× |
//! | wildcard-heavy |     10 | 1.9 KB |  0.1 ms | 34 / 52 / 31    | 1 / 2.0 / 3.0 / 13.0 |       1.0× |
//! | wildcard-heavy |  1,000 |  49 KB |   12 ms | 82 / 121 / 74   | 4 / 7.6 / 6.3 / 23.5 |      2.30× |
//! | wildcard-heavy | 10,000 | 509 KB |  242 ms | 179 / 229 / 179 | 4 / 12.1 / 11.9 / 39.3 |    4.37× |
//!
//! The same program on the index before the trees were descended together, before
//! stalls were barred from small regions and with leaves of eight rules, in the same
//! minutes: realistic late keys 75 / 192 / 198 ns at 10 / 1,000 / 10,000 rules (2.55×,
//! 2.64×), walking 4 trees, 9.6 nodes and 5.6 entries (19.6 checks) at 10,000 rules;
//! wildcard-heavy 57 / 206 / 378 ns (3.59×, 6.58×), 21 nodes and 13.6 entries at 10,000
//! rules in a 939 KB index built in 0.43 s. Under heavier load (15–18) the ratios of that
//! index were 4.0× and 10.4×: load costs the deeper walks most. At 10,000 rules the extra
//! cost against 10 rules is now the three more trees' nodes (about 2.5 each, descended
//! together), not the leaves; for wildcard-heavy rules the leaves too, as wide rules
//! still cross inside each group. Before the split into groups, one tree filled its
//! 2.57 MB budget from 1,000 rules on, took 3.4 s to build, and late keys at 10,000
//! rules cost 2,929 ns (realistic) and 611 ns (wildcard-heavy) in the bench's quieter
//! figures of an earlier session. Criterion (`--warm-up-time 1 --measurement-time 3`,
//! right after the table) gave realistic late keys 81 / 104 / 111 ns at 10 / 1,000 /
//! 10,000 rules (1.28×, 1.36×): its tight loop keeps more of the index in cache.
//!
//! # Why a tree and not per-dimension bit vectors
//!
//! Bit vectors (one bitset of matching rules per elementary interval of each dimension,
//! ANDed, lowest bit wins; aggregated summaries to skip zero words) cost a walk over `N / 64`
//! words per dimension whenever the summaries do not prune, and they do not prune on real
//! rulesets: every dimension has `any` fields, so each dimension's set alone holds a large
//! share of the rules and nearly every summary bit is set. At 10,000 rules that is about
//! 150 words per dimension for a key that falls through to the default. The tree's work is
//! bounded by its depth and its leaf size instead; its weak spot is memory when many wide
//! rules cross, which the budget caps (see the wildcard-heavy rows).

pub mod axis;
#[cfg(any(test, feature = "codegen"))]
mod build;
#[cfg(any(test, feature = "codegen"))]
mod cut;
pub mod dim;
#[cfg(any(test, feature = "codegen"))]
mod fields;
#[cfg(any(test, feature = "codegen"))]
mod forest;
pub mod layout;
mod owned;
pub mod tally;

pub use dim::Dim;
pub use owned::MatchIndexBuf;

use axis::{coordinates, AXES};
use layout::{
    child_slot, origin_from_words, split_entry, NodeShape, TreeRef, MAX_DEPTH, ORIGIN_WORDS,
};
use tally::Tally;

use super::{FlowKey, Policy};

/// The precomputed lookup structure over a policy's rules: a cut tree packed into one
/// slice of integers, built by the compiler and copied into the kernel's policy blob (no
/// work at boot beyond reading it back).
///
/// Built by `MatchIndexBuf::build` (through `PolicyBuf::build_index`, feature `codegen`)
/// and written by [`codegen::blob`](super::codegen::blob); the word layout is described in
/// [`layout`]. A walk never trusts
/// the words blindly: an index that does not describe `Policy::rules` (built for another
/// rule count, or malformed) is detected and answered by a linear scan, which is slow but
/// right.
#[derive(Clone, Copy, Debug)]
pub struct MatchIndex<'a> {
    /// Number of rules the index was built over.
    pub rule_count: u32,
    /// The trees, as pairs of words: the first rule of the tree's group, and where its
    /// walk starts (a [`TreeRef`] word); ordered by first rule. Empty when no rule can
    /// match.
    pub roots: &'a [u32],
    /// The classes of the one-byte values that make up `Flow` coordinates (see [`axis`]
    /// and [`axis::CLASS_TABLE_LEN`]); empty when no rule can match.
    pub classes: &'a [u8],
    /// The cut nodes and leaves (see [`layout`]).
    pub tree: &'a [u32],
}

impl Default for MatchIndex<'_> {
    fn default() -> Self {
        MatchIndex::EMPTY
    }
}

/// Trees descended together (see [`MatchIndex::descend`]): as many as the builder makes.
const LOCKSTEP_TREES: usize = 4;

/// The walk met words that no builder writes.
struct Malformed;

impl MatchIndex<'_> {
    /// The index of a policy without rules (for any other policy it is not built, and
    /// [`MatchIndex::first_match`] falls back to a linear scan).
    pub const EMPTY: MatchIndex<'static> = MatchIndex {
        rule_count: 0,
        roots: &[],
        classes: &[],
        tree: &[],
    };

    /// Index of the first rule of `policy` that matches `key` (first match wins), the same
    /// answer as checking every rule in order with [`Policy::rule_matches`].
    pub fn first_match(&self, policy: &Policy, key: &FlowKey) -> Option<u32> {
        if self.rule_count as usize != policy.rules.len() {
            return linear_first_match(policy, key);
        }
        match self.walk(policy, key, &mut ()) {
            Ok(found) => found,
            Err(Malformed) => linear_first_match(policy, key),
        }
    }

    /// [`MatchIndex::first_match`], counting the walk's work into `counts` (nothing is
    /// counted when the index is not used). For benchmarks and tests.
    #[cfg(any(test, feature = "reference"))]
    pub fn first_match_counted(
        &self,
        policy: &Policy,
        key: &FlowKey,
        counts: &mut tally::WalkCounts,
    ) -> Option<u32> {
        counts.lookups += 1;
        if self.rule_count as usize != policy.rules.len() {
            return linear_first_match(policy, key);
        }
        match self.walk(policy, key, counts) {
            Ok(found) => found,
            Err(Malformed) => linear_first_match(policy, key),
        }
    }

    /// Size of the index's data in bytes (what it adds to the image).
    pub fn size_bytes(&self) -> usize {
        core::mem::size_of_val(self.tree)
            + core::mem::size_of_val(self.classes)
            + core::mem::size_of_val(self.roots)
    }

    /// The earliest first match over all trees. The trees come in the order of their first
    /// rules, so once a match is found, a tree whose first rule comes later is not walked,
    /// and the others are only searched for earlier rules.
    fn walk(
        &self,
        policy: &Policy,
        key: &FlowKey,
        tally: &mut impl Tally,
    ) -> Result<Option<u32>, Malformed> {
        if self.roots.is_empty() {
            return Ok(None);
        }
        if self.roots.len() % 2 != 0 {
            return Err(Malformed);
        }
        let coordinates = coordinates(key, self.classes).ok_or(Malformed)?;
        // Rules from here on cannot be the answer: one before them matched.
        let mut before = u32::MAX;
        let mut previous_first = 0;
        for trees in self.roots.chunks(2 * LOCKSTEP_TREES) {
            let Some(&first) = trees.first() else {
                continue;
            };
            if first >= before {
                break;
            }
            let ends = self.descend(trees, &coordinates, tally)?;
            for (tree, end) in trees.chunks_exact(2).zip(ends) {
                let first = tree[0];
                if first < previous_first {
                    return Err(Malformed);
                }
                previous_first = first;
                if first >= before {
                    break;
                }
                tally.tree();
                let found = match TreeRef::decode(end).ok_or(Malformed)? {
                    TreeRef::Leaf(leaf) => {
                        self.scan_leaf(leaf as usize, policy, key, before, tally)?
                    }
                    TreeRef::NoMatch => None,
                    TreeRef::Node(_) => return Err(Malformed),
                };
                if let Some(rule) = found {
                    before = rule;
                }
            }
        }
        Ok((before != u32::MAX).then_some(before))
    }

    /// Where a key ends in each of up to [`LOCKSTEP_TREES`] trees (`trees` as in
    /// [`MatchIndex::roots`]): a leaf or "no match". The trees are descended a level at a
    /// time, all together, so that the loads of their nodes overlap instead of waiting
    /// for each other.
    #[inline]
    fn descend(
        &self,
        trees: &[u32],
        coordinates: &[u128; AXES],
        tally: &mut impl Tally,
    ) -> Result<[u32; LOCKSTEP_TREES], Malformed> {
        let mut at = [TreeRef::NoMatch.encode(); LOCKSTEP_TREES];
        for (at, tree) in at.iter_mut().zip(trees.chunks_exact(2)) {
            *at = tree[1];
        }
        for _ in 0..=MAX_DEPTH {
            let mut deeper = false;
            for at in &mut at {
                if let TreeRef::Node(node) = TreeRef::decode(*at).ok_or(Malformed)? {
                    tally.node();
                    *at = self.child(node as usize, coordinates)?;
                    deeper = true;
                }
            }
            if !deeper {
                return Ok(at);
            }
        }
        Err(Malformed)
    }

    /// The child of the cut node at `node` that a key with these coordinates falls in.
    #[inline]
    fn child(&self, node: usize, coordinates: &[u128; AXES]) -> Result<u32, Malformed> {
        let header = node + 1 + ORIGIN_WORDS;
        let Some(&[shape, o0, o1, o2, o3]) = self.tree.get(node..header) else {
            return Err(Malformed);
        };
        let shape = NodeShape::decode(shape).ok_or(Malformed)?;
        let origin = origin_from_words([o0, o1, o2, o3]);
        let coordinate = coordinates[shape.axis.index()];
        let slot = child_slot(coordinate, shape.shift, origin, shape.window);
        self.tree.get(header + slot).copied().ok_or(Malformed)
    }

    /// The first entry of the leaf at `leaf` whose rule matches `key`, if it comes before
    /// rule `before` (entries are in priority order).
    fn scan_leaf(
        &self,
        leaf: usize,
        policy: &Policy,
        key: &FlowKey,
        before: u32,
        tally: &mut impl Tally,
    ) -> Result<Option<u32>, Malformed> {
        let count = *self.tree.get(leaf).ok_or(Malformed)? as usize;
        let entries = self.tree.get(leaf + 1..leaf + 1 + count).ok_or(Malformed)?;
        'entries: for &word in entries {
            tally.entry();
            let (index, mut unchecked) = split_entry(word);
            if index >= before {
                return Ok(None);
            }
            let rule = policy.rules.get(index as usize).ok_or(Malformed)?;
            while unchecked != 0 {
                let dim = Dim::from_index(unchecked.trailing_zeros() as usize).ok_or(Malformed)?;
                unchecked &= unchecked - 1;
                tally.check();
                if !dim.field_contains(policy, rule, key) {
                    continue 'entries;
                }
            }
            return Ok(Some(index));
        }
        Ok(None)
    }
}

/// First match by checking every rule in order: the answer when the index cannot be used.
fn linear_first_match(policy: &Policy, key: &FlowKey) -> Option<u32> {
    policy
        .rules
        .iter()
        .position(|rule| policy.rule_matches(rule, key))
        .map(|i| i as u32)
}
