//! The kernel heap: one linked-list allocator over the largest free memory region.
//!
//! The heap also provides DMA memory for virtio (page-aligned allocations): memory is
//! identity-mapped, so a heap address is the physical address the device needs.
//!
//! The allocator's spin lock is held with interrupts enabled, so an interrupt handler must
//! never allocate (it would deadlock if it interrupted an allocation): every allocation
//! checks, and one from interrupt context stops the kernel with a report.

use core::alloc::{GlobalAlloc, Layout};

use linked_list_allocator::LockedHeap;

use crate::interrupts::forbid_in_handler;

/// The linked-list heap, refused to interrupt handlers.
struct KernelHeap(LockedHeap);

// SAFETY: every call is forwarded unchanged to `LockedHeap`, a correct `GlobalAlloc`; the
// added check only stops the kernel, it never changes what is allocated or freed.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        forbid_in_handler("the heap");
        // SAFETY: forwarded from the caller (`layout` has a non-zero size).
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        forbid_in_handler("the heap");
        // SAFETY: forwarded from the caller (`ptr` came from `alloc` with `layout`).
        unsafe { self.0.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(LockedHeap::empty());

/// Gives `[start, start + size)` to the heap.
///
/// # Safety
/// The range must be unused, identity-mapped RAM that stays reserved for the heap.
pub unsafe fn init(start: u64, size: u64) {
    // SAFETY: forwarded from the caller.
    unsafe { HEAP.0.lock().init(start as *mut u8, size as usize) };
}

/// Bytes of heap currently free.
/// Grows the heap by `by` bytes at its top.
///
/// # Safety
///
/// `by` bytes of usable RAM must lie right above the heap's current end, identity-mapped
/// read-write, and nothing else may use them from now on.
pub unsafe fn extend(by: u64) {
    // SAFETY: the caller guarantees the memory right above the heap is its to take.
    unsafe { HEAP.0.lock().extend(by as usize) };
}

pub fn free_bytes() -> usize {
    HEAP.0.lock().free()
}
