//! Where a modern virtio-pci device keeps its registers (virtio 1.2, 4.1.4): one
//! vendor-specific PCI capability per structure, each naming a BAR, an offset and a length.

use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};

use super::TransportError;
use crate::devices::mmio::MmioRegion;
use crate::devices::pci::PciBus;

/// Capability ID of vendor-specific capabilities.
const CAP_ID_VENDOR: u8 = 0x09;
/// `cfg_type` values.
const COMMON_CFG: u8 = 1;
const NOTIFY_CFG: u8 = 2;
const ISR_CFG: u8 = 3;
const DEVICE_CFG: u8 = 4;
/// Offsets in `struct virtio_pci_cap`.
const CAP_BAR: u8 = 4;
const CAP_OFFSET: u8 = 8;
const CAP_LENGTH: u8 = 12;
/// Offset of `notify_off_multiplier` in `struct virtio_pci_notify_cap`.
const CAP_NOTIFY_OFF_MULTIPLIER: u8 = 16;
/// Smallest `cap_len` of a `virtio_pci_cap`, and of a `virtio_pci_notify_cap`.
const CAP_LEN: u8 = 16;
const NOTIFY_CAP_LEN: u8 = 20;
/// BARs 0-5 can hold structures.
const MAX_BAR: u8 = 5;

/// A structure's place: BAR, offset and length.
#[derive(Clone, Copy, Debug)]
struct Place {
    bar: u8,
    offset: u32,
    length: u32,
}

/// The places of a device's structures.
#[derive(Clone, Copy, Debug, Default)]
pub struct Structures {
    common: Option<Place>,
    notify: Option<(Place, u32)>,
    isr: Option<Place>,
    device: Option<Place>,
}

/// The structures, mapped.
pub struct MappedStructures {
    /// Common configuration.
    pub common: MmioRegion,
    /// Queue notification area, and the multiplier of each queue's notify offset.
    pub notify: (MmioRegion, u32),
    /// ISR status (one byte; reading it clears it and deasserts INTx).
    pub isr: MmioRegion,
    /// Device-specific configuration, if the device has any.
    pub device: Option<MmioRegion>,
}

impl Structures {
    /// Reads `df`'s vendor capabilities. The first capability of each type is used, as the
    /// specification asks of drivers.
    pub fn find(bus: &mut PciBus, df: DeviceFunction) -> Structures {
        let config = *bus.config();
        let mut found = Structures::default();
        for capability in bus.root().capabilities(df) {
            let cap_len = capability.private_header as u8;
            let cfg_type = (capability.private_header >> 8) as u8;
            if capability.id != CAP_ID_VENDOR || cap_len < CAP_LEN {
                continue;
            }
            let at = capability.offset;
            let place = Place {
                bar: config.read_word(df, at + CAP_BAR) as u8,
                offset: config.read_word(df, at + CAP_OFFSET),
                length: config.read_word(df, at + CAP_LENGTH),
            };
            if place.bar > MAX_BAR {
                continue;
            }
            match cfg_type {
                COMMON_CFG if found.common.is_none() => found.common = Some(place),
                NOTIFY_CFG if found.notify.is_none() && cap_len >= NOTIFY_CAP_LEN => {
                    let multiplier = config.read_word(df, at + CAP_NOTIFY_OFF_MULTIPLIER);
                    found.notify = Some((place, multiplier));
                }
                ISR_CFG if found.isr.is_none() => found.isr = Some(place),
                DEVICE_CFG if found.device.is_none() => found.device = Some(place),
                _ => {}
            }
        }
        found
    }

    /// Maps every structure, checking that each lies inside its BAR.
    pub fn map(
        &self,
        bus: &mut PciBus,
        df: DeviceFunction,
    ) -> Result<MappedStructures, TransportError> {
        let common = self
            .common
            .ok_or(TransportError::Missing("common configuration"))?;
        let (notify, multiplier) = self.notify.ok_or(TransportError::Missing("notification"))?;
        let isr = self.isr.ok_or(TransportError::Missing("ISR status"))?;
        let device = match self.device {
            Some(place) => Some(map_place(bus, df, place)?),
            None => None,
        };
        Ok(MappedStructures {
            common: map_place(bus, df, common)?,
            notify: (map_place(bus, df, notify)?, multiplier),
            isr: map_place(bus, df, isr)?,
            device,
        })
    }
}

fn map_place(
    bus: &mut PciBus,
    df: DeviceFunction,
    place: Place,
) -> Result<MmioRegion, TransportError> {
    let (address, size) = bus
        .memory_bar(df, place.bar)
        .ok_or(TransportError::BarUnusable(place.bar))?;
    let end = place.offset as u64 + place.length as u64;
    if place.length == 0 || end > size {
        return Err(TransportError::OutsideBar(place.bar));
    }
    // SAFETY: the range is one of this virtio function's register structures, inside a
    // memory BAR the firmware assigned to it (checked above); the transport being built is
    // its only user.
    unsafe { MmioRegion::map(address + place.offset as u64, place.length as u64) }
        .map_err(|_| TransportError::OutsideBar(place.bar))
}
