//! A few hundred bytes of guest that boots by every path Moat boots by.
//!
//! The probe guest is an ELF64 file carrying both a PVH note (`qemu -kernel`) and a Multiboot2
//! header (GRUB), like the Moat kernel. Its 32-bit entry prints `moat-probe: start` on COM1,
//! spins a counted `dec ecx; jnz` loop entirely in ring 0, prints `moat-probe: done`, and writes
//! 0 to the `isa-debug-exit` port, so QEMU exits with status 1 when that device is present
//! (otherwise it halts forever with interrupts off).
//!
//! It serves two jobs that must not depend on the real kernel:
//! - accelerator calibration ([`crate::accel`]): the spin loop measures how fast the CPU runs
//!   ring-0 code under KVM and under TCG;
//! - the boot-time baseline of `scripts/bench boot`: with no loop it measures the cost of QEMU
//!   and its firmware alone, which the kernel's boot time is compared against.

/// Physical (and virtual) address the probe is loaded at: 1 MiB, like the kernel.
const LOAD_ADDRESS: u32 = 0x10_0000;
/// First line the probe prints.
pub const START_LINE: &str = "moat-probe: start";
/// Line the probe prints after its spin loop, right before it exits.
pub const DONE_LINE: &str = "moat-probe: done";
/// QEMU's exit status after the probe writes 0 to `isa-debug-exit` (`(0 << 1) | 1`).
pub const EXIT_STATUS: i32 = 1;

const ELF_HEADER_SIZE: usize = 64;
const PROGRAM_HEADER_SIZE: usize = 56;
const PROGRAM_HEADER_COUNT: usize = 2;
const MULTIBOOT2_OFFSET: usize = ELF_HEADER_SIZE + PROGRAM_HEADER_SIZE * PROGRAM_HEADER_COUNT;
const MULTIBOOT2_MAGIC: u32 = 0xe852_50d6;
const MULTIBOOT2_HEADER_SIZE: usize = 24;
const NOTE_OFFSET: usize = MULTIBOOT2_OFFSET + MULTIBOOT2_HEADER_SIZE;
/// `XEN_ELFNOTE_PHYS32_ENTRY`: the 32-bit entry point QEMU's PVH loader looks for.
const PVH_NOTE_TYPE: u32 = 18;
const NOTE_SIZE: usize = 12 + 4 + 4;
const CODE_OFFSET: usize = NOTE_OFFSET + NOTE_SIZE;
/// I/O port of the `isa-debug-exit` device the harness adds (`iobase=0xf4`).
const DEBUG_EXIT_PORT: u8 = 0xf4;

/// Builds the probe ELF. `spin_iterations` is the length of the ring-0 busy loop between the
/// two console lines (0: no loop).
pub fn probe_elf(spin_iterations: u32) -> Vec<u8> {
    let start_message = format!("{START_LINE}\n\0");
    let done_message = format!("{DONE_LINE}\n\0");

    // Code first, with placeholder message addresses, so that its length is known.
    let code_len = entry_code(0, 0, spin_iterations).len();
    let start_address = address_of(CODE_OFFSET + code_len);
    let done_address = start_address + start_message.len() as u32;
    let code = entry_code(start_address, done_address, spin_iterations);

    let mut image = Vec::with_capacity(CODE_OFFSET + code.len() + 64);
    image.resize(CODE_OFFSET, 0);
    image.extend_from_slice(&code);
    image.extend_from_slice(start_message.as_bytes());
    image.extend_from_slice(done_message.as_bytes());
    let file_size = image.len() as u64;

    write_elf_header(&mut image[..ELF_HEADER_SIZE], address_of(CODE_OFFSET));
    write_program_header(
        &mut image[ELF_HEADER_SIZE..ELF_HEADER_SIZE + PROGRAM_HEADER_SIZE],
        ProgramHeader {
            kind: PT_LOAD,
            flags: PF_R | PF_X,
            offset: 0,
            size: file_size,
            align: 0x1000,
        },
    );
    write_program_header(
        &mut image[ELF_HEADER_SIZE + PROGRAM_HEADER_SIZE..MULTIBOOT2_OFFSET],
        ProgramHeader {
            kind: PT_NOTE,
            flags: PF_R,
            offset: NOTE_OFFSET as u64,
            size: NOTE_SIZE as u64,
            align: 4,
        },
    );
    write_multiboot2_header(&mut image[MULTIBOOT2_OFFSET..NOTE_OFFSET]);
    write_pvh_note(
        &mut image[NOTE_OFFSET..CODE_OFFSET],
        address_of(CODE_OFFSET),
    );
    image
}

fn address_of(file_offset: usize) -> u32 {
    LOAD_ADDRESS + file_offset as u32
}

/// 32-bit protected-mode code: print, spin, print, exit, halt.
fn entry_code(start_message: u32, done_message: u32, spin_iterations: u32) -> Vec<u8> {
    let mut code = vec![
        0xfa, // cli
        0xfc, // cld
        0xba, 0xf8, 0x03, 0x00, 0x00, // mov edx, 0x3f8 (COM1 data register)
    ];
    emit_print(&mut code, start_message);
    if spin_iterations > 0 {
        code.push(0xb9); // mov ecx, spin_iterations
        code.extend_from_slice(&spin_iterations.to_le_bytes());
        code.extend_from_slice(&[
            0x49, // spin: dec ecx
            0x75, 0xfd, // jnz spin
        ]);
    }
    emit_print(&mut code, done_message);
    code.extend_from_slice(&[
        0xb0,
        0x00, // mov al, 0
        0xe6,
        DEBUG_EXIT_PORT, // out 0xf4, al
        0xf4,            // halt: hlt
        0xeb,
        0xfd, // jmp halt
    ]);
    code
}

/// Prints the NUL-terminated string at `message` to the port in `dx`.
fn emit_print(code: &mut Vec<u8>, message: u32) {
    code.push(0xbe); // mov esi, message
    code.extend_from_slice(&message.to_le_bytes());
    code.extend_from_slice(&[
        0xac, // next: lodsb
        0x84, 0xc0, // test al, al
        0x74, 0x03, // jz end
        0xee, // out dx, al
        0xeb, 0xf8, // jmp next
              // end:
    ]);
}

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const PF_X: u32 = 1;
const PF_R: u32 = 4;

struct ProgramHeader {
    kind: u32,
    flags: u32,
    offset: u64,
    size: u64,
    align: u64,
}

fn write_elf_header(out: &mut [u8], entry: u32) {
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = 2; // ELFCLASS64
    out[5] = 1; // little endian
    out[6] = 1; // EV_CURRENT
    out[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    out[20..24].copy_from_slice(&1u32.to_le_bytes()); // version
    out[24..32].copy_from_slice(&u64::from(entry).to_le_bytes());
    out[32..40].copy_from_slice(&(ELF_HEADER_SIZE as u64).to_le_bytes()); // phoff
    out[52..54].copy_from_slice(&(ELF_HEADER_SIZE as u16).to_le_bytes());
    out[54..56].copy_from_slice(&(PROGRAM_HEADER_SIZE as u16).to_le_bytes());
    out[56..58].copy_from_slice(&(PROGRAM_HEADER_COUNT as u16).to_le_bytes());
    out[58..60].copy_from_slice(&64u16.to_le_bytes()); // shentsize (no sections)
}

fn write_program_header(out: &mut [u8], header: ProgramHeader) {
    let address = u64::from(LOAD_ADDRESS) + header.offset;
    out[0..4].copy_from_slice(&header.kind.to_le_bytes());
    out[4..8].copy_from_slice(&header.flags.to_le_bytes());
    out[8..16].copy_from_slice(&header.offset.to_le_bytes());
    out[16..24].copy_from_slice(&address.to_le_bytes()); // vaddr
    out[24..32].copy_from_slice(&address.to_le_bytes()); // paddr
    out[32..40].copy_from_slice(&header.size.to_le_bytes()); // filesz
    out[40..48].copy_from_slice(&header.size.to_le_bytes()); // memsz
    out[48..56].copy_from_slice(&header.align.to_le_bytes());
}

fn write_multiboot2_header(out: &mut [u8]) {
    let architecture = 0u32; // i386 protected mode
    let length = MULTIBOOT2_HEADER_SIZE as u32;
    let checksum = 0u32.wrapping_sub(
        MULTIBOOT2_MAGIC
            .wrapping_add(architecture)
            .wrapping_add(length),
    );
    out[0..4].copy_from_slice(&MULTIBOOT2_MAGIC.to_le_bytes());
    out[4..8].copy_from_slice(&architecture.to_le_bytes());
    out[8..12].copy_from_slice(&length.to_le_bytes());
    out[12..16].copy_from_slice(&checksum.to_le_bytes());
    // End tag: type 0, flags 0, size 8.
    out[16..24].copy_from_slice(&[0, 0, 0, 0, 8, 0, 0, 0]);
}

fn write_pvh_note(out: &mut [u8], entry: u32) {
    out[0..4].copy_from_slice(&4u32.to_le_bytes()); // namesz ("Xen\0")
    out[4..8].copy_from_slice(&4u32.to_le_bytes()); // descsz
    out[8..12].copy_from_slice(&PVH_NOTE_TYPE.to_le_bytes());
    out[12..16].copy_from_slice(b"Xen\0");
    out[16..20].copy_from_slice(&entry.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(bytes: &[u8], offset: usize) -> u32 {
        u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
    }

    #[test]
    fn multiboot2_header_is_aligned_and_checksums_to_zero() {
        let elf = probe_elf(10);
        assert_eq!(MULTIBOOT2_OFFSET % 8, 0);
        let words: Vec<u32> = (0..4)
            .map(|i| u32_at(&elf, MULTIBOOT2_OFFSET + 4 * i))
            .collect();
        assert_eq!(words[0], MULTIBOOT2_MAGIC);
        assert_eq!(words.iter().fold(0u32, |sum, w| sum.wrapping_add(*w)), 0);
    }

    #[test]
    fn pvh_note_points_at_the_elf_entry() {
        let elf = probe_elf(10);
        let entry = u32_at(&elf, 24);
        assert_eq!(u32_at(&elf, NOTE_OFFSET + 8), PVH_NOTE_TYPE);
        assert_eq!(&elf[NOTE_OFFSET + 12..NOTE_OFFSET + 16], b"Xen\0");
        assert_eq!(u32_at(&elf, NOTE_OFFSET + 16), entry);
    }

    #[test]
    fn load_segment_covers_the_whole_file_including_the_messages() {
        let elf = probe_elf(0);
        let load_size = u64::from_le_bytes(
            elf[ELF_HEADER_SIZE + 32..ELF_HEADER_SIZE + 40]
                .try_into()
                .unwrap(),
        );
        assert_eq!(load_size, elf.len() as u64);
        let text = String::from_utf8_lossy(&elf);
        assert!(text.contains(START_LINE) && text.contains(DONE_LINE));
    }

    #[test]
    fn spin_count_is_encoded_and_omitted_when_zero() {
        let with_loop = probe_elf(0x1234_5678);
        assert!(with_loop
            .windows(5)
            .any(|w| w == [0xb9, 0x78, 0x56, 0x34, 0x12]));
        let without_loop = probe_elf(0);
        assert!(!without_loop.windows(3).any(|w| w == [0x49, 0x75, 0xfd]));
    }
}
