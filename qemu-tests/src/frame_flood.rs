//! A rootless flood into one NIC: the test end of a dgram NIC sends its frames round-robin,
//! as fast as QEMU takes them, for a fixed time. QEMU stops reading the socket while the
//! appliance's receive ring is full, so the rate offered is the rate the appliance drains.
//!
//! The flood ends by itself, and a stopped appliance cannot hold it: a send that QEMU does
//! not take within [`STALL`] ends the flood and is reported as a stall.

use std::time::{Duration, Instant};

use crate::segment_host::SegmentHost;
use crate::{Failure, Outcome};

/// How long one frame may wait for QEMU to take it before the flood counts as stalled.
pub const STALL: Duration = Duration::from_secs(10);

/// Frames to send, and for how long.
#[derive(Debug, Clone)]
pub struct FrameFlood {
    /// Sent in order, round-robin.
    pub frames: Vec<Vec<u8>>,
    /// How long to keep sending.
    pub duration: Duration,
}

/// What a flood sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flooded {
    /// Frames QEMU took.
    pub sent: u64,
    /// How long the flood ran.
    pub elapsed: Duration,
}

impl Flooded {
    /// Frames per second offered.
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl FrameFlood {
    /// Sends the flood from `host`. Fails if QEMU stops taking frames for [`STALL`].
    pub fn send(&self, host: &SegmentHost) -> Outcome<Flooded> {
        if self.frames.is_empty() {
            return Err(Failure::new("a flood needs at least one frame"));
        }
        let started = Instant::now();
        let mut sent = 0u64;
        for frame in self.frames.iter().cycle() {
            if started.elapsed() >= self.duration {
                break;
            }
            let taken = host.send_within(frame, STALL).map_err(|failure| {
                Failure::new(format!(
                    "{} ({:.1} s into the flood, after {sent} frames)",
                    failure.message(),
                    started.elapsed().as_secs_f64()
                ))
            })?;
            if !taken {
                return Err(Failure::new(format!(
                    "nic{}: the appliance stopped taking frames {:.1} s into the flood, after {sent}",
                    host.nic,
                    started.elapsed().as_secs_f64()
                )));
            }
            sent += 1;
        }
        Ok(Flooded {
            sent,
            elapsed: started.elapsed(),
        })
    }
}
