//! The invariants every frame out of the appliance is held to (see the crate
//! documentation), and the little the oracle remembers to check them: the flows the policy
//! opened, the frames the appliance sent, the first fragments it forwarded.
//!
//! Packets are read here with `smoltcp::wire` directly, not with the data plane's own
//! parser: the oracle must not share the code it checks.

use std::collections::HashSet;

use dataplane::appliance::{Fate, Trace};
use dataplane::arp;
use dataplane::policy::{ip_to_flow_addr, ipv4_to_flow_addr, reference, Action};
use dataplane::testutil::datagram::describe_frame;
use dataplane::testutil::packets::checksums_valid;
use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Address, Ipv4Packet};

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

/// The tuple of IPv4 packet `ip` (which must be whole enough to read).
fn tuple_of(ip: &Ipv4Packet<&[u8]>) -> Tuple {
    tuple_from(ip, ip.payload())
}

/// The tuple of the packet quoted in an ICMP error: its header (checked to be there) and
/// as much of its payload as was quoted.
fn quoted_tuple(quote: &[u8]) -> Option<Tuple> {
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
    /// `(source, destination, protocol, identification)` of forwarded first fragments.
    first_fragments: HashSet<(u128, u128, u8, u16)>,
    /// `(on behalf of, to)`: the appliance answered (TCP reset, ICMP error) a packet from
    /// `to` addressed to `on behalf of`; the answer may come from that address, whoever it
    /// is (now, or later if it waited for ARP).
    answers: HashSet<(Ipv4Address, Ipv4Address)>,
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
            sound: true,
        }
    }

    /// From now on, forwarded packets may carry the broken transport checksums they came in
    /// with.
    pub fn taint(&mut self) {
        self.sound = false;
    }

    /// Output `index` (modulo their count), if any frame came out yet.
    pub fn output(&self, index: u16) -> Option<&(u8, Vec<u8>)> {
        if self.outputs.is_empty() {
            None
        } else {
            self.outputs.get(usize::from(index) % self.outputs.len())
        }
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
                .filter(|eth| eth.ethertype() == EthernetProtocol::Ipv4)
                .and_then(|eth| {
                    let bytes = eth.payload();
                    Ipv4Packet::new_checked(bytes).ok().map(|_| bytes.to_vec())
                })
                .unwrap_or_else(|| failure("forwarded a frame that is no IPv4 packet".into()));
            let ip = Ipv4Packet::new_unchecked(&ip[..]);
            if let Err(why) = self.check_forwarded(world, nic, out, &ip, trace) {
                failure(why);
            }
        }
        if trace.reply.is_some() {
            let answered = EthernetFrame::new_checked(input).ok().and_then(|eth| {
                Ipv4Packet::new_checked(eth.payload())
                    .ok()
                    .map(|ip| (ip.dst_addr(), ip.src_addr()))
            });
            self.answers.extend(answered);
        }
        let context = Context {
            related: forwarded_to.is_some() && trace.decision.is_none(),
            input_broken: EthernetFrame::new_checked(input)
                .ok()
                .and_then(|eth| {
                    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
                    let whole = !ip.more_frags() && ip.frag_offset() == 0;
                    let packet = &eth.payload()[..usize::from(ip.total_len())];
                    Some(whole && !checksums_valid(packet))
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

    /// A forwarded packet `ip`, from `nic` out of `out`: a first packet must be one the
    /// reference matcher passes, on its own key; any other must belong to a known flow.
    fn check_forwarded(
        &mut self,
        world: &World,
        nic: u8,
        out: u8,
        ip: &Ipv4Packet<&[u8]>,
        trace: &Trace,
    ) -> Result<(), String> {
        let tuple = tuple_of(ip);
        let (protocol, src, sport, dst, dport) = tuple;
        if ip.more_frags() && ip.frag_offset() == 0 {
            self.first_fragments
                .insert((src, dst, protocol, ip.ident()));
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
        if ip.frag_offset() != 0 {
            return if self
                .first_fragments
                .contains(&(src, dst, protocol, ip.ident()))
            {
                Ok(())
            } else {
                Err("forwarded a later fragment whose first fragment was never forwarded".into())
            };
        }
        let payload = ip.payload();
        if ip.next_header() == IpProtocol::Icmp
            && payload.first().is_some_and(|&t| is_icmp_error(t))
        {
            let quote = payload.get(8..).unwrap_or(&[]);
            let quoted = quoted_tuple(quote).ok_or(());
            return match quoted {
                Ok(q) if self.sent.contains(&q) => Ok(()),
                Ok(q) => Err(format!(
                    "forwarded an ICMP error quoting {q:?}, a packet the appliance never sent"
                )),
                Err(()) => Err("forwarded an ICMP error with no readable quote".into()),
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
                if let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) {
                    self.sent.insert(tuple_of(&ip));
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
                if nic == 0 && world.hides_clients {
                    if world.is_client_address(ip.src_addr())
                        && !self.answers.contains(&(ip.src_addr(), ip.dst_addr()))
                    {
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
            other => Err(format!("EtherType {other}")),
        }
    }
}
