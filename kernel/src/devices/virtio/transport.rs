//! The transports a NIC can sit on: our virtio-pci transport or `virtio-drivers`'
//! virtio-mmio one, behind one type so that every NIC is the same type.

use virtio_drivers::transport::mmio::MmioTransport;
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{Error, PhysAddr};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use super::pci::VirtioPciTransport;

/// A virtio device's transport.
pub enum NicTransport {
    /// PCI (`q35`, `pc`).
    Pci(VirtioPciTransport),
    /// MMIO (`microvm`).
    Mmio(MmioTransport<'static>),
}

/// Forwards a call to whichever transport this is.
macro_rules! each {
    ($self:ident, $t:ident => $call:expr) => {
        match $self {
            NicTransport::Pci($t) => $call,
            NicTransport::Mmio($t) => $call,
        }
    };
}

impl Transport for NicTransport {
    fn device_type(&self) -> DeviceType {
        each!(self, t => t.device_type())
    }

    fn read_device_features(&mut self) -> u64 {
        each!(self, t => t.read_device_features())
    }

    fn write_driver_features(&mut self, driver_features: u64) {
        each!(self, t => t.write_driver_features(driver_features))
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        each!(self, t => t.max_queue_size(queue))
    }

    fn notify(&mut self, queue: u16) {
        each!(self, t => t.notify(queue))
    }

    fn get_status(&self) -> DeviceStatus {
        each!(self, t => t.get_status())
    }

    fn set_status(&mut self, status: DeviceStatus) {
        each!(self, t => t.set_status(status))
    }

    fn set_guest_page_size(&mut self, guest_page_size: u32) {
        each!(self, t => t.set_guest_page_size(guest_page_size))
    }

    fn requires_legacy_layout(&self) -> bool {
        each!(self, t => t.requires_legacy_layout())
    }

    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver_area: PhysAddr,
        device_area: PhysAddr,
    ) {
        each!(self, t => t.queue_set(queue, size, descriptors, driver_area, device_area))
    }

    fn queue_unset(&mut self, queue: u16) {
        each!(self, t => t.queue_unset(queue))
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        each!(self, t => t.queue_used(queue))
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        each!(self, t => t.ack_interrupt())
    }

    fn read_config_generation(&self) -> u32 {
        each!(self, t => t.read_config_generation())
    }

    fn read_config_space<T: FromBytes + IntoBytes>(&self, offset: usize) -> Result<T, Error> {
        each!(self, t => t.read_config_space(offset))
    }

    fn write_config_space<T: IntoBytes + Immutable>(
        &mut self,
        offset: usize,
        value: T,
    ) -> Result<(), Error> {
        each!(self, t => t.write_config_space(offset, value))
    }
}
