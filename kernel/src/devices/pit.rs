//! The 8254 PIT, used once at boot as a known-frequency reference for calibration.
//!
//! Channel 0 is used (channel 2's gate lives in port 0x61, which `microvm` does not have):
//! it is loaded with the largest count in mode 0 and its count is latched and read back
//! until the wanted number of ticks have elapsed. Its output goes to IRQ 0, which stays
//! masked.

use x86_64::instructions::port::Port;

/// PIT input clock in Hz.
const PIT_HZ: u64 = 1_193_182;
/// Reads of an unchanged count after which the PIT is considered absent.
const STUCK_READS: u32 = 100_000;

fn read_count(command: &mut Port<u8>, channel0: &mut Port<u8>) -> u16 {
    // SAFETY: latching and reading channel 0's count has no other effect.
    unsafe {
        command.write(0b0000_0000); // latch channel 0
        let low = channel0.read() as u16;
        let high = channel0.read() as u16;
        low | (high << 8)
    }
}

/// Busy-waits `ms` milliseconds (at most 40) on the PIT, calling `start` just as the wait
/// begins. Returns `false` if the PIT does not count (no PIT on this machine).
pub fn wait_ms(ms: u64, start: impl FnOnce()) -> bool {
    let ticks = (PIT_HZ * ms.min(40) / 1000) as u16;
    let mut command: Port<u8> = Port::new(0x43);
    let mut channel0: Port<u8> = Port::new(0x40);
    // SAFETY: programming PIT channel 0 (whose IRQ is masked) affects nothing else.
    unsafe {
        command.write(0b0011_0000); // channel 0, lobyte/hibyte, mode 0, binary
        channel0.write(0xff);
        channel0.write(0xff);
    }
    let first = read_count(&mut command, &mut channel0);
    start();
    let mut unchanged = 0u32;
    let mut last = first;
    loop {
        let now = read_count(&mut command, &mut channel0);
        if first.wrapping_sub(now) >= ticks {
            return true;
        }
        if now == last {
            unchanged += 1;
            if unchanged > STUCK_READS {
                return false;
            }
        } else {
            unchanged = 0;
            last = now;
        }
    }
}
