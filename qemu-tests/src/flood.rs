//! The floods of the soak test and bench: what each sends, as Ethernet frames built with
//! `smoltcp::wire`, one distinct frame per packet index.
//!
//! Four kinds, each sent from a client network or from the uplink:
//!
//! - **own-source SYN**: TCP SYNs from the sender's own address, every one a new flow (its own
//!   source port, destination port and sequence number). From a client they go to the
//!   internet server (closed ports: it answers each with a RST, so both NICs are busy); from
//!   the uplink every other one goes to the appliance's port forward (each opens a state and
//!   reaches the client behind it), the rest to other ports of the appliance's uplink address;
//! - **random-source SYN**: the same from random source addresses. Anti-spoofing drops them
//!   on a client network; on the uplink they are the internet and open states at the port
//!   forward;
//! - **64-byte UDP**: minimum-size frames (18-byte payloads), each from another source port;
//! - **ARP requests**: broadcast requests from the sender asking for a different address each
//!   time, over the /16 around its network.
//!
//! The frames are what [`crate::packet_sender`] puts on the wire; the packet index makes them
//! deterministic, so a failing run can be replayed.

use std::fmt;

use dataplane::rng::SplitMix64;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket,
    TcpRepr, TcpSeqNumber, UdpPacket, UdpRepr,
};

/// What a flood sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FloodKind {
    /// TCP SYNs from the sender's own address, each a new flow.
    OwnSourceSyn,
    /// TCP SYNs from random source addresses.
    RandomSourceSyn,
    /// Minimum-size (64-byte) UDP frames, each from another source port.
    SmallUdp,
    /// Broadcast ARP requests, each for another address.
    ArpRequests,
}

/// Where a flood comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A client network (the client that is not downloading).
    Client,
    /// The uplink (the internet).
    Uplink,
}

/// One flood: a kind, from one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flood {
    /// What it sends.
    pub kind: FloodKind,
    /// From where.
    pub origin: Origin,
}

impl Flood {
    /// Every flood, in the order the soak runs them: the random-source SYN flood comes right
    /// before the own-source one from the same side (the sequence in which a hang was seen).
    pub const ALL: [Flood; 8] = [
        Flood::new(FloodKind::RandomSourceSyn, Origin::Client),
        Flood::new(FloodKind::OwnSourceSyn, Origin::Client),
        Flood::new(FloodKind::SmallUdp, Origin::Client),
        Flood::new(FloodKind::ArpRequests, Origin::Client),
        Flood::new(FloodKind::RandomSourceSyn, Origin::Uplink),
        Flood::new(FloodKind::OwnSourceSyn, Origin::Uplink),
        Flood::new(FloodKind::SmallUdp, Origin::Uplink),
        Flood::new(FloodKind::ArpRequests, Origin::Uplink),
    ];

    /// A flood of `kind` from `origin`.
    pub const fn new(kind: FloodKind, origin: Origin) -> Flood {
        Flood { kind, origin }
    }

    /// Parses a name as [`Flood`]'s `Display` writes it (`own-syn@client`).
    pub fn parse(name: &str) -> Option<Flood> {
        Flood::ALL
            .into_iter()
            .find(|flood| flood.to_string() == name)
    }
}

impl fmt::Display for FloodKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FloodKind::OwnSourceSyn => "own-syn",
            FloodKind::RandomSourceSyn => "random-syn",
            FloodKind::SmallUdp => "udp64",
            FloodKind::ArpRequests => "arp",
        })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Client => "client",
            Origin::Uplink => "uplink",
        })
    }
}

impl fmt::Display for Flood {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.kind, self.origin)
    }
}

/// Longest frame a flood sends (without the FCS).
pub const MAX_FLOOD_FRAME: usize = 64;
/// UDP payload that makes a 64-byte Ethernet frame (14 + 20 + 8 + 18 + 4-byte FCS).
const SMALL_UDP_PAYLOAD: usize = 18;
/// First source port; ports count up from here, then wrap.
const FIRST_PORT: u16 = 1024;
/// Destination ports of SYN floods count up from here (`hping3 -p ++1000`).
const FIRST_DESTINATION_PORT: u16 = 1000;
/// The discard port: where UDP floods go.
const DISCARD_PORT: u16 = 9;

/// The addresses a flood is sent between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodPath {
    /// The sending host's MAC (its tap's).
    pub source_mac: EthernetAddress,
    /// The sending host's own address.
    pub source: Ipv4Address,
    /// The appliance's MAC on the sender's segment.
    pub appliance_mac: EthernetAddress,
    /// Where IP floods go.
    pub target: Ipv4Address,
    /// A port forwarded to a client, if floods should also aim at one.
    pub forwarded_port: Option<u16>,
}

/// The frames of one flood on one path.
#[derive(Debug, Clone, Copy)]
pub struct FloodFrames {
    flood: Flood,
    path: FloodPath,
}

impl FloodFrames {
    /// The frames of `flood` sent along `path`.
    pub fn new(flood: Flood, path: FloodPath) -> FloodFrames {
        FloodFrames { flood, path }
    }

    /// Writes frame number `index` into `buffer` and returns its length.
    pub fn emit(&self, index: u64, buffer: &mut [u8; MAX_FLOOD_FRAME]) -> usize {
        // Well-spread bits from the index: the project's one PRNG, seeded with it.
        let noise = SplitMix64::new(index).next_u64();
        match self.flood.kind {
            FloodKind::OwnSourceSyn => self.syn(index, self.path.source, noise, buffer),
            FloodKind::RandomSourceSyn => {
                self.syn(index, random_source(noise), noise >> 32, buffer)
            }
            FloodKind::SmallUdp => self.small_udp(index, buffer),
            FloodKind::ArpRequests => self.arp_request(index, buffer),
        }
    }

    /// The `index`th source port: counts up through the unprivileged ports.
    fn source_port(index: u64) -> u16 {
        FIRST_PORT + (index % u64::from(u16::MAX - FIRST_PORT + 1)) as u16
    }

    fn syn(&self, index: u64, source: Ipv4Address, seq: u64, buffer: &mut [u8]) -> usize {
        // Destination ports count up once per round of source ports, so the 4-tuple repeats
        // only after tens of millions of SYNs. From the uplink, every other SYN goes to the
        // port forward instead.
        let rounds = index / u64::from(u16::MAX - FIRST_PORT + 1);
        let counted = FIRST_DESTINATION_PORT + (rounds % 1000) as u16;
        let dst_port = match self.path.forwarded_port {
            Some(forwarded) if index % 2 == 0 => forwarded,
            _ => counted,
        };
        let tcp = TcpRepr {
            src_port: FloodFrames::source_port(index),
            dst_port,
            control: TcpControl::Syn,
            seq_number: TcpSeqNumber(seq as u32 as i32),
            ack_number: None,
            window_len: 512,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        let (ip, length) = self.ipv4(source, IpProtocol::Tcp, tcp.buffer_len(), buffer);
        tcp.emit(
            &mut TcpPacket::new_unchecked(&mut ip[..]),
            &IpAddress::Ipv4(source),
            &IpAddress::Ipv4(self.path.target),
            &ChecksumCapabilities::default(),
        );
        length
    }

    fn small_udp(&self, index: u64, buffer: &mut [u8]) -> usize {
        let udp = UdpRepr {
            src_port: FloodFrames::source_port(index),
            dst_port: DISCARD_PORT,
        };
        let source = self.path.source;
        let (ip, length) = self.ipv4(source, IpProtocol::Udp, 8 + SMALL_UDP_PAYLOAD, buffer);
        udp.emit(
            &mut UdpPacket::new_unchecked(&mut ip[..]),
            &IpAddress::Ipv4(source),
            &IpAddress::Ipv4(self.path.target),
            SMALL_UDP_PAYLOAD,
            |payload| {
                let stamp = index.to_be_bytes();
                for (at, byte) in payload.iter_mut().enumerate() {
                    *byte = stamp[at % stamp.len()];
                }
            },
            &ChecksumCapabilities::default(),
        );
        length
    }

    /// Writes the Ethernet and IPv4 headers; returns the IPv4 payload and the frame length.
    fn ipv4<'b>(
        &self,
        source: Ipv4Address,
        protocol: IpProtocol,
        payload_len: usize,
        buffer: &'b mut [u8],
    ) -> (&'b mut [u8], usize) {
        let ethernet = EthernetRepr {
            src_addr: self.path.source_mac,
            dst_addr: self.path.appliance_mac,
            ethertype: EthernetProtocol::Ipv4,
        };
        let ip = Ipv4Repr {
            src_addr: source,
            dst_addr: self.path.target,
            next_header: protocol,
            payload_len,
            hop_limit: 64,
        };
        let length = ethernet.buffer_len() + ip.buffer_len() + payload_len;
        let mut frame = EthernetFrame::new_unchecked(&mut buffer[..length]);
        ethernet.emit(&mut frame);
        let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
        ip.emit(&mut packet, &ChecksumCapabilities::default());
        let header_len = ip.buffer_len();
        let payload = &mut buffer[ethernet.buffer_len() + header_len..length];
        (payload, length)
    }

    fn arp_request(&self, index: u64, buffer: &mut [u8]) -> usize {
        // Every address of the /16 around the sender's network in turn.
        let [a, b, _, _] = self.path.source.octets();
        let host = (index % 65_536) as u16;
        let target = Ipv4Address::new(a, b, (host >> 8) as u8, host as u8);
        let ethernet = EthernetRepr {
            src_addr: self.path.source_mac,
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EthernetProtocol::Arp,
        };
        let arp = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: self.path.source_mac,
            source_protocol_addr: self.path.source,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: target,
        };
        let length = ethernet.buffer_len() + arp.buffer_len();
        let mut frame = EthernetFrame::new_unchecked(&mut buffer[..length]);
        ethernet.emit(&mut frame);
        arp.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
        length
    }
}

/// A source address "from anywhere": random, but never unspecified, loopback, multicast or
/// broadcast (what a spoofing flood would use).
fn random_source(noise: u64) -> Ipv4Address {
    let [a, b, c, d] = (noise as u32).to_be_bytes();
    let first = match a {
        0 | 127 | 224..=255 => a % 100 + 1,
        _ => a,
    };
    Ipv4Address::new(first, b, c, d)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use smoltcp::wire::{TcpPacket, UdpPacket};

    use super::*;

    fn path(forwarded_port: Option<u16>) -> FloodPath {
        FloodPath {
            source_mac: EthernetAddress([0x02, 0, 0, 0, 0, 2]),
            source: Ipv4Address::new(10, 137, 2, 2),
            appliance_mac: EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 2]),
            target: Ipv4Address::new(198, 51, 100, 80),
            forwarded_port,
        }
    }

    /// Parses frame `index` of `flood` with every checksum verified.
    fn ipv4_frame(flood: Flood, path: FloodPath, index: u64) -> (EthernetRepr, Ipv4Repr, Vec<u8>) {
        let mut buffer = [0; MAX_FLOOD_FRAME];
        let length = FloodFrames::new(flood, path).emit(index, &mut buffer);
        let frame = EthernetFrame::new_checked(&buffer[..length]).unwrap();
        let ethernet = EthernetRepr::parse(&frame).unwrap();
        let packet = Ipv4Packet::new_checked(frame.payload()).unwrap();
        let ip = Ipv4Repr::parse(&packet, &ChecksumCapabilities::default()).unwrap();
        (ethernet, ip, packet.payload().to_vec())
    }

    fn syn(flood: Flood, path: FloodPath, index: u64) -> (Ipv4Address, u16, u16, u32) {
        let (ethernet, ip, payload) = ipv4_frame(flood, path, index);
        assert_eq!(ethernet.dst_addr, path.appliance_mac);
        assert_eq!(ethernet.src_addr, path.source_mac);
        assert_eq!(ip.dst_addr, path.target);
        let packet = TcpPacket::new_checked(&payload[..]).unwrap();
        assert!(
            packet.verify_checksum(&IpAddress::Ipv4(ip.src_addr), &IpAddress::Ipv4(ip.dst_addr))
        );
        let tcp = TcpRepr::parse(
            &packet,
            &IpAddress::Ipv4(ip.src_addr),
            &IpAddress::Ipv4(ip.dst_addr),
            &ChecksumCapabilities::default(),
        )
        .unwrap();
        assert_eq!(tcp.control, TcpControl::Syn);
        assert_eq!(tcp.ack_number, None);
        (
            ip.src_addr,
            tcp.src_port,
            tcp.dst_port,
            tcp.seq_number.0 as u32,
        )
    }

    #[test]
    fn own_source_syns_are_valid_new_flows_from_the_senders_address() {
        let flood = Flood::new(FloodKind::OwnSourceSyn, Origin::Client);
        let mut flows = HashSet::new();
        for index in 0..150_000 {
            let (source, src_port, dst_port, _) = syn(flood, path(None), index);
            assert_eq!(source, path(None).source);
            assert!(
                flows.insert((src_port, dst_port)),
                "SYN {index} repeats a flow"
            );
        }
    }

    #[test]
    fn random_source_syns_come_from_many_usable_addresses() {
        let flood = Flood::new(FloodKind::RandomSourceSyn, Origin::Client);
        let sources: HashSet<Ipv4Address> = (0..10_000)
            .map(|index| syn(flood, path(None), index).0)
            .collect();
        assert!(sources.len() > 9_900, "{} distinct sources", sources.len());
        for source in sources {
            assert!(
                !source.is_multicast()
                    && !source.is_broadcast()
                    && !source.is_loopback()
                    && !source.is_unspecified()
            );
        }
    }

    #[test]
    fn from_the_uplink_every_other_syn_aims_at_the_port_forward() {
        let flood = Flood::new(FloodKind::OwnSourceSyn, Origin::Uplink);
        let ports: Vec<u16> = (0..4)
            .map(|index| syn(flood, path(Some(8080)), index).2)
            .collect();
        assert_eq!(ports[0], 8080);
        assert_eq!(ports[2], 8080);
        assert_ne!(ports[1], 8080);
    }

    #[test]
    fn udp_frames_are_64_bytes_on_the_wire_and_each_a_new_flow() {
        let flood = Flood::new(FloodKind::SmallUdp, Origin::Client);
        let mut ports = HashSet::new();
        for index in 0..1000 {
            let (_, ip, payload) = ipv4_frame(flood, path(None), index);
            // 60 bytes sent; the NIC adds the 4-byte FCS.
            assert_eq!(14 + ip.buffer_len() + ip.payload_len + 4, 64);
            let packet = UdpPacket::new_checked(&payload[..]).unwrap();
            assert!(packet
                .verify_checksum(&IpAddress::Ipv4(ip.src_addr), &IpAddress::Ipv4(ip.dst_addr)));
            assert_eq!(packet.dst_port(), DISCARD_PORT);
            assert!(ports.insert(packet.src_port()));
        }
    }

    #[test]
    fn arp_requests_ask_for_every_address_around_the_senders_network() {
        let flood = Flood::new(FloodKind::ArpRequests, Origin::Client);
        let frames = FloodFrames::new(flood, path(None));
        let mut targets = HashSet::new();
        for index in 0..65_536 {
            let mut buffer = [0; MAX_FLOOD_FRAME];
            let length = frames.emit(index, &mut buffer);
            let frame = EthernetFrame::new_checked(&buffer[..length]).unwrap();
            assert_eq!(frame.dst_addr(), EthernetAddress::BROADCAST);
            let arp = ArpRepr::parse(&ArpPacket::new_checked(frame.payload()).unwrap()).unwrap();
            let ArpRepr::EthernetIpv4 {
                operation,
                source_protocol_addr,
                target_protocol_addr,
                ..
            } = arp
            else {
                panic!("not an Ethernet/IPv4 ARP packet")
            };
            assert_eq!(operation, ArpOperation::Request);
            assert_eq!(source_protocol_addr, path(None).source);
            assert_eq!(target_protocol_addr.octets()[..2], [10, 137]);
            targets.insert(target_protocol_addr);
        }
        assert_eq!(targets.len(), 65_536);
    }

    #[test]
    fn flood_names_read_back() {
        for flood in Flood::ALL {
            assert_eq!(Flood::parse(&flood.to_string()), Some(flood));
        }
        assert_eq!(
            Flood::parse("own-syn@client"),
            Some(Flood::new(FloodKind::OwnSourceSyn, Origin::Client))
        );
        assert_eq!(Flood::parse("syn"), None);
    }
}
