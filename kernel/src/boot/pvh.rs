//! The PVH `hvm_start_info` structure (xen/include/public/arch-x86/hvm/start_info.h).

use super::{c_string, reachable, BootInfo, BootInfoError, BootProtocol, MAX_CMDLINE};

const START_INFO_MAGIC: u32 = 0x336e_c578;

#[repr(C)]
#[derive(Clone, Copy)]
struct StartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
    memmap_paddr: u64,
    memmap_entries: u32,
    reserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct MemmapEntry {
    addr: u64,
    size: u64,
    kind: u32,
    reserved: u32,
}

/// Reads the start info at `addr`.
///
/// # Safety
/// `addr` must be the `%ebx` the PVH loader passed, with the early identity map active.
pub(super) unsafe fn read(addr: u64) -> Result<BootInfo, BootInfoError> {
    reachable(addr, core::mem::size_of::<StartInfo>() as u64)?;
    // SAFETY: the loader put a start-info structure there; it is reachable (checked above).
    let start = unsafe { (addr as *const StartInfo).read_unaligned() };
    if start.magic != START_INFO_MAGIC {
        return Err(BootInfoError::BadPvhMagic(start.magic));
    }
    let mut boot = BootInfo::empty(BootProtocol::Pvh);
    if start.cmdline_paddr != 0 {
        reachable(start.cmdline_paddr, 1)?;
        // SAFETY: the loader's command line is a NUL-terminated string at that address.
        boot.set_cmdline(unsafe { c_string(start.cmdline_paddr, MAX_CMDLINE) });
    }
    if start.rsdp_paddr != 0 {
        boot.rsdp = Some(start.rsdp_paddr);
    }
    // The memory map exists from version 1 of the structure.
    if start.version >= 1 && start.memmap_paddr != 0 {
        let entries = start.memmap_entries.min(super::MAX_REGIONS as u32) as u64;
        reachable(
            start.memmap_paddr,
            entries * core::mem::size_of::<MemmapEntry>() as u64,
        )?;
        for i in 0..entries as usize {
            // SAFETY: `entries` entries follow `memmap_paddr` (loader's promise, bounds checked).
            let entry = unsafe {
                (start.memmap_paddr as *const MemmapEntry)
                    .add(i)
                    .read_unaligned()
            };
            boot.push_region(entry.addr, entry.size, entry.kind);
        }
    }
    Ok(boot)
}
