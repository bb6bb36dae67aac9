//! SCTP's common header (RFC 9260 §3.1), for which `smoltcp::wire` has no type: a
//! zero-copy view in smoltcp's style, and the CRC32c checksum that covers the packet.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-------------------------------+-------------------------------+
//! |      Source Port Number       |    Destination Port Number    |
//! +-------------------------------+-------------------------------+
//! |                       Verification Tag                        |
//! +---------------------------------------------------------------+
//! |                           Checksum                            |
//! +---------------------------------------------------------------+
//! |  chunks (type, flags, length, value) ...
//! ```
//!
//! What the data plane needs of SCTP is the two ports: a flow is identified by them, the
//! policy matches them, states are keyed on them. It never changes them — masquerade keeps
//! an SCTP flow's ports (see [`crate::nat`]) — so it never has to recompute the checksum:
//! unlike TCP's and UDP's, SCTP's checksum has no pseudo-header, and rewriting the IP
//! addresses leaves it valid. [`checksum`] is there for those who build or verify packets
//! (the test packet library).

use core::ops::Range;

use smoltcp::wire::IpProtocol;

/// SCTP's IP protocol number (smoltcp has no name for it).
pub const PROTOCOL: IpProtocol = IpProtocol::Unknown(132);

/// Length of the common header.
pub const HEADER_LEN: usize = 12;

/// The chunk type of an INIT chunk, which opens an association.
pub const CHUNK_INIT: u8 = 1;

mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const VERIFICATION_TAG: Range<usize> = 4..8;
    pub const CHECKSUM: Range<usize> = 8..12;
}

// Big-endian reads and writes of the header's fields, on ranges the view has checked.

fn read_u16(bytes: &[u8], at: Range<usize>) -> u16 {
    let mut word = [0u8; 2];
    word.copy_from_slice(&bytes[at]);
    u16::from_be_bytes(word)
}

fn read_u32(bytes: &[u8], at: Range<usize>) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at]);
    u32::from_be_bytes(word)
}

fn write_u16(bytes: &mut [u8], at: Range<usize>, value: u16) {
    bytes[at].copy_from_slice(&value.to_be_bytes());
}

fn write_u32(bytes: &mut [u8], at: Range<usize>, value: u32) {
    bytes[at].copy_from_slice(&value.to_be_bytes());
}

/// Why bytes are not an SCTP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncated;

/// A view of an SCTP packet: its common header, then its chunks.
///
/// [`SctpPacket::new_checked`] guarantees the 12-byte common header is there; no accessor
/// panics afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SctpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> SctpPacket<T> {
    /// A view of `buffer`, which must hold at least the common header.
    pub fn new_checked(buffer: T) -> Result<SctpPacket<T>, Truncated> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Truncated);
        }
        Ok(SctpPacket { buffer })
    }

    /// The source port.
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// The verification tag (0 in a packet that carries an INIT chunk).
    pub fn verification_tag(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::VERIFICATION_TAG)
    }

    /// The checksum field, as the CRC32c it carries (see [`checksum`]).
    pub fn checksum(&self) -> u32 {
        u32::from_le_bytes(read_u32(self.buffer.as_ref(), field::CHECKSUM).to_be_bytes())
    }

    /// The type of the first chunk, if the packet has one.
    pub fn first_chunk_type(&self) -> Option<u8> {
        self.buffer.as_ref().get(HEADER_LEN).copied()
    }

    /// Whether the checksum field holds the CRC32c of the packet (all of `buffer`).
    pub fn verify_checksum(&self) -> bool {
        checksum(self.buffer.as_ref()) == self.checksum()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> SctpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, port: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, port);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, port: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, port);
    }

    /// Sets the verification tag.
    pub fn set_verification_tag(&mut self, tag: u32) {
        write_u32(self.buffer.as_mut(), field::VERIFICATION_TAG, tag);
    }

    /// Computes the CRC32c of the packet (all of `buffer`) and writes it.
    pub fn fill_checksum(&mut self) {
        write_u32(self.buffer.as_mut(), field::CHECKSUM, 0);
        let crc = checksum(self.buffer.as_ref());
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&crc.to_le_bytes());
    }
}

/// The CRC32c (Castagnoli, reflected polynomial `0x82F63B78`) of an SCTP packet, computed
/// with the checksum field taken as zero (RFC 9260 §6.8, Appendix A). The field carries it
/// least significant byte first, as RFC 9260's reference code writes it.
pub fn checksum(packet: &[u8]) -> u32 {
    let mut crc = !0u32;
    for (i, &byte) in packet.iter().enumerate() {
        let byte = if field::CHECKSUM.contains(&i) {
            0
        } else {
            byte
        };
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82F6_3B78 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CRC-32C's check value: the CRC of "123456789".
    #[test]
    fn the_crc_is_crc32c() {
        // Twelve bytes of header (the checksum field zero), then the check string: the CRC
        // of the whole equals the CRC-32C of the 21 bytes with the field zeroed.
        let mut crc = !0u32;
        for &byte in b"123456789" {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = (crc >> 1) ^ (0x82F6_3B78 & (crc & 1).wrapping_neg());
            }
        }
        assert_eq!(!crc, 0xE306_9283);
        let mut packet = [0u8; HEADER_LEN + 9];
        packet[HEADER_LEN..].copy_from_slice(b"123456789");
        packet[8..12].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        let mut zeroed = packet;
        zeroed[8..12].copy_from_slice(&[0; 4]);
        assert_eq!(checksum(&packet), checksum(&zeroed));
    }

    /// An INIT from port 53600 to port 80 with the checksum a real SCTP stack computes for
    /// it (the packet masscan's self-test checks its CRC32c against).
    const INIT: [u8; 32] = [
        0xd1, 0x60, 0x00, 0x50, 0x00, 0x00, 0x00, 0x00, 0x58, 0xe4, 0x5d, 0x36, 0x01, 0x00, 0x00,
        0x14, 0x9e, 0x8d, 0x52, 0x25, 0x00, 0x00, 0x80, 0x00, 0x00, 0x0a, 0x08, 0x00, 0x46, 0x1a,
        0xdf, 0x3d,
    ];

    #[test]
    fn a_real_init_is_read_and_verifies() {
        let view = SctpPacket::new_checked(&INIT[..]).unwrap();
        assert_eq!((view.src_port(), view.dst_port()), (53600, 80));
        assert_eq!(view.verification_tag(), 0);
        assert_eq!(view.first_chunk_type(), Some(CHUNK_INIT));
        assert!(view.verify_checksum());
        let mut damaged = INIT;
        damaged[20] ^= 1;
        assert!(!SctpPacket::new_checked(&damaged[..])
            .unwrap()
            .verify_checksum());
    }

    #[test]
    fn a_filled_checksum_is_the_one_a_real_stack_writes() {
        let mut packet = INIT;
        let mut view = SctpPacket::new_checked(&mut packet[..]).unwrap();
        view.set_src_port(40000);
        assert!(!view.verify_checksum());
        view.set_src_port(53600);
        view.fill_checksum();
        assert_eq!(packet, INIT);
    }

    #[test]
    fn shorter_than_the_common_header_is_refused() {
        assert_eq!(SctpPacket::new_checked(&[0u8; 11][..]), Err(Truncated));
    }
}
