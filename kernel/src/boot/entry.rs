//! The two 32-bit entry points and the switch to long mode.
//!
//! - **PVH** (`qemu -kernel` on `q35`, `pc` and `microvm`, Firecracker, Cloud Hypervisor):
//!   the ELF note `Xen`/18 names `pvh_entry`; the loader enters it in 32-bit protected mode,
//!   paging off, with `%ebx` = physical address of the `hvm_start_info` structure.
//! - **Multiboot2** (GRUB, from the BIOS/UEFI disk image): the header at the start of the
//!   image; GRUB enters the ELF entry `multiboot2_entry` in 32-bit protected mode with
//!   `%eax` = `0x36d76289` and `%ebx` = physical address of the boot information.
//!
//! Both converge on `start32`, which builds a temporary identity map of the first 4 GiB with
//! 2 MiB pages, enables PAE, long mode, NX and write protection, loads a 64-bit GDT and jumps
//! to `start64`. That sets up the boot stack (with a guard page below it, unmapped once
//! [`crate::memory::paging`] installs the final page tables) and calls [`crate::kernel_start`]
//! with the boot protocol and the physical address of its information structure.
//!
//! Multiboot1 is deliberately absent: QEMU tries it first and a bad header is fatal.

use core::arch::global_asm;

/// Boot protocol tag passed to `kernel_start`: PVH.
pub const BOOT_PVH: u32 = 1;
/// Boot protocol tag passed to `kernel_start`: Multiboot2.
pub const BOOT_MULTIBOOT2: u32 = 2;

/// Size of the boot (and only) kernel stack.
pub const STACK_SIZE: usize = 256 * 1024;

global_asm!(
    r#"
    .set MB2_MAGIC, 0xe85250d6
    .set MB2_ARCH_I386, 0
    .set MB2_BOOTLOADER_MAGIC, 0x36d76289
    .set STACK_SIZE, {stack_size}

    /* ---- Multiboot2 header: must sit in the first 32 KiB of the file, 8-aligned ---- */
    .section .multiboot2, "a"
    .balign 8
multiboot2_header:
    .long MB2_MAGIC
    .long MB2_ARCH_I386
    .long multiboot2_header_end - multiboot2_header
    .long 0x100000000 - (MB2_MAGIC + MB2_ARCH_I386 + (multiboot2_header_end - multiboot2_header))
    /* end tag */
    .balign 8
    .short 0
    .short 0
    .long 8
multiboot2_header_end:

    /* ---- PVH entry note: XEN_ELFNOTE_PHYS32_ENTRY (18) ---- */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 4
    .long 18
    .asciz "Xen"
    .balign 4
    .long pvh_entry
    .balign 4

    /* ---- 32-bit entry code ---- */
    .section .boot.text, "ax"
    .code32
    .global pvh_entry
pvh_entry:
    cli
    mov ${boot_pvh}, %edi
    mov %ebx, %esi
    jmp start32

    .global multiboot2_entry
multiboot2_entry:
    cli
    cmp $MB2_BOOTLOADER_MAGIC, %eax
    jne boot_fail_magic
    mov ${boot_mb2}, %edi
    mov %ebx, %esi
    jmp start32

start32:
    /* A stack for the 32-bit part (the real stack; still identity-mapped physical). */
    mov $boot_stack_top, %esp

    /* Long mode supported? (CPUID 0x80000001, EDX bit 29) */
    mov %edi, %ebp
    mov $0x80000000, %eax
    cpuid
    cmp $0x80000001, %eax
    jb boot_fail_long_mode
    mov $0x80000001, %eax
    cpuid
    test $(1 << 29), %edx
    jz boot_fail_long_mode
    mov %ebp, %edi

    /* Zero the early tables (6 pages: PML4, PDPT, 4 PDs). */
    push %edi
    mov $early_pml4, %edi
    xor %eax, %eax
    mov $(6 * 4096 / 4), %ecx
    rep stosl
    pop %edi

    /* PML4[0] -> PDPT; PDPT[0..4] -> PD0..PD3 (present | writable). */
    mov $early_pdpt, %eax
    or $0x3, %eax
    mov %eax, early_pml4
    mov $early_pd, %eax
    or $0x3, %eax
    mov %eax, early_pdpt
    add $4096, %eax
    mov %eax, early_pdpt + 8
    add $4096, %eax
    mov %eax, early_pdpt + 16
    add $4096, %eax
    mov %eax, early_pdpt + 24

    /* 2048 PD entries, 2 MiB each: identity-map 0..4 GiB (present | writable | huge). */
    mov $early_pd, %ebx
    xor %ecx, %ecx
1:
    mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax
    mov %eax, (%ebx, %ecx, 8)
    mov %ecx, %eax
    shr $11, %eax
    mov %eax, 4(%ebx, %ecx, 8)
    inc %ecx
    cmp $2048, %ecx
    jne 1b

    /* CR4.PAE */
    mov %cr4, %eax
    or $(1 << 5), %eax
    mov %eax, %cr4
    mov $early_pml4, %eax
    mov %eax, %cr3

    /* EFER.LME | EFER.NXE */
    mov $0xC0000080, %ecx
    rdmsr
    or $((1 << 8) | (1 << 11)), %eax
    wrmsr

    /* CR0.PG | CR0.WP | CR0.PE */
    mov %cr0, %eax
    or $((1 << 31) | (1 << 16) | 1), %eax
    mov %eax, %cr0

    lgdt early_gdt_pointer
    ljmp $0x08, $start64

    /* Early failures: say so on COM1 and halt. */
boot_fail_magic:
    mov $msg_bad_magic, %esi
    jmp boot_fail
boot_fail_long_mode:
    mov $msg_no_long_mode, %esi
boot_fail:
    mov $0x3f8, %dx
2:
    lodsb
    test %al, %al
    jz 3f
    out %al, %dx
    jmp 2b
3:
    cli
    hlt
    jmp 3b

    .code64
start64:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %ax, %ax
    mov %ax, %fs
    mov %ax, %gs
    mov $boot_stack_top, %rsp
    xor %rbp, %rbp
    /* edi = protocol, esi = info address (upper halves already zero from 32-bit writes) */
    call {kernel_start}
4:
    cli
    hlt
    jmp 4b

    .section .rodata.boot, "a"
msg_bad_magic:
    .asciz "moat: FATAL not loaded by a Multiboot2 boot loader\r\n"
msg_no_long_mode:
    .asciz "moat: FATAL this CPU has no 64-bit long mode\r\n"

    .balign 8
early_gdt:
    .quad 0
    .quad 0x00af9a000000ffff  /* 0x08: 64-bit code, DPL 0 */
    .quad 0x00cf92000000ffff  /* 0x10: data, DPL 0 */
early_gdt_end:
early_gdt_pointer:
    .short early_gdt_end - early_gdt - 1
    .quad early_gdt

    /* ---- early page tables and the boot stack ---- */
    .section .bss.boot, "aw", @nobits
    .balign 4096
early_pml4:
    .skip 4096
early_pdpt:
    .skip 4096
early_pd:
    .skip 4 * 4096

    .global boot_stack_guard
    .global boot_stack_bottom
    .global boot_stack_top
    .balign 4096
boot_stack_guard:
    .skip 4096
boot_stack_bottom:
    .skip STACK_SIZE
boot_stack_top:
    "#,
    stack_size = const STACK_SIZE,
    boot_pvh = const BOOT_PVH,
    boot_mb2 = const BOOT_MULTIBOOT2,
    kernel_start = sym crate::kernel_start,
    options(att_syntax)
);

unsafe extern "C" {
    /// The page under the boot stack, left unmapped so an overflow faults.
    pub static boot_stack_guard: u8;
}
