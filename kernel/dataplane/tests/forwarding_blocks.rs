//! The forwarding building blocks used together, the way the per-packet pipeline uses them:
//! anti-spoofing, routing, fragments following their first fragment through NAT, and the
//! ICMP errors that forwarding sends back — on real packet bytes.

use dataplane::antispoof::{SourceFilter, Spoofed};
use dataplane::fragment::{FragmentKind, FragmentTable, Refused};
use dataplane::icmp_error::{ErrorReplies, IcmpError, NoReply, Offending};
use dataplane::packet::{tcp_flags, IcmpSummary, IpSummary, Transport};
use dataplane::policy::{Client, SourcePos, Span};
use dataplane::rewrite;
use dataplane::route::{Route, RouteTable, Topology};
use dataplane::share::Source;
use dataplane::testutil::packets::{self, checksums_valid};
use dataplane::NicConfig;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpAddress, Ipv4Address, Ipv4Cidr, Ipv4Packet};

const UPLINK: u8 = 0;
const CLIENTS: u8 = 1;
const CLIENT: [u8; 4] = [10, 137, 1, 10];
const SERVER: [u8; 4] = [203, 0, 113, 5];
const UPLINK_ADDRESS: Ipv4Address = Ipv4Address::new(10, 0, 2, 15);
const GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
const CLIENT_LAN_ADDRESS: Ipv4Address = Ipv4Address::new(10, 137, 1, 1);

fn nic(mac: u8, addr: Ipv4Address, prefix_len: u8, gateway: Option<Ipv4Address>) -> NicConfig {
    NicConfig {
        mac: EthernetAddress([0x52, 0x54, 0, 0, 0, mac]),
        ipv4: Some(Ipv4Cidr::new(addr, prefix_len)),
        gateway,
        dhcp: false,
    }
}

/// The appliance's addressing: the uplink (10.0.2.15/24 via 10.0.2.2) and one client LAN
/// (10.137.1.1/24) with one declared client.
struct Addressing {
    nics: Vec<NicConfig>,
    clients: Vec<Client>,
}

impl Addressing {
    fn new() -> Addressing {
        let client = Client {
            name: Span::EMPTY,
            nic: CLIENTS,
            ipv4: Some(u32::from_be_bytes(CLIENT)),
            ipv6: None,
            mac: None,
            max_states: 0,
            pos: SourcePos::default(),
        };
        Addressing {
            nics: vec![
                nic(1, UPLINK_ADDRESS, 24, Some(GATEWAY)),
                nic(2, CLIENT_LAN_ADDRESS, 24, None),
            ],
            clients: vec![client],
        }
    }

    fn topology(&self) -> Topology<'_> {
        Topology {
            nics: &self.nics,
            uplink: Some(UPLINK),
            clients: &self.clients,
        }
    }
}

/// A packet that came in on the client LAN.
fn from_client<'a>(bytes: &'a [u8], summary: &'a IpSummary) -> Offending<'a> {
    Offending {
        bytes,
        summary,
        ingress: Some(Ipv4Cidr::new(CLIENT_LAN_ADDRESS, 24)),
        source6: None,
        link_broadcast: false,
    }
}

fn parsed(bytes: &[u8]) -> IpSummary {
    IpSummary::parse(bytes).expect("a valid packet")
}

/// What a forwarded first fragment leaves behind for the rest of its datagram.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Forwarded {
    nic: u8,
    next_hop: IpAddress,
    translated_src: Ipv4Address,
}

#[test]
fn fragmented_udp_from_a_client_leaves_the_uplink_masqueraded_and_still_reassembles() {
    let addressing = Addressing::new();
    let topology = addressing.topology();
    let (spoofing, routes) = (SourceFilter::new(&topology), RouteTable::new(&topology));
    let mut fragments_seen = FragmentTable::new();
    let now = Instant::from_secs(5);

    let datagram = packets::udp(CLIENT, 40000, SERVER, 9000, &[0xa5; 4000]);
    let mut sent = Vec::new();
    for mut bytes in packets::fragments(&datagram, 1480) {
        let mut summary = parsed(&bytes);
        assert_eq!(
            spoofing.check(CLIENTS, summary.ipv4_addresses().unwrap().0),
            Ok(())
        );
        let decision = match FragmentKind::of(&summary) {
            FragmentKind::First => {
                // Classified like any packet: the policy passes it, NAT picks the uplink address.
                let Route::Forward { nic, next_hop, .. } = routes.lookup(summary.dst) else {
                    panic!("no route to the server")
                };
                let decision = Forwarded {
                    nic,
                    next_hop,
                    translated_src: UPLINK_ADDRESS,
                };
                fragments_seen.record_first(CLIENTS, &summary, decision, now);
                decision
            }
            FragmentKind::Later => fragments_seen
                .follow(CLIENTS, &summary, now)
                .expect("follows its first"),
            FragmentKind::Whole => panic!("the datagram was fragmented"),
        };
        assert_eq!((decision.nic, decision.next_hop), (UPLINK, GATEWAY.into()));
        rewrite::decrement_ttl(&mut bytes);
        rewrite::set_src_addr(&mut bytes, &mut summary, decision.translated_src.into());
        assert!(
            IpSummary::parse(&bytes).is_ok(),
            "header checksum stays valid"
        );
        sent.push(bytes);
    }
    assert_eq!(sent.len(), 3);
    assert_eq!(
        fragments_seen.len(),
        0,
        "the datagram completed and was forgotten"
    );

    // The server reassembles: every byte arrived, the UDP checksum (in the first fragment,
    // updated for the new source) verifies over the whole datagram.
    let received = packets::reassembled(&sent);
    assert!(checksums_valid(&received));
    let summary = parsed(&received);
    assert_eq!(summary.src, UPLINK_ADDRESS.into());
    assert_eq!(summary.ports(), (40000, 9000));
    assert_eq!(&received[28..], &datagram[28..], "payload intact");
}

#[test]
fn later_fragment_of_a_blocked_datagram_never_leaves() {
    let mut fragments_seen: FragmentTable<Forwarded> = FragmentTable::new();
    let datagram = packets::udp(CLIENT, 40000, SERVER, 23, &[1; 3000]);
    let fragments = packets::fragments(&datagram, 1480);
    // The first fragment was blocked by the policy: nothing recorded.
    assert_eq!(
        FragmentKind::of(&parsed(&fragments[0])),
        FragmentKind::First
    );
    for later in &fragments[1..] {
        assert_eq!(
            fragments_seen.follow(CLIENTS, &parsed(later), Instant::from_secs(1)),
            Err(Refused::Orphan)
        );
    }
    assert_eq!(fragments_seen.counters().orphans_dropped, 2);
}

#[test]
fn ttl_one_from_a_client_yields_time_exceeded_routed_back_to_it() {
    let addressing = Addressing::new();
    let topology = addressing.topology();
    let routes = RouteTable::new(&topology);
    let mut replies = ErrorReplies::default();

    let mut probe = packets::udp(CLIENT, 33434, SERVER, 33434, b"traceroute");
    packets::set_ttl(&mut probe, 1);
    let summary = parsed(&probe);
    assert!(matches!(
        routes.lookup(summary.dst),
        Route::Forward { nic: UPLINK, .. }
    ));
    let offending = from_client(&probe, &summary);
    let error = replies
        .icmp_error(
            IcmpError::TimeExceeded,
            &offending,
            Source::neighbour(CLIENTS, summary.ipv4_addresses().unwrap().0),
            Instant::from_secs(1),
        )
        .expect("a time-exceeded error");
    assert!(checksums_valid(&error));
    let reply = parsed(&error);
    assert_eq!(reply.src, CLIENT_LAN_ADDRESS.into());
    assert_eq!(
        routes.lookup(reply.dst),
        Route::Forward {
            nic: CLIENTS,
            next_hop: Ipv4Address::from(CLIENT).into(),
            mtu: 1500
        }
    );
    let Transport::Icmp(IcmpSummary::Error {
        icmp_type: 11,
        code: 0,
        quoted,
    }) = reply.transport
    else {
        panic!("not a time-exceeded error: {:?}", reply.transport)
    };
    assert_eq!(
        (quoted.src_port, quoted.dst_port),
        (Some(33434), Some(33434))
    );
}

#[test]
fn packet_bigger_than_the_egress_mtu_with_df_yields_fragmentation_needed() {
    let addressing = Addressing::new();
    let topology = addressing.topology();
    let mut routes = RouteTable::new(&topology);
    routes.set_mtu(UPLINK, 1400);

    let segment = packets::tcp(
        (CLIENT, 40000),
        (SERVER, 443),
        (1, 1, tcp_flags::ACK),
        &[0; 1460],
    );
    let summary = parsed(&segment);
    assert!(summary.dont_fragment);
    let Route::Forward { mtu, .. } = routes.lookup(summary.dst) else {
        panic!("no route")
    };
    assert!(summary.total_len > mtu as usize);
    let offending = from_client(&segment, &summary);
    let error =
        dataplane::icmp_error::build_icmp_error(IcmpError::FragmentationNeeded { mtu }, &offending)
            .expect("a fragmentation-needed error");
    assert!(checksums_valid(&error));
    assert_eq!(parsed(&error).icmp_type_code(), (3, 4));
    let icmp = Ipv4Packet::new_checked(&error[..])
        .expect("IPv4")
        .payload()
        .to_vec();
    assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1400);
}

#[test]
fn spoofed_packet_from_the_uplink_is_dropped_and_answered_by_nothing() {
    let addressing = Addressing::new();
    let topology = addressing.topology();
    let spoofing = SourceFilter::new(&topology);
    // Someone outside poses as the client to reach the client LAN.
    let posing = packets::udp(CLIENT, 53, [10, 137, 1, 20], 53, b"x");
    assert_eq!(
        spoofing.check(UPLINK, parsed(&posing).ipv4_addresses().unwrap().0),
        Err(Spoofed::ClientSourceOnUplink)
    );
    // An ICMP error about a packet from a broadcast source is never sent either.
    let from_broadcast = packets::udp([10, 137, 1, 255], 68, [10, 137, 1, 1], 67, b"x");
    let summary = parsed(&from_broadcast);
    let offending = from_client(&from_broadcast, &summary);
    assert_eq!(
        ErrorReplies::default().icmp_error(
            IcmpError::PortUnreachable,
            &offending,
            Source::neighbour(CLIENTS, summary.ipv4_addresses().unwrap().0),
            Instant::ZERO
        ),
        Err(NoReply::InvalidSource)
    );
}
