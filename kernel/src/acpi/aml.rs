//! The few facts read from the DSDT's AML without an interpreter.
//!
//! These are byte-pattern matches over the AML stream, bounded by its length, for objects
//! that firmware (QEMU's, and most others) declares in one fixed, simple form:
//! - `Name (_S5, Package () { SLP_TYPa, SLP_TYPb, ... })` — the sleep type for soft-off;
//! - the Generic Event Device (`ACPI0013`, hardware-reduced machines such as `microvm`):
//!   its interrupt (an Extended Interrupt resource) and its event register (an
//!   `OperationRegion` in system memory named `EREG`), through which the power button is
//!   signalled;
//! - virtio-mmio devices (`LNRO0005`, `microvm` with ACPI): each one's register window (a
//!   Memory32Fixed resource) and interrupt (an Extended Interrupt resource).

const NAME_OP: u8 = 0x08;
const PACKAGE_OP: u8 = 0x12;
const ZERO_OP: u8 = 0x00;
const ONE_OP: u8 = 0x01;
const BYTE_PREFIX: u8 = 0x0a;
const WORD_PREFIX: u8 = 0x0b;
const DWORD_PREFIX: u8 = 0x0c;
const QWORD_PREFIX: u8 = 0x0e;
const EXT_OP_PREFIX: u8 = 0x5b;
const OP_REGION_OP: u8 = 0x80;
const EXTENDED_INTERRUPT: u8 = 0x89;
const SYSTEM_MEMORY: u8 = 0x00;
const MEMORY32_FIXED: u8 = 0x86;
/// Most virtio-mmio devices read from the DSDT.
pub const MAX_VIRTIO_MMIO: usize = 32;

/// Where the Generic Event Device lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GedResources {
    /// Physical address of the event selector register (32-bit, cleared on read).
    pub event_register: u64,
    /// The GSI it interrupts on.
    pub gsi: u32,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Decodes a byte-sized integer term (`Zero`, `One`, `BytePrefix n`); returns it and its length.
fn small_integer(aml: &[u8]) -> Option<(u8, usize)> {
    match *aml.first()? {
        ZERO_OP => Some((0, 1)),
        ONE_OP => Some((1, 1)),
        BYTE_PREFIX => Some((*aml.get(1)?, 2)),
        _ => None,
    }
}

/// Decodes an integer term of any width; returns it and its length.
fn integer(aml: &[u8]) -> Option<(u64, usize)> {
    let le = |n: usize| -> Option<u64> {
        let bytes = aml.get(1..1 + n)?;
        Some(
            bytes
                .iter()
                .rev()
                .fold(0u64, |acc, b| (acc << 8) | *b as u64),
        )
    };
    match *aml.first()? {
        WORD_PREFIX => Some((le(2)?, 3)),
        DWORD_PREFIX => Some((le(4)?, 5)),
        QWORD_PREFIX => Some((le(8)?, 9)),
        _ => small_integer(aml).map(|(v, len)| (v as u64, len)),
    }
}

/// The `\_S5` sleep type values, if the DSDT declares them.
pub fn sleep_type_s5(aml: &[u8]) -> Option<(u8, u8)> {
    let at = find(aml, b"_S5_")?;
    // `Name` must precede the name (possibly with a root/parent prefix in between).
    let declared = aml.get(at.checked_sub(1)?).copied() == Some(NAME_OP)
        || (at >= 2 && aml[at - 2] == NAME_OP && matches!(aml[at - 1], b'\\' | b'^'));
    if !declared {
        return None;
    }
    let rest = aml.get(at + 4..)?;
    if *rest.first()? != PACKAGE_OP {
        return None;
    }
    // PkgLength: the top two bits of its lead byte count the bytes that follow it.
    let pkg_len_bytes = 1 + (*rest.get(1)? >> 6) as usize;
    let elements = rest.get(1 + pkg_len_bytes + 1..)?;
    let (a, len_a) = small_integer(elements)?;
    let (b, _) = small_integer(elements.get(len_a..)?).unwrap_or((a, 0));
    Some((a & 7, b & 7))
}

/// A virtio-mmio device declared in the DSDT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioMmioResources {
    /// Register window base.
    pub base: u64,
    /// Register window size.
    pub size: u64,
    /// Interrupt (GSI).
    pub gsi: u32,
}

/// The first Memory32Fixed and Extended Interrupt resources at or after `from`, searching at
/// most `window` bytes.
fn memory_and_interrupt(aml: &[u8], from: usize, window: usize) -> Option<(u64, u64, u32)> {
    let end = (from + window).min(aml.len());
    let region = aml.get(from..end)?;
    let mut memory = None;
    let mut interrupt = None;
    for at in 0..region.len() {
        let rest = &region[at..];
        if memory.is_none()
            && rest.len() >= 12
            && rest[0] == MEMORY32_FIXED
            && rest[1] == 9
            && rest[2] == 0
        {
            let base = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as u64;
            let size = u32::from_le_bytes([rest[8], rest[9], rest[10], rest[11]]) as u64;
            memory = Some((base, size));
        }
        if interrupt.is_none()
            && rest.len() >= 9
            && rest[0] == EXTENDED_INTERRUPT
            && rest[1] == 6
            && rest[2] == 0
            && rest[4] == 1
        {
            interrupt = Some(u32::from_le_bytes([rest[5], rest[6], rest[7], rest[8]]));
        }
        if let (Some((base, size)), Some(gsi)) = (memory, interrupt) {
            return Some((base, size, gsi));
        }
    }
    None
}

/// The virtio-mmio devices (`LNRO0005`) the DSDT declares, in DSDT order.
pub fn virtio_mmio_devices(aml: &[u8]) -> ([Option<VirtioMmioResources>; MAX_VIRTIO_MMIO], usize) {
    let mut found = [None; MAX_VIRTIO_MMIO];
    let mut count = 0;
    let mut search = 0;
    while count < MAX_VIRTIO_MMIO {
        let Some(offset) = aml.get(search..).and_then(|rest| find(rest, b"LNRO0005")) else {
            break;
        };
        let at = search + offset;
        // The device's _CRS follows its _HID within a few dozen bytes.
        if let Some((base, size, gsi)) = memory_and_interrupt(aml, at, 96) {
            found[count] = Some(VirtioMmioResources { base, size, gsi });
            count += 1;
        }
        search = at + 8;
    }
    (found, count)
}

/// The Generic Event Device's event register and interrupt, if the DSDT has one.
pub fn generic_event_device(aml: &[u8]) -> Option<GedResources> {
    let hid = find(aml, b"ACPI0013")?;
    let after_hid = &aml[hid..];
    // The event register: OperationRegion (EREG, SystemMemory, address, length).
    let region = find(after_hid, b"EREG")?;
    let op = hid + region;
    if op < 2 || aml[op - 2] != EXT_OP_PREFIX || aml[op - 1] != OP_REGION_OP {
        return None;
    }
    if *aml.get(op + 4)? != SYSTEM_MEMORY {
        return None;
    }
    let (event_register, _) = integer(aml.get(op + 5..)?)?;
    // The interrupt: the first Extended Interrupt descriptor after the HID.
    let mut search = hid;
    let gsi = loop {
        let at = search + find(aml.get(search..)?, &[EXTENDED_INTERRUPT])?;
        let descriptor = aml.get(at..at + 9)?;
        // Length 6 (one interrupt), then flags, count 1, then the 32-bit interrupt number.
        if descriptor[1] == 6 && descriptor[2] == 0 && descriptor[4] == 1 {
            break u32::from_le_bytes([descriptor[5], descriptor[6], descriptor[7], descriptor[8]]);
        }
        search = at + 1;
    };
    Some(GedResources {
        event_register,
        gsi,
    })
}
