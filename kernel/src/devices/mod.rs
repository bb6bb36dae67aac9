//! Device drivers of the platform layer (bare metal only).
//!
//! - [`lapic`], [`ioapic`], [`pic`]: interrupt controllers.
//! - [`pit`]: the legacy timer, used once to calibrate the TSC and the LAPIC timer.
//! - [`pci`]: PCI configuration access (ECAM or port I/O) and enumeration.
//! - [`virtio`]: virtio-net NICs over PCI or MMIO, via the `virtio-drivers` crate.

pub mod ioapic;
pub mod lapic;
pub mod pci;
pub mod pic;
pub mod pit;
pub mod virtio;
