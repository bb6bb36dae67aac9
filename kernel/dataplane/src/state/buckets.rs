//! [`Buckets`]: the flow index's array of `u32` entries, all of its memory allocated at
//! construction but written only when first used.
//!
//! An index sized for a large table is megabytes (4 MiB for the 154,000 states of a
//! 128 MiB guest); filling it with "empty" at construction is the largest single cost of
//! booting under an emulating hypervisor (TCG), several to tens of milliseconds. Instead
//! the array is cut into pages of [`PAGE`] entries, stored in one allocation reserved
//! (untouched) at construction, in the order they are first written: a page is filled the
//! first time an entry in it is written, and a page never written reads as all empty.
//!
//! One allocation, not one per page: the heap's allocator writes its bookkeeping into the
//! free memory just past each block it hands out, so a page per allocation would write
//! into every page's neighbour at boot — every fourth page of the index — and the host
//! would have to back the whole array with memory (under transparent huge pages, in
//! 2 MiB pieces, each zeroed and often compacted for: milliseconds apiece on a nested
//! hypervisor). Allocation happens only here, so the table still never allocates after
//! construction and cannot run out of memory later.

use alloc::vec;
use alloc::vec::Vec;

/// Entries per page: 16 KiB.
pub(crate) const PAGE: usize = 4096;

/// Where a page never written is (in [`Buckets::page_at`]).
const UNWRITTEN: u32 = u32::MAX;

/// A fixed-length array of `u32`, every entry `empty` until written.
pub(crate) struct Buckets {
    /// The written pages, each [`PAGE`] entries (or the whole array, if shorter), in the
    /// order they were first written. Its capacity, reserved at construction, holds every
    /// page: filling one never reallocates.
    written: Vec<u32>,
    /// For each page of the array, where it starts in `written`, or [`UNWRITTEN`].
    page_at: Vec<u32>,
    page_len: usize,
    empty: u32,
}

impl Buckets {
    /// `len` entries (a multiple of [`PAGE`], or less than one page), all `empty`.
    pub fn new(len: usize, empty: u32) -> Buckets {
        Buckets {
            written: Vec::with_capacity(len),
            page_at: vec![UNWRITTEN; len.div_ceil(PAGE)],
            page_len: len.min(PAGE),
            empty,
        }
    }

    /// Bytes `len` entries occupy (pages and where each is).
    pub const fn bytes_for(len: usize) -> usize {
        len * core::mem::size_of::<u32>() + len.div_ceil(PAGE) * core::mem::size_of::<u32>()
    }

    /// Entry `at` (`at < len`).
    #[inline]
    pub fn get(&self, at: usize) -> u32 {
        match self.page_at[at / PAGE] {
            UNWRITTEN => self.empty,
            start => self.written[start as usize + at % PAGE],
        }
    }

    /// Sets entry `at` (`at < len`), filling its page first if it was never written.
    #[inline]
    pub fn set(&mut self, at: usize, value: u32) {
        let page = at / PAGE;
        let start = match self.page_at[page] {
            UNWRITTEN => {
                let start = self.written.len();
                // Within the capacity reserved at construction: no allocation.
                self.written.resize(start + self.page_len, self.empty);
                self.page_at[page] = start as u32;
                start
            }
            start => start as usize,
        };
        self.written[start + at % PAGE] = value;
    }

    /// Every entry that is not `empty`, in order.
    #[cfg(test)]
    pub fn filled(&self) -> impl Iterator<Item = u32> + '_ {
        let empty = self.empty;
        (0..self.page_at.len() * self.page_len)
            .map(|at| self.get(at))
            .filter(move |&entry| entry != empty)
    }

    /// Pages written so far.
    #[cfg(test)]
    fn pages_in_use(&self) -> usize {
        self.written.len() / self.page_len
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
        assert_eq!(buckets.written.len(), 8);
    }

    #[test]
    fn pages_are_written_in_first_use_order_without_reallocating() {
        let mut buckets = Buckets::new(3 * PAGE, 0);
        let reserved = buckets.written.as_ptr();
        buckets.set(2 * PAGE + 1, 5);
        buckets.set(3, 6);
        buckets.set(2 * PAGE + 2, 7);
        assert_eq!(buckets.written.as_ptr(), reserved);
        assert_eq!(buckets.written.len(), 2 * PAGE);
        assert_eq!(buckets.pages_in_use(), 2);
        assert_eq!(buckets.get(2 * PAGE + 1), 5);
        assert_eq!(buckets.get(2 * PAGE + 2), 7);
        assert_eq!(buckets.get(3), 6);
        assert_eq!(buckets.get(PAGE + 3), 0);
        assert_eq!(buckets.filled().collect::<Vec<_>>(), [6, 5, 7]);
    }
}
