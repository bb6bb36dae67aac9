//! The invariants every frame out of the appliance is held to (see the crate
//! documentation), and the little the oracle remembers to check them: the flows the policy
//! opened, the frames the appliance sent, the first fragments it forwarded.
//!
//! Packets are read here with `smoltcp::wire` directly, not with the data plane's own
//! parser: the oracle must not share the code it checks.

use std::collections::HashSet;

use dataplane::appliance::{Fate, Trace};
use dataplane::arp;
use dataplane::ndp::address::{is_link_local, multicast_mac};
use dataplane::policy::{ip_to_flow_addr, ipv4_to_flow_addr, reference, Action, Ipv6Config};
use dataplane::testutil::datagram::describe_frame;
use dataplane::testutil::packets::checksums_valid;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, Icmpv6Packet, IpProtocol, Ipv4Address, Ipv4Packet,
    Ipv6Address, Ipv6Cidr, Ipv6ExtHeader, Ipv6FragmentHeader, Ipv6Packet, Ipv6RoutingHeader,
    TcpPacket, UdpPacket, IPV6_HEADER_LEN,
};

use crate::world::{appliance_mac, World};

/// SCTP's protocol number.
const SCTP_PROTOCOL: u8 = 132;
/// Frames kept for replies and errors to refer to.
const HISTORY: usize = 256;

/// `(protocol, source, source port, destination, destination port)`, the addresses in the
/// policy's flow address space (IPv4-mapped, as the data plane's dual-stack traces and
/// keys give them); ports are the echo identifier twice for ICMP echo, zeros where a
/// protocol has none (or a fragment after the first carries none).
type Tuple = (u8, u128, u16, u128, u16);

fn reversed((protocol, src, sport, dst, dport): Tuple) -> Tuple {
    (protocol, dst, dport, src, sport)
}

/// ICMP types that are errors (quote the packet they are about).
fn is_icmp_error(icmp_type: u8) -> bool {
    matches!(icmp_type, 3 | 4 | 5 | 11 | 12)
}

/// ICMPv6 types that are errors (destination unreachable, packet too big, time
/// exceeded, parameter problem).
fn is_icmp6_error(icmp_type: u8) -> bool {
    matches!(icmp_type, 1..=4)
}

/// ICMPv6 echo request and reply, router advertisement, neighbour advertisement.
const ECHO_REQUEST6: u8 = 128;
const ECHO_REPLY6: u8 = 129;
const ROUTER_SOLICIT: u8 = 133;
const ROUTER_ADVERT: u8 = 134;
const REDIRECT: u8 = 137;
const NEIGHBOR_ADVERT: u8 = 136;
/// Extension headers walked before giving up (far more than any sane chain).
const MAX_WALK: usize = 64;

/// What the oracle's own walk of an IPv6 extension-header chain found.
#[derive(Clone, Copy, Debug, Default)]
struct Chain {
    /// The header after the chain (the upper layer, or what follows a later fragment's
    /// fragment header).
    protocol: u8,
    /// Where that header starts, in the bytes after the IPv6 header.
    upper_at: usize,
    /// `(offset in bytes, more fragments, identification)` of a fragment header.
    fragment: Option<(u16, bool, u32)>,
    /// A routing header with segments left (the upper-layer checksum is then over another
    /// destination).
    routed: bool,
    /// The chain ended inside the bytes (else truncated, or longer than [`MAX_WALK`]).
    complete: bool,
}

/// Walks the extension headers of `bytes` (what follows an IPv6 header whose next header
/// is `first`), with `smoltcp::wire`, up to the upper layer or a later fragment.
fn walk6(first: IpProtocol, bytes: &[u8]) -> Chain {
    let mut chain = Chain::default();
    let mut next = first;
    for _ in 0..MAX_WALK {
        let rest = bytes.get(chain.upper_at..).unwrap_or(&[]);
        match next {
            IpProtocol::Ipv6Frag => {
                let (Some(head), Some(body)) = (rest.first(), rest.get(2..8)) else {
                    return chain;
                };
                let fragment = Ipv6FragmentHeader::new_unchecked(body);
                chain.fragment = Some((
                    fragment.frag_offset() * 8,
                    fragment.more_frags(),
                    fragment.ident(),
                ));
                next = IpProtocol::from(*head);
                chain.upper_at += 8;
                if fragment.frag_offset() != 0 {
                    break;
                }
            }
            IpProtocol::HopByHop | IpProtocol::Ipv6Opts | IpProtocol::Ipv6Route => {
                let Ok(ext) = Ipv6ExtHeader::new_checked(rest) else {
                    return chain;
                };
                if next == IpProtocol::Ipv6Route {
                    if let Ok(routing) = Ipv6RoutingHeader::new_checked(ext.payload()) {
                        chain.routed |= routing.segments_left() != 0;
                    }
                }
                next = ext.next_header();
                chain.upper_at += (usize::from(ext.header_len()) + 1) * 8;
            }
            _ => break,
        }
    }
    chain.protocol = u8::from(next);
    chain.complete = !matches!(
        next,
        IpProtocol::HopByHop | IpProtocol::Ipv6Opts | IpProtocol::Ipv6Route
    ) && (chain.upper_at <= bytes.len());
    chain
}

/// Whether flow address `addr` is an IPv4 address (mapped into `::ffff:0:0/96`).
fn is_ipv4_mapped(addr: u128) -> bool {
    addr >> 32 == 0xffff
}

/// Key of a fragmented datagram: `(source, destination, protocol, identification)`
/// (protocol 0 for IPv6, whose later fragments do not name the upper layer).
type FragmentKey = (u128, u128, u8, u32);

/// A forwarded or sent IP packet as the oracle reads it, either family.
struct View<'a> {
    /// Its tuple (for IPv6, the protocol and ports after the extension chain).
    tuple: Tuple,
    /// `(first fragment, key)` if it is a fragment.
    fragment: Option<(bool, FragmentKey)>,
    /// The quote of an ICMP or ICMPv6 error, and whether it is IPv6.
    error_quote: Option<(&'a [u8], bool)>,
    /// The ICMPv6 type of a whole (or first-fragment) ICMPv6 packet.
    icmp6_type: Option<u8>,
}

/// Reads IPv4 packet bytes `bytes` (checked) as a [`View`].
fn view4<'a>(ip: &Ipv4Packet<&'a [u8]>) -> View<'a> {
    let tuple = tuple_of(ip);
    let fragment = (ip.more_frags() || ip.frag_offset() != 0).then(|| {
        (
            ip.frag_offset() == 0,
            (tuple.1, tuple.3, tuple.0, u32::from(ip.ident())),
        )
    });
    let payload = ip.payload();
    let error_quote = (ip.next_header() == IpProtocol::Icmp
        && ip.frag_offset() == 0
        && payload.first().is_some_and(|&t| is_icmp_error(t)))
    .then(|| (payload.get(8..).unwrap_or(&[]), false));
    View {
        tuple,
        fragment,
        error_quote,
        icmp6_type: None,
    }
}

/// Reads an IPv6 packet's bytes (header and whatever follows, possibly a truncated quote)
/// as a [`View`]; `None` when shorter than a header.
fn view6(bytes: &[u8]) -> Option<View<'_>> {
    if bytes.len() < IPV6_HEADER_LEN {
        return None;
    }
    let ip = Ipv6Packet::new_unchecked(bytes);
    let end = (IPV6_HEADER_LEN + usize::from(ip.payload_len())).min(bytes.len());
    let after = &bytes[IPV6_HEADER_LEN..end];
    let chain = walk6(ip.next_header(), after);
    let (src, dst) = (ip.src_addr().to_bits(), ip.dst_addr().to_bits());
    let upper = after.get(chain.upper_at..).unwrap_or(&[]);
    let later = chain.fragment.is_some_and(|(offset, _, _)| offset != 0);
    let word = |at: usize| match (upper.get(at), upper.get(at + 1)) {
        (Some(&a), Some(&b)) => u16::from_be_bytes([a, b]),
        _ => 0,
    };
    let ports = match chain.protocol {
        _ if later => (0, 0),
        6 | 17 | SCTP_PROTOCOL => (word(0), word(2)),
        58 if matches!(upper.first(), Some(&ECHO_REQUEST6) | Some(&ECHO_REPLY6)) => {
            (word(4), word(4))
        }
        _ => (0, 0),
    };
    let fragment = chain
        .fragment
        .filter(|&(offset, more, _)| offset != 0 || more)
        .map(|(offset, _, ident)| (offset == 0, (src, dst, 0, ident)));
    let error_quote =
        (!later && chain.protocol == 58 && upper.first().is_some_and(|&t| is_icmp6_error(t)))
            .then(|| (upper.get(8..).unwrap_or(&[]), true));
    Some(View {
        tuple: (chain.protocol, src, ports.0, dst, ports.1),
        fragment,
        error_quote,
        icmp6_type: (!later && chain.protocol == 58)
            .then(|| upper.first().copied())
            .flatten(),
    })
}

/// The [`View`] of the IP packet in Ethernet payload `payload` of `ethertype`.
fn view_of(ethertype: EthernetProtocol, payload: &[u8]) -> Option<View<'_>> {
    match ethertype {
        EthernetProtocol::Ipv4 => Ipv4Packet::new_checked(payload).ok().map(|ip| view4(&ip)),
        EthernetProtocol::Ipv6 => {
            Ipv6Packet::new_checked(payload).ok()?;
            view6(payload)
        }
        _ => None,
    }
}

/// Whether the upper-layer checksum of a whole IPv6 packet verifies (behind any
/// extension chain; a packet whose routing header has segments left is not checked: its
/// pseudo-header names the final destination).
fn checksums_valid6(ip: &Ipv6Packet<&[u8]>) -> bool {
    let after = ip.payload();
    let chain = walk6(ip.next_header(), after);
    if chain.routed || !chain.complete {
        return true;
    }
    let upper = &after[chain.upper_at..];
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    match chain.protocol {
        6 => {
            TcpPacket::new_checked(upper).is_ok_and(|t| t.verify_checksum(&src.into(), &dst.into()))
        }
        17 => {
            UdpPacket::new_checked(upper).is_ok_and(|u| u.verify_checksum(&src.into(), &dst.into()))
        }
        58 => Icmpv6Packet::new_checked(upper).is_ok_and(|i| i.verify_checksum(&src, &dst)),
        _ => true,
    }
}

/// The tuple of IPv4 packet `ip` (which must be whole enough to read).
fn tuple_of(ip: &Ipv4Packet<&[u8]>) -> Tuple {
    tuple_from(ip, ip.payload())
}

/// The tuple of the packet quoted in an ICMP (`v6`: ICMPv6) error: its header (checked
/// to be there) and as much of its payload as was quoted.
fn quoted_tuple(quote: &[u8], v6: bool) -> Option<Tuple> {
    if v6 {
        return view6(quote).map(|v| v.tuple);
    }
    if quote.len() < 20 {
        return None;
    }
    let ip = Ipv4Packet::new_unchecked(quote);
    let header_len = usize::from(ip.header_len());
    if header_len < 20 || header_len > quote.len() {
        return None;
    }
    Some(tuple_from(&ip, &quote[header_len..]))
}

fn tuple_from(ip: &Ipv4Packet<&[u8]>, payload: &[u8]) -> Tuple {
    let protocol = u8::from(ip.next_header());
    let (src, dst) = (
        ipv4_to_flow_addr(ip.src_addr().to_bits()),
        ipv4_to_flow_addr(ip.dst_addr().to_bits()),
    );
    let word = |at: usize| match (payload.get(at), payload.get(at + 1)) {
        (Some(&a), Some(&b)) => u16::from_be_bytes([a, b]),
        _ => 0,
    };
    let ports = if ip.frag_offset() != 0 {
        (0, 0)
    } else {
        match ip.next_header() {
            IpProtocol::Tcp | IpProtocol::Udp => (word(0), word(2)),
            IpProtocol::Icmp if matches!(payload.first(), Some(0) | Some(8)) => (word(4), word(4)),
            IpProtocol::Unknown(SCTP_PROTOCOL) => (word(0), word(2)),
            _ => (0, 0),
        }
    };
    (protocol, src, ports.0, dst, ports.1)
}

/// Counts of what a scenario made the appliance do (for tests that a scenario reaches
/// the paths it is about).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// IPv4 packets forwarded.
    pub forwarded4: usize,
    /// IPv6 packets forwarded.
    pub forwarded6: usize,
    /// IPv6 frames sent (forwarded, answered or the appliance's own).
    pub sent6: usize,
}

/// What the input of a receive became, as far as the checks of its outputs need it.
#[derive(Clone, Copy, Default)]
struct Context {
    /// The input was forwarded as part of a known flow (not as a first packet).
    related: bool,
    /// The input was a whole IPv4 packet whose transport checksum does not verify (a
    /// truncated piece, say): a router forwards it as it is.
    input_broken: bool,
}

/// What the oracle remembers of a scenario.
pub struct Oracle {
    /// Frames the appliance sent, most recent last.
    outputs: Vec<(u8, Vec<u8>)>,
    /// Tuples of every IPv4 packet the appliance sent.
    sent: HashSet<Tuple>,
    /// Tuples of first packets the policy passed (as received, and after destination NAT).
    opened: HashSet<Tuple>,
    /// Tuples of the replies the flows the policy opened expect, as they arrive (to the
    /// address a masquerade translated the first packet to): a reply may come before the
    /// first packet left (it waits for ARP), so `sent` does not know it yet.
    expected_replies: HashSet<Tuple>,
    /// Keys of forwarded first fragments.
    first_fragments: HashSet<FragmentKey>,
    /// `(on behalf of, to)`: the appliance answered (TCP reset, ICMP error) a packet from
    /// `to` addressed to `on behalf of`; the answer may come from that address, whoever it
    /// is (now, or later if it waited for ARP or ND).
    answers: HashSet<(u128, u128)>,
    /// What the scenario made the appliance do.
    pub summary: Summary,
    /// Whether every frame so far had valid transport checksums (else forwarded packets may
    /// rightly carry broken ones: a router does not check them).
    sound: bool,
}

impl Oracle {
    /// An oracle for a freshly booted `world`.
    pub fn new(_world: &World) -> Oracle {
        Oracle {
            outputs: Vec::new(),
            sent: HashSet::new(),
            opened: HashSet::new(),
            expected_replies: HashSet::new(),
            first_fragments: HashSet::new(),
            answers: HashSet::new(),
            summary: Summary::default(),
            sound: true,
        }
    }

    /// From now on, forwarded packets may carry the broken transport checksums they came in
    /// with.
    pub fn taint(&mut self) {
        self.sound = false;
    }

    /// Output `index` (modulo their count), counting back from the most recent (0), if
    /// any frame came out yet.
    pub fn output(&self, index: u16) -> Option<&(u8, Vec<u8>)> {
        let back = usize::from(index).checked_rem(self.outputs.len())?;
        self.outputs.get(self.outputs.len() - 1 - back)
    }

    /// Checks what became of `input`, received on `nic`: its trace and the frames sent.
    pub fn check_receive(
        &mut self,
        world: &World,
        nic: u8,
        input: &[u8],
        trace: &Trace,
        outputs: &[(u8, Vec<u8>)],
    ) {
        let failure = |what: String| -> ! {
            panic!(
                "{what}\n  input on nic{nic}: {}\n  trace: {trace:?}\n  outputs: {:?}",
                describe_frame(input),
                outputs
                    .iter()
                    .map(|(n, f)| format!("nic{n}: {}", describe_frame(f)))
                    .collect::<Vec<_>>()
            )
        };
        if let Some((table, size, bound)) = world.appliance.footprint().over_bound() {
            failure(format!(
                "{table}: {size} entries, over the bound of {bound}"
            ));
        }
        let forwarded_to = match trace.fate {
            Fate::Forwarded { nic, .. } => Some(nic),
            _ => None,
        };
        if let Some(out) = forwarded_to {
            let ip = EthernetFrame::new_checked(input)
                .ok()
                .filter(|eth| {
                    matches!(
                        eth.ethertype(),
                        EthernetProtocol::Ipv4 | EthernetProtocol::Ipv6
                    )
                })
                .and_then(|eth| {
                    let bytes = eth.payload();
                    view_of(eth.ethertype(), bytes).map(|_| (eth.ethertype(), bytes.to_vec()))
                })
                .unwrap_or_else(|| failure("forwarded a frame that is no IP packet".into()));
            let view = view_of(ip.0, &ip.1).unwrap_or_else(|| failure("unreadable".into()));
            if ip.0 == EthernetProtocol::Ipv6 {
                self.summary.forwarded6 += 1;
            } else {
                self.summary.forwarded4 += 1;
            }
            if let Err(why) = self.check_forwarded(world, nic, out, &view, trace) {
                failure(why);
            }
        }
        if trace.reply.is_some() {
            let answered = EthernetFrame::new_checked(input).ok().and_then(|eth| {
                view_of(eth.ethertype(), eth.payload()).map(|v| (v.tuple.3, v.tuple.1))
            });
            self.answers.extend(answered);
        }
        let context = Context {
            related: forwarded_to.is_some() && trace.decision.is_none(),
            input_broken: EthernetFrame::new_checked(input)
                .ok()
                .and_then(|eth| match eth.ethertype() {
                    EthernetProtocol::Ipv4 => {
                        let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
                        let whole = !ip.more_frags() && ip.frag_offset() == 0;
                        let packet = &eth.payload()[..usize::from(ip.total_len())];
                        Some(whole && !checksums_valid(packet))
                    }
                    EthernetProtocol::Ipv6 => {
                        let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
                        Some(!checksums_valid6(&ip))
                    }
                    _ => None,
                })
                .unwrap_or(false),
        };
        if let Err(why) = self.check_frames(world, context, outputs) {
            failure(why);
        }
    }

    /// Checks frames that came out of the timers (or of a receive, via `check_receive`).
    pub fn check_outputs(&mut self, world: &World, _nic: Option<u8>, outputs: &[(u8, Vec<u8>)]) {
        if let Err(why) = self.check_frames(world, Context::default(), outputs) {
            panic!(
                "{why}\n  outputs of the timers: {:?}",
                outputs
                    .iter()
                    .map(|(n, f)| format!("nic{n}: {}", describe_frame(f)))
                    .collect::<Vec<_>>()
            );
        }
        if let Some((table, size, bound)) = world.appliance.footprint().over_bound() {
            panic!("{table}: {size} entries, over the bound of {bound}");
        }
    }

    /// A forwarded packet `view`, from `nic` out of `out`: a first packet must be one the
    /// reference matcher passes, on its own key; any other must belong to a known flow; no
    /// link-local or multicast address is forwarded off its link, and no router
    /// advertisement at all.
    fn check_forwarded(
        &mut self,
        world: &World,
        nic: u8,
        out: u8,
        view: &View,
        trace: &Trace,
    ) -> Result<(), String> {
        let tuple = view.tuple;
        let (protocol, src, sport, dst, dport) = tuple;
        if let Some((true, key)) = view.fragment {
            self.first_fragments.insert(key);
        }
        let v6 = matches!(view.error_quote, Some((_, true))) || !is_ipv4_mapped(src);
        if v6 {
            let (src6, dst6) = (Ipv6Address::from_bits(src), Ipv6Address::from_bits(dst));
            if is_link_local(src6) || is_link_local(dst6) {
                return Err(format!(
                    "forwarded a link-scoped packet off its link: {src6} -> {dst6}"
                ));
            }
            if dst6.is_multicast() || dst6.is_unspecified() || src6.is_multicast() {
                return Err(format!("forwarded {src6} -> {dst6} beyond the link"));
            }
            if view
                .icmp6_type
                .is_some_and(|t| (ROUTER_SOLICIT..=REDIRECT).contains(&t))
            {
                return Err("forwarded a neighbour discovery message".into());
            }
        }
        if let Some(decision) = trace.decision {
            let key = decision.key;
            let reference = reference::decide(&world.policy, &key).action;
            if reference != Action::Pass || decision.verdict.action != Action::Pass {
                return Err(format!(
                    "forwarded a first packet the reference matcher decides {reference:?} (data plane: {:?}), key {key:?}",
                    decision.verdict
                ));
            }
            let (to, to_port) = match trace.redirect {
                Some(redirect) => (ip_to_flow_addr(redirect.to), redirect.to_port),
                None => (dst, dport),
            };
            let has_ports = matches!(protocol, 6 | 17 | SCTP_PROTOCOL);
            let expected = (
                nic,
                out,
                protocol,
                src,
                to,
                if has_ports {
                    (sport, to_port)
                } else {
                    (key.src_port, key.dst_port)
                },
            );
            let actual = (
                key.in_nic,
                key.out,
                key.protocol,
                key.src,
                key.dst,
                (key.src_port, key.dst_port),
            );
            if expected != actual {
                return Err(format!(
                    "the policy decided a key that is not the packet's: (in, out, protocol, src, dst, ports) {actual:?}, the packet's {expected:?}"
                ));
            }
            self.opened.insert(tuple);
            self.opened.insert((protocol, src, sport, to, to_port));
            if let Fate::Forwarded {
                translation: Some(translation),
                ..
            } = trace.fate
            {
                let after = translation.after;
                self.expected_replies.insert((
                    u8::from(after.protocol),
                    ip_to_flow_addr(after.dst),
                    after.dst_port,
                    ip_to_flow_addr(after.src),
                    after.src_port,
                ));
            }
            return Ok(());
        }
        if let Some((false, key)) = view.fragment {
            return if self.first_fragments.contains(&key) {
                Ok(())
            } else {
                Err("forwarded a later fragment whose first fragment was never forwarded".into())
            };
        }
        if let Some((quote, v6)) = view.error_quote {
            return match quoted_tuple(quote, v6) {
                Some(q) if self.sent.contains(&q) => Ok(()),
                Some(q) => Err(format!(
                    "forwarded an ICMP error quoting {q:?}, a packet the appliance never sent"
                )),
                None => Err("forwarded an ICMP error with no readable quote".into()),
            };
        }
        if self.opened.contains(&tuple)
            || self.sent.contains(&reversed(tuple))
            || self.expected_replies.contains(&tuple)
        {
            Ok(())
        } else {
            Err(format!(
                "forwarded {tuple:?} with no policy decision, though no flow opened it"
            ))
        }
    }

    /// A receive on `nic` changed no NIC's IPv6 addressing (`before`, `after`), except a
    /// SLAAC uplink's by what arrived on it: router advertisements from clients are never
    /// acted on, and no neighbour advertisement takes an address from the appliance.
    pub fn check_addressing6(
        &self,
        world: &World,
        nic: u8,
        input: &[u8],
        before: &[(Vec<Ipv6Cidr>, Option<Ipv6Address>)],
        after: &[(Vec<Ipv6Cidr>, Option<Ipv6Address>)],
    ) {
        for (index, (was, is)) in before.iter().zip(after).enumerate() {
            let slaac = world
                .policy
                .interface_on(index as u8)
                .is_some_and(|i| i.ipv6 == Ipv6Config::Slaac);
            if was != is && !(slaac && index == usize::from(nic)) {
                panic!(
                    "a frame on nic{nic} changed nic{index}'s IPv6 addressing from {was:?} to {is:?}\n  input: {}",
                    describe_frame(input)
                );
            }
        }
    }

    /// Checks every frame sent and remembers it.
    fn check_frames(
        &mut self,
        world: &World,
        context: Context,
        outputs: &[(u8, Vec<u8>)],
    ) -> Result<(), String> {
        for (nic, frame) in outputs {
            self.check_frame(world, *nic, frame, context)
                .map_err(|why| format!("nic{nic}: {why}: {}", describe_frame(frame)))?;
            if let Ok(eth) = EthernetFrame::new_checked(&frame[..]) {
                if let Some(view) = view_of(eth.ethertype(), eth.payload()) {
                    self.sent.insert(view.tuple);
                }
                if eth.ethertype() == EthernetProtocol::Ipv6 {
                    self.summary.sent6 += 1;
                }
            }
            if self.outputs.len() == HISTORY {
                self.outputs.remove(0);
            }
            self.outputs.push((*nic, frame.clone()));
        }
        Ok(())
    }

    fn check_frame(
        &self,
        world: &World,
        nic: u8,
        frame: &[u8],
        context: Context,
    ) -> Result<(), String> {
        let eth = EthernetFrame::new_checked(frame).map_err(|_| "not an Ethernet frame")?;
        if eth.src_addr() != appliance_mac(nic) {
            return Err(format!(
                "Ethernet source {} is not the appliance's",
                eth.src_addr()
            ));
        }
        match eth.ethertype() {
            EthernetProtocol::Arp => {
                let message = arp::parse(eth.payload()).ok_or("a malformed ARP message")?;
                if message.sender_mac != appliance_mac(nic) {
                    return Err(format!("ARP from sender MAC {}", message.sender_mac));
                }
                Ok(())
            }
            EthernetProtocol::Ipv4 => {
                let ip = Ipv4Packet::new_checked(eth.payload())
                    .map_err(|_| "a malformed IPv4 packet")?;
                let packet = &eth.payload()[..usize::from(ip.total_len())];
                if !ip.verify_checksum() {
                    return Err("a wrong IPv4 header checksum".into());
                }
                let fragment = ip.more_frags() || ip.frag_offset() != 0;
                if !fragment && self.sound && !context.input_broken && !checksums_valid(packet) {
                    return Err("a wrong transport checksum".into());
                }
                let dst = ip.dst_addr();
                let group_ok = dst == Ipv4Address::BROADCAST
                    || dst.is_multicast()
                    || world.nics[usize::from(nic)]
                        .ipv4
                        .and_then(|c| c.broadcast())
                        .is_some_and(|b| b == dst);
                if (eth.dst_addr().is_broadcast() || eth.dst_addr().is_multicast()) && !group_ok {
                    return Err(format!(
                        "unicast {dst} sent to link-layer {}",
                        eth.dst_addr()
                    ));
                }
                let answer = (
                    ipv4_to_flow_addr(ip.src_addr().to_bits()),
                    ipv4_to_flow_addr(ip.dst_addr().to_bits()),
                );
                if nic == 0 && world.hides_clients {
                    if world.is_client_address(ip.src_addr()) && !self.answers.contains(&answer) {
                        return Err(format!("client address {} left the uplink", ip.src_addr()));
                    }
                    let payload = ip.payload();
                    let related = context.related
                        && ip.next_header() == IpProtocol::Icmp
                        && payload.first().is_some_and(|&t| is_icmp_error(t));
                    if related && payload.len() >= 28 {
                        let quote = Ipv4Packet::new_unchecked(&payload[8..]);
                        if world.is_client_address(quote.dst_addr()) {
                            return Err(format!(
                                "client address {} left the uplink in an ICMP error's quote",
                                quote.dst_addr()
                            ));
                        }
                    }
                }
                Ok(())
            }
            EthernetProtocol::Ipv6 => self.check_frame6(world, nic, &eth, context),
            other => Err(format!("EtherType {other}")),
        }
    }

    /// An IPv6 frame out of `nic`: to the group's MAC when multicast, else to a station;
    /// valid upper-layer checksums; no client's address (as source, or as the destination
    /// of a quoted packet) out of the uplink where the ruleset hides them; neighbour
    /// advertisements only for the appliance's own addresses, router advertisements only
    /// where the ruleset sends them.
    fn check_frame6(
        &self,
        world: &World,
        nic: u8,
        eth: &EthernetFrame<&[u8]>,
        context: Context,
    ) -> Result<(), String> {
        let ip = Ipv6Packet::new_checked(eth.payload()).map_err(|_| "a malformed IPv6 packet")?;
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        if dst.is_multicast() {
            if eth.dst_addr() != multicast_mac(dst) {
                return Err(format!(
                    "multicast {dst} sent to link-layer {}",
                    eth.dst_addr()
                ));
            }
        } else if eth.dst_addr().is_broadcast() || eth.dst_addr().is_multicast() {
            return Err(format!(
                "unicast {dst} sent to link-layer {}",
                eth.dst_addr()
            ));
        }
        let view = view6(eth.payload()).ok_or("an unreadable IPv6 packet")?;
        if view.fragment.is_none() && self.sound && !context.input_broken && !checksums_valid6(&ip)
        {
            return Err("a wrong upper-layer checksum".into());
        }
        let (own, _) = world.appliance.ipv6_addressing(nic);
        let upper = ip.payload();
        let chain = walk6(ip.next_header(), upper);
        let icmp_type = view.icmp6_type.filter(|_| view.fragment.is_none());
        if icmp_type == Some(NEIGHBOR_ADVERT) && !context.related {
            let target = upper
                .get(chain.upper_at + 8..chain.upper_at + 24)
                .map(|b| Ipv6Address::from(<[u8; 16]>::try_from(b).unwrap_or([0; 16])));
            if !target.is_some_and(|t| own.iter().any(|c| c.address() == t)) {
                return Err(format!(
                    "a neighbour advertisement for {target:?}, not an address of the appliance"
                ));
            }
        }
        if icmp_type == Some(ROUTER_ADVERT) {
            let sends_ras = world
                .policy
                .interface_on(nic)
                .is_some_and(|i| i.router_adverts);
            if !sends_ras || context.related {
                return Err("a router advertisement where the ruleset sends none".into());
            }
        }
        if nic == 0 && world.hides_clients6 {
            if world.is_client_address6(src)
                && !self.answers.contains(&(src.to_bits(), dst.to_bits()))
            {
                return Err(format!("client address {src} left the uplink"));
            }
            if let (true, Some((quote, true))) = (context.related, view.error_quote) {
                if quote.len() >= IPV6_HEADER_LEN {
                    let quoted = Ipv6Packet::new_unchecked(quote);
                    if world.is_client_address6(quoted.dst_addr()) {
                        return Err(format!(
                            "client address {} left the uplink in an ICMPv6 error's quote",
                            quoted.dst_addr()
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}
