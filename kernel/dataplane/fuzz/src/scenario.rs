//! What the fuzzer's bytes describe: a [`Scenario`] of [`Step`]s. Every choice is a small
//! pick among the addresses, MACs and ports that matter to the ruleset (hosts of each NIC,
//! the appliance itself, declared clients, remote servers, broadcast) with an escape to any
//! value, so that the fuzzer spends its time on frames the appliance takes seriously.

use arbitrary::Arbitrary;

/// One fuzz input.
#[derive(Arbitrary, Debug, Clone)]
pub struct Scenario {
    /// Which ruleset (modulo the number of rulesets).
    pub ruleset: u8,
    /// A tiny state table (eviction and limits under pressure) instead of the default one.
    pub small_table: bool,
    /// What happens, in order.
    pub steps: Vec<Step>,
}

/// One thing that happens to the appliance.
#[derive(Arbitrary, Debug, Clone)]
pub enum Step {
    /// A host sends a structured IPv4 packet.
    Send {
        /// Ingress NIC (modulo the NIC count).
        nic: u8,
        /// The Ethernet header.
        link: Link,
        /// The packet.
        packet: Packet,
    },
    /// The far side answers a frame the appliance sent earlier (swapped addresses and
    /// ports, the TCP ack following its sequence).
    Reply {
        /// Which earlier output (modulo their count; 0 is the most recent).
        of: u16,
        /// TCP flags of the answer.
        flags: u8,
        /// TCP sequence number of the answer.
        seq: u32,
        /// Payload bytes.
        len: u8,
    },
    /// An ICMP error quoting a frame the appliance sent earlier.
    Error {
        /// Which earlier output (modulo their count; 0 is the most recent).
        of: u16,
        /// Who sends it.
        from: ErrorSender,
        /// Type and code.
        kind: ErrorKind,
        /// Added to a quoted TCP sequence number.
        seq_shift: u32,
        /// Bytes of the quoted payload beyond the first eight.
        extra_quote: u8,
    },
    /// An ARP message.
    Arp {
        /// Ingress NIC.
        nic: u8,
        /// The Ethernet header.
        link: Link,
        /// Reply (else request).
        reply: bool,
        /// Sender hardware address.
        sender_mac: MacPick,
        /// Sender protocol address.
        sender_ip: AddrPick,
        /// Target protocol address.
        target_ip: AddrPick,
    },
    /// A structured packet with its headers broken.
    Broken {
        /// Ingress NIC.
        nic: u8,
        /// The Ethernet header.
        link: Link,
        /// The packet before breaking.
        packet: Packet,
        /// How it is broken.
        breakage: BreakPick,
    },
    /// A structured packet with some bytes flipped anywhere in the frame.
    Flipped {
        /// Ingress NIC.
        nic: u8,
        /// The Ethernet header.
        link: Link,
        /// The packet before flipping.
        packet: Packet,
        /// `(position, xor)` pairs (position modulo the frame's length).
        flips: Vec<(u16, u8)>,
    },
    /// Raw bytes as a frame.
    Raw {
        /// Ingress NIC.
        nic: u8,
        /// The frame.
        bytes: Vec<u8>,
    },
    /// A host sends a structured IPv6 packet.
    Send6 {
        /// Ingress NIC (modulo the NIC count).
        nic: u8,
        /// The Ethernet header.
        link: Link,
        /// The packet.
        packet: Packet6,
    },
    /// A neighbour discovery message (router or neighbour solicitation or advertisement,
    /// redirect), from the uplink's router, a client or a spoofer.
    Nd {
        /// Ingress NIC.
        nic: u8,
        /// The Ethernet header.
        link: Link,
        /// Source address.
        src: Addr6Pick,
        /// Destination address.
        dst: Addr6Pick,
        /// Hop limit 255, as RFC 4861 requires (else 64: must be ignored).
        hop_limit_255: bool,
        /// The message.
        message: NdPick,
    },
    /// The clock moves on by some milliseconds, and the timers run.
    Advance {
        /// Milliseconds.
        millis: u16,
    },
    /// The clock moves on by up to two minutes (expiry), and the timers run.
    Wait {
        /// Seconds (modulo 128, plus one).
        secs: u8,
    },
}

/// An Ethernet header.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Link {
    /// Source MAC.
    pub src: MacPick,
    /// Destination MAC.
    pub dst: LinkDst,
}

/// An Ethernet destination.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum LinkDst {
    /// The appliance's MAC on the ingress NIC.
    Appliance,
    /// ff:ff:ff:ff:ff:ff.
    Broadcast,
    /// A multicast MAC.
    Multicast,
    /// Any MAC.
    Other(MacPick),
}

/// A MAC address.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum MacPick {
    /// The MAC of host `n` of the ingress NIC (its own, if the host is honest).
    Host(u8),
    /// The appliance's MAC on NIC `n`.
    Appliance(u8),
    /// ff:ff:ff:ff:ff:ff.
    Broadcast,
    /// 01:00:5e:00:00:01.
    Multicast,
    /// 00:00:00:00:00:00.
    Zero,
    /// Any MAC.
    Any([u8; 6]),
}

/// An IPv4 address.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum AddrPick {
    /// Host `n` of the ingress NIC's network (declared clients among them).
    Local(u8),
    /// Host `h` of NIC `nic`'s network.
    OnNic(u8, u8),
    /// A server beyond the uplink's gateway.
    Remote(u8),
    /// The appliance's address on NIC `n`.
    Appliance(u8),
    /// 255.255.255.255.
    Broadcast,
    /// The directed broadcast of NIC `n`'s network.
    Directed(u8),
    /// Any address.
    Any(u32),
}

/// A port.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum PortPick {
    /// One the rulesets name (modulo their count).
    Known(u8),
    /// Any port.
    Any(u16),
}

/// An IPv4 packet.
#[derive(Arbitrary, Debug, Clone)]
pub struct Packet {
    /// Source address.
    pub src: AddrPick,
    /// Destination address.
    pub dst: AddrPick,
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub ident: u16,
    /// Don't-fragment flag (unfragmented packets only).
    pub dont_fragment: bool,
    /// IP options.
    pub options: Option<OptionsPick>,
    /// Fragmentation.
    pub fragment: FragmentPick,
    /// The transport layer.
    pub transport: TransportPick,
}

/// IPv4 options.
#[derive(Arbitrary, Debug, Clone)]
pub enum OptionsPick {
    /// Loose source route via an address.
    LooseSourceRoute(AddrPick),
    /// Strict source route via an address.
    StrictSourceRoute(AddrPick),
    /// Record route (room for two hops).
    RecordRoute,
    /// Router alert.
    RouterAlert,
    /// No-operation padding only.
    Nops,
    /// Any bytes (up to 40).
    Raw(Vec<u8>),
}

/// How a packet is fragmented.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum FragmentPick {
    /// Not at all.
    Whole,
    /// The first fragment, cut after `words` eight-byte units of payload.
    First {
        /// Payload carried, in eight-byte units (at least one).
        words: u8,
    },
    /// Any piece: payload from `from` units on, `len` units, claiming offset `offset`
    /// units (which may disagree with `from`, overlap, or run past 64 KiB).
    Piece {
        /// First payload unit carried.
        from: u8,
        /// Units carried (0 makes an empty fragment).
        len: u8,
        /// Claimed offset in eight-byte units (13 bits).
        offset: u16,
        /// More-fragments flag.
        more: bool,
    },
}

/// The transport layer of a packet.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum TransportPick {
    /// A TCP segment.
    Tcp {
        /// Source port.
        src_port: PortPick,
        /// Destination port.
        dst_port: PortPick,
        /// Sequence number.
        seq: u32,
        /// Acknowledgement number.
        ack: u32,
        /// Flags (any combination: SYN+FIN, null, Xmas...).
        flags: u8,
        /// Payload bytes.
        len: u8,
    },
    /// A UDP datagram.
    Udp {
        /// Source port.
        src_port: PortPick,
        /// Destination port.
        dst_port: PortPick,
        /// Payload bytes.
        len: u8,
    },
    /// An ICMP echo request or reply.
    Echo {
        /// Request (else reply).
        request: bool,
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
    },
    /// Any ICMP message (errors quote zeros).
    Icmp {
        /// Type.
        icmp_type: u8,
        /// Code.
        code: u8,
        /// The four type-specific bytes.
        rest: [u8; 4],
        /// Body bytes.
        len: u8,
    },
    /// An SCTP packet with one chunk.
    Sctp {
        /// Source port.
        src_port: PortPick,
        /// Destination port.
        dst_port: PortPick,
        /// Verification tag.
        vtag: u32,
        /// Chunk type (INIT is 1).
        chunk: u8,
    },
    /// Another protocol with a payload of zeros.
    Other {
        /// Protocol number.
        protocol: u8,
        /// Payload bytes.
        len: u8,
    },
}

/// Who sends an ICMP error about an earlier output.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum ErrorSender {
    /// The host the output was addressed to.
    Destination,
    /// The output NIC's gateway (a router on the path).
    Gateway,
    /// Any address (a spoofer, another client).
    Other(AddrPick),
}

/// The type and code of an ICMP error.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum ErrorKind {
    /// Destination unreachable with `code`.
    Unreachable(u8),
    /// Fragmentation needed, with a next-hop MTU.
    FragmentationNeeded(u16),
    /// Time exceeded in transit.
    TimeExceeded,
    /// Parameter problem.
    ParameterProblem,
    /// Source quench (deprecated).
    SourceQuench,
}

/// How a packet's headers are broken.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum BreakPick {
    /// Header length field of `n` words.
    HeaderWords(u8),
    /// Total length field of `n` bytes.
    TotalLength(u16),
    /// Wrong IPv4 header checksum.
    HeaderChecksum,
    /// Wrong transport checksum.
    TransportChecksum,
    /// Cut to `n` bytes.
    Truncated(u8),
}

/// An IPv6 address.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Addr6Pick {
    /// IPv6 host `n` of the ingress NIC (router, declared clients, prefix, link-local).
    Local(u8),
    /// IPv6 host `h` of NIC `nic`.
    OnNic(u8, u8),
    /// A server beyond the uplink's router.
    Remote(u8),
    /// The appliance's (global or unique local) address on NIC `n`.
    Appliance(u8),
    /// The appliance's link-local address on NIC `n`.
    ApplianceLinkLocal(u8),
    /// ff02::1.
    AllNodes,
    /// ff02::2.
    AllRouters,
    /// The solicited-node group of the appliance's address on the ingress NIC.
    SolicitedNode,
    /// A multicast group beyond the link (ff0e::1).
    GlobalMulticast,
    /// The unspecified address.
    Unspecified,
    /// Any address.
    Any([u8; 16]),
}

/// An IPv6 extension header.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum ExtensionPick {
    /// Hop-by-hop options.
    HopByHop,
    /// Destination options.
    DestinationOptions,
    /// A routing header (type 0 is deprecated, RFC 5095).
    Routing {
        /// Routing type.
        routing_type: u8,
        /// Segments left.
        segments_left: u8,
    },
    /// A fragment header inside the chain (an atomic fragment, or a nested one).
    Fragment {
        /// Offset in eight-byte units (13 bits).
        offset: u16,
        /// More fragments.
        more: bool,
        /// Identification.
        ident: u32,
    },
}

/// An IPv6 packet.
#[derive(Arbitrary, Debug, Clone)]
pub struct Packet6 {
    /// Source address.
    pub src: Addr6Pick,
    /// Destination address.
    pub dst: Addr6Pick,
    /// Hop limit.
    pub hop_limit: u8,
    /// Extension headers before the upper-layer header, in order (up to 16: longer than
    /// the appliance's bound).
    pub extensions: Vec<ExtensionPick>,
    /// Fragmentation of everything after the IPv6 header (a fragment header first, then
    /// the piece).
    pub fragment: FragmentPick,
    /// Fragment identification.
    pub ident: u32,
    /// The upper layer (ICMP picks are ICMPv6; SCTP keeps its checksum).
    pub transport: TransportPick,
}

/// A neighbour discovery message.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum NdPick {
    /// A router solicitation.
    RouterSolicit {
        /// Source link-layer address option.
        lladdr: Option<MacPick>,
    },
    /// A router advertisement.
    RouterAdvert {
        /// Router lifetime in seconds (0: not a default router).
        lifetime: u16,
        /// A prefix information option.
        prefix: Option<PrefixPick>,
        /// An MTU option.
        mtu: Option<u16>,
        /// Source link-layer address option.
        lladdr: Option<MacPick>,
    },
    /// A neighbour solicitation.
    NeighborSolicit {
        /// Target address.
        target: Addr6Pick,
        /// Source link-layer address option.
        lladdr: Option<MacPick>,
    },
    /// A neighbour advertisement.
    NeighborAdvert {
        /// Target address (the address claimed).
        target: Addr6Pick,
        /// Solicited flag.
        solicited: bool,
        /// Override flag.
        override_: bool,
        /// Router flag.
        router: bool,
        /// Target link-layer address option.
        lladdr: Option<MacPick>,
    },
    /// A redirect.
    Redirect {
        /// Better first hop.
        target: Addr6Pick,
        /// Destination redirected.
        dest: Addr6Pick,
    },
}

/// A prefix information option.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct PrefixPick {
    /// The prefix: NIC `n`'s (modulo the NIC count), or any.
    pub prefix: Prefix6Pick,
    /// On-link flag.
    pub on_link: bool,
    /// Autonomous (SLAAC) flag.
    pub autonomous: bool,
    /// Valid lifetime, seconds.
    pub valid: u32,
    /// Preferred lifetime, seconds.
    pub preferred: u32,
}

/// Which prefix an advertisement carries.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Prefix6Pick {
    /// NIC `n`'s prefix (for the uplink with SLAAC: the one its router advertises).
    OfNic(u8),
    /// Any prefix of any length.
    Any([u8; 16], u8),
}
