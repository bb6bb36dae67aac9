//! One virtio-net NIC: `VirtIONetRaw` with pre-allocated buffers and many frames in flight.
//!
//! Every receive descriptor is posted at start-up. A received frame is handed out as an
//! [`RxFrame`] that owns its buffer (a spare buffer takes its place in the ring at once), so
//! the data plane can read and rewrite it while transmitting on any NIC. Transmission
//! copies the outgoing frame into one of `QUEUE_SIZE` transmit buffers; completed transmit
//! descriptors are reclaimed lazily, before each new transmission, and when the ring is
//! full the NIC waits a bounded time for the device to complete some before dropping.
//!
//! The device owns every posted buffer until it hands the buffer's token back. A token the
//! NIC has no buffer for, or a buffer it cannot record, means the driver and the device
//! disagree about who owns which memory: that is a device protocol violation, and the
//! kernel stops (fail closed) rather than free or reuse memory the device may still write.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use virtio_drivers::device::net::VirtIONetRaw;

use super::hal::KernelHal;
use super::transport::NicTransport;

/// Virtqueues a NIC uses: receiveq1 and transmitq1 (virtio 1.2, 5.1.2).
pub const QUEUES: u16 = 2;
/// Index of the receive queue.
pub const RECEIVE_QUEUE: u16 = 0;
/// Index of the transmit queue.
pub const TRANSMIT_QUEUE: u16 = 1;
/// Descriptors per virtqueue (receive and transmit each): QEMU's default ring size.
pub const QUEUE_SIZE: usize = 256;
/// Polls of the used ring made while waiting for a free transmit descriptor before a frame
/// is dropped. The device (QEMU's I/O thread) drains the ring concurrently, so a full ring
/// during a burst usually frees up within microseconds; waiting briefly turns what would
/// be loss into backpressure on the receive side.
const TX_FULL_POLLS: u32 = 20_000;
/// Bytes per buffer: the virtio-net header (12) plus the largest Ethernet frame (1522 with
/// a VLAN tag), rounded up.
pub const BUFFER_SIZE: usize = 1600;
/// Spare receive buffers, so frames can be held while their ring slot is refilled.
const SPARE_BUFFERS: usize = 8;

/// Counters of one NIC.
#[derive(Clone, Copy, Debug, Default)]
pub struct NicCounters {
    /// Frames received.
    pub rx_frames: u64,
    /// Frames queued for transmission.
    pub tx_frames: u64,
    /// Frames not transmitted because the transmit ring was full.
    pub tx_ring_full: u64,
    /// Frames not transmitted because they do not fit a buffer.
    pub tx_too_big: u64,
}

/// A received frame and the buffer that holds it.
pub struct RxFrame {
    buffer: Box<[u8]>,
    start: usize,
    len: usize,
}

impl RxFrame {
    /// The Ethernet frame, writable (for in-place rewriting).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buffer[self.start..self.start + self.len]
    }
}

/// Why a NIC could not be brought up.
#[derive(Debug)]
pub enum NicError {
    /// The virtio driver refused the device.
    Virtio(virtio_drivers::Error),
}

impl core::fmt::Display for NicError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            NicError::Virtio(e) => write!(f, "virtio-net initialisation failed: {e}"),
        }
    }
}

/// A virtio-net device ready to move frames.
pub struct Nic {
    device: VirtIONetRaw<KernelHal, NicTransport, QUEUE_SIZE>,
    /// Receive buffers posted to the device, by descriptor token.
    rx_posted: Vec<Option<Box<[u8]>>>,
    rx_spare: Vec<Box<[u8]>>,
    /// Transmit buffers; `tx_in_flight[token]` is (buffer index, length) of a pending send.
    tx_buffers: Vec<Box<[u8]>>,
    tx_free: Vec<u16>,
    tx_in_flight: Vec<Option<(u16, u16)>>,
    header_len: usize,
    /// Traffic counters.
    pub counters: NicCounters,
}

fn buffer() -> Box<[u8]> {
    vec![0u8; BUFFER_SIZE].into_boxed_slice()
}

impl Nic {
    /// Initialises the device and posts every receive buffer.
    pub fn new(transport: NicTransport) -> Result<Nic, NicError> {
        let device = VirtIONetRaw::new(transport).map_err(NicError::Virtio)?;
        let mut header = [0u8; 32];
        let header_len = device
            .fill_buffer_header(&mut header)
            .map_err(NicError::Virtio)?;
        let mut nic = Nic {
            device,
            rx_posted: (0..QUEUE_SIZE).map(|_| None).collect(),
            rx_spare: (0..SPARE_BUFFERS).map(|_| buffer()).collect(),
            tx_buffers: (0..QUEUE_SIZE).map(|_| buffer()).collect(),
            tx_free: (0..QUEUE_SIZE as u16).rev().collect(),
            tx_in_flight: (0..QUEUE_SIZE).map(|_| None).collect(),
            header_len,
            counters: NicCounters::default(),
        };
        for _ in 0..QUEUE_SIZE {
            let buf = buffer();
            nic.post_receive(buf)?;
        }
        nic.device.enable_interrupts();
        Ok(nic)
    }

    fn post_receive(&mut self, mut buf: Box<[u8]>) -> Result<(), NicError> {
        // SAFETY: right after this call the buffer is moved into `rx_posted[token]` (or the
        // kernel stops), where nothing reads or writes it until the device returns the token
        // through `receive`; moving the `Box` does not move its heap allocation, which is
        // what the device was given.
        let token = unsafe { self.device.receive_begin(&mut buf) }.map_err(NicError::Virtio)?;
        match self.rx_posted.get_mut(token as usize) {
            Some(slot @ None) => *slot = Some(buf),
            _ => device_violation(format_args!(
                "receive descriptor {token} is outside the ring or already holds a buffer"
            )),
        }
        Ok(())
    }

    /// The NIC's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.device.mac_address()
    }

    /// Acknowledges the device's interrupt (call before draining the queues).
    pub fn ack_interrupt(&mut self) {
        let _ = self.device.ack_interrupt();
    }

    /// Takes the next received frame, if any, and refills its ring slot. Frames the device
    /// reports shorter than their virtio-net header are dropped.
    pub fn receive(&mut self) -> Option<RxFrame> {
        loop {
            let token = self.device.poll_receive()?;
            let Some(mut buf) = self
                .rx_posted
                .get_mut(token as usize)
                .and_then(Option::take)
            else {
                device_violation(format_args!(
                    "the device returned receive descriptor {token}, which holds no buffer"
                ));
            };
            // SAFETY: `buf` is the buffer posted with this token (looked up by token), and
            // the device has handed it back (its token is in the used ring).
            let completed = unsafe { self.device.receive_complete(token, &mut buf) };
            let spare = self.rx_spare.pop().unwrap_or_else(buffer);
            if let Err(e) = self.post_receive(spare) {
                // The slot was just freed, so this cannot run out of descriptors.
                log::warn!("virtio-net: could not re-post a receive buffer: {e}");
            }
            match completed {
                Ok((header_len, len)) if header_len + len <= buf.len() => {
                    self.counters.rx_frames += 1;
                    return Some(RxFrame {
                        buffer: buf,
                        start: header_len,
                        len,
                    });
                }
                Ok((header_len, len)) => device_violation(format_args!(
                    "the device reported {} bytes received into a {}-byte buffer",
                    header_len + len,
                    buf.len()
                )),
                // Shorter than the virtio-net header: nothing to deliver, the buffer is ours.
                Err(virtio_drivers::Error::IoError) => self.rx_spare.push(buf),
                Err(e) => device_violation(format_args!(
                    "completing receive descriptor {token} failed: {e}"
                )),
            }
        }
    }

    /// Gives a received frame's buffer back for reuse.
    pub fn recycle(&mut self, frame: RxFrame) {
        if self.rx_spare.len() < SPARE_BUFFERS * 2 {
            self.rx_spare.push(frame.buffer);
        }
    }

    fn reclaim_transmitted(&mut self) {
        while let Some(token) = self.device.poll_transmit() {
            let Some((index, len)) = self
                .tx_in_flight
                .get_mut(token as usize)
                .and_then(Option::take)
            else {
                device_violation(format_args!(
                    "the device returned transmit descriptor {token}, which holds no frame"
                ));
            };
            let buf = &self.tx_buffers[index as usize][..len as usize];
            // SAFETY: `buf` is exactly the slice passed to `transmit_begin` for this token
            // (recorded in `tx_in_flight` under it), and the device has handed it back.
            if let Err(e) = unsafe { self.device.transmit_complete(token, buf) } {
                device_violation(format_args!(
                    "completing transmit descriptor {token} failed: {e}"
                ));
            }
            self.tx_free.push(index);
        }
    }

    /// Queues a frame of `len` bytes built in place by `fill`. Returns `false` (and counts
    /// it) if it was dropped.
    pub fn transmit_with(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) -> bool {
        self.reclaim_transmitted();
        let total = self.header_len + len;
        if total > BUFFER_SIZE {
            self.counters.tx_too_big += 1;
            return false;
        }
        let mut polls = 0;
        while self.tx_free.is_empty() && polls < TX_FULL_POLLS {
            core::hint::spin_loop();
            self.reclaim_transmitted();
            polls += 1;
        }
        let Some(index) = self.tx_free.pop() else {
            self.counters.tx_ring_full += 1;
            return false;
        };
        let buf = &mut self.tx_buffers[index as usize];
        if self.device.fill_buffer_header(buf).is_err() {
            self.tx_free.push(index);
            return false;
        }
        fill(&mut buf[self.header_len..total]);
        // SAFETY: the buffer is off the free list and, right below, recorded in
        // `tx_in_flight` under its token (or the kernel stops); nothing touches it until
        // `reclaim_transmitted` completes that token.
        match unsafe { self.device.transmit_begin(&buf[..total]) } {
            Ok(token) => {
                match self.tx_in_flight.get_mut(token as usize) {
                    Some(slot @ None) => *slot = Some((index, total as u16)),
                    _ => device_violation(format_args!(
                        "transmit descriptor {token} is outside the ring or already in flight"
                    )),
                }
                self.counters.tx_frames += 1;
                true
            }
            Err(_) => {
                self.tx_free.push(index);
                self.counters.tx_ring_full += 1;
                false
            }
        }
    }
}

/// Stops the kernel: the device and the driver disagree about who owns a buffer.
fn device_violation(what: core::fmt::Arguments) -> ! {
    crate::fatal::stop(format_args!("virtio-net device protocol violation: {what}"))
}
