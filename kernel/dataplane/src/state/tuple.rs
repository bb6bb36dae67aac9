//! [`FlowTuple`]: what identifies a flow in one direction, and [`Direction`].

use smoltcp::wire::{IpAddress, IpProtocol};

use crate::packet::{IcmpSummary, IpSummary, QuotedPacket, Transport};
use crate::sctp;

/// Which way an ICMP echo packet goes. Part of an echo flow's tuple, so that an echo
/// *request* from the far side never matches the state of a ping going the other way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Echo {
    /// An echo request (type 8).
    Request,
    /// An echo reply (type 0).
    Reply,
}

impl Echo {
    fn flipped(self) -> Echo {
        match self {
            Echo::Request => Echo::Reply,
            Echo::Reply => Echo::Request,
        }
    }
}

/// The identity of a flow in one direction: protocol, addresses, and ports.
///
/// - TCP, UDP and SCTP: the ports.
/// - ICMP echo: the identifier in both port fields, and [`FlowTuple::echo`] saying whether
///   this direction carries requests or replies.
/// - Anything else (other protocols, ICMP messages that are neither echo nor error):
///   ports zero; the flow is identified by its addresses and protocol alone.
///
/// [`FlowTuple::reversed`] is the tuple the other direction's packets carry, which is why
/// one flow is found from either side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowTuple {
    /// IP protocol.
    pub protocol: IpProtocol,
    /// Source address (both addresses of a tuple are of one family).
    pub src: IpAddress,
    /// Destination address.
    pub dst: IpAddress,
    /// Source port (ICMP echo: the identifier).
    pub src_port: u16,
    /// Destination port (ICMP echo: the identifier).
    pub dst_port: u16,
    /// For ICMP echo, which kind of echo message travels this way; `None` otherwise.
    pub echo: Option<Echo>,
}

impl FlowTuple {
    /// The tuple of a packet, or `None` for packets that cannot be tracked by themselves:
    /// fragments after the first (no transport header) and ICMP errors (they belong to the
    /// flow they quote, see [`FlowTuple::quoted_flow`]).
    pub fn of(summary: &IpSummary) -> Option<FlowTuple> {
        let (src_port, dst_port, echo) = match summary.transport {
            Transport::Tcp(tcp) => (tcp.src_port, tcp.dst_port, None),
            Transport::Udp { src_port, dst_port } | Transport::Sctp { src_port, dst_port } => {
                (src_port, dst_port, None)
            }
            Transport::Icmp(IcmpSummary::Echo { request, ident }) => (
                ident,
                ident,
                Some(if request { Echo::Request } else { Echo::Reply }),
            ),
            Transport::Icmp(IcmpSummary::Other { .. }) | Transport::Other => (0, 0, None),
            Transport::Icmp(IcmpSummary::Error { .. }) | Transport::NonFirstFragment => {
                return None
            }
        };
        Some(FlowTuple {
            protocol: summary.protocol,
            src: summary.src,
            dst: summary.dst,
            src_port,
            dst_port,
            echo,
        })
    }

    /// The tuple of the packet quoted in an ICMP error, when the quote holds its ports (or
    /// echo identifier). A quoted ICMP message is taken to be an echo *request*: errors are
    /// about requests in practice, and the quote summary does not say which it was.
    pub fn quoted_flow(quoted: &QuotedPacket) -> Option<FlowTuple> {
        let (src_port, dst_port) = (quoted.src_port?, quoted.dst_port?);
        let echo = (quoted.protocol == IpProtocol::Icmp).then_some(Echo::Request);
        Some(FlowTuple {
            protocol: quoted.protocol,
            src: quoted.src,
            dst: quoted.dst,
            src_port,
            dst_port,
            echo,
        })
    }

    /// The tuple of the other direction: addresses and ports swapped, echo requests
    /// answered by replies.
    pub fn reversed(&self) -> FlowTuple {
        FlowTuple {
            protocol: self.protocol,
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
            echo: self.echo.map(Echo::flipped),
        }
    }

    /// This tuple with a new source address and port (identifier for ICMP echo).
    pub fn with_source(&self, addr: IpAddress, port: u16) -> FlowTuple {
        let mut t = FlowTuple {
            src: addr,
            src_port: port,
            ..*self
        };
        if t.echo.is_some() {
            t.dst_port = port;
        }
        t
    }

    /// This tuple with a new destination address and port (identifier for ICMP echo).
    pub fn with_destination(&self, addr: IpAddress, port: u16) -> FlowTuple {
        let mut t = FlowTuple {
            dst: addr,
            dst_port: port,
            ..*self
        };
        if t.echo.is_some() {
            t.src_port = port;
        }
        t
    }

    /// Whether NAT may give the flow another source port (TCP, UDP) or echo identifier.
    /// SCTP flows keep their ports: SCTP's CRC32c covers them (see [`crate::sctp`]).
    pub fn ports_remappable(&self) -> bool {
        matches!(self.protocol, IpProtocol::Tcp | IpProtocol::Udp) || self.echo.is_some()
    }

    /// The tuple as 38 bytes, for hashing: IPv4 addresses mapped into IPv6
    /// (`::ffff:a.b.c.d`), so that the two families never share a key.
    pub(crate) fn to_bytes(self) -> [u8; 38] {
        let mut b = [0u8; 38];
        b[0] = self.protocol.into();
        b[1] = match self.echo {
            None => 0,
            Some(Echo::Request) => 1,
            Some(Echo::Reply) => 2,
        };
        b[2..18].copy_from_slice(&address_bytes(self.src));
        b[18..34].copy_from_slice(&address_bytes(self.dst));
        b[34..36].copy_from_slice(&self.src_port.to_be_bytes());
        b[36..38].copy_from_slice(&self.dst_port.to_be_bytes());
        b
    }
}

/// An address as 16 bytes: IPv6 as itself, IPv4 mapped (`::ffff:a.b.c.d`).
fn address_bytes(addr: IpAddress) -> [u8; 16] {
    match addr {
        IpAddress::Ipv4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddress::Ipv6(v6) => v6.octets(),
    }
}

/// An address and port as written: `a.b.c.d:port`, or `[v6]:port`.
pub struct Endpoint(pub IpAddress, pub u16);

impl core::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            IpAddress::Ipv4(a) => write!(f, "{a}:{}", self.1),
            IpAddress::Ipv6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}

impl core::fmt::Display for FlowTuple {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match (self.protocol, self.echo) {
            (_, Some(echo)) => {
                let kind = if echo == Echo::Request {
                    "echo-request"
                } else {
                    "echo-reply"
                };
                write!(
                    f,
                    "{} {} -> {} {kind} id {}",
                    if self.protocol == IpProtocol::Icmpv6 {
                        "icmp6"
                    } else {
                        "icmp"
                    },
                    self.src,
                    self.dst,
                    self.src_port
                )
            }
            (IpProtocol::Tcp, None) => {
                write!(
                    f,
                    "tcp {} -> {}",
                    Endpoint(self.src, self.src_port),
                    Endpoint(self.dst, self.dst_port)
                )
            }
            (IpProtocol::Udp, None) => {
                write!(
                    f,
                    "udp {} -> {}",
                    Endpoint(self.src, self.src_port),
                    Endpoint(self.dst, self.dst_port)
                )
            }
            (sctp::PROTOCOL, None) => {
                write!(
                    f,
                    "sctp {} -> {}",
                    Endpoint(self.src, self.src_port),
                    Endpoint(self.dst, self.dst_port)
                )
            }
            (protocol, None) => write!(
                f,
                "proto {} {} -> {}",
                u8::from(protocol),
                self.src,
                self.dst
            ),
        }
    }
}

/// Which way a packet travels relative to the packet that created its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The same way as the first packet (from the initiator).
    Original,
    /// The opposite way (from the responder).
    Reply,
}

impl Direction {
    /// The other direction.
    pub fn opposite(self) -> Direction {
        match self {
            Direction::Original => Direction::Reply,
            Direction::Reply => Direction::Original,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::packets;

    fn tuple(bytes: &[u8]) -> Option<FlowTuple> {
        FlowTuple::of(&IpSummary::parse(bytes).unwrap())
    }

    const CLIENT: [u8; 4] = [10, 137, 1, 10];
    const SERVER: [u8; 4] = [1, 1, 1, 1];

    #[test]
    fn tcp_tuple_reverses_into_the_reply_tuple() {
        let syn = tuple(&packets::tcp_syn(CLIENT, 40000, SERVER, 443)).unwrap();
        let synack = tuple(&packets::tcp(
            (SERVER, 443),
            (CLIENT, 40000),
            (5, 1001, 0x12),
            b"",
        ))
        .unwrap();
        assert_eq!(syn.reversed(), synack);
        assert_eq!(synack.reversed(), syn);
    }

    /// The tuple of an echo request (or reply) with identifier 7.
    fn echo(src: [u8; 4], dst: [u8; 4], request: bool) -> FlowTuple {
        tuple(&packets::icmp_echo(src, dst, request, 7, 1, b"")).unwrap()
    }

    #[test]
    fn echo_request_from_the_far_side_is_not_the_reply_of_a_ping() {
        let (ping, pong) = (echo(CLIENT, SERVER, true), echo(SERVER, CLIENT, false));
        let their_ping = echo(SERVER, CLIENT, true);
        assert_eq!(ping.reversed(), pong);
        assert_ne!(ping.reversed(), their_ping);
        assert_ne!(ping.reversed().to_bytes(), their_ping.to_bytes());
    }

    #[test]
    fn icmp_errors_and_later_fragments_have_no_tuple_of_their_own() {
        let inner = packets::udp(CLIENT, 40000, SERVER, 53, b"q");
        let error = packets::icmp_error(SERVER, CLIENT, 3, 3, &inner);
        assert_eq!(tuple(&error), None);
        let mut fragment = packets::udp(CLIENT, 5353, SERVER, 53, &[0; 64]);
        packets::set_fragment(&mut fragment, false, 1480);
        assert_eq!(tuple(&fragment), None);
    }

    #[test]
    fn sctp_tuples_carry_their_ports_and_keep_them_through_nat() {
        let init = tuple(&packets::sctp_init(CLIENT, 40000, SERVER, 9999)).unwrap();
        assert_eq!((init.src_port, init.dst_port), (40000, 9999));
        assert!(!init.ports_remappable());
        assert_eq!(init.to_string(), "sctp 10.137.1.10:40000 -> 1.1.1.1:9999");
    }

    #[test]
    fn echo_source_rewrite_moves_the_identifier_in_both_port_fields() {
        let ping = echo(CLIENT, SERVER, true);
        let natted = ping.with_source(smoltcp::wire::Ipv4Address::new(10, 0, 2, 15).into(), 9000);
        assert_eq!((natted.src_port, natted.dst_port), (9000, 9000));
        assert_eq!(
            natted.reversed().with_destination(ping.src, 7),
            ping.reversed()
        );
    }
}
