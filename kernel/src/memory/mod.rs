//! Physical memory, the heap and the page tables.
//!
//! At boot, [`init`] takes the memory map, carves out what is already in use (the first
//! 64 KiB, the BIOS area below 1 MiB, the kernel image), keeps a small pool of page frames
//! for page tables ([`frames`]) in the smallest free region that holds it — on a PC, the
//! memory below 640 KiB, which nothing else would use — gives the largest region to the
//! heap ([`heap`]) and switches to page tables that enforce W^X with a guard page under
//! the stack ([`paging`]).
//!
//! Everything is identity-mapped (virtual address = physical address), which keeps DMA
//! for virtio trivial: a heap buffer's address is what the device is given.

pub mod frames;
pub mod heap;
pub mod paging;

use crate::boot::{BootInfo, RegionKind};

/// Size of a small page.
pub const PAGE_SIZE: u64 = 4096;
/// Memory reserved for page-table frames (enough for MMIO mappings made after boot).
const FRAME_POOL: u64 = 512 * 1024;
/// The first 64 KiB are never used: real-mode structures and BIOS data (Linux keeps them
/// too, against firmware that writes there).
const LOW_RESERVED: u64 = 64 * 1024;
/// From here to 1 MiB: the extended BIOS data area, video memory and ROMs, whatever the
/// memory map says.
const BIOS_AREA: u64 = 0x9_f000;
/// Smallest heap worth booting with.
const MIN_HEAP: u64 = 2 * 1024 * 1024;
/// The early identity map covers the first 4 GiB; memory above it is not used.
pub const EARLY_MAP_LIMIT: u64 = 0x1_0000_0000;

unsafe extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
}

/// Where the kernel image lies in memory.
#[derive(Clone, Copy, Debug)]
pub struct KernelLayout {
    /// Start of the image (1 MiB).
    pub start: u64,
    /// Start and end of the executable part.
    pub text: (u64, u64),
    /// Start and end of the read-only data.
    pub rodata: (u64, u64),
    /// Start and end of data + bss.
    pub data: (u64, u64),
    /// Start and end (page-aligned) of the embedded policy, read-only.
    pub policy: (u64, u64),
    /// End of the image: the end of the policy, which comes last.
    pub end: u64,
    /// The unmapped page under the stack.
    pub stack_guard: u64,
}

impl KernelLayout {
    /// The layout from the linker script's symbols and the embedded policy's header. Only
    /// before [`init`], which may give the policy's pages to the heap.
    pub fn current() -> KernelLayout {
        let addr = |s: &u8| s as *const u8 as u64;
        let (policy_start, policy_len) = crate::embedded_policy::extent();
        let policy = (
            policy_start,
            (policy_start + policy_len as u64).next_multiple_of(PAGE_SIZE),
        );
        // SAFETY: these are linker-defined symbols; only their addresses are taken.
        unsafe {
            KernelLayout {
                start: addr(&__kernel_start),
                text: (addr(&__text_start), addr(&__text_end)),
                rodata: (addr(&__rodata_start), addr(&__rodata_end)),
                data: (addr(&__data_start), addr(&__kernel_end)),
                policy,
                end: policy.1,
                stack_guard: addr(&crate::boot::entry::boot_stack_guard),
            }
        }
    }
}

/// What [`init`] reports for the banner.
#[derive(Clone, Copy, Debug)]
pub struct MemorySummary {
    /// Usable RAM reported by the boot loader, in bytes.
    pub usable: u64,
    /// Bytes given to the heap.
    pub heap: u64,
    /// Usable bytes ignored because they lie above the first 4 GiB.
    pub ignored_high: u64,
    /// Where the embedded policy blob is now (see [`init`]).
    pub policy_at: u64,
    /// Bytes (whole pages) the heap takes once the policy is decoded
    /// ([`release_policy`]): the moved blob's copy; 0 when it was not moved.
    pub policy_spare: u64,
}

/// Why memory could not be set up.
#[derive(Debug)]
pub enum MemoryError {
    /// No usable region is large enough for the frame pool and a minimal heap.
    TooLittleMemory {
        /// Largest usable region found, in bytes.
        largest: u64,
    },
    /// Building the page tables failed.
    Paging(paging::PagingError),
}

impl core::fmt::Display for MemoryError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            MemoryError::TooLittleMemory { largest } => write!(
                f,
                "not enough memory: the largest free region is {} KiB; give the VM more RAM (-m)",
                largest / 1024
            ),
            MemoryError::Paging(e) => write!(f, "page tables: {e:?}"),
        }
    }
}

/// Sets up frames, heap and page tables from the boot memory map.
///
/// The embedded policy blob lies right after the kernel, where the heap's region usually
/// begins. Its pages are not lost to the heap: the blob is copied to the top of the heap's
/// region and the heap starts at the blob's original place; once the policy is decoded,
/// [`release_policy`] gives the copy's pages to the heap too. Where the heap's region does
/// not begin right after the blob, the blob stays where it is, read-only.
pub fn init(boot: &BootInfo) -> Result<MemorySummary, MemoryError> {
    let layout = KernelLayout::current();
    let mut free = frames::FreeRegions::new();
    let mut ignored_high = 0;
    for region in boot
        .regions()
        .iter()
        .filter(|r| r.kind == RegionKind::Usable)
    {
        if region.end > EARLY_MAP_LIMIT {
            ignored_high += region.end - region.start.max(EARLY_MAP_LIMIT);
        }
        free.add(region.start, region.end.min(EARLY_MAP_LIMIT));
    }
    free.remove(0, LOW_RESERVED);
    free.remove(BIOS_AREA, 0x10_0000);
    free.remove(layout.start, layout.end);

    let (start, end) = free.largest();
    let (pool_start, mut heap_start) = match free.smallest_other_holding(FRAME_POOL) {
        Some(pool_start) => (pool_start, start),
        None => (start, start + FRAME_POOL),
    };
    let (policy_start, policy_end) = layout.policy;
    let policy_pages = policy_end - policy_start;
    let mut heap_end = end;
    let mut policy_at = policy_start;
    if heap_start == policy_end && end - heap_start >= policy_pages + MIN_HEAP {
        heap_end = end - policy_pages;
        // SAFETY: the source is the policy segment the boot loader loaded (whole pages, all
        // RAM); the destination is the top of the heap's free region, usable RAM below 4 GiB
        // (identity-mapped by the early tables) that nothing uses yet, and the two do not
        // overlap (`heap_end >= policy_end`).
        unsafe {
            core::ptr::copy_nonoverlapping(
                policy_start as *const u8,
                heap_end as *mut u8,
                policy_pages as usize,
            )
        };
        policy_at = heap_end;
        heap_start = policy_start;
    }
    let heap = heap_end.saturating_sub(heap_start);
    if heap < MIN_HEAP {
        return Err(MemoryError::TooLittleMemory {
            largest: end - start,
        });
    }
    frames::init(pool_start, pool_start + FRAME_POOL);
    // SAFETY: `heap_start..heap_end` is usable RAM (memory map; when the policy blob was
    // moved, its original pages, loaded by the boot loader and no longer read), below 4 GiB
    // so identity-mapped by the early tables, outside the frame pool and no longer in the
    // free list: nothing else will use it.
    unsafe { heap::init(heap_start, heap) };
    let policy_is_heap = policy_at != policy_start;
    paging::init(&layout, boot, policy_is_heap).map_err(MemoryError::Paging)?;
    Ok(MemorySummary {
        usable: boot.usable_bytes(),
        heap,
        ignored_high,
        policy_at,
        policy_spare: if policy_is_heap { policy_pages } else { 0 },
    })
}

/// Gives the pages of the moved policy blob (`summary.policy_spare` bytes right above the
/// heap, see [`init`]) to the heap. Call once, after the policy is decoded: the blob must
/// not be read again.
pub fn release_policy(summary: &MemorySummary) {
    if summary.policy_spare > 0 {
        // SAFETY: `init` made the heap end exactly where the blob's copy begins, and the copy
        // (whole pages of usable RAM, mapped read-write like the rest of the heap's region)
        // is no longer read: the caller has decoded it.
        unsafe { heap::extend(summary.policy_spare) };
    }
}
