//! Translating a packet to the other IP family, for a flow whose state joins an IPv6 side
//! to an IPv4 one: a DNS query sent to the appliance's IPv6 address when the upstream
//! resolvers are IPv4 (or the reverse), and the resolver's replies.
//!
//! This is RFC 7915's header translation, stateful as in RFC 6146: the addresses and ports
//! come from the state's [`Translation`], never from an embedded prefix. The IP header is
//! rebuilt (20 bytes for IPv4 — don't-fragment set, as for every atomic datagram — or 40
//! for IPv6; no options, no extension headers), its TTL decremented and its traffic class
//! kept; the transport header and payload are copied, the ports set, and the TCP or UDP
//! checksum updated for the new pseudo-header incrementally (RFC 1624), so a damaged
//! checksum stays damaged. An IPv4 UDP datagram without a checksum gets one: IPv6 requires
//! it. A TCP SYN's MSS is lowered to `mss_ceiling`, so that no segment outgrows an MTU
//! once its header has grown by 20 bytes.
//!
//! ICMP errors about such a flow cross too ([`error_across_families`]), their types
//! mapped as RFC 7915 maps them and their quote translated like the packet it was.
//! Fragments do not cross (the forward path drops them): the redirect's flows are DNS
//! messages, whose senders keep them unfragmented.

use alloc::vec::Vec;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv4Packet, Icmpv6Packet, IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr,
    TcpPacket, UdpPacket,
};

use super::Translation;
use crate::checksum;
use crate::packet::{IcmpSummary, IpSummary, Transport};
use crate::state::FlowTuple;

/// IPv4's header without options.
const IPV4_HEADER_LEN: usize = 20;
/// IPv6's fixed header.
const IPV6_HEADER_LEN: usize = 40;
/// The smallest MTU IPv6 links have (RFC 8200), which a packet too big never reports less
/// than.
const IPV6_MIN_MTU: u16 = 1280;
/// The smallest MTU IPv4 links have (RFC 791).
const IPV4_MIN_MTU: u16 = 68;
/// The longest ICMP error an IPv4 host must accept (RFC 1812 §4.3.2.3): a translated error
/// quotes no more than fits in it.
const IPV4_ERROR_MAX: usize = 576;
/// The longest ICMPv6 error (RFC 4443 §2.4 (c)): the minimum MTU.
const IPV6_ERROR_MAX: usize = 1280;
/// The TCP option kind of the maximum segment size, and its length.
const MSS_OPTION: (u8, u8) = (2, 4);

/// Why a packet cannot cross to the other family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Untranslatable {
    /// Not TCP or UDP (or, for [`error_across_families`], an ICMP error with no
    /// counterpart in the other family, or a quote that is not TCP or UDP).
    Protocol,
    /// A fragment.
    Fragment,
    /// Its headers do not hold together, or the ICMP checksum is wrong.
    Malformed,
}

impl Untranslatable {
    /// A short name for drop lines.
    pub fn as_str(&self) -> &'static str {
        match self {
            Untranslatable::Protocol => "untranslatable-across-families",
            Untranslatable::Fragment => "fragment-across-families",
            Untranslatable::Malformed => "malformed-across-families",
        }
    }
}

/// Whether `translation` changes the packet's family.
pub fn changes_family(translation: &Translation) -> bool {
    translation.before.dst.version() != translation.after.dst.version()
}

/// The length of the IP header a packet of `addr`'s family gets here.
fn header_len_for(addr: IpAddress) -> usize {
    match addr {
        IpAddress::Ipv4(_) => IPV4_HEADER_LEN,
        IpAddress::Ipv6(_) => IPV6_HEADER_LEN,
    }
}

/// The largest TCP MSS a segment may announce when its flow crosses families between a
/// link of `mtu_v4` (IPv4 side) and one of `mtu_v6` (IPv6 side): a segment sized by it
/// fits both once translated.
pub fn mss_ceiling(mtu_v4: u16, mtu_v6: u16) -> u16 {
    let tcp = 20;
    (mtu_v4.saturating_sub(IPV4_HEADER_LEN as u16 + tcp))
        .min(mtu_v6.saturating_sub(IPV6_HEADER_LEN as u16 + tcp))
}

/// The traffic class (IPv6) or type of service (IPv4) of `packet`.
fn traffic_class(packet: &[u8], summary: &IpSummary) -> u8 {
    match summary.src {
        IpAddress::Ipv4(_) => packet.get(1).copied().unwrap_or(0),
        IpAddress::Ipv6(_) => Ipv6Packet::new_unchecked(packet).traffic_class(),
    }
}

/// An IP header for `src` → `dst` (one family) with `protocol`, `payload_len` bytes of
/// payload, `hop_limit` and `class`, followed by room for the payload.
fn header(
    src: IpAddress,
    dst: IpAddress,
    protocol: IpProtocol,
    payload_len: usize,
    hop_limit: u8,
    class: u8,
) -> Result<Vec<u8>, Untranslatable> {
    let mut out = alloc::vec![0u8; header_len_for(dst) + payload_len];
    match (src, dst) {
        (IpAddress::Ipv4(src_addr), IpAddress::Ipv4(dst_addr)) => {
            let mut ip = Ipv4Packet::new_unchecked(&mut out[..]);
            Ipv4Repr {
                src_addr,
                dst_addr,
                next_header: protocol,
                payload_len,
                hop_limit,
            }
            .emit(&mut ip, &ChecksumCapabilities::ignored());
            ip.set_dscp(class >> 2);
            ip.set_ecn(class & 3);
            ip.fill_checksum();
        }
        (IpAddress::Ipv6(src_addr), IpAddress::Ipv6(dst_addr)) => {
            let mut ip = Ipv6Packet::new_unchecked(&mut out[..]);
            Ipv6Repr {
                src_addr,
                dst_addr,
                next_header: protocol,
                payload_len,
                hop_limit,
            }
            .emit(&mut ip);
            ip.set_traffic_class(class);
        }
        _ => return Err(Untranslatable::Malformed),
    }
    Ok(out)
}

/// The pseudo-header's addresses `src`, `dst` as 32 bytes (IPv4's padded with zeros, which
/// add nothing to a one's-complement sum): what changes in the pseudo-header when a packet
/// changes family (its length and protocol words are the same in both).
fn pseudo_addresses(src: IpAddress, dst: IpAddress) -> [u8; 32] {
    let mut words = [0u8; 32];
    let mut put = |at: usize, addr: IpAddress| match addr {
        IpAddress::Ipv4(a) => words[at..at + 4].copy_from_slice(&a.octets()),
        IpAddress::Ipv6(a) => words[at..at + 16].copy_from_slice(&a.octets()),
    };
    put(0, src);
    put(16, dst);
    words
}

/// Whether the packet `summary` describes can be rebuilt in the other family: a whole
/// (unfragmented) TCP or UDP packet. Checked before a crossing flow's state opens, so that
/// a first packet that cannot cross leaves no state behind for the ones after it.
pub fn crossable(summary: &IpSummary) -> Result<(), Untranslatable> {
    if summary.is_fragment() {
        return Err(Untranslatable::Fragment);
    }
    if !matches!(summary.transport, Transport::Tcp(_) | Transport::Udp { .. }) {
        return Err(Untranslatable::Protocol);
    }
    Ok(())
}

/// `packet` (summarised by `summary`: plain, no offload pending, its TTL checked), a TCP or
/// UDP packet of a flow whose translation crosses families, as it leaves: in the family
/// of `after`, from and to `after`'s addresses and ports, with a TCP SYN's MSS no more
/// than `mss_ceiling`.
pub fn across_families(
    packet: &[u8],
    summary: &IpSummary,
    after: &FlowTuple,
    mss_ceiling: u16,
) -> Result<Vec<u8>, Untranslatable> {
    crossable(summary)?;
    let transport = packet
        .get(summary.header_len..summary.total_len)
        .ok_or(Untranslatable::Malformed)?;
    let mut out = header(
        after.src,
        after.dst,
        summary.protocol,
        transport.len(),
        summary.ttl.saturating_sub(1),
        traffic_class(packet, summary),
    )?;
    let start = header_len_for(after.dst);
    out[start..].copy_from_slice(transport);
    let old_addresses = pseudo_addresses(summary.src, summary.dst);
    let new_addresses = pseudo_addresses(after.src, after.dst);
    let (src, dst) = (after.src, after.dst);
    if let Transport::Udp { src_port, dst_port } = summary.transport {
        let mut udp =
            UdpPacket::new_checked(&mut out[start..]).map_err(|_| Untranslatable::Malformed)?;
        udp.set_src_port(after.src_port);
        udp.set_dst_port(after.dst_port);
        if udp.checksum() == 0 {
            // IPv4 without a checksum: IPv6 requires one (RFC 7915 §4.5).
            udp.fill_checksum(&src, &dst);
        } else {
            let mut sum = checksum::update_bytes(udp.checksum(), &old_addresses, &new_addresses);
            sum = checksum::update_u16(sum, src_port, after.src_port);
            sum = checksum::update_u16(sum, dst_port, after.dst_port);
            // Zero means "no checksum" to UDP: a computed zero is sent as all ones.
            udp.set_checksum(if sum == 0 { 0xffff } else { sum });
        }
    } else {
        let mut tcp =
            TcpPacket::new_checked(&mut out[start..]).map_err(|_| Untranslatable::Malformed)?;
        let (src_port, dst_port) = summary.ports();
        let mut sum = checksum::update_bytes(tcp.checksum(), &old_addresses, &new_addresses);
        sum = checksum::update_u16(sum, src_port, after.src_port);
        sum = checksum::update_u16(sum, dst_port, after.dst_port);
        tcp.set_src_port(after.src_port);
        tcp.set_dst_port(after.dst_port);
        if tcp.syn() {
            sum = clamp_mss(tcp.options_mut(), mss_ceiling, sum);
        }
        tcp.set_checksum(sum);
    }
    Ok(out)
}

/// Lowers the MSS option in a SYN's `options` to `ceiling`, returning the TCP checksum
/// `sum` updated for it.
fn clamp_mss(options: &mut [u8], ceiling: u16, sum: u16) -> u16 {
    let mut at = 0;
    while at < options.len() {
        match options[at] {
            0 => break,
            1 => at += 1,
            kind => {
                let Some(&len) = options.get(at + 1) else {
                    break;
                };
                if len < 2 || at + usize::from(len) > options.len() {
                    break;
                }
                if (kind, len) == MSS_OPTION {
                    let mss = u16::from_be_bytes([options[at + 2], options[at + 3]]);
                    if mss <= ceiling {
                        return sum;
                    }
                    // The options start at an even offset of the TCP header and are a
                    // whole number of 32-bit words: update over the aligned 4 bytes that
                    // hold the value.
                    let aligned = (at + 2) & !1;
                    let old: [u8; 4] = options[aligned..aligned + 4].try_into().unwrap_or_default();
                    options[at + 2..at + 4].copy_from_slice(&ceiling.to_be_bytes());
                    let new: [u8; 4] = options[aligned..aligned + 4].try_into().unwrap_or_default();
                    return checksum::update_bytes(sum, &old, &new);
                }
                at += usize::from(len);
            }
        }
    }
    sum
}

/// An ICMP error's type, code and the 32 bits after its checksum (an MTU or pointer),
/// in the other family: RFC 7915 §4.2 (IPv4 → IPv6) and §5.2 (IPv6 → IPv4); `None` for
/// the errors that have no counterpart (parameter problems, redirects, ...).
fn error_type_across(to_ipv6: bool, icmp_type: u8, code: u8, rest: u32) -> Option<(u8, u8, u32)> {
    if to_ipv6 {
        let unreachable = |code| Some((1, code, 0));
        match (icmp_type, code) {
            // Net, host, source route failed, unknown and isolated networks and hosts,
            // TOS unreachable: no route.
            (3, 0 | 1 | 5 | 6 | 7 | 8 | 11 | 12) => unreachable(0),
            // Communication administratively prohibited.
            (3, 9 | 10 | 13) => unreachable(1),
            (3, 3) => unreachable(4),
            (3, 4) => {
                let mtu = (rest & 0xffff) as u16;
                let mtu = mtu.saturating_add(20).max(IPV6_MIN_MTU);
                Some((2, 0, u32::from(mtu)))
            }
            (11, 0 | 1) => Some((3, code, 0)),
            _ => None,
        }
    } else {
        let unreachable = |code| Some((3, code, 0));
        match (icmp_type, code) {
            (1, 0 | 2 | 3) => unreachable(1),
            (1, 1) => unreachable(10),
            (1, 4) => unreachable(3),
            (2, 0) => {
                let mtu = rest.min(u32::from(u16::MAX)) as u16;
                let mtu = mtu.saturating_sub(20).max(IPV4_MIN_MTU);
                Some((3, 4, u32::from(mtu)))
            }
            (3, 0 | 1) => Some((11, code, 0)),
            _ => None,
        }
    }
}

/// `packet` (summarised by `summary`), an ICMP error related to a flow whose
/// `translation` crosses families, as it leaves: an error of the other family from
/// `translation.after.src` to `translation.after.dst` — a router on the far side has no
/// address on this one, so the error comes from the address the flow's packets came from
/// — whose quote is the packet as its receiver sent it (the reverse of `after`), as much
/// of it as fits the family's largest error.
pub fn error_across_families(
    packet: &[u8],
    summary: &IpSummary,
    translation: &Translation,
) -> Result<Vec<u8>, Untranslatable> {
    let Transport::Icmp(IcmpSummary::Error {
        icmp_type,
        code,
        quoted,
    }) = summary.transport
    else {
        return Err(Untranslatable::Protocol);
    };
    if summary.is_fragment() {
        return Err(Untranslatable::Fragment);
    }
    let message = packet
        .get(summary.header_len..summary.total_len)
        .ok_or(Untranslatable::Malformed)?;
    let checksum_valid = match (summary.src, summary.dst) {
        (IpAddress::Ipv6(src), IpAddress::Ipv6(dst)) => {
            Icmpv6Packet::new_checked(message).is_ok_and(|m| m.verify_checksum(&src, &dst))
        }
        _ => Icmpv4Packet::new_checked(message).is_ok_and(|m| m.verify_checksum()),
    };
    if !checksum_valid || message.len() < 8 {
        return Err(Untranslatable::Malformed);
    }
    if !matches!(quoted.protocol, IpProtocol::Tcp | IpProtocol::Udp) {
        return Err(Untranslatable::Protocol);
    }
    let after = translation.after;
    let to_ipv6 = matches!(after.dst, IpAddress::Ipv6(_));
    let rest = u32::from_be_bytes([message[4], message[5], message[6], message[7]]);
    let (new_type, new_code, new_rest) =
        error_type_across(to_ipv6, icmp_type, code, rest).ok_or(Untranslatable::Protocol)?;
    // The quoted packet, as its sender sent it: its header rebuilt, its transport bytes
    // (at least the ports) kept, the ports set.
    let target = after.reversed();
    let quoted_transport = packet
        .get(quoted.offset + quoted.header_len..summary.total_len)
        .ok_or(Untranslatable::Malformed)?;
    let largest = if to_ipv6 {
        IPV6_ERROR_MAX
    } else {
        IPV4_ERROR_MAX
    };
    let room = largest - header_len_for(after.dst) - 8 - header_len_for(target.dst);
    let quoted_transport = &quoted_transport[..quoted_transport.len().min(room)];
    // The quoted TTL (byte 8 of an IPv4 header) or hop limit (byte 7 of IPv6's): only
    // informative, kept.
    let ttl_at = if to_ipv6 { 8 } else { 7 };
    let quoted_ttl = packet.get(quoted.offset + ttl_at).copied().unwrap_or(64);
    let mut quote = header(
        target.src,
        target.dst,
        quoted.protocol,
        quoted_transport.len(),
        quoted_ttl,
        0,
    )?;
    if !to_ipv6 {
        // An IPv4 quote's total length is what its sender sent, however much is quoted.
        let payload_len = usize::from(u16::from_be_bytes([
            packet.get(quoted.offset + 4).copied().unwrap_or(0),
            packet.get(quoted.offset + 5).copied().unwrap_or(0),
        ]));
        // Without the extension headers, which the rebuilt header drops.
        let sent_len = IPV4_HEADER_LEN
            + payload_len.saturating_sub(quoted.header_len.saturating_sub(IPV6_HEADER_LEN));
        let mut ip = Ipv4Packet::new_unchecked(&mut quote[..]);
        ip.set_total_len(sent_len.min(usize::from(u16::MAX)) as u16);
        ip.fill_checksum();
    } else {
        let sent_len = usize::from(u16::from_be_bytes([
            packet.get(quoted.offset + 2).copied().unwrap_or(0),
            packet.get(quoted.offset + 3).copied().unwrap_or(0),
        ]));
        let payload_len = sent_len.saturating_sub(quoted.header_len);
        Ipv6Packet::new_unchecked(&mut quote[..]).set_payload_len(payload_len as u16);
    }
    let quote_start = header_len_for(target.dst);
    quote[quote_start..].copy_from_slice(quoted_transport);
    if quoted_transport.len() >= 4 {
        quote[quote_start..quote_start + 2].copy_from_slice(&target.src_port.to_be_bytes());
        quote[quote_start + 2..quote_start + 4].copy_from_slice(&target.dst_port.to_be_bytes());
    }
    let protocol = if to_ipv6 {
        IpProtocol::Icmpv6
    } else {
        IpProtocol::Icmp
    };
    let mut out = header(
        after.src,
        after.dst,
        protocol,
        8 + quote.len(),
        summary.ttl.saturating_sub(1),
        0,
    )?;
    let start = header_len_for(after.dst);
    out[start] = new_type;
    out[start + 1] = new_code;
    out[start + 4..start + 8].copy_from_slice(&new_rest.to_be_bytes());
    out[start + 8..].copy_from_slice(&quote);
    match (after.src, after.dst) {
        (IpAddress::Ipv6(src), IpAddress::Ipv6(dst)) => {
            Icmpv6Packet::new_unchecked(&mut out[start..]).fill_checksum(&src, &dst)
        }
        _ => Icmpv4Packet::new_unchecked(&mut out[start..]).fill_checksum(),
    }
    Ok(out)
}
