//! ICMPv6 errors and IPv6 TCP resets: the IPv6 half of [`crate::icmp_error`], which
//! dispatches here for an IPv6 [`Offending`] packet. The same rules hold (never about an
//! error, a multicast destination, a later fragment or a source that is no host's; one rate
//! limit for both families); what differs is RFC 4443:
//!
//! - types and codes: time exceeded is type 3, destination unreachable type 1 (no route 0,
//!   administratively prohibited 1, address unreachable 3, port unreachable 4), and the
//!   "fragmentation needed" of IPv4 is **packet too big** (type 2) carrying the egress MTU
//!   in 32 bits: a router never fragments IPv6;
//! - the quote is as much of the offending packet as keeps the error within the minimum
//!   IPv6 MTU (1,280 bytes, RFC 4443 §2.4 (c));
//! - the ICMPv6 checksum covers a pseudo-header: it is computed with the addresses;
//! - the source is the appliance's address on the NIC the packet came in on
//!   ([`Offending::source6`]): a link-local one when the offending source is link-local.

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv6DstUnreachable, Icmpv6Message, Icmpv6Packet, Icmpv6TimeExceeded, IpAddress, IpProtocol,
    Ipv6Address, Ipv6Packet, Ipv6Repr, TcpPacket, TcpRepr, IPV6_HEADER_LEN, IPV6_MIN_MTU,
};

use crate::antispoof6::is_martian_source;
use crate::icmp_error::{IcmpError, NoReply, Offending, REPLY_TTL};
use crate::packet::{IcmpSummary, Transport};

/// ICMPv6 error header: type, code, checksum, 4 bytes of type-specific data.
const ICMPV6_ERROR_HEADER_LEN: usize = 8;

/// The ICMPv6 type and code of `error`.
pub fn type_code(error: IcmpError) -> (u8, u8) {
    let unreachable =
        |reason: Icmpv6DstUnreachable| (Icmpv6Message::DstUnreachable.into(), u8::from(reason));
    match error {
        IcmpError::TimeExceeded => (
            Icmpv6Message::TimeExceeded.into(),
            Icmpv6TimeExceeded::HopLimitExceeded.into(),
        ),
        IcmpError::NetUnreachable => unreachable(Icmpv6DstUnreachable::NoRoute),
        IcmpError::HostUnreachable => unreachable(Icmpv6DstUnreachable::AddrUnreachable),
        IcmpError::PortUnreachable => unreachable(Icmpv6DstUnreachable::PortUnreachable),
        IcmpError::AdminProhibited => unreachable(Icmpv6DstUnreachable::AdminProhibit),
        IcmpError::FragmentationNeeded { .. } => (Icmpv6Message::PktTooBig.into(), 0),
    }
}

/// The IPv6 addresses of `offending`.
fn addresses(offending: &Offending) -> Result<(Ipv6Address, Ipv6Address), NoReply> {
    match (offending.summary.src, offending.summary.dst) {
        (IpAddress::Ipv6(src), IpAddress::Ipv6(dst)) => Ok((src, dst)),
        _ => Err(NoReply::InvalidSource),
    }
}

/// The checks common to every IPv6 reply.
pub(crate) fn check_repliable(offending: &Offending) -> Result<(), NoReply> {
    let (src, dst) = addresses(offending)?;
    if offending.link_broadcast || dst.is_multicast() {
        return Err(NoReply::BroadcastDestination);
    }
    if is_martian_source(src) {
        return Err(NoReply::InvalidSource);
    }
    if offending.summary.fragment_offset != 0 {
        return Err(NoReply::NonFirstFragment);
    }
    let is_error = match offending.summary.transport {
        Transport::Icmp(IcmpSummary::Error { .. }) => true,
        Transport::Icmp(IcmpSummary::Other { icmp_type, .. }) => icmp_type < 128,
        _ => false,
    };
    if is_error {
        return Err(NoReply::AboutIcmpError);
    }
    Ok(())
}

/// The ICMPv6 `error` about the IPv6 packet `offending`.
pub fn build_icmpv6_error(error: IcmpError, offending: &Offending) -> Result<Vec<u8>, NoReply> {
    check_repliable(offending)?;
    let (src, _) = addresses(offending)?;
    let source = offending.source6.ok_or(NoReply::NoSourceAddress)?;
    let packet = &offending.bytes[..offending.summary.total_len.min(offending.bytes.len())];
    let room = IPV6_MIN_MTU - IPV6_HEADER_LEN - ICMPV6_ERROR_HEADER_LEN;
    let quote = &packet[..packet.len().min(room)];
    let icmp_len = ICMPV6_ERROR_HEADER_LEN + quote.len();
    let ip = Ipv6Repr {
        src_addr: source,
        dst_addr: src,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp_len,
        hop_limit: REPLY_TTL,
    };
    let mut reply = vec![0u8; ip.buffer_len() + icmp_len];
    let mut ip_view = Ipv6Packet::new_unchecked(&mut reply[..]);
    ip.emit(&mut ip_view);
    let mut icmp = Icmpv6Packet::new_unchecked(ip_view.payload_mut());
    let (icmp_type, code) = type_code(error);
    icmp.set_msg_type(icmp_type.into());
    icmp.set_msg_code(code);
    if let IcmpError::FragmentationNeeded { mtu } = error {
        icmp.set_pkt_too_big_mtu(mtu.into());
    }
    icmp.payload_mut().copy_from_slice(quote);
    icmp.fill_checksum(&source, &src);
    Ok(reply)
}

/// The IPv6 packet carrying the reset `tcp` from the offending segment's destination back
/// to its source.
pub fn build_tcp_reset_ipv6(offending: &Offending, tcp: &TcpRepr) -> Result<Vec<u8>, NoReply> {
    let (dst, src) = addresses(offending)?;
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: REPLY_TTL,
    };
    let mut reply = vec![0u8; ip.buffer_len() + tcp.buffer_len()];
    let mut ip_view = Ipv6Packet::new_unchecked(&mut reply[..]);
    ip.emit(&mut ip_view);
    let mut tcp_view = TcpPacket::new_unchecked(ip_view.payload_mut());
    tcp.emit(
        &mut tcp_view,
        &IpAddress::Ipv6(src),
        &IpAddress::Ipv6(dst),
        &ChecksumCapabilities::default(),
    );
    Ok(reply)
}
