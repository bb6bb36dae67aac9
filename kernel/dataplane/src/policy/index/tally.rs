//! Counting what a walk does: trees started, cut nodes crossed, leaf entries read and
//! field checks made. A deterministic measure of a lookup's work, for benchmarks and
//! tests on a host where timing is noisy.
//!
//! The walk is generic over [`Tally`]; the data path passes `()`, whose methods do
//! nothing and compile away, so counting costs the kernel nothing.

/// What a walk reports as it goes.
pub trait Tally {
    /// A tree's walk starts.
    #[inline(always)]
    fn tree(&mut self) {}
    /// The walk crosses a cut node.
    #[inline(always)]
    fn node(&mut self) {}
    /// The walk reads a leaf entry.
    #[inline(always)]
    fn entry(&mut self) {}
    /// The walk checks one field of a rule against the key.
    #[inline(always)]
    fn check(&mut self) {}
}

/// The data path's tally: counts nothing.
impl Tally for () {}

/// Totals of what walks did (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkCounts {
    /// Lookups counted.
    pub lookups: u64,
    /// Trees whose walk started.
    pub trees: u64,
    /// Cut nodes crossed.
    pub nodes: u64,
    /// Leaf entries read.
    pub entries: u64,
    /// Rule fields checked against the key.
    pub checks: u64,
}

impl Tally for WalkCounts {
    fn tree(&mut self) {
        self.trees += 1;
    }
    fn node(&mut self) {
        self.nodes += 1;
    }
    fn entry(&mut self) {
        self.entries += 1;
    }
    fn check(&mut self) {
        self.checks += 1;
    }
}

impl WalkCounts {
    /// Per-lookup averages: trees, nodes, entries and checks.
    pub fn per_lookup(&self) -> [f64; 4] {
        let n = self.lookups.max(1) as f64;
        [self.trees, self.nodes, self.entries, self.checks].map(|c| c as f64 / n)
    }
}
