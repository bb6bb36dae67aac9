//! The link layer of a test host: a [`Station`] on an Ethernet segment, the ARP and echo
//! frames it sends, and what it makes of a frame it receives ([`inspect`]), built and
//! parsed with `smoltcp::wire` (IPv4 through [`super::datagram`]).
//!
//! Received frames are parsed with checksum verification on: a reply with a wrong IPv4 or
//! ICMP checksum is [`Inbound::Malformed`], never mistaken for a good one.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv4Message, Icmpv6Message, Icmpv6Packet, IpProtocol, Ipv4Address, Ipv4Packet,
    Ipv4Repr, Ipv6Packet,
};

use super::datagram::{
    IcmpMessage, Ipv4Datagram, Ipv4Frame, Ipv4Header, Transport, ICMP_HEADER_LEN,
};

/// A station on an Ethernet segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Station {
    /// Its MAC address.
    pub mac: EthernetAddress,
    /// Its IPv4 address.
    pub ip: Ipv4Address,
}

/// An ICMP echo message, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Echo {
    /// Identifier.
    pub ident: u16,
    /// Sequence number.
    pub seq_no: u16,
    /// Payload.
    pub data: Vec<u8>,
}

/// A received frame, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// An ARP packet.
    Arp {
        /// Its Ethernet header.
        ethernet: EthernetRepr,
        /// The ARP packet.
        arp: ArpRepr,
    },
    /// An ICMP echo reply.
    EchoReply {
        /// Its Ethernet header.
        ethernet: EthernetRepr,
        /// Its IPv4 header.
        ip: Ipv4Repr,
        /// The echo.
        echo: Echo,
    },
    /// Something well formed that the tests do not look at (IPv6, other ICMP, UDP, ...).
    Other(String),
    /// A frame that does not parse, or whose checksums are wrong.
    Malformed(String),
}

/// Broadcast ARP request from `from` asking who has `target`.
pub fn arp_request(from: Station, target: Ipv4Address) -> Vec<u8> {
    arp_frame(
        from.mac,
        EthernetAddress::BROADCAST,
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: from.mac,
            source_protocol_addr: from.ip,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: target,
        },
    )
}

/// ARP reply from `from` to `to`, telling `to` where `from.ip` is.
pub fn arp_reply(from: Station, to: Station) -> Vec<u8> {
    arp_frame(
        from.mac,
        to.mac,
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: from.mac,
            source_protocol_addr: from.ip,
            target_hardware_addr: to.mac,
            target_protocol_addr: to.ip,
        },
    )
}

fn arp_frame(source: EthernetAddress, destination: EthernetAddress, arp: ArpRepr) -> Vec<u8> {
    let ethernet = EthernetRepr {
        src_addr: source,
        dst_addr: destination,
        ethertype: EthernetProtocol::Arp,
    };
    let mut bytes = vec![0u8; ethernet.buffer_len() + arp.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
    ethernet.emit(&mut frame);
    arp.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
    bytes
}

/// ICMP echo request from `from` to `to`.
pub fn echo_request(from: Station, to: Station, echo: &Echo) -> Vec<u8> {
    Ipv4Frame {
        ethernet: EthernetRepr {
            src_addr: from.mac,
            dst_addr: to.mac,
            ethertype: EthernetProtocol::Ipv4,
        },
        datagram: Ipv4Datagram {
            header: Ipv4Header::new(from.ip, to.ip),
            transport: Transport::Icmp(IcmpMessage {
                kind: Icmpv4Message::EchoRequest,
                code: 0,
                ident: echo.ident,
                seq_no: echo.seq_no,
                body: echo.data.clone(),
            }),
        },
    }
    .emit()
}

/// Parses a received frame.
pub fn inspect(bytes: &[u8]) -> Inbound {
    let Ok(frame) = EthernetFrame::new_checked(bytes) else {
        return Inbound::Malformed(format!(
            "{}-byte frame shorter than an Ethernet header",
            bytes.len()
        ));
    };
    let Ok(ethernet) = EthernetRepr::parse(&frame) else {
        return Inbound::Malformed("unparsable Ethernet header".into());
    };
    match ethernet.ethertype {
        EthernetProtocol::Arp => match ArpPacket::new_checked(frame.payload())
            .and_then(|packet| ArpRepr::parse(&packet))
        {
            Ok(arp) => Inbound::Arp { ethernet, arp },
            Err(_) => Inbound::Malformed("malformed ARP packet".into()),
        },
        EthernetProtocol::Ipv4 => inspect_ipv4(ethernet, frame.payload()),
        other => Inbound::Other(format!("ethertype {other}")),
    }
}

/// Whether `bytes` is an IPv6 neighbour discovery frame (router or neighbour solicitation
/// or advertisement, redirect): the link's own chatter, like ARP, which a dual-stack
/// appliance sends unasked (duplicate address detection, router solicitations and
/// advertisements).
pub fn is_neighbour_discovery(bytes: &[u8]) -> bool {
    let Ok(frame) = EthernetFrame::new_checked(bytes) else {
        return false;
    };
    if frame.ethertype() != EthernetProtocol::Ipv6 {
        return false;
    }
    let Ok(ip) = Ipv6Packet::new_checked(frame.payload()) else {
        return false;
    };
    if ip.next_header() != IpProtocol::Icmpv6 {
        return false;
    }
    Icmpv6Packet::new_checked(ip.payload()).is_ok_and(|icmp| {
        matches!(
            icmp.msg_type(),
            Icmpv6Message::RouterSolicit
                | Icmpv6Message::RouterAdvert
                | Icmpv6Message::NeighborSolicit
                | Icmpv6Message::NeighborAdvert
                | Icmpv6Message::Redirect
        )
    })
}

fn inspect_ipv4(ethernet: EthernetRepr, bytes: &[u8]) -> Inbound {
    let Ok(packet) = Ipv4Packet::new_checked(bytes) else {
        return Inbound::Malformed("truncated IPv4 packet".into());
    };
    if packet.next_header() != IpProtocol::Icmp {
        return Inbound::Other(format!(
            "IPv4 {} from {}",
            packet.next_header(),
            packet.src_addr()
        ));
    }
    let datagram = match Ipv4Datagram::parse(bytes) {
        Ok(datagram) => datagram,
        Err(reason) => return Inbound::Malformed(reason),
    };
    match datagram.transport {
        Transport::Icmp(icmp) if icmp.kind == Icmpv4Message::EchoReply => Inbound::EchoReply {
            ethernet,
            ip: Ipv4Repr {
                src_addr: datagram.header.src,
                dst_addr: datagram.header.dst,
                next_header: IpProtocol::Icmp,
                payload_len: ICMP_HEADER_LEN + icmp.body.len(),
                hop_limit: datagram.header.ttl,
            },
            echo: Echo {
                ident: icmp.ident,
                seq_no: icmp.seq_no,
                data: icmp.body,
            },
        },
        Transport::Icmp(icmp) => Inbound::Other(format!("ICMP {} code {}", icmp.kind, icmp.code)),
        other => Inbound::Other(format!("IPv4 {}", other.protocol())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn station(last: u8) -> Station {
        Station {
            mac: EthernetAddress([2, 0, 0, 0, 0, last]),
            ip: Ipv4Address::new(10, 137, 1, last),
        }
    }

    #[test]
    fn an_arp_request_is_a_broadcast_asking_for_the_target() {
        let frame = arp_request(station(2), station(1).ip);
        let Inbound::Arp { ethernet, arp } = inspect(&frame) else {
            panic!("not ARP")
        };
        assert_eq!(ethernet.dst_addr, EthernetAddress::BROADCAST);
        let ArpRepr::EthernetIpv4 {
            operation,
            target_protocol_addr,
            source_hardware_addr,
            ..
        } = arp
        else {
            unreachable!()
        };
        assert_eq!(operation, ArpOperation::Request);
        assert_eq!(target_protocol_addr, station(1).ip);
        assert_eq!(source_hardware_addr, station(2).mac);
    }

    #[test]
    fn an_echo_request_is_not_mistaken_for_a_reply() {
        let echo = Echo {
            ident: 7,
            seq_no: 1,
            data: b"moat".to_vec(),
        };
        let request = echo_request(station(2), station(1), &echo);
        assert!(matches!(inspect(&request), Inbound::Other(text) if text.contains("echo request")));
    }

    #[test]
    fn an_echo_reply_with_a_corrupted_icmp_checksum_is_malformed() {
        let echo = Echo {
            ident: 7,
            seq_no: 1,
            data: b"moat".to_vec(),
        };
        let mut frame = echo_request(station(1), station(2), &echo);
        let icmp_start = 14 + 20;
        frame[icmp_start] = 0; // type 8 (request) -> 0 (reply): checksum no longer matches
        assert!(matches!(inspect(&frame), Inbound::Malformed(text) if text.contains("ICMP")));
        frame[icmp_start + 2] = frame[icmp_start + 2].wrapping_add(8); // fix the checksum by hand
        assert!(matches!(inspect(&frame), Inbound::EchoReply { echo: reply, .. } if reply == echo));
    }

    #[test]
    fn short_frames_are_malformed_not_a_panic() {
        assert!(matches!(inspect(&[0u8; 5]), Inbound::Malformed(_)));
        let mut arp = arp_request(station(2), station(1).ip);
        arp.truncate(20);
        assert!(matches!(inspect(&arp), Inbound::Malformed(_)));
    }
}
