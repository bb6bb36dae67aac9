//! [`DhcpServer`]: a DHCP server on the uplink, answering the appliance's DHCP client with
//! real messages (`smoltcp::wire`'s `DhcpRepr`), and [`dhcp_messages`], reading what the
//! client sent.

use dataplane::testutil::packets;
use smoltcp::wire::{
    DhcpMessageType, DhcpOption, DhcpPacket, DhcpRepr, EthernetAddress, EthernetFrame,
    EthernetProtocol, IpProtocol, Ipv4Address, Ipv4Packet, UdpPacket,
};

use super::{appliance_mac, ip, Host, Lab, Sent, APPLIANCE_UPLINK, GATEWAY, RESOLVER, UPLINK};

/// A DHCP message the appliance sent on the uplink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhcpSeen {
    /// Ethernet destination.
    pub dst: EthernetAddress,
    /// IPv4 source and destination.
    pub ip_src: Ipv4Address,
    pub ip_dst: Ipv4Address,
    pub message_type: DhcpMessageType,
    pub transaction_id: u32,
    pub client_hardware_address: EthernetAddress,
    /// `ciaddr`.
    pub client_ip: Ipv4Address,
    pub requested_ip: Option<Ipv4Address>,
    pub server_identifier: Option<Ipv4Address>,
}

/// The DHCP messages among the frames the appliance sent.
pub fn dhcp_messages(sent: &Sent) -> Vec<DhcpSeen> {
    let parse = |frame: &[u8]| {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        if eth.ethertype() != EthernetProtocol::Ipv4 {
            return None;
        }
        let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
        if ip.next_header() != IpProtocol::Udp {
            return None;
        }
        let udp = UdpPacket::new_checked(ip.payload()).ok()?;
        if (udp.src_port(), udp.dst_port()) != (68, 67) {
            return None;
        }
        let dhcp = DhcpPacket::new_checked(udp.payload()).ok()?;
        let repr = DhcpRepr::parse(&dhcp).ok()?;
        Some(DhcpSeen {
            dst: eth.dst_addr(),
            ip_src: ip.src_addr(),
            ip_dst: ip.dst_addr(),
            message_type: repr.message_type,
            transaction_id: repr.transaction_id,
            client_hardware_address: repr.client_hardware_address,
            client_ip: repr.client_ip,
            requested_ip: repr.requested_ip,
            server_identifier: repr.server_identifier,
        })
    };
    sent.frames
        .iter()
        .filter(|(nic, _)| *nic == UPLINK)
        .filter_map(|(_, frame)| parse(frame))
        .collect()
}

/// The frames of `sent` that are not DHCP messages.
pub fn other_than_dhcp(sent: Sent) -> Sent {
    Sent {
        frames: sent
            .frames
            .into_iter()
            .filter(|frame| {
                dhcp_messages(&Sent {
                    frames: vec![frame.clone()],
                })
                .is_empty()
            })
            .collect(),
    }
}

/// A DHCP server on the uplink, by default the gateway itself, leasing 10.0.2.15/24 with
/// the gateway as router and the resolver as DNS server for 600 s, authoritative (it NAKs
/// requests for any other address, as dnsmasq's `--dhcp-authoritative` does).
#[derive(Clone, Debug)]
pub struct DhcpServer {
    /// The server's host (its address is its identifier).
    pub host: Host,
    /// The address it leases.
    pub address: [u8; 4],
    /// The leased network's prefix length.
    pub prefix_len: u8,
    /// The router it names.
    pub router: [u8; 4],
    /// The DNS server it names.
    pub dns: [u8; 4],
    /// Lease time, seconds.
    pub lease_secs: u32,
}

impl Default for DhcpServer {
    fn default() -> Self {
        DhcpServer {
            host: GATEWAY,
            address: APPLIANCE_UPLINK,
            prefix_len: 24,
            router: GATEWAY.ip,
            dns: RESOLVER.ip,
            lease_secs: 600,
        }
    }
}

impl DhcpServer {
    /// The server's message of `message_type` in `transaction_id`, granting `your_ip`, as an
    /// IPv4 packet to `to`.
    pub fn message(
        &self,
        message_type: DhcpMessageType,
        transaction_id: u32,
        your_ip: Ipv4Address,
        to: Ipv4Address,
    ) -> Vec<u8> {
        let dns = [DhcpOption {
            kind: 6,
            data: &self.dns,
        }];
        let granting = message_type != DhcpMessageType::Nak;
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix_len))
            .unwrap_or(0);
        let repr = DhcpRepr {
            message_type,
            transaction_id,
            secs: 0,
            client_hardware_address: appliance_mac(UPLINK),
            client_ip: Ipv4Address::UNSPECIFIED,
            your_ip: if granting {
                your_ip
            } else {
                Ipv4Address::UNSPECIFIED
            },
            server_ip: ip(self.host.ip),
            router: granting.then(|| ip(self.router)),
            subnet_mask: granting.then(|| Ipv4Address::from_bits(mask)),
            relay_agent_ip: Ipv4Address::UNSPECIFIED,
            broadcast: false,
            requested_ip: None,
            client_identifier: None,
            server_identifier: Some(ip(self.host.ip)),
            parameter_request_list: None,
            dns_servers: None,
            max_size: None,
            lease_duration: granting.then_some(self.lease_secs),
            renew_duration: None,
            rebind_duration: None,
            additional_options: if granting { &dns } else { &[] },
        };
        let mut payload = vec![0u8; repr.buffer_len()];
        repr.emit(&mut DhcpPacket::new_unchecked(&mut payload[..]))
            .expect("a DHCP message");
        packets::udp(self.host.ip, 67, to.octets(), 68, &payload)
    }

    /// The server's answer to one of the client's messages: an OFFER to a DISCOVER; to a
    /// REQUEST, an ACK if it asks for the server's address, else a NAK. `None` for
    /// anything else, and for a REQUEST to another server (selecting another's offer).
    pub fn answer_to(&self, seen: &DhcpSeen) -> Option<Vec<u8>> {
        let ours = ip(self.address);
        let (kind, to) = match seen.message_type {
            DhcpMessageType::Discover => (DhcpMessageType::Offer, Ipv4Address::BROADCAST),
            DhcpMessageType::Request => {
                if seen
                    .server_identifier
                    .is_some_and(|server| server != ip(self.host.ip))
                {
                    return None;
                }
                let asked = seen.requested_ip.unwrap_or(seen.client_ip);
                let kind = if asked == ours {
                    DhcpMessageType::Ack
                } else {
                    DhcpMessageType::Nak
                };
                let to = if seen.client_ip.is_unspecified() {
                    Ipv4Address::BROADCAST
                } else {
                    seen.client_ip
                };
                (kind, to)
            }
            _ => return None,
        };
        Some(self.message(kind, seen.transaction_id, ours, to))
    }

    /// The server sends the IPv4 `packet` to the appliance: broadcast, or to its MAC when
    /// addressed to its IP.
    pub fn send(&self, lab: &mut Lab, packet: &[u8]) -> Sent {
        let to_host = Ipv4Packet::new_checked(packet).expect("IPv4").dst_addr();
        let dst = if to_host.is_broadcast() {
            EthernetAddress::BROADCAST
        } else {
            appliance_mac(UPLINK)
        };
        lab.receive(UPLINK, packets::ethernet(self.host.mac, dst, packet))
    }

    /// Answers every DHCP message in `sent`, and whatever the client sends in return, until
    /// the client has nothing more to say. Returns every other frame the appliance sent on
    /// the way, and the DHCP messages it answered, in order.
    pub fn converse(&self, lab: &mut Lab, sent: Sent) -> (Sent, Vec<DhcpSeen>) {
        let mut other = Sent::default();
        let mut seen_all = Vec::new();
        let mut pending = sent;
        loop {
            let messages = dhcp_messages(&pending);
            other.frames.extend(other_than_dhcp(pending).frames);
            if messages.is_empty() {
                return (other, seen_all);
            }
            pending = Sent::default();
            for seen in messages {
                if let Some(answer) = self.answer_to(&seen) {
                    pending.frames.extend(self.send(lab, &answer).frames);
                }
                seen_all.push(seen);
            }
        }
    }

    /// From a fresh appliance: DISCOVER, OFFER, REQUEST, ACK. Returns what the appliance
    /// sent besides DHCP on the way (the gratuitous ARP of its new address).
    pub fn lease(&self, lab: &mut Lab) -> Sent {
        let discover = lab.poll();
        let (other, seen) = self.converse(lab, discover);
        let kinds: Vec<DhcpMessageType> = seen.iter().map(|s| s.message_type).collect();
        assert_eq!(
            kinds,
            [DhcpMessageType::Discover, DhcpMessageType::Request],
            "one DISCOVER, one REQUEST"
        );
        other
    }
}
