//! [`Buckets`]: the flow index's array of `u32` entries, all of its memory allocated at
//! construction but written only when first used.
//!
//! An index sized for a large table is megabytes (4 MiB for the 154,000 states of a
//! 128 MiB guest); filling it with "empty" at construction is the largest single cost of
//! booting under an emulating hypervisor (TCG), several to tens of milliseconds. Instead
//! the array is cut into pages of [`PAGE`] entries, each allocated (reserved, untouched) at
//! construction and filled the first time an entry in it is written. A page never written
//! reads as all empty. Allocation happens only here, so the table still never allocates
//! after construction and cannot run out of memory later.

use alloc::vec::Vec;

/// Entries per page: 16 KiB.
pub(crate) const PAGE: usize = 4096;

/// A fixed-length array of `u32`, every entry `empty` until written.
pub(crate) struct Buckets {
    /// Each page is either empty (never written: all entries read as `empty`) or exactly
    /// [`PAGE`] entries long. Capacity for that was reserved when the page was created.
    pages: Vec<Vec<u32>>,
    empty: u32,
}

impl Buckets {
    /// `len` entries (a multiple of [`PAGE`], or less than one page), all `empty`.
    pub fn new(len: usize, empty: u32) -> Buckets {
        let page_len = len.min(PAGE);
        let pages = (0..len.div_ceil(PAGE))
            .map(|_| Vec::with_capacity(page_len))
            .collect();
        Buckets { pages, empty }
    }

    /// Bytes `len` entries occupy (pages and their list).
    pub const fn bytes_for(len: usize) -> usize {
        len * core::mem::size_of::<u32>() + len.div_ceil(PAGE) * core::mem::size_of::<Vec<u32>>()
    }

    /// Entry `at` (`at < len`).
    #[inline]
    pub fn get(&self, at: usize) -> u32 {
        let page = &self.pages[at / PAGE];
        page.get(at % PAGE).copied().unwrap_or(self.empty)
    }

    /// Sets entry `at` (`at < len`), filling its page first if it was never written.
    #[inline]
    pub fn set(&mut self, at: usize, value: u32) {
        let empty = self.empty;
        let page = &mut self.pages[at / PAGE];
        if page.is_empty() {
            // Within the capacity reserved at construction: no allocation.
            page.resize(page.capacity(), empty);
        }
        page[at % PAGE] = value;
    }

    /// Every entry that is not `empty`, in order.
    #[cfg(test)]
    pub fn filled(&self) -> impl Iterator<Item = u32> + '_ {
        let empty = self.empty;
        self.pages
            .iter()
            .flatten()
            .copied()
            .filter(move |&entry| entry != empty)
    }

    /// Pages written so far.
    #[cfg(test)]
    fn pages_in_use(&self) -> usize {
        self.pages.iter().filter(|page| !page.is_empty()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwritten_entries_read_empty_and_written_ones_read_back() {
        let mut buckets = Buckets::new(4 * PAGE, u32::MAX);
        assert_eq!(buckets.pages_in_use(), 0);
        assert!((0..4 * PAGE).all(|at| buckets.get(at) == u32::MAX));
        buckets.set(PAGE + 7, 42);
        buckets.set(3 * PAGE + PAGE - 1, 9);
        assert_eq!(buckets.pages_in_use(), 2);
        assert_eq!(buckets.get(PAGE + 7), 42);
        assert_eq!(buckets.get(PAGE + 8), u32::MAX);
        assert_eq!(buckets.get(4 * PAGE - 1), 9);
        assert_eq!(buckets.filled().collect::<Vec<_>>(), [42, 9]);
        buckets.set(PAGE + 7, u32::MAX);
        assert_eq!(buckets.filled().collect::<Vec<_>>(), [9]);
    }

    #[test]
    fn a_small_array_is_one_short_page() {
        let mut buckets = Buckets::new(8, u32::MAX);
        buckets.set(7, 1);
        assert_eq!(buckets.get(7), 1);
        assert_eq!(buckets.filled().count(), 1);
        assert!(buckets.pages[0].len() == 8);
    }

    #[test]
    fn filling_a_page_does_not_reallocate() {
        let mut buckets = Buckets::new(2 * PAGE, 0);
        let before = buckets.pages[1].capacity();
        buckets.set(PAGE, 5);
        assert_eq!(buckets.pages[1].capacity(), before);
        assert_eq!(buckets.pages[1].len(), PAGE);
    }
}
