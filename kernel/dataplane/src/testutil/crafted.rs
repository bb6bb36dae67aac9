//! Hostile packets: what a well-behaved host never sends but an attacker (or the fuzzer)
//! does — IPv4 options such as loose source routing, SCTP (which `smoltcp::wire` does not
//! know), fragments cut at any offset with any length (tiny, overlapping, past 64 KiB), and
//! headers broken on purpose (header length, total length, checksums, truncation).
//!
//! Used by the data plane's tests and by its fuzz target (`kernel/dataplane/fuzz`), so that
//! both build the same bytes the same way. Every IPv4 edit goes through `Ipv4Packet`'s
//! setters; only SCTP, which smoltcp does not parse, is written field by field here.

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::wire::{IpProtocol, Ipv4Address, Ipv4Packet, IPV4_HEADER_LEN};

use super::datagram::Ipv4Header;

/// Longest IPv4 options area (a 60-byte header).
pub const MAX_OPTIONS_LEN: usize = 40;
/// IP option: end of option list.
pub const OPTION_END: u8 = 0;
/// IP option: no operation (padding).
pub const OPTION_NOP: u8 = 1;
/// IP option: loose source and record route (RFC 791).
pub const OPTION_LSRR: u8 = 131;
/// IP option: strict source and record route.
pub const OPTION_SSRR: u8 = 137;
/// IP option: record route.
pub const OPTION_RR: u8 = 7;
/// IP option: router alert (RFC 2113).
pub const OPTION_ROUTER_ALERT: u8 = 148;
/// SCTP's IP protocol number.
pub const SCTP_PROTOCOL: u8 = 132;
/// SCTP chunk type INIT.
pub const SCTP_INIT: u8 = 1;
/// Length of SCTP's common header.
pub const SCTP_HEADER_LEN: usize = 12;

/// The options of a source route (`kind` [`OPTION_LSRR`] or [`OPTION_SSRR`]) through
/// `hops`, pointer at the first hop, padded with end-of-list to a multiple of four bytes.
pub fn source_route(kind: u8, hops: &[Ipv4Address]) -> Vec<u8> {
    let len = 3 + 4 * hops.len();
    let mut option = vec![kind, len as u8, 4];
    for hop in hops {
        option.extend_from_slice(&hop.octets());
    }
    padded_options(&option)
}

/// `options` padded with end-of-list to a multiple of four bytes, cut at
/// [`MAX_OPTIONS_LEN`].
pub fn padded_options(options: &[u8]) -> Vec<u8> {
    let mut padded = options[..options.len().min(MAX_OPTIONS_LEN)].to_vec();
    while padded.len() % 4 != 0 {
        padded.push(OPTION_END);
    }
    padded
}

/// `packet` (an IPv4 packet without options) with `options` inserted after its header
/// (padded as [`padded_options`] does): header length, total length and header checksum
/// follow. The transport checksum does not cover IP options, so it stays valid.
pub fn with_options(packet: &[u8], options: &[u8]) -> Vec<u8> {
    let options = padded_options(options);
    let mut bytes = packet[..IPV4_HEADER_LEN.min(packet.len())].to_vec();
    bytes.extend_from_slice(&options);
    bytes.extend_from_slice(packet.get(IPV4_HEADER_LEN..).unwrap_or(&[]));
    if bytes.len() < IPV4_HEADER_LEN {
        return bytes;
    }
    let total = bytes.len().min(usize::from(u16::MAX)) as u16;
    let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..]);
    ip.set_header_len((IPV4_HEADER_LEN + options.len()) as u8);
    ip.set_total_len(total);
    ip.fill_checksum();
    bytes
}

/// An SCTP packet from `src:src_port` to `dst:dst_port` with verification tag `vtag` and
/// one chunk of `chunk_type` carrying `chunk_value`, its CRC32c checksum computed
/// (RFC 9260 §3; smoltcp has no SCTP, so the common header is written here).
pub fn sctp(
    (src, src_port): ([u8; 4], u16),
    (dst, dst_port): ([u8; 4], u16),
    vtag: u32,
    chunk_type: u8,
    chunk_value: &[u8],
) -> Vec<u8> {
    let chunk_len = 4 + chunk_value.len();
    let mut sctp = Vec::with_capacity(SCTP_HEADER_LEN + chunk_len + 3);
    sctp.extend_from_slice(&src_port.to_be_bytes());
    sctp.extend_from_slice(&dst_port.to_be_bytes());
    sctp.extend_from_slice(&vtag.to_be_bytes());
    sctp.extend_from_slice(&[0; 4]);
    sctp.extend_from_slice(&[chunk_type, 0]);
    sctp.extend_from_slice(&(chunk_len as u16).to_be_bytes());
    sctp.extend_from_slice(chunk_value);
    while sctp.len() % 4 != 0 {
        sctp.push(0);
    }
    let crc = crc32c(&sctp);
    sctp[8..12].copy_from_slice(&crc.to_le_bytes());
    let mut bytes = Ipv4Header::new(Ipv4Address::from(src), Ipv4Address::from(dst))
        .emit(IpProtocol::Unknown(SCTP_PROTOCOL), sctp.len());
    Ipv4Packet::new_unchecked(&mut bytes[..])
        .payload_mut()
        .copy_from_slice(&sctp);
    bytes
}

/// CRC32c (Castagnoli), as SCTP's checksum uses it.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

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
    use crate::packet::Ipv4Summary;
    use crate::testutil::packets::{checksums_valid, tcp_syn};

    #[test]
    fn a_source_routed_syn_keeps_valid_checksums_and_carries_its_route() {
        let syn = tcp_syn([10, 137, 1, 10], 40000, [1, 1, 1, 1], 80);
        let route = source_route(OPTION_LSRR, &[Ipv4Address::new(198, 51, 100, 1)]);
        let routed = with_options(&syn, &route);
        assert!(checksums_valid(&routed));
        let ip = Ipv4Packet::new_checked(&routed[..]).unwrap();
        assert_eq!(ip.header_len() as usize, IPV4_HEADER_LEN + 8);
        assert_eq!(&routed[IPV4_HEADER_LEN..IPV4_HEADER_LEN + 3], &[131, 7, 4]);
    }

    #[test]
    fn sctp_init_checksum_is_the_crc32c_of_rfc_9260() {
        // RFC 3720 B.4's CRC32c check value: 32 bytes of zeros give 0x8a9136aa.
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        let init = sctp(
            ([10, 137, 1, 10], 5000),
            ([1, 1, 1, 1], 9999),
            0,
            SCTP_INIT,
            &[0; 16],
        );
        let summary = Ipv4Summary::parse(&init).unwrap();
        assert_eq!(u8::from(summary.protocol), SCTP_PROTOCOL);
    }

    #[test]
    fn a_fragment_claims_any_offset_and_length() {
        let syn = tcp_syn([10, 137, 1, 10], 40000, [1, 1, 1, 1], 80);
        let piece = fragment(&syn, 8, 24, 64160, true);
        let ip = Ipv4Packet::new_checked(&piece[..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.frag_offset(), ip.more_frags()), (64160, true));
        assert_eq!(ip.payload().len(), 24);
    }
}
