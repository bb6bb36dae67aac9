//! Writes a compiled ruleset (the `rules compile` policy blob) into a kernel ELF.
//!
//! The kernel is linked with a last, read-only `PT_LOAD` segment that holds only the
//! section `.moat_policy`: a bare header that says "no ruleset" (see `kernel/linker.ld`).
//! [`embed`] appends the blob to the file, page-aligned, and points that section and that
//! segment at it, so every boot loader that loads the ELF's segments (QEMU's PVH loader,
//! GRUB's Multiboot2, Firecracker, Cloud Hypervisor) loads the ruleset right after the
//! kernel, where the kernel reads it. Nothing else in the file moves, so a ruleset change
//! costs the ruleset's compilation and this copy, never a kernel build.

use std::fmt;

/// The section the kernel's linker script reserves for the policy.
pub const POLICY_SECTION: &str = ".moat_policy";

/// File alignment of the appended blob: a page, the segment's alignment.
const PAGE: u64 = 4096;

/// ELF64 header fields used here: (offset, width) pairs.
const E_PHOFF: usize = 32;
const E_SHOFF: usize = 40;
const E_PHENTSIZE: usize = 54;
const E_PHNUM: usize = 56;
const E_SHENTSIZE: usize = 58;
const E_SHNUM: usize = 60;
const E_SHSTRNDX: usize = 62;
const EHDR_LEN: usize = 64;
/// Program header fields.
const P_TYPE: usize = 0;
const P_OFFSET: usize = 8;
const P_VADDR: usize = 16;
const P_FILESZ: usize = 32;
const P_MEMSZ: usize = 40;
const PHDR_LEN: usize = 56;
const PT_LOAD: u32 = 1;
/// Section header fields.
const SH_NAME: usize = 0;
const SH_ADDR: usize = 16;
const SH_OFFSET: usize = 24;
const SH_SIZE: usize = 32;
const SHDR_LEN: usize = 64;
const EM_X86_64: u16 = 62;

/// Why a policy cannot be written into an ELF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbedError {
    /// Not a little-endian 64-bit x86-64 ELF file.
    NotElf(&'static str),
    /// A header or table lies outside the file.
    Truncated(&'static str),
    /// The ELF has no `.moat_policy` section: not a Moat kernel.
    NoPolicySection,
    /// No loadable segment starts at the policy section.
    NoPolicySegment,
    /// Another loadable segment lies above the policy's, so it cannot grow.
    PolicyNotLast,
}

impl fmt::Display for EmbedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmbedError::NotElf(why) => write!(f, "not an x86-64 ELF kernel: {why}"),
            EmbedError::Truncated(what) => write!(f, "truncated ELF: its {what} runs past the end of the file"),
            EmbedError::NoPolicySection => write!(
                f,
                "not a Moat kernel: the ELF has no {POLICY_SECTION} section (see kernel/linker.ld)"
            ),
            EmbedError::NoPolicySegment => write!(
                f,
                "the ELF's {POLICY_SECTION} section is not the start of a loadable segment (see kernel/linker.ld)"
            ),
            EmbedError::PolicyNotLast => write!(
                f,
                "the ELF's {POLICY_SECTION} segment is not its last in memory, so it cannot grow (see kernel/linker.ld)"
            ),
        }
    }
}

impl std::error::Error for EmbedError {}

/// The kernel ELF `elf` with `blob` as the contents of its policy segment.
pub fn embed(elf: &[u8], blob: &[u8]) -> Result<Vec<u8>, EmbedError> {
    let layout = Layout::read(elf)?;
    let section = layout.policy_section(elf)?;
    let address = read_u64(elf, section + SH_ADDR)?;
    let segment = layout.policy_segment(elf, address)?;

    let mut out = elf.to_vec();
    out.resize((out.len() as u64).next_multiple_of(PAGE) as usize, 0);
    let offset = out.len() as u64;
    out.extend_from_slice(blob);
    let len = blob.len() as u64;
    write_u64(&mut out, segment + P_OFFSET, offset);
    write_u64(&mut out, segment + P_FILESZ, len);
    write_u64(&mut out, segment + P_MEMSZ, len);
    write_u64(&mut out, section + SH_OFFSET, offset);
    write_u64(&mut out, section + SH_SIZE, len);
    Ok(out)
}

/// Where the program and section header tables are.
struct Layout {
    phoff: usize,
    phnum: usize,
    shoff: usize,
    shnum: usize,
    shstrndx: usize,
}

impl Layout {
    fn read(elf: &[u8]) -> Result<Layout, EmbedError> {
        if elf.len() < EHDR_LEN || elf[..4] != *b"\x7fELF" {
            return Err(EmbedError::NotElf("no ELF magic"));
        }
        if elf[4] != 2 || elf[5] != 1 {
            return Err(EmbedError::NotElf("not 64-bit little-endian"));
        }
        if read_u16(elf, 18)? != EM_X86_64 {
            return Err(EmbedError::NotElf("not built for x86-64"));
        }
        if read_u16(elf, E_PHENTSIZE)? as usize != PHDR_LEN
            || read_u16(elf, E_SHENTSIZE)? as usize != SHDR_LEN
        {
            return Err(EmbedError::NotElf("unexpected header table entry sizes"));
        }
        let layout = Layout {
            phoff: to_usize(read_u64(elf, E_PHOFF)?)?,
            phnum: read_u16(elf, E_PHNUM)? as usize,
            shoff: to_usize(read_u64(elf, E_SHOFF)?)?,
            shnum: read_u16(elf, E_SHNUM)? as usize,
            shstrndx: read_u16(elf, E_SHSTRNDX)? as usize,
        };
        table_end(layout.phoff, layout.phnum, PHDR_LEN, elf.len())
            .ok_or(EmbedError::Truncated("program header table"))?;
        table_end(layout.shoff, layout.shnum, SHDR_LEN, elf.len())
            .ok_or(EmbedError::Truncated("section header table"))?;
        if layout.shstrndx >= layout.shnum {
            return Err(EmbedError::NotElf("no section name table"));
        }
        Ok(layout)
    }

    /// File offset of the policy section's header.
    fn policy_section(&self, elf: &[u8]) -> Result<usize, EmbedError> {
        let names = self.shoff + self.shstrndx * SHDR_LEN;
        let names_start = to_usize(read_u64(elf, names + SH_OFFSET)?)?;
        let names_len = to_usize(read_u64(elf, names + SH_SIZE)?)?;
        let names = names_start
            .checked_add(names_len)
            .and_then(|end| elf.get(names_start..end))
            .ok_or(EmbedError::Truncated("section name table"))?;
        (0..self.shnum)
            .map(|i| self.shoff + i * SHDR_LEN)
            .find(|&header| {
                read_u32(elf, header + SH_NAME).is_ok_and(|name| {
                    names
                        .get(name as usize..)
                        .and_then(|rest| rest.split(|&b| b == 0).next())
                        == Some(POLICY_SECTION.as_bytes())
                })
            })
            .ok_or(EmbedError::NoPolicySection)
    }

    /// File offset of the program header of the loadable segment at `address`, checked to
    /// be the highest one.
    fn policy_segment(&self, elf: &[u8], address: u64) -> Result<usize, EmbedError> {
        let mut found = None;
        for header in (0..self.phnum).map(|i| self.phoff + i * PHDR_LEN) {
            if read_u32(elf, header + P_TYPE)? != PT_LOAD {
                continue;
            }
            let vaddr = read_u64(elf, header + P_VADDR)?;
            if vaddr == address {
                found = Some(header);
            } else if vaddr > address {
                return Err(EmbedError::PolicyNotLast);
            }
        }
        found.ok_or(EmbedError::NoPolicySegment)
    }
}

/// End of a table of `count` entries of `len` bytes at `offset`, if it fits in `file_len`.
fn table_end(offset: usize, count: usize, len: usize, file_len: usize) -> Option<usize> {
    offset
        .checked_add(count.checked_mul(len)?)
        .filter(|&end| end <= file_len)
}

fn to_usize(value: u64) -> Result<usize, EmbedError> {
    usize::try_from(value).map_err(|_| EmbedError::Truncated("header"))
}

fn field<const N: usize>(elf: &[u8], at: usize) -> Result<[u8; N], EmbedError> {
    at.checked_add(N)
        .and_then(|end| elf.get(at..end))
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(EmbedError::Truncated("header"))
}

fn read_u16(elf: &[u8], at: usize) -> Result<u16, EmbedError> {
    field(elf, at).map(u16::from_le_bytes)
}

fn read_u32(elf: &[u8], at: usize) -> Result<u32, EmbedError> {
    field(elf, at).map(u32::from_le_bytes)
}

fn read_u64(elf: &[u8], at: usize) -> Result<u64, EmbedError> {
    field(elf, at).map(u64::from_le_bytes)
}

/// Writes a field that [`Layout::read`] already found inside the file.
fn write_u64(elf: &mut [u8], at: usize, value: u64) {
    elf[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal kernel-like ELF: a text segment at 1 MiB and the policy segment above it
    /// (or below it, with `policy_last` false), sections `.text`, `.moat_policy`,
    /// `.shstrtab`.
    fn kernel_elf(policy_last: bool, policy_name: &str) -> Vec<u8> {
        let names = format!("\0.text\0{policy_name}\0.shstrtab\0");
        let (text_name, policy_name_at, shstrtab_name) = (1, 7, 8 + policy_name.len() as u32);
        let (text_at, policy_at, names_at) = (0x1000u64, 0x2000u64, 0x2100u64);
        let shoff = 0x2200u64;
        let mut elf = vec![0u8; shoff as usize + 4 * SHDR_LEN];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[6] = 1;
        elf[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        write_u64(&mut elf, E_PHOFF, EHDR_LEN as u64);
        write_u64(&mut elf, E_SHOFF, shoff);
        elf[E_PHENTSIZE..E_PHENTSIZE + 2].copy_from_slice(&(PHDR_LEN as u16).to_le_bytes());
        elf[E_PHNUM..E_PHNUM + 2].copy_from_slice(&2u16.to_le_bytes());
        elf[E_SHENTSIZE..E_SHENTSIZE + 2].copy_from_slice(&(SHDR_LEN as u16).to_le_bytes());
        elf[E_SHNUM..E_SHNUM + 2].copy_from_slice(&4u16.to_le_bytes());
        elf[E_SHSTRNDX..E_SHSTRNDX + 2].copy_from_slice(&3u16.to_le_bytes());
        let policy_vaddr = if policy_last { 0x20_0000 } else { 0x8_0000 };
        let segments = [
            (text_at, 0x10_0000u64, 0x100u64),
            (policy_at, policy_vaddr, 24),
        ];
        for (i, (offset, vaddr, size)) in segments.into_iter().enumerate() {
            let header = EHDR_LEN + i * PHDR_LEN;
            elf[header..header + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
            write_u64(&mut elf, header + P_OFFSET, offset);
            write_u64(&mut elf, header + P_VADDR, vaddr);
            write_u64(&mut elf, header + P_FILESZ, size);
            write_u64(&mut elf, header + P_MEMSZ, size);
        }
        let sections = [
            (text_name, 0x10_0000, text_at, 0x100),
            (policy_name_at, policy_vaddr, policy_at, 24),
            (shstrtab_name, 0, names_at, names.len() as u64),
        ];
        for (i, (name, addr, offset, size)) in sections.into_iter().enumerate() {
            let header = shoff as usize + (i + 1) * SHDR_LEN;
            elf[header..header + 4].copy_from_slice(&name.to_le_bytes());
            write_u64(&mut elf, header + SH_ADDR, addr);
            write_u64(&mut elf, header + SH_OFFSET, offset);
            write_u64(&mut elf, header + SH_SIZE, size);
        }
        elf[names_at as usize..names_at as usize + names.len()].copy_from_slice(names.as_bytes());
        elf[policy_at as usize..policy_at as usize + 8].copy_from_slice(b"MOATPLCY");
        elf
    }

    #[test]
    fn the_blob_becomes_the_policy_segment_and_section() {
        let elf = kernel_elf(true, POLICY_SECTION);
        let blob: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let out = embed(&elf, &blob).unwrap();
        let offset = (elf.len() as u64).next_multiple_of(PAGE);
        assert_eq!(&out[offset as usize..], &blob[..]);
        let segment = EHDR_LEN + PHDR_LEN;
        let section = 0x2200 + 2 * SHDR_LEN;
        let rewritten = |i: usize| {
            (segment..segment + PHDR_LEN).contains(&i) || (section..section + SHDR_LEN).contains(&i)
        };
        for (i, (&before, &after)) in elf.iter().zip(&out).enumerate() {
            assert!(rewritten(i) || before == after, "byte {i:#x} changed");
        }
        assert_eq!(read_u64(&out, segment + P_OFFSET), Ok(offset));
        assert_eq!(read_u64(&out, segment + P_FILESZ), Ok(blob.len() as u64));
        assert_eq!(read_u64(&out, segment + P_MEMSZ), Ok(blob.len() as u64));
        assert_eq!(read_u64(&out, segment + P_VADDR), Ok(0x20_0000));
        assert_eq!(read_u64(&out, section + SH_OFFSET), Ok(offset));
        assert_eq!(read_u64(&out, section + SH_SIZE), Ok(blob.len() as u64));
        // The text segment is untouched.
        assert_eq!(read_u64(&out, EHDR_LEN + P_OFFSET), Ok(0x1000));
    }

    #[test]
    fn embedding_twice_from_the_linked_kernel_gives_the_same_file() {
        let elf = kernel_elf(true, POLICY_SECTION);
        assert_eq!(embed(&elf, b"abc").unwrap(), embed(&elf, b"abc").unwrap());
    }

    #[test]
    fn a_policy_segment_that_is_not_last_is_refused() {
        let elf = kernel_elf(false, POLICY_SECTION);
        assert_eq!(embed(&elf, b"x"), Err(EmbedError::PolicyNotLast));
    }

    #[test]
    fn an_elf_without_the_policy_section_is_refused_by_name() {
        let elf = kernel_elf(true, ".moat_other");
        let error = embed(&elf, b"x").unwrap_err();
        assert_eq!(error, EmbedError::NoPolicySection);
        assert!(error.to_string().contains(".moat_policy"), "{error}");
    }

    #[test]
    fn what_is_not_an_x86_64_elf_is_refused_without_panicking() {
        let elf = kernel_elf(true, POLICY_SECTION);
        assert!(matches!(embed(b"hello", b"x"), Err(EmbedError::NotElf(_))));
        let mut arm = elf.clone();
        arm[18] = 183;
        assert!(matches!(embed(&arm, b"x"), Err(EmbedError::NotElf(_))));
        let mut elf32 = elf.clone();
        elf32[4] = 1;
        assert!(matches!(embed(&elf32, b"x"), Err(EmbedError::NotElf(_))));
        for len in 0..elf.len() {
            let _ = embed(&elf[..len], b"x");
        }
        for at in 0..EHDR_LEN {
            let mut damaged = elf.clone();
            damaged[at] ^= 0xff;
            let _ = embed(&damaged, b"x");
        }
    }
}
