//! Reading packets the appliance sent, field by field, with the test packet library's
//! parser (`dataplane::testutil::datagram`, every checksum verified), not the data plane's
//! own.

use std::net::SocketAddrV4;

use dataplane::testutil::datagram::{IcmpMessage, Ipv4Datagram, Transport};
use smoltcp::wire::{Icmpv4Message, IpProtocol, Ipv4Address, Ipv4Packet, UdpPacket};

/// The IPv4 header fields forwarding may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Seen {
    pub src: Ipv4Address,
    pub dst: Ipv4Address,
    pub ttl: u8,
    pub ident: u16,
}

/// The packet, parsed and verified.
fn datagram(packet: &[u8]) -> Ipv4Datagram {
    Ipv4Datagram::parse(packet).unwrap_or_else(|e| panic!("not a valid packet: {e}"))
}

/// The header fields of an IPv4 packet (or fragment).
pub fn ipv4_of(packet: &[u8]) -> Ipv4Seen {
    let ip = Ipv4Packet::new_checked(packet).expect("an IPv4 packet");
    Ipv4Seen {
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        ttl: ip.hop_limit(),
        ident: ip.ident(),
    }
}

/// A TCP segment as a receiver sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSeen {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub payload: Vec<u8>,
}

/// The TCP segment an IPv4 packet carries.
pub fn tcp_of(packet: &[u8]) -> TcpSeen {
    let datagram = datagram(packet);
    let (src, dst) = datagram.endpoints().expect("TCP or UDP");
    let tcp = datagram.tcp().expect("a TCP segment");
    TcpSeen {
        src,
        dst,
        seq: tcp.seq,
        ack: tcp.ack,
        flags: tcp.flags.bits(),
        payload: tcp.payload.clone(),
    }
}

/// A UDP datagram as a receiver sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpSeen {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub payload: Vec<u8>,
}

/// The UDP datagram an IPv4 packet carries.
pub fn udp_of(packet: &[u8]) -> UdpSeen {
    let datagram = datagram(packet);
    let (src, dst) = datagram.endpoints().expect("TCP or UDP");
    let Transport::Udp(udp) = datagram.transport else {
        panic!("not a UDP datagram")
    };
    UdpSeen {
        src,
        dst,
        payload: udp.payload,
    }
}

/// An ICMP echo request or reply as a receiver sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EchoSeen {
    pub src: Ipv4Address,
    pub dst: Ipv4Address,
    pub request: bool,
    pub ident: u16,
    pub seq_no: u16,
    pub data: Vec<u8>,
}

/// The ICMP message an IPv4 packet carries, and its header.
fn icmp_of(packet: &[u8]) -> (Ipv4Address, Ipv4Address, IcmpMessage) {
    let datagram = datagram(packet);
    let (src, dst) = (datagram.header.src, datagram.header.dst);
    let Transport::Icmp(icmp) = datagram.transport else {
        panic!("not an ICMP message")
    };
    (src, dst, icmp)
}

/// The ICMP echo an IPv4 packet carries.
pub fn echo_of(packet: &[u8]) -> EchoSeen {
    let (src, dst, icmp) = icmp_of(packet);
    let request = match icmp.kind {
        Icmpv4Message::EchoRequest => true,
        Icmpv4Message::EchoReply => false,
        other => panic!("not an echo: {other}"),
    };
    EchoSeen {
        src,
        dst,
        request,
        ident: icmp.ident,
        seq_no: icmp.seq_no,
        data: icmp.body,
    }
}

/// An ICMP error as a receiver sees it, with the endpoints of the packet it quotes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IcmpErrorSeen {
    pub src: Ipv4Address,
    pub dst: Ipv4Address,
    pub icmp_type: u8,
    pub code: u8,
    /// The quoted packet's source and destination, with ports (TCP, UDP) or the echo
    /// identifier (ICMP echo) as port.
    pub quoted_src: SocketAddrV4,
    pub quoted_dst: SocketAddrV4,
    pub quoted_protocol: IpProtocol,
}

/// The bytes an ICMP error quotes.
pub fn quote_of(packet: &[u8]) -> Vec<u8> {
    icmp_of(packet).2.body
}

/// The ICMP error an IPv4 packet carries (its quoted IPv4 header's checksum verified).
pub fn icmp_error_of(packet: &[u8]) -> IcmpErrorSeen {
    let (src, dst, icmp) = icmp_of(packet);
    let quoted = icmp
        .quoted()
        .unwrap_or_else(|e| panic!("not a valid quote: {e}"));
    // The first 8 quoted bytes: TCP and UDP start with the ports, an echo has its
    // identifier at bytes 4..6 (the only part of a quoted transport header RFC 792 promises).
    let l4 = &quoted.transport;
    let (src_port, dst_port) = match quoted.protocol {
        IpProtocol::Icmp => {
            let ident = smoltcp::wire::Icmpv4Packet::new_unchecked(&l4[..]).echo_ident();
            (ident, ident)
        }
        _ => {
            let ports = UdpPacket::new_unchecked(&l4[..]);
            (ports.src_port(), ports.dst_port())
        }
    };
    IcmpErrorSeen {
        src,
        dst,
        icmp_type: icmp.kind.into(),
        code: icmp.code,
        quoted_src: SocketAddrV4::new(quoted.header.src, src_port),
        quoted_dst: SocketAddrV4::new(quoted.header.dst, dst_port),
        quoted_protocol: quoted.protocol,
    }
}

/// Whether the IPv4 header an ICMP error quotes has a valid checksum (NAT must update it
/// when it rewrites the quote).
pub fn quoted_header_checksum_valid(packet: &[u8]) -> bool {
    icmp_of(packet).2.quoted().is_ok()
}
