//! The fast matcher: a decision tree that cuts the rule space (the HiCuts family), packed
//! into integer slices that the kernel embeds as `static` data.
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
//! entry: regions are cut until they hold at most eight rules, and a rule that covers its
//! whole region ends the list, since no later rule can be first there).
//!
//! # How the tree is built (on the host, see `build`)
//!
//! The builder (`MatchIndexBuf`, with `PolicyBuf`) is compiled with the `codegen` feature
//! only: the kernel embeds an index built by the compiler and carries no builder.
//!
//! Breadth first from the whole space. For a region, every axis and several windows are
//! tried (over all the rule boundaries inside the region, and over each side of the widest
//! gap between them, e.g. IPv4 against IPv6 addresses); the cut that leaves the least to
//! scan wins, as long as it copies rules at most eight times per rule of the region and
//! fits the memory budget. Adjacent children left with the same rules share one subtree,
//! identical leaves are stored once. Building is deterministic: the same rules give the
//! same words.
//!
//! # Cost
//!
//! - **Lookup**: six class-table loads, then one node per level, then a short leaf scan.
//!   The depth does not grow with the rule count as such but with how finely rules must be
//!   told apart; the builder never goes deeper than [`layout::MAX_DEPTH`] (32). When the
//!   budget runs out, regions become leaves as they are: the scans get longer, the answers
//!   stay the same. Any word that does not make sense (a malformed `static`) is caught and
//!   answered by a linear scan, never a panic.
//! - **Memory**: at most [`MatchIndexBuf::max_size_bytes`]: 4 × (1,024 + 64 × rules) bytes
//!   for the tree, plus a 1,542-byte class table (none when no rule can match).
//!
//! Measured with `cargo bench -p dataplane --bench matcher` on rulesets compiled from
//! `rules generate` text (`realistic`: rules mostly about one client or network;
//! `wildcard-heavy`: half the sources `any` or interface-wide), one run on a shared 2-core
//! VM (noisy: compare within a row). Lookups are ns for keys first matched by an early rule
//! / a late rule / the default; the linear scan is the reference interpreter in the same
//! run.
//!
//! | ruleset        |  rules |   index |   build | lookup (ns)        | linear scan (ns)            |
//! |----------------|-------:|--------:|--------:|--------------------|-----------------------------|
//! | realistic      |     10 |  1.4 KB |   57 µs | 72 / 431 / 80      | 61 / 180 / 108              |
//! | realistic      |  1,000 |  262 KB |  393 ms | 858 / 428 / 303    | 1,062 / 54,312 / 22,052     |
//! | realistic      | 10,000 | 2.57 MB |  3.43 s | 507 / 2,929 / 1,437 | 15,069 / 216,060 / 224,370 |
//! | wildcard-heavy |     10 |  1.6 KB |   65 µs | 51 / 112 / 21      | 27 / 39 / 36                |
//! | wildcard-heavy |  1,000 |  261 KB |  244 ms | 76 / 308 / 346     | 212 / 24,574 / 10,128       |
//! | wildcard-heavy | 10,000 | 2.57 MB |  3.37 s | 195 / 611 / 1,386  | 4,332 / 100,480 / 415,050   |
//!
//! At 10,000 rules a lookup costs 30× to 300× less than the linear scan, but several times
//! more than at 10 rules: compiled generated rulesets cross a lot (tables, `!<table>`,
//! interface-wide rules), and from 1,000 rules on the index fills its memory budget, so some
//! leaves hold long lists. (Before these rulesets were compiled from text, an imitation of
//! the compiler's output gave 60 / 69 / 16 ns at 10,000 rules in 321 KB: it crossed less.)
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
pub mod layout;

#[cfg(any(test, feature = "codegen"))]
pub use build::MatchIndexBuf;
pub use dim::Dim;

use axis::{coordinates, AXES};
use layout::{
    child_slot, origin_from_words, split_entry, NodeShape, TreeRef, MAX_DEPTH, ORIGIN_WORDS,
};

use super::{FlowKey, Policy};

/// The precomputed lookup structure over a policy's rules: a cut tree packed into one
/// slice of integers, so that it can be a `static` in the kernel (no heap, no work at
/// boot).
///
/// Built by [`MatchIndexBuf::build`] (through
/// [`PolicyBuf::build_index`](super::PolicyBuf::build_index)) and emitted as Rust source by
/// the `codegen` feature; the word layout is described in [`layout`]. A walk never trusts
/// the words blindly: an index that does not describe `Policy::rules` (built for another
/// rule count, or malformed) is detected and answered by a linear scan, which is slow but
/// right.
#[derive(Clone, Copy, Debug)]
pub struct MatchIndex<'a> {
    /// Number of rules the index was built over.
    pub rule_count: u32,
    /// Where every walk starts (a [`TreeRef`] word).
    pub root: u32,
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

/// The walk met words that no builder writes.
struct Malformed;

impl MatchIndex<'_> {
    /// The index of a policy without rules (for any other policy it is not built, and
    /// [`MatchIndex::first_match`] falls back to a linear scan).
    pub const EMPTY: MatchIndex<'static> = MatchIndex {
        rule_count: 0,
        root: TreeRef::NoMatch.encode(),
        classes: &[],
        tree: &[],
    };

    /// Index of the first rule of `policy` that matches `key` (first match wins), the same
    /// answer as checking every rule in order with [`Policy::rule_matches`].
    pub fn first_match(&self, policy: &Policy, key: &FlowKey) -> Option<u32> {
        if self.rule_count as usize != policy.rules.len() {
            return linear_first_match(policy, key);
        }
        match self.walk(policy, key) {
            Ok(found) => found,
            Err(Malformed) => linear_first_match(policy, key),
        }
    }

    /// Size of the index's data in bytes (what it adds to the image).
    pub fn size_bytes(&self) -> usize {
        core::mem::size_of_val(self.tree) + core::mem::size_of_val(self.classes)
    }

    fn walk(&self, policy: &Policy, key: &FlowKey) -> Result<Option<u32>, Malformed> {
        let mut at = self.root;
        if at == TreeRef::NoMatch.encode() {
            return Ok(None);
        }
        let coordinates = coordinates(key, self.classes).ok_or(Malformed)?;
        for _ in 0..=MAX_DEPTH {
            match TreeRef::decode(at).ok_or(Malformed)? {
                TreeRef::Node(node) => at = self.child(node as usize, &coordinates)?,
                TreeRef::Leaf(leaf) => return self.scan_leaf(leaf as usize, policy, key),
                TreeRef::NoMatch => return Ok(None),
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

    /// The first entry of the leaf at `leaf` whose rule matches `key`.
    fn scan_leaf(
        &self,
        leaf: usize,
        policy: &Policy,
        key: &FlowKey,
    ) -> Result<Option<u32>, Malformed> {
        let count = *self.tree.get(leaf).ok_or(Malformed)? as usize;
        let entries = self.tree.get(leaf + 1..leaf + 1 + count).ok_or(Malformed)?;
        'entries: for &word in entries {
            let (index, mut unchecked) = split_entry(word);
            let rule = policy.rules.get(index as usize).ok_or(Malformed)?;
            while unchecked != 0 {
                let dim = Dim::from_index(unchecked.trailing_zeros() as usize).ok_or(Malformed)?;
                unchecked &= unchecked - 1;
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
