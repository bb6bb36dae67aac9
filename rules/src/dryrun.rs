//! A described packet run through the data plane itself.
//!
//! An [`Appliance`] — the very code the kernel runs — is built from the compiled policy
//! (with a stand-in lease for an interface addressed by DHCP and a stand-in router
//! advertisement for one addressed by SLAAC, see [`crate::cases`]); the
//! packet is built as a host would send it (a TCP SYN, a UDP datagram, an ICMP message...)
//! and handed to it as an Ethernet frame on its arrival NIC. The appliance's
//! [`Trace`] says what it decided — the destination NAT, the policy's verdict, where the
//! packet went or why it was dropped — and the frames it sent are kept; neighbours answer
//! the appliance's ARP requests (and, for IPv6, tell it their MACs as neighbour discovery
//! would), so a forwarded packet really comes out.
//!
//! This module decides nothing itself: what `rules test` and `explain` report is what the
//! data plane did.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dataplane::appliance::{ApplianceOptions, RedirectKind, Trace};
use dataplane::arp::{self, ArpMessage};
use dataplane::dhcp::ClientMessage;
use dataplane::drops::DropReason;
use dataplane::neighbor;
use dataplane::policy::{DnsUpstream, Policy};
use dataplane::sink::RecordingSink;
use dataplane::testutil::{packets, packets6};
use dataplane::{Appliance, ApplianceConfig};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    ArpOperation, EthernetAddress, EthernetFrame, EthernetProtocol, Icmpv4Message, Icmpv6Message,
    Icmpv6Packet, Icmpv6Repr, IpAddress, IpProtocol, Ipv4Address, Ipv4Cidr, Ipv6Address,
    Ipv6Packet, Ipv6Repr, NdiscNeighborFlags, NdiscRepr, ETHERNET_HEADER_LEN,
};

use crate::cases::{self, Advert, Case, Lease, LEASE_PREFIX_LEN};
use crate::checked::Checked;
use crate::concrete::{ConcretePacket, Destination};
use crate::names::{ICMP, ICMP6, SCTP, TCP, UDP};

/// What the data plane did with one packet in one case.
#[derive(Clone, Debug)]
pub struct Run {
    /// The packet.
    pub packet: ConcretePacket,
    /// The values the unknowns took.
    pub case: Case,
    /// The packet's destination address in this case.
    pub dst: IpAddr,
    /// The data plane's own account.
    pub trace: Trace,
    /// The frames the appliance sent (`(nic, frame)`, ARP requests it had answered left
    /// out): the forwarded packet, or what the sender was told.
    pub sent: Vec<(u8, Vec<u8>)>,
    /// Whether the appliance gave up on a next hop (its drop counters say
    /// `neighbor-unreachable` once its ARP retries ran out): the neighbour answered, but not
    /// as one the appliance learns from on that NIC.
    pub neighbor_unreachable: bool,
}

/// The appliance's MAC on NIC `nic` in a dry run.
pub fn appliance_mac(nic: u8) -> EthernetAddress {
    EthernetAddress([0x52, 0x54, 0x00, 0x6d, 0x00, nic])
}

/// The MAC of the host with address `ip` in a dry run (locally administered, unicast;
/// from the last four bytes of an IPv6 address).
pub fn host_mac(ip: IpAddr) -> EthernetAddress {
    let [a, b, c, d] = match ip {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(v6) => (v6.to_bits() as u32).to_be_bytes(),
    };
    EthernetAddress([0x02, 0x00, a, b, c, d])
}

/// The configuration the kernel would derive from `policy` on NICs `0..nics`, with `case`'s
/// values for what DHCP would learn.
pub fn config(policy: &Policy, nics: u8, case: &Case) -> ApplianceConfig {
    let macs: Vec<EthernetAddress> = (0..nics).map(appliance_mac).collect();
    let mut config = ApplianceConfig::from_policy(policy, &macs);
    if let Some(lease) = case.lease {
        if let Some(nic) = config.nics.get_mut(lease.nic as usize) {
            nic.ipv4 = Some(Ipv4Cidr::new(lease.address, LEASE_PREFIX_LEN));
            nic.gateway = Some(lease.gateway);
        }
    }
    if let Some(resolver) = case.resolver {
        config.upstream_dns = vec![resolver];
    }
    config
}

/// Runs `packet` through an appliance running `policy` in every case its fate may depend
/// on (see [`crate::cases`]): usually one.
pub fn runs(checked: &Checked, policy: &Policy, packet: &ConcretePacket) -> Vec<Run> {
    let known_dst = match packet.dst {
        Destination::Addr(addr) => Some(addr),
        Destination::LearnedSelf | Destination::LearnedSelf6 => None,
    };
    let avoid: Vec<IpAddr> = [Some(packet.src), known_dst]
        .into_iter()
        .flatten()
        .collect();
    let leases: Vec<Option<Lease>> = match (cases::dhcp_nic(checked), packet.dst) {
        (Some(nic), Destination::LearnedSelf) => {
            cases::representatives(&cases::learnable_space(checked), policy)
                .into_iter()
                .map(|address| Some(Lease::of(nic, address)))
                .collect()
        }
        (Some(nic), Destination::Addr(_) | Destination::LearnedSelf6) => {
            vec![Some(cases::stand_in_lease(checked, nic, &avoid))]
        }
        (None, _) => vec![None],
    };
    let resolvers = if cases::resolvers_learned(checked) {
        cases::representatives(&cases::learnable_space(checked), policy)
    } else {
        Vec::new()
    };
    let advert_nic = cases::slaac_nic(checked);
    let prefix = advert_nic.map(|_| cases::stand_in_prefix(checked, &avoid));
    let resolvers6: Vec<Ipv6Addr> = match prefix {
        Some(prefix) => cases::representatives6(&cases::learnable_space6(checked), policy)
            .into_iter()
            .filter(|r| {
                r.to_bits() >> 64 != prefix.to_bits() >> 64 && !avoid.contains(&IpAddr::V6(*r))
            })
            .collect(),
        None => Vec::new(),
    };
    let advert = |resolver: Ipv6Addr| {
        advert_nic.zip(prefix).map(|(nic, prefix)| Advert {
            nic,
            prefix,
            resolver,
        })
    };
    let stand_in6 = resolvers6.first().copied();
    let mut runs = Vec::new();
    for lease in leases {
        let taken = |r: &Ipv4Addr| {
            lease.is_some_and(|l| l.address == *r) || avoid.contains(&IpAddr::V4(*r))
        };
        let stand_in = resolvers.iter().copied().find(|r| !taken(r));
        let case = Case {
            lease,
            resolver: stand_in,
            advert: stand_in6.and_then(advert),
        };
        let first = run(policy, packet, case);
        // A DNS query sent to the resolver DHCP or the router will name: try every
        // resolver the policy can tell apart.
        let to_learned = first.trace.redirect.filter(|r| {
            r.kind == RedirectKind::Dns
                && policy
                    .dns
                    .get(r.rule)
                    .is_some_and(|d| d.upstream == DnsUpstream::Learned)
        });
        match to_learned.map(|r| r.to) {
            Some(IpAddress::Ipv4(_)) if stand_in.is_some() => {
                runs.extend(resolvers.iter().filter(|r| !taken(r)).map(|&resolver| {
                    let case = Case {
                        resolver: Some(resolver),
                        ..case
                    };
                    run(policy, packet, case)
                }));
            }
            Some(IpAddress::Ipv6(_)) if case.advert.is_some() => {
                runs.extend(resolvers6.iter().map(|&resolver| {
                    let case = Case {
                        advert: advert(resolver),
                        ..case
                    };
                    run(policy, packet, case)
                }));
            }
            _ => runs.push(first),
        }
    }
    runs
}

/// Runs `packet` through an appliance running `policy`, in `case`.
pub fn run(policy: &Policy, packet: &ConcretePacket, case: Case) -> Run {
    let nics = policy
        .interfaces
        .iter()
        .map(|i| i.nic)
        .chain([packet.in_nic])
        .max()
        .map_or(1, |n| n + 1);
    let config = config(policy, nics, &case);
    let now = Instant::from_secs(1);
    let options = ApplianceOptions {
        state_capacity: 16,
        ..ApplianceOptions::default()
    };
    let mut appliance = Appliance::new(*policy, &config, options, now);
    // The appliance has been up a while: its IPv6 addresses passed duplicate address
    // detection (what it sends meanwhile — solicitations, advertisements — goes nowhere).
    let mut now = settle(&mut appliance, now);
    if let Some(advert) = case.advert {
        // The uplink's router advertises: the appliance forms its address (which then
        // passes duplicate address detection), learns its default router and resolver.
        let mut frame = router_advert(&advert);
        appliance.receive(advert.nic, &mut frame, now, &mut RecordingSink::default());
        now = settle(&mut appliance, now);
    }
    let dst = match packet.dst {
        Destination::Addr(addr) => addr,
        Destination::LearnedSelf => {
            IpAddr::V4(case.lease.map_or(Ipv4Addr::UNSPECIFIED, |l| l.address))
        }
        // The address the appliance formed from the stand-in advertisement.
        Destination::LearnedSelf6 => IpAddr::V6(
            appliance
                .ipv6_addressing(packet.in_nic)
                .0
                .iter()
                .map(|cidr| cidr.address())
                .find(|a| !a.is_unicast_link_local())
                .unwrap_or(Ipv6Addr::UNSPECIFIED),
        ),
    };
    let ingress = config.nics.get(packet.in_nic as usize).and_then(|n| n.ipv4);
    lease_pool_source(policy, &mut appliance, packet, now);
    let mut frame = frame_of(packet, dst, ingress, pinned_mac(policy, packet));
    let mut sink = RecordingSink::default();
    let trace = appliance.receive_traced(packet.in_nic, &mut frame, now, &mut sink);
    let sent = answer_arp(&mut appliance, sink.frames, now);
    let neighbor_unreachable = wait_for_neighbours(&mut appliance, now);
    Run {
        packet: *packet,
        case,
        dst,
        trace,
        sent,
        neighbor_unreachable,
    }
}

/// Polls the appliance for [`SETTLED`] from `since`, as the kernel's timers do; the time
/// then.
fn settle(appliance: &mut Appliance, since: Instant) -> Instant {
    for step in 1..=SETTLED.secs() {
        let at = since + Duration::from_secs(step);
        appliance.poll(at, &mut RecordingSink::default());
    }
    since + SETTLED
}

/// The link-local address of the uplink's router in a dry run.
pub const ROUTER: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

/// The router advertisement `advert` stands for ([`packets6::router_advert_frame`]: a
/// default router for half an hour, its /64 prefix, its resolver in an RDNSS option).
fn router_advert(advert: &Advert) -> Vec<u8> {
    packets6::router_advert_frame(
        ROUTER,
        host_mac(IpAddr::V6(ROUTER)),
        advert.prefix,
        &[advert.resolver],
    )
}

/// A source in the DHCP pool of its arrival interface sends as the client holding its
/// lease: it first asks the appliance's DHCP server for the address (DHCPREQUEST,
/// INIT-REBOOT), as it did when it came up. The server may refuse, and then the packet is
/// refused as a source without a lease.
fn lease_pool_source(
    policy: &Policy,
    appliance: &mut Appliance,
    packet: &ConcretePacket,
    now: Instant,
) {
    let IpAddr::V4(src) = packet.src else { return };
    let in_pool = policy.dhcp_servers.iter().any(|d| {
        d.nic == packet.in_nic
            && d.pool
                .is_some_and(|p| (p.first..=p.last).contains(&u32::from(src)))
    });
    if !in_pool {
        return;
    }
    let mac = host_mac(packet.src);
    let request = ClientMessage::Verify { address: src }.build(mac, 1, 0, Ipv4Address::BROADCAST);
    let mut frame = packets::ethernet(mac, EthernetAddress::BROADCAST, &request);
    appliance.receive(
        packet.in_nic,
        &mut frame,
        now,
        &mut RecordingSink::default(),
    );
}

/// Lets the appliance's ARP retries run out (its timers, as the kernel polls them); whether
/// it then gave up on a neighbour and dropped what waited for it.
fn wait_for_neighbours(appliance: &mut Appliance, now: Instant) -> bool {
    for retry in 1..=u64::from(neighbor::MAX_REQUESTS) + 1 {
        let later = now + neighbor::REQUEST_INTERVAL * retry as u32;
        appliance.poll(later, &mut RecordingSink::default());
    }
    appliance
        .drop_counters()
        .get(DropReason::NeighborUnreachable)
        > 0
}

/// The frame a host sends for `packet` to `dst`: from the host's MAC (the one the
/// description gives, or the one the ruleset pins for a client, else a stand-in), to the
/// appliance's MAC (its gateway), or to the link's broadcast or multicast address when the
/// IP destination is one or the description says `broadcast`; with the IPv4 options the
/// description gives.
fn frame_of(
    packet: &ConcretePacket,
    dst: IpAddr,
    ingress: Option<Ipv4Cidr>,
    pinned: Option<EthernetAddress>,
) -> Vec<u8> {
    let link_dst = match dst {
        _ if packet.broadcast => EthernetAddress::BROADCAST,
        IpAddr::V4(v4) if v4.is_broadcast() || ingress.and_then(|c| c.broadcast()) == Some(v4) => {
            EthernetAddress::BROADCAST
        }
        IpAddr::V4(v4) if v4.is_multicast() => {
            let [_, b, c, d] = v4.octets();
            EthernetAddress([0x01, 0x00, 0x5e, b & 0x7f, c, d])
        }
        IpAddr::V6(v6) if v6.is_multicast() => {
            let [.., a, b, c, d] = v6.octets();
            EthernetAddress([0x33, 0x33, a, b, c, d])
        }
        _ => appliance_mac(packet.in_nic),
    };
    let link_src = packet
        .mac
        .map(EthernetAddress)
        .or(pinned)
        .unwrap_or_else(|| host_mac(packet.src));
    match (packet.src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst_v4)) => {
            let mut bytes = ipv4_packet(packet, src, dst_v4);
            if !packet.options.is_empty() {
                let options: Vec<u8> = packet
                    .options
                    .kinds()
                    .flat_map(packets::ip_option)
                    .collect();
                bytes = packets::with_ip_options(&bytes, &options);
            }
            packets::ethernet(link_src, link_dst, &bytes)
        }
        (src, dst) => {
            // IPv6 (or a mix, sent as IPv6 with the IPv4 address mapped): the packet as
            // sent; the data plane decides what it does with it.
            let v6 = |a: IpAddr| match a {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            let bytes = ipv6_packet(packet, v6(src), v6(dst));
            packets::ethernet_of(EthernetProtocol::Ipv6, link_src, link_dst, &bytes)
        }
    }
}

/// The MAC the ruleset pins for the client `packet` comes from, if any.
fn pinned_mac(policy: &Policy, packet: &ConcretePacket) -> Option<EthernetAddress> {
    let is_source = |c: &&dataplane::policy::Client| match packet.src {
        IpAddr::V4(src) => c.ipv4 == Some(src.into()),
        IpAddr::V6(src) => c.ipv6 == Some(src.to_bits()),
    };
    policy
        .clients
        .iter()
        .filter(|c| c.nic == packet.in_nic)
        .find(is_source)
        .and_then(|c| c.mac.map(EthernetAddress))
}

/// A first IPv6 packet of `packet`'s protocol from `src` to `dst`, as a host sends it.
fn ipv6_packet(packet: &ConcretePacket, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let (s, d): (Ipv6Address, Ipv6Address) = (src, dst);
    let (sport, dport) = (packet.src_port, packet.dst_port);
    match packet.protocol {
        TCP => packets6::tcp_syn(s, sport, d, dport),
        UDP => packets6::udp(s, sport, d, dport, b"moat dry run"),
        ICMP6 => {
            let (icmp_type, code) = packet.icmp;
            match Icmpv6Message::from(icmp_type) {
                Icmpv6Message::EchoRequest | Icmpv6Message::EchoReply => {
                    let request = Icmpv6Message::from(icmp_type) == Icmpv6Message::EchoRequest;
                    packets6::echo(s, d, request, ECHO_IDENT, 1)
                }
                message if message.is_error() => {
                    // An error quotes the packet it is about: one the receiver sent.
                    let quoted = packets6::udp(d, 40000, s, 53, b"");
                    let header = Ipv6Repr {
                        src_addr: d,
                        dst_addr: s,
                        next_header: IpProtocol::Udp,
                        payload_len: quoted.len() - 40,
                        hop_limit: 64,
                    };
                    let data = &quoted[40..];
                    let repr = match message {
                        Icmpv6Message::PktTooBig => Icmpv6Repr::PktTooBig {
                            mtu: 1280,
                            header,
                            data,
                        },
                        Icmpv6Message::TimeExceeded => Icmpv6Repr::TimeExceeded {
                            reason: code.into(),
                            header,
                            data,
                        },
                        Icmpv6Message::ParamProblem => Icmpv6Repr::ParamProblem {
                            reason: code.into(),
                            pointer: 0,
                            header,
                            data,
                        },
                        _ => Icmpv6Repr::DstUnreachable {
                            reason: code.into(),
                            header,
                            data,
                        },
                    };
                    packets6::icmp(s, d, &repr)
                }
                _ => {
                    // Any other message: its type and code, and a zeroed body.
                    let mut body = vec![0u8; 8];
                    body[0] = icmp_type;
                    body[1] = code;
                    packets6::packet(s, d, IpProtocol::Icmpv6, &body)
                }
            }
        }
        protocol => packets6::packet(s, d, protocol.into(), &transport_header(packet)),
    }
}

/// A first packet of `packet`'s protocol from `src` to `dst`, as a host sends it.
fn ipv4_packet(packet: &ConcretePacket, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let (s, d) = (src.octets(), dst.octets());
    let (sport, dport) = (packet.src_port, packet.dst_port);
    match packet.protocol {
        TCP => packets::tcp_syn(s, sport, d, dport),
        UDP => packets::udp(s, sport, d, dport, b"moat dry run"),
        SCTP => packets::sctp_init(s, sport, d, dport),
        ICMP => {
            let (icmp_type, code) = packet.icmp;
            match Icmpv4Message::from(icmp_type) {
                Icmpv4Message::EchoRequest | Icmpv4Message::EchoReply => {
                    let request = Icmpv4Message::from(icmp_type) == Icmpv4Message::EchoRequest;
                    packets::icmp_echo(s, d, request, ECHO_IDENT, 1, b"moat dry run")
                }
                Icmpv4Message::DstUnreachable
                | Icmpv4Message::Redirect
                | Icmpv4Message::TimeExceeded
                | Icmpv4Message::ParamProblem
                | Icmpv4Message::Unknown(SOURCE_QUENCH) => {
                    // An error quotes the packet it is about: one the receiver sent.
                    let quoted = packets::udp(d, 40000, s, 53, b"");
                    packets::icmp_error(s, d, icmp_type, code, &quoted)
                }
                _ => packets::icmp(s, d, packet.icmp, [0; 4], b""),
            }
        }
        protocol => packets::ipv4(s, d, protocol, &transport_header(packet)),
    }
}

/// How long the dry-run appliance runs before the packet arrives: long enough for its IPv6
/// addresses to pass duplicate address detection.
const SETTLED: Duration = Duration::from_secs(3);

/// An ICMP echo's identifier in a dry run (`explain` shows it: `echo-request id 28020`).
pub const ECHO_IDENT: u16 = 0x6d74;
/// ICMP source quench (RFC 792), an error type `Icmpv4Message` has no name for.
const SOURCE_QUENCH: u8 = 4;

/// A plausible start of a transport header for protocols the builders do not know: the
/// ports first (UDP-Lite and DCCP begin so), then zeros.
fn transport_header(packet: &ConcretePacket) -> Vec<u8> {
    let mut header = vec![0u8; 8];
    header[..2].copy_from_slice(&packet.src_port.to_be_bytes());
    header[2..4].copy_from_slice(&packet.dst_port.to_be_bytes());
    header
}

/// Rounds of ARP answers before giving up (a packet needs at most one resolution; its
/// answer, to the sender, one more).
const ARP_ROUNDS: usize = 4;

/// Answers the appliance's ARP requests in `frames` (each target is a host at
/// [`host_mac`]), and returns every other frame it sent, including the ones released by
/// the answers.
fn answer_arp(
    appliance: &mut Appliance,
    mut frames: Vec<(u8, Vec<u8>)>,
    now: Instant,
) -> Vec<(u8, Vec<u8>)> {
    let mut kept = Vec::new();
    for _ in 0..ARP_ROUNDS {
        if frames.is_empty() {
            break;
        }
        let mut released = Vec::new();
        for (nic, frame) in frames {
            if let Some(advert) = neighbour_advert(&frame, nic) {
                let mut sink = RecordingSink::default();
                let mut bytes = advert;
                appliance.receive(nic, &mut bytes, now, &mut sink);
                released.extend(sink.frames);
                continue;
            }
            match arp_request(&frame) {
                Some(request) if request.sender_mac == appliance_mac(nic) => {
                    let reply = arp::reply_to(&request, host_mac(IpAddr::V4(request.target_ip)));
                    let mut bytes = vec![0u8; arp::ARP_FRAME_LEN];
                    arp::emit(&mut bytes, request.sender_mac, &reply);
                    let mut sink = RecordingSink::default();
                    appliance.receive(nic, &mut bytes, now, &mut sink);
                    released.extend(sink.frames);
                }
                _ => kept.push((nic, frame)),
            }
        }
        frames = released;
    }
    kept.extend(frames);
    kept
}

/// The neighbour advertisement answering the appliance's neighbour solicitation in
/// `frame` (sent on `nic`), from the solicited host at [`host_mac`], if `frame` is one.
fn neighbour_advert(frame: &[u8], nic: u8) -> Option<Vec<u8>> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    if ethernet.ethertype() != EthernetProtocol::Ipv6 || ethernet.src_addr() != appliance_mac(nic) {
        return None;
    }
    let ip = Ipv6Packet::new_checked(ethernet.payload()).ok()?;
    let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
    let caps = ChecksumCapabilities::default();
    let Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr, .. }) =
        Icmpv6Repr::parse(&ip.src_addr(), &ip.dst_addr(), &icmp, &caps).ok()?
    else {
        return None;
    };
    let mac = host_mac(IpAddr::V6(target_addr));
    let advert = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
        flags: NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE,
        target_addr,
        lladdr: Some(mac.into()),
    });
    let mut packet = packets6::icmp(target_addr, ip.src_addr(), &advert);
    // Neighbour discovery travels with hop limit 255 (RFC 4861 §7.1.2).
    Ipv6Packet::new_unchecked(&mut packet[..]).set_hop_limit(255);
    Some(packets::ethernet_of(
        EthernetProtocol::Ipv6,
        mac,
        appliance_mac(nic),
        &packet,
    ))
}

/// The ARP request a frame carries, if it is one.
fn arp_request(frame: &[u8]) -> Option<ArpMessage> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    if ethernet.ethertype() != EthernetProtocol::Arp {
        return None;
    }
    arp::parse(&frame[ETHERNET_HEADER_LEN..]).filter(|m| m.operation == ArpOperation::Request)
}
