//! The packet capture: dropped packets (and, if asked, the packets `log` rules pass) as a
//! pcap stream the kernel copies out on a second serial port, for `tcpdump -r` and
//! Wireshark.
//!
//! Recording never stalls forwarding. A record is copied into a bounded buffer
//! ([`CaptureConfig::buffer_bytes`]) that the kernel drains when the port can take bytes;
//! when the buffer is full, or the rate limit says no, the record is not made and counted
//! as dropped instead. The rate limit is shared like the drop log's ([`CAPTURE_SHARES`],
//! a [`SharedBudget`]): each sender gets a share, the internet behind the uplink one share
//! together, so one noisy sender never crowds the others out of the capture.
//!
//! Frames are cut to the snap length; each record keeps the frame's length on the wire and the time it arrived
//! (the appliance's clock: seconds since boot). The stream starts with the pcap global
//! header, so whatever reads the port from the start holds a valid file at every record
//! boundary.
//!
//! ```
//! use dataplane::capture::{Capture, CaptureConfig};
//! use dataplane::share::Source;
//! use smoltcp::time::Instant;
//! use smoltcp::wire::Ipv4Address;
//!
//! let mut capture = Capture::new(CaptureConfig::default(), 7);
//! let frame = [0u8; 60];
//! let sender = Source::neighbour(1, Ipv4Address::new(10, 137, 1, 10));
//! assert!(capture.record(sender, Instant::from_secs(3), &frame));
//! let mut out = Vec::new();
//! capture.drain(usize::MAX, |bytes| { out.extend_from_slice(bytes); bytes.len() });
//! assert_eq!(out.len(), 24 + 16 + 60); // global header, record header, frame
//! ```

pub mod pcap;

use alloc::collections::VecDeque;

use smoltcp::time::Instant;

use crate::budget::{Rate, SharedBudget, Shares};
use crate::share::Source;

/// The capture's budget: one sender 25 records per second (bursts of 50), the addresses
/// behind a NIC's router together 50 (bursts of 100), everyone 100 (bursts of 200), and a
/// reserve of 10 per second for senders that were quiet.
pub const CAPTURE_SHARES: Shares = Shares {
    per_source: Rate {
        per_second: 25,
        burst: 50,
    },
    per_remote_side: Rate {
        per_second: 50,
        burst: 100,
    },
    total: Rate {
        per_second: 100,
        burst: 200,
    },
    reserve: Rate {
        per_second: 10,
        burst: 20,
    },
};

/// What the capture records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureMode {
    /// Nothing (the kernel found no port for it, or `moat.pcap=off`).
    Off,
    /// Every dropped frame (rate permitting).
    Drops,
    /// Dropped frames and the packets `pass … log` rules let through (the packet that
    /// opened the flow).
    DropsAndLoggedPasses,
}

/// How the capture is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureConfig {
    /// What to record.
    pub mode: CaptureMode,
    /// Bytes of each frame kept (the pcap snap length).
    pub snaplen: u32,
    /// Bytes the buffer holds before records are dropped.
    pub buffer_bytes: usize,
}

/// The default snap length: the whole of a 1500-byte-MTU Ethernet frame.
pub const DEFAULT_SNAPLEN: u32 = 1514;
/// The default buffer: 64 KiB, about 40 full-size frames.
pub const DEFAULT_BUFFER_BYTES: usize = 64 * 1024;

impl Default for CaptureConfig {
    fn default() -> CaptureConfig {
        CaptureConfig {
            mode: CaptureMode::Drops,
            snaplen: DEFAULT_SNAPLEN,
            buffer_bytes: DEFAULT_BUFFER_BYTES,
        }
    }
}

/// What the capture did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Records made.
    pub captured: u64,
    /// Records not made: refused by the rate limit, or no room in the buffer.
    pub dropped: u64,
}

/// The capture. See the module documentation.
pub struct Capture {
    config: CaptureConfig,
    budget: SharedBudget,
    buffer: VecDeque<u8>,
    stats: CaptureStats,
}

impl Capture {
    /// A capture set up by `config`, filing senders in its budget under a hash keyed by
    /// `shares_key`; its buffer starts with the pcap global header (unless the mode is
    /// [`CaptureMode::Off`]).
    pub fn new(config: CaptureConfig, shares_key: u64) -> Capture {
        let mut buffer = VecDeque::new();
        if config.mode != CaptureMode::Off {
            buffer.reserve_exact(config.buffer_bytes.max(pcap::GLOBAL_HEADER_LEN));
            buffer.extend(pcap::global_header(config.snaplen));
        }
        Capture {
            config,
            budget: SharedBudget::new(CAPTURE_SHARES, shares_key),
            buffer,
            stats: CaptureStats::default(),
        }
    }

    /// What the capture records.
    pub fn mode(&self) -> CaptureMode {
        self.config.mode
    }

    /// Records `frame` from `sender`, seen at `now`, if the mode is not off, the sender's
    /// share of the budget admits it and the buffer has room; returns whether it did.
    pub fn record(&mut self, sender: Source, now: Instant, frame: &[u8]) -> bool {
        if self.config.mode == CaptureMode::Off {
            return false;
        }
        let kept = frame.len().min(self.config.snaplen as usize);
        let size = pcap::RECORD_HEADER_LEN + kept;
        let room = self.config.buffer_bytes.saturating_sub(self.buffer.len());
        if size > room || !self.budget.try_take(sender, now) {
            self.stats.dropped += 1;
            return false;
        }
        self.buffer
            .extend(pcap::record_header(now, kept as u32, frame.len() as u32));
        self.buffer.extend(&frame[..kept]);
        self.stats.captured += 1;
        true
    }

    /// Hands at most `max` buffered bytes, oldest first, to `write`, which returns how many
    /// it took (fewer when its port is busy); returns the bytes taken.
    pub fn drain(&mut self, max: usize, mut write: impl FnMut(&[u8]) -> usize) -> usize {
        let mut taken = 0;
        while taken < max && !self.buffer.is_empty() {
            let (front, _) = self.buffer.as_slices();
            let offered = &front[..front.len().min(max - taken)];
            let len = offered.len();
            let written = write(offered).min(len);
            self.buffer.drain(..written);
            taken += written;
            if written < len {
                break;
            }
        }
        taken
    }

    /// Bytes waiting to be drained.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    /// Records made and dropped so far.
    pub fn stats(&self) -> CaptureStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use smoltcp::wire::Ipv4Address;

    fn drained(capture: &mut Capture) -> Vec<u8> {
        let mut out = Vec::new();
        capture.drain(usize::MAX, |bytes| {
            out.extend_from_slice(bytes);
            bytes.len()
        });
        out
    }

    const SENDER: Source = Source::neighbour(1, Ipv4Address::new(10, 137, 1, 10));

    fn client(i: u8) -> Source {
        Source::neighbour(1, Ipv4Address::new(10, 137, 1, i))
    }

    #[test]
    fn a_frame_longer_than_the_snap_length_is_cut_and_keeps_its_length() {
        let config = CaptureConfig {
            snaplen: 64,
            ..CaptureConfig::default()
        };
        let mut capture = Capture::new(config, 1);
        let frame: Vec<u8> = (0..200u8).collect();
        assert!(capture.record(SENDER, Instant::from_millis(1_250), &frame));
        let out = drained(&mut capture);
        let record = &out[pcap::GLOBAL_HEADER_LEN..];
        assert_eq!(
            record[..16],
            pcap::record_header(Instant::from_millis(1_250), 64, 200)
        );
        assert_eq!(&record[16..], &frame[..64]);
    }

    #[test]
    fn a_full_buffer_drops_records_and_counts_them_instead_of_waiting() {
        let config = CaptureConfig {
            buffer_bytes: 200,
            ..CaptureConfig::default()
        };
        let mut capture = Capture::new(config, 1);
        let frame = [0u8; 100];
        let results: Vec<bool> = (0..3u8)
            .map(|i| capture.record(client(i), Instant::from_secs(1), &frame))
            .collect();
        // 24 bytes of global header + one 116-byte record fit in 200; the second does not.
        assert_eq!(results, [true, false, false]);
        assert_eq!(
            capture.stats(),
            CaptureStats {
                captured: 1,
                dropped: 2
            }
        );
        drained(&mut capture);
        assert!(
            capture.record(SENDER, Instant::from_secs(1), &frame),
            "room again"
        );
    }

    #[test]
    fn a_busy_port_takes_part_of_the_stream_and_the_rest_waits_in_order() {
        let mut capture = Capture::new(CaptureConfig::default(), 1);
        capture.record(SENDER, Instant::from_secs(1), &[9u8; 60]);
        let total = capture.pending();
        let mut out = Vec::new();
        let taken = capture.drain(usize::MAX, |bytes| {
            out.extend_from_slice(&bytes[..10]);
            10
        });
        assert_eq!((taken, capture.pending()), (10, total - 10));
        out.extend(drained(&mut capture));
        assert_eq!(out.len(), total);
        assert_eq!(out[..24], pcap::global_header(DEFAULT_SNAPLEN));
    }

    #[test]
    fn drain_stops_at_its_budget() {
        let mut capture = Capture::new(CaptureConfig::default(), 1);
        capture.record(SENDER, Instant::from_secs(1), &[9u8; 60]);
        assert_eq!(capture.drain(30, |bytes| bytes.len()), 30);
    }

    #[test]
    fn a_noisy_sender_takes_its_share_and_leaves_the_rest_to_the_others() {
        let mut capture = Capture::new(CaptureConfig::default(), 1);
        let now = Instant::from_secs(1);
        let frame = [0u8; 60];
        let noisy = (0..1000)
            .filter(|_| capture.record(client(9), now, &frame))
            .count();
        assert_eq!(noisy, CAPTURE_SHARES.per_source.burst as usize);
        assert!(
            capture.record(client(10), now, &frame),
            "another client still gets in"
        );
        assert_eq!(capture.stats().dropped, 1000 - noisy as u64);
    }

    #[test]
    fn off_records_nothing_and_writes_no_header() {
        let config = CaptureConfig {
            mode: CaptureMode::Off,
            ..CaptureConfig::default()
        };
        let mut capture = Capture::new(config, 1);
        assert!(!capture.record(SENDER, Instant::from_secs(1), &[0u8; 60]));
        assert_eq!(capture.pending(), 0);
        assert_eq!(capture.stats(), CaptureStats::default());
    }
}
