//! Memory-mapped device registers: one bounds-checked window type, so that drivers never
//! write raw pointers of their own.

use crate::memory::paging;

/// A window of device registers `[base, base + len)`, identity-mapped uncached.
#[derive(Debug)]
pub struct MmioRegion {
    base: u64,
    len: u64,
}

impl MmioRegion {
    /// Maps `len` bytes of device registers at physical address `base`.
    ///
    /// # Safety
    /// `[base, base + len)` must be the registers of one device (a BAR's range, a firmware-
    /// named window), not RAM, and only the returned window (and windows split from it) may
    /// access them.
    pub unsafe fn map(base: u64, len: u64) -> Result<MmioRegion, paging::PagingError> {
        if base == 0 || base.checked_add(len).is_none() {
            return Err(paging::PagingError::Conflict(base));
        }
        paging::map_device(base, len)?;
        Ok(MmioRegion { base, len })
    }

    /// Length of the window in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// A window over `[offset, offset + len)` of this one, if it fits.
    pub fn split(&self, offset: u64, len: u64) -> Option<MmioRegion> {
        let end = offset.checked_add(len)?;
        (end <= self.len).then(|| MmioRegion {
            base: self.base + offset,
            len,
        })
    }

    /// The address of an access of `width` bytes at `offset`. A driver that reaches outside
    /// its window is a kernel bug: the kernel stops rather than touch memory it does not own.
    fn address(&self, offset: u64, width: u64) -> u64 {
        let fits =
            offset % width == 0 && offset.checked_add(width).is_some_and(|end| end <= self.len);
        if !fits {
            crate::fatal::stop(format_args!(
                "device register access at {offset:#x} (+{width}) outside the {:#x}-byte window at {:#x}",
                self.len, self.base
            ));
        }
        self.base + offset
    }

    /// Reads the 8-bit register at `offset`.
    pub fn read_u8(&self, offset: u64) -> u8 {
        let address = self.address(offset, 1);
        // SAFETY: `address` lies inside the mapped register window (checked above), which
        // `map`'s caller promised is device registers owned by this window.
        unsafe { (address as *const u8).read_volatile() }
    }

    /// Reads the naturally aligned 16-bit register at `offset`.
    pub fn read_u16(&self, offset: u64) -> u16 {
        let address = self.address(offset, 2);
        // SAFETY: as in `read_u8`; the address is 2-byte aligned (checked).
        unsafe { (address as *const u16).read_volatile() }
    }

    /// Reads the naturally aligned 32-bit register at `offset`.
    pub fn read_u32(&self, offset: u64) -> u32 {
        let address = self.address(offset, 4);
        // SAFETY: as in `read_u8`; the address is 4-byte aligned (checked).
        unsafe { (address as *const u32).read_volatile() }
    }

    /// Writes the 8-bit register at `offset`.
    pub fn write_u8(&self, offset: u64, value: u8) {
        let address = self.address(offset, 1);
        // SAFETY: as in `read_u8`; what the write does to the device is the caller's intent.
        unsafe { (address as *mut u8).write_volatile(value) }
    }

    /// Writes the naturally aligned 16-bit register at `offset`.
    pub fn write_u16(&self, offset: u64, value: u16) {
        let address = self.address(offset, 2);
        // SAFETY: as in `write_u8`; the address is 2-byte aligned (checked).
        unsafe { (address as *mut u16).write_volatile(value) }
    }

    /// Writes the naturally aligned 32-bit register at `offset`.
    pub fn write_u32(&self, offset: u64, value: u32) {
        let address = self.address(offset, 4);
        // SAFETY: as in `write_u8`; the address is 4-byte aligned (checked).
        unsafe { (address as *mut u32).write_volatile(value) }
    }
}
