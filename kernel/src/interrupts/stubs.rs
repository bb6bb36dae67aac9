//! Interrupt entry stubs, written in assembly because the `x86-interrupt` ABI is nightly-only.
//!
//! There is one 16-byte stub per vector at `interrupt_stubs + 16 * vector`. Each pushes a
//! zero error code (unless the CPU pushes one for that vector), then the vector number,
//! and jumps to `interrupt_common`, which saves the general-purpose registers, calls
//! [`super::dispatch`] with a pointer to the resulting [`super::TrapFrame`], and
//! restores everything with `iretq`.

use core::arch::global_asm;

/// Bytes between consecutive stubs.
pub const STUB_SIZE: u64 = 16;

global_asm!(
    r#"
    .section .text.interrupts, "ax"
    .balign 16
    .global interrupt_stubs
interrupt_stubs:
    .set vector, 0
    .rept 256
    .balign 16
    .if (vector == 8) || (vector == 10) || (vector == 11) || (vector == 12) || (vector == 13) || (vector == 14) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
    .else
    push $0
    .endif
    push $vector
    jmp interrupt_common
    .set vector, vector + 1
    .endr

interrupt_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %rdi
    cld
    call {dispatch}
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp
    iretq
    "#,
    dispatch = sym super::dispatch::interrupt_dispatch,
    options(att_syntax)
);

unsafe extern "C" {
    /// The first stub; see the module documentation for the layout.
    pub static interrupt_stubs: u8;
}

/// Address of the stub for `vector`.
pub fn stub_address(vector: u8) -> u64 {
    // SAFETY: only the address of the assembly symbol is taken.
    let base = core::ptr::addr_of!(interrupt_stubs) as u64;
    base + STUB_SIZE * vector as u64
}
