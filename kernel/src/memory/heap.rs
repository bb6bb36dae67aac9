//! The kernel heap: one linked-list allocator over the largest free memory region.
//!
//! The heap also provides DMA memory for virtio (page-aligned allocations): memory is
//! identity-mapped, so a heap address is the physical address the device needs.

use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Gives `[start, start + size)` to the heap.
///
/// # Safety
/// The range must be unused, identity-mapped RAM that stays reserved for the heap.
pub unsafe fn init(start: u64, size: u64) {
    // SAFETY: forwarded from the caller.
    unsafe { HEAP.lock().init(start as *mut u8, size as usize) };
}

/// Bytes of heap currently free.
pub fn free_bytes() -> usize {
    HEAP.lock().free()
}
