//! Boot: the entry points and the normalised boot information.
//!
//! Whatever loaded the kernel (a PVH loader or a Multiboot2 boot loader), [`BootInfo`] is
//! what the rest of the kernel sees: the memory map, the command line and where the ACPI
//! RSDP is. It is copied out of the loader's structures before any memory is allocated, so
//! those structures may be overwritten afterwards.

pub mod entry;
mod multiboot2;
mod pvh;

use core::fmt;

/// Most memory-map regions kept (QEMU gives fewer than ten).
pub const MAX_REGIONS: usize = 64;
/// Longest command line kept, in bytes.
pub const MAX_CMDLINE: usize = 2048;

/// Which protocol entered the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootProtocol {
    /// The Xen PVH direct-boot protocol (`qemu -kernel`).
    Pvh,
    /// Multiboot2 (GRUB from the disk image).
    Multiboot2,
}

impl fmt::Display for BootProtocol {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            BootProtocol::Pvh => "pvh",
            BootProtocol::Multiboot2 => "multiboot2",
        })
    }
}

/// Type of a memory-map region (E820 numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// Usable RAM.
    Usable,
    /// ACPI tables, reclaimable after they are read.
    AcpiReclaimable,
    /// Anything else: reserved, ACPI NVS, bad memory.
    Reserved,
}

impl RegionKind {
    fn from_e820(kind: u32) -> RegionKind {
        match kind {
            1 => RegionKind::Usable,
            3 => RegionKind::AcpiReclaimable,
            _ => RegionKind::Reserved,
        }
    }
}

/// One physical memory region `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// What it is.
    pub kind: RegionKind,
}

/// The boot loader's information, normalised and copied into kernel memory.
pub struct BootInfo {
    /// How the kernel was entered.
    pub protocol: BootProtocol,
    regions: [Region; MAX_REGIONS],
    region_count: usize,
    cmdline: [u8; MAX_CMDLINE],
    cmdline_len: usize,
    /// Physical address of the ACPI RSDP, if the loader gave one (else it is searched for).
    pub rsdp: Option<u64>,
}

/// Why the boot information could not be read.
#[derive(Clone, Copy, Debug)]
pub enum BootInfoError {
    /// The protocol tag passed by the entry code is unknown.
    UnknownProtocol(u32),
    /// The PVH start-info magic is wrong.
    BadPvhMagic(u32),
    /// The structure lies outside the identity-mapped first 4 GiB.
    OutOfReach(u64),
    /// No usable memory was reported.
    NoMemoryMap,
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            BootInfoError::UnknownProtocol(p) => write!(f, "unknown boot protocol tag {p}"),
            BootInfoError::BadPvhMagic(m) => write!(f, "PVH start info has bad magic {m:#x}"),
            BootInfoError::OutOfReach(a) => write!(f, "boot structure at {a:#x} is above 4 GiB"),
            BootInfoError::NoMemoryMap => f.write_str("the boot loader reported no usable memory"),
        }
    }
}

impl BootInfo {
    const fn empty(protocol: BootProtocol) -> BootInfo {
        BootInfo {
            protocol,
            regions: [Region {
                start: 0,
                end: 0,
                kind: RegionKind::Reserved,
            }; MAX_REGIONS],
            region_count: 0,
            cmdline: [0; MAX_CMDLINE],
            cmdline_len: 0,
            rsdp: None,
        }
    }

    /// Reads the loader's structure at physical address `info`.
    ///
    /// # Safety
    /// `info` must be the address the boot loader passed for `protocol`, and the early
    /// identity map of the first 4 GiB must still be active.
    pub unsafe fn read(protocol: u32, info: u32) -> Result<BootInfo, BootInfoError> {
        let boot = match protocol {
            // SAFETY: forwarded from our caller.
            entry::BOOT_PVH => unsafe { pvh::read(info as u64)? },
            // SAFETY: forwarded from our caller.
            entry::BOOT_MULTIBOOT2 => unsafe { multiboot2::read(info as u64)? },
            other => return Err(BootInfoError::UnknownProtocol(other)),
        };
        if !boot.regions().iter().any(|r| r.kind == RegionKind::Usable) {
            return Err(BootInfoError::NoMemoryMap);
        }
        Ok(boot)
    }

    fn push_region(&mut self, start: u64, len: u64, e820_kind: u32) {
        if self.region_count < MAX_REGIONS && len > 0 {
            self.regions[self.region_count] = Region {
                start,
                end: start.saturating_add(len),
                kind: RegionKind::from_e820(e820_kind),
            };
            self.region_count += 1;
        }
    }

    fn set_cmdline(&mut self, bytes: &[u8]) {
        let len = bytes.len().min(MAX_CMDLINE);
        self.cmdline[..len].copy_from_slice(&bytes[..len]);
        // Keep only valid UTF-8 (a garbled command line is treated as its valid prefix).
        self.cmdline_len = match core::str::from_utf8(&self.cmdline[..len]) {
            Ok(_) => len,
            Err(e) => e.valid_up_to(),
        };
    }

    /// The memory map, in the loader's order.
    pub fn regions(&self) -> &[Region] {
        &self.regions[..self.region_count]
    }

    /// The kernel command line (empty if none).
    pub fn cmdline(&self) -> &str {
        core::str::from_utf8(&self.cmdline[..self.cmdline_len]).unwrap_or("")
    }

    /// Total usable RAM in bytes.
    pub fn usable_bytes(&self) -> u64 {
        self.regions()
            .iter()
            .filter(|r| r.kind == RegionKind::Usable)
            .map(|r| r.end - r.start)
            .sum()
    }
}

/// Reads a NUL-terminated string at physical `addr` (at most `max` bytes).
///
/// # Safety
/// `addr` must be identity-mapped and readable for the string's length.
unsafe fn c_string<'a>(addr: u64, max: usize) -> &'a [u8] {
    let ptr = addr as *const u8;
    let mut len = 0;
    // SAFETY: the caller guarantees the bytes up to the terminator are readable; we stop at
    // the first NUL or at `max`.
    while len < max && unsafe { ptr.add(len).read_volatile() } != 0 {
        len += 1;
    }
    // SAFETY: the `len` bytes just read are readable and not mutated while borrowed (the
    // loader's structures are not touched by anyone until BootInfo has copied them).
    unsafe { core::slice::from_raw_parts(ptr, len) }
}

/// Rejects structures the early identity map does not reach.
fn reachable(addr: u64, len: u64) -> Result<(), BootInfoError> {
    if addr == 0 || addr.saturating_add(len) > 0x1_0000_0000 {
        Err(BootInfoError::OutOfReach(addr))
    } else {
        Ok(())
    }
}
