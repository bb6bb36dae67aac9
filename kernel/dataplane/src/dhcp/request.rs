//! The DHCP server's side of the wire, through `smoltcp::wire`'s DHCP codec: a client's
//! message parsed (once, at the edge) out of a received frame, and the server's answer
//! built as a complete IPv4/UDP packet with the link address it goes to.

use alloc::string::String;
use alloc::vec::Vec;

use smoltcp::wire::{
    DhcpMessageType, DhcpOption, DhcpPacket, DhcpRepr, EthernetAddress, Ipv4Address, UdpRepr,
    DHCP_CLIENT_PORT, DHCP_SERVER_PORT,
};

use super::message::{dhcp_datagram, udp_packet};

/// DHCP option codes the server writes or reads beyond what `DhcpRepr` knows (RFC 2132).
const OPT_DNS_SERVER: u8 = 6;
const OPT_HOST_NAME: u8 = 12;
const OPT_INTERFACE_MTU: u8 = 26;
const OPT_RENEWAL_TIME: u8 = 58;
const OPT_REBINDING_TIME: u8 = 59;
/// The longest host name the server reads (RFC 1035's label limit).
const MAX_HOST_NAME: usize = 63;
/// BOOTP's smallest message (RFC 1542 2.1): some clients drop shorter replies.
const MIN_MESSAGE_LEN: usize = 300;

/// Why a frame to the DHCP server port is not a message the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unusable {
    /// Not a well-formed BOOTREQUEST with a DHCP message type (or a bad checksum).
    Malformed,
    /// `chaddr` is not the frame's source MAC: a client asking for another's lease.
    ForeignHardwareAddress,
    /// Sent through a relay agent (`giaddr` set): the appliance serves its own links only.
    Relayed,
}

impl Unusable {
    /// A short name for drop lines.
    pub fn as_str(&self) -> &'static str {
        match self {
            Unusable::Malformed => "bad-dhcp-request",
            Unusable::ForeignHardwareAddress => "dhcp-chaddr-not-sender",
            Unusable::Relayed => "dhcp-relayed",
        }
    }
}

/// A client's message to the server, as far as the server uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRequest {
    /// DISCOVER, REQUEST, DECLINE, RELEASE or INFORM (others are [`Unusable::Malformed`]).
    pub kind: DhcpMessageType,
    /// The client's transaction.
    pub transaction_id: u32,
    /// The client's MAC (`chaddr`, equal to the frame's source).
    pub client_mac: EthernetAddress,
    /// `ciaddr`: the address the client says it holds (RENEWING, REBINDING, INFORM,
    /// RELEASE), or unspecified.
    pub client_ip: Ipv4Address,
    /// The requested-address option.
    pub requested_ip: Option<Ipv4Address>,
    /// The server-identifier option: the server the client chose.
    pub server: Option<Ipv4Address>,
    /// Whether the client asks for broadcast answers.
    pub broadcast: bool,
    /// The host-name option, if it is printable ASCII.
    pub host_name: Option<String>,
}

impl ClientRequest {
    /// The DHCP client message carried by `frame` (Ethernet, IPv4, UDP 68 → 67). The caller
    /// has seen the ports; anything else wrong with it is the error.
    pub fn parse(frame: &[u8]) -> Result<ClientRequest, Unusable> {
        let malformed = Unusable::Malformed;
        let (udp, sender) =
            dhcp_datagram(frame, (DHCP_CLIENT_PORT, DHCP_SERVER_PORT)).ok_or(malformed)?;
        let packet = DhcpPacket::new_checked(udp).map_err(|_| malformed)?;
        let repr = DhcpRepr::parse(&packet).map_err(|_| malformed)?;
        if !matches!(
            repr.message_type,
            DhcpMessageType::Discover
                | DhcpMessageType::Request
                | DhcpMessageType::Decline
                | DhcpMessageType::Release
                | DhcpMessageType::Inform
        ) {
            return Err(malformed);
        }
        if repr.relay_agent_ip != Ipv4Address::UNSPECIFIED {
            return Err(Unusable::Relayed);
        }
        if repr.client_hardware_address != sender {
            return Err(Unusable::ForeignHardwareAddress);
        }
        let host_name = packet
            .options()
            .find(|o| o.kind == OPT_HOST_NAME)
            .and_then(|o| host_name(o.data));
        Ok(ClientRequest {
            kind: repr.message_type,
            transaction_id: repr.transaction_id,
            client_mac: repr.client_hardware_address,
            client_ip: repr.client_ip,
            requested_ip: repr.requested_ip,
            server: repr.server_identifier,
            broadcast: repr.broadcast,
            host_name,
        })
    }
}

/// A host-name option's text, if it is a plausible host name.
fn host_name(data: &[u8]) -> Option<String> {
    let data = data.strip_suffix(&[0]).unwrap_or(data);
    let plausible = !data.is_empty()
        && data.len() <= MAX_HOST_NAME
        && data
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    plausible.then(|| data.iter().map(|&b| char::from(b)).collect())
}

/// What the server tells every client of an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerParams {
    /// The appliance's address on the interface: the server identifier and the source.
    pub server: Ipv4Address,
    /// The interface network's mask.
    pub subnet_mask: Ipv4Address,
    /// The default router (the appliance), if clients should route through it.
    pub router: Option<Ipv4Address>,
    /// The DNS server (the appliance, when it redirects DNS from this interface).
    pub dns: Option<Ipv4Address>,
    /// The interface MTU.
    pub mtu: u16,
}

/// The server's answer to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// DHCPOFFER of `address` for `lease_secs`.
    Offer {
        /// The offered address.
        address: Ipv4Address,
        /// The lease time offered.
        lease_secs: u32,
    },
    /// DHCPACK binding `address` for `lease_secs`.
    Ack {
        /// The bound address.
        address: Ipv4Address,
        /// The lease time.
        lease_secs: u32,
    },
    /// DHCPACK to a DHCPINFORM: the parameters, no address, no lease.
    Inform,
    /// DHCPNAK: the requested address is wrong for this client here.
    Nak,
}

impl Answer {
    /// The answer to `request` from `params`, as an IPv4 packet, and the MAC it goes to
    /// (RFC 2131 4.1: a NAK is broadcast; an answer to a client that holds an address
    /// goes to that address; others are broadcast if the client asks, else sent to the
    /// offered address at the client's MAC).
    pub fn build(
        &self,
        request: &ClientRequest,
        params: &ServerParams,
    ) -> (EthernetAddress, Vec<u8>) {
        let (kind, your_ip, lease) = match *self {
            Answer::Offer {
                address,
                lease_secs,
            } => (DhcpMessageType::Offer, address, Some(lease_secs)),
            Answer::Ack {
                address,
                lease_secs,
            } => (DhcpMessageType::Ack, address, Some(lease_secs)),
            Answer::Inform => (DhcpMessageType::Ack, Ipv4Address::UNSPECIFIED, None),
            Answer::Nak => (DhcpMessageType::Nak, Ipv4Address::UNSPECIFIED, None),
        };
        let nak = *self == Answer::Nak;
        let renew = lease.map(|l| (l / 2).to_be_bytes());
        let rebind = lease.map(|l| (l / 8 * 7).to_be_bytes());
        let mtu = params.mtu.to_be_bytes();
        let mut extra: Vec<DhcpOption> = Vec::new();
        if let (Some(renew), Some(rebind)) = (&renew, &rebind) {
            extra.push(DhcpOption {
                kind: OPT_RENEWAL_TIME,
                data: renew,
            });
            extra.push(DhcpOption {
                kind: OPT_REBINDING_TIME,
                data: rebind,
            });
        }
        if !nak {
            extra.push(DhcpOption {
                kind: OPT_INTERFACE_MTU,
                data: &mtu,
            });
        }
        let dns = params.dns.map(|a| a.octets());
        if let (Some(dns), false) = (&dns, nak) {
            extra.push(DhcpOption {
                kind: OPT_DNS_SERVER,
                data: dns,
            });
        }
        let repr = DhcpRepr {
            message_type: kind,
            transaction_id: request.transaction_id,
            secs: 0,
            client_hardware_address: request.client_mac,
            client_ip: if kind == DhcpMessageType::Ack {
                request.client_ip
            } else {
                Ipv4Address::UNSPECIFIED
            },
            your_ip,
            server_ip: Ipv4Address::UNSPECIFIED,
            router: params.router.filter(|_| !nak),
            subnet_mask: (!nak).then_some(params.subnet_mask),
            relay_agent_ip: Ipv4Address::UNSPECIFIED,
            broadcast: request.broadcast,
            requested_ip: None,
            client_identifier: None,
            server_identifier: Some(params.server),
            parameter_request_list: None,
            dns_servers: None,
            max_size: None,
            lease_duration: lease,
            renew_duration: None,
            rebind_duration: None,
            additional_options: &extra,
        };
        let held = request.client_ip != Ipv4Address::UNSPECIFIED;
        let (dst_ip, dst_mac) = if nak || (!held && request.broadcast) {
            (Ipv4Address::BROADCAST, EthernetAddress::BROADCAST)
        } else if held {
            (request.client_ip, request.client_mac)
        } else {
            (your_ip, request.client_mac)
        };
        let udp = UdpRepr {
            src_port: DHCP_SERVER_PORT,
            dst_port: DHCP_CLIENT_PORT,
        };
        let packet = udp_packet(params.server, dst_ip, udp, MIN_MESSAGE_LEN, &repr);
        (dst_mac, packet)
    }
}
