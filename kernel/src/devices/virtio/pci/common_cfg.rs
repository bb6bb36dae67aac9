//! The common configuration structure of a modern virtio-pci device (virtio 1.2,
//! 4.1.4.3, `struct virtio_pci_common_cfg`): features, status, and the per-queue registers
//! behind `queue_select`.
//!
//! Every field is accessed with its natural width; 64-bit queue addresses as two 32-bit
//! halves, low first, which the specification allows and every device accepts.

use crate::devices::mmio::MmioRegion;

const DEVICE_FEATURE_SELECT: u64 = 0x00;
const DEVICE_FEATURE: u64 = 0x04;
const DRIVER_FEATURE_SELECT: u64 = 0x08;
const DRIVER_FEATURE: u64 = 0x0c;
const MSIX_CONFIG: u64 = 0x10;
const DEVICE_STATUS: u64 = 0x14;
const CONFIG_GENERATION: u64 = 0x15;
const QUEUE_SELECT: u64 = 0x16;
const QUEUE_SIZE: u64 = 0x18;
const QUEUE_MSIX_VECTOR: u64 = 0x1a;
const QUEUE_ENABLE: u64 = 0x1c;
const QUEUE_NOTIFY_OFF: u64 = 0x1e;
const QUEUE_DESC: u64 = 0x20;
const QUEUE_DRIVER: u64 = 0x28;
const QUEUE_DEVICE: u64 = 0x30;
/// Size of the structure.
pub const LENGTH: u64 = 0x38;

/// "No MSI-X vector": the device does not interrupt for this queue or event.
pub const NO_VECTOR: u16 = 0xffff;

/// The common configuration registers.
pub struct CommonCfg {
    registers: MmioRegion,
}

impl CommonCfg {
    /// The structure in `registers`, if the window is big enough to hold it.
    pub fn new(registers: MmioRegion) -> Option<CommonCfg> {
        (registers.len() >= LENGTH).then_some(CommonCfg { registers })
    }

    /// All 64 feature bits the device offers.
    pub fn device_features(&self) -> u64 {
        self.registers.write_u32(DEVICE_FEATURE_SELECT, 0);
        let low = self.registers.read_u32(DEVICE_FEATURE) as u64;
        self.registers.write_u32(DEVICE_FEATURE_SELECT, 1);
        let high = self.registers.read_u32(DEVICE_FEATURE) as u64;
        low | high << 32
    }

    /// Accepts `features` (a subset of what the device offers).
    pub fn set_driver_features(&self, features: u64) {
        self.registers.write_u32(DRIVER_FEATURE_SELECT, 0);
        self.registers.write_u32(DRIVER_FEATURE, features as u32);
        self.registers.write_u32(DRIVER_FEATURE_SELECT, 1);
        self.registers
            .write_u32(DRIVER_FEATURE, (features >> 32) as u32);
    }

    /// Sets the MSI-X table entry for configuration-change interrupts; returns what the
    /// device accepted ([`NO_VECTOR`] if it refused).
    pub fn set_config_vector(&self, entry: u16) -> u16 {
        self.registers.write_u16(MSIX_CONFIG, entry);
        self.registers.read_u16(MSIX_CONFIG)
    }

    /// The device status byte.
    pub fn status(&self) -> u8 {
        self.registers.read_u8(DEVICE_STATUS)
    }

    /// Writes the device status byte (0 resets the device).
    pub fn set_status(&self, status: u8) {
        self.registers.write_u8(DEVICE_STATUS, status);
    }

    /// The configuration generation counter.
    pub fn config_generation(&self) -> u8 {
        self.registers.read_u8(CONFIG_GENERATION)
    }

    /// Makes `queue` the one the queue registers below refer to.
    pub fn select_queue(&self, queue: u16) {
        self.registers.write_u16(QUEUE_SELECT, queue);
    }

    /// The selected queue's size (its maximum, before the driver sets it; 0: no such queue).
    pub fn queue_size(&self) -> u16 {
        self.registers.read_u16(QUEUE_SIZE)
    }

    /// Sets the selected queue's size.
    pub fn set_queue_size(&self, size: u16) {
        self.registers.write_u16(QUEUE_SIZE, size);
    }

    /// Sets the selected queue's MSI-X table entry; returns what the device accepted
    /// ([`NO_VECTOR`] if it refused).
    pub fn set_queue_vector(&self, entry: u16) -> u16 {
        self.registers.write_u16(QUEUE_MSIX_VECTOR, entry);
        self.registers.read_u16(QUEUE_MSIX_VECTOR)
    }

    /// Whether the selected queue is enabled.
    pub fn queue_enabled(&self) -> bool {
        self.registers.read_u16(QUEUE_ENABLE) == 1
    }

    /// Enables the selected queue (after its size, addresses and vector are set).
    pub fn enable_queue(&self) {
        self.registers.write_u16(QUEUE_ENABLE, 1);
    }

    /// The selected queue's notification offset (in units of the notify multiplier).
    pub fn queue_notify_off(&self) -> u16 {
        self.registers.read_u16(QUEUE_NOTIFY_OFF)
    }

    /// Sets the physical addresses of the selected queue's descriptor table, driver
    /// (available) ring and device (used) ring.
    pub fn set_queue_areas(&self, descriptors: u64, driver: u64, device: u64) {
        for (offset, address) in [
            (QUEUE_DESC, descriptors),
            (QUEUE_DRIVER, driver),
            (QUEUE_DEVICE, device),
        ] {
            self.registers.write_u32(offset, address as u32);
            self.registers.write_u32(offset + 4, (address >> 32) as u32);
        }
    }
}
