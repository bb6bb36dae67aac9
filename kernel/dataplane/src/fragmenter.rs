//! Fragmenting an IPv4 packet that is too big for its egress MTU and may be fragmented (DF
//! clear), as RFC 791 describes: every fragment carries a copy of the header, a payload
//! that is a multiple of 8 bytes (except the last), its offset, and the more-fragments flag
//! (set on all but the last, and on the last too if the packet was itself a non-final
//! fragment). Fragments are built one at a time in a fixed buffer: no allocation.
//!
//! Every offset is computed with checked arithmetic, and a packet whose pieces would reach
//! past [`MAX_DATAGRAM_PAYLOAD`] is refused before any piece is made: a piece keeps its
//! place in the datagram, so a piece of a later fragment is never at offset 0, where it
//! would pass for a first fragment (the receive path already drops such datagrams as
//! malformed; this is the fragmenter's own guarantee).

use smoltcp::wire::Ipv4Packet;

use crate::packet::MAX_DATAGRAM_PAYLOAD;
use crate::policy::MAX_MTU;

/// Why a packet cannot be split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitError {
    /// Not a well-formed IPv4 packet (the caller validated it, so this is a bug).
    Malformed,
    /// The MTU leaves no room for 8 bytes of payload after the header.
    MtuTooSmall,
    /// The packet's payload ends past byte [`MAX_DATAGRAM_PAYLOAD`] of its datagram: its
    /// pieces' offsets would not fit the header (and would wrap around to 0).
    BeyondLargestDatagram,
}

/// The offset of piece `index` of a packet at offset `original` cut into pieces of `chunk`
/// bytes: that many pieces past the original offset, without wrapping. `None` if it does
/// not fit, or if it would put a piece of a later fragment at offset 0, the first
/// fragment's place.
fn piece_offset(original: u16, index: usize, chunk: usize) -> Option<u16> {
    let offset = index
        .checked_mul(chunk)?
        .checked_add(usize::from(original))?;
    let offset = u16::try_from(offset).ok()?;
    let first_piece_of_a_first = original == 0 && index == 0;
    (offset > 0 || first_piece_of_a_first).then_some(offset)
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
    let original_offset = view.frag_offset();
    let original_more = view.more_frags();
    let payload = &packet[header_len..total_len];
    if usize::from(original_offset) + payload.len() > MAX_DATAGRAM_PAYLOAD {
        return Err(SplitError::BeyondLargestDatagram);
    }
    let mut buffer = [0u8; MAX_MTU as usize];
    let mut count = 0;
    for (index, piece) in payload.chunks(chunk).enumerate() {
        let offset =
            piece_offset(original_offset, index, chunk).ok_or(SplitError::BeyondLargestDatagram)?;
        let last = (index + 1) * chunk >= payload.len();
        let length = header_len + piece.len();
        let fragment = &mut buffer[..length];
        fragment[..header_len].copy_from_slice(&packet[..header_len]);
        fragment[header_len..].copy_from_slice(piece);
        let mut header = Ipv4Packet::new_unchecked(&mut fragment[..]);
        header.set_total_len(length as u16);
        header.set_more_frags(!last || original_more);
        header.set_frag_offset(offset);
        header.fill_checksum();
        emit(fragment);
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{IpSummary, Transport};
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
            let s = IpSummary::parse(fragment).expect("each fragment is a valid packet");
            assert_eq!(s.more_fragments, i < 2, "MF on all but the last");
            assert_eq!(s.fragment_offset as usize, payload.len());
            assert_eq!(s.fragment_offset % 8, 0);
            assert_eq!((s.src, s.dst, s.ident), {
                let o = IpSummary::parse(&datagram).unwrap();
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
            assert!(IpSummary::parse(f).unwrap().more_fragments);
        }
    }

    #[test]
    fn a_later_fragment_reaching_past_the_largest_datagram_is_refused_whole() {
        // 1,480 bytes at offset 64,160: cut for 1,400 bytes, the second piece would start
        // at 65,536, which is 0 in 16 bits.
        let mut datagram = packets::ipv4([10, 137, 1, 10], [198, 51, 100, 80], 6, &[1; 1480]);
        packets::set_fragment(&mut datagram, true, 64160);
        let mut emitted = 0;
        assert_eq!(
            split(&datagram, 1400, |_| emitted += 1),
            Err(SplitError::BeyondLargestDatagram)
        );
        assert_eq!(emitted, 0, "no piece is sent");
    }

    #[test]
    fn every_piece_of_a_later_fragment_is_a_later_fragment() {
        let mut datagram = packets::ipv4([10, 137, 1, 10], [198, 51, 100, 80], 6, &[1; 1480]);
        packets::set_fragment(&mut datagram, true, 64048);
        let fragments = split_all(&datagram, 576);
        assert_eq!(fragments.len(), 3);
        for (i, fragment) in fragments.iter().enumerate() {
            let s = IpSummary::parse(fragment).expect("each piece is a valid fragment");
            assert_eq!(s.fragment_offset as usize, 64048 + i * 552);
            assert!(s.more_fragments);
            assert_eq!(s.transport, Transport::NonFirstFragment);
        }
    }

    #[test]
    fn piece_offsets_never_wrap_to_the_first_fragments_place() {
        assert_eq!(piece_offset(0, 0, 1376), Some(0));
        assert_eq!(piece_offset(0, 1, 1376), Some(1376));
        assert_eq!(piece_offset(64160, 0, 1376), Some(64160));
        assert_eq!(piece_offset(64160, 1, 1376), None, "65,536 does not fit");
        assert_eq!(piece_offset(8, usize::MAX, 8), None, "no overflow either");
    }

    #[test]
    fn an_mtu_without_room_for_payload_is_refused() {
        let datagram = packets::udp([10, 137, 1, 10], 5000, [198, 51, 100, 80], 9000, &[1; 100]);
        assert_eq!(split(&datagram, 24, |_| {}), Err(SplitError::MtuTooSmall));
    }
}
