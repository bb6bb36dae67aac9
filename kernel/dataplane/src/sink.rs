//! [`FrameSink`]: how the data plane hands frames to the NICs.

use alloc::vec::Vec;

use crate::offload::Offload;

/// Where the data plane sends the frames it emits. The kernel implements it over its virtio
/// transmit rings; tests implement it by recording frames.
pub trait FrameSink {
    /// Transmits a frame of `len` bytes on NIC `nic`, built in place by `fill`. Returns
    /// `false` if the frame was dropped (ring full, no such NIC).
    fn transmit(&mut self, nic: u8, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool;

    /// Transmits the ready Ethernet `frame` on NIC `nic` with its offload metadata, which
    /// the data plane only gives a NIC that takes it ([`crate::offload::NicOffloads`]).
    /// This is how a forwarded frame leaves: when `frame` is the very frame the data plane
    /// is receiving (rewritten in place), a sink that owns its buffer may send that buffer
    /// itself instead of copying it. The data plane does not touch `frame` afterwards.
    ///
    /// The default copies a plain frame ([`FrameSink::send`]) and refuses an offloaded one.
    fn transmit_frame(&mut self, nic: u8, frame: &[u8], offload: &Offload) -> bool {
        offload.is_plain() && self.send(nic, frame)
    }

    /// Transmits a ready frame.
    fn send(&mut self, nic: u8, frame: &[u8]) -> bool {
        self.transmit(nic, frame.len(), &mut |out| out.copy_from_slice(frame))
    }
}

/// A sink that records every frame (for tests and benchmarks).
#[derive(Default, Debug)]
pub struct RecordingSink {
    /// `(nic, frame)` in transmission order.
    pub frames: Vec<(u8, Vec<u8>)>,
    /// The offload metadata each of `frames` was sent with (same order; plain for most).
    pub offloads: Vec<Offload>,
}

impl FrameSink for RecordingSink {
    fn transmit(&mut self, nic: u8, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool {
        let mut frame = alloc::vec![0u8; len];
        fill(&mut frame);
        self.frames.push((nic, frame));
        self.offloads.push(Offload::PLAIN);
        true
    }

    fn transmit_frame(&mut self, nic: u8, frame: &[u8], offload: &Offload) -> bool {
        self.frames.push((nic, frame.to_vec()));
        self.offloads.push(*offload);
        true
    }
}

/// A sink that drops everything (for construction-time polls that cannot send).
#[derive(Default, Debug, Clone, Copy)]
pub struct NullSink;

impl FrameSink for NullSink {
    fn transmit(&mut self, _nic: u8, _len: usize, _fill: &mut dyn FnMut(&mut [u8])) -> bool {
        false
    }
}
