//! The NICs together: the sink the data plane transmits through ([`NicSink`]), receive
//! buffers lent from one NIC to another's transmit queue ([`finish`]), and the service
//! that ends each round of the main loop ([`service`]: completed transmissions taken
//! back, lent buffers returned, receive rings refilled, devices notified once), and the
//! drivers' losses told to the data plane ([`report_losses`]).

use dataplane::appliance::Appliance;
use dataplane::offload::{Offload, VIRTIO_NET_HDR_LEN};
use dataplane::transmit_wait::StallReport;
use dataplane::FrameSink;
use smoltcp::time::Duration;

use super::{Nic, Received, RxFrame};
use crate::devices::virtio::FoundNic;

/// Frames up to this long are copied rather than lent: a copy of a few dozen bytes costs
/// less than holding a receive buffer until the egress device is done with it (a big
/// receive buffer holds a 64 KiB super-frame; a small packet would pin one).
const COPY_BREAK: usize = 256;

/// A received frame the data plane transmits as it is: queued on `egress` from its own
/// buffer once the data plane is done with it.
#[derive(Clone, Copy, Debug)]
pub struct Lend {
    egress: u8,
    len: usize,
    header: [u8; VIRTIO_NET_HDR_LEN],
}

/// Transmits on the kernel's NICs. While the data plane handles a received frame, the
/// sink knows where that frame lies: when the data plane sends that very frame on (a
/// forwarded packet, rewritten in place), its buffer is lent to the egress NIC instead of
/// being copied — if the frame is longer than [`COPY_BREAK`], the receiving NIC may lend
/// another buffer and the egress has a descriptor for it.
pub struct NicSink<'a> {
    nics: &'a mut [FoundNic],
    receiving: Option<Received>,
    lend: Option<Lend>,
}

impl<'a> NicSink<'a> {
    /// A sink for frames the appliance sends on its own (timers, announcements).
    pub fn new(nics: &'a mut [FoundNic]) -> NicSink<'a> {
        NicSink {
            nics,
            receiving: None,
            lend: None,
        }
    }

    /// A sink for the frames sent while the data plane handles `frame`.
    pub fn receiving(nics: &'a mut [FoundNic], frame: &RxFrame) -> NicSink<'a> {
        NicSink {
            nics,
            receiving: Some(frame.received()),
            lend: None,
        }
    }

    /// Where the received frame goes without a copy, if it does.
    pub fn lend(&self) -> Option<Lend> {
        self.lend
    }

    /// Whether `frame` is (the start of) the frame being received.
    fn is_received(&self, frame: &[u8]) -> Option<Received> {
        self.receiving
            .filter(|r| r.start == frame.as_ptr() as usize && frame.len() <= r.len)
    }

    /// Whether NIC `origin` may lend a buffer holding `len` bytes to NIC `egress` now.
    fn may_lend(&self, origin: usize, egress: u8, len: usize) -> bool {
        self.nics[origin].nic.may_lend(len) && self.nics[egress as usize].nic.can_reserve()
    }

    /// A super-frame that cannot be lent cannot be copied either: rather than drop it (TCP
    /// would lose a whole window's worth at once), tells the devices about the frames
    /// queued this round — the lent buffers it waits for are among them, unannounced
    /// until the round ends — and takes completed transmissions back until `origin` may
    /// lend to `egress`, for as long as the egress's `TransmitWait` allows (the wait is
    /// for that frame to that egress). A wait that runs out marks the NIC that held it
    /// up, and frames do not wait on it again until it makes progress (the lender has a
    /// lent buffer back, the egress completes a transmission): an egress that has stopped
    /// transmitting (a client that no longer reads) costs the appliance one wait, not one
    /// per frame.
    fn wait_until_lendable(&mut self, origin: usize, egress: u8, len: usize) {
        let egress_index = egress as usize;
        if !self.nics[origin].nic.may_wait_to_lend() {
            return;
        }
        let patience = self.nics[egress_index].nic.transmit_patience();
        if patience == Duration::ZERO {
            return;
        }
        for found in self.nics.iter_mut() {
            found.nic.notify();
        }
        let start = crate::time::now();
        let mut waited = Duration::ZERO;
        while waited < patience {
            take_back_transmitted(self.nics);
            if self.may_lend(origin, egress, len) {
                self.nics[egress_index].nic.transmit_waited(waited, false);
                return;
            }
            core::hint::spin_loop();
            waited = crate::time::now() - start;
        }
        let egress_full = !self.nics[egress_index].nic.can_reserve();
        self.nics[egress_index]
            .nic
            .transmit_waited(waited, egress_full);
        if !self.nics[origin].nic.may_lend(len) {
            self.nics[origin].nic.lender_stuck();
        }
    }
}

impl FrameSink for NicSink<'_> {
    fn transmit(&mut self, nic: u8, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool {
        match self.nics.get_mut(nic as usize) {
            Some(found) => found.nic.transmit_copy([0; VIRTIO_NET_HDR_LEN], len, fill),
            None => false,
        }
    }

    fn transmit_frame(&mut self, nic: u8, frame: &[u8], offload: &Offload) -> bool {
        if nic as usize >= self.nics.len() {
            return false;
        }
        let header = offload.to_virtio_net_hdr(frame);
        let lendable = self.lend.is_none() && frame.len() > COPY_BREAK;
        if let Some(received) = self.is_received(frame).filter(|_| lendable) {
            let origin = received.origin as usize;
            let len = frame.len();
            if !self.may_lend(origin, nic, len) {
                // Its buffers may be back from transmissions completed since the round began.
                take_back_transmitted(self.nics);
            }
            if !self.may_lend(origin, nic, len) && !Nic::can_copy(len) {
                self.wait_until_lendable(origin, nic, len);
            }
            if self.nics[origin].nic.may_lend(len) && self.nics[nic as usize].nic.reserve() {
                self.lend = Some(Lend {
                    egress: nic,
                    len: frame.len(),
                    header,
                });
                return true;
            }
        }
        self.nics[nic as usize]
            .nic
            .transmit_copy(header, frame.len(), |out| out.copy_from_slice(frame))
    }
}

/// Done with a received frame: its buffer is queued on the egress NIC if the data plane
/// sent it on ([`NicSink::lend`]), else it goes back to its NIC's pool.
pub fn finish(nics: &mut [FoundNic], frame: RxFrame, lend: Option<Lend>) {
    let origin = frame.origin() as usize;
    let Some(lend) = lend else {
        nics[origin].nic.recycle(frame);
        return;
    };
    let buffer_len = frame.buffer_len();
    match nics[lend.egress as usize]
        .nic
        .transmit_lent(frame, lend.len, lend.header)
    {
        Ok(()) => nics[origin].nic.lent_one(buffer_len),
        Err(frame) => nics[origin].nic.recycle(frame),
    }
}

/// The end of a round: every NIC's completed transmissions taken back, lent buffers
/// returned to their NICs, receive rings refilled, and each device notified at most once
/// per queue. When the rest of the appliance has eaten into the heap's reserve, every NIC
/// gives back what it holds beyond its share; when a NIC's pool could not grow for the
/// reserve, the others give back the buffers they held beyond their rings' depth without
/// using them.
pub fn service(nics: &mut [FoundNic]) {
    take_back_transmitted(nics);
    let mut starved = false;
    for found in nics.iter_mut() {
        found.nic.refill();
        found.nic.notify();
        starved |= found.nic.take_starved();
    }
    if nics.first().is_some_and(|found| found.nic.heap_low()) {
        for found in nics.iter_mut() {
            found.nic.shed();
        }
    } else if starved {
        for found in nics.iter_mut() {
            found.nic.release_idle();
        }
    }
}

/// Every NIC's completed transmissions taken back, and lent buffers returned to their NICs.
fn take_back_transmitted(nics: &mut [FoundNic]) {
    for found in nics.iter_mut() {
        found.nic.reclaim();
    }
    for index in 0..nics.len() {
        let mut returned = core::mem::take(&mut nics[index].nic.returned);
        for (origin, buffer) in returned.drain(..) {
            if let Some(owner) = nics.get_mut(origin as usize) {
                owner.nic.take_back(buffer);
            }
        }
        nics[index].nic.returned = returned;
    }
}

/// Whether any NIC has a received frame waiting (see [`super::Nic::has_received`]): the
/// main loop looks before it halts.
pub fn any_received(nics: &[FoundNic]) -> bool {
    nics.iter().any(|found| found.nic.has_received())
}

/// Tells the data plane what each NIC's driver has lost so far (its stats line shows it),
/// and logs a NIC whose device has stopped transmitting (a client that no longer reads),
/// and its return.
pub fn report_losses(nics: &mut [FoundNic], appliance: &mut Appliance<'_>) {
    for (index, found) in nics.iter_mut().enumerate() {
        appliance.set_device_losses(index as u8, found.nic.counters.losses);
        match found.nic.transmit_report() {
            Some(StallReport::Stalled(after)) => log::warn!(
                "nic{index} transmit stalled: the device has sent nothing for {} s; frames for it are dropped (tx-full) until it sends again",
                Seconds(after)
            ),
            Some(StallReport::Resumed(after)) => log::info!(
                "nic{index} transmits again after {} s stalled",
                Seconds(after)
            ),
            None => {}
        }
    }
}

/// A duration shown in seconds with one decimal.
struct Seconds(Duration);

impl core::fmt::Display for Seconds {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let tenths = self.0.total_millis() / 100;
        write!(f, "{}.{}", tenths / 10, tenths % 10)
    }
}
