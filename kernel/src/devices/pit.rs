//! The 8254 PIT, used once at boot as a known-frequency reference for calibration.
//!
//! Channel 0 is used (channel 2's gate lives in port 0x61, which `microvm` does not have):
//! it is loaded with the largest count in mode 0, and its count is latched and read back
//! together with the other clocks being calibrated. Its output goes to IRQ 0, which stays
//! masked.

use x86_64::instructions::port::Port;

/// PIT input clock in Hz.
pub const PIT_HZ: u64 = 1_193_182;

/// Starts channel 0 counting down from 0xffff.
pub fn start() {
    let mut command: Port<u8> = Port::new(0x43);
    let mut channel0: Port<u8> = Port::new(0x40);
    // SAFETY: programming PIT channel 0 (whose IRQ is masked) affects nothing else.
    unsafe {
        command.write(0b0011_0000); // channel 0, lobyte/hibyte, mode 0, binary
        channel0.write(0xff);
        channel0.write(0xff);
    }
}

/// Channel 0's current count.
pub fn count() -> u16 {
    let mut command: Port<u8> = Port::new(0x43);
    let mut channel0: Port<u8> = Port::new(0x40);
    // SAFETY: latching and reading channel 0's count has no other effect.
    unsafe {
        command.write(0b0000_0000); // latch channel 0
        let low = channel0.read() as u16;
        let high = channel0.read() as u16;
        low | (high << 8)
    }
}
