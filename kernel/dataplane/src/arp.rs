//! ARP: answering for the appliance's addresses, learning neighbours, asking for them.
//!
//! Frames are parsed and built with `smoltcp::wire` only.

use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Ipv4Address, ETHERNET_HEADER_LEN,
};

/// Length of an Ethernet/IPv4 ARP packet (`ArpRepr::EthernetIpv4`'s `buffer_len`, which is
/// not a `const fn`; a test keeps the two equal).
const ARP_PACKET_LEN: usize = 28;

/// Length of an Ethernet + ARP (IPv4) frame.
pub const ARP_FRAME_LEN: usize = ETHERNET_HEADER_LEN + ARP_PACKET_LEN;

/// What an ARP packet asks of us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpMessage {
    /// Request or reply.
    pub operation: ArpOperation,
    /// Sender's MAC.
    pub sender_mac: EthernetAddress,
    /// Sender's IPv4 address.
    pub sender_ip: Ipv4Address,
    /// Target MAC (meaningless in requests).
    pub target_mac: EthernetAddress,
    /// Target IPv4 address.
    pub target_ip: Ipv4Address,
}

/// Whether `mac` can be a station's address: not a group (broadcast or multicast) address,
/// not all zeros. Only such MACs are learned, as neighbours or as anything else.
pub fn is_station(mac: EthernetAddress) -> bool {
    mac.is_unicast() && mac != EthernetAddress([0; 6])
}

/// Parses the ARP payload of an Ethernet frame (Ethernet/IPv4 ARP only).
pub fn parse(payload: &[u8]) -> Option<ArpMessage> {
    let packet = ArpPacket::new_checked(payload).ok()?;
    match ArpRepr::parse(&packet).ok()? {
        ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_hardware_addr,
            target_protocol_addr,
        } => Some(ArpMessage {
            operation,
            sender_mac: source_hardware_addr,
            sender_ip: source_protocol_addr,
            target_mac: target_hardware_addr,
            target_ip: target_protocol_addr,
        }),
        _ => None,
    }
}

/// Writes an Ethernet + ARP frame into `out` (which must be [`ARP_FRAME_LEN`] bytes).
pub fn emit(out: &mut [u8], eth_dst: EthernetAddress, message: &ArpMessage) {
    let mut frame = EthernetFrame::new_unchecked(out);
    EthernetRepr {
        src_addr: message.sender_mac,
        dst_addr: eth_dst,
        ethertype: EthernetProtocol::Arp,
    }
    .emit(&mut frame);
    let mut packet = ArpPacket::new_unchecked(frame.payload_mut());
    ArpRepr::EthernetIpv4 {
        operation: message.operation,
        source_hardware_addr: message.sender_mac,
        source_protocol_addr: message.sender_ip,
        target_hardware_addr: message.target_mac,
        target_protocol_addr: message.target_ip,
    }
    .emit(&mut packet);
}

/// The reply to `request` saying that `ip` is at `mac`.
pub fn reply_to(request: &ArpMessage, mac: EthernetAddress) -> ArpMessage {
    ArpMessage {
        operation: ArpOperation::Reply,
        sender_mac: mac,
        sender_ip: request.target_ip,
        target_mac: request.sender_mac,
        target_ip: request.sender_ip,
    }
}

/// A request for `target` from (`mac`, `ip`).
pub fn request(mac: EthernetAddress, ip: Ipv4Address, target: Ipv4Address) -> ArpMessage {
    ArpMessage {
        operation: ArpOperation::Request,
        sender_mac: mac,
        sender_ip: ip,
        target_mac: EthernetAddress([0; 6]),
        target_ip: target,
    }
}

/// A gratuitous ARP announcing (`mac`, `ip`) (a request for our own address, RFC 5227).
pub fn gratuitous(mac: EthernetAddress, ip: Ipv4Address) -> ArpMessage {
    request(mac, ip, ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arp_frame_length_is_smoltcps() {
        let repr = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            source_protocol_addr: Ipv4Address::new(10, 0, 0, 1),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: Ipv4Address::new(10, 0, 0, 2),
        };
        assert_eq!(ARP_PACKET_LEN, repr.buffer_len());
    }

    /// A real ARP request from a Linux host: who has 10.137.1.1? tell 10.137.1.10.
    const REQUEST: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x08,
        0x06, // eth
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00,
        0x01, // htype, ptype, hlen, plen, op=request
        0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 10, 137, 1, 10, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 137, 1, 1, // target
    ];

    #[test]
    fn parses_a_real_request() {
        let m = parse(&REQUEST[14..]).unwrap();
        assert_eq!(m.operation, ArpOperation::Request);
        assert_eq!(m.sender_ip, Ipv4Address::new(10, 137, 1, 10));
        assert_eq!(m.target_ip, Ipv4Address::new(10, 137, 1, 1));
    }

    #[test]
    fn reply_swaps_roles_and_carries_our_mac() {
        let ours = EthernetAddress([0x52, 0x54, 0, 0, 0, 1]);
        let request = parse(&REQUEST[14..]).unwrap();
        let mut out = [0u8; ARP_FRAME_LEN];
        emit(&mut out, request.sender_mac, &reply_to(&request, ours));
        let frame = EthernetFrame::new_checked(&out[..]).unwrap();
        assert_eq!(frame.dst_addr(), request.sender_mac);
        assert_eq!(frame.src_addr(), ours);
        let reply = parse(frame.payload()).unwrap();
        assert_eq!(reply.operation, ArpOperation::Reply);
        assert_eq!(reply.sender_ip, Ipv4Address::new(10, 137, 1, 1));
        assert_eq!(reply.sender_mac, ours);
        assert_eq!(reply.target_ip, Ipv4Address::new(10, 137, 1, 10));
        assert_eq!(reply.target_mac, request.sender_mac);
    }

    #[test]
    fn only_individual_non_zero_macs_are_stations() {
        assert!(is_station(EthernetAddress([0x02, 0, 0, 0, 0, 1])));
        for mac in [
            EthernetAddress::BROADCAST,
            EthernetAddress([0x01, 0x00, 0x5e, 0, 0, 1]),
            EthernetAddress([0x33, 0x33, 0, 0, 0, 1]),
            EthernetAddress([0; 6]),
        ] {
            assert!(!is_station(mac), "{mac}");
        }
    }

    #[test]
    fn truncated_arp_is_rejected() {
        assert_eq!(parse(&REQUEST[14..30]), None);
    }
}
