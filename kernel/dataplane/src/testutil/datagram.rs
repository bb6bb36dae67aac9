//! IPv4 packets carrying TCP, UDP or ICMP, as owned values: built field by field and emitted
//! with correct checksums for sending, and parsed (every checksum verified) from what the
//! appliance sends back, so that a test can compare what came out with what went in, field
//! by field.
//!
//! The same value type goes both ways: `Ipv4Frame::parse(&frame.emit()) == Ok(frame)`. A
//! received frame whose IPv4, TCP, UDP or ICMP checksum is wrong does not parse: the error
//! says which one, so a bad incremental checksum update in the appliance fails the test that
//! saw it, with the reason.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddrV4;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Message, Icmpv4Packet, IpAddress,
    IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, TcpPacket, TcpSeqNumber, UdpPacket,
    TCP_HEADER_LEN, UDP_HEADER_LEN,
};

/// Length of an IPv4 header without options (the only kind built or accepted here).
pub use smoltcp::wire::IPV4_HEADER_LEN;
/// Length of an ICMP header: type, code, checksum, four type-specific bytes
/// (`Icmpv4Packet::header_len` says so only of a message already written).
pub const ICMP_HEADER_LEN: usize = 8;

/// The IPv4 header fields a forwarding test looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header {
    /// Source address.
    pub src: Ipv4Address,
    /// Destination address.
    pub dst: Ipv4Address,
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub ident: u16,
    /// The don't-fragment flag.
    pub dont_fragment: bool,
}

impl Ipv4Header {
    /// The header most packets have: TTL 64, identification 0, don't-fragment set (what
    /// `Ipv4Repr` writes).
    pub fn new(src: Ipv4Address, dst: Ipv4Address) -> Ipv4Header {
        Ipv4Header {
            src,
            dst,
            ttl: 64,
            ident: 0,
            dont_fragment: true,
        }
    }

    /// A packet with this header, of `protocol`, with room for `payload_len` bytes of
    /// payload (zeros), its header checksum computed.
    pub fn emit(&self, protocol: IpProtocol, payload_len: usize) -> Vec<u8> {
        let repr = Ipv4Repr {
            src_addr: self.src,
            dst_addr: self.dst,
            next_header: protocol,
            payload_len,
            hop_limit: self.ttl,
        };
        let mut bytes = vec![0u8; repr.buffer_len() + payload_len];
        let mut packet = Ipv4Packet::new_unchecked(&mut bytes[..]);
        repr.emit(&mut packet, &ChecksumCapabilities::default());
        packet.set_ident(self.ident);
        packet.set_dont_frag(self.dont_fragment);
        packet.fill_checksum();
        bytes
    }
}

/// TCP header flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpFlags {
    /// SYN.
    pub syn: bool,
    /// ACK (the acknowledgement number is significant).
    pub ack: bool,
    /// RST.
    pub rst: bool,
    /// FIN.
    pub fin: bool,
    /// PSH.
    pub psh: bool,
}

impl TcpFlags {
    /// SYN alone: the first segment of a connection.
    pub const SYN: TcpFlags = TcpFlags {
        syn: true,
        ack: false,
        rst: false,
        fin: false,
        psh: false,
    };
    /// SYN and ACK: the answer to a SYN.
    pub const SYN_ACK: TcpFlags = TcpFlags {
        syn: true,
        ack: true,
        rst: false,
        fin: false,
        psh: false,
    };
    /// ACK alone.
    pub const ACK: TcpFlags = TcpFlags {
        syn: false,
        ack: true,
        rst: false,
        fin: false,
        psh: false,
    };
}

impl TcpFlags {
    /// The flags set in `bits` (see [`crate::packet::tcp_flags`]).
    pub fn from_bits(bits: u8) -> TcpFlags {
        use crate::packet::tcp_flags::*;
        TcpFlags {
            syn: bits & SYN != 0,
            ack: bits & ACK != 0,
            rst: bits & RST != 0,
            fin: bits & FIN != 0,
            psh: bits & PSH != 0,
        }
    }

    /// The flags as bits (see [`crate::packet::tcp_flags`]).
    pub fn bits(&self) -> u8 {
        use crate::packet::tcp_flags::*;
        [
            (self.syn, SYN),
            (self.ack, ACK),
            (self.rst, RST),
            (self.fin, FIN),
            (self.psh, PSH),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .fold(0, |bits, (_, bit)| bits | bit)
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let letters = [
            (self.syn, 'S'),
            (self.ack, '.'),
            (self.rst, 'R'),
            (self.fin, 'F'),
            (self.psh, 'P'),
        ];
        for (set, letter) in letters {
            if set {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

/// A TCP segment (header without checksum, options and payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSegment {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number (meaningful with the ACK flag).
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Receive window.
    pub window: u16,
    /// Raw option bytes (a multiple of four bytes long).
    pub options: Vec<u8>,
    /// Payload.
    pub payload: Vec<u8>,
}

impl TcpSegment {
    /// A SYN from `src_port` to `dst_port` with initial sequence number `seq` and an MSS
    /// option of 1460, like an ordinary client's.
    pub fn syn(src_port: u16, dst_port: u16, seq: u32) -> TcpSegment {
        TcpSegment {
            src_port,
            dst_port,
            seq,
            ack: 0,
            flags: TcpFlags::SYN,
            window: 64_240,
            // MSS 1460 (kind 2, length 4).
            options: vec![2, 4, 0x05, 0xb4],
            payload: Vec::new(),
        }
    }
}

/// A UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpDatagram {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload.
    pub payload: Vec<u8>,
}

/// An ICMP message: the fixed header and everything after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcmpMessage {
    /// Type.
    pub kind: Icmpv4Message,
    /// Code.
    pub code: u8,
    /// Header bytes 4..6: the identifier of an echo, unused (0) in most errors.
    pub ident: u16,
    /// Header bytes 6..8: the sequence number of an echo, the next-hop MTU of a
    /// fragmentation-needed error, otherwise unused (0).
    pub seq_no: u16,
    /// The rest: an echo's data, or an error's quote of the packet that caused it.
    pub body: Vec<u8>,
}

impl IcmpMessage {
    /// The packet an ICMP error quotes (its IPv4 header and the first bytes of its
    /// transport header), parsed; the quoted IPv4 header's checksum is verified.
    pub fn quoted(&self) -> Result<Quoted, String> {
        Quoted::parse(&self.body)
    }
}

/// The beginning of a packet quoted by an ICMP error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quoted {
    /// Its IPv4 header.
    pub header: Ipv4Header,
    /// Its protocol.
    pub protocol: IpProtocol,
    /// The quoted start of its transport header (at least 8 bytes: ports and, for TCP, the
    /// sequence number).
    pub transport: Vec<u8>,
}

impl Quoted {
    fn parse(body: &[u8]) -> Result<Quoted, String> {
        let packet = Ipv4Packet::new_unchecked(body);
        if body.len() < IPV4_HEADER_LEN || usize::from(packet.header_len()) != IPV4_HEADER_LEN {
            return Err(format!(
                "the ICMP error quotes {} bytes, not a 20-byte IPv4 header",
                body.len()
            ));
        }
        if !packet.verify_checksum() {
            return Err("the quoted IPv4 header has a bad checksum".into());
        }
        let transport = body[IPV4_HEADER_LEN..].to_vec();
        if transport.len() < 8 {
            return Err(format!(
                "the ICMP error quotes {} bytes of the transport header, RFC 792 wants 8",
                transport.len()
            ));
        }
        Ok(Quoted {
            header: header_of(&packet),
            protocol: packet.next_header(),
            transport,
        })
    }
}

/// What an IPv4 packet carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// TCP.
    Tcp(TcpSegment),
    /// UDP.
    Udp(UdpDatagram),
    /// ICMP.
    Icmp(IcmpMessage),
}

impl Transport {
    /// The IP protocol number.
    pub fn protocol(&self) -> IpProtocol {
        match self {
            Transport::Tcp(_) => IpProtocol::Tcp,
            Transport::Udp(_) => IpProtocol::Udp,
            Transport::Icmp(_) => IpProtocol::Icmp,
        }
    }

    fn len(&self) -> usize {
        match self {
            Transport::Tcp(tcp) => TCP_HEADER_LEN + tcp.options.len() + tcp.payload.len(),
            Transport::Udp(udp) => UDP_HEADER_LEN + udp.payload.len(),
            Transport::Icmp(icmp) => ICMP_HEADER_LEN + icmp.body.len(),
        }
    }
}

/// An IPv4 packet (no options, not fragmented).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Datagram {
    /// Its header.
    pub header: Ipv4Header,
    /// What it carries.
    pub transport: Transport,
}

impl Ipv4Datagram {
    /// The packet's bytes, every checksum computed.
    pub fn emit(&self) -> Vec<u8> {
        let mut bytes = self
            .header
            .emit(self.transport.protocol(), self.transport.len());
        let mut packet = Ipv4Packet::new_unchecked(&mut bytes[..]);
        let (src, dst) = (
            IpAddress::Ipv4(self.header.src),
            IpAddress::Ipv4(self.header.dst),
        );
        let payload = packet.payload_mut();
        match &self.transport {
            Transport::Tcp(tcp) => emit_tcp(tcp, payload, &src, &dst),
            Transport::Udp(udp) => {
                let mut datagram = UdpPacket::new_unchecked(payload);
                datagram.set_src_port(udp.src_port);
                datagram.set_dst_port(udp.dst_port);
                datagram.set_len((UDP_HEADER_LEN + udp.payload.len()) as u16);
                datagram.payload_mut().copy_from_slice(&udp.payload);
                datagram.fill_checksum(&src, &dst);
            }
            Transport::Icmp(icmp) => {
                let mut message = Icmpv4Packet::new_unchecked(payload);
                message.set_msg_type(icmp.kind);
                message.set_msg_code(icmp.code);
                message.set_echo_ident(icmp.ident);
                message.set_echo_seq_no(icmp.seq_no);
                message.data_mut().copy_from_slice(&icmp.body);
                message.fill_checksum();
            }
        }
        bytes
    }

    /// Parses an IPv4 packet, verifying the header checksum and the transport checksum.
    pub fn parse(bytes: &[u8]) -> Result<Ipv4Datagram, String> {
        let packet = Ipv4Packet::new_checked(bytes)
            .map_err(|_| format!("a truncated IPv4 packet ({} bytes)", bytes.len()))?;
        if packet.version() != 4 || usize::from(packet.header_len()) != IPV4_HEADER_LEN {
            return Err(format!(
                "an IPv4 header with version {} and length {} (expected 4 and 20)",
                packet.version(),
                packet.header_len()
            ));
        }
        if packet.more_frags() || packet.frag_offset() != 0 {
            return Err("a fragment (no test sends packets that need fragmenting)".into());
        }
        if !packet.verify_checksum() {
            return Err(format!(
                "an IPv4 header with a bad checksum {:#06x}",
                packet.checksum()
            ));
        }
        let header = header_of(&packet);
        let (src, dst) = (IpAddress::Ipv4(header.src), IpAddress::Ipv4(header.dst));
        let payload = packet.payload();
        let transport = match packet.next_header() {
            IpProtocol::Tcp => Transport::Tcp(parse_tcp(payload, &src, &dst)?),
            IpProtocol::Udp => Transport::Udp(parse_udp(payload, &src, &dst)?),
            IpProtocol::Icmp => Transport::Icmp(parse_icmp(payload)?),
            other => return Err(format!("IPv4 protocol {other}, not TCP, UDP or ICMP")),
        };
        Ok(Ipv4Datagram { header, transport })
    }

    /// `(source, destination)` as socket addresses, for TCP and UDP.
    pub fn endpoints(&self) -> Option<(SocketAddrV4, SocketAddrV4)> {
        let (src_port, dst_port) = match &self.transport {
            Transport::Tcp(tcp) => (tcp.src_port, tcp.dst_port),
            Transport::Udp(udp) => (udp.src_port, udp.dst_port),
            Transport::Icmp(_) => return None,
        };
        Some((
            SocketAddrV4::new(self.header.src, src_port),
            SocketAddrV4::new(self.header.dst, dst_port),
        ))
    }

    /// The TCP segment, if it carries one.
    pub fn tcp(&self) -> Option<&TcpSegment> {
        match &self.transport {
            Transport::Tcp(tcp) => Some(tcp),
            _ => None,
        }
    }

    /// The TCP segment, if it carries one, to change.
    pub fn tcp_mut(&mut self) -> Option<&mut TcpSegment> {
        match &mut self.transport {
            Transport::Tcp(tcp) => Some(tcp),
            _ => None,
        }
    }

    /// The ICMP message, if it carries one.
    pub fn icmp(&self) -> Option<&IcmpMessage> {
        match &self.transport {
            Transport::Icmp(icmp) => Some(icmp),
            _ => None,
        }
    }
}

impl fmt::Display for Ipv4Datagram {
    /// One line: `tcp 10.0.2.15:40000 -> 198.51.100.80:80 [S] seq 1 ack 0 ttl 63`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = &self.header;
        match &self.transport {
            Transport::Tcp(tcp) => write!(
                f,
                "tcp {}:{} -> {}:{} [{}] seq {} ack {}",
                header.src, tcp.src_port, header.dst, tcp.dst_port, tcp.flags, tcp.seq, tcp.ack
            )?,
            Transport::Udp(udp) => write!(
                f,
                "udp {}:{} -> {}:{} ({} bytes)",
                header.src,
                udp.src_port,
                header.dst,
                udp.dst_port,
                udp.payload.len()
            )?,
            Transport::Icmp(icmp) => write!(
                f,
                "icmp {} -> {} {} code {}",
                header.src, header.dst, icmp.kind, icmp.code
            )?,
        }
        write!(f, " ttl {}", header.ttl)
    }
}

/// An IPv4 packet in an Ethernet frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Frame {
    /// The Ethernet header (its EtherType is IPv4).
    pub ethernet: EthernetRepr,
    /// The packet.
    pub datagram: Ipv4Datagram,
}

impl Ipv4Frame {
    /// The frame's bytes, every checksum computed.
    pub fn emit(&self) -> Vec<u8> {
        let packet = self.datagram.emit();
        let ethernet = EthernetRepr {
            ethertype: EthernetProtocol::Ipv4,
            ..self.ethernet
        };
        let mut bytes = vec![0u8; ethernet.buffer_len() + packet.len()];
        let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
        ethernet.emit(&mut frame);
        frame.payload_mut().copy_from_slice(&packet);
        bytes
    }

    /// Parses a frame; fails for anything but a well-formed IPv4 packet carrying TCP, UDP or
    /// ICMP with correct checksums.
    pub fn parse(bytes: &[u8]) -> Result<Ipv4Frame, String> {
        let frame = EthernetFrame::new_checked(bytes)
            .map_err(|_| format!("a {}-byte frame, shorter than Ethernet's", bytes.len()))?;
        let ethernet =
            EthernetRepr::parse(&frame).map_err(|_| "an unparsable Ethernet header".to_string())?;
        if ethernet.ethertype != EthernetProtocol::Ipv4 {
            return Err(format!("an {} frame, not IPv4", ethernet.ethertype));
        }
        Ok(Ipv4Frame {
            ethernet,
            datagram: Ipv4Datagram::parse(frame.payload())?,
        })
    }
}

impl fmt::Display for Ipv4Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} -> {})",
            self.datagram, self.ethernet.src_addr, self.ethernet.dst_addr
        )
    }
}

/// Every field in which `actual` differs from `expected`, one `field: expected X, got Y`
/// entry each (empty when they are equal).
pub fn differences(expected: &Ipv4Frame, actual: &Ipv4Frame) -> Vec<String> {
    let mut found = Vec::new();
    let mut compare = |field: &str, expected: &dyn fmt::Debug, actual: &dyn fmt::Debug| {
        let (expected, actual) = (format!("{expected:?}"), format!("{actual:?}"));
        if expected != actual {
            found.push(format!("{field}: expected {expected}, got {actual}"));
        }
    };
    compare(
        "ethernet source",
        &expected.ethernet.src_addr,
        &actual.ethernet.src_addr,
    );
    compare(
        "ethernet destination",
        &expected.ethernet.dst_addr,
        &actual.ethernet.dst_addr,
    );
    let (want, got) = (&expected.datagram.header, &actual.datagram.header);
    compare("ip source", &want.src, &got.src);
    compare("ip destination", &want.dst, &got.dst);
    compare("ip ttl", &want.ttl, &got.ttl);
    compare("ip identification", &want.ident, &got.ident);
    compare("ip don't-fragment", &want.dont_fragment, &got.dont_fragment);
    match (&expected.datagram.transport, &actual.datagram.transport) {
        (Transport::Tcp(want), Transport::Tcp(got)) => {
            compare("tcp source port", &want.src_port, &got.src_port);
            compare("tcp destination port", &want.dst_port, &got.dst_port);
            compare("tcp sequence number", &want.seq, &got.seq);
            compare("tcp acknowledgement number", &want.ack, &got.ack);
            compare("tcp flags", &want.flags, &got.flags);
            compare("tcp window", &want.window, &got.window);
            compare("tcp options", &want.options, &got.options);
            compare("tcp payload", &want.payload, &got.payload);
        }
        (Transport::Udp(want), Transport::Udp(got)) => {
            compare("udp source port", &want.src_port, &got.src_port);
            compare("udp destination port", &want.dst_port, &got.dst_port);
            compare("udp payload", &want.payload, &got.payload);
        }
        (Transport::Icmp(want), Transport::Icmp(got)) => {
            compare("icmp type", &want.kind, &got.kind);
            compare("icmp code", &want.code, &got.code);
            compare("icmp header bytes 4..6", &want.ident, &got.ident);
            compare("icmp header bytes 6..8", &want.seq_no, &got.seq_no);
            compare("icmp body", &want.body, &got.body);
        }
        (want, got) => compare("protocol", &want.protocol(), &got.protocol()),
    }
    found
}

/// One line describing any frame, for failure messages.
pub fn describe_frame(bytes: &[u8]) -> String {
    match Ipv4Frame::parse(bytes) {
        Ok(frame) => frame.to_string(),
        Err(reason) => reason,
    }
}

fn header_of(packet: &Ipv4Packet<&[u8]>) -> Ipv4Header {
    Ipv4Header {
        src: packet.src_addr(),
        dst: packet.dst_addr(),
        ttl: packet.hop_limit(),
        ident: packet.ident(),
        dont_fragment: packet.dont_frag(),
    }
}

fn emit_tcp(tcp: &TcpSegment, buffer: &mut [u8], src: &IpAddress, dst: &IpAddress) {
    let mut segment = TcpPacket::new_unchecked(buffer);
    segment.set_src_port(tcp.src_port);
    segment.set_dst_port(tcp.dst_port);
    segment.set_seq_number(TcpSeqNumber(tcp.seq as i32));
    segment.set_ack_number(TcpSeqNumber(tcp.ack as i32));
    segment.set_header_len((TCP_HEADER_LEN + tcp.options.len()) as u8);
    segment.clear_flags();
    segment.set_syn(tcp.flags.syn);
    segment.set_ack(tcp.flags.ack);
    segment.set_rst(tcp.flags.rst);
    segment.set_fin(tcp.flags.fin);
    segment.set_psh(tcp.flags.psh);
    segment.set_window_len(tcp.window);
    segment.set_urgent_at(0);
    segment.options_mut().copy_from_slice(&tcp.options);
    segment.payload_mut().copy_from_slice(&tcp.payload);
    segment.fill_checksum(src, dst);
}

fn parse_tcp(bytes: &[u8], src: &IpAddress, dst: &IpAddress) -> Result<TcpSegment, String> {
    let segment =
        TcpPacket::new_checked(bytes).map_err(|_| "a truncated TCP segment".to_string())?;
    if !segment.verify_checksum(src, dst) {
        return Err(format!(
            "a TCP segment {}:{} -> {}:{} with a bad checksum {:#06x}",
            src,
            segment.src_port(),
            dst,
            segment.dst_port(),
            segment.checksum()
        ));
    }
    Ok(TcpSegment {
        src_port: segment.src_port(),
        dst_port: segment.dst_port(),
        seq: segment.seq_number().0 as u32,
        ack: segment.ack_number().0 as u32,
        flags: TcpFlags {
            syn: segment.syn(),
            ack: segment.ack(),
            rst: segment.rst(),
            fin: segment.fin(),
            psh: segment.psh(),
        },
        window: segment.window_len(),
        options: segment.options().to_vec(),
        payload: segment.payload().to_vec(),
    })
}

fn parse_udp(bytes: &[u8], src: &IpAddress, dst: &IpAddress) -> Result<UdpDatagram, String> {
    let datagram =
        UdpPacket::new_checked(bytes).map_err(|_| "a truncated UDP datagram".to_string())?;
    // A zero checksum means "not computed" (RFC 768); anything else must verify.
    if datagram.checksum() != 0 && !datagram.verify_checksum(src, dst) {
        return Err(format!(
            "a UDP datagram {}:{} -> {}:{} with a bad checksum {:#06x}",
            src,
            datagram.src_port(),
            dst,
            datagram.dst_port(),
            datagram.checksum()
        ));
    }
    Ok(UdpDatagram {
        src_port: datagram.src_port(),
        dst_port: datagram.dst_port(),
        payload: datagram.payload().to_vec(),
    })
}

fn parse_icmp(bytes: &[u8]) -> Result<IcmpMessage, String> {
    let message =
        Icmpv4Packet::new_checked(bytes).map_err(|_| "a truncated ICMP message".to_string())?;
    if !message.verify_checksum() {
        return Err(format!(
            "an ICMP {} with a bad checksum {:#06x}",
            message.msg_type(),
            message.checksum()
        ));
    }
    Ok(IcmpMessage {
        kind: message.msg_type(),
        code: message.msg_code(),
        // Bytes 4..8 exist in every ICMP message (`new_checked` ensured 8 bytes); smoltcp
        // names them after echo's use.
        ident: message.echo_ident(),
        seq_no: message.echo_seq_no(),
        body: bytes[ICMP_HEADER_LEN..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::EthernetAddress;

    fn header() -> Ipv4Header {
        Ipv4Header {
            src: Ipv4Address::new(10, 137, 1, 2),
            dst: Ipv4Address::new(198, 51, 100, 80),
            ttl: 64,
            ident: 0x1234,
            dont_fragment: true,
        }
    }

    fn frame(transport: Transport) -> Ipv4Frame {
        Ipv4Frame {
            ethernet: EthernetRepr {
                src_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
                dst_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
                ethertype: EthernetProtocol::Ipv4,
            },
            datagram: Ipv4Datagram {
                header: header(),
                transport,
            },
        }
    }

    #[test]
    fn tcp_udp_and_icmp_frames_survive_emit_and_parse_unchanged() {
        let mut data = TcpSegment::syn(40000, 80, 7);
        data.flags = TcpFlags {
            psh: true,
            ..TcpFlags::ACK
        };
        data.payload = b"GET / HTTP/1.0\r\n\r\n".to_vec();
        let frames = [
            frame(Transport::Tcp(TcpSegment::syn(40000, 80, 0xfedc_ba98))),
            frame(Transport::Tcp(data)),
            frame(Transport::Udp(UdpDatagram {
                src_port: 40000,
                dst_port: 53,
                payload: b"query".to_vec(),
            })),
            frame(Transport::Icmp(IcmpMessage {
                kind: Icmpv4Message::EchoRequest,
                code: 0,
                ident: 7,
                seq_no: 1,
                body: b"ping".to_vec(),
            })),
        ];
        for frame in frames {
            assert_eq!(Ipv4Frame::parse(&frame.emit()), Ok(frame.clone()));
        }
    }

    #[test]
    fn differences_name_each_field_that_changed() {
        let sent = frame(Transport::Tcp(TcpSegment::syn(40000, 80, 1)));
        assert!(differences(&sent, &sent).is_empty());
        let mut natted = sent.clone();
        natted.datagram.header.src = Ipv4Address::new(10, 0, 2, 15);
        natted.datagram.header.ttl = 63;
        let found = differences(&sent, &natted);
        assert_eq!(
            found,
            [
                "ip source: expected 10.137.1.2, got 10.0.2.15",
                "ip ttl: expected 64, got 63"
            ]
        );
        let udp = frame(Transport::Udp(UdpDatagram {
            src_port: 1,
            dst_port: 2,
            payload: Vec::new(),
        }));
        assert_eq!(
            differences(&sent, &udp),
            ["protocol: expected Tcp, got Udp"]
        );
    }

    #[test]
    fn a_wrong_tcp_checksum_is_named_in_the_error() {
        let mut bytes = frame(Transport::Tcp(TcpSegment::syn(40000, 80, 1))).emit();
        let port_byte = 14 + IPV4_HEADER_LEN + 1;
        bytes[port_byte] ^= 1; // the source port changes, the checksum does not
        let error = Ipv4Frame::parse(&bytes).unwrap_err();
        assert!(
            error.contains("TCP") && error.contains("bad checksum"),
            "{error}"
        );
    }

    #[test]
    fn a_wrong_ipv4_header_checksum_is_named_in_the_error() {
        let mut bytes = frame(Transport::Tcp(TcpSegment::syn(40000, 80, 1))).emit();
        bytes[14 + 8] -= 1; // TTL
        let error = Ipv4Frame::parse(&bytes).unwrap_err();
        assert!(error.contains("IPv4 header with a bad checksum"), "{error}");
    }

    #[test]
    fn an_icmp_error_quote_is_parsed_back_into_the_offending_header() {
        let offending = frame(Transport::Tcp(TcpSegment::syn(40000, 80, 99)));
        let packet = offending.datagram.emit();
        let error = IcmpMessage {
            kind: Icmpv4Message::TimeExceeded,
            code: 0,
            ident: 0,
            seq_no: 0,
            body: packet[..IPV4_HEADER_LEN + 8].to_vec(),
        };
        let quoted = error.quoted().unwrap();
        assert_eq!(quoted.header, header());
        assert_eq!(quoted.protocol, IpProtocol::Tcp);
        assert_eq!(
            quoted.transport,
            packet[IPV4_HEADER_LEN..IPV4_HEADER_LEN + 8]
        );
        let short = IcmpMessage {
            body: packet[..IPV4_HEADER_LEN + 4].to_vec(),
            ..error
        };
        assert!(short.quoted().unwrap_err().contains("RFC 792"));
    }

    #[test]
    fn frames_that_are_not_ipv4_or_are_short_are_errors_not_panics() {
        assert!(Ipv4Frame::parse(&[0u8; 5]).is_err());
        let mut bytes = frame(Transport::Tcp(TcpSegment::syn(1, 2, 3))).emit();
        bytes.truncate(14 + 30);
        assert!(Ipv4Frame::parse(&bytes).is_err());
        let arp = super::super::link::arp_request(
            super::super::link::Station {
                mac: EthernetAddress([2, 0, 0, 0, 0, 2]),
                ip: Ipv4Address::new(10, 137, 1, 2),
            },
            Ipv4Address::new(10, 137, 1, 1),
        );
        assert!(Ipv4Frame::parse(&arp).unwrap_err().contains("not IPv4"));
    }
}
