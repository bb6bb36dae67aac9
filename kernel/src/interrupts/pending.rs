//! What fired: one bit per vector, set by handlers and taken by the main loop.
//!
//! The only state handlers and the main loop share besides the I/O APIC (see
//! [`super::lines`]): four atomic words, so neither side ever waits for the other.

use core::sync::atomic::{AtomicU64, Ordering};

use super::Vector;

/// Bit `v % 64` of word `v / 64` is set when vector `v` fired.
static PENDING: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// Records that `vector` fired (called by the dispatcher).
pub(super) fn record(vector: Vector) {
    let v = vector.index() as usize;
    PENDING[v / 64].fetch_or(1 << (v % 64), Ordering::Release);
}

/// Whether anything fired since the last [`take`].
pub(super) fn any() -> bool {
    PENDING.iter().any(|word| word.load(Ordering::Acquire) != 0)
}

/// The vectors that fired since the last call, clearing them.
pub fn take() -> Fired {
    Fired(core::array::from_fn(|i| {
        PENDING[i].swap(0, Ordering::AcqRel)
    }))
}

/// A set of vectors that fired.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fired([u64; 4]);

impl Fired {
    /// Whether `vector` is in the set.
    pub fn contains(&self, vector: Vector) -> bool {
        let v = vector.index() as usize;
        self.0[v / 64] & (1 << (v % 64)) != 0
    }
}
