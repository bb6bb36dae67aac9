//! The classic pcap file format (libpcap's, microsecond timestamps, little-endian), as
//! `tcpdump -r` and Wireshark read it: one global header, then a record header and the
//! (possibly truncated) frame for each packet.
//!
//! ```
//! use dataplane::capture::pcap::{global_header, record_header, GLOBAL_HEADER_LEN};
//! use smoltcp::time::Instant;
//!
//! let header = global_header(256);
//! assert_eq!(header.len(), GLOBAL_HEADER_LEN);
//! assert_eq!(header[..4], 0xa1b2_c3d4u32.to_le_bytes());
//! let record = record_header(Instant::from_micros(2_500_001), 60, 64);
//! assert_eq!(record[..4], 2u32.to_le_bytes()); // seconds
//! assert_eq!(record[4..8], 500_001u32.to_le_bytes()); // microseconds
//! ```

use smoltcp::time::Instant;

/// The pcap magic number for microsecond timestamps (written in the file's byte order).
pub const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// `LINKTYPE_ETHERNET`: every record is an Ethernet frame.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Bytes of the global header.
pub const GLOBAL_HEADER_LEN: usize = 24;
/// Bytes of a record header.
pub const RECORD_HEADER_LEN: usize = 16;

/// The file's global header: format version 2.4, timestamps in UTC, frames cut to
/// `snaplen` bytes, Ethernet link type.
pub fn global_header(snaplen: u32) -> [u8; GLOBAL_HEADER_LEN] {
    let mut header = [0u8; GLOBAL_HEADER_LEN];
    header[0..4].copy_from_slice(&MAGIC_MICROS.to_le_bytes());
    header[4..6].copy_from_slice(&2u16.to_le_bytes());
    header[6..8].copy_from_slice(&4u16.to_le_bytes());
    // thiszone (8..12) and sigfigs (12..16) stay zero.
    header[16..20].copy_from_slice(&snaplen.to_le_bytes());
    header[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    header
}

/// A record's header: when the frame was seen, the bytes recorded (`captured`) and the
/// frame's length on the wire (`original`).
pub fn record_header(at: Instant, captured: u32, original: u32) -> [u8; RECORD_HEADER_LEN] {
    let micros = at.total_micros().max(0) as u64;
    let mut header = [0u8; RECORD_HEADER_LEN];
    header[0..4].copy_from_slice(&((micros / 1_000_000) as u32).to_le_bytes());
    header[4..8].copy_from_slice(&((micros % 1_000_000) as u32).to_le_bytes());
    header[8..12].copy_from_slice(&captured.to_le_bytes());
    header[12..16].copy_from_slice(&original.to_le_bytes());
    header
}
