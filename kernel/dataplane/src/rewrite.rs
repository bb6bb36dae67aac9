//! In-place rewriting of IPv4 and IPv6 packets with incremental checksum updates (RFC 1624).
//!
//! Every function takes the packet bytes (starting at the IP header) and the
//! [`IpSummary`] that [`IpSummary::parse`] (or [`IpSummary::parse_ipv6`]) produced for
//! them, changes one field through a `smoltcp::wire` view, and adjusts every checksum that
//! covers it — the IPv4 header checksum, the TCP/UDP checksum (whose pseudo-header covers
//! the addresses), the ICMP checksum, and the ICMPv6 checksum (which, unlike ICMP's, covers
//! the pseudo-header too) — without recomputing any of them over the packet. IPv6 has no
//! header checksum. A UDP checksum of zero ("none") stays zero.
//!
//! The views give the fields; the adjustment is ours ([`update_bytes`], RFC 1624 eqn. 3):
//! smoltcp only recomputes a checksum over the whole packet, which would also hide damage
//! the packet arrived with (a router must keep a bad transport checksum bad).
//!
//! A TCP or UDP checksum may be *partial* ([`TransportChecksum::Partial`]: a NIC with
//! checksum offload completes it, see [`crate::offload`]): its field then holds the
//! pseudo-header's sum, not complemented. An address change (in the pseudo-header) moves
//! that sum; a port change does not (the NIC sums the ports with the rest of the segment),
//! as Linux's `inet_proto_csum_replace4` with `pseudohdr` does for `CHECKSUM_PARTIAL`.
//!
//! The summary must describe the bytes: its lengths were validated when it was parsed, so
//! the views read within bounds. A summary that does not match the bytes is a caller bug;
//! the functions then change nothing rather than panicking.

use smoltcp::wire::{
    Icmpv4Packet, Icmpv6Packet, IpAddress, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket,
    UdpPacket, TCP_HEADER_LEN, UDP_HEADER_LEN,
};

use crate::checksum::update_bytes;
use crate::packet::{IcmpSummary, IpSummary, QuotedPacket, Transport};

/// Longest quoted IP header an edit touches: an IPv4 header with options, or an IPv6
/// header with the extension headers [`crate::packet`] accepts in a quote.
const MAX_QUOTED_HEADER_LEN: usize = crate::ipv6::MAX_QUOTED_IPV6_HEADER_LEN;
/// Bytes of an ICMP echo header (type, code, checksum, identifier, sequence number): the
/// part of a quoted echo the checksum and identifier live in.
const ICMP_ECHO_HEADER_LEN: usize = 8;
/// The bytes of a TCP header up to and including its checksum (TCP's checksum field ends
/// at byte 18: only a quote at least that long carries it).
const TCP_CHECKSUM_END: usize = 18;

/// `checksum` adjusted for bytes it covers that changed from `old` to `new`.
fn adjusted(checksum: u16, old: &[u8], new: &[u8]) -> u16 {
    update_bytes(checksum, old, new)
}

/// A UDP checksum adjusted likewise: zero means "no checksum" and stays zero; a computed
/// zero is sent as `0xffff` (RFC 768).
fn adjusted_udp(checksum: u16, old: &[u8], new: &[u8]) -> u16 {
    match checksum {
        0 => 0,
        _ => match adjusted(checksum, old, new) {
            0 => 0xffff,
            updated => updated,
        },
    }
}

/// How a packet's TCP or UDP checksum stands. See the module documentation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TransportChecksum {
    /// Complete: it covers the pseudo-header, the transport header and the payload.
    #[default]
    Complete,
    /// Partial: the field holds the pseudo-header's sum, for the NIC to complete.
    Partial,
}

/// A partial checksum (an uncomplemented sum) adjusted for covered bytes that changed.
fn adjusted_partial(sum: u16, old: &[u8], new: &[u8]) -> u16 {
    !update_bytes(!sum, old, new)
}

/// The bytes of the packet (without Ethernet padding), if `bytes` holds all of it.
fn packet_of<'a>(bytes: &'a mut [u8], summary: &IpSummary) -> Option<&'a mut [u8]> {
    bytes.get_mut(..summary.total_len)
}

/// Adjusts the transport checksum that covers the pseudo-header — a first (or only)
/// fragment's TCP or UDP checksum — for pseudo-header bytes that changed `old` → `new`.
fn adjust_pseudo_header(
    packet: &mut [u8],
    summary: &IpSummary,
    old: &[u8],
    new: &[u8],
    checksum: TransportChecksum,
) {
    let Some(l4) = packet.get_mut(summary.header_len..) else {
        return;
    };
    match (summary.transport, checksum) {
        (Transport::Tcp(_), TransportChecksum::Complete) => {
            let mut tcp = TcpPacket::new_unchecked(l4);
            tcp.set_checksum(adjusted(tcp.checksum(), old, new));
        }
        (Transport::Udp { .. }, TransportChecksum::Complete) => {
            let mut udp = UdpPacket::new_unchecked(l4);
            udp.set_checksum(adjusted_udp(udp.checksum(), old, new));
        }
        (Transport::Tcp(_), TransportChecksum::Partial) => {
            let mut tcp = TcpPacket::new_unchecked(l4);
            tcp.set_checksum(adjusted_partial(tcp.checksum(), old, new));
        }
        (Transport::Udp { .. }, TransportChecksum::Partial) => {
            let mut udp = UdpPacket::new_unchecked(l4);
            udp.set_checksum(adjusted_partial(udp.checksum(), old, new));
        }
        // ICMPv6's checksum covers the pseudo-header; ICMP's does not. It is never partial
        // (offload metadata is only accepted on TCP and UDP).
        (Transport::Icmp(_), _) if summary.is_ipv6() => {
            let mut icmp = Icmpv6Packet::new_unchecked(l4);
            icmp.set_checksum(adjusted(icmp.checksum(), old, new));
        }
        _ => {}
    }
}

/// Decrements the TTL (the header checksum follows) or the IPv6 hop limit; returns the new
/// value. The caller checks for expiry first.
pub fn decrement_ttl(bytes: &mut [u8]) -> u8 {
    if Ipv6Packet::new_checked(&*bytes).is_ok_and(|ip| ip.version() == 6) {
        let mut ip = Ipv6Packet::new_unchecked(bytes);
        let hop_limit = ip.hop_limit().saturating_sub(1);
        ip.set_hop_limit(hop_limit);
        return hop_limit;
    }
    let Ok(mut ip) = Ipv4Packet::new_checked(bytes) else {
        return 0;
    };
    // The TTL shares its 16-bit word of the header with the protocol.
    let protocol = u8::from(ip.next_header());
    let ttl = ip.hop_limit();
    let new_ttl = ttl.saturating_sub(1);
    ip.set_hop_limit(new_ttl);
    let checksum = adjusted(ip.checksum(), &[ttl, protocol], &[new_ttl, protocol]);
    ip.set_checksum(checksum);
    new_ttl
}

/// Which address of a header.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Source,
    Destination,
}

/// An address's bytes as the pseudo-header carries them: 4 for IPv4, 16 for IPv6.
struct AddressBytes {
    bytes: [u8; 16],
    len: usize,
}

impl AddressBytes {
    fn of(addr: IpAddress) -> AddressBytes {
        let mut bytes = [0u8; 16];
        let len = match addr {
            IpAddress::Ipv4(v4) => {
                bytes[..4].copy_from_slice(&v4.octets());
                4
            }
            IpAddress::Ipv6(v6) => {
                bytes = v6.octets();
                16
            }
        };
        AddressBytes { bytes, len }
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Sets one address of the IP header at the start of `header` (and adjusts an IPv4
/// header's checksum); returns the old address. An address of the other family than the
/// header's changes nothing (a caller bug) and returns `new`.
fn set_header_address(header: &mut [u8], end: End, new: IpAddress) -> IpAddress {
    match new {
        IpAddress::Ipv4(new) if header.first().is_some_and(|b| b >> 4 == 4) => {
            let mut ip = Ipv4Packet::new_unchecked(header);
            let old = match end {
                End::Source => ip.src_addr(),
                End::Destination => ip.dst_addr(),
            };
            match end {
                End::Source => ip.set_src_addr(new),
                End::Destination => ip.set_dst_addr(new),
            }
            ip.set_checksum(adjusted(ip.checksum(), &old.octets(), &new.octets()));
            old.into()
        }
        IpAddress::Ipv6(new) if header.first().is_some_and(|b| b >> 4 == 6) => {
            let mut ip = Ipv6Packet::new_unchecked(header);
            let old = match end {
                End::Source => ip.src_addr(),
                End::Destination => ip.dst_addr(),
            };
            match end {
                End::Source => ip.set_src_addr(new),
                End::Destination => ip.set_dst_addr(new),
            }
            old.into()
        }
        _ => new,
    }
}

fn set_address(
    bytes: &mut [u8],
    summary: &mut IpSummary,
    end: End,
    new: IpAddress,
    checksum: TransportChecksum,
) {
    let Some(packet) = packet_of(bytes, summary) else {
        return;
    };
    let old = AddressBytes::of(set_header_address(packet, end, new));
    let new_bytes = AddressBytes::of(new);
    adjust_pseudo_header(
        packet,
        summary,
        old.as_slice(),
        new_bytes.as_slice(),
        checksum,
    );
    match end {
        End::Source => summary.src = new,
        End::Destination => summary.dst = new,
    }
}

/// Rewrites the source address (IPv4 header and transport pseudo-header checksums).
pub fn set_src_addr(bytes: &mut [u8], summary: &mut IpSummary, new: IpAddress) {
    set_src_addr_of(bytes, summary, new, TransportChecksum::Complete);
}

/// Rewrites the destination address (IPv4 header and transport pseudo-header checksums).
pub fn set_dst_addr(bytes: &mut [u8], summary: &mut IpSummary, new: IpAddress) {
    set_dst_addr_of(bytes, summary, new, TransportChecksum::Complete);
}

/// [`set_src_addr`] of a packet whose transport checksum stands as `checksum` says.
pub fn set_src_addr_of(
    bytes: &mut [u8],
    summary: &mut IpSummary,
    new: IpAddress,
    checksum: TransportChecksum,
) {
    set_address(bytes, summary, End::Source, new, checksum);
}

/// [`set_dst_addr`] of a packet whose transport checksum stands as `checksum` says.
pub fn set_dst_addr_of(
    bytes: &mut [u8],
    summary: &mut IpSummary,
    new: IpAddress,
    checksum: TransportChecksum,
) {
    set_address(bytes, summary, End::Destination, new, checksum);
}

/// Sets one port of the TCP or UDP header at the start of `l4` and adjusts its checksum,
/// if the header reaches as far as the checksum (a quote may end before it) and the
/// checksum is complete (a partial one does not cover the ports yet); returns the old port.
fn set_transport_port(
    l4: &mut [u8],
    protocol: IpProtocol,
    end: End,
    new: u16,
    checksum: TransportChecksum,
) -> Option<u16> {
    let len = l4.len();
    let complete = checksum == TransportChecksum::Complete;
    let old = match protocol {
        IpProtocol::Tcp => {
            let mut tcp = TcpPacket::new_unchecked(l4);
            let old = match end {
                End::Source => tcp.src_port(),
                End::Destination => tcp.dst_port(),
            };
            match end {
                End::Source => tcp.set_src_port(new),
                End::Destination => tcp.set_dst_port(new),
            }
            if complete && len >= TCP_CHECKSUM_END {
                let checksum = adjusted(tcp.checksum(), &old.to_be_bytes(), &new.to_be_bytes());
                tcp.set_checksum(checksum);
            }
            old
        }
        IpProtocol::Udp => {
            let mut udp = UdpPacket::new_unchecked(l4);
            let old = match end {
                End::Source => udp.src_port(),
                End::Destination => udp.dst_port(),
            };
            match end {
                End::Source => udp.set_src_port(new),
                End::Destination => udp.set_dst_port(new),
            }
            if complete && len >= UDP_HEADER_LEN {
                let checksum = adjusted_udp(udp.checksum(), &old.to_be_bytes(), &new.to_be_bytes());
                udp.set_checksum(checksum);
            }
            old
        }
        _ => return None,
    };
    Some(old)
}

fn set_port(
    bytes: &mut [u8],
    summary: &mut IpSummary,
    end: End,
    new: u16,
    checksum: TransportChecksum,
) {
    let header_len = summary.header_len;
    let Some(l4) = packet_of(bytes, summary).and_then(|p| p.get_mut(header_len..)) else {
        return;
    };
    let port = match &mut summary.transport {
        Transport::Tcp(t) if end == End::Source => &mut t.src_port,
        Transport::Tcp(t) => &mut t.dst_port,
        Transport::Udp { src_port, .. } if end == End::Source => src_port,
        Transport::Udp { dst_port, .. } => dst_port,
        _ => return,
    };
    if set_transport_port(l4, summary.protocol, end, new, checksum).is_some() {
        *port = new;
    }
}

/// Rewrites the TCP/UDP source port (no effect for other protocols).
pub fn set_src_port(bytes: &mut [u8], summary: &mut IpSummary, new: u16) {
    set_src_port_of(bytes, summary, new, TransportChecksum::Complete);
}

/// Rewrites the TCP/UDP destination port (no effect for other protocols).
pub fn set_dst_port(bytes: &mut [u8], summary: &mut IpSummary, new: u16) {
    set_dst_port_of(bytes, summary, new, TransportChecksum::Complete);
}

/// [`set_src_port`] of a packet whose transport checksum stands as `checksum` says.
pub fn set_src_port_of(
    bytes: &mut [u8],
    summary: &mut IpSummary,
    new: u16,
    checksum: TransportChecksum,
) {
    set_port(bytes, summary, End::Source, new, checksum);
}

/// [`set_dst_port`] of a packet whose transport checksum stands as `checksum` says.
pub fn set_dst_port_of(
    bytes: &mut [u8],
    summary: &mut IpSummary,
    new: u16,
    checksum: TransportChecksum,
) {
    set_port(bytes, summary, End::Destination, new, checksum);
}

/// Sets the identifier of the ICMP (`protocol` Icmp) or ICMPv6 echo at the start of `l4`
/// and adjusts its checksum.
fn set_echo_ident(l4: &mut [u8], protocol: IpProtocol, new: u16) {
    if protocol == IpProtocol::Icmpv6 {
        let mut icmp = Icmpv6Packet::new_unchecked(l4);
        let old = icmp.echo_ident();
        icmp.set_echo_ident(new);
        let checksum = adjusted(icmp.checksum(), &old.to_be_bytes(), &new.to_be_bytes());
        icmp.set_checksum(checksum);
        return;
    }
    let mut icmp = Icmpv4Packet::new_unchecked(l4);
    let old = icmp.echo_ident();
    icmp.set_echo_ident(new);
    icmp.set_checksum(adjusted(
        icmp.checksum(),
        &old.to_be_bytes(),
        &new.to_be_bytes(),
    ));
}

/// Rewrites the identifier of an ICMP echo request/reply (no effect otherwise).
pub fn set_icmp_echo_ident(bytes: &mut [u8], summary: &mut IpSummary, new: u16) {
    let header_len = summary.header_len;
    let Transport::Icmp(IcmpSummary::Echo { ident, .. }) = &mut summary.transport else {
        return;
    };
    let Some(l4) = bytes
        .get_mut(..summary.total_len)
        .and_then(|p| p.get_mut(header_len..))
    else {
        return;
    };
    set_echo_ident(l4, summary.protocol, new);
    *ident = new;
}

fn quoted_of(summary: &IpSummary) -> Option<QuotedPacket> {
    match summary.transport {
        Transport::Icmp(IcmpSummary::Error { quoted, .. }) => Some(quoted),
        _ => None,
    }
}

/// Applies `edit` to the quote of the ICMP error in `bytes` (the quoted packet, as far as
/// the error carries it) and adjusts the error's own ICMP checksum, which covers every
/// quoted byte: the edited fields and whatever checksums inside the quote they moved.
fn edit_quote(bytes: &mut [u8], summary: &IpSummary, edit: impl FnOnce(&mut [u8], &QuotedPacket)) {
    let Some(quoted) = quoted_of(summary) else {
        return;
    };
    let Some(packet) = packet_of(bytes, summary) else {
        return;
    };
    let Some(quote_len) = packet.len().checked_sub(quoted.offset) else {
        return;
    };
    // Everything an edit may touch: the quoted IP header and the transport header up to its
    // checksum. An even length, starting at an even offset of the ICMP message, so that
    // the adjustment works on the same 16-bit words as the checksum.
    let touched = quote_len.min(quoted.header_len + TCP_HEADER_LEN) & !1;
    let mut before = [0u8; MAX_QUOTED_HEADER_LEN + TCP_HEADER_LEN];
    let Some(touched_before) = before.get_mut(..touched) else {
        return;
    };
    let region = quoted.offset..quoted.offset + touched;
    touched_before.copy_from_slice(&packet[region.clone()]);
    edit(&mut packet[quoted.offset..], &quoted);
    let mut after = [0u8; MAX_QUOTED_HEADER_LEN + TCP_HEADER_LEN];
    after[..touched].copy_from_slice(&packet[region]);
    // ICMP and ICMPv6 keep their checksum in the same place.
    let mut icmp = Icmpv4Packet::new_unchecked(&mut packet[summary.header_len..]);
    icmp.set_checksum(adjusted(
        icmp.checksum(),
        &before[..touched],
        &after[..touched],
    ));
}

fn set_quoted_address(bytes: &mut [u8], summary: &mut IpSummary, end: End, new: IpAddress) {
    edit_quote(bytes, summary, |quote, quoted| {
        let old = AddressBytes::of(set_header_address(quote, end, new));
        let new = AddressBytes::of(new);
        let (old, new) = (old.as_slice(), new.as_slice());
        // The quoted transport checksum covers the quoted addresses (pseudo-header), when
        // the quote reaches it.
        let l4 = &mut quote[quoted.header_len..];
        match quoted.protocol {
            IpProtocol::Udp if l4.len() >= UDP_HEADER_LEN => {
                let mut udp = UdpPacket::new_unchecked(l4);
                udp.set_checksum(adjusted_udp(udp.checksum(), old, new));
            }
            IpProtocol::Tcp if l4.len() >= TCP_CHECKSUM_END => {
                let mut tcp = TcpPacket::new_unchecked(l4);
                tcp.set_checksum(adjusted(tcp.checksum(), old, new));
            }
            IpProtocol::Icmpv6 if l4.len() >= ICMP_ECHO_HEADER_LEN => {
                let mut icmp = Icmpv6Packet::new_unchecked(l4);
                icmp.set_checksum(adjusted(icmp.checksum(), old, new));
            }
            _ => {}
        }
    });
    if let Transport::Icmp(IcmpSummary::Error { quoted, .. }) = &mut summary.transport {
        match end {
            End::Source => quoted.src = new,
            End::Destination => quoted.dst = new,
        }
    }
}

/// Rewrites the quoted packet's source address inside an ICMP error.
pub fn set_quoted_src_addr(bytes: &mut [u8], summary: &mut IpSummary, new: IpAddress) {
    set_quoted_address(bytes, summary, End::Source, new);
}

/// Rewrites the quoted packet's destination address inside an ICMP error.
pub fn set_quoted_dst_addr(bytes: &mut [u8], summary: &mut IpSummary, new: IpAddress) {
    set_quoted_address(bytes, summary, End::Destination, new);
}

fn set_quoted_port(bytes: &mut [u8], summary: &mut IpSummary, end: End, new: u16) {
    let Some(quoted) = quoted_of(summary) else {
        return;
    };
    // The parser found the ports (or the echo identifier) only where the quote holds them.
    if quoted.src_port.is_none() {
        return;
    }
    edit_quote(bytes, summary, |quote, quoted| {
        let l4 = &mut quote[quoted.header_len..];
        match quoted.protocol {
            protocol @ (IpProtocol::Icmp | IpProtocol::Icmpv6)
                if l4.len() >= ICMP_ECHO_HEADER_LEN =>
            {
                set_echo_ident(l4, protocol, new)
            }
            protocol => {
                set_transport_port(l4, protocol, end, new, TransportChecksum::Complete);
            }
        }
    });
    if let Transport::Icmp(IcmpSummary::Error { quoted, .. }) = &mut summary.transport {
        if quoted.protocol == IpProtocol::Icmp {
            // An echo's identifier is both "ports".
            quoted.src_port = Some(new);
            quoted.dst_port = Some(new);
        } else if end == End::Source {
            quoted.src_port = Some(new);
        } else {
            quoted.dst_port = Some(new);
        }
    }
}

/// Rewrites the quoted packet's source port (or echo identifier) inside an ICMP error.
pub fn set_quoted_src_port(bytes: &mut [u8], summary: &mut IpSummary, new: u16) {
    set_quoted_port(bytes, summary, End::Source, new);
}

/// Rewrites the quoted packet's destination port (or echo identifier) inside an ICMP error.
pub fn set_quoted_dst_port(bytes: &mut [u8], summary: &mut IpSummary, new: u16) {
    set_quoted_port(bytes, summary, End::Destination, new);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::IpSummary;
    use crate::testutil::packets::{self, checksums_valid};
    use smoltcp::wire::Ipv4Address;

    fn parsed(bytes: &[u8]) -> IpSummary {
        IpSummary::parse(bytes).unwrap()
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
            ([10, 137, 1, 10], 40000),
            ([1, 1, 1, 1], 443),
            (7, 9, 0x18),
            b"hello",
        );
        let mut s = parsed(&bytes);
        set_src_addr(&mut bytes, &mut s, Ipv4Address::new(10, 0, 2, 15).into());
        set_src_port(&mut bytes, &mut s, 61000);
        let again = parsed(&bytes);
        assert_eq!(again.src, Ipv4Address::new(10, 0, 2, 15).into());
        assert_eq!(again.ports(), (61000, 443));
        assert_eq!(again, s);
        assert!(checksums_valid(&bytes));
    }

    #[test]
    fn udp_destination_nat_keeps_checksum_valid() {
        let mut bytes = packets::udp([203, 0, 113, 9], 5000, [10, 0, 2, 15], 8022, b"x");
        let mut s = parsed(&bytes);
        set_dst_addr(&mut bytes, &mut s, Ipv4Address::new(10, 137, 1, 10).into());
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
        set_src_addr(&mut bytes, &mut s, Ipv4Address::new(10, 0, 2, 15).into());
        assert_eq!(&bytes[l4 + 6..l4 + 8], &[0, 0]);
        assert!(checksums_valid(&bytes));
    }

    #[test]
    fn nat_of_a_partial_checksum_leaves_one_that_completes_valid() {
        use crate::testutil::offload::{completed, partial, super_packet};
        let datagram = packets::udp([10, 137, 1, 10], 5353, [8, 8, 8, 8], 53, &[3; 999]);
        for original in [super_packet(20_000, 5, 0x18), partial(&datagram)] {
            let mut bytes = original.clone();
            let mut s = parsed(&bytes);
            let partial = TransportChecksum::Partial;
            let (src, dst) = (
                Ipv4Address::new(10, 0, 2, 15),
                Ipv4Address::new(10, 0, 2, 3),
            );
            set_src_addr_of(&mut bytes, &mut s, src.into(), partial);
            set_src_port_of(&mut bytes, &mut s, 61000, partial);
            set_dst_addr_of(&mut bytes, &mut s, dst.into(), partial);
            set_dst_port_of(&mut bytes, &mut s, 5353, partial);
            assert!(!checksums_valid(&bytes), "still partial");
            let done = completed(&bytes);
            assert!(checksums_valid(&done), "completed after NAT");
            let again = parsed(&done);
            assert_eq!(again.src, Ipv4Address::new(10, 0, 2, 15).into());
            assert_eq!(again.ports(), (61000, 5353));
        }
    }

    #[test]
    fn icmp_echo_ident_rewrite_keeps_checksum_valid() {
        let mut bytes =
            packets::icmp_echo([10, 137, 1, 10], [1, 1, 1, 1], true, 0x1234, 1, b"ping");
        let mut s = parsed(&bytes);
        set_src_addr(&mut bytes, &mut s, Ipv4Address::new(10, 0, 2, 15).into());
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
        set_src_addr(&mut bytes, &mut s, Ipv4Address::new(10, 0, 2, 15).into());
        assert_eq!(&bytes[20..], &payload_before[..]);
        assert!(IpSummary::parse(&bytes).is_ok());
    }

    #[test]
    fn icmp_error_quote_is_translated_with_every_checksum_valid() {
        // The uplink router reports "port unreachable" for a NATed UDP flow: the quote
        // carries the translated source, which must be turned back into the client's.
        let quoted = packets::udp([10, 0, 2, 15], 61000, [8, 8, 8, 8], 53, b"q");
        let mut bytes = packets::icmp_error([8, 8, 8, 8], [10, 0, 2, 15], 3, 3, &quoted);
        let mut s = parsed(&bytes);
        set_dst_addr(&mut bytes, &mut s, Ipv4Address::new(10, 137, 1, 10).into());
        set_quoted_src_addr(&mut bytes, &mut s, Ipv4Address::new(10, 137, 1, 10).into());
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
