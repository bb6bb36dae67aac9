//! ACPI power management: the power button (what `virsh shutdown` / QEMU's
//! `system_powerdown` press) and soft-off.
//!
//! Full ACPI machines (`pc`, `q35`): the chipset is switched into ACPI mode if needed, the
//! fixed power-button event is enabled and the SCI routed; the event is read and cleared
//! from PM1 status; soft-off writes `SLP_TYP(\_S5) | SLP_EN` to PM1a control.
//! Hardware-reduced machines (`microvm`): the Generic Event Device interrupts and its event
//! register says "power down"; soft-off writes the sleep control register.

use spin::Once;
use x86_64::instructions::port::Port;

use super::Firmware;
use crate::devices::ioapic;
use crate::interrupts::{lines, Vector};
use crate::memory::paging;

/// PM1 status/enable bit of the power button.
const PWRBTN: u16 = 1 << 8;
/// PM1 control: SCI_EN (ACPI mode active).
const SCI_EN: u16 = 1 << 0;
/// PM1 control: SLP_EN.
const SLP_EN: u16 = 1 << 13;
/// Hardware-reduced sleep control: SLP_EN.
const HW_SLP_EN: u8 = 1 << 5;
/// GED event bit for "power down" (QEMU's ACPI_GED_PWR_DOWN_EVT).
const GED_POWER_DOWN: u32 = 1 << 1;

impl core::fmt::Display for ButtonWiring {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            ButtonWiring::Sci(gsi) => write!(f, "ACPI SCI on GSI {gsi}"),
            ButtonWiring::Ged(gsi) => write!(f, "ACPI GED on GSI {gsi}"),
            ButtonWiring::None => f.write_str("none"),
        }
    }
}

static FIRMWARE: Once<Firmware> = Once::new();
/// The vector the power button interrupts on, once routed.
static BUTTON_VECTOR: Once<Vector> = Once::new();

fn read16(port: u16) -> u16 {
    // SAFETY: reading a PM1 register named by the FADT has no side effect.
    unsafe { Port::<u16>::new(port).read() }
}

fn write16(port: u16, value: u16) {
    // SAFETY: PM1 registers named by the FADT; callers write only documented bits.
    unsafe { Port::<u16>::new(port).write(value) }
}

/// How the power button reaches us, for the boot log.
#[derive(Clone, Copy, Debug)]
pub enum ButtonWiring {
    /// ACPI fixed event via the SCI on this GSI.
    Sci(u32),
    /// Generic Event Device on this GSI.
    Ged(u32),
    /// No power button (no FADT, or nothing usable).
    None,
}

/// Enables the power button interrupt. Call after the I/O APICs are set up.
pub fn init(firmware: &Firmware) -> ButtonWiring {
    let firmware = FIRMWARE.call_once(|| *firmware);
    let Some(power) = firmware.power else {
        return ButtonWiring::None;
    };
    if !power.hardware_reduced && power.pm1a_event != 0 && power.pm1a_control != 0 {
        if read16(power.pm1a_control) & SCI_EN == 0
            && power.smi_command != 0
            && power.acpi_enable != 0
        {
            // SAFETY: writing the FADT's ACPI_ENABLE value to its SMI command port is the
            // documented way to hand power management to the OS.
            unsafe { Port::<u8>::new(power.smi_command as u16).write(power.acpi_enable) };
            for _ in 0..1_000_000 {
                if read16(power.pm1a_control) & SCI_EN != 0 {
                    break;
                }
                core::hint::spin_loop();
            }
        }
        let enable_port = power.pm1a_event + (power.pm1_event_len as u16 / 2);
        write16(power.pm1a_event, PWRBTN); // clear a stale press
        write16(enable_port, PWRBTN);
        let (gsi, trigger) = firmware.isa_irq(power.sci_irq as u8);
        // The SCI is level-triggered, active-low unless the MADT says otherwise (ACPI 5.2.12.5).
        let trigger = if firmware.overrides_irq(power.sci_irq as u8) {
            trigger
        } else {
            ioapic::Trigger {
                level: true,
                active_low: true,
            }
        };
        route(gsi, trigger);
        return ButtonWiring::Sci(gsi);
    }
    if let Some(ged) = firmware.ged {
        if paging::map_device(ged.event_register, 4).is_ok() {
            let (gsi, trigger) = firmware.isa_irq(ged.gsi as u8);
            let gsi = if ged.gsi < 16 { gsi } else { ged.gsi };
            route(gsi, trigger);
            return ButtonWiring::Ged(gsi);
        }
    }
    ButtonWiring::None
}

fn route(gsi: u32, trigger: ioapic::Trigger) {
    match lines::route(gsi, trigger) {
        Ok(vector) => {
            BUTTON_VECTOR.call_once(|| vector);
        }
        Err(e) => log::warn!("power button: {e}: `virsh shutdown` will not reach the appliance"),
    }
}

/// The vector the power button interrupts on, if it is routed.
pub fn button_vector() -> Option<Vector> {
    BUTTON_VECTOR.get().copied()
}

/// Whether the power button was pressed since the last call (clears the event).
pub fn take_button_press() -> bool {
    let Some(firmware) = FIRMWARE.get() else {
        return false;
    };
    let Some(power) = firmware.power else {
        return false;
    };
    if !power.hardware_reduced && power.pm1a_event != 0 {
        let status = read16(power.pm1a_event);
        if status & PWRBTN != 0 {
            write16(power.pm1a_event, PWRBTN); // write-1-to-clear
            return true;
        }
        return false;
    }
    if let Some(ged) = firmware.ged {
        // SAFETY: the GED event selector register, mapped in `init`; reading returns and
        // clears the pending events.
        let events = unsafe { (ged.event_register as *const u32).read_volatile() };
        return events & GED_POWER_DOWN != 0;
    }
    false
}

/// Powers the machine off through ACPI (S5). Returns only if that did not work.
pub fn power_off() {
    let Some(firmware) = FIRMWARE.get() else {
        return;
    };
    let Some(power) = firmware.power else { return };
    let (slp_typ_a, _) = firmware.s5.unwrap_or((0, 0));
    if !power.hardware_reduced && power.pm1a_control != 0 {
        let control = read16(power.pm1a_control) & !(0b111 << 10);
        write16(
            power.pm1a_control,
            control | ((slp_typ_a as u16) << 10) | SLP_EN,
        );
    } else if let Some((space, address)) = power.sleep_control {
        let value = ((slp_typ_a & 7) << 2) | HW_SLP_EN;
        if space == 1 {
            // SAFETY: the FADT's sleep control register; writing SLP_EN enters the sleep state.
            unsafe { Port::<u8>::new(address as u16).write(value) };
        } else if paging::map_device(address, 1).is_ok() {
            // SAFETY: as above, memory-mapped.
            unsafe { (address as *mut u8).write_volatile(value) };
        }
    }
}
