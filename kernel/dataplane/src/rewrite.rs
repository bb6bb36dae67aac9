//! In-place rewriting of IPv4 packets with incremental checksum updates (RFC 1624).
//!
//! Every function takes the packet bytes (starting at the IPv4 header) and the
//! [`Ipv4Summary`] that [`Ipv4Summary::parse`] produced for them, changes one field, and
//! adjusts every checksum that covers it — the IPv4 header checksum, the TCP/UDP checksum
//! (whose pseudo-header covers the addresses), the ICMP checksum — without recomputing any
//! of them over the packet. A UDP checksum of zero ("none") stays zero.
//!
//! The summary must describe the bytes: offsets come from it and were validated when it
//! was parsed, so these functions index within bounds. A summary that does not match the
//! bytes is a caller bug; out-of-range offsets are then ignored rather than panicking.

use crate::checksum::update_u16;
use crate::packet::{proto, IcmpSummary, Ipv4Summary, QuotedPacket, Transport};
use smoltcp::wire::Ipv4Address;

const IP_CHECKSUM: usize = 10;
const IP_TTL: usize = 8;
const IP_SRC: usize = 12;
const IP_DST: usize = 16;
const TCP_CHECKSUM: usize = 16;
const UDP_CHECKSUM: usize = 6;
const ICMP_CHECKSUM: usize = 2;
const ICMP_ECHO_IDENT: usize = 4;

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

fn write_u16(bytes: &mut [u8], at: usize, value: u16) -> Option<u16> {
    let old = read_u16(bytes, at)?;
    bytes[at..at + 2].copy_from_slice(&value.to_be_bytes());
    Some(old)
}

/// Adjusts the checksum stored at `checksum_at` for a word that changed `old` → `new`.
fn adjust(bytes: &mut [u8], checksum_at: usize, old: u16, new: u16) {
    if let Some(checksum) = read_u16(bytes, checksum_at) {
        write_u16(bytes, checksum_at, update_u16(checksum, old, new));
    }
}

/// Adjusts a UDP checksum: zero means "no checksum" and stays zero; a computed zero is sent
/// as `0xffff` (RFC 768).
fn adjust_udp(bytes: &mut [u8], checksum_at: usize, old: u16, new: u16) {
    if let Some(checksum) = read_u16(bytes, checksum_at) {
        if checksum != 0 {
            let updated = update_u16(checksum, old, new);
            write_u16(
                bytes,
                checksum_at,
                if updated == 0 { 0xffff } else { updated },
            );
        }
    }
}

/// Replaces a 16-bit word and adjusts the checksums at `checksums` (offset, is-UDP).
fn replace_word(bytes: &mut [u8], at: usize, new: u16, checksums: &[(usize, bool)]) -> Option<u16> {
    let old = write_u16(bytes, at, new)?;
    for &(checksum_at, udp) in checksums {
        if udp {
            adjust_udp(bytes, checksum_at, old, new);
        } else {
            adjust(bytes, checksum_at, old, new);
        }
    }
    Some(old)
}

/// The transport checksum covering the pseudo-header, if this packet carries one: the
/// first (or only) fragment of a TCP or UDP packet.
fn pseudo_header_checksum(summary: &Ipv4Summary) -> Option<(usize, bool)> {
    let l4 = summary.header_len;
    match summary.transport {
        Transport::Tcp(_) => Some((l4 + TCP_CHECKSUM, false)),
        Transport::Udp { .. } => Some((l4 + UDP_CHECKSUM, true)),
        _ => None,
    }
}

/// Decrements the TTL; returns the new TTL. The caller checks for expiry first.
pub fn decrement_ttl(bytes: &mut [u8]) -> u8 {
    let Some(word) = read_u16(bytes, IP_TTL) else {
        return 0;
    };
    let ttl = (word >> 8) as u8;
    let new_ttl = ttl.saturating_sub(1);
    replace_word(
        bytes,
        IP_TTL,
        ((new_ttl as u16) << 8) | (word & 0xff),
        &[(IP_CHECKSUM, false)],
    );
    new_ttl
}

fn set_address(bytes: &mut [u8], summary: &Ipv4Summary, at: usize, new: Ipv4Address) {
    let new = new.octets();
    let l4 = pseudo_header_checksum(summary);
    for half in 0..2 {
        let word = u16::from_be_bytes([new[2 * half], new[2 * half + 1]]);
        match l4 {
            Some(c) => replace_word(bytes, at + 2 * half, word, &[(IP_CHECKSUM, false), c]),
            None => replace_word(bytes, at + 2 * half, word, &[(IP_CHECKSUM, false)]),
        };
    }
}

/// Rewrites the source address (IPv4 header and transport pseudo-header checksums).
pub fn set_src_addr(bytes: &mut [u8], summary: &mut Ipv4Summary, new: Ipv4Address) {
    set_address(bytes, summary, IP_SRC, new);
    summary.src = new;
}

/// Rewrites the destination address (IPv4 header and transport pseudo-header checksums).
pub fn set_dst_addr(bytes: &mut [u8], summary: &mut Ipv4Summary, new: Ipv4Address) {
    set_address(bytes, summary, IP_DST, new);
    summary.dst = new;
}

/// Rewrites the TCP/UDP source port (no effect for other protocols).
pub fn set_src_port(bytes: &mut [u8], summary: &mut Ipv4Summary, new: u16) {
    if let Some(c) = pseudo_header_checksum(summary) {
        replace_word(bytes, summary.header_len, new, &[c]);
        match &mut summary.transport {
            Transport::Tcp(t) => t.src_port = new,
            Transport::Udp { src_port, .. } => *src_port = new,
            _ => {}
        }
    }
}

/// Rewrites the TCP/UDP destination port (no effect for other protocols).
pub fn set_dst_port(bytes: &mut [u8], summary: &mut Ipv4Summary, new: u16) {
    if let Some(c) = pseudo_header_checksum(summary) {
        replace_word(bytes, summary.header_len + 2, new, &[c]);
        match &mut summary.transport {
            Transport::Tcp(t) => t.dst_port = new,
            Transport::Udp { dst_port, .. } => *dst_port = new,
            _ => {}
        }
    }
}

/// Rewrites the identifier of an ICMP echo request/reply (no effect otherwise).
pub fn set_icmp_echo_ident(bytes: &mut [u8], summary: &mut Ipv4Summary, new: u16) {
    if let Transport::Icmp(IcmpSummary::Echo { ident, .. }) = &mut summary.transport {
        let l4 = summary.header_len;
        replace_word(
            bytes,
            l4 + ICMP_ECHO_IDENT,
            new,
            &[(l4 + ICMP_CHECKSUM, false)],
        );
        *ident = new;
    }
}

/// Offsets of the checksums that cover the quoted packet's words: the outer ICMP checksum
/// (covers every quoted byte), and for address words the quoted IPv4 header checksum and
/// the quoted transport checksum when it lies inside the quote.
struct QuoteChecksums {
    icmp: usize,
    quoted_ip: usize,
    quoted_l4: Option<(usize, bool)>,
}

fn quote_checksums(bytes: &[u8], summary: &Ipv4Summary, quoted: &QuotedPacket) -> QuoteChecksums {
    let l4 = quoted.offset + quoted.header_len;
    let quoted_l4 = match quoted.protocol {
        proto::UDP if bytes.len().min(summary.total_len) >= l4 + UDP_CHECKSUM + 2 => {
            Some((l4 + UDP_CHECKSUM, true))
        }
        proto::TCP if bytes.len().min(summary.total_len) >= l4 + TCP_CHECKSUM + 2 => {
            Some((l4 + TCP_CHECKSUM, false))
        }
        _ => None,
    };
    QuoteChecksums {
        icmp: summary.header_len + ICMP_CHECKSUM,
        quoted_ip: quoted.offset + IP_CHECKSUM,
        quoted_l4,
    }
}

/// Replaces a word inside the quote, keeping the quote's own checksum `inner` (if any) and
/// the outer ICMP checksum correct. The inner checksum's change is itself covered by the
/// ICMP checksum, so it is propagated too.
fn replace_quoted_word(
    bytes: &mut [u8],
    at: usize,
    new: u16,
    icmp: usize,
    inner: &[(usize, bool)],
) {
    let Some(old) = write_u16(bytes, at, new) else {
        return;
    };
    adjust(bytes, icmp, old, new);
    for &(checksum_at, udp) in inner {
        let Some(before) = read_u16(bytes, checksum_at) else {
            continue;
        };
        if udp {
            adjust_udp(bytes, checksum_at, old, new);
        } else {
            adjust(bytes, checksum_at, old, new);
        }
        if let Some(after) = read_u16(bytes, checksum_at) {
            adjust(bytes, icmp, before, after);
        }
    }
}

fn quoted_of(summary: &Ipv4Summary) -> Option<QuotedPacket> {
    match summary.transport {
        Transport::Icmp(IcmpSummary::Error { quoted, .. }) => Some(quoted),
        _ => None,
    }
}

fn set_quoted_address(bytes: &mut [u8], summary: &mut Ipv4Summary, field: usize, new: Ipv4Address) {
    let Some(quoted) = quoted_of(summary) else {
        return;
    };
    let sums = quote_checksums(bytes, summary, &quoted);
    let mut inner: heapless_pair::Pair = heapless_pair::Pair::new((sums.quoted_ip, false));
    if let Some(l4) = sums.quoted_l4 {
        inner.push(l4);
    }
    let new_octets = new.octets();
    for half in 0..2 {
        let word = u16::from_be_bytes([new_octets[2 * half], new_octets[2 * half + 1]]);
        replace_quoted_word(
            bytes,
            quoted.offset + field + 2 * half,
            word,
            sums.icmp,
            inner.as_slice(),
        );
    }
    if let Transport::Icmp(IcmpSummary::Error { quoted, .. }) = &mut summary.transport {
        if field == IP_SRC {
            quoted.src = new;
        } else {
            quoted.dst = new;
        }
    }
}

/// Rewrites the quoted packet's source address inside an ICMP error.
pub fn set_quoted_src_addr(bytes: &mut [u8], summary: &mut Ipv4Summary, new: Ipv4Address) {
    set_quoted_address(bytes, summary, IP_SRC, new);
}

/// Rewrites the quoted packet's destination address inside an ICMP error.
pub fn set_quoted_dst_addr(bytes: &mut [u8], summary: &mut Ipv4Summary, new: Ipv4Address) {
    set_quoted_address(bytes, summary, IP_DST, new);
}

fn set_quoted_port(bytes: &mut [u8], summary: &mut Ipv4Summary, source: bool, new: u16) {
    let Some(quoted) = quoted_of(summary) else {
        return;
    };
    let sums = quote_checksums(bytes, summary, &quoted);
    let l4 = quoted.offset + quoted.header_len;
    match quoted.protocol {
        proto::TCP | proto::UDP if quoted.src_port.is_some() => {
            let at = if source { l4 } else { l4 + 2 };
            let inner: &[(usize, bool)] = match &sums.quoted_l4 {
                Some(c) => core::slice::from_ref(c),
                None => &[],
            };
            replace_quoted_word(bytes, at, new, sums.icmp, inner);
        }
        proto::ICMP if quoted.src_port.is_some() => {
            // A quoted echo: its identifier, covered by the quoted ICMP checksum if present.
            let inner_checksum = l4 + ICMP_CHECKSUM;
            let inner: &[(usize, bool)] =
                if bytes.len().min(summary.total_len) >= inner_checksum + 2 {
                    &[(inner_checksum, false)]
                } else {
                    &[]
                };
            replace_quoted_word(bytes, l4 + ICMP_ECHO_IDENT, new, sums.icmp, inner);
        }
        _ => return,
    }
    if let Transport::Icmp(IcmpSummary::Error { quoted, .. }) = &mut summary.transport {
        if quoted.protocol == proto::ICMP {
            quoted.src_port = Some(new);
            quoted.dst_port = Some(new);
        } else if source {
            quoted.src_port = Some(new);
        } else {
            quoted.dst_port = Some(new);
        }
    }
}

/// Rewrites the quoted packet's source port (or echo identifier) inside an ICMP error.
pub fn set_quoted_src_port(bytes: &mut [u8], summary: &mut Ipv4Summary, new: u16) {
    set_quoted_port(bytes, summary, true, new);
}

/// Rewrites the quoted packet's destination port (or echo identifier) inside an ICMP error.
pub fn set_quoted_dst_port(bytes: &mut [u8], summary: &mut Ipv4Summary, new: u16) {
    set_quoted_port(bytes, summary, false, new);
}

/// A list of at most two checksum locations, without allocating.
mod heapless_pair {
    pub struct Pair {
        items: [(usize, bool); 2],
        len: usize,
    }

    impl Pair {
        pub fn new(first: (usize, bool)) -> Pair {
            Pair {
                items: [first, (0, false)],
                len: 1,
            }
        }

        pub fn push(&mut self, item: (usize, bool)) {
            if self.len < 2 {
                self.items[self.len] = item;
                self.len += 1;
            }
        }

        pub fn as_slice(&self) -> &[(usize, bool)] {
            &self.items[..self.len]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Ipv4Summary;
    use crate::testutil::packets::{self, checksums_valid};

    fn parsed(bytes: &[u8]) -> Ipv4Summary {
        Ipv4Summary::parse(bytes).unwrap()
    }

    #[test]
    fn ttl_decrement_keeps_header_checksum_valid() {
        let mut bytes = packets::udp([10, 137, 1, 10], 5353, [8, 8, 8, 8], 53, b"query");
        assert_eq!(decrement_ttl(&mut bytes), 63);
        assert_eq!(parsed(&bytes).ttl, 63);
        assert!(checksums_valid(&bytes));
    }

    #[test]
    fn tcp_source_nat_rewrites_address_and_port_with_valid_checksums() {
        let mut bytes = packets::tcp(
            [10, 137, 1, 10],
            40000,
            [1, 1, 1, 1],
            443,
            7,
            9,
            0x18,
            b"hello",
        );
        let mut s = parsed(&bytes);
        set_src_addr(&mut bytes, &mut s, Ipv4Address::new(10, 0, 2, 15));
        set_src_port(&mut bytes, &mut s, 61000);
        let again = parsed(&bytes);
        assert_eq!(again.src, Ipv4Address::new(10, 0, 2, 15));
        assert_eq!(again.ports(), (61000, 443));
        assert_eq!(again, s);
        assert!(checksums_valid(&bytes));
    }

    #[test]
    fn udp_destination_nat_keeps_checksum_valid() {
        let mut bytes = packets::udp([203, 0, 113, 9], 5000, [10, 0, 2, 15], 8022, b"x");
        let mut s = parsed(&bytes);
        set_dst_addr(&mut bytes, &mut s, Ipv4Address::new(10, 137, 1, 10));
        set_dst_port(&mut bytes, &mut s, 22);
        assert_eq!(parsed(&bytes).ports(), (5000, 22));
        assert!(checksums_valid(&bytes));
    }

    #[test]
    fn udp_without_checksum_stays_without() {
        let mut bytes = packets::udp([10, 137, 1, 10], 5353, [8, 8, 8, 8], 53, b"q");
        let l4 = 20;
        bytes[l4 + 6] = 0;
        bytes[l4 + 7] = 0;
        let mut s = parsed(&bytes);
        set_src_addr(&mut bytes, &mut s, Ipv4Address::new(10, 0, 2, 15));
        assert_eq!(&bytes[l4 + 6..l4 + 8], &[0, 0]);
        assert!(checksums_valid(&bytes));
    }

    #[test]
    fn icmp_echo_ident_rewrite_keeps_checksum_valid() {
        let mut bytes =
            packets::icmp_echo([10, 137, 1, 10], [1, 1, 1, 1], true, 0x1234, 1, b"ping");
        let mut s = parsed(&bytes);
        set_src_addr(&mut bytes, &mut s, Ipv4Address::new(10, 0, 2, 15));
        set_icmp_echo_ident(&mut bytes, &mut s, 0x4321);
        assert_eq!(parsed(&bytes).ports(), (0x4321, 0x4321));
        assert!(checksums_valid(&bytes));
    }

    #[test]
    fn non_first_fragment_address_rewrite_touches_only_ip_checksum() {
        let mut bytes = packets::udp([10, 137, 1, 10], 5353, [8, 8, 8, 8], 53, &[1; 40]);
        packets::set_fragment(&mut bytes, false, 1480);
        let payload_before = bytes[20..].to_vec();
        let mut s = parsed(&bytes);
        set_src_addr(&mut bytes, &mut s, Ipv4Address::new(10, 0, 2, 15));
        assert_eq!(&bytes[20..], &payload_before[..]);
        assert!(Ipv4Summary::parse(&bytes).is_ok());
    }

    #[test]
    fn icmp_error_quote_is_translated_with_every_checksum_valid() {
        // The uplink router reports "port unreachable" for a NATed UDP flow: the quote
        // carries the translated source, which must be turned back into the client's.
        let quoted = packets::udp([10, 0, 2, 15], 61000, [8, 8, 8, 8], 53, b"q");
        let mut bytes = packets::icmp_error([8, 8, 8, 8], [10, 0, 2, 15], 3, 3, &quoted);
        let mut s = parsed(&bytes);
        set_dst_addr(&mut bytes, &mut s, Ipv4Address::new(10, 137, 1, 10));
        set_quoted_src_addr(&mut bytes, &mut s, Ipv4Address::new(10, 137, 1, 10));
        set_quoted_src_port(&mut bytes, &mut s, 40000);
        assert!(checksums_valid(&bytes), "outer checksums");
        let again = parsed(&bytes);
        assert_eq!(again, s);
        // The quote itself now matches the client's original packet, checksums included.
        let quote = &bytes[28..];
        let mut expected = packets::udp([10, 137, 1, 10], 40000, [8, 8, 8, 8], 53, b"q");
        expected.truncate(quote.len());
        assert_eq!(quote[..20], expected[..20], "quoted IP header");
        assert_eq!(quote[20..], expected[20..], "quoted UDP header");
    }

    #[test]
    fn icmp_error_quoting_an_echo_translates_its_identifier() {
        let quoted = packets::icmp_echo([10, 0, 2, 15], [1, 1, 1, 1], true, 0x5555, 1, b"");
        let mut bytes = packets::icmp_error([10, 0, 2, 2], [10, 0, 2, 15], 11, 0, &quoted);
        let mut s = parsed(&bytes);
        set_quoted_src_port(&mut bytes, &mut s, 0x0101);
        assert!(checksums_valid(&bytes));
        let Transport::Icmp(IcmpSummary::Error { quoted, .. }) = parsed(&bytes).transport else {
            panic!()
        };
        assert_eq!(quoted.src_port, Some(0x0101));
    }
}
