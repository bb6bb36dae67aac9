//! The GDT (with a TSS for the emergency stacks) and the IDT.

use core::ptr::addr_of;

use spin::Once;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::{lidt, load_tss};
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::structures::DescriptorTablePointer;
use x86_64::VirtAddr;

use super::stubs::stub_address;

/// IST slot (1-based in the IDT, 0-based in the TSS) of the double-fault stack.
const IST_FATAL: u16 = 1;
/// Vectors that run on the emergency stack: NMI, double fault, machine check. A double
/// fault on the emergency stack is how a kernel stack overflow gets reported.
const FATAL_STACK_VECTORS: [u8; 3] = [2, 8, 18];
const EMERGENCY_STACK_SIZE: usize = 32 * 1024;

#[repr(C, align(16))]
struct EmergencyStack([u8; EMERGENCY_STACK_SIZE]);
static mut EMERGENCY_STACK: EmergencyStack = EmergencyStack([0; EMERGENCY_STACK_SIZE]);

static TSS: Once<TaskStateSegment> = Once::new();
static GDT: Once<(
    GlobalDescriptorTable,
    SegmentSelector,
    SegmentSelector,
    SegmentSelector,
)> = Once::new();

/// One 16-byte interrupt gate.
#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static IDT: Once<Idt> = Once::new();

/// Present, DPL 0, 64-bit interrupt gate (interrupts disabled on entry).
const INTERRUPT_GATE: u8 = 0x8e;

/// Loads the GDT, TSS and IDT. Call once, early.
pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        // SAFETY: only the address of the emergency stack is taken; the CPU alone uses it.
        let base = addr_of!(EMERGENCY_STACK) as u64;
        tss.interrupt_stack_table[(IST_FATAL - 1) as usize] =
            VirtAddr::new(base + EMERGENCY_STACK_SIZE as u64);
        tss
    });
    let (gdt, code, data, tss_selector) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss_selector = gdt.append(Descriptor::tss_segment(tss));
        (gdt, code, data, tss_selector)
    });
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded; the code segment is 64-bit and the
    // data segment flat, matching what the kernel already runs with.
    unsafe {
        CS::set_reg(*code);
        DS::set_reg(*data);
        ES::set_reg(*data);
        SS::set_reg(*data);
        load_tss(*tss_selector);
    }

    let idt = IDT.call_once(|| {
        let empty = Gate {
            offset_low: 0,
            selector: 0,
            ist: 0,
            type_attr: 0,
            offset_mid: 0,
            offset_high: 0,
            reserved: 0,
        };
        let mut idt = Idt([empty; 256]);
        for vector in 0..=255u8 {
            let addr = stub_address(vector);
            let ist = if FATAL_STACK_VECTORS.contains(&vector) {
                IST_FATAL as u8
            } else {
                0
            };
            idt.0[vector as usize] = Gate {
                offset_low: addr as u16,
                selector: code.0,
                ist,
                type_attr: INTERRUPT_GATE,
                offset_mid: (addr >> 16) as u16,
                offset_high: (addr >> 32) as u32,
                reserved: 0,
            };
        }
        idt
    });
    let pointer = DescriptorTablePointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: VirtAddr::new(idt as *const Idt as u64),
    };
    // SAFETY: the IDT is a 'static table of valid gates pointing at the interrupt stubs.
    unsafe { lidt(&pointer) };
}
