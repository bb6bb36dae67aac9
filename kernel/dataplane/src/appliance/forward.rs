//! The IPv4 path: validation, anti-spoofing, fragments, state, NAT, policy, forwarding.

use core::fmt;

use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpOperation, EthernetFrame, IpProtocol, Ipv4Address, Ipv4Cidr, DHCP_CLIENT_PORT,
    DHCP_SERVER_PORT, ETHERNET_HEADER_LEN,
};

use super::Appliance;
use crate::antispoof::Spoofed;
use crate::arp;
use crate::drops::DropReason;
use crate::fragment::FragmentKind;
use crate::fragmenter;
use crate::icmp_error::{IcmpError, Offending};
use crate::nat::{self, Translation};
use crate::packet::{is_special_purpose, Ipv4Summary, Malformed, Transport};
use crate::policy::{Action, FlowKey, Verdict, OUT_SELF};
use crate::rewrite;
use crate::route::Route;
use crate::sink::FrameSink;
use crate::state::{ClientRef, FlowTuple, Lookup, NewFlow, Refused, RuleRef};

/// How a forwarded packet leaves: its address translation and its next hop. Recorded for a
/// forwarded first fragment, so the rest of its datagram leaves the same way.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    translation: Option<Translation>,
    out_nic: u8,
    next_hop: Ipv4Address,
    mtu: u16,
}

/// What the sender of a dropped packet is told.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// An ICMP error.
    Error(IcmpError),
    /// What `reject` sends: a TCP reset, or ICMP administratively prohibited.
    Reject,
}

/// A packet as it arrived, for log lines: protocol, addresses, ports or ICMP type.
struct Described<'a>(&'a Ipv4Summary);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let s = self.0;
        match s.transport {
            Transport::Tcp(t) => write!(
                f,
                "tcp {}:{} -> {}:{}",
                s.src, t.src_port, s.dst, t.dst_port
            ),
            Transport::Udp { src_port, dst_port } => {
                write!(f, "udp {}:{} -> {}:{}", s.src, src_port, s.dst, dst_port)
            }
            Transport::Icmp(_) => {
                let (ty, code) = s.icmp_type_code();
                write!(f, "icmp {} -> {} type {ty} code {code}", s.src, s.dst)
            }
            Transport::NonFirstFragment => {
                write!(
                    f,
                    "proto {} {} -> {} fragment",
                    u8::from(s.protocol),
                    s.src,
                    s.dst
                )
            }
            Transport::Other => write!(f, "proto {} {} -> {}", u8::from(s.protocol), s.src, s.dst),
        }
    }
}

/// Whether a packet is a DHCP server's answer to the appliance's DHCP client.
fn is_dhcp_to_client(summary: &Ipv4Summary) -> bool {
    matches!(
        summary.transport,
        Transport::Udp {
            src_port: DHCP_SERVER_PORT,
            dst_port: DHCP_CLIENT_PORT
        }
    )
}

/// The policy's view of a flow (after destination NAT), entering on `in_nic` and leaving
/// through `out` (a NIC, or [`OUT_SELF`]).
fn flow_key(in_nic: u8, out: u8, flow: &FlowTuple, summary: &Ipv4Summary) -> FlowKey {
    let (src_port, dst_port) = match flow.protocol {
        IpProtocol::Tcp | IpProtocol::Udp => (flow.src_port, flow.dst_port),
        _ => (0, 0),
    };
    FlowKey::ipv4(
        in_nic,
        out,
        flow.protocol.into(),
        flow.src.to_bits(),
        flow.dst.to_bits(),
        src_port,
        dst_port,
        summary.icmp_type_code(),
    )
}

impl Appliance<'_> {
    pub(super) fn receive_ipv4(
        &mut self,
        nic: u8,
        frame: &mut [u8],
        link_broadcast: bool,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Result<(), DropReason> {
        let summary = match Ipv4Summary::parse(&frame[ETHERNET_HEADER_LEN..]) {
            Ok(summary) => summary,
            Err(malformed) => return Err(self.malformed(nic, malformed, now)),
        };
        let config = self.configs[nic as usize];
        let Some(cidr) = config.ipv4 else {
            // Until DHCP has configured the NIC, only the DHCP client can use it.
            if config.dhcp && is_dhcp_to_client(&summary) {
                self.deliver_local(nic, frame, now, sink);
                return Ok(());
            }
            return Err(DropReason::NicUnconfigured);
        };
        if let Err(spoofed) = self.sources.check(nic, summary.src) {
            let reason = match spoofed {
                Spoofed::MartianSource => DropReason::MartianSource,
                _ => DropReason::Spoofed,
            };
            self.log_drop(
                now,
                format_args!(
                    "nic{nic} {} ({}) {}",
                    reason,
                    spoofed.as_str(),
                    Described(&summary)
                ),
            );
            return Err(reason);
        }
        let sender_mac = EthernetFrame::new_unchecked(&frame[..]).src_addr();
        if self.impersonates_client(nic, summary.src, sender_mac, now) {
            self.log_drop(
                now,
                format_args!(
                    "nic{nic} spoofed (client-mac-changed) {}",
                    Described(&summary)
                ),
            );
            return Err(DropReason::Spoofed);
        }
        if FragmentKind::of(&summary) == FragmentKind::Later {
            let Some(plan) = self.fragments.follow(&summary, now) else {
                return Err(DropReason::OrphanFragment);
            };
            return self.forward(nic, frame, summary, plan, link_broadcast, now, sink);
        }
        match self.states.lookup(nic, &summary, now) {
            Lookup::Hit(hit) | Lookup::Related(hit) => {
                if hit.verdict.is_err() {
                    return Err(DropReason::InvalidState);
                }
                match self.routes.lookup(hit.translation.after.dst) {
                    Route::Forward {
                        nic: out_nic,
                        next_hop,
                        mtu,
                    } => {
                        let plan = Plan {
                            translation: Some(hit.translation),
                            out_nic,
                            next_hop,
                            mtu,
                        };
                        self.forward(nic, frame, summary, plan, link_broadcast, now, sink)
                    }
                    Route::Local { .. } | Route::Unreachable => Err(DropReason::NoRoute),
                }
            }
            Lookup::Miss => self.new_flow(nic, cidr, frame, summary, link_broadcast, now, sink),
        }
    }

    fn malformed(&mut self, nic: u8, malformed: Malformed, now: Instant) -> DropReason {
        self.log_drop(
            now,
            format_args!("nic{nic} malformed ({})", malformed.as_str()),
        );
        DropReason::Malformed
    }

    pub(super) fn log_drop(&mut self, now: Instant, line: fmt::Arguments) {
        self.drop_log.log(now, line);
    }

    /// The first packet of a flow: destination NAT, routing, policy, state.
    #[allow(clippy::too_many_arguments)]
    fn new_flow(
        &mut self,
        nic: u8,
        cidr: Ipv4Cidr,
        frame: &mut [u8],
        summary: Ipv4Summary,
        link_broadcast: bool,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Result<(), DropReason> {
        let original = FlowTuple::of(&summary);
        let appliance = cidr.address();
        let redirected = original.and_then(|flow| {
            nat::port_forward(self.policy.forwards, nic, appliance, &flow).or_else(|| {
                nat::dns_redirect(&self.policy, nic, appliance, &flow, &self.upstream_dns)
            })
        });
        let destination = redirected.map_or(summary.dst, |flow| flow.dst);
        let route = if destination.is_broadcast() {
            Route::Local { nic }
        } else {
            self.routes.lookup(destination)
        };
        match route {
            Route::Local { nic: owner } => self.for_appliance(
                nic,
                owner,
                cidr,
                frame,
                &summary,
                original,
                link_broadcast,
                now,
                sink,
            ),
            // Loopback, multicast, reserved, "this network": never forwarded, never answered.
            Route::Unreachable if is_special_purpose(destination) => {
                Err(DropReason::MartianDestination)
            }
            Route::Unreachable => {
                if !link_broadcast {
                    self.answer(
                        Answer::Error(IcmpError::NetUnreachable),
                        nic,
                        frame,
                        &summary,
                        link_broadcast,
                        now,
                        sink,
                    );
                }
                Err(DropReason::NoRoute)
            }
            Route::Forward {
                nic: out_nic,
                next_hop,
                mtu,
            } => {
                // An ICMP error about no known flow, and the like, opens nothing.
                let Some(original) = original else {
                    return Err(DropReason::InvalidState);
                };
                let mut translated = redirected.unwrap_or(original);
                let verdict = self
                    .policy
                    .decide(&flow_key(nic, out_nic, &translated, &summary));
                self.enforce(verdict, nic, frame, &summary, link_broadcast, now, sink)?;
                self.check_ttl(nic, frame, &summary, link_broadcast, now, sink)?;
                if nat::masquerade_rule(&self.policy, nic, translated.src, out_nic).is_some() {
                    let Some(nat_address) =
                        self.configs[out_nic as usize].ipv4.map(|c| c.address())
                    else {
                        return Err(DropReason::NoRoute);
                    };
                    translated = match self.masquerader.masquerade(
                        &self.states,
                        translated,
                        nat_address,
                        now,
                    ) {
                        Ok(flow) => flow,
                        Err(refused) => {
                            self.log_drop(
                                now,
                                format_args!(
                                    "nic{nic} {} {}",
                                    refused.as_str(),
                                    Described(&summary)
                                ),
                            );
                            return Err(DropReason::NatExhausted);
                        }
                    };
                }
                let flow = NewFlow {
                    in_nic: nic,
                    out_nic,
                    original,
                    translated,
                    rule: verdict.rule.and_then(|index| {
                        let rule = self.policy.rules.get(index as usize)?;
                        Some(RuleRef {
                            index,
                            limits: rule.limits,
                        })
                    }),
                    client: self.client_ref(nic, summary.src),
                };
                if let Err(refused) = self.states.insert(&flow, &summary, now) {
                    return Err(self.refused(nic, refused, &summary, now));
                }
                let plan = Plan {
                    translation: Some(flow.translation()),
                    out_nic,
                    next_hop,
                    mtu,
                };
                self.forward(nic, frame, summary, plan, link_broadcast, now, sink)
            }
        }
    }

    fn refused(
        &mut self,
        nic: u8,
        refused: Refused,
        summary: &Ipv4Summary,
        now: Instant,
    ) -> DropReason {
        let reason = match refused {
            Refused::TableFull => DropReason::StateTableFull,
            Refused::RuleLimit | Refused::SourceLimit | Refused::ClientLimit => {
                DropReason::StateLimit
            }
            Refused::TupleInUse => DropReason::NatExhausted,
            Refused::Untrackable | Refused::TcpWithoutSyn => DropReason::InvalidState,
        };
        if !matches!(reason, DropReason::InvalidState) {
            self.log_drop(
                now,
                format_args!("nic{nic} {} {}", refused.as_str(), Described(summary)),
            );
        }
        reason
    }

    /// The client record for a source on a NIC, for per-client state limits.
    fn client_ref(&self, nic: u8, src: Ipv4Address) -> Option<ClientRef> {
        self.declared_client(nic, src).map(|index| ClientRef {
            index: index as u32,
            max_states: self.policy.clients[index].max_states,
        })
    }

    /// A packet for the appliance itself: the policy (`to self`) decides, then the local
    /// stack of the NIC it arrived on answers. Only that NIC's own address (and broadcasts
    /// on it) are served there.
    #[allow(clippy::too_many_arguments)]
    fn for_appliance(
        &mut self,
        nic: u8,
        owner: u8,
        cidr: Ipv4Cidr,
        frame: &mut [u8],
        summary: &Ipv4Summary,
        original: Option<FlowTuple>,
        link_broadcast: bool,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Result<(), DropReason> {
        let config = self.configs[nic as usize];
        if config.dhcp && is_dhcp_to_client(summary) {
            self.deliver_local(nic, frame, now, sink);
            return Ok(());
        }
        let broadcast = summary.dst.is_broadcast() || Some(summary.dst) == cidr.broadcast();
        let flow = original.unwrap_or(FlowTuple {
            protocol: summary.protocol,
            src: summary.src,
            dst: summary.dst,
            src_port: 0,
            dst_port: 0,
            echo: None,
        });
        let verdict = self.policy.decide(&flow_key(nic, OUT_SELF, &flow, summary));
        // Broadcast chatter (DHCP discovers, NetBIOS, ...) is counted, never logged.
        let verdict = if broadcast {
            Verdict {
                log: false,
                ..verdict
            }
        } else {
            verdict
        };
        self.enforce(
            verdict,
            nic,
            frame,
            summary,
            link_broadcast || broadcast,
            now,
            sink,
        )?;
        if owner == nic && (summary.dst == cidr.address() || broadcast) {
            if !broadcast {
                self.introduce_sender(nic, cidr, frame, summary, now, sink);
            }
            self.deliver_local(nic, frame, now, sink);
            Ok(())
        } else {
            // The appliance's address on another NIC is not served from here.
            Err(DropReason::NoRoute)
        }
    }

    /// Tells the local stack the sender's MAC (as an ARP reply would) before it answers a
    /// packet, so its first answer is not lost to an ARP resolution of its own: smoltcp drops
    /// a packet whose next hop it has not resolved yet. Only for on-link senders, whose
    /// address anti-spoofing already accepted on this NIC.
    fn introduce_sender(
        &mut self,
        nic: u8,
        cidr: Ipv4Cidr,
        frame: &[u8],
        summary: &Ipv4Summary,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return;
        };
        let sender_mac = eth.src_addr();
        if !cidr.contains_addr(&summary.src) || !sender_mac.is_unicast() {
            return;
        }
        let introduction = arp::ArpMessage {
            operation: ArpOperation::Reply,
            sender_mac,
            sender_ip: summary.src,
            target_mac: self.configs[nic as usize].mac,
            target_ip: cidr.address(),
        };
        let mut bytes = [0u8; arp::ARP_FRAME_LEN];
        arp::emit(&mut bytes, introduction.target_mac, &introduction);
        self.deliver_local(nic, &bytes, now, sink);
    }

    /// Applies a verdict: `Ok` to go on; otherwise the packet is dropped (logged if the rule
    /// says so) and, for `reject`, its sender told.
    #[allow(clippy::too_many_arguments)]
    fn enforce(
        &mut self,
        verdict: Verdict,
        nic: u8,
        frame: &[u8],
        summary: &Ipv4Summary,
        link_broadcast: bool,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Result<(), DropReason> {
        if verdict.action == Action::Pass {
            return Ok(());
        }
        if verdict.log {
            let (kind, pos) = match verdict.rule.and_then(|i| self.policy.rules.get(i as usize)) {
                Some(rule) => ("rule", rule.pos),
                None => ("default", self.policy.default.pos),
            };
            let action = if verdict.action == Action::Reject {
                "reject"
            } else {
                "block"
            };
            self.log_drop(
                now,
                format_args!(
                    "nic{nic} {action} {kind} {}:{} {}",
                    pos.line,
                    pos.column,
                    Described(summary)
                ),
            );
        }
        if verdict.action == Action::Reject {
            self.answer(
                Answer::Reject,
                nic,
                frame,
                summary,
                link_broadcast,
                now,
                sink,
            );
        }
        Err(DropReason::Policy)
    }

    /// Tells the sender of the packet in `frame` why it went no further: an ICMP error, or
    /// what `reject` sends (rate-limited; never about errors, broadcasts, later fragments
    /// or martians).
    #[allow(clippy::too_many_arguments)]
    fn answer(
        &mut self,
        answer: Answer,
        nic: u8,
        frame: &[u8],
        summary: &Ipv4Summary,
        link_broadcast: bool,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) {
        let offending = Offending {
            bytes: &frame[ETHERNET_HEADER_LEN..],
            summary,
            ingress: self.configs[nic as usize].ipv4,
            link_broadcast,
        };
        let reply = match answer {
            Answer::Error(error) => self.errors.icmp_error(error, &offending, now),
            Answer::Reject => self.errors.reject(&offending, now),
        };
        if let Ok(reply) = reply {
            self.send_originated(&reply, now, sink);
        }
    }

    /// Drops a packet whose TTL runs out here, telling its sender (time exceeded).
    fn check_ttl(
        &mut self,
        nic: u8,
        frame: &[u8],
        summary: &Ipv4Summary,
        link_broadcast: bool,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Result<(), DropReason> {
        if summary.ttl > 1 {
            return Ok(());
        }
        let answer = Answer::Error(IcmpError::TimeExceeded);
        self.answer(answer, nic, frame, summary, link_broadcast, now, sink);
        Err(DropReason::TtlExceeded)
    }

    /// Sends a packet on its way: TTL and MTU checks (with their ICMP errors), NAT and TTL
    /// rewritten in place, the next hop resolved.
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &mut self,
        nic: u8,
        frame: &mut [u8],
        mut summary: Ipv4Summary,
        plan: Plan,
        link_broadcast: bool,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Result<(), DropReason> {
        self.check_ttl(nic, frame, &summary, link_broadcast, now, sink)?;
        let too_big = summary.total_len > plan.mtu as usize;
        if too_big && summary.dont_fragment {
            let error = IcmpError::FragmentationNeeded { mtu: plan.mtu };
            self.answer(
                Answer::Error(error),
                nic,
                frame,
                &summary,
                link_broadcast,
                now,
                sink,
            );
            return Err(DropReason::TooBig);
        }
        let arrived = summary;
        let packet = &mut frame[ETHERNET_HEADER_LEN..ETHERNET_HEADER_LEN + summary.total_len];
        if let Some(translation) = &plan.translation {
            nat::apply(packet, &mut summary, translation);
        }
        rewrite::decrement_ttl(packet);
        if FragmentKind::of(&arrived) == FragmentKind::First {
            self.fragments.record_first(&arrived, plan, now);
        }
        if too_big {
            let split = fragmenter::split(packet, plan.mtu, |fragment| {
                self.send_to_neighbor(plan.out_nic, plan.next_hop, fragment, now, sink);
            });
            return split.map(|_| ()).map_err(|_| DropReason::TooBig);
        }
        self.send_to_neighbor(plan.out_nic, plan.next_hop, packet, now, sink);
        Ok(())
    }
}
