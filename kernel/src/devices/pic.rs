//! The legacy 8259 PICs: remapped away from the exception vectors and fully masked, since
//! the I/O APIC delivers every interrupt.

use x86_64::instructions::port::Port;

/// Remaps both PICs to vectors 0x20-0x2f and masks all their lines.
pub fn disable() {
    let mut master_cmd: Port<u8> = Port::new(0x20);
    let mut master_data: Port<u8> = Port::new(0x21);
    let mut slave_cmd: Port<u8> = Port::new(0xa0);
    let mut slave_data: Port<u8> = Port::new(0xa1);
    // SAFETY: the standard 8259 initialisation sequence; on machines without PICs these
    // ports are unassigned and the writes are ignored.
    unsafe {
        master_cmd.write(0x11);
        slave_cmd.write(0x11);
        master_data.write(0x20);
        slave_data.write(0x28);
        master_data.write(4);
        slave_data.write(2);
        master_data.write(1);
        slave_data.write(1);
        master_data.write(0xff);
        slave_data.write(0xff);
    }
}
