//! Device drivers of the platform layer (bare metal only).
//!
//! - [`lapic`], [`ioapic`], [`pic`]: interrupt controllers.
//! - [`pit`]: the legacy timer, used once to calibrate the TSC and the LAPIC timer.
//! - [`mmio`]: bounds-checked windows of device registers.
//! - [`pci`]: PCI configuration access (ECAM or port I/O), enumeration, INTx and MSI-X.
//! - [`virtio`]: virtio-net NICs over PCI (our transport) or MMIO, via `virtio-drivers`.
//! - [`watchdog`]: the i6300ESB hardware watchdog.
//! - [`pcap_port`]: COM2, where the packet capture's pcap stream goes.

pub mod ioapic;
pub mod lapic;
pub mod mmio;
pub mod pcap_port;
pub mod pci;
pub mod pic;
pub mod pit;
pub mod virtio;
pub mod watchdog;
