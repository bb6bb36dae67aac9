//! Fragmenting an IPv4 packet that is too big for its egress MTU and may be fragmented (DF
//! clear), as RFC 791 describes: every fragment carries a copy of the header, a payload
//! that is a multiple of 8 bytes (except the last), its offset, and the more-fragments flag
//! (set on all but the last, and on the last too if the packet was itself a non-final
//! fragment). Fragments are built one at a time in a fixed buffer: no allocation.

use smoltcp::wire::Ipv4Packet;

use crate::policy::MAX_MTU;

/// Why a packet cannot be split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitError {
    /// Not a well-formed IPv4 packet (the caller validated it, so this is a bug).
    Malformed,
    /// The MTU leaves no room for 8 bytes of payload after the header.
    MtuTooSmall,
}

/// Calls `emit` with each fragment of `packet` (an IPv4 packet, its total length exact)
/// for a link of `mtu` bytes (at most [`MAX_MTU`]). Returns how many fragments were made.
/// The packet must not have DF set; the caller checks that (and sends ICMP
/// fragmentation-needed instead).
pub fn split(packet: &[u8], mtu: u16, mut emit: impl FnMut(&[u8])) -> Result<usize, SplitError> {
    let view = Ipv4Packet::new_checked(packet).map_err(|_| SplitError::Malformed)?;
    let header_len = view.header_len() as usize;
    let total_len = view.total_len() as usize;
    if total_len > packet.len() {
        return Err(SplitError::Malformed);
    }
    let mtu = mtu.min(MAX_MTU) as usize;
    let chunk = mtu.saturating_sub(header_len) / 8 * 8;
    if chunk == 0 {
        return Err(SplitError::MtuTooSmall);
    }
    let original_offset = view.frag_offset() as usize;
    let original_more = view.more_frags();
    let payload = &packet[header_len..total_len];
    let mut buffer = [0u8; MAX_MTU as usize];
    let mut count = 0;
    for (index, piece) in payload.chunks(chunk).enumerate() {
        let last = (index + 1) * chunk >= payload.len();
        let length = header_len + piece.len();
        let fragment = &mut buffer[..length];
        fragment[..header_len].copy_from_slice(&packet[..header_len]);
        fragment[header_len..].copy_from_slice(piece);
        let mut header = Ipv4Packet::new_unchecked(&mut fragment[..]);
        header.set_total_len(length as u16);
        header.set_more_frags(!last || original_more);
        header.set_frag_offset((original_offset + index * chunk) as u16);
        header.fill_checksum();
        emit(fragment);
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Ipv4Summary, Transport};
    use crate::testutil::packets;

    fn split_all(packet: &[u8], mtu: u16) -> alloc::vec::Vec<alloc::vec::Vec<u8>> {
        let mut out = alloc::vec::Vec::new();
        split(packet, mtu, |f| out.push(f.to_vec())).unwrap();
        out
    }

    #[test]
    fn a_datagram_splits_into_eight_byte_aligned_fragments_that_reassemble() {
        let datagram = packets::udp(
            [10, 137, 1, 10],
            5000,
            [198, 51, 100, 80],
            9000,
            &[0x5a; 2900],
        );
        let fragments = split_all(&datagram, 1400);
        assert_eq!(fragments.len(), 3);
        let mut payload = alloc::vec::Vec::new();
        for (i, fragment) in fragments.iter().enumerate() {
            assert!(fragment.len() <= 1400);
            let s = Ipv4Summary::parse(fragment).expect("each fragment is a valid packet");
            assert_eq!(s.more_fragments, i < 2, "MF on all but the last");
            assert_eq!(s.fragment_offset as usize, payload.len());
            assert_eq!(s.fragment_offset % 8, 0);
            assert_eq!((s.src, s.dst, s.ident), {
                let o = Ipv4Summary::parse(&datagram).unwrap();
                (o.src, o.dst, o.ident)
            });
            if i > 0 {
                assert_eq!(s.transport, Transport::NonFirstFragment);
            }
            payload.extend_from_slice(&fragment[20..]);
        }
        assert_eq!(payload, datagram[20..]);
        // Put back together, the datagram is the original, checksum included.
        let mut whole = datagram[..20].to_vec();
        whole.extend_from_slice(&payload);
        assert!(packets::checksums_valid(&whole));
    }

    #[test]
    fn a_non_final_fragment_keeps_more_fragments_on_its_last_piece() {
        let mut datagram =
            packets::udp([10, 137, 1, 10], 5000, [198, 51, 100, 80], 9000, &[1; 1480]);
        packets::set_fragment(&mut datagram, true, 0);
        let fragments = split_all(&datagram, 1000);
        assert_eq!(fragments.len(), 2);
        for f in &fragments {
            assert!(Ipv4Summary::parse(f).unwrap().more_fragments);
        }
    }

    #[test]
    fn an_mtu_without_room_for_payload_is_refused() {
        let datagram = packets::udp([10, 137, 1, 10], 5000, [198, 51, 100, 80], 9000, &[1; 100]);
        assert_eq!(split(&datagram, 24, |_| {}), Err(SplitError::MtuTooSmall));
    }
}
