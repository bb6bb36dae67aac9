//! Reading packets the appliance sent, field by field, with smoltcp's views (not the data
//! plane's own parser).

use std::net::SocketAddrV4;

use dataplane::packet::tcp_flags;
use smoltcp::wire::{
    Icmpv4Message, Icmpv4Packet, IpProtocol, Ipv4Address, Ipv4Packet, TcpPacket, UdpPacket,
};

/// The IPv4 header fields forwarding may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Seen {
    pub src: Ipv4Address,
    pub dst: Ipv4Address,
    pub ttl: u8,
    pub ident: u16,
}

/// The header fields of an IPv4 packet.
pub fn ipv4_of(packet: &[u8]) -> Ipv4Seen {
    let ip = Ipv4Packet::new_checked(packet).expect("an IPv4 packet");
    Ipv4Seen {
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        ttl: ip.hop_limit(),
        ident: ip.ident(),
    }
}

/// The payload of an IPv4 packet of `protocol`, without Ethernet padding.
fn payload_of(packet: &[u8], protocol: IpProtocol) -> &[u8] {
    let ip = Ipv4Packet::new_checked(packet).expect("an IPv4 packet");
    assert_eq!(ip.next_header(), protocol, "IP protocol");
    let (start, end) = (ip.header_len() as usize, ip.total_len() as usize);
    &packet[start..end]
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
    let header = ipv4_of(packet);
    let tcp = TcpPacket::new_checked(payload_of(packet, IpProtocol::Tcp)).expect("a TCP segment");
    let flag = |set: bool, bit: u8| if set { bit } else { 0 };
    TcpSeen {
        src: SocketAddrV4::new(header.src, tcp.src_port()),
        dst: SocketAddrV4::new(header.dst, tcp.dst_port()),
        seq: tcp.seq_number().0 as u32,
        ack: tcp.ack_number().0 as u32,
        flags: flag(tcp.syn(), tcp_flags::SYN)
            | flag(tcp.ack(), tcp_flags::ACK)
            | flag(tcp.fin(), tcp_flags::FIN)
            | flag(tcp.rst(), tcp_flags::RST)
            | flag(tcp.psh(), tcp_flags::PSH),
        payload: tcp.payload().to_vec(),
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
    let header = ipv4_of(packet);
    let udp = UdpPacket::new_checked(payload_of(packet, IpProtocol::Udp)).expect("a UDP datagram");
    UdpSeen {
        src: SocketAddrV4::new(header.src, udp.src_port()),
        dst: SocketAddrV4::new(header.dst, udp.dst_port()),
        payload: udp.payload().to_vec(),
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

/// The ICMP echo an IPv4 packet carries.
pub fn echo_of(packet: &[u8]) -> EchoSeen {
    let header = ipv4_of(packet);
    let icmp =
        Icmpv4Packet::new_checked(payload_of(packet, IpProtocol::Icmp)).expect("an ICMP message");
    let request = match icmp.msg_type() {
        Icmpv4Message::EchoRequest => true,
        Icmpv4Message::EchoReply => false,
        other => panic!("not an echo: {other}"),
    };
    EchoSeen {
        src: header.src,
        dst: header.dst,
        request,
        ident: icmp.echo_ident(),
        seq_no: icmp.echo_seq_no(),
        data: icmp.data().to_vec(),
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
    payload_of(packet, IpProtocol::Icmp)[8..].to_vec()
}

/// The ICMP error an IPv4 packet carries.
pub fn icmp_error_of(packet: &[u8]) -> IcmpErrorSeen {
    let header = ipv4_of(packet);
    let icmp =
        Icmpv4Packet::new_checked(payload_of(packet, IpProtocol::Icmp)).expect("an ICMP message");
    let quote = quote_of(packet);
    let quoted = Ipv4Packet::new_unchecked(&quote[..]);
    let rest = &quote[quoted.header_len() as usize..];
    let (src_port, dst_port) = match quoted.next_header() {
        IpProtocol::Icmp => {
            let ident = u16::from_be_bytes([rest[4], rest[5]]);
            (ident, ident)
        }
        _ => (
            u16::from_be_bytes([rest[0], rest[1]]),
            u16::from_be_bytes([rest[2], rest[3]]),
        ),
    };
    IcmpErrorSeen {
        src: header.src,
        dst: header.dst,
        icmp_type: icmp.msg_type().into(),
        code: icmp.msg_code(),
        quoted_src: SocketAddrV4::new(quoted.src_addr(), src_port),
        quoted_dst: SocketAddrV4::new(quoted.dst_addr(), dst_port),
        quoted_protocol: quoted.next_header(),
    }
}

/// Whether the IPv4 header an ICMP error quotes has a valid checksum (NAT must update it
/// when it rewrites the quote).
pub fn quoted_header_checksum_valid(packet: &[u8]) -> bool {
    let quote = quote_of(packet);
    let header_len = Ipv4Packet::new_unchecked(&quote[..]).header_len() as usize;
    smoltcp::wire::checksum::data(&quote[..header_len]) == !0
}
