//! How a virtio-pci device's queues interrupt: MSI-X, one table entry (and CPU vector) per
//! queue, when the device has the capability and accepts the entries; INTx otherwise.
//!
//! Configuration-change interrupts are not requested (`msix_config` stays
//! [`NO_VECTOR`]): no driver of ours acts on them, and each would only wake the main loop.

use alloc::vec::Vec;

use virtio_drivers::transport::pci::bus::DeviceFunction;

use super::common_cfg::{CommonCfg, NO_VECTOR};
use crate::devices::pci::{msix, PciBus};
use crate::interrupts::Vector;

/// How the queues of a virtio-pci device signal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueInterrupts {
    /// MSI-X: queue `q` uses table entry `min(q, len - 1)`, which delivers `vectors[entry]`.
    Msix(Vec<Vector>),
    /// The legacy INTx line (read the ISR to acknowledge).
    Intx,
}

impl QueueInterrupts {
    /// Turns MSI-X on for `df` with one entry per queue (fewer if its table is smaller) and
    /// checks that the device accepts each queue's entry. Falls back to INTx, with a
    /// warning naming why, if the device has no MSI-X, the table cannot be programmed, the
    /// CPU has no vectors left, or the device refuses an entry.
    pub fn set_up(
        bus: &mut PciBus,
        df: DeviceFunction,
        common: &CommonCfg,
        queues: u16,
    ) -> QueueInterrupts {
        let Some(capability) = msix::find(bus, df) else {
            return QueueInterrupts::Intx;
        };
        let entries = capability.table_size().min(queues.max(1));
        let Some(vectors) = (0..entries)
            .map(|_| Vector::allocate_msi())
            .collect::<Option<Vec<Vector>>>()
        else {
            log::warn!("{df}: no interrupt vectors left for MSI-X: using INTx");
            return QueueInterrupts::Intx;
        };
        if let Err(e) = capability.enable(bus, &vectors) {
            log::warn!("{df}: {e}: using INTx");
            return QueueInterrupts::Intx;
        }
        let interrupts = QueueInterrupts::Msix(vectors);
        let refused = (0..queues).find(|&queue| {
            common.select_queue(queue);
            let entry = interrupts.entry_for(queue).unwrap_or(NO_VECTOR);
            let accepted = common.set_queue_vector(entry) == entry;
            common.set_queue_vector(NO_VECTOR);
            !accepted
        });
        if let Some(queue) = refused {
            log::warn!("{df}: the device refused an MSI-X entry for queue {queue}: using INTx");
            capability.disable(bus);
            return QueueInterrupts::Intx;
        }
        interrupts
    }

    /// The MSI-X table entry of `queue`, if MSI-X is in use.
    pub fn entry_for(&self, queue: u16) -> Option<u16> {
        match self {
            QueueInterrupts::Msix(vectors) => {
                let last = vectors.len().checked_sub(1)?;
                Some(queue.min(last as u16))
            }
            QueueInterrupts::Intx => None,
        }
    }

    /// The CPU vector `queue` interrupts on, if MSI-X is in use.
    pub fn vector_for(&self, queue: u16) -> Option<Vector> {
        match self {
            QueueInterrupts::Msix(vectors) => vectors.get(self.entry_for(queue)? as usize).copied(),
            QueueInterrupts::Intx => None,
        }
    }
}
