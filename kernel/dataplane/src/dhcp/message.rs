//! DHCP messages on the wire, through `smoltcp::wire`'s DHCP codec: the client's messages
//! built as complete IPv4/UDP packets, and a server's answer parsed (once, at the edge) out
//! of a received Ethernet frame.

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr, DHCP_CLIENT_PORT,
    DHCP_SERVER_PORT, ETHERNET_HEADER_LEN, UDP_HEADER_LEN,
};

/// What the client asks servers for: subnet mask, router, DNS servers (RFC 2132).
const PARAMETER_REQUEST_LIST: &[u8] = &[1, 3, 6];
/// The largest DHCP message the client accepts: a whole unfragmented IPv4 packet of 1,500
/// bytes minus its IPv4 and UDP headers (the appliance does not reassemble).
const MAX_MESSAGE_SIZE: u16 = 1500 - 20 - 8;
/// TTL of the client's packets.
const TTL: u8 = 64;

/// A server's answer to the client, as far as the client uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerMessage {
    /// OFFER, ACK or NAK (other types are not parsed).
    pub kind: DhcpMessageType,
    /// The transaction it answers.
    pub transaction_id: u32,
    /// The client it is for.
    pub client_mac: EthernetAddress,
    /// The address offered or acknowledged (`yiaddr`).
    pub your_ip: Ipv4Address,
    /// The server identifier option (every OFFER, ACK and NAK must carry it: RFC 2131 4.3.1).
    pub server: Ipv4Address,
    /// Subnet mask option.
    pub subnet_mask: Option<Ipv4Address>,
    /// First router option.
    pub router: Option<Ipv4Address>,
    /// DNS server options, in the server's order.
    pub dns_servers: Vec<Ipv4Address>,
    /// Lease time option, seconds.
    pub lease_secs: Option<u32>,
    /// Renewal (T1) time option, seconds.
    pub renew_secs: Option<u32>,
    /// Rebinding (T2) time option, seconds.
    pub rebind_secs: Option<u32>,
}

impl ServerMessage {
    /// The DHCP server message carried by `frame` (Ethernet, IPv4, UDP 67 → 68), or `None`
    /// for any other frame and for a malformed or incomplete message (a BOOTREPLY without
    /// a message type or server identifier, a non-Ethernet hardware type, a bad checksum).
    pub fn parse(frame: &[u8]) -> Option<ServerMessage> {
        let (udp, _) = dhcp_datagram(frame, (DHCP_SERVER_PORT, DHCP_CLIENT_PORT))?;
        let packet = DhcpPacket::new_checked(udp).ok()?;
        let repr = DhcpRepr::parse(&packet).ok()?;
        if !matches!(
            repr.message_type,
            DhcpMessageType::Offer | DhcpMessageType::Ack | DhcpMessageType::Nak
        ) {
            return None;
        }
        Some(ServerMessage {
            kind: repr.message_type,
            transaction_id: repr.transaction_id,
            client_mac: repr.client_hardware_address,
            your_ip: repr.your_ip,
            server: repr.server_identifier?,
            subnet_mask: repr.subnet_mask,
            router: repr.router,
            dns_servers: repr.dns_servers.iter().flatten().copied().collect(),
            lease_secs: repr.lease_duration,
            renew_secs: repr.renew_duration,
            rebind_secs: repr.rebind_duration,
        })
    }
}

/// Which of the client's messages to build (RFC 2131 table 5 says which fields each has).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientMessage {
    /// DHCPDISCOVER: looking for servers.
    Discover,
    /// DHCPREQUEST in SELECTING: taking `address` from the server `server` offered it.
    Select {
        /// The offered address.
        address: Ipv4Address,
        /// The offering server's identifier.
        server: Ipv4Address,
    },
    /// DHCPREQUEST in INIT-REBOOT: asking whichever server answers whether `address` is
    /// still right on this network (a server must NAK it if it is not, RFC 2131 4.3.2).
    Verify {
        /// The address the client holds.
        address: Ipv4Address,
    },
    /// DHCPREQUEST in RENEWING (unicast to the server) or REBINDING (broadcast): extending
    /// the lease on `address`, which the packet is sent from.
    Extend {
        /// The address the client holds.
        address: Ipv4Address,
    },
    /// DHCPDECLINE: the client will not use `address`, acknowledged by `server`.
    Decline {
        /// The refused address.
        address: Ipv4Address,
        /// The server that acknowledged it.
        server: Ipv4Address,
    },
}

impl ClientMessage {
    /// This message from the client with MAC `mac`, in transaction `transaction_id`,
    /// `secs` seconds into the exchange, as a complete IPv4/UDP packet to `destination`.
    pub fn build(
        self,
        mac: EthernetAddress,
        transaction_id: u32,
        secs: u16,
        destination: Ipv4Address,
    ) -> Vec<u8> {
        let mut repr = DhcpRepr {
            message_type: DhcpMessageType::Request,
            transaction_id,
            secs,
            client_hardware_address: mac,
            client_ip: Ipv4Address::UNSPECIFIED,
            your_ip: Ipv4Address::UNSPECIFIED,
            server_ip: Ipv4Address::UNSPECIFIED,
            router: None,
            subnet_mask: None,
            relay_agent_ip: Ipv4Address::UNSPECIFIED,
            broadcast: false,
            requested_ip: None,
            client_identifier: Some(mac),
            server_identifier: None,
            parameter_request_list: Some(PARAMETER_REQUEST_LIST),
            dns_servers: None,
            max_size: Some(MAX_MESSAGE_SIZE),
            lease_duration: None,
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        };
        let mut source = Ipv4Address::UNSPECIFIED;
        match self {
            ClientMessage::Discover => repr.message_type = DhcpMessageType::Discover,
            ClientMessage::Select { address, server } => {
                repr.requested_ip = Some(address);
                repr.server_identifier = Some(server);
            }
            ClientMessage::Verify { address } => repr.requested_ip = Some(address),
            ClientMessage::Extend { address } => {
                repr.client_ip = address;
                source = address;
            }
            ClientMessage::Decline { address, server } => {
                repr.message_type = DhcpMessageType::Decline;
                repr.requested_ip = Some(address);
                repr.server_identifier = Some(server);
                repr.parameter_request_list = None;
                repr.max_size = None;
            }
        }
        let udp = UdpRepr {
            src_port: DHCP_CLIENT_PORT,
            dst_port: DHCP_SERVER_PORT,
        };
        udp_packet(source, destination, udp, 0, &repr)
    }
}

/// The DHCP message (the UDP payload) of `frame` — Ethernet, IPv4, UDP between `ports`
/// (source, destination), checksums right — and the frame's source MAC; `None` for any
/// other frame.
pub(super) fn dhcp_datagram(frame: &[u8], ports: (u16, u16)) -> Option<(&[u8], EthernetAddress)> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    if ethernet.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
    if ip.next_header() != IpProtocol::Udp || !ip.verify_checksum() {
        return None;
    }
    let udp = UdpPacket::new_checked(ip.payload()).ok()?;
    let (src, dst) = (
        IpAddress::Ipv4(ip.src_addr()),
        IpAddress::Ipv4(ip.dst_addr()),
    );
    if (udp.src_port(), udp.dst_port()) != ports
        || (udp.checksum() != 0 && !udp.verify_checksum(&src, &dst))
    {
        return None;
    }
    // The views borrow `frame` only for their own lifetime: take the payload's place in it.
    let start = ETHERNET_HEADER_LEN + usize::from(ip.header_len()) + UDP_HEADER_LEN;
    let end = start + udp.payload().len();
    Some((frame.get(start..end)?, ethernet.src_addr()))
}

/// `repr` in the UDP datagram `udp`, in an IPv4 packet from `src` to `dst`, padded with
/// zeros (DHCP's pad option) to at least `min_len` bytes of DHCP message, with every
/// checksum filled in.
pub(crate) fn udp_packet(
    src: Ipv4Address,
    dst: Ipv4Address,
    udp: UdpRepr,
    min_len: usize,
    repr: &DhcpRepr,
) -> Vec<u8> {
    let dhcp_len = repr.buffer_len().max(min_len);
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Udp,
        payload_len: udp.header_len() + dhcp_len,
        hop_limit: TTL,
    };
    let mut bytes = vec![0u8; ip.buffer_len() + ip.payload_len];
    let checksums = ChecksumCapabilities::default();
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut bytes[..]), &checksums);
    let header_len = ip.buffer_len();
    udp.emit(
        &mut UdpPacket::new_unchecked(&mut bytes[header_len..]),
        &IpAddress::Ipv4(src),
        &IpAddress::Ipv4(dst),
        dhcp_len,
        |payload| {
            // The buffer is exactly `buffer_len()` long: emitting cannot run out of room.
            let _ = repr.emit(&mut DhcpPacket::new_unchecked(payload));
        },
        &checksums,
    );
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0]);

    fn parsed(packet: &[u8]) -> (Ipv4Address, Ipv4Address, DhcpMessageType, Vec<u8>) {
        let ip = Ipv4Packet::new_checked(packet).unwrap();
        assert!(ip.verify_checksum());
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        assert!(udp.verify_checksum(
            &IpAddress::Ipv4(ip.src_addr()),
            &IpAddress::Ipv4(ip.dst_addr())
        ));
        assert_eq!((udp.src_port(), udp.dst_port()), (68, 67));
        let dhcp = DhcpPacket::new_checked(udp.payload()).unwrap();
        let repr = DhcpRepr::parse(&dhcp).unwrap();
        assert_eq!(repr.client_hardware_address, MAC);
        (
            ip.src_addr(),
            ip.dst_addr(),
            repr.message_type,
            udp.payload().to_vec(),
        )
    }

    #[test]
    fn discover_is_broadcast_from_the_unspecified_address() {
        let packet = ClientMessage::Discover.build(MAC, 7, 3, Ipv4Address::BROADCAST);
        let (src, dst, kind, payload) = parsed(&packet);
        assert_eq!(
            (src, dst, kind),
            (
                Ipv4Address::UNSPECIFIED,
                Ipv4Address::BROADCAST,
                DhcpMessageType::Discover
            )
        );
        let packet = DhcpPacket::new_checked(&payload[..]).unwrap();
        let repr = DhcpRepr::parse(&packet).unwrap();
        assert_eq!((repr.transaction_id, repr.secs), (7, 3));
        assert_eq!(repr.client_identifier, Some(MAC));
        assert_eq!(repr.parameter_request_list, Some(PARAMETER_REQUEST_LIST));
    }

    #[test]
    fn requests_carry_the_fields_of_their_state() {
        let address = Ipv4Address::new(10, 0, 2, 15);
        let server = Ipv4Address::new(10, 0, 2, 2);
        let fields = |message: ClientMessage, to: Ipv4Address| {
            let (src, _, kind, payload) = parsed(&message.build(MAC, 1, 0, to));
            let packet = DhcpPacket::new_checked(&payload[..]).unwrap();
            let repr = DhcpRepr::parse(&packet).unwrap();
            (
                src,
                kind,
                repr.client_ip,
                repr.requested_ip,
                repr.server_identifier,
            )
        };
        let unspecified = Ipv4Address::UNSPECIFIED;
        assert_eq!(
            fields(
                ClientMessage::Select { address, server },
                Ipv4Address::BROADCAST
            ),
            (
                unspecified,
                DhcpMessageType::Request,
                unspecified,
                Some(address),
                Some(server)
            )
        );
        assert_eq!(
            fields(ClientMessage::Verify { address }, Ipv4Address::BROADCAST),
            (
                unspecified,
                DhcpMessageType::Request,
                unspecified,
                Some(address),
                None
            )
        );
        assert_eq!(
            fields(ClientMessage::Extend { address }, server),
            (address, DhcpMessageType::Request, address, None, None)
        );
        assert_eq!(
            fields(
                ClientMessage::Decline { address, server },
                Ipv4Address::BROADCAST
            ),
            (
                unspecified,
                DhcpMessageType::Decline,
                unspecified,
                Some(address),
                Some(server)
            )
        );
    }

    #[test]
    fn client_messages_are_not_taken_for_server_messages() {
        let packet = ClientMessage::Discover.build(MAC, 7, 0, Ipv4Address::BROADCAST);
        let frame = crate::testutil::packets::ethernet(MAC, EthernetAddress::BROADCAST, &packet);
        assert_eq!(ServerMessage::parse(&frame), None);
    }
}
