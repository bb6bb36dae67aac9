//! A DHCP client's messages as clients send them (udhcpc, dhclient, systemd-networkd): any
//! message type, `ciaddr`, requested address, server identifier, host name — built with
//! `smoltcp::wire`, for tests of the appliance's DHCP server.

use alloc::vec::Vec;

use smoltcp::wire::{
    DhcpMessageType, DhcpOption, DhcpRepr, EthernetAddress, Ipv4Address, UdpRepr, DHCP_CLIENT_PORT,
    DHCP_SERVER_PORT,
};

use super::packets::ethernet;
use crate::dhcp::message::udp_packet;

/// What a client puts in one message. Start from [`ClientSends::new`] and set fields.
#[derive(Clone, Copy, Debug)]
pub struct ClientSends<'a> {
    /// The message type.
    pub kind: DhcpMessageType,
    /// The client's MAC (`chaddr`, the client identifier and the frame's source).
    pub mac: EthernetAddress,
    /// `ciaddr`, also the packet's source (unspecified: sent from 0.0.0.0).
    pub client_ip: Ipv4Address,
    /// The requested-address option.
    pub requested: Option<Ipv4Address>,
    /// The server-identifier option.
    pub server: Option<Ipv4Address>,
    /// The host-name option.
    pub host_name: Option<&'a str>,
}

impl ClientSends<'static> {
    /// A `kind` message from `mac` with no address and no options.
    pub fn new(kind: DhcpMessageType, mac: EthernetAddress) -> ClientSends<'static> {
        ClientSends {
            kind,
            mac,
            client_ip: Ipv4Address::UNSPECIFIED,
            requested: None,
            server: None,
            host_name: None,
        }
    }
}

impl ClientSends<'_> {
    /// The frame: broadcast to 255.255.255.255, from `client_ip`.
    pub fn frame(&self) -> Vec<u8> {
        let name_option = self.host_name.map(|n| DhcpOption {
            kind: 12,
            data: n.as_bytes(),
        });
        let options: Vec<DhcpOption> = name_option.into_iter().collect();
        let repr = DhcpRepr {
            message_type: self.kind,
            transaction_id: 0x1234,
            secs: 0,
            client_hardware_address: self.mac,
            client_ip: self.client_ip,
            your_ip: Ipv4Address::UNSPECIFIED,
            server_ip: Ipv4Address::UNSPECIFIED,
            router: None,
            subnet_mask: None,
            relay_agent_ip: Ipv4Address::UNSPECIFIED,
            broadcast: false,
            requested_ip: self.requested,
            client_identifier: Some(self.mac),
            server_identifier: self.server,
            parameter_request_list: Some(&[1, 3, 6, 26]),
            dns_servers: None,
            max_size: None,
            lease_duration: None,
            renew_duration: None,
            rebind_duration: None,
            additional_options: &options,
        };
        let udp = UdpRepr {
            src_port: DHCP_CLIENT_PORT,
            dst_port: DHCP_SERVER_PORT,
        };
        let packet = udp_packet(self.client_ip, Ipv4Address::BROADCAST, udp, 0, &repr);
        ethernet(self.mac, EthernetAddress::BROADCAST, &packet)
    }
}
