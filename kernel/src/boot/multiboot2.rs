//! The Multiboot2 boot information (the Multiboot2 specification, section 3.6).

use super::{reachable, BootInfo, BootInfoError, BootProtocol};

const TAG_END: u32 = 0;
const TAG_CMDLINE: u32 = 1;
const TAG_MEMORY_MAP: u32 = 6;
const TAG_ACPI_OLD: u32 = 14;
const TAG_ACPI_NEW: u32 = 15;

/// A copy of the RSDP from the ACPI tag (GRUB passes a copy, not its address).
static mut RSDP_COPY: [u8; 64] = [0; 64];

/// Reads the boot information at `addr`.
///
/// # Safety
/// `addr` must be the `%ebx` GRUB passed, with the early identity map active, and this must
/// run once, before anything else uses `RSDP_COPY`.
pub(super) unsafe fn read(addr: u64) -> Result<BootInfo, BootInfoError> {
    reachable(addr, 8)?;
    // SAFETY: the first word of the boot information is its total size.
    let total = unsafe { (addr as *const u32).read_unaligned() } as u64;
    reachable(addr, total)?;
    let end = addr + total;
    let mut boot = BootInfo::empty(BootProtocol::Multiboot2);
    let mut tag = addr + 8;
    while tag + 8 <= end {
        // SAFETY: `tag..tag+8` lies inside the boot information (checked by the loop bound).
        let (kind, size) = unsafe {
            (
                (tag as *const u32).read_unaligned(),
                ((tag + 4) as *const u32).read_unaligned(),
            )
        };
        let size = size as u64;
        if kind == TAG_END || size < 8 || tag + size > end {
            break;
        }
        let body = tag + 8;
        let body_len = (size - 8) as usize;
        // SAFETY: the tag's body lies inside the boot information (checked just above), which
        // nobody writes while we read it.
        let bytes = unsafe { core::slice::from_raw_parts(body as *const u8, body_len) };
        match kind {
            TAG_CMDLINE => {
                let text = bytes.split(|b| *b == 0).next().unwrap_or(&[]);
                boot.set_cmdline(text);
            }
            TAG_MEMORY_MAP if body_len >= 8 => {
                let entry_size =
                    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
                if entry_size >= 20 {
                    for entry in bytes[8..].chunks_exact(entry_size) {
                        let field = |at: usize| {
                            u64::from_le_bytes(entry[at..at + 8].try_into().unwrap_or([0; 8]))
                        };
                        let kind = u32::from_le_bytes(entry[16..20].try_into().unwrap_or([0; 4]));
                        boot.push_region(field(0), field(8), kind);
                    }
                }
            }
            // Prefer the ACPI 2.0+ copy when both tags are present.
            TAG_ACPI_OLD | TAG_ACPI_NEW
                if body_len >= 20 && (kind == TAG_ACPI_NEW || boot.rsdp.is_none()) =>
            {
                let len = body_len.min(64);
                // SAFETY: single-threaded early boot; RSDP_COPY is written only here, before
                // anyone reads it through `boot.rsdp`.
                let copy = unsafe { &mut *core::ptr::addr_of_mut!(RSDP_COPY) };
                copy[..len].copy_from_slice(&bytes[..len]);
                boot.rsdp = Some(copy.as_ptr() as u64);
            }
            _ => {}
        }
        tag += (size + 7) & !7;
    }
    Ok(boot)
}
