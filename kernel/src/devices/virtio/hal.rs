//! The `virtio-drivers` hardware abstraction for this kernel: identity-mapped memory, DMA
//! from the heap.

use core::alloc::Layout;
use core::ptr::NonNull;

use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

use crate::memory::paging;

/// Identity-mapped DMA and MMIO for virtio devices.
pub struct KernelHal;

fn dma_layout(pages: usize) -> Option<Layout> {
    Layout::from_size_align(pages.checked_mul(PAGE_SIZE)?, PAGE_SIZE).ok()
}

// SAFETY: `dma_alloc` returns zeroed, page-aligned, physically contiguous memory (the heap is
// one identity-mapped physical range) whose physical and virtual addresses are equal, and
// that stays allocated until `dma_dealloc`; `mmio_phys_to_virt` maps the region before
// returning it; `share` returns the physical address of memory that is identity-mapped.
unsafe impl Hal for KernelHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let Some(layout) = dma_layout(pages) else {
            crate::fatal::stop(format_args!(
                "virtio asked for an impossible DMA size ({pages} pages)"
            ));
        };
        // SAFETY: the layout has a non-zero size (pages >= 1 for every virtqueue).
        let ptr = unsafe { alloc::alloc::alloc_zeroed(layout) };
        match NonNull::new(ptr) {
            Some(ptr) => (ptr.as_ptr() as PhysAddr, ptr),
            None => crate::fatal::stop(format_args!(
                "out of memory allocating {} KiB of virtio queue memory (give the VM more RAM)",
                pages * PAGE_SIZE / 1024
            )),
        }
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        if let Some(layout) = dma_layout(pages) {
            // SAFETY: `vaddr` came from `dma_alloc` with this same layout (the caller's promise).
            unsafe { alloc::alloc::dealloc(vaddr.as_ptr(), layout) };
        }
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        let Some(virt) = NonNull::new(paddr as *mut u8) else {
            crate::fatal::stop(format_args!("a virtio device named registers at address 0"));
        };
        if let Err(e) = paging::map_device(paddr, size as u64) {
            crate::fatal::stop(format_args!(
                "cannot map device registers at {paddr:#x}: {e}"
            ));
        }
        virt
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.as_ptr() as *mut u8 as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}
