//! Telling a sender why its packet went no further: ICMP errors, and the TCP reset of
//! `reject`.
//!
//! [`ErrorReplies`] builds the reply to an [`Offending`] packet — the packet as it arrived,
//! before any rewrite — as a complete IPv4 packet addressed to its sender, to be routed like
//! any packet the appliance originates:
//!
//! - [`ErrorReplies::icmp_error`]: time exceeded, destination unreachable (network, host,
//!   port, administratively prohibited — code 13, what `reject` sends for non-TCP) and
//!   fragmentation needed with the next-hop MTU (RFC 1191). The source is the appliance's
//!   address on the NIC the packet came in on. The quote is the offending IP header and as
//!   much of its payload as keeps the error within 576 bytes (RFC 1812 4.3.2.3), always at
//!   least the 8 bytes RFC 792 requires when the packet has them.
//! - [`build_tcp_reset`]: the reset RFC 793 sends for a segment that reaches no
//!   connection, from the segment's destination: `<SEQ=SEG.ACK><CTL=RST>` if it carried
//!   an ACK, else `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`.
//! - [`ErrorReplies::reject`]: what the `reject` action sends — a reset for TCP,
//!   administratively prohibited otherwise.
//!
//! No reply is ever sent (RFC 1812 4.3.2.7, RFC 1122 4.2.3.10) about an ICMP error, a
//! TCP reset, a packet to a broadcast or multicast address (or sent as a link-layer
//! broadcast), a non-first fragment, or a packet whose source is not a single host
//! (martian, broadcast). The reason for not replying is returned, for counters.
//!
//! # Budgets
//! Replies are rate-limited so that a flood of offending packets never turns into a flood
//! of replies, and so that one sender's noise never costs another its replies: each kind
//! of reply has a [`SharedBudget`] of its own ([`REPLY_SHARES`]: per sender, per NIC's
//! remote side, a total of [`REPLIES_PER_SECOND`] in bursts of [`REPLY_BURST`], and a
//! reserve for senders that were quiet). The kinds are fragmentation needed (path MTU
//! discovery: never starved by traceroute's time-exceeded noise), the other errors (time
//! exceeded, unreachable), and what `reject` sends (resets, administratively prohibited).

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::time::Instant;
use smoltcp::wire::{
    Icmpv4DstUnreachable as DstUnreachable, Icmpv4Message, Icmpv4Packet,
    Icmpv4TimeExceeded as TimeExceeded, IpAddress, IpProtocol, IpVersion, Ipv4Address, Ipv4Cidr,
    Ipv4Packet, Ipv4Repr, Ipv6Address, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
    IPV4_HEADER_LEN,
};

use crate::budget::{Rate, SharedBudget, Shares};
use crate::packet::{
    is_special_purpose, tcp_flags, IcmpSummary, IpSummary, Transport, SOURCE_QUENCH,
};
use crate::share::Source;

/// Largest ICMP error, IP header included (RFC 1812 4.3.2.3).
pub const MAX_ERROR_LEN: usize = 576;

/// TTL of the replies the appliance originates.
pub const REPLY_TTL: u8 = 64;

/// Replies of one kind sent per second at most, sustained, whoever the senders are.
pub const REPLIES_PER_SECOND: u32 = 100;

/// Replies of one kind that may be sent back to back before [`REPLIES_PER_SECOND`] applies.
pub const REPLY_BURST: u32 = 50;

/// Each kind of reply's budget (see the module documentation): one sender gets 10 per
/// second (bursts of 10), all addresses behind a NIC's router together 50, everyone
/// [`REPLIES_PER_SECOND`]; a sender that was quiet still gets one from a reserve of 10 per
/// second when the total is spent.
pub const REPLY_SHARES: Shares = Shares {
    per_source: Rate {
        per_second: 10,
        burst: 10,
    },
    per_remote_side: Rate {
        per_second: 50,
        burst: 50,
    },
    total: Rate {
        per_second: REPLIES_PER_SECOND,
        burst: REPLY_BURST,
    },
    reserve: Rate {
        per_second: 10,
        burst: 10,
    },
};

/// ICMP header of an error: type, code, checksum, 4 bytes of type-specific data. (What
/// `Icmpv4Packet::header_len` says once the type is written; the reply's length is needed
/// before that.)
const ICMP_ERROR_HEADER_LEN: usize = 8;
/// Where an ICMP "fragmentation needed" carries the next-hop MTU (RFC 1191), a field
/// `smoltcp::wire` has no accessor for.
const NEXT_HOP_MTU: core::ops::Range<usize> = 6..8;
/// ICMP types that are errors.
const ICMP_ERROR_TYPES: [Icmpv4Message; 5] = [
    Icmpv4Message::DstUnreachable,
    SOURCE_QUENCH,
    Icmpv4Message::Redirect,
    Icmpv4Message::TimeExceeded,
    Icmpv4Message::ParamProblem,
];

/// An ICMP error the appliance sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpError {
    /// Time exceeded in transit: the TTL ran out here (type 11, code 0).
    TimeExceeded,
    /// No route to the destination network (type 3, code 0).
    NetUnreachable,
    /// The destination host did not answer ARP (type 3, code 1).
    HostUnreachable,
    /// Nothing listens on the destination port (type 3, code 3).
    PortUnreachable,
    /// Communication administratively prohibited: `reject` (type 3, code 13, RFC 1812).
    AdminProhibited,
    /// The packet is bigger than the egress MTU and has DF set (type 3, code 4, RFC 1191).
    FragmentationNeeded {
        /// The egress link's MTU.
        mtu: u16,
    },
}

impl IcmpError {
    /// The error's type and code for a packet of `version`: ICMP's, or ICMPv6's.
    pub fn type_code_for(&self, version: IpVersion) -> (u8, u8) {
        match version {
            IpVersion::Ipv4 => self.type_code(),
            IpVersion::Ipv6 => crate::icmp_error6::type_code(*self),
        }
    }

    /// The error's ICMP type and code.
    pub fn type_code(&self) -> (u8, u8) {
        let unreachable =
            |reason: DstUnreachable| (Icmpv4Message::DstUnreachable.into(), reason.into());
        match self {
            IcmpError::TimeExceeded => (
                Icmpv4Message::TimeExceeded.into(),
                TimeExceeded::TtlExpired.into(),
            ),
            IcmpError::NetUnreachable => unreachable(DstUnreachable::NetUnreachable),
            IcmpError::HostUnreachable => unreachable(DstUnreachable::HostUnreachable),
            IcmpError::PortUnreachable => unreachable(DstUnreachable::PortUnreachable),
            IcmpError::AdminProhibited => unreachable(DstUnreachable::CommProhibited),
            IcmpError::FragmentationNeeded { .. } => unreachable(DstUnreachable::FragRequired),
        }
    }
}

/// Why no reply is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoReply {
    /// The packet is itself an ICMP error.
    AboutIcmpError,
    /// The packet is a TCP reset.
    AboutTcpReset,
    /// A reset was asked for a packet that is not a TCP segment.
    NotTcp,
    /// Sent to a broadcast or multicast address, or as a link-layer broadcast.
    BroadcastDestination,
    /// A fragment other than the first.
    NonFirstFragment,
    /// The source is not a single host (martian or broadcast): there is no one to tell.
    InvalidSource,
    /// The NIC the packet came in on has no address to send an ICMP error from.
    NoSourceAddress,
    /// Too many replies lately.
    RateLimited,
}

impl NoReply {
    /// A short name for logs and counters.
    pub fn as_str(&self) -> &'static str {
        match self {
            NoReply::AboutIcmpError => "about-icmp-error",
            NoReply::AboutTcpReset => "about-tcp-reset",
            NoReply::NotTcp => "not-tcp",
            NoReply::BroadcastDestination => "broadcast-destination",
            NoReply::NonFirstFragment => "non-first-fragment",
            NoReply::InvalidSource => "invalid-source",
            NoReply::NoSourceAddress => "no-source-address",
            NoReply::RateLimited => "rate-limited",
        }
    }
}

/// A packet that went no further, as it arrived.
#[derive(Clone, Copy, Debug)]
pub struct Offending<'a> {
    /// Its bytes, from the IPv4 header, before any rewrite (TTL, NAT): the sender must
    /// recognise the quote. May be followed by Ethernet padding.
    pub bytes: &'a [u8],
    /// Its summary (from [`IpSummary::parse`] of `bytes`).
    pub summary: &'a IpSummary,
    /// The appliance's address and connected network on the NIC it came in on.
    pub ingress: Option<Ipv4Cidr>,
    /// For an IPv6 packet: the appliance's IPv6 address on the NIC it came in on, the
    /// source of an ICMPv6 error about it (see [`crate::icmp_error6`]).
    pub source6: Option<Ipv6Address>,
    /// Whether its Ethernet destination was a broadcast or multicast address.
    pub link_broadcast: bool,
}

impl Offending<'_> {
    fn is_icmp_error(&self) -> bool {
        match self.summary.transport {
            Transport::Icmp(IcmpSummary::Error { .. }) => true,
            Transport::Icmp(IcmpSummary::Other { icmp_type, .. }) => {
                ICMP_ERROR_TYPES.contains(&Icmpv4Message::from(icmp_type))
            }
            _ => false,
        }
    }

    fn is_ingress_broadcast(&self, addr: Ipv4Address) -> bool {
        self.ingress.and_then(|cidr| cidr.broadcast()) == Some(addr)
    }

    /// The checks common to every reply: someone to tell, who is not a crowd.
    fn check_repliable(&self) -> Result<(), NoReply> {
        let Some((src, dst)) = self.summary.ipv4_addresses() else {
            return crate::icmp_error6::check_repliable(self);
        };
        if self.link_broadcast
            || dst.is_broadcast()
            || dst.is_multicast()
            || self.is_ingress_broadcast(dst)
        {
            return Err(NoReply::BroadcastDestination);
        }
        if is_special_purpose(src) || self.is_ingress_broadcast(src) {
            return Err(NoReply::InvalidSource);
        }
        if self.summary.fragment_offset != 0 {
            return Err(NoReply::NonFirstFragment);
        }
        Ok(())
    }

    /// The bytes of the packet itself, without Ethernet padding.
    fn packet(&self) -> &[u8] {
        &self.bytes[..self.summary.total_len.min(self.bytes.len())]
    }
}

/// Builds an ICMP error about `offending` (no rate limit; see [`ErrorReplies`]).
pub fn build_icmp_error(error: IcmpError, offending: &Offending) -> Result<Vec<u8>, NoReply> {
    let Some((offending_src, _)) = offending.summary.ipv4_addresses() else {
        return crate::icmp_error6::build_icmpv6_error(error, offending);
    };
    offending.check_repliable()?;
    if offending.is_icmp_error() {
        return Err(NoReply::AboutIcmpError);
    }
    let source = offending.ingress.ok_or(NoReply::NoSourceAddress)?.address();
    let packet = offending.packet();
    let quote = &packet[..packet
        .len()
        .min(MAX_ERROR_LEN - IPV4_HEADER_LEN - ICMP_ERROR_HEADER_LEN)];
    let icmp_len = ICMP_ERROR_HEADER_LEN + quote.len();
    let ip = Ipv4Repr {
        src_addr: source,
        dst_addr: offending_src,
        next_header: IpProtocol::Icmp,
        payload_len: icmp_len,
        hop_limit: REPLY_TTL,
    };
    let mut reply = vec![0u8; ip.buffer_len() + icmp_len];
    let mut ip_view = Ipv4Packet::new_unchecked(&mut reply[..]);
    ip.emit(&mut ip_view, &ChecksumCapabilities::default());
    let icmp_bytes = ip_view.payload_mut();
    if let IcmpError::FragmentationNeeded { mtu } = error {
        icmp_bytes[NEXT_HOP_MTU].copy_from_slice(&mtu.to_be_bytes());
    }
    let (icmp_type, code) = error.type_code();
    let mut icmp = Icmpv4Packet::new_unchecked(icmp_bytes);
    icmp.set_msg_type(icmp_type.into());
    icmp.set_msg_code(code);
    icmp.data_mut().copy_from_slice(quote);
    icmp.fill_checksum();
    Ok(reply)
}

/// Builds the TCP reset answering `offending` (no rate limit; see [`ErrorReplies`]).
pub fn build_tcp_reset(offending: &Offending) -> Result<Vec<u8>, NoReply> {
    let Transport::Tcp(segment) = offending.summary.transport else {
        return Err(if offending.summary.fragment_offset != 0 {
            NoReply::NonFirstFragment
        } else {
            NoReply::NotTcp
        });
    };
    offending.check_repliable()?;
    if segment.has(tcp_flags::RST) {
        return Err(NoReply::AboutTcpReset);
    }
    let (seq_number, ack_number) = if segment.has(tcp_flags::ACK) {
        (TcpSeqNumber(segment.ack as i32), None)
    } else {
        let control_len = segment.has(tcp_flags::SYN) as u32 + segment.has(tcp_flags::FIN) as u32;
        let seg_len = segment.payload_len.wrapping_add(control_len);
        (
            TcpSeqNumber(0),
            Some(TcpSeqNumber(segment.seq.wrapping_add(seg_len) as i32)),
        )
    };
    let tcp = TcpRepr {
        src_port: segment.dst_port,
        dst_port: segment.src_port,
        control: TcpControl::Rst,
        seq_number,
        ack_number,
        window_len: 0,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None, None, None],
        timestamp: None,
        payload: &[],
    };
    let Some((dst, src)) = offending.summary.ipv4_addresses() else {
        return crate::icmp_error6::build_tcp_reset_ipv6(offending, &tcp);
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: REPLY_TTL,
    };
    let mut reply = vec![0u8; ip.buffer_len() + tcp.buffer_len()];
    let mut ip_view = Ipv4Packet::new_unchecked(&mut reply[..]);
    ip.emit(&mut ip_view, &ChecksumCapabilities::default());
    let mut tcp_view = TcpPacket::new_unchecked(ip_view.payload_mut());
    tcp.emit(
        &mut tcp_view,
        &IpAddress::Ipv4(src),
        &IpAddress::Ipv4(dst),
        &ChecksumCapabilities::default(),
    );
    Ok(reply)
}

/// Builds the replies to offending packets, each kind within its budget. See the module
/// documentation.
#[derive(Clone, Debug)]
pub struct ErrorReplies {
    /// Fragmentation needed.
    path_mtu: SharedBudget,
    /// The other ICMP errors.
    errors: SharedBudget,
    /// What `reject` sends.
    rejects: SharedBudget,
}

impl Default for ErrorReplies {
    fn default() -> Self {
        ErrorReplies::new(REPLY_SHARES, 0)
    }
}

impl ErrorReplies {
    /// Replies whose every kind has a budget of `shares`, filing senders under a hash
    /// keyed by `key`.
    pub fn new(shares: Shares, key: u64) -> ErrorReplies {
        let budget = |domain: u64| SharedBudget::new(shares, key ^ domain);
        ErrorReplies {
            path_mtu: budget(1),
            errors: budget(2),
            rejects: budget(3),
        }
    }

    /// The ICMP `error` about `offending`, from `sender`, as an IPv4 packet to its sender.
    pub fn icmp_error(
        &mut self,
        error: IcmpError,
        offending: &Offending,
        sender: Source,
        now: Instant,
    ) -> Result<Vec<u8>, NoReply> {
        let reply = build_icmp_error(error, offending)?;
        let budget = match error {
            IcmpError::FragmentationNeeded { .. } => &mut self.path_mtu,
            _ => &mut self.errors,
        };
        limited(budget, reply, sender, now)
    }

    /// What the `reject` action sends to `sender`: a reset for a TCP segment, an
    /// administratively prohibited error for anything else.
    pub fn reject(
        &mut self,
        offending: &Offending,
        sender: Source,
        now: Instant,
    ) -> Result<Vec<u8>, NoReply> {
        let reply = match offending.summary.transport {
            Transport::Tcp(_) => build_tcp_reset(offending)?,
            _ => build_icmp_error(IcmpError::AdminProhibited, offending)?,
        };
        limited(&mut self.rejects, reply, sender, now)
    }

    /// Replies withheld by the budgets so far.
    pub fn rate_limited(&self) -> u64 {
        [&self.path_mtu, &self.errors, &self.rejects]
            .iter()
            .map(|b| b.refused_total())
            .sum()
    }
}

/// `reply` if `budget` allows one for `sender` now.
fn limited(
    budget: &mut SharedBudget,
    reply: Vec<u8>,
    sender: Source,
    now: Instant,
) -> Result<Vec<u8>, NoReply> {
    if budget.try_take(sender, now) {
        Ok(reply)
    } else {
        Err(NoReply::RateLimited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{QuotedPacket, TcpSummary};
    use crate::testutil::packets::{self, checksums_valid};
    use smoltcp::wire::Icmpv4Repr;

    /// The ICMP message as smoltcp parses it (checksum verified).
    fn parse_icmp(reply: &[u8]) -> Icmpv4Repr<'_> {
        let ip = Ipv4Packet::new_checked(reply).expect("an IPv4 packet");
        let icmp = Icmpv4Packet::new_checked(ip.payload()).expect("an ICMP message");
        Icmpv4Repr::parse(&icmp, &ChecksumCapabilities::default()).expect("a valid ICMP error")
    }

    const CLIENT: [u8; 4] = [10, 137, 1, 10];
    const SERVER: [u8; 4] = [203, 0, 113, 5];

    /// The sender of the offending packets: the client, a neighbour on the client NIC.
    fn sender() -> Source {
        Source::neighbour(1, Ipv4Address::from(CLIENT))
    }

    fn client_nic() -> Option<Ipv4Cidr> {
        Some(Ipv4Cidr::new(Ipv4Address::new(10, 137, 1, 1), 24))
    }

    fn summary(bytes: &[u8]) -> IpSummary {
        IpSummary::parse(bytes).expect("valid packet")
    }

    fn offending<'a>(bytes: &'a [u8], summary: &'a IpSummary) -> Offending<'a> {
        Offending {
            bytes,
            summary,
            ingress: client_nic(),
            source6: None,
            link_broadcast: false,
        }
    }

    fn error_about(error: IcmpError, bytes: &[u8]) -> Result<Vec<u8>, NoReply> {
        build_icmp_error(error, &offending(bytes, &summary(bytes)))
    }

    /// The error's summary: type, code and what it quotes.
    fn quoted(reply: &[u8]) -> (u8, u8, QuotedPacket) {
        match summary(reply).transport {
            Transport::Icmp(IcmpSummary::Error {
                icmp_type,
                code,
                quoted,
            }) => (icmp_type, code, quoted),
            other => panic!("not an ICMP error: {other:?}"),
        }
    }

    fn tcp_of(reply: &[u8]) -> TcpSummary {
        match summary(reply).transport {
            Transport::Tcp(tcp) => tcp,
            other => panic!("not TCP: {other:?}"),
        }
    }

    #[test]
    fn ttl_one_yields_time_exceeded() {
        let mut packet = packets::udp(CLIENT, 33434, SERVER, 33434, b"traceroute");
        packets::set_ttl(&mut packet, 1);
        let reply = error_about(IcmpError::TimeExceeded, &packet).unwrap();
        assert!(checksums_valid(&reply));
        let s = summary(&reply);
        assert_eq!(
            s.src,
            Ipv4Address::new(10, 137, 1, 1).into(),
            "from our address on the ingress NIC"
        );
        assert_eq!(s.dst, Ipv4Address::from(CLIENT).into());
        assert_eq!(s.ttl, REPLY_TTL);
        let (icmp_type, code, quote) = quoted(&reply);
        assert_eq!((icmp_type, code), (11, 0));
        assert_eq!(
            (quote.src, quote.dst),
            (
                Ipv4Address::from(CLIENT).into(),
                Ipv4Address::from(SERVER).into()
            )
        );
        assert_eq!((quote.src_port, quote.dst_port), (Some(33434), Some(33434)));
        // The whole (short) packet is quoted byte for byte, TTL 1 and all.
        assert_eq!(&reply[28..], &packet[..]);
        assert!(matches!(
            parse_icmp(&reply),
            Icmpv4Repr::TimeExceeded { .. }
        ));
    }

    #[test]
    fn unreachable_codes_are_the_rfc_ones() {
        let packet = packets::udp(CLIENT, 40000, SERVER, 53, b"q");
        for (error, code) in [
            (IcmpError::NetUnreachable, 0),
            (IcmpError::HostUnreachable, 1),
            (IcmpError::PortUnreachable, 3),
            (IcmpError::AdminProhibited, 13),
        ] {
            let reply = error_about(error, &packet).unwrap();
            assert!(checksums_valid(&reply), "{error:?}");
            let (icmp_type, got_code, _) = quoted(&reply);
            assert_eq!((icmp_type, got_code), (3, code), "{error:?}");
        }
    }

    #[test]
    fn fragmentation_needed_carries_the_next_hop_mtu() {
        let packet = packets::tcp(
            (CLIENT, 40000),
            (SERVER, 443),
            (1, 1, tcp_flags::ACK),
            &[0; 1460],
        );
        let reply = error_about(IcmpError::FragmentationNeeded { mtu: 1400 }, &packet).unwrap();
        assert!(checksums_valid(&reply));
        let (icmp_type, code, quote) = quoted(&reply);
        assert_eq!((icmp_type, code), (3, 4));
        assert_eq!((quote.src_port, quote.dst_port), (Some(40000), Some(443)));
        let icmp = &reply[20..];
        assert_eq!(&icmp[4..6], &[0, 0], "unused");
        assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1400, "next-hop MTU");
    }

    #[test]
    fn quote_of_a_big_packet_keeps_the_error_within_576_bytes() {
        let packet = packets::udp(CLIENT, 40000, SERVER, 9000, &[0xab; 1400]);
        let reply = error_about(IcmpError::HostUnreachable, &packet).unwrap();
        assert_eq!(reply.len(), MAX_ERROR_LEN);
        assert!(checksums_valid(&reply));
        assert_eq!(
            &reply[28..],
            &packet[..MAX_ERROR_LEN - 28],
            "quote is the packet's start"
        );
    }

    #[test]
    fn ethernet_padding_is_not_quoted() {
        let mut padded = packets::udp(CLIENT, 40000, SERVER, 53, b"");
        let len = padded.len();
        padded.extend_from_slice(&[0xee; 18]);
        let reply = error_about(IcmpError::PortUnreachable, &padded).unwrap();
        assert_eq!(&reply[28..], &padded[..len]);
    }

    #[test]
    fn ip_options_are_quoted_as_sent() {
        // A header with a 4-byte option (NOP NOP NOP EOL): the quote keeps it, plus 8 bytes.
        let plain = packets::udp(CLIENT, 40000, SERVER, 53, b"query");
        let mut with_options = plain[..20].to_vec();
        with_options.extend_from_slice(&[1, 1, 1, 0]);
        with_options.extend_from_slice(&plain[20..]);
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut with_options[..]);
            ip.set_header_len(24);
            ip.set_total_len(plain.len() as u16 + 4);
            ip.fill_checksum();
        }
        let reply = error_about(IcmpError::AdminProhibited, &with_options).unwrap();
        let (_, _, quote) = quoted(&reply);
        assert_eq!(quote.header_len, 24);
        assert_eq!(quote.dst_port, Some(53));
        assert_eq!(&reply[28..], &with_options[..]);
    }

    #[test]
    fn error_about_icmp_error_is_never_sent() {
        let inner = packets::udp(SERVER, 53, CLIENT, 40000, b"a");
        for (icmp_type, code) in [(3, 3), (11, 0), (12, 0), (5, 1), (4, 0)] {
            let error = packets::icmp_error(CLIENT, SERVER, icmp_type, code, &inner);
            assert_eq!(
                error_about(IcmpError::TimeExceeded, &error),
                Err(NoReply::AboutIcmpError),
                "type {icmp_type}"
            );
        }
    }

    #[test]
    fn errors_about_icmp_queries_are_sent() {
        let ping = packets::icmp_echo(CLIENT, SERVER, true, 7, 1, b"ping");
        let reply = error_about(IcmpError::TimeExceeded, &ping).unwrap();
        let (_, _, quote) = quoted(&reply);
        assert_eq!(quote.src_port, Some(7), "the echo identifier is quoted");
    }

    #[test]
    fn no_error_about_broadcast_or_multicast_destinations() {
        for dst in [[255, 255, 255, 255], [224, 0, 0, 251], [10, 137, 1, 255]] {
            let packet = packets::udp(CLIENT, 5353, dst, 5353, b"mdns");
            assert_eq!(
                error_about(IcmpError::PortUnreachable, &packet),
                Err(NoReply::BroadcastDestination),
                "{dst:?}"
            );
        }
        let unicast = packets::udp(CLIENT, 5353, SERVER, 5353, b"x");
        let s = summary(&unicast);
        let link_broadcast = Offending {
            link_broadcast: true,
            ..offending(&unicast, &s)
        };
        assert_eq!(
            build_icmp_error(IcmpError::PortUnreachable, &link_broadcast),
            Err(NoReply::BroadcastDestination)
        );
    }

    #[test]
    fn no_error_about_a_non_first_fragment() {
        let mut packet = packets::udp(CLIENT, 40000, SERVER, 9000, &[1; 64]);
        packets::set_fragment(&mut packet, true, 1480);
        assert_eq!(
            error_about(IcmpError::TimeExceeded, &packet),
            Err(NoReply::NonFirstFragment)
        );
    }

    #[test]
    fn errors_about_a_first_fragment_are_sent() {
        let mut packet = packets::udp(CLIENT, 40000, SERVER, 9000, &[1; 64]);
        packets::set_fragment(&mut packet, true, 0);
        assert!(error_about(IcmpError::TimeExceeded, &packet).is_ok());
    }

    #[test]
    fn no_error_to_a_martian_or_broadcast_source() {
        for src in [
            [0, 0, 0, 0],
            [127, 0, 0, 1],
            [224, 1, 2, 3],
            [240, 0, 0, 9],
            [10, 137, 1, 255],
        ] {
            let packet = packets::udp(src, 68, SERVER, 67, b"x");
            assert_eq!(
                error_about(IcmpError::HostUnreachable, &packet),
                Err(NoReply::InvalidSource),
                "{src:?}"
            );
        }
    }

    #[test]
    fn no_error_from_a_nic_without_address() {
        let packet = packets::udp(CLIENT, 40000, SERVER, 53, b"q");
        let s = summary(&packet);
        let unaddressed = Offending {
            ingress: None,
            ..offending(&packet, &s)
        };
        assert_eq!(
            build_icmp_error(IcmpError::NetUnreachable, &unaddressed),
            Err(NoReply::NoSourceAddress)
        );
    }

    #[test]
    fn reject_of_tcp_syn_is_rst_ack() {
        let syn = packets::tcp(
            (CLIENT, 40000),
            (SERVER, 23),
            (0x1000_0000, 0, tcp_flags::SYN),
            &[],
        );
        let reply = build_tcp_reset(&offending(&syn, &summary(&syn))).unwrap();
        assert!(checksums_valid(&reply));
        let s = summary(&reply);
        assert_eq!(
            (s.src, s.dst),
            (
                Ipv4Address::from(SERVER).into(),
                Ipv4Address::from(CLIENT).into()
            ),
            "from the server"
        );
        assert_eq!(s.ttl, REPLY_TTL);
        let rst = tcp_of(&reply);
        assert_eq!((rst.src_port, rst.dst_port), (23, 40000));
        assert_eq!(rst.flags, tcp_flags::RST | tcp_flags::ACK);
        assert_eq!(rst.seq, 0);
        assert_eq!(rst.ack, 0x1000_0001, "SYN counts for one");
        assert_eq!((rst.window, rst.payload_len), (0, 0));
    }

    #[test]
    fn reset_of_an_acking_segment_takes_its_sequence_from_the_ack() {
        let data = packets::tcp(
            (CLIENT, 40000),
            (SERVER, 443),
            (5000, 0xdead_beef, tcp_flags::ACK | tcp_flags::PSH),
            b"GET /",
        );
        let rst = tcp_of(&build_tcp_reset(&offending(&data, &summary(&data))).unwrap());
        assert_eq!(rst.flags, tcp_flags::RST, "no ACK");
        assert_eq!(rst.seq, 0xdead_beef);
    }

    #[test]
    fn reset_without_ack_acknowledges_syn_and_payload_modulo_2_32() {
        // SEG.LEN counts the payload and the SYN; the sum wraps around the sequence space.
        let syn_data = packets::tcp(
            (CLIENT, 40000),
            (SERVER, 80),
            (u32::MAX - 1, 0, tcp_flags::SYN),
            b"abc",
        );
        let rst = tcp_of(&build_tcp_reset(&offending(&syn_data, &summary(&syn_data))).unwrap());
        assert_eq!(rst.ack, 2, "0xfffffffe + 3 bytes + SYN wraps to 2");
    }

    #[test]
    fn reset_is_never_sent_about_a_reset() {
        let rst = packets::tcp((CLIENT, 40000), (SERVER, 443), (1, 0, tcp_flags::RST), &[]);
        assert_eq!(
            build_tcp_reset(&offending(&rst, &summary(&rst))),
            Err(NoReply::AboutTcpReset)
        );
    }

    #[test]
    fn reset_is_only_for_tcp() {
        let udp = packets::udp(CLIENT, 40000, SERVER, 53, b"q");
        assert_eq!(
            build_tcp_reset(&offending(&udp, &summary(&udp))),
            Err(NoReply::NotTcp)
        );
    }

    #[test]
    fn reject_of_udp_is_admin_prohibited_and_of_tcp_a_reset() {
        let mut replies = ErrorReplies::default();
        let now = Instant::from_secs(1);
        let udp = packets::udp(CLIENT, 40000, SERVER, 53, b"q");
        let reply = replies
            .reject(&offending(&udp, &summary(&udp)), sender(), now)
            .unwrap();
        assert_eq!(summary(&reply).icmp_type_code(), (3, 13));
        let syn = packets::tcp_syn(CLIENT, 40000, SERVER, 22);
        let reply = replies
            .reject(&offending(&syn, &summary(&syn)), sender(), now)
            .unwrap();
        assert!(tcp_of(&reply).has(tcp_flags::RST));
    }

    /// Budgets of one sender's burst of 5 and a total of 8, refilled at one per 100 ms.
    fn small_budgets() -> ErrorReplies {
        let rate = |burst| Rate {
            per_second: 10,
            burst,
        };
        ErrorReplies::new(
            Shares {
                per_source: rate(5),
                per_remote_side: rate(5),
                total: rate(8),
                reserve: rate(1),
            },
            7,
        )
    }

    #[test]
    fn flood_of_offending_packets_yields_a_bounded_number_of_replies() {
        let mut replies = small_budgets();
        let packet = packets::udp(CLIENT, 40000, SERVER, 53, b"q");
        let s = summary(&packet);
        let offense = offending(&packet, &s);
        let t0 = Instant::from_secs(100);
        let sent = (0..1000)
            .filter(|_| {
                replies
                    .icmp_error(IcmpError::PortUnreachable, &offense, sender(), t0)
                    .is_ok()
            })
            .count();
        assert_eq!(sent, 5);
        assert_eq!(
            replies.icmp_error(IcmpError::PortUnreachable, &offense, sender(), t0),
            Err(NoReply::RateLimited)
        );
        assert_eq!(replies.rate_limited(), 996);
        assert!(replies
            .reject(
                &offense,
                sender(),
                t0 + smoltcp::time::Duration::from_millis(100)
            )
            .is_ok());
    }

    #[test]
    fn each_kind_of_reply_has_a_budget_of_its_own() {
        let mut replies = small_budgets();
        let t0 = Instant::from_secs(100);
        let probe = packets::udp(CLIENT, 33434, SERVER, 33434, b"trace");
        let s = summary(&probe);
        for _ in 0..100 {
            let _ = replies.icmp_error(
                IcmpError::TimeExceeded,
                &offending(&probe, &s),
                sender(),
                t0,
            );
        }
        let big = packets::udp(CLIENT, 5000, SERVER, 9000, &[0; 1600]);
        let error = IcmpError::FragmentationNeeded { mtu: 1500 };
        let s = summary(&big);
        assert!(replies
            .icmp_error(error, &offending(&big, &s), sender(), t0)
            .is_ok());
        assert!(replies.reject(&offending(&big, &s), sender(), t0).is_ok());
    }

    #[test]
    fn suppressed_replies_do_not_spend_tokens() {
        let rate = Rate {
            per_second: 0,
            burst: 1,
        };
        let mut replies = ErrorReplies::new(
            Shares {
                per_source: rate,
                per_remote_side: rate,
                total: rate,
                reserve: rate,
            },
            7,
        );
        let inner = packets::udp(SERVER, 53, CLIENT, 40000, b"a");
        let error = packets::icmp_error(CLIENT, SERVER, 3, 3, &inner);
        let now = Instant::from_secs(1);
        let s = summary(&error);
        assert_eq!(
            replies.reject(&offending(&error, &s), sender(), now),
            Err(NoReply::AboutIcmpError)
        );
        let ping = packets::icmp_echo(CLIENT, SERVER, true, 1, 1, b"");
        assert!(replies
            .reject(&offending(&ping, &summary(&ping)), sender(), now)
            .is_ok());
    }
}
