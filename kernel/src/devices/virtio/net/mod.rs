//! One virtio-net NIC: our own driver over `virtio-drivers`' split virtqueues
//! ([`VirtQueue`]) and its HAL, on either transport.
//!
//! Why not `virtio_drivers::device::net::VirtIONetRaw`: it negotiates a fixed set of
//! features, without the checksum and segmentation offloads, so every forwarded 64 KiB TCP
//! super-frame of the host would be cut into 1,500-byte packets and checksummed in the
//! guest. This driver decides every feature bit in [`features::accept`] and moves frames
//! with their `virtio_net_hdr` (read into and written from [`Offload`]).
//!
//! - Receive buffers come from the NIC's [`Pool`], sized by [`Plan`] from the memory the
//!   NIC may take: big ones (a whole super-frame) when the device offers super-frames and
//!   memory allows, one-frame ones otherwise. A received frame is handed out as an
//!   [`RxFrame`] that owns its buffer; it goes back to the pool, or is lent to another
//!   NIC's transmit queue ([`Nic::transmit_lent`]) to leave without a copy and comes back
//!   when that transmission completes.
//! - Frames the appliance builds (and software segments, fragments) are copied into one of
//!   the NIC's transmit buffers ([`Nic::transmit_copy`]).
//! - Notifications are batched: buffers and frames are queued during a round of the main
//!   loop and the device is notified once at its end ([`Nic::notify`]), and only if it
//!   asked to be (`RING_EVENT_IDX`). The device interrupts once per batch: after the first
//!   frame the driver has not taken yet (receive), after the first transmission completed
//!   since the driver last took them back ([`Nic::reclaim`], once per round: a lent buffer
//!   must come back to its ring even when nothing else wakes the main loop).
//!
//! The device owns every posted buffer until it hands the buffer's token back. A token the
//! NIC has no buffer for, or a buffer it cannot record, means the driver and the device
//! disagree about who owns which memory: that is a device protocol violation, and the
//! kernel stops (fail closed) rather than free or reuse memory the device may still read
//! or write.

pub mod buffers;
pub mod features;
pub mod set;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{fence, Ordering};

use dataplane::appliance::DeviceLosses;
use dataplane::offload::{Offload, VIRTIO_NET_HDR_LEN};
use dataplane::ring_depth::{DepthChange, RingDepth};
use dataplane::transmit_wait::{StallReport, TransmitWait, WaitBudget, SHARED_SHARE};
use smoltcp::time::Duration;
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::{DeviceStatus, Transport};
use virtio_drivers::PAGE_SIZE;

use super::hal::KernelHal;
use super::transport::NicTransport;
use buffers::{Plan, Pool, SMALL_BUFFER};
use features::{FeatureError, Features};

/// Index of the receive queue (virtio 1.2, 5.1.2: receiveq1; transmitq1 follows).
pub const RECEIVE_QUEUE: u16 = 0;
/// Index of the transmit queue.
pub const TRANSMIT_QUEUE: u16 = 1;
/// Virtqueues a NIC uses: the receive and the transmit queue.
pub const QUEUES: u16 = 2;
/// Descriptors per virtqueue (receive and transmit each): QEMU's default ring size.
pub const QUEUE_SIZE: usize = 256;

/// The waiting time the NICs that wait much share (their [`TransmitWait`]s draw on it as
/// well as on their own): slow clients together take at most one part in [`SHARED_SHARE`]
/// of the main loop, however many there are.
static SHARED_WAIT: spin::Mutex<WaitBudget> =
    spin::Mutex::new(WaitBudget::new(smoltcp::time::Instant::ZERO, SHARED_SHARE));

/// Counters of one NIC.
#[derive(Clone, Copy, Debug, Default)]
pub struct NicCounters {
    /// Frames received.
    pub rx_frames: u64,
    /// Frames queued for transmission (copied or lent).
    pub tx_frames: u64,
    /// Of those, frames sent from another NIC's receive buffer, without a copy.
    pub tx_lent: u64,
    /// Frames lost here, below the data plane (transmit ring full, too big for a
    /// transmit buffer, merged super-frames with no assembly buffer free): the data
    /// plane's stats line reports them.
    pub losses: DeviceLosses,
}

/// A received frame and the buffer that holds it (its virtio-net header first).
pub struct RxFrame {
    buffer: Box<[u8]>,
    len: usize,
    offload: Offload,
    origin: u8,
}

/// Where a received frame lies, to recognise it when the data plane transmits it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Address of its first byte.
    pub start: usize,
    /// Its length.
    pub len: usize,
    /// The NIC whose pool its buffer belongs to.
    pub origin: u8,
}

impl RxFrame {
    /// The Ethernet frame, writable (for in-place rewriting).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buffer[VIRTIO_NET_HDR_LEN..VIRTIO_NET_HDR_LEN + self.len]
    }

    /// What the device said about the frame.
    pub fn offload(&self) -> Offload {
        self.offload
    }

    /// Where the frame lies.
    pub fn received(&self) -> Received {
        Received {
            start: self.buffer.as_ptr() as usize + VIRTIO_NET_HDR_LEN,
            len: self.len,
            origin: self.origin,
        }
    }

    /// The NIC whose pool its buffer belongs to.
    pub fn origin(&self) -> u8 {
        self.origin
    }

    /// Bytes of the buffer that holds it.
    pub fn buffer_len(&self) -> usize {
        self.buffer.len()
    }
}

/// Why a NIC could not be brought up.
#[derive(Debug)]
pub enum NicError {
    /// The virtio queues could not be set up.
    Virtio(virtio_drivers::Error),
    /// The device is not one this driver can drive.
    Features(FeatureError),
    /// The device refused the features the driver accepted.
    FeaturesRefused,
    /// The device has no MAC address.
    NoMac,
}

impl core::fmt::Display for NicError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            NicError::Virtio(e) => write!(f, "virtio-net initialisation failed: {e}"),
            NicError::Features(FeatureError::NotVersion1) => {
                f.write_str("not a modern virtio-net device (no VERSION_1)")
            }
            NicError::FeaturesRefused => f.write_str("the device refused the features accepted"),
            NicError::NoMac => f.write_str("the device has no MAC address"),
        }
    }
}

/// What a transmit descriptor holds.
enum InFlight {
    /// Transmit buffer `index`, `len` bytes of it.
    Copy { index: u16, len: usize },
    /// A receive buffer of NIC `origin`, `len` bytes of it.
    Lent {
        buffer: Box<[u8]>,
        origin: u8,
        len: usize,
    },
}

/// A virtio-net device ready to move frames.
pub struct Nic {
    transport: NicTransport,
    receive: VirtQueue<KernelHal, QUEUE_SIZE>,
    transmit: VirtQueue<KernelHal, QUEUE_SIZE>,
    index: u8,
    mac: [u8; 6],
    offered: Features,
    accepted: Features,
    plan: Plan,
    pool: Pool,
    /// How many receive buffers to keep posted now.
    depth: RingDepth,
    /// Receive buffers posted to the device, by descriptor token.
    posted: Vec<Option<Box<[u8]>>>,
    posted_count: usize,
    /// What each transmit descriptor holds, by token.
    in_flight: Vec<Option<InFlight>>,
    copies: Vec<Box<[u8]>>,
    free_copies: Vec<u16>,
    /// Transmit descriptors promised to a lent frame not yet queued.
    reserved: usize,
    /// Receive buffers of other NICs whose transmission here completed, for their pools
    /// (handed back by [`set::service`]).
    returned: Vec<(u8, Box<[u8]>)>,
    notify_receive: bool,
    notify_transmit: bool,
    /// Whether a wait for a buffer to lend ran out with this NIC as the lender, and none of
    /// the buffers it lent has come back since: until one does, frames do not wait on it.
    lender_stuck: bool,
    /// How long a frame for this NIC may wait for a transmit buffer or descriptor (a
    /// copied frame, or one waiting for a buffer to lend to it) when the ring is full.
    transmit_wait: TransmitWait,
    /// Traffic counters.
    pub counters: NicCounters,
}

impl Nic {
    /// Negotiates features with the device behind `transport` (NIC `index`), sets up its
    /// queues and buffers within `budget` bytes, and posts the receive buffers of its
    /// resting depth. Its ring goes deeper as traffic asks: freely within the budget,
    /// beyond it while the heap keeps `reserve` bytes free.
    pub fn new(
        mut transport: NicTransport,
        index: u8,
        budget: usize,
        reserve: usize,
    ) -> Result<Nic, NicError> {
        transport.set_status(DeviceStatus::empty());
        transport.set_status(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER);
        let offered = Features(transport.read_device_features());
        let plan = Plan::for_budget(
            budget,
            features::offers_super_frames(offered),
            offered.has(features::MRG_RXBUF),
        );
        let accepted = features::accept(offered, plan.buffers).map_err(NicError::Features)?;
        transport.write_driver_features(accepted.0);
        let features_ok =
            DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER | DeviceStatus::FEATURES_OK;
        transport.set_status(features_ok);
        if !transport.get_status().contains(DeviceStatus::FEATURES_OK) {
            return Err(NicError::FeaturesRefused);
        }
        transport.set_guest_page_size(PAGE_SIZE as u32);
        let event_idx = accepted.has(features::RING_EVENT_IDX);
        let receive = VirtQueue::new(&mut transport, RECEIVE_QUEUE, false, event_idx)
            .map_err(NicError::Virtio)?;
        let transmit = VirtQueue::new(&mut transport, TRANSMIT_QUEUE, false, event_idx)
            .map_err(NicError::Virtio)?;
        if !accepted.has(features::MAC) {
            return Err(NicError::NoMac);
        }
        let mac = transport
            .read_consistent(|| transport.read_config_space::<[u8; 6]>(0))
            .map_err(NicError::Virtio)?;
        let mut nic = Nic {
            receive,
            transmit,
            index,
            mac,
            offered,
            accepted,
            plan,
            pool: Pool::new(&plan, reserve, crate::time::now()),
            depth: RingDepth::new(plan.resting_posted(), plan.most_posted, crate::time::now()),
            posted: (0..QUEUE_SIZE).map(|_| None).collect(),
            posted_count: 0,
            in_flight: (0..QUEUE_SIZE).map(|_| None).collect(),
            copies: (0..plan.copies)
                .map(|_| buffers::buffer(SMALL_BUFFER))
                .collect(),
            free_copies: (0..plan.copies as u16).rev().collect(),
            reserved: 0,
            returned: Vec::with_capacity(QUEUE_SIZE),
            notify_receive: false,
            notify_transmit: false,
            lender_stuck: false,
            transmit_wait: TransmitWait::new(crate::time::now()),
            counters: NicCounters::default(),
            transport,
        };
        nic.post_spares();
        nic.transport.finish_init();
        nic.notify();
        Ok(nic)
    }

    /// The NIC's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The feature bits the device offered.
    pub fn offered(&self) -> Features {
        self.offered
    }

    /// The feature bits accepted.
    pub fn accepted(&self) -> Features {
        self.accepted
    }

    /// How the NIC's buffers are laid out.
    pub fn plan(&self) -> Plan {
        self.plan
    }

    /// Acknowledges the device's interrupt (call before draining the queues).
    pub fn ack_interrupt(&mut self) {
        let _ = self.transport.ack_interrupt();
    }

    /// Posts spare receive buffers until the ring is as deep as it should be (or the pool
    /// is empty: its buffers are being forwarded, or it has grown all it may this round).
    /// The depth follows how the device used the ring since the last refill.
    pub fn refill(&mut self) {
        self.pool.next_round();
        let now = crate::time::now();
        let pool = &self.pool;
        let affordable = |depth| pool.can_hold(depth);
        match self.depth.before_refill(self.posted_count, now, affordable) {
            DepthChange::Same => {}
            DepthChange::Deeper | DepthChange::Shallower => {
                self.pool.set_depth(self.depth.depth());
                log::debug!("nic{} receive ring {} deep", self.index, self.depth.depth());
            }
        }
        self.post_spares();
        self.depth.after_refill(self.posted_count);
        self.pool.refilled(now);
    }

    /// Whether the NIC's pool could not grow for the heap's reserve since the last call.
    pub fn take_starved(&mut self) -> bool {
        self.pool.take_starved()
    }

    /// Gives back to the heap the receive buffers beyond the ring's depth that sat spare
    /// since the last release (another NIC needs the memory).
    pub fn release_idle(&mut self) {
        self.pool.release_idle(crate::time::now());
    }

    /// Whether the heap has less than its reserve free (see [`set::service`]).
    pub fn heap_low(&self) -> bool {
        self.pool.heap_low()
    }

    /// The heap needs its memory back: the ring goes back to its resting depth, and the
    /// receive buffers beyond the NIC's share go back to the heap as they are spare.
    pub fn shed(&mut self) {
        if self.depth.back_to_base(crate::time::now()) {
            log::debug!(
                "nic{} receive ring {} deep (the heap is short: {} KiB free)",
                self.index,
                self.depth.depth(),
                crate::memory::heap::free_bytes() / 1024
            );
        }
        self.pool.shed(self.depth.depth());
    }

    /// Posts the pool's spare buffers, up to the ring's depth, growing the pool only as
    /// far as this round allows (at bring-up: not at all, the pool's first buffers fill
    /// the resting depth; it grows only once the ring has gone deeper).
    fn post_spares(&mut self) {
        while self.posted_count < self.depth.depth() {
            let Some(mut buffer) = self.pool.take() else {
                return;
            };
            // SAFETY: right after this call the buffer is moved into `posted[token]` (or
            // the kernel stops), where nothing reads or writes it until the device returns
            // the token through `receive`; moving the `Box` does not move its heap
            // allocation, which is what the device was given.
            let added = unsafe { self.receive.add(&[], &mut [&mut buffer[..]]) };
            let token = match added {
                Ok(token) => token,
                Err(_) => {
                    // The ring holds as many buffers as it can.
                    self.pool.put(buffer);
                    return;
                }
            };
            match self.posted.get_mut(token as usize) {
                Some(slot @ None) => *slot = Some(buffer),
                _ => device_violation(format_args!(
                    "receive descriptor {token} is outside the ring or already holds a buffer"
                )),
            }
            self.posted_count += 1;
            self.notify_receive |= needs_notification(&self.receive);
        }
    }

    /// Whether the device has handed back a received frame not taken yet. Call before
    /// halting: it orders the driver's last `used_event` update before the look at the
    /// used ring, so that either the device sees the update (and interrupts) or the driver
    /// sees the frame.
    pub fn has_received(&self) -> bool {
        fence(Ordering::SeqCst);
        self.receive.can_pop()
    }

    /// Takes the next received frame, if any. Frames the device reports shorter than their
    /// virtio-net header are dropped (their buffer goes back to the pool); so is a merged
    /// super-frame when no assembly buffer is free (counted).
    pub fn receive(&mut self) -> Option<RxFrame> {
        loop {
            let token = self.receive.peek_used()?;
            let (buffer, written) = self.take_used(token);
            if written < VIRTIO_NET_HDR_LEN {
                self.pool.put(buffer);
                continue;
            }
            let mut header = [0u8; VIRTIO_NET_HDR_LEN];
            header.copy_from_slice(&buffer[..VIRTIO_NET_HDR_LEN]);
            // With merged buffers, the frame continues in `num_buffers - 1` more.
            let num_buffers = u16::from_le_bytes([header[10], header[11]]);
            let (buffer, written) = if self.accepted.has(features::MRG_RXBUF) && num_buffers > 1 {
                match self.gather(buffer, written, num_buffers) {
                    Some(gathered) => gathered,
                    None => continue,
                }
            } else {
                (buffer, written)
            };
            self.counters.rx_frames += 1;
            return Some(RxFrame {
                buffer,
                len: written - VIRTIO_NET_HDR_LEN,
                offload: Offload::from_virtio_net_hdr(&header),
                origin: self.index,
            });
        }
    }

    /// The buffer posted with `token`, which the device has handed back (it is next in
    /// the used ring), and the bytes written into it.
    fn take_used(&mut self, token: u16) -> (Box<[u8]>, usize) {
        let Some(mut buffer) = self.posted.get_mut(token as usize).and_then(Option::take) else {
            device_violation(format_args!(
                "the device returned receive descriptor {token}, which holds no buffer"
            ));
        };
        self.posted_count -= 1;
        // SAFETY: `buffer` is the one posted with this token (looked up by token), and
        // the device has handed it back (its token is next in the used ring).
        let used = unsafe { self.receive.pop_used(token, &[], &mut [&mut buffer[..]]) };
        let written = match used {
            Ok(written) => written as usize,
            Err(e) => device_violation(format_args!(
                "completing receive descriptor {token} failed: {e}"
            )),
        };
        if written > buffer.len() {
            device_violation(format_args!(
                "the device reported {written} bytes received into a {}-byte buffer",
                buffer.len()
            ));
        }
        (buffer, written)
    }

    /// A merged super-frame: `first` (`written` bytes, its header first) and the
    /// `num_buffers - 1` buffers after it in the used ring (the device hands them back
    /// together), copied one after the other into an assembly buffer; every receive buffer
    /// goes back to the pool. `None` (the frame dropped, counted) when no assembly buffer
    /// is free or the frame would not fit one.
    fn gather(
        &mut self,
        first: Box<[u8]>,
        written: usize,
        num_buffers: u16,
    ) -> Option<(Box<[u8]>, usize)> {
        let mut assembly = self.pool.take_assembly();
        if let Some(out) = &mut assembly {
            out[..written].copy_from_slice(&first[..written]);
        }
        self.pool.put(first);
        let mut at = written;
        for _ in 1..num_buffers {
            let Some(token) = self.receive.peek_used() else {
                device_violation(format_args!(
                    "a frame spread over {num_buffers} receive buffers was handed back without all of them"
                ));
            };
            let (buffer, more) = self.take_used(token);
            match &mut assembly {
                Some(out) if at + more <= out.len() => {
                    out[at..at + more].copy_from_slice(&buffer[..more]);
                }
                Some(_) => {
                    // Longer than any super-frame: dropped whole.
                    if let Some(out) = assembly.take() {
                        self.pool.put(out);
                    }
                }
                None => {}
            }
            at += more;
            self.pool.put(buffer);
        }
        if assembly.is_none() {
            self.counters.losses.rx_dropped += 1;
        }
        assembly.map(|out| (out, at))
    }

    /// Gives a received frame's buffer back to the pool (it was this NIC's).
    pub fn recycle(&mut self, frame: RxFrame) {
        self.pool.put(frame.buffer);
    }

    /// Whether this NIC may lend one more of its receive buffers for a frame of `len`
    /// bytes: freely (its ring stays full) for one that could be copied instead, down to
    /// an eighth of its ring (or further while its pool may grow to replace the buffer)
    /// for one that could not; always for a merged super-frame (its
    /// assembly buffer is never posted).
    pub fn may_lend(&self, len: usize) -> bool {
        if self.pool.is_assembled(VIRTIO_NET_HDR_LEN + len) {
            return true;
        }
        match VIRTIO_NET_HDR_LEN + len > SMALL_BUFFER {
            true => self.pool.may_lend(),
            false => self.pool.may_lend_freely(),
        }
    }

    /// Whether a transmit descriptor could be promised ([`Nic::reserve`]) now.
    pub fn can_reserve(&self) -> bool {
        self.transmit.available_desc() > self.reserved
    }

    /// Whether a frame of `len` bytes fits a transmit copy buffer ([`Nic::transmit_copy`]).
    pub fn can_copy(len: usize) -> bool {
        VIRTIO_NET_HDR_LEN + len <= SMALL_BUFFER
    }

    /// Promises a transmit descriptor to a frame [`Nic::transmit_lent`] will queue later
    /// in this round; `false` if none is free.
    pub fn reserve(&mut self) -> bool {
        if self.can_reserve() {
            self.reserved += 1;
            true
        } else {
            false
        }
    }

    /// Counts one of this NIC's buffers lent (until [`Nic::take_back`]), a buffer of
    /// `buffer_len` bytes: an assembly buffer is not counted (it is never posted).
    pub fn lent_one(&mut self, buffer_len: usize) {
        if !self.pool.is_assembled(buffer_len) {
            self.pool.lend();
        }
    }

    /// A buffer this NIC lent has come back.
    pub fn take_back(&mut self, buffer: Box<[u8]>) {
        self.pool.returned(buffer);
        self.lender_stuck = false;
    }

    /// Whether a frame may wait for this NIC to lend a buffer: not while its last wait ran
    /// out and no buffer it lent has come back since.
    pub fn may_wait_to_lend(&self) -> bool {
        !self.lender_stuck
    }

    /// How long a frame may wait now for this NIC to free a transmit descriptor or
    /// buffer ([`TransmitWait::patience`]).
    pub fn transmit_patience(&mut self) -> Duration {
        self.transmit_wait
            .patience(crate::time::now(), &mut SHARED_WAIT.lock())
    }

    /// A frame waited `waited` for this NIC; `ran_out` if the NIC freed nothing for it.
    pub fn transmit_waited(&mut self, waited: Duration, ran_out: bool) {
        self.transmit_wait
            .waited(crate::time::now(), waited, ran_out, &mut SHARED_WAIT.lock());
    }

    /// A stall of this NIC's device to report, or the end of one, once each
    /// ([`TransmitWait::report`]).
    pub fn transmit_report(&mut self) -> Option<StallReport> {
        self.transmit_wait.report(crate::time::now())
    }

    /// A wait for a buffer to lend from this NIC ran out.
    pub fn lender_stuck(&mut self) {
        self.lender_stuck = true;
    }

    /// Queues `frame` (received on another NIC, or this one) for transmission as it is,
    /// its first `len` bytes with `header`, on the descriptor [`Nic::reserve`] promised.
    /// Gives the frame back if it cannot be queued.
    pub fn transmit_lent(
        &mut self,
        mut frame: RxFrame,
        len: usize,
        header: [u8; VIRTIO_NET_HDR_LEN],
    ) -> Result<(), RxFrame> {
        self.reserved = self.reserved.saturating_sub(1);
        let total = VIRTIO_NET_HDR_LEN + len;
        if len > frame.len {
            return Err(frame);
        }
        frame.buffer[..VIRTIO_NET_HDR_LEN].copy_from_slice(&header);
        // SAFETY: the buffer is moved, right below, into `in_flight[token]` (or the kernel
        // stops), where nothing touches it until `reclaim` completes that token; moving
        // the `Box` does not move the memory the device was given.
        let added = unsafe { self.transmit.add(&[&frame.buffer[..total]], &mut []) };
        let Ok(token) = added else {
            self.counters.losses.tx_ring_full += 1;
            return Err(frame);
        };
        let entry = InFlight::Lent {
            buffer: frame.buffer,
            origin: frame.origin,
            len: total,
        };
        self.record(token, entry);
        self.counters.tx_lent += 1;
        Ok(())
    }

    /// Queues a frame of `len` bytes, built in place by `fill`, with `header`, in one of
    /// the NIC's transmit buffers. Returns `false` (and counts it) if it was dropped.
    ///
    /// With the ring full it waits for the device to complete a transmission, as long as
    /// the NIC's [`TransmitWait`] allows: a device that has stopped transmitting (a client
    /// that no longer reads) costs the appliance one wait, and one that transmits slowly
    /// a bounded share of its time.
    pub fn transmit_copy(
        &mut self,
        header: [u8; VIRTIO_NET_HDR_LEN],
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> bool {
        let total = VIRTIO_NET_HDR_LEN + len;
        if !Nic::can_copy(len) {
            self.counters.losses.tx_too_big += 1;
            return false;
        }
        if !self.copy_slot_free() {
            self.wait_for_copy_slot();
        }
        let index = match self.free_copies.pop() {
            Some(index) if self.copy_slot_free_now() => index,
            taken => {
                self.free_copies.extend(taken);
                self.counters.losses.tx_ring_full += 1;
                return false;
            }
        };
        let buffer = &mut self.copies[index as usize];
        buffer[..VIRTIO_NET_HDR_LEN].copy_from_slice(&header);
        fill(&mut buffer[VIRTIO_NET_HDR_LEN..total]);
        // SAFETY: the buffer is off the free list and, right below, recorded in
        // `in_flight` under its token (or the kernel stops); nothing touches it until
        // `reclaim` completes that token.
        match unsafe { self.transmit.add(&[&buffer[..total]], &mut []) } {
            Ok(token) => {
                self.record(token, InFlight::Copy { index, len: total });
                true
            }
            Err(_) => {
                self.free_copies.push(index);
                self.counters.losses.tx_ring_full += 1;
                false
            }
        }
    }

    /// Waits, as long as the NIC's [`TransmitWait`] allows, for a transmit buffer and a
    /// descriptor to be free.
    fn wait_for_copy_slot(&mut self) {
        let patience = self.transmit_patience();
        if patience == Duration::ZERO {
            return;
        }
        // The device may be waiting for a notification to drain the ring.
        self.notify();
        let start = crate::time::now();
        let mut waited = Duration::ZERO;
        let mut free = false;
        while waited < patience {
            core::hint::spin_loop();
            if self.copy_slot_free() {
                free = true;
                break;
            }
            waited = crate::time::now() - start;
        }
        self.transmit_waited(waited, !free);
    }

    /// Whether a transmit buffer and a descriptor (beyond those reserved) are free.
    fn copy_slot_free(&mut self) -> bool {
        if self.free_copies.is_empty() || !self.copy_slot_free_now() {
            self.reclaim();
        }
        !self.free_copies.is_empty() && self.copy_slot_free_now()
    }

    fn copy_slot_free_now(&self) -> bool {
        self.transmit.available_desc() > self.reserved
    }

    fn record(&mut self, token: u16, entry: InFlight) {
        match self.in_flight.get_mut(token as usize) {
            Some(slot @ None) => *slot = Some(entry),
            _ => device_violation(format_args!(
                "transmit descriptor {token} is outside the ring or already in flight"
            )),
        }
        self.counters.tx_frames += 1;
        self.notify_transmit |= needs_notification(&self.transmit);
    }

    /// Takes back every transmission the device has completed: transmit buffers return to
    /// the free list, lent receive buffers to their NIC (this one's at once, others' by
    /// [`set::service`]).
    pub fn reclaim(&mut self) {
        while let Some(token) = self.transmit.peek_used() {
            let Some(entry) = self
                .in_flight
                .get_mut(token as usize)
                .and_then(Option::take)
            else {
                device_violation(format_args!(
                    "the device returned transmit descriptor {token}, which holds no frame"
                ));
            };
            let bytes = match &entry {
                InFlight::Copy { index, len } => &self.copies[*index as usize][..*len],
                InFlight::Lent { buffer, len, .. } => &buffer[..*len],
            };
            // SAFETY: `bytes` is exactly the slice queued for this token (recorded in
            // `in_flight` under it), and the device has handed it back.
            if let Err(e) = unsafe { self.transmit.pop_used(token, &[bytes], &mut []) } {
                device_violation(format_args!(
                    "completing transmit descriptor {token} failed: {e}"
                ));
            }
            if self.transmit_wait.is_stalled() {
                self.transmit_wait.completed(crate::time::now());
            }
            match entry {
                InFlight::Copy { index, .. } => self.free_copies.push(index),
                InFlight::Lent { buffer, origin, .. } if origin == self.index => {
                    self.take_back(buffer)
                }
                InFlight::Lent { buffer, origin, .. } => self.returned.push((origin, buffer)),
            }
        }
    }

    /// Notifies the device of the buffers and frames queued since the last call, if it
    /// asked to be: once per queue per round of the main loop.
    pub fn notify(&mut self) {
        if core::mem::take(&mut self.notify_receive) {
            self.transport.notify(RECEIVE_QUEUE);
        }
        if core::mem::take(&mut self.notify_transmit) {
            self.transport.notify(TRANSMIT_QUEUE);
        }
    }
}

/// Whether the device asked to be notified of the entry just added to `queue`.
///
/// A full fence first: the new available index must be visible to the device before the
/// driver reads `avail_event` (a store, then a load of another location: x86 may reorder
/// them), or both sides could miss each other — the device going idle on the old index,
/// the driver reading the old event — and the queue stall until the next notification.
/// `VirtQueue::add` fences only before its store. And the question is asked after every
/// entry, not once per batch: `VirtQueue::should_notify` compares the indices without
/// wrap-around, which is right for the entry that crosses the event and only for it.
fn needs_notification(queue: &VirtQueue<KernelHal, QUEUE_SIZE>) -> bool {
    fence(Ordering::SeqCst);
    queue.should_notify()
}

/// Stops the kernel: the device and the driver disagree about who owns a buffer.
fn device_violation(what: core::fmt::Arguments) -> ! {
    crate::fatal::stop(format_args!("virtio-net device protocol violation: {what}"))
}
