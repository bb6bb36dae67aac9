//! Physical page frames: the free regions of the memory map and the frame pool that page
//! tables are allocated from.

use x86_64::structures::paging::{FrameAllocator, PhysFrame, Size4KiB};
use x86_64::PhysAddr;

use super::PAGE_SIZE;
use crate::interrupts::MainLock;

/// At most this many disjoint free regions are tracked.
const MAX_FREE: usize = 64;

/// Free physical memory, as disjoint `[start, end)` ranges, page-aligned.
pub struct FreeRegions {
    ranges: [(u64, u64); MAX_FREE],
    count: usize,
}

impl FreeRegions {
    /// No free memory.
    pub const fn new() -> FreeRegions {
        FreeRegions {
            ranges: [(0, 0); MAX_FREE],
            count: 0,
        }
    }

    /// Adds `[start, end)`, shrunk inwards to page boundaries.
    pub fn add(&mut self, start: u64, end: u64) {
        let start = start.div_ceil(PAGE_SIZE) * PAGE_SIZE;
        let end = end / PAGE_SIZE * PAGE_SIZE;
        if start < end && self.count < MAX_FREE {
            self.ranges[self.count] = (start, end);
            self.count += 1;
        }
    }

    /// Removes `[start, end)` from every range (splitting where needed).
    pub fn remove(&mut self, start: u64, end: u64) {
        let start = start / PAGE_SIZE * PAGE_SIZE;
        let end = end.div_ceil(PAGE_SIZE) * PAGE_SIZE;
        let mut kept = FreeRegions::new();
        for &(s, e) in &self.ranges[..self.count] {
            if e <= start || s >= end {
                kept.add(s, e);
            } else {
                kept.add(s, start.max(s));
                kept.add(end.min(e), e);
            }
        }
        *self = kept;
    }

    /// The start of the smallest range that holds `size` bytes, other than the largest
    /// range (the one the heap takes).
    pub fn smallest_other_holding(&self, size: u64) -> Option<u64> {
        let largest = self.largest();
        self.ranges[..self.count]
            .iter()
            .copied()
            .filter(|&(s, e)| e - s >= size && (s, e) != largest)
            .min_by_key(|(s, e)| e - s)
            .map(|(s, _)| s)
    }

    /// The largest range (or `(0, 0)` if there is none).
    pub fn largest(&self) -> (u64, u64) {
        self.ranges[..self.count]
            .iter()
            .copied()
            .max_by_key(|(s, e)| e - s)
            .unwrap_or((0, 0))
    }
}

impl Default for FreeRegions {
    fn default() -> Self {
        FreeRegions::new()
    }
}

/// The frame pool: a bump allocator over a reserved range. Page tables are never freed.
struct FramePool {
    start: u64,
    next: u64,
    end: u64,
}

static POOL: MainLock<FramePool> = MainLock::new(
    "the frame pool",
    FramePool {
        start: 0,
        next: 0,
        end: 0,
    },
);

/// Hands `[start, end)` to the frame pool.
pub fn init(start: u64, end: u64) {
    *POOL.lock() = FramePool {
        start,
        next: start,
        end,
    };
}

/// Bytes of the frame pool handed out so far.
pub fn used_bytes() -> u64 {
    let pool = POOL.lock();
    pool.next - pool.start
}

/// Allocates zeroed page-table frames from the pool.
pub struct PoolAllocator;

// SAFETY: every frame returned is unused (the bump pointer only moves forward over memory
// reserved for the pool), 4 KiB-aligned, identity-mapped and zeroed.
unsafe impl FrameAllocator<Size4KiB> for PoolAllocator {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        let mut pool = POOL.lock();
        if pool.next + PAGE_SIZE > pool.end {
            return None;
        }
        let addr = pool.next;
        pool.next += PAGE_SIZE;
        // SAFETY: the frame is pool memory, identity-mapped, owned by nobody else.
        unsafe { core::ptr::write_bytes(addr as *mut u8, 0, PAGE_SIZE as usize) };
        PhysFrame::from_start_address(PhysAddr::new(addr)).ok()
    }
}
