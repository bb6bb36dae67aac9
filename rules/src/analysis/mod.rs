//! Static analysis of a checked ruleset:
//!
//! - [`shadowing`]: a rule that earlier rules leave nothing to match is an error naming
//!   them; an earlier rule that takes part of a later one's packets with the opposite
//!   verdict, without being an exception carved out of it, is a warning;
//! - [`translations`]: a port forward or DNS redirect whose translated traffic no rule
//!   passes is a warning, as is a plain `pass` rule that passes a forward's packets and
//!   also opens the forward's target directly; a `forwarded` rule no forward feeds is an
//!   error.
//!
//! Both work on the normalised rules' [`KeySet`](crate::space::KeySet)s by exact set
//! subtraction, so "never reached" means never, not "probably".

mod coverage;
mod shadow;

pub use coverage::translations;
pub use shadow::shadowing;

use crate::space::KeySet;

/// Remainders with more pieces than this are coalesced (see [`KeySet::coalesce`]).
const COALESCE_ABOVE: usize = 8;

/// What is left of a set of flow keys after subtracting others from it, as disjoint
/// pieces.
struct Remainder {
    pieces: Vec<KeySet>,
    /// Coalescing sorts the pieces: it runs when their number has doubled since last time.
    coalesce_at: usize,
    /// Most pieces allowed before the analysis gives up on this question.
    limit: usize,
}

impl Remainder {
    fn new(pieces: Vec<KeySet>, limit: usize) -> Remainder {
        Remainder {
            pieces,
            coalesce_at: COALESCE_ABOVE,
            limit,
        }
    }

    fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Whether some key left is in one of `sets`.
    fn touches(&self, sets: &[KeySet]) -> bool {
        self.pieces
            .iter()
            .any(|piece| sets.iter().any(|s| piece.intersects(s)))
    }

    /// Some key left that is also in one of `sets`, as the set of such keys.
    fn overlap(&self, sets: &[KeySet]) -> Option<KeySet> {
        self.pieces
            .iter()
            .find_map(|piece| sets.iter().find_map(|s| piece.intersect(s)))
    }

    /// Removes the keys of `sets`; `false` (and the remainder is then unknown) when the
    /// pieces would exceed the limit.
    fn subtract(&mut self, sets: &[KeySet]) -> bool {
        for t in sets {
            if self.pieces.is_empty() {
                break;
            }
            let mut next = Vec::with_capacity(self.pieces.len());
            for piece in self.pieces.drain(..) {
                if piece.intersects(t) {
                    next.extend(piece.subtract(t));
                } else {
                    next.push(piece);
                }
            }
            if next.len() > self.coalesce_at {
                KeySet::coalesce(&mut next);
                self.coalesce_at = (2 * next.len()).max(COALESCE_ABOVE);
            }
            self.pieces = next;
            if self.pieces.len() > self.limit {
                return false;
            }
        }
        true
    }
}
