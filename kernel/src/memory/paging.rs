//! The kernel's page tables: identity-mapped, W^X, with a guard page under the stack.
//!
//! The boot code's temporary tables map the first 4 GiB read-write-execute with 2 MiB
//! pages. [`init`] replaces them with tables where
//! - kernel text is read + execute, rodata read-only, data/bss/heap read-write + no-execute;
//! - the page under the boot stack is not mapped, so a stack overflow faults (and is
//!   reported through the double-fault handler's own stack) instead of corrupting memory;
//! - page 0 is not mapped, so null dereferences fault;
//! - RAM uses 2 MiB pages where alignment allows.
//!
//! Device memory (LAPIC, IOAPIC, PCI ECAM and BARs, virtio-mmio) and firmware tables are
//! mapped later, on demand, with [`map_device`] and [`map_firmware`].

use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::mapper::{MapToError, TranslateResult};
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags as Flags, PhysFrame,
    Size2MiB, Size4KiB, Translate,
};
use x86_64::{PhysAddr, VirtAddr};

use super::frames::PoolAllocator;
use super::{KernelLayout, PAGE_SIZE};
use crate::boot::{BootInfo, RegionKind};
use crate::interrupts::MainLock;

const HUGE: u64 = 2 * 1024 * 1024;

/// Why a mapping could not be made.
#[derive(Debug, Clone, Copy)]
pub enum PagingError {
    /// The frame pool for page tables is exhausted.
    OutOfFrames,
    /// The address is already mapped in an incompatible way (inside a huge page).
    Conflict(u64),
    /// Mapping requested before [`init`].
    NotReady,
}

impl<S: x86_64::structures::paging::PageSize> From<MapToError<S>> for PagingError {
    fn from(e: MapToError<S>) -> PagingError {
        match e {
            MapToError::FrameAllocationFailed => PagingError::OutOfFrames,
            MapToError::ParentEntryHugePage | MapToError::PageAlreadyMapped(_) => {
                PagingError::Conflict(0)
            }
        }
    }
}

impl core::fmt::Display for PagingError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            PagingError::OutOfFrames => f.write_str("out of page-table frames"),
            PagingError::Conflict(addr) => {
                write!(f, "address {addr:#x} is already mapped differently")
            }
            PagingError::NotReady => f.write_str("page tables not set up yet"),
        }
    }
}

static TABLES: MainLock<Option<OffsetPageTable<'static>>> = MainLock::new("the page tables", None);

const RW_NX: Flags = Flags::PRESENT
    .union(Flags::WRITABLE)
    .union(Flags::NO_EXECUTE);
const RO_NX: Flags = Flags::PRESENT.union(Flags::NO_EXECUTE);
const RX: Flags = Flags::PRESENT;
const DEVICE: Flags = RW_NX.union(Flags::NO_CACHE).union(Flags::WRITE_THROUGH);

/// Builds the final page tables and switches to them.
pub fn init(
    layout: &KernelLayout,
    boot: &BootInfo,
    policy_is_heap: bool,
) -> Result<(), PagingError> {
    let pml4_frame = PoolAllocator
        .allocate_frame()
        .ok_or(PagingError::OutOfFrames)?;
    let pml4_addr = pml4_frame.start_address().as_u64();
    // SAFETY: the frame is fresh, zeroed, identity-mapped pool memory used only as this PML4.
    let pml4 = unsafe { &mut *(pml4_addr as *mut PageTable) };
    // SAFETY: physical memory is identity-mapped (offset 0) both by the early tables and by
    // the tables being built, which map every frame the pool hands out.
    let mut tables = unsafe { OffsetPageTable::new(pml4, VirtAddr::new(0)) };

    // Low memory except page 0: BIOS data and the area where an RSDP may be found.
    map_range(&mut tables, PAGE_SIZE, layout.start, RW_NX, false)?;
    // The kernel image, section by section.
    map_range(&mut tables, layout.start, layout.text.0, RX, false)?;
    map_range(&mut tables, layout.text.0, layout.text.1, RX, false)?;
    map_range(&mut tables, layout.rodata.0, layout.rodata.1, RO_NX, false)?;
    map_range(&mut tables, layout.data.0, layout.stack_guard, RW_NX, false)?;
    map_range(
        &mut tables,
        layout.stack_guard + PAGE_SIZE,
        layout.data.1,
        RW_NX,
        false,
    )?;
    // The embedded policy: read-only, unless the heap took its pages (`memory::init`).
    let policy_flags = if policy_is_heap { RW_NX } else { RO_NX };
    map_range(
        &mut tables,
        layout.policy.0,
        layout.policy.1,
        policy_flags,
        false,
    )?;
    // All other RAM below 4 GiB (the heap, the frame pool, ACPI tables).
    for region in boot.regions() {
        if region.kind == RegionKind::Reserved {
            continue;
        }
        let end = region.end.min(super::EARLY_MAP_LIMIT);
        let start = region.start.max(layout.start);
        if start >= end {
            continue;
        }
        // Around the kernel image, which is already mapped.
        if start < layout.start.max(start) || end <= layout.start || start >= layout.end {
            map_range(&mut tables, start, end, RW_NX, true)?;
        } else {
            map_range(&mut tables, start, layout.start, RW_NX, true)?;
            map_range(&mut tables, layout.end, end, RW_NX, true)?;
        }
    }

    // SAFETY: the new tables map everything the kernel touches from here on: its image
    // (with the same addresses), its stack (except the guard page), the heap and the pool.
    unsafe { Cr3::write(pml4_frame, Cr3Flags::empty()) };
    *TABLES.lock() = Some(tables);
    Ok(())
}

/// Identity-maps `[start, end)` with `flags`, using 2 MiB pages where allowed and aligned.
/// Pages that are already mapped are left as they are.
fn map_range(
    tables: &mut OffsetPageTable<'static>,
    start: u64,
    end: u64,
    flags: Flags,
    allow_huge: bool,
) -> Result<(), PagingError> {
    let mut addr = start / PAGE_SIZE * PAGE_SIZE;
    while addr < end {
        if allow_huge
            && addr % HUGE == 0
            && addr + HUGE <= end
            && nothing_mapped_in_huge_page(tables, addr)
        {
            let page = Page::<Size2MiB>::containing_address(VirtAddr::new(addr));
            let frame = PhysFrame::<Size2MiB>::containing_address(PhysAddr::new(addr));
            // SAFETY: identity mapping of RAM or device memory that nothing else maps.
            unsafe {
                tables
                    .map_to(page, frame, flags, &mut PoolAllocator)?
                    .ignore()
            };
            addr += HUGE;
            continue;
        }
        match tables.translate(VirtAddr::new(addr)) {
            TranslateResult::NotMapped => {
                let page = Page::<Size4KiB>::containing_address(VirtAddr::new(addr));
                let frame = PhysFrame::<Size4KiB>::containing_address(PhysAddr::new(addr));
                // SAFETY: identity mapping of memory that is not mapped yet.
                let flush = unsafe { tables.map_to(page, frame, flags, &mut PoolAllocator) }
                    .map_err(|e| match PagingError::from(e) {
                        PagingError::Conflict(_) => PagingError::Conflict(addr),
                        other => other,
                    })?;
                flush.flush();
            }
            TranslateResult::Mapped { .. } => {}
            TranslateResult::InvalidFrameAddress(_) => return Err(PagingError::Conflict(addr)),
        }
        addr += PAGE_SIZE;
    }
    Ok(())
}

/// Whether nothing at all is mapped in the 2 MiB page at `addr` (2 MiB-aligned): the walk
/// down to its level-2 entry meets an absent entry. A level-2 entry in use — a huge page,
/// or a table of small pages, some of which may be mapped — counts as mapped. Reads three
/// entries, where translating each small page of the range would walk 512 times.
fn nothing_mapped_in_huge_page(tables: &OffsetPageTable<'static>, addr: u64) -> bool {
    let page = Page::<Size2MiB>::containing_address(VirtAddr::new(addr));
    let level_4 = &tables.level_4_table()[page.p4_index()];
    if level_4.is_unused() {
        return true;
    }
    // SAFETY: memory is identity-mapped (the table's offset is 0), and a used level-4
    // entry points at a level-3 table this module built from the frame pool.
    let level_3 = unsafe { &*(level_4.addr().as_u64() as *const PageTable) };
    let entry = &level_3[page.p3_index()];
    if entry.is_unused() {
        return true;
    }
    if entry.flags().contains(Flags::HUGE_PAGE) {
        return false;
    }
    // SAFETY: as above: a used level-3 entry that is not a 1 GiB page points at a level-2
    // table from the frame pool.
    let level_2 = unsafe { &*(entry.addr().as_u64() as *const PageTable) };
    level_2[page.p2_index()].is_unused()
}

fn map_after_init(start: u64, len: u64, flags: Flags) -> Result<(), PagingError> {
    let mut guard = TABLES.lock();
    let tables = guard.as_mut().ok_or(PagingError::NotReady)?;
    map_range(
        tables,
        start,
        start.saturating_add(len.max(1)),
        flags,
        false,
    )
}

/// Identity-maps device registers at `[phys, phys + len)`: read-write, uncached, no-execute.
pub fn map_device(phys: u64, len: u64) -> Result<(), PagingError> {
    map_after_init(phys, len, DEVICE)
}

/// Identity-maps firmware tables (ACPI) at `[phys, phys + len)`: read-only, no-execute.
pub fn map_firmware(phys: u64, len: u64) -> Result<(), PagingError> {
    map_after_init(phys, len, RO_NX)
}

/// Whether `addr` lies in the stack guard page (for fault reports).
pub fn is_stack_guard(addr: u64) -> bool {
    // The guard's address only: `KernelLayout::current` would read the policy's header,
    // whose page the heap may own by now.
    let guard = (&raw const crate::boot::entry::boot_stack_guard) as u64;
    (guard..guard + PAGE_SIZE).contains(&addr)
}
