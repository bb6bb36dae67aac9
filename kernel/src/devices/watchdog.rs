//! The Intel 6300ESB watchdog (PCI 8086:25ab): QEMU's `-device i6300esb` on `q35` and `pc`,
//! libvirt's `<watchdog model='i6300esb'/>`.
//!
//! Two timers run one after the other from each reload, each for half the timeout at about
//! 1 kHz (the 33 MHz PCI clock divided by 2^15); when the second expires, the hypervisor
//! takes its watchdog action (`reset` by default: the VM reboots, or stops under
//! `-no-reboot`). The first timer's interrupt is disabled, so the only outcome of a main
//! loop that stops petting is the action. The device is locked on start: nothing can turn
//! it off again until the next reset.
//!
//! Programming model (Intel 6300ESB datasheet, 13; QEMU `hw/watchdog/wdt_i6300esb.c`):
//! the configuration register (16-bit, PCI config 0x60) and the lock register (8-bit, 0x68)
//! must be written with exactly their width; the memory-mapped preload and reload registers
//! only take a write after the unlock sequence 0x80, 0x86 to the reload register.

use virtio_drivers::transport::pci::bus::{DeviceFunction, DeviceFunctionInfo};

use crate::devices::mmio::MmioRegion;
use crate::devices::pci::PciBus;
use crate::time;

/// PCI IDs of the 6300ESB watchdog function.
const VENDOR_INTEL: u16 = 0x8086;
const DEVICE_6300ESB_WATCHDOG: u16 = 0x25ab;
/// Configuration register: bit 5 clear = reset on timeout, bit 2 clear = 1 kHz clock,
/// bits 1:0 = 11 = no interrupt when the first timer expires.
const CONFIG_REGISTER: u8 = 0x60;
const CONFIG_RESET_1KHZ_NO_INTERRUPT: u16 = 0b11;
/// Lock register: bit 1 enables the watchdog, bit 0 locks that setting until reset, bit 2
/// clear selects watchdog (not free-running) mode.
const LOCK_REGISTER: u8 = 0x68;
const LOCK_ENABLE: u8 = 1 << 1;
const LOCK_LOCKED: u8 = 1 << 0;
/// Memory-mapped registers (BAR 0, 16 bytes).
const TIMER1_PRELOAD: u64 = 0x00;
const TIMER2_PRELOAD: u64 = 0x04;
const RELOAD: u64 = 0x0c;
const REGISTERS: u64 = 0x10;
/// Reload register bits: restart the timers; the previous reset came from the watchdog
/// (write 1 to clear).
const RELOAD_RESTART: u16 = 1 << 8;
const RELOAD_TIMED_OUT: u16 = 1 << 9;
/// The unlock sequence, written to the reload register before each register write.
const UNLOCK: [u8; 2] = [0x80, 0x86];
/// Largest preload (20 bits).
const MAX_PRELOAD: u64 = 0xf_ffff;
/// The timers count at 33 MHz / 2^15.
const TIMER_HZ_NUMERATOR: u64 = 33_000_000;
const TIMER_HZ_DENOMINATOR: u64 = 1 << 15;

/// Shortest and longest timeout accepted, in seconds.
pub const MIN_TIMEOUT_SECONDS: u32 = 2;
/// Longest timeout accepted (both timers at most 20 bits at 1 kHz).
pub const MAX_TIMEOUT_SECONDS: u32 = 600;

/// A running watchdog.
pub struct Watchdog {
    location: DeviceFunction,
    registers: MmioRegion,
    timeout_seconds: u32,
    last_pet_micros: u64,
    /// Whether the previous reset of this VM was the watchdog's.
    previous_reset_was_ours: bool,
}

/// Why the watchdog could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchdogError {
    /// Its register BAR is not an assigned memory BAR.
    BarUnusable,
}

impl core::fmt::Display for WatchdogError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            WatchdogError::BarUnusable => {
                f.write_str("its register BAR is not an assigned memory BAR")
            }
        }
    }
}

/// Whether `info` is a 6300ESB watchdog function.
pub fn is_watchdog(info: &DeviceFunctionInfo) -> bool {
    info.vendor_id == VENDOR_INTEL && info.device_id == DEVICE_6300ESB_WATCHDOG
}

/// The first 6300ESB watchdog function on `bus`.
pub fn find(bus: &PciBus) -> Option<DeviceFunction> {
    bus.functions()
        .find(|(_, info)| is_watchdog(info))
        .map(|(df, _)| df)
}

impl Watchdog {
    /// Programs the watchdog at `df` to act after `timeout_seconds` (clamped to the accepted
    /// range) without a pet, and starts it, locked.
    pub fn start(
        bus: &mut PciBus,
        df: DeviceFunction,
        timeout_seconds: u32,
    ) -> Result<Watchdog, WatchdogError> {
        let timeout_seconds = timeout_seconds.clamp(MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS);
        // BAR 0 is the 16-byte register block (fixed by the 6300ESB): its address is
        // read, not sized.
        let address = bus
            .memory_bar_address(df, 0)
            .ok_or(WatchdogError::BarUnusable)?;
        bus.enable_memory(df);
        // SAFETY: BAR 0 of the 6300ESB watchdog function, a memory BAR the firmware
        // assigned: its four registers, used only through this window.
        let registers = unsafe { MmioRegion::map(address, REGISTERS) }
            .map_err(|_| WatchdogError::BarUnusable)?;
        let config = *bus.config();
        config.write_u16(df, CONFIG_REGISTER, CONFIG_RESET_1KHZ_NO_INTERRUPT);
        // Stopped while it is programmed (ignored if a previous boot locked it running).
        config.write_u8(df, LOCK_REGISTER, 0);
        let mut watchdog = Watchdog {
            location: df,
            registers,
            timeout_seconds,
            last_pet_micros: time::now_micros(),
            previous_reset_was_ours: false,
        };
        watchdog.unlock();
        watchdog.previous_reset_was_ours =
            watchdog.registers.read_u16(RELOAD) & RELOAD_TIMED_OUT != 0;
        let preload = watchdog.stage_preload();
        watchdog.unlock();
        watchdog.registers.write_u32(TIMER1_PRELOAD, preload);
        watchdog.unlock();
        watchdog.registers.write_u32(TIMER2_PRELOAD, preload);
        watchdog.unlock();
        watchdog
            .registers
            .write_u16(RELOAD, RELOAD_TIMED_OUT | RELOAD_RESTART);
        config.write_u8(df, LOCK_REGISTER, LOCK_ENABLE | LOCK_LOCKED);
        watchdog.pet();
        Ok(watchdog)
    }

    /// Each timer's preload: half the timeout, in ticks of the 1 kHz clock.
    fn stage_preload(&self) -> u32 {
        let ticks = self.timeout_seconds as u64 * TIMER_HZ_NUMERATOR / TIMER_HZ_DENOMINATOR / 2;
        ticks.clamp(1, MAX_PRELOAD) as u32
    }

    fn unlock(&self) {
        for step in UNLOCK {
            self.registers.write_u8(RELOAD, step);
        }
    }

    /// Restarts the countdown.
    pub fn pet(&mut self) {
        self.unlock();
        self.registers.write_u16(RELOAD, RELOAD_RESTART);
        self.last_pet_micros = time::now_micros();
    }

    /// Pets the watchdog if a [`Watchdog::pet_interval_micros`] has passed since the last
    /// pet. Cheap otherwise (one clock read): call it as often as convenient.
    pub fn keep_alive(&mut self) {
        if time::now_micros().saturating_sub(self.last_pet_micros) >= self.pet_interval_micros() {
            self.pet();
        }
    }

    /// How often the watchdog is petted: a quarter of the timeout, so three pets in a row
    /// can be late before it acts. The main loop must not sleep longer than this.
    pub fn pet_interval_micros(&self) -> u64 {
        self.timeout_seconds as u64 * 1_000_000 / 4
    }

    /// The configured timeout.
    pub fn timeout_seconds(&self) -> u32 {
        self.timeout_seconds
    }

    /// Where the device sits.
    pub fn location(&self) -> DeviceFunction {
        self.location
    }

    /// Whether this VM's previous reset was the watchdog acting.
    pub fn previous_reset_was_ours(&self) -> bool {
        self.previous_reset_was_ours
    }
}
