//! Shaping test packets: explicit TCP segments and TTLs (fragments and their reassembly:
//! `dataplane::testutil::packets`).

use std::net::SocketAddrV4;

use dataplane::testutil::packets;
pub use dataplane::testutil::packets::{fragments, reassembled};

/// A TCP segment with explicit numbers.
pub fn segment(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    packets::tcp(
        (src.ip().octets(), src.port()),
        (dst.ip().octets(), dst.port()),
        (seq, ack, flags),
        payload,
    )
}

/// The packet with its TTL set to `ttl`.
pub fn with_ttl(mut packet: Vec<u8>, ttl: u8) -> Vec<u8> {
    packets::set_ttl(&mut packet, ttl);
    packet
}
