//! Hostile packets: what a well-behaved host never sends but an attacker (or the fuzzer)
//! does — fragments cut at any offset with any length (tiny, overlapping, past 64 KiB), and
//! headers broken on purpose (header length, total length, checksums, truncation). IP
//! options and SCTP are in [`super::packets`].
//!
//! Used by the data plane's tests and by its fuzz target (`kernel/dataplane/fuzz`), so that
//! both build the same bytes the same way. Every edit goes through `Ipv4Packet`'s setters.

use alloc::vec::Vec;

use smoltcp::wire::{IpProtocol, Ipv4Packet, IPV4_HEADER_LEN};

/// A fragment of `packet` (a whole datagram, options allowed): its header, and `len` bytes
/// of payload starting at payload byte `from` (zeros past the end), claiming fragment
/// offset `offset` bytes (rounded down to eight) and more-fragments `more`. The offset need
/// not match `from`: that is how overlapping, misplaced and oversized fragments are made.
pub fn fragment(packet: &[u8], from: usize, len: usize, offset: u32, more: bool) -> Vec<u8> {
    let Ok(ip) = Ipv4Packet::new_checked(packet) else {
        return packet.to_vec();
    };
    let header_len = usize::from(ip.header_len());
    let payload = &packet[header_len..];
    let mut bytes = packet[..header_len].to_vec();
    for i in from..from + len {
        bytes.push(payload.get(i).copied().unwrap_or(0));
    }
    let total = bytes.len().min(usize::from(u16::MAX)) as u16;
    let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..]);
    ip.set_total_len(total);
    ip.set_dont_frag(false);
    ip.set_more_frags(more);
    ip.set_frag_offset((offset.min(0xffff) as u16) & !7);
    ip.fill_checksum();
    bytes
}

/// Ways to break a packet's headers, as a hostile sender does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakage {
    /// The header length field says `n` 32-bit words (the checksum is fixed up).
    HeaderWords(u8),
    /// The total length field says `n` bytes (the checksum is fixed up).
    TotalLength(u16),
    /// The IPv4 header checksum is wrong.
    HeaderChecksum,
    /// The transport (TCP/UDP/ICMP) checksum is wrong; the IPv4 header stays valid.
    TransportChecksum,
    /// Only the first `n` bytes are sent (the total length still claims the whole packet).
    Truncated(usize),
}

/// `packet` broken as `breakage` says.
pub fn broken(packet: &[u8], breakage: Breakage) -> Vec<u8> {
    let mut bytes = packet.to_vec();
    if bytes.len() < IPV4_HEADER_LEN {
        return bytes;
    }
    let header_len = usize::from(Ipv4Packet::new_unchecked(&bytes[..]).header_len());
    match breakage {
        Breakage::HeaderWords(words) => {
            let len = bytes.len();
            let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..]);
            ip.set_header_len(words.min(15) * 4);
            // The checksum covers the header the field claims, if the packet holds it.
            if usize::from(words.min(15)) * 4 <= len {
                ip.fill_checksum();
            }
        }
        Breakage::TotalLength(len) => {
            let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..]);
            ip.set_total_len(len);
            ip.fill_checksum();
        }
        Breakage::HeaderChecksum => {
            let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..]);
            let checksum = ip.checksum();
            ip.set_checksum(checksum ^ 0x5a5a);
        }
        Breakage::TransportChecksum => {
            // TCP's checksum is at byte 16, UDP's at 6, ICMP's at 2 of their headers.
            let at = match Ipv4Packet::new_unchecked(&bytes[..]).next_header() {
                IpProtocol::Tcp => 16,
                IpProtocol::Udp => 6,
                _ => 2,
            };
            if let Some(byte) = bytes.get_mut(header_len + at) {
                *byte ^= 0x5a;
            }
        }
        Breakage::Truncated(len) => bytes.truncate(len),
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::packets::tcp_syn;

    #[test]
    fn a_fragment_claims_any_offset_and_length() {
        let syn = tcp_syn([10, 137, 1, 10], 40000, [1, 1, 1, 1], 80);
        let piece = fragment(&syn, 8, 24, 64160, true);
        let ip = Ipv4Packet::new_checked(&piece[..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.frag_offset(), ip.more_frags()), (64160, true));
        assert_eq!(ip.payload().len(), 24);
    }

    #[test]
    fn a_header_length_beyond_the_packet_is_written_without_a_checksum_over_it() {
        let syn = tcp_syn([10, 137, 1, 10], 40000, [1, 1, 1, 1], 80);
        let short = broken(&syn[..24], Breakage::HeaderWords(15));
        assert_eq!(Ipv4Packet::new_unchecked(&short[..]).header_len(), 60);
    }
}
