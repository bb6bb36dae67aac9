//! [`FrameSink`]: how the data plane hands frames to the NICs.

/// Where the data plane sends the frames it emits. The kernel implements it over its virtio
/// transmit rings; tests implement it by recording frames.
pub trait FrameSink {
    /// Transmits a frame of `len` bytes on NIC `nic`, built in place by `fill`. Returns
    /// `false` if the frame was dropped (ring full, no such NIC).
    fn transmit(&mut self, nic: u8, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool;

    /// Transmits a ready frame.
    fn send(&mut self, nic: u8, frame: &[u8]) -> bool {
        self.transmit(nic, frame.len(), &mut |out| out.copy_from_slice(frame))
    }
}

/// A sink that records every frame (for tests and benchmarks).
#[derive(Default, Debug)]
pub struct RecordingSink {
    /// `(nic, frame)` in transmission order.
    pub frames: alloc::vec::Vec<(u8, alloc::vec::Vec<u8>)>,
}

impl FrameSink for RecordingSink {
    fn transmit(&mut self, nic: u8, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool {
        let mut frame = alloc::vec![0u8; len];
        fill(&mut frame);
        self.frames.push((nic, frame));
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
