//! How the cut tree is packed into one flat array of `u32` words
//! ([`MatchIndex::tree`](super::MatchIndex::tree)).
//!
//! One flat integer array, rather than slices of structs, keeps the emitted Rust source of a
//! large policy quick for rustc to compile and keeps each node's header, origin and
//! children next to each other in memory (one or two cache lines per level of the walk).
//!
//! - A **reference** ([`TreeRef`]) is one word: a node or a leaf (kind in the top two bits,
//!   word offset in the others), or "no rule matches".
//! - A **cut node** at offset `o`: the [`NodeShape`] word; the origin in [`ORIGIN_WORDS`]
//!   words, least significant first; then `window + 2` child references (see
//!   [`child_slot`]).
//! - A **leaf** at offset `o`: the number of entries, then one word per entry: the rule's
//!   index in `Policy::rules` shifted left by [`ENTRY_MASK_BITS`], or'ed with the mask of
//!   the dimensions still to check (bit [`Dim::index`](super::Dim::index)).
//!
//! Every word is read through a bounds check: a malformed tree makes the walk fail (and
//! the matcher fall back to a linear scan), never panic.

use super::axis::Axis;
use super::dim::DIMS;

/// Deepest chain of cut nodes the builder makes; a walk that goes deeper has met a
/// malformed (e.g. cyclic) tree.
pub const MAX_DEPTH: usize = 32;

/// Bits of a leaf entry that hold the mask of dimensions to check.
pub const ENTRY_MASK_BITS: u32 = DIMS as u32;

/// Largest number of rules a tree can index (rule indices must fit beside the mask).
pub const MAX_RULES: usize = 1 << (32 - ENTRY_MASK_BITS);

const KIND_SHIFT: u32 = 30;
const KIND_NODE: u32 = 0;
const KIND_LEAF: u32 = 1;
const OFFSET_MASK: u32 = (1 << KIND_SHIFT) - 1;
const NO_MATCH_WORD: u32 = u32::MAX;

/// Where a walk goes next: one word (a child of a node, or the root).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeRef {
    /// The cut node at this word offset.
    Node(u32),
    /// The leaf at this word offset.
    Leaf(u32),
    /// No rule matches any key that gets here.
    NoMatch,
}

impl TreeRef {
    /// Largest word offset a reference can carry.
    pub const MAX_OFFSET: u32 = OFFSET_MASK;

    /// The reference's word.
    pub const fn encode(self) -> u32 {
        match self {
            TreeRef::Node(at) => (KIND_NODE << KIND_SHIFT) | (at & OFFSET_MASK),
            TreeRef::Leaf(at) => (KIND_LEAF << KIND_SHIFT) | (at & OFFSET_MASK),
            TreeRef::NoMatch => NO_MATCH_WORD,
        }
    }

    /// The reference a word encodes, or `None` for a word no builder writes.
    #[inline]
    pub const fn decode(word: u32) -> Option<TreeRef> {
        if word == NO_MATCH_WORD {
            return Some(TreeRef::NoMatch);
        }
        match word >> KIND_SHIFT {
            KIND_NODE => Some(TreeRef::Node(word & OFFSET_MASK)),
            KIND_LEAF => Some(TreeRef::Leaf(word & OFFSET_MASK)),
            _ => None,
        }
    }
}

/// The first word of a cut node: which axis it cuts, and how.
///
/// The node cuts a window of `window` aligned slices of `1 << shift` coordinates, the first
/// starting at `origin << shift`, and has `window + 2` children: see [`child_slot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeShape {
    /// The axis cut.
    pub axis: Axis,
    /// Each slice of the window covers `1 << shift` consecutive coordinates, aligned.
    pub shift: u32,
    /// Number of slices in the window.
    pub window: u32,
}

const AXIS_BITS: u32 = 4;
const SHIFT_BITS: u32 = 7;
const WINDOW_SHIFT: u32 = AXIS_BITS + SHIFT_BITS;

impl NodeShape {
    /// Largest number of slices a window can have.
    pub const MAX_WINDOW: u32 = u32::MAX >> WINDOW_SHIFT;

    /// The shape's word.
    pub const fn encode(self) -> u32 {
        (self.axis.index() as u32)
            | ((self.shift & ((1 << SHIFT_BITS) - 1)) << AXIS_BITS)
            | (self.window << WINDOW_SHIFT)
    }

    /// The shape a word encodes, or `None` if it names no axis.
    #[inline]
    pub const fn decode(word: u32) -> Option<NodeShape> {
        match Axis::from_index((word & ((1 << AXIS_BITS) - 1)) as usize) {
            Some(axis) => Some(NodeShape {
                axis,
                shift: (word >> AXIS_BITS) & ((1 << SHIFT_BITS) - 1),
                window: word >> WINDOW_SHIFT,
            }),
            None => None,
        }
    }

    /// Number of children: the window's slices, the part below it and the part above it.
    pub const fn children(&self) -> usize {
        self.window as usize + 2
    }
}

/// Words of a node origin (a coordinate shifted right: up to 128 bits). The same on every
/// axis, so that the walk reads a node's header and origin without branching on the axis.
pub const ORIGIN_WORDS: usize = 4;

/// The words of a node origin, least significant first.
pub const fn origin_to_words(origin: u128) -> [u32; ORIGIN_WORDS] {
    [
        origin as u32,
        (origin >> 32) as u32,
        (origin >> 64) as u32,
        (origin >> 96) as u32,
    ]
}

/// The node origin stored in `words` (least significant first).
#[inline]
pub const fn origin_from_words(words: [u32; ORIGIN_WORDS]) -> u128 {
    words[0] as u128
        | (words[1] as u128) << 32
        | (words[2] as u128) << 64
        | (words[3] as u128) << 96
}

/// The child of a cut node that `coordinate` falls in: 0 below the node's window,
/// `1..=window` for its slices, `window + 1` above it.
#[inline]
pub const fn child_slot(coordinate: u128, shift: u32, origin: u128, window: u32) -> usize {
    let slice = coordinate >> shift;
    let offset = slice.wrapping_sub(origin);
    if offset < window as u128 {
        offset as usize + 1
    } else if slice < origin {
        0
    } else {
        window as usize + 1
    }
}

/// A leaf entry's word.
pub const fn entry(rule: u32, unchecked: u32) -> u32 {
    (rule << ENTRY_MASK_BITS) | (unchecked & ((1 << ENTRY_MASK_BITS) - 1))
}

/// The rule index and the mask of dimensions to check of a leaf entry's word.
#[inline]
pub const fn split_entry(word: u32) -> (u32, u32) {
    (word >> ENTRY_MASK_BITS, word & ((1 << ENTRY_MASK_BITS) - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_refs_survive_encoding() {
        for r in [
            TreeRef::Node(0),
            TreeRef::Node(TreeRef::MAX_OFFSET),
            TreeRef::Leaf(7),
            TreeRef::NoMatch,
        ] {
            assert_eq!(TreeRef::decode(r.encode()), Some(r));
        }
    }

    #[test]
    fn words_of_the_unused_kinds_are_not_tree_refs() {
        assert_eq!(TreeRef::decode(2 << KIND_SHIFT), None);
        assert_eq!(TreeRef::decode((3 << KIND_SHIFT) | 5), None);
    }

    #[test]
    fn node_shapes_survive_encoding() {
        for axis in Axis::ALL {
            let shape = NodeShape {
                axis,
                shift: 127,
                window: NodeShape::MAX_WINDOW,
            };
            assert_eq!(NodeShape::decode(shape.encode()), Some(shape));
        }
    }

    #[test]
    fn a_node_word_naming_no_axis_is_rejected() {
        assert_eq!(NodeShape::decode(15), None);
    }

    #[test]
    fn origins_survive_encoding() {
        for origin in [0, 1, u32::MAX as u128 + 1, u128::MAX >> 3, u128::MAX] {
            assert_eq!(origin_from_words(origin_to_words(origin)), origin);
        }
    }

    #[test]
    fn leaf_entries_survive_encoding() {
        let last_rule = MAX_RULES as u32 - 1;
        assert_eq!(
            split_entry(entry(last_rule, 0b1_0000_0001)),
            (last_rule, 0b1_0000_0001)
        );
    }

    #[test]
    fn child_slots_count_below_window_and_above() {
        // Window of 3 slices of 16 coordinates starting at 32: [32, 80).
        let slot = |v| child_slot(v, 4, 2, 3);
        assert_eq!(
            [
                slot(0),
                slot(31),
                slot(32),
                slot(47),
                slot(48),
                slot(79),
                slot(80)
            ],
            [0, 0, 1, 1, 2, 3, 4]
        );
        assert_eq!(child_slot(u128::MAX, 0, 0, 1), 2);
    }
}
