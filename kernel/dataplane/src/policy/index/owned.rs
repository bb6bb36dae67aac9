//! [`MatchIndexBuf`]: the owned form of a [`MatchIndex`], built on the host (with the
//! `codegen` feature) or decoded from a policy blob at boot.

use alloc::vec::Vec;

use super::MatchIndex;

/// The owned form of a [`MatchIndex`]: built from a policy's rules on the host
/// (`MatchIndexBuf::build`, feature `codegen`), or read back from a policy blob
/// ([`codegen::blob::decode`](crate::policy::codegen::blob::decode)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MatchIndexBuf {
    pub(super) rule_count: u32,
    pub(super) roots: Vec<u32>,
    pub(super) classes: Vec<u8>,
    pub(super) tree: Vec<u32>,
}

impl MatchIndexBuf {
    /// An index from its parts, as [`MatchIndexBuf::as_index`] lends them. Nothing is
    /// checked: a walk answers a malformed index by a linear scan.
    pub(crate) fn from_parts(
        rule_count: u32,
        roots: Vec<u32>,
        classes: Vec<u8>,
        tree: Vec<u32>,
    ) -> MatchIndexBuf {
        MatchIndexBuf {
            rule_count,
            roots,
            classes,
            tree,
        }
    }

    /// Borrows the index.
    pub fn as_index(&self) -> MatchIndex<'_> {
        MatchIndex {
            rule_count: self.rule_count,
            roots: &self.roots,
            classes: &self.classes,
            tree: &self.tree,
        }
    }
}
