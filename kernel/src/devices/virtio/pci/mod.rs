//! Our modern virtio-pci transport (virtio 1.2, 4.1), implementing `virtio-drivers`'
//! [`Transport`] so that its queues and drivers run over it.
//!
//! Why not `virtio_drivers::transport::pci::PciTransport`: it keeps the common
//! configuration private, so a driver cannot give queues MSI-X vectors. This one finds the
//! structures ([`capabilities`]), drives the common configuration ([`common_cfg`]), sets up
//! MSI-X or falls back to INTx ([`interrupts`]), and programs each queue's MSI-X entry in
//! [`Transport::queue_set`], before the queue is enabled. It negotiates whatever feature
//! bits the driver on top asks for: nothing here is specific to one device type.

mod capabilities;
mod common_cfg;
mod interrupts;

use alloc::vec::Vec;
use core::mem::{align_of, size_of, MaybeUninit};

use virtio_drivers::transport::pci::bus::{DeviceFunction, DeviceFunctionInfo};
use virtio_drivers::transport::pci::virtio_device_type;
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{Error, PhysAddr};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::devices::mmio::MmioRegion;
use crate::devices::pci::PciBus;
use capabilities::Structures;
use common_cfg::{CommonCfg, NO_VECTOR};
pub use interrupts::QueueInterrupts;

/// Reads of the status register, after a reset, before the device is declared stuck.
const RESET_POLLS: u32 = 1_000_000;

/// Why a virtio-pci function could not be driven.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// Not a virtio device this transport knows.
    NotVirtio,
    /// A required structure's capability is missing (a legacy-only device).
    Missing(&'static str),
    /// A structure's BAR is not an assigned memory BAR.
    BarUnusable(u8),
    /// A structure lies outside its BAR (or is too small for its layout).
    OutsideBar(u8),
    /// The device did not come out of reset.
    ResetTimeout,
}

impl core::fmt::Display for TransportError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            TransportError::NotVirtio => f.write_str("not a virtio device"),
            TransportError::Missing(what) => write!(
                f,
                "no virtio {what} structure: not a modern virtio device (use disable-legacy=on)"
            ),
            TransportError::BarUnusable(bar) => {
                write!(f, "BAR {bar} is not an assigned memory BAR")
            }
            TransportError::OutsideBar(bar) => {
                write!(f, "a virtio structure does not fit BAR {bar}")
            }
            TransportError::ResetTimeout => f.write_str("the device did not finish its reset"),
        }
    }
}

/// A modern virtio-pci device.
pub struct VirtioPciTransport {
    device_type: DeviceType,
    common: CommonCfg,
    notify: MmioRegion,
    notify_off_multiplier: u32,
    isr: MmioRegion,
    device_config: Option<MmioRegion>,
    interrupts: QueueInterrupts,
    /// Byte offset in `notify` of each queue set up so far, by queue index.
    notify_offsets: Vec<Option<u64>>,
}

impl VirtioPciTransport {
    /// Takes over the virtio function `df` (`info` from enumeration): maps its structures,
    /// resets it and sets up its interrupts for `queues` queues (MSI-X if it can).
    pub fn new(
        bus: &mut PciBus,
        df: DeviceFunction,
        info: &DeviceFunctionInfo,
        queues: u16,
    ) -> Result<VirtioPciTransport, TransportError> {
        let device_type = virtio_device_type(info).ok_or(TransportError::NotVirtio)?;
        bus.enable_memory_and_bus_master(df);
        let mapped = Structures::find(bus, df).map(bus, df)?;
        let common = CommonCfg::new(mapped.common).ok_or(TransportError::OutsideBar(0))?;
        common.set_status(0);
        if !(0..RESET_POLLS).any(|_| common.status() == 0) {
            return Err(TransportError::ResetTimeout);
        }
        let interrupts = QueueInterrupts::set_up(bus, df, &common, queues);
        let (notify, notify_off_multiplier) = mapped.notify;
        Ok(VirtioPciTransport {
            device_type,
            common,
            notify,
            notify_off_multiplier,
            isr: mapped.isr,
            device_config: mapped.device,
            interrupts,
            notify_offsets: Vec::new(),
        })
    }

    /// How the queues interrupt.
    pub fn interrupts(&self) -> &QueueInterrupts {
        &self.interrupts
    }

    /// The device configuration window for an access of `size` bytes at `offset`, if it
    /// has one and the access fits, is aligned, and is at most 4-byte aligned (virtio only
    /// guarantees that much).
    fn device_config(
        &self,
        offset: usize,
        size: usize,
        align: usize,
    ) -> Result<&MmioRegion, Error> {
        let window = self
            .device_config
            .as_ref()
            .ok_or(Error::ConfigSpaceMissing)?;
        let fits = offset
            .checked_add(size)
            .is_some_and(|end| end as u64 <= window.len());
        if !fits {
            return Err(Error::ConfigSpaceTooSmall);
        }
        if align > 4 || offset % align != 0 {
            return Err(Error::InvalidParam);
        }
        Ok(window)
    }
}

impl Transport for VirtioPciTransport {
    fn device_type(&self) -> DeviceType {
        self.device_type
    }

    fn read_device_features(&mut self) -> u64 {
        self.common.device_features()
    }

    fn write_driver_features(&mut self, driver_features: u64) {
        self.common.set_driver_features(driver_features);
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.common.select_queue(queue);
        self.common.queue_size().into()
    }

    fn notify(&mut self, queue: u16) {
        let Some(offset) = self.notify_offsets.get(queue as usize).copied().flatten() else {
            return;
        };
        self.notify.write_u16(offset, queue);
    }

    fn get_status(&self) -> DeviceStatus {
        DeviceStatus::from_bits_truncate(self.common.status().into())
    }

    fn set_status(&mut self, status: DeviceStatus) {
        self.common.set_status(status.bits() as u8);
    }

    fn set_guest_page_size(&mut self, _guest_page_size: u32) {
        // Modern devices take queue addresses, not page numbers.
    }

    fn requires_legacy_layout(&self) -> bool {
        false
    }

    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver_area: PhysAddr,
        device_area: PhysAddr,
    ) {
        self.common.select_queue(queue);
        self.common.set_queue_size(size as u16);
        self.common
            .set_queue_areas(descriptors, driver_area, device_area);
        self.common.set_config_vector(NO_VECTOR);
        if let Some(entry) = self.interrupts.entry_for(queue) {
            let accepted = self.common.set_queue_vector(entry);
            if accepted != entry {
                // It accepted this very entry when the transport was set up: a device that
                // changes its mind is broken, and a queue that never interrupts would
                // black-hole its NIC.
                crate::fatal::stop(format_args!(
                    "virtio device refused MSI-X entry {entry} for queue {queue} (it answered {accepted:#x}) after accepting it at set-up"
                ));
            }
        }
        let offset = self.common.queue_notify_off() as u64 * self.notify_off_multiplier as u64;
        if self.notify_offsets.len() <= queue as usize {
            self.notify_offsets.resize(queue as usize + 1, None);
        }
        self.notify_offsets[queue as usize] = self.notify.split(offset, 2).map(|_| offset);
        self.common.enable_queue();
    }

    fn queue_unset(&mut self, _queue: u16) {
        // A modern device cannot disable one queue; only a device reset does.
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        self.common.select_queue(queue);
        self.common.queue_enabled()
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        match self.interrupts {
            // With MSI-X the ISR is not used for queue interrupts (virtio 1.2, 4.1.4.5.2).
            QueueInterrupts::Msix(_) => InterruptStatus::empty(),
            // Reading the ISR clears it and deasserts the INTx line.
            QueueInterrupts::Intx => InterruptStatus::from_bits_retain(self.isr.read_u8(0).into()),
        }
    }

    fn read_config_generation(&self) -> u32 {
        self.common.config_generation().into()
    }

    fn read_config_space<T: FromBytes + IntoBytes>(&self, offset: usize) -> Result<T, Error> {
        let window = self.device_config(offset, size_of::<T>(), align_of::<T>())?;
        let mut value = MaybeUninit::<T>::uninit();
        let bytes = value.as_mut_ptr().cast::<u8>();
        // Each piece with the field's natural width (virtio 1.2, 4.1.3.1).
        let width = align_of::<T>();
        for at in (0..size_of::<T>()).step_by(width) {
            let register = (offset + at) as u64;
            // SAFETY: `at + width <= size_of::<T>()` (T's size is a multiple of its
            // alignment), so each write stays inside `value`; `bytes` is byte-aligned.
            unsafe {
                match width {
                    1 => bytes.add(at).write(window.read_u8(register)),
                    2 => bytes
                        .add(at)
                        .cast::<[u8; 2]>()
                        .write(window.read_u16(register).to_ne_bytes()),
                    _ => bytes
                        .add(at)
                        .cast::<[u8; 4]>()
                        .write(window.read_u32(register).to_ne_bytes()),
                }
            }
        }
        // SAFETY: every byte of `value` was written above, and `T: FromBytes` makes any
        // byte pattern a valid `T`.
        Ok(unsafe { value.assume_init() })
    }

    fn write_config_space<T: IntoBytes + Immutable>(
        &mut self,
        offset: usize,
        value: T,
    ) -> Result<(), Error> {
        let window = self.device_config(offset, size_of::<T>(), align_of::<T>())?;
        // SAFETY: `T: IntoBytes` guarantees `value` has no padding or uninitialised bytes, so
        // viewing its `size_of::<T>()` bytes is sound; `T: Immutable` means no interior
        // mutability changes them while borrowed.
        let bytes = unsafe {
            core::slice::from_raw_parts((&value as *const T).cast::<u8>(), size_of::<T>())
        };
        // Each piece with the field's natural width (virtio 1.2, 4.1.3.1).
        let width = align_of::<T>();
        for (i, piece) in bytes.chunks(width).enumerate() {
            let register = (offset + i * width) as u64;
            match *piece {
                [byte] => window.write_u8(register, byte),
                [a, b] => window.write_u16(register, u16::from_ne_bytes([a, b])),
                [a, b, c, d] => window.write_u32(register, u32::from_ne_bytes([a, b, c, d])),
                _ => return Err(Error::InvalidParam),
            }
        }
        Ok(())
    }
}

impl Drop for VirtioPciTransport {
    fn drop(&mut self) {
        // A device we give up on stops using its queues' memory, which is about to be freed.
        self.common.set_status(0);
    }
}
