//! IPv6 neighbour discovery and addressing, end to end through `ndp::NeighborDiscovery`
//! with real frames (built and read with `smoltcp::wire`): duplicate address detection,
//! answering solicitations, resolving next hops, SLAAC on the uplink, router
//! advertisements on client interfaces, RA guard, and clients that claim what is not theirs.

use dataplane::ndp::wire::{solicit, NdFrame, Outgoing, RaOptions};
use dataplane::ndp::{NdDrop, NdEvent, NdOutcome, NeighborDiscovery, NextHop, SourceClass6};
use dataplane::neighbor::{
    MAX_REQUESTS, MAX_RESOLVING, MAX_RESOLVING_PER_SOURCE, REACHABLE_TIME, REQUEST_INTERVAL,
};
use dataplane::sink::RecordingSink;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, Ipv6Address, Ipv6Cidr, Ipv6Packet, NdiscNeighborFlags,
    NdiscPrefixInfoFlags, NdiscPrefixInformation, NdiscRepr, NdiscRouterFlags,
};

const UPLINK_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x00]);
const CLIENTS_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x01]);
const OTHER_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x02]);
const ROUTER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
const WORK_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x10]);
const INTRUDER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x66]);

const STATIC: &str = "\
interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3 address6 2001:db8:2::f/64 gateway6 fe80::1
interface clients nic1 address 10.137.1.1/24 address6 fd00:137:1::1/64 ra
interface other   nic2 address 10.137.2.1/24 address6 fd00:137:2::1/64
client work  10.137.1.10, fd00:137:1::10 on clients
client guest 10.137.2.10, fd00:137:2::10 on other
dns from clients to upstream
";

const SLAAC: &str = "\
interface uplink  nic0 dhcp slaac
interface clients nic1 address 10.137.1.1/24 address6 fd00:137:1::1/64 ra
";

fn a(text: &str) -> Ipv6Address {
    text.parse().unwrap()
}

fn t(ms: i64) -> Instant {
    Instant::from_millis(ms)
}

/// The appliance's neighbour discovery on a compiled ruleset, with a clock and a sink.
struct Nd {
    nd: NeighborDiscovery,
    now: Instant,
}

impl Nd {
    fn new(rules: &str) -> Nd {
        let compiled =
            rules::compile("t.rules", rules).unwrap_or_else(|e| panic!("{}", e.render()));
        let policy = compiled.policy.as_policy();
        let macs = [UPLINK_MAC, CLIENTS_MAC, OTHER_MAC];
        Nd {
            nd: NeighborDiscovery::from_policy(&policy, &macs, 7, t(0)),
            now: t(0),
        }
    }

    /// Like [`Nd::new`], with DAD of the configured addresses passed.
    fn ready(rules: &str) -> Nd {
        let mut nd = Nd::new(rules);
        nd.poll();
        nd.advance(Duration::from_secs(1));
        nd.poll();
        nd
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    fn poll(&mut self) -> Vec<(u8, Vec<u8>)> {
        let mut sink = RecordingSink::default();
        self.nd.poll(self.now, &mut sink);
        sink.frames
    }

    fn receive(&mut self, nic: u8, frame: &[u8]) -> (NdOutcome, Vec<(u8, Vec<u8>)>) {
        let mut sink = RecordingSink::default();
        let outcome = self.nd.receive(nic, frame, self.now, &mut sink);
        (outcome, sink.frames)
    }

    /// Where a packet of client work's goes.
    fn next_hop(
        &mut self,
        nic: u8,
        hop: Ipv6Address,
        packet: &[u8],
    ) -> (NextHop, Vec<(u8, Vec<u8>)>) {
        self.next_hop_for(
            SourceClass6::Neighbour(1, a("fd00:137:1::10")),
            nic,
            hop,
            packet,
        )
    }

    /// Where a packet of `source`'s goes.
    fn next_hop_for(
        &mut self,
        source: SourceClass6,
        nic: u8,
        hop: Ipv6Address,
        packet: &[u8],
    ) -> (NextHop, Vec<(u8, Vec<u8>)>) {
        let mut sink = RecordingSink::default();
        let outcome = self
            .nd
            .next_hop_mac(nic, hop, packet, source, self.now, &mut sink);
        (outcome, sink.frames)
    }
}

/// An ND frame from a neighbour (hop limit 255, as RFC 4861 requires).
fn frame(
    eth_src: EthernetAddress,
    eth_dst: EthernetAddress,
    src: Ipv6Address,
    dst: Ipv6Address,
    message: NdiscRepr,
) -> Vec<u8> {
    let out = Outgoing {
        eth_src,
        eth_dst,
        src,
        dst,
        message,
        rdnss: None,
    };
    let mut bytes = vec![0; out.len()];
    out.emit(&mut bytes);
    bytes
}

/// A neighbour advertisement from a neighbour (override flag set, router flag clear).
fn na(target: Ipv6Address, mac: EthernetAddress, solicited: bool) -> NdiscRepr<'static> {
    let mut flags = NdiscNeighborFlags::OVERRIDE;
    if solicited {
        flags |= NdiscNeighborFlags::SOLICITED;
    }
    NdiscRepr::NeighborAdvert {
        flags,
        target_addr: target,
        lladdr: Some(mac.into()),
    }
}

/// A frame to all nodes.
fn to_all_nodes(mac: EthernetAddress, src: Ipv6Address, message: NdiscRepr) -> Vec<u8> {
    frame(mac, mcast_mac(ALL_NODES), src, ALL_NODES, message)
}

/// What the appliance does with an unsolicited advertisement from the intruder (sending
/// from `src`) on `nic` that claims `target`.
fn intruder_claims(nd: &mut Nd, nic: u8, src: Ipv6Address, target: Ipv6Address) -> NdOutcome {
    let claim = to_all_nodes(INTRUDER_MAC, src, na(target, INTRUDER_MAC, false));
    nd.receive(nic, &claim).0
}

/// A solicitation for `target` from (`mac`, `src`) to its solicited-node group (with the
/// source link-layer option unless `src` is `::`).
fn asking(mac: EthernetAddress, src: Ipv6Address, target: Ipv6Address) -> Vec<u8> {
    let group = solicited_node(target);
    let lladdr = (!src.is_unspecified()).then_some(mac);
    frame(mac, mcast_mac(group), src, group, solicit(target, lladdr))
}

fn solicited_node(addr: Ipv6Address) -> Ipv6Address {
    dataplane::ndp::address::solicited_node(addr)
}

fn mcast_mac(group: Ipv6Address) -> EthernetAddress {
    dataplane::ndp::address::multicast_mac(group)
}

/// Reads a frame the appliance sent: its ND message and addresses.
fn sent(frame: &[u8]) -> NdFrame<'_> {
    NdFrame::parse(frame).unwrap_or_else(|e| panic!("not a valid ND frame ({e:?}): {frame:02x?}"))
}

fn link_local(mac: EthernetAddress) -> Ipv6Address {
    dataplane::ndp::address::link_local(mac)
}

const ALL_NODES: Ipv6Address = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ALL_ROUTERS: Ipv6Address = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

// ---- duplicate address detection ----

#[test]
fn every_ipv6_interface_checks_its_link_local_and_static_addresses_before_using_them() {
    let mut nd = Nd::new(STATIC);
    assert!(nd.nd.link_local(1).is_none(), "not usable during DAD");
    assert!(
        nd.nd.is_own(1, a("fd00:137:1::1")),
        "routing knows it at once"
    );
    let frames = nd.poll();
    let probes: Vec<(u8, Ipv6Address)> = frames
        .iter()
        .map(|(nic, f)| {
            let m = sent(f);
            assert_eq!(m.src, Ipv6Address::UNSPECIFIED);
            let NdiscRepr::NeighborSolicit {
                target_addr,
                lladdr,
            } = m.message
            else {
                panic!("{:?}", m.message)
            };
            assert_eq!(lladdr, None, "no source link-layer option from ::");
            assert_eq!(m.dst, solicited_node(target_addr));
            assert_eq!(m.eth_dst, mcast_mac(m.dst));
            (*nic, target_addr)
        })
        .collect();
    assert!(probes.contains(&(1, link_local(CLIENTS_MAC))));
    assert!(probes.contains(&(1, a("fd00:137:1::1"))));
    assert!(probes.contains(&(0, a("2001:db8:2::f"))));
    nd.advance(Duration::from_secs(1));
    nd.poll();
    assert_eq!(nd.nd.link_local(1), Some(link_local(CLIENTS_MAC)));
}

#[test]
fn an_address_someone_answers_for_during_dad_is_never_used() {
    let mut nd = Nd::new(STATIC);
    nd.poll();
    let mine = a("fd00:137:1::1");
    let answer = to_all_nodes(OTHER_MAC, link_local(OTHER_MAC), na(mine, OTHER_MAC, false));
    assert_eq!(nd.receive(1, &answer).0, NdOutcome::Handled);
    assert!(!nd.nd.is_own(1, mine));
    assert_eq!(
        nd.nd.take_events(),
        [NdEvent::AddressRemoved {
            nic: 1,
            cidr: Ipv6Cidr::new(mine, 64)
        }]
    );
    nd.advance(Duration::from_secs(2));
    nd.poll();
    // Asked for it later, the appliance stays silent.
    let ask = asking(WORK_MAC, a("fd00:137:1::10"), mine);
    let (outcome, out) = nd.receive(1, &ask);
    assert_eq!((outcome, out.len()), (NdOutcome::Handled, 0));
}

#[test]
fn another_node_doing_dad_for_the_same_address_makes_it_duplicate() {
    let mut nd = Nd::new(STATIC);
    nd.poll();
    let mine = a("fd00:137:1::1");
    let probe = asking(OTHER_MAC, Ipv6Address::UNSPECIFIED, mine);
    nd.receive(1, &probe);
    assert!(!nd.nd.is_own(1, mine));
}

#[test]
fn a_node_probing_for_an_address_in_use_is_told_it_is_taken() {
    let mut nd = Nd::ready(STATIC);
    let mine = a("fd00:137:1::1");
    let probe = asking(WORK_MAC, Ipv6Address::UNSPECIFIED, mine);
    let (outcome, out) = nd.receive(1, &probe);
    assert_eq!(outcome, NdOutcome::Handled);
    let reply = sent(&out[0].1);
    assert_eq!(
        (reply.dst, reply.eth_dst),
        (ALL_NODES, mcast_mac(ALL_NODES))
    );
    let NdiscRepr::NeighborAdvert {
        flags, target_addr, ..
    } = reply.message
    else {
        panic!()
    };
    assert_eq!(target_addr, mine);
    assert!(!flags.contains(NdiscNeighborFlags::SOLICITED));
    assert!(nd.nd.is_own(1, mine));
}

// ---- answering ----

#[test]
fn a_solicitation_for_an_appliance_address_is_answered_at_the_senders_mac() {
    let mut nd = Nd::ready(STATIC);
    let mine = a("fd00:137:1::1");
    let work = a("fd00:137:1::10");
    let ask = asking(WORK_MAC, work, mine);
    let (outcome, out) = nd.receive(1, &ask);
    assert_eq!(outcome, NdOutcome::Handled);
    assert_eq!(out.len(), 1);
    let (nic, bytes) = &out[0];
    let reply = sent(bytes);
    assert_eq!(*nic, 1);
    assert_eq!((reply.eth_src, reply.eth_dst), (CLIENTS_MAC, WORK_MAC));
    assert_eq!((reply.src, reply.dst), (mine, work));
    let NdiscRepr::NeighborAdvert {
        flags,
        target_addr,
        lladdr,
    } = reply.message
    else {
        panic!()
    };
    assert_eq!(target_addr, mine);
    assert_eq!(lladdr, Some(CLIENTS_MAC.into()));
    assert!(flags.contains(
        NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::ROUTER | NdiscNeighborFlags::OVERRIDE
    ));
    // And the sender was learned: a packet to it goes out at once.
    assert_eq!(
        nd.next_hop(1, work, b"packet").0,
        NextHop::Resolved(WORK_MAC)
    );
}

#[test]
fn the_link_local_address_is_answered_too_but_not_on_another_nic() {
    let mut nd = Nd::ready(STATIC);
    let target = link_local(CLIENTS_MAC);
    let ask = |mac| asking(mac, link_local(mac), target);
    assert_eq!(nd.receive(1, &ask(WORK_MAC)).1.len(), 1);
    assert_eq!(
        nd.receive(2, &ask(OTHER_MAC)).1.len(),
        0,
        "nic2's link-local is another"
    );
}

#[test]
fn a_solicitation_for_someone_else_is_not_answered() {
    let mut nd = Nd::ready(STATIC);
    let target = a("fd00:137:1::99");
    let ask = asking(WORK_MAC, a("fd00:137:1::10"), target);
    assert_eq!(nd.receive(1, &ask), (NdOutcome::Handled, vec![]));
}

#[test]
fn a_message_that_crossed_a_router_is_refused() {
    let mut nd = Nd::ready(STATIC);
    let mine = a("fd00:137:1::1");
    let mut ask = frame(
        WORK_MAC,
        CLIENTS_MAC,
        a("fd00:137:1::10"),
        mine,
        solicit(mine, Some(WORK_MAC)),
    );
    let mut ip = Ipv6Packet::new_unchecked(&mut ask[14..]);
    ip.set_hop_limit(64);
    assert_eq!(
        nd.receive(1, &ask),
        (
            NdOutcome::Dropped(NdDrop::Invalid("nd-hop-limit-not-255")),
            vec![]
        )
    );
}

#[test]
fn a_corrupted_checksum_is_refused_and_other_icmpv6_is_not_nd() {
    let mut nd = Nd::ready(STATIC);
    let mine = a("fd00:137:1::1");
    let mut ask = frame(
        WORK_MAC,
        CLIENTS_MAC,
        a("fd00:137:1::10"),
        mine,
        solicit(mine, Some(WORK_MAC)),
    );
    let last = ask.len() - 1;
    ask[last] ^= 0xff;
    assert_eq!(
        nd.receive(1, &ask).0,
        NdOutcome::Dropped(NdDrop::Invalid("nd-malformed"))
    );
    assert_eq!(nd.receive(1, &ask[..20]).0, NdOutcome::NotNd);
}

// ---- resolution ----

#[test]
fn a_next_hop_is_solicited_and_its_packets_leave_when_it_answers() {
    let mut nd = Nd::ready(STATIC);
    let work = a("fd00:137:1::10");
    let (hop, out) = nd.next_hop(1, work, b"first");
    assert_eq!(hop, NextHop::Queued);
    let ask = sent(&out[0].1);
    assert_eq!(
        (ask.src, ask.dst),
        (a("fd00:137:1::1"), solicited_node(work))
    );
    assert_eq!(ask.eth_dst, mcast_mac(solicited_node(work)));
    assert_eq!(
        ask.message,
        NdiscRepr::NeighborSolicit {
            target_addr: work,
            lladdr: Some(CLIENTS_MAC.into())
        }
    );
    assert_eq!(
        nd.next_hop(1, work, b"second"),
        (NextHop::Queued, vec![]),
        "asked once"
    );

    let answer = frame(
        WORK_MAC,
        CLIENTS_MAC,
        work,
        a("fd00:137:1::1"),
        na(work, WORK_MAC, true),
    );
    let (outcome, released) = nd.receive(1, &answer);
    assert_eq!(outcome, NdOutcome::Handled);
    let payloads: Vec<&[u8]> = released
        .iter()
        .map(|(nic, f)| {
            let eth = EthernetFrame::new_checked(&f[..]).unwrap();
            assert_eq!(
                (*nic, eth.dst_addr(), eth.src_addr()),
                (1, WORK_MAC, CLIENTS_MAC)
            );
            &f[14..]
        })
        .collect();
    assert_eq!(payloads, [&b"first"[..], &b"second"[..]]);
    assert_eq!(
        nd.next_hop(1, work, b"third").0,
        NextHop::Resolved(WORK_MAC)
    );
}

#[test]
fn an_off_link_next_hop_is_solicited_from_the_link_local_address() {
    let mut nd = Nd::ready(STATIC);
    let (_, out) = nd.next_hop(0, a("fe80::1"), b"p");
    assert_eq!(sent(&out[0].1).src, link_local(UPLINK_MAC));
}

#[test]
fn a_multicast_link_address_is_never_learned() {
    let mut nd = Nd::ready(STATIC);
    let work = a("fd00:137:1::10");
    nd.next_hop(1, work, b"p");
    let bad = EthernetAddress([0x33, 0x33, 0, 0, 0, 1]);
    let answer = frame(
        WORK_MAC,
        CLIENTS_MAC,
        work,
        a("fd00:137:1::1"),
        na(work, bad, true),
    );
    assert_eq!(
        nd.receive(1, &answer),
        (
            NdOutcome::Dropped(NdDrop::Invalid("nd-link-address-unusable")),
            vec![]
        )
    );
    assert_eq!(nd.next_hop(1, work, b"q").0, NextHop::Queued);
}

#[test]
fn an_unanswered_next_hop_is_asked_again_then_given_up() {
    let mut nd = Nd::ready(STATIC);
    let work = a("fd00:137:1::10");
    nd.next_hop(1, work, b"p");
    for _ in 1..MAX_REQUESTS {
        nd.advance(REQUEST_INTERVAL);
        let out = nd.poll();
        assert_eq!(out.len(), 1);
        assert_eq!(sent(&out[0].1).dst, solicited_node(work));
    }
    nd.advance(REQUEST_INTERVAL);
    assert!(nd.poll().is_empty());
    assert_eq!(
        nd.nd.take_events(),
        [NdEvent::Unreachable { nic: 1, dropped: 1 }]
    );
}

#[test]
fn multicast_next_hops_need_no_resolution() {
    let mut nd = Nd::ready(STATIC);
    assert_eq!(
        nd.next_hop(1, ALL_NODES, b"p").0,
        NextHop::Resolved(EthernetAddress([0x33, 0x33, 0, 0, 0, 1]))
    );
}

// ---- guards ----

#[test]
fn a_client_cannot_advertise_another_clients_address() {
    let mut nd = Nd::ready(STATIC);
    // guest (fd00:137:2::10) is declared on nic2; work's NIC may not claim it.
    assert_eq!(
        intruder_claims(&mut nd, 1, a("fd00:137:1::66"), a("fd00:137:2::10")),
        NdOutcome::Dropped(NdDrop::ClientAddressTaken)
    );
}

#[test]
fn a_client_cannot_advertise_an_address_outside_its_prefix() {
    let mut nd = Nd::ready(STATIC);
    assert_eq!(
        intruder_claims(&mut nd, 1, a("fd00:137:1::66"), a("2001:db8:2::1")),
        NdOutcome::Dropped(NdDrop::ForeignTarget)
    );
}

#[test]
fn nobody_may_advertise_the_appliances_address() {
    let mut nd = Nd::ready(STATIC);
    assert_eq!(
        intruder_claims(&mut nd, 1, link_local(INTRUDER_MAC), a("fd00:137:1::1")),
        NdOutcome::Dropped(NdDrop::ClaimsApplianceAddress)
    );
    assert_eq!(
        intruder_claims(&mut nd, 0, link_local(INTRUDER_MAC), a("2001:db8:2::f")),
        NdOutcome::Dropped(NdDrop::ClaimsApplianceAddress)
    );
}

#[test]
fn a_declared_clients_address_stays_at_its_mac_while_fresh() {
    let mut nd = Nd::ready(STATIC);
    let work = a("fd00:137:1::10");
    nd.next_hop(1, work, b"p");
    nd.receive(
        1,
        &frame(
            WORK_MAC,
            CLIENTS_MAC,
            work,
            a("fd00:137:1::1"),
            na(work, WORK_MAC, true),
        ),
    );
    let takeover = to_all_nodes(INTRUDER_MAC, work, na(work, INTRUDER_MAC, false));
    assert_eq!(
        nd.receive(1, &takeover).0,
        NdOutcome::Dropped(NdDrop::ClientAddressTaken)
    );
    assert_eq!(nd.next_hop(1, work, b"q").0, NextHop::Resolved(WORK_MAC));
}

#[test]
fn an_undeclared_host_in_the_prefix_may_move_to_another_mac() {
    let mut nd = Nd::ready(STATIC);
    let host = a("fd00:137:1::20");
    nd.next_hop(1, host, b"p");
    let mine = a("fd00:137:1::1");
    nd.receive(
        1,
        &frame(WORK_MAC, CLIENTS_MAC, host, mine, na(host, WORK_MAC, true)),
    );
    nd.receive(
        1,
        &to_all_nodes(OTHER_MAC, host, na(host, OTHER_MAC, false)),
    );
    assert_eq!(nd.next_hop(1, host, b"q").0, NextHop::Resolved(OTHER_MAC));
}

#[test]
fn a_static_neighbour_is_never_solicited_nor_rebound() {
    let mut nd = Nd::ready(STATIC);
    let host = a("fd00:137:1::20");
    nd.nd.learn_static(1, host, WORK_MAC);
    nd.advance(Duration::from_secs(3600));
    assert_eq!(
        nd.next_hop(1, host, b"p"),
        (NextHop::Resolved(WORK_MAC), vec![])
    );
    let takeover = to_all_nodes(OTHER_MAC, host, na(host, OTHER_MAC, false));
    assert_eq!(
        nd.receive(1, &takeover).0,
        NdOutcome::Dropped(NdDrop::ClientAddressTaken)
    );
    assert_eq!(nd.next_hop(1, host, b"q").0, NextHop::Resolved(WORK_MAC));
}

#[test]
fn a_router_advertisement_from_a_client_is_dropped() {
    let mut nd = Nd::ready(STATIC);
    let rogue = to_all_nodes(
        INTRUDER_MAC,
        link_local(INTRUDER_MAC),
        ra(Duration::from_secs(1800), &[prefix("fd66::", 86400)]),
    );
    assert_eq!(
        nd.receive(1, &rogue).0,
        NdOutcome::Dropped(NdDrop::RaFromClient)
    );
    assert_eq!(nd.nd.gateway(1), None);
}

#[test]
fn a_static_uplink_takes_nothing_from_advertisements() {
    let mut nd = Nd::ready(STATIC);
    let adv = to_all_nodes(
        ROUTER_MAC,
        a("fe80::99"),
        ra(Duration::from_secs(1800), &[prefix("2001:db8:9::", 86400)]),
    );
    assert_eq!(nd.receive(0, &adv).0, NdOutcome::Handled);
    assert_eq!(nd.nd.gateway(0), Some(a("fe80::1")));
    assert_eq!(nd.nd.addresses(0).count(), 2);
}

// ---- SLAAC ----

fn prefix(text: &str, valid_secs: u64) -> NdiscPrefixInformation {
    NdiscPrefixInformation {
        prefix_len: 64,
        flags: NdiscPrefixInfoFlags::ON_LINK | NdiscPrefixInfoFlags::ADDRCONF,
        valid_lifetime: Duration::from_secs(valid_secs),
        preferred_lifetime: Duration::from_secs(valid_secs / 2),
        prefix: a(text),
    }
}

fn ra(lifetime: Duration, prefixes: &[NdiscPrefixInformation]) -> NdiscRepr<'static> {
    NdiscRepr::RouterAdvert {
        hop_limit: 64,
        flags: NdiscRouterFlags::empty(),
        router_lifetime: lifetime,
        reachable_time: Duration::ZERO,
        retrans_time: Duration::ZERO,
        lladdr: Some(ROUTER_MAC.into()),
        mtu: None,
        prefix_info: prefixes.first().copied(),
    }
}

/// A router advertisement as radvd sends it, with an RDNSS option for `dns`.
fn ra_with_rdnss(lifetime: Duration, pfx: NdiscPrefixInformation, dns: &[Ipv6Address]) -> Vec<u8> {
    let out = Outgoing {
        eth_src: ROUTER_MAC,
        eth_dst: mcast_mac(ALL_NODES),
        src: a("fe80::1"),
        dst: ALL_NODES,
        message: ra(lifetime, &[pfx]),
        rdnss: Some((Duration::from_secs(600), dns)),
    };
    let mut bytes = vec![0; out.len()];
    out.emit(&mut bytes);
    bytes
}

#[test]
fn the_uplink_solicits_a_router_once_its_link_local_address_is_usable() {
    let mut nd = Nd::new(SLAAC);
    let first = nd.poll();
    assert!(first
        .iter()
        .all(|(_, f)| !matches!(sent(f).message, NdiscRepr::RouterSolicit { .. })));
    nd.advance(Duration::from_secs(1));
    let out = nd.poll();
    let rs: Vec<NdFrame> = out
        .iter()
        .filter(|(nic, _)| *nic == 0)
        .map(|(_, f)| sent(f))
        .collect();
    assert_eq!(rs.len(), 1);
    assert_eq!(
        (rs[0].src, rs[0].dst),
        (link_local(UPLINK_MAC), ALL_ROUTERS)
    );
    assert_eq!(
        rs[0].message,
        NdiscRepr::RouterSolicit {
            lladdr: Some(UPLINK_MAC.into())
        }
    );
    nd.advance(Duration::from_secs(4));
    let again = nd.poll().into_iter().filter(|(nic, _)| *nic == 0).count();
    assert_eq!(again, 1, "again after 4 s while no router answers");
}

#[test]
fn slaac_forms_an_address_and_takes_the_router_and_its_resolvers() {
    let mut nd = Nd::ready(SLAAC);
    nd.nd.take_events();
    let dns = [a("2001:db8::53")];
    let adv = ra_with_rdnss(
        Duration::from_secs(1800),
        prefix("2001:db8:1:2::", 86400),
        &dns,
    );
    assert_eq!(nd.receive(0, &adv).0, NdOutcome::Handled);
    let mine = Ipv6Cidr::new(a("2001:db8:1:2:5054:ff:fe12:3400"), 64);
    assert_eq!(
        nd.nd.take_events(),
        [
            NdEvent::AddressAdded { nic: 0, cidr: mine },
            NdEvent::GatewayChanged {
                nic: 0,
                gateway: Some(a("fe80::1"))
            },
            NdEvent::DnsChanged,
        ]
    );
    assert_eq!(nd.nd.gateway(0), Some(a("fe80::1")));
    assert_eq!(nd.nd.dns_servers(), dns);
    // The new address goes through DAD, and the router's MAC was learned from its option.
    let polled = nd.poll();
    let probe = sent(&polled[0].1);
    assert_eq!(
        probe.message,
        NdiscRepr::NeighborSolicit {
            target_addr: mine.address(),
            lladdr: None
        }
    );
    assert_eq!(
        nd.next_hop(0, a("fe80::1"), b"p").0,
        NextHop::Resolved(ROUTER_MAC)
    );
}

#[test]
fn a_router_lifetime_of_zero_withdraws_the_default_router() {
    let mut nd = Nd::ready(SLAAC);
    nd.receive(
        0,
        &to_all_nodes(ROUTER_MAC, a("fe80::1"), ra(Duration::from_secs(1800), &[])),
    );
    nd.nd.take_events();
    nd.receive(
        0,
        &to_all_nodes(ROUTER_MAC, a("fe80::1"), ra(Duration::ZERO, &[])),
    );
    assert_eq!(
        nd.nd.take_events(),
        [NdEvent::GatewayChanged {
            nic: 0,
            gateway: None
        }]
    );
}

/// A router learned from its advertisement, past its reachable time (not its lifetime):
/// with `forwarding`, frames from its MAC came in meanwhile. Returns the frames the next packet to it sent.
fn router_after_reachable_time(forwarding: bool) -> Vec<(u8, Vec<u8>)> {
    let mut nd = Nd::ready(SLAAC);
    nd.receive(
        0,
        &to_all_nodes(ROUTER_MAC, a("fe80::1"), ra(Duration::from_secs(1800), &[])),
    );
    nd.poll();
    for _ in 0..3 {
        nd.advance(REACHABLE_TIME / 2);
        if forwarding {
            nd.nd.saw_frame_from(0, ROUTER_MAC, nd.now);
        }
    }
    let (hop, sent) = nd.next_hop(0, a("fe80::1"), b"p");
    assert_eq!(hop, NextHop::Resolved(ROUTER_MAC));
    sent
}

#[test]
fn a_router_that_forwards_needs_no_solicitation_to_stay_reachable() {
    assert_eq!(router_after_reachable_time(true), []);
    let probe = router_after_reachable_time(false);
    assert_eq!(
        probe.len(),
        1,
        "without its frames, a stale router is verified"
    );
    assert!(matches!(
        sent(&probe[0].1).message,
        NdiscRepr::NeighborSolicit { target_addr, .. } if target_addr == a("fe80::1")
    ));
}

#[test]
fn learned_addresses_and_routers_expire_with_their_lifetimes() {
    let mut nd = Nd::ready(SLAAC);
    nd.receive(
        0,
        &to_all_nodes(
            ROUTER_MAC,
            a("fe80::1"),
            ra(Duration::from_secs(30), &[prefix("2001:db8:1:2::", 60)]),
        ),
    );
    nd.nd.take_events();
    nd.advance(Duration::from_secs(30));
    nd.poll();
    assert_eq!(
        nd.nd.take_events(),
        [NdEvent::GatewayChanged {
            nic: 0,
            gateway: None
        }]
    );
    nd.advance(Duration::from_secs(30));
    nd.poll();
    let events = nd.nd.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, NdEvent::AddressRemoved { nic: 0, .. })),
        "{events:?}"
    );
    assert_eq!(
        nd.nd.addresses(0).count(),
        1,
        "only the link-local address is left"
    );
}

#[test]
fn a_short_lifetime_in_an_advertisement_cannot_kill_an_address_at_once() {
    let mut nd = Nd::ready(SLAAC);
    let send = |nd: &mut Nd, valid| {
        nd.receive(
            0,
            &to_all_nodes(
                ROUTER_MAC,
                a("fe80::1"),
                ra(
                    Duration::from_secs(1800),
                    &[prefix("2001:db8:1:2::", valid)],
                ),
            ),
        );
    };
    send(&mut nd, 86400);
    send(&mut nd, 1); // RFC 4862 §5.5.3 e): at least two hours remain
    nd.advance(Duration::from_secs(3600));
    nd.poll();
    assert_eq!(nd.nd.addresses(0).count(), 2);
}

#[test]
fn an_advertisement_from_a_global_address_is_refused() {
    let mut nd = Nd::ready(SLAAC);
    let adv = to_all_nodes(
        ROUTER_MAC,
        a("2001:db8::1"),
        ra(Duration::from_secs(1800), &[]),
    );
    assert_eq!(
        nd.receive(0, &adv).0,
        NdOutcome::Dropped(NdDrop::Invalid("ra-source-not-link-local"))
    );
}

// ---- router advertisements ----

/// The router advertisements in `out` (all on the clients' NIC), with their options.
fn adverts(out: &[(u8, Vec<u8>)]) -> Vec<(NdFrame<'_>, RaOptions)> {
    out.iter()
        .filter(|(_, f)| matches!(sent(f).message, NdiscRepr::RouterAdvert { .. }))
        .map(|(nic, f)| {
            assert_eq!(*nic, 1, "only where the ruleset says ra");
            let adv = sent(f);
            let options = RaOptions::parse(adv.options).unwrap();
            (adv, options)
        })
        .collect()
}

#[test]
fn a_client_interface_with_ra_advertises_its_prefix_and_mtu() {
    let mut nd = Nd::new(STATIC);
    nd.poll();
    nd.advance(Duration::from_secs(1));
    let out = nd.poll();
    let adverts = adverts(&out);
    assert_eq!(adverts.len(), 1);
    let (adv, options) = &adverts[0];
    assert_eq!((adv.src, adv.dst), (link_local(CLIENTS_MAC), ALL_NODES));
    let NdiscRepr::RouterAdvert {
        router_lifetime, ..
    } = adv.message
    else {
        panic!()
    };
    assert!(router_lifetime > Duration::ZERO);
    assert_eq!(options.source_mac, Some(CLIENTS_MAC));
    assert_eq!(options.mtu, Some(1500));
    assert_eq!(options.prefixes[0].prefix, a("fd00:137:1::"));
    assert!(options.prefixes[0]
        .flags
        .contains(NdiscPrefixInfoFlags::ADDRCONF | NdiscPrefixInfoFlags::ON_LINK));
    // No upstream resolver is known to neighbour discovery until the appliance says one
    // is (it knows the uplink's `dns 10.0.2.3`: see appliance_dns_across.rs), so none is
    // named.
    assert_eq!(options.rdnss, None);
}

/// SLAAC on the uplink, a DNS redirect for the advertising client interface.
const SLAAC_DNS: &str = "\
interface uplink  nic0 dhcp slaac
interface clients nic1 address 10.137.1.1/24 address6 fd00:137:1::1/64 ra
dns from clients to upstream
";

#[test]
fn the_appliance_is_named_resolver_while_an_upstream_resolver_is_known() {
    let mut nd = Nd::ready(SLAAC_DNS);
    assert!(adverts(&nd.poll()).is_empty());
    nd.advance(Duration::from_secs(4));
    let first = nd.poll();
    assert_eq!(adverts(&first)[0].1.rdnss, None, "no upstream resolver yet");

    // The appliance learns an upstream resolver (of either family: a query crosses
    // families if it must): the clients hear of the appliance's at once (within the 3 s
    // rate limit), not at the next periodic advertisement.
    nd.advance(Duration::from_secs(3));
    nd.nd.set_upstream_resolver(true, nd.now);
    let announced = nd.poll();
    let adverts_now = adverts(&announced);
    let rdnss = adverts_now[0]
        .1
        .rdnss
        .clone()
        .expect("the resolver is named");
    assert_eq!(rdnss.servers, [a("fd00:137:1::1")]);
    assert_eq!(rdnss.lifetime, Duration::from_secs(1200));

    // The last upstream resolver goes: the next advertisement withdraws the appliance's
    // (lifetime zero), and the ones after name none.
    nd.advance(Duration::from_secs(5));
    nd.nd.set_upstream_resolver(false, nd.now);
    let withdrawn = nd.poll();
    let adverts_now = adverts(&withdrawn);
    let rdnss = adverts_now[0].1.rdnss.clone().expect("a withdrawal");
    assert_eq!(
        (rdnss.servers.as_slice(), rdnss.lifetime),
        ([a("fd00:137:1::1")].as_slice(), Duration::ZERO)
    );
    nd.advance(Duration::from_secs(600));
    let later = nd.poll();
    assert_eq!(adverts(&later)[0].1.rdnss, None);
}

#[test]
fn a_redirect_to_static_resolvers_names_the_appliance_from_the_first_advertisement() {
    // An IPv6 query to the appliance crosses to the static list's IPv4 resolvers, which
    // are always there: nothing the uplink learns or loses changes that.
    let mut nd = Nd::ready(
        "interface uplink  nic0 dhcp slaac
interface clients nic1 address 10.137.1.1/24 address6 fd00:137:1::1/64 ra
dns from clients to 9.9.9.9
",
    );
    nd.nd.set_upstream_resolver(false, nd.now);
    for _ in 0..3 {
        nd.advance(Duration::from_secs(4));
        for (_, options) in adverts(&nd.poll()) {
            let rdnss = options.rdnss.expect("the appliance is named");
            assert_eq!(
                (rdnss.servers.as_slice(), rdnss.lifetime),
                ([a("fd00:137:1::1")].as_slice(), Duration::from_secs(1200))
            );
        }
    }
}

#[test]
fn without_a_dns_redirect_the_advertisement_names_no_resolver() {
    let mut nd = Nd::ready("interface lan nic1 address6 fd00::1/64 ra mtu 1400\n");
    nd.advance(Duration::from_secs(4));
    let out = nd.poll();
    let adv = sent(&out[0].1);
    let options = RaOptions::parse(adv.options).unwrap();
    assert_eq!((options.rdnss, options.mtu), (None, Some(1400)));
}

#[test]
fn a_router_solicitation_is_answered_but_never_faster_than_every_three_seconds() {
    let mut nd = Nd::ready(STATIC);
    // The first advertisement went out at 1 s; the next initial one is due at 5 s.
    let rs = frame(
        WORK_MAC,
        mcast_mac(ALL_ROUTERS),
        link_local(WORK_MAC),
        ALL_ROUTERS,
        NdiscRepr::RouterSolicit {
            lladdr: Some(WORK_MAC.into()),
        },
    );
    nd.advance(Duration::from_millis(500));
    assert_eq!(nd.receive(1, &rs), (NdOutcome::Handled, vec![]));
    assert_eq!(nd.nd.next_deadline(), Some(t(4_000)));
    nd.advance(Duration::from_millis(2_500));
    assert_eq!(nd.poll().len(), 1);
    for _ in 0..10 {
        nd.receive(1, &rs);
    }
    assert!(nd.poll().is_empty());
    assert_eq!(nd.nd.next_deadline(), Some(t(7_000)));
}

#[test]
fn an_interface_without_ipv6_refuses_nd() {
    let mut nd = Nd::ready("interface lan nic1 address 10.0.0.1/24\n");
    let target = a("fe80::1");
    let ask = asking(WORK_MAC, link_local(WORK_MAC), target);
    assert_eq!(nd.receive(1, &ask).0, NdOutcome::Dropped(NdDrop::NoIpv6));
    assert_eq!(nd.nd.addresses(1).count(), 0);
}

/// A router advertisement as radvd 2.19 sent it (captured with tcpdump in a test
/// namespace): router fe80::ff:fe00:1 at 02:00:00:00:00:01, lifetime 1800 s, MTU 1400,
/// prefix 2001:db8:1:2::/64 (on-link, autonomous, valid 86400 s), RDNSS 2001:db8::53 for
/// 600 s — in answer to a host's solicitation, so sent to that host's addresses.
const RADVD_ADVERT: [u8; 142] = [
    0x0e, 0xcc, 0x93, 0xe4, 0x71, 0x04, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, //
    0x86, 0xdd, 0x60, 0x0e, 0x81, 0xbd, 0x00, 0x58, 0x3a, 0xff, 0xfe, 0x80, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xfe, 0x00, //
    0x00, 0x01, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0xcc, //
    0x93, 0xff, 0xfe, 0xe4, 0x71, 0x04, 0x86, 0x00, 0xd3, 0x88, 0x40, 0x00, //
    0x07, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x04, //
    0x40, 0xc0, 0x00, 0x01, 0x51, 0x80, 0x00, 0x00, 0x38, 0x40, 0x00, 0x00, //
    0x00, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x19, 0x03, 0x00, 0x00, 0x00, 0x00, //
    0x02, 0x58, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x53, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00, //
    0x05, 0x78, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, //
];

#[test]
fn radvds_advertisement_is_read_whole() {
    let nd = NdFrame::parse(&RADVD_ADVERT).unwrap();
    let options = RaOptions::parse(nd.options).unwrap();
    assert_eq!(
        options.source_mac,
        Some(EthernetAddress([2, 0, 0, 0, 0, 1]))
    );
    assert_eq!(options.mtu, Some(1400));
    assert_eq!(options.prefixes.len(), 1);
    assert_eq!(options.prefixes[0].prefix, a("2001:db8:1:2::"));
    assert_eq!(
        options.prefixes[0].valid_lifetime,
        Duration::from_secs(86400)
    );
    let rdnss = options.rdnss.unwrap();
    assert_eq!(rdnss.servers, [a("2001:db8::53")]);
    assert_eq!(rdnss.lifetime, Duration::from_secs(600));
}

#[test]
fn radvds_advertisement_configures_a_slaac_uplink() {
    let mut nd = Nd::ready(SLAAC);
    nd.nd.take_events();
    assert_eq!(nd.receive(0, &RADVD_ADVERT).0, NdOutcome::Handled);
    assert_eq!(nd.nd.gateway(0), Some(a("fe80::ff:fe00:1")));
    assert_eq!(nd.nd.dns_servers(), [a("2001:db8::53")]);
    assert!(nd.nd.is_own(0, a("2001:db8:1:2:5054:ff:fe12:3400")));
}

#[test]
fn an_option_of_length_zero_invalidates_the_advertisement() {
    // The prefix option's length byte (options start at 14 + 40 + 16), and the checksum
    // made right again: the message is refused for the option, not for the checksum.
    let mut bytes = RADVD_ADVERT.to_vec();
    bytes[71] = 0;
    let mut ip = Ipv6Packet::new_unchecked(&mut bytes[14..]);
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    smoltcp::wire::Icmpv6Packet::new_unchecked(ip.payload_mut()).fill_checksum(&src, &dst);
    assert_eq!(
        NdFrame::parse(&bytes).err(),
        Some(dataplane::ndp::wire::NdError::Invalid("nd-malformed"))
    );
    assert_eq!(
        RaOptions::parse(&RADVD_ADVERT[70..])
            .map(|o| o.prefixes.len())
            .ok(),
        Some(1)
    );
    assert_eq!(
        RaOptions::parse(&bytes[70..]),
        Err(dataplane::ndp::wire::NdError::Invalid("nd-option-length"))
    );
}

#[test]
fn a_pinned_clients_address_resolves_only_to_its_pinned_mac() {
    let rules = "\
interface lan nic1 address6 fd00:1::1/64
client work fd00:1::10 mac 02:00:00:00:00:10 on lan
";
    let mut nd = Nd::ready(rules);
    let work = a("fd00:1::10");
    nd.next_hop(1, work, b"p");
    let impostor = frame(
        INTRUDER_MAC,
        CLIENTS_MAC,
        work,
        a("fd00:1::1"),
        na(work, INTRUDER_MAC, true),
    );
    assert_eq!(
        nd.receive(1, &impostor).0,
        NdOutcome::Dropped(NdDrop::ClientAddressTaken)
    );
    assert_eq!(
        nd.next_hop(1, work, b"q").0,
        NextHop::Queued,
        "still unresolved"
    );
    let real = frame(
        WORK_MAC,
        CLIENTS_MAC,
        work,
        a("fd00:1::1"),
        na(work, WORK_MAC, true),
    );
    let (outcome, released) = nd.receive(1, &real);
    assert_eq!((outcome, released.len()), (NdOutcome::Handled, 2));
}

#[test]
fn a_solicitation_cannot_rebind_a_declared_clients_address_either() {
    let mut nd = Nd::ready(STATIC);
    let work = a("fd00:137:1::10");
    nd.nd.learn_static(1, work, WORK_MAC);
    let spoofed = asking(INTRUDER_MAC, work, a("fd00:137:1::1"));
    let (outcome, _) = nd.receive(1, &spoofed);
    assert_eq!(outcome, NdOutcome::Dropped(NdDrop::ClientAddressTaken));
    assert_eq!(nd.next_hop(1, work, b"p").0, NextHop::Resolved(WORK_MAC));
}

#[test]
fn advertisements_of_ever_new_prefixes_cannot_grow_the_uplinks_addresses() {
    let mut nd = Nd::ready(SLAAC);
    for net in 0..40u16 {
        let text = format!("2001:db8:{net:x}::");
        let adv = to_all_nodes(
            ROUTER_MAC,
            a("fe80::1"),
            ra(Duration::from_secs(1800), &[prefix(&text, 86400)]),
        );
        nd.receive(0, &adv);
    }
    let learned = nd.nd.addresses(0).count() - 1; // without the link-local address
    assert_eq!(learned, dataplane::ndp::slaac::MAX_ADDRESSES);
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    /// Valid ND frames of every kind, for the mutations below.
    fn seeds() -> Vec<Vec<u8>> {
        let work = a("fd00:137:1::10");
        let mine = a("fd00:137:1::1");
        vec![
            RADVD_ADVERT.to_vec(),
            asking(WORK_MAC, work, mine),
            asking(WORK_MAC, Ipv6Address::UNSPECIFIED, mine),
            frame(WORK_MAC, CLIENTS_MAC, work, mine, na(work, WORK_MAC, true)),
            to_all_nodes(
                ROUTER_MAC,
                a("fe80::1"),
                ra(Duration::from_secs(9), &[prefix("2001:db8::", 99)]),
            ),
        ]
    }

    proptest! {
        /// Whatever a neighbour sends — any byte of a valid ND frame changed, the frame
        /// cut anywhere, on any NIC — the appliance neither panics nor answers more than
        /// once, and everything it sends is a well-formed ND frame or a queued packet.
        #[test]
        fn mangled_nd_frames_never_panic(
            seed in 0usize..5,
            flips in proptest::collection::vec((0usize..200, any::<u8>()), 0..6),
            cut in 0usize..200,
            nic in 0u8..3,
            slaac in any::<bool>(),
        ) {
            let mut nd = Nd::ready(if slaac { SLAAC } else { STATIC });
            let mut bytes = seeds()[seed].clone();
            for (at, value) in flips {
                if let Some(byte) = bytes.get_mut(at) {
                    *byte = value;
                }
            }
            bytes.truncate(cut.max(1));
            let (_, out) = nd.receive(nic, &bytes);
            prop_assert!(out.len() <= 1);
            for (_, f) in &out {
                prop_assert!(NdFrame::parse(f).is_ok());
            }
            nd.advance(Duration::from_secs(5));
            nd.poll();
        }
    }
}

// ---- shares ----

#[test]
fn one_clients_unresolvable_destinations_never_starve_the_gateway() {
    let mut nd = Nd::ready(STATIC);
    let flooder = SourceClass6::Neighbour(1, a("fd00:137:1::66"));
    // Far more silent hosts on the uplink's link than the whole table resolves at once,
    // each asked again and again.
    for round in 0..3 {
        for host in 0..(MAX_RESOLVING * 2) as u16 {
            let silent = Ipv6Address::new(0x2001, 0xdb8, 2, 0, 0, 0, 1, host);
            nd.next_hop_for(flooder, 0, silent, b"flood");
        }
        nd.advance(REQUEST_INTERVAL);
        nd.poll();
        let _ = round;
    }
    // Another client's packet to the internet: its gateway is asked for at once, queued.
    let other = SourceClass6::Neighbour(2, a("fd00:137:2::10"));
    let (hop, out) = nd.next_hop_for(other, 0, a("fe80::1"), b"wanted");
    assert_eq!(hop, NextHop::Queued);
    assert_eq!(sent(&out[0].1).dst, solicited_node(a("fe80::1")));
    let answer = frame(
        ROUTER_MAC,
        UPLINK_MAC,
        a("fe80::1"),
        link_local(UPLINK_MAC),
        na(a("fe80::1"), ROUTER_MAC, true),
    );
    let (_, released) = nd.receive(0, &answer);
    assert_eq!(released.len(), 1);
    assert_eq!(&released[0].1[14..], b"wanted");
}

#[test]
fn a_source_over_its_share_gives_up_its_own_oldest_resolution_not_anothers() {
    let mut nd = Nd::ready(STATIC);
    let quiet = SourceClass6::Neighbour(2, a("fd00:137:2::10"));
    let quiet_target = Ipv6Address::new(0x2001, 0xdb8, 2, 0, 0, 0, 2, 1);
    assert_eq!(
        nd.next_hop_for(quiet, 0, quiet_target, b"q").0,
        NextHop::Queued
    );
    let flooder = SourceClass6::Neighbour(1, a("fd00:137:1::66"));
    for host in 0..MAX_RESOLVING_PER_SOURCE as u16 {
        let silent = Ipv6Address::new(0x2001, 0xdb8, 2, 0, 0, 0, 1, host);
        assert_eq!(nd.next_hop_for(flooder, 0, silent, b"f").0, NextHop::Queued);
    }
    nd.advance(REQUEST_INTERVAL);
    let one_more = Ipv6Address::new(0x2001, 0xdb8, 2, 0, 0, 0, 1, 999);
    assert_eq!(
        nd.next_hop_for(flooder, 0, one_more, b"f").0,
        NextHop::Queued
    );
    assert_eq!(
        nd.nd.take_events(),
        [NdEvent::Unreachable { nic: 0, dropped: 1 }],
        "the flooder's own oldest resolution went"
    );
    // The quiet client's resolution is still there: its answer releases its packet.
    let answer = frame(
        WORK_MAC,
        UPLINK_MAC,
        quiet_target,
        a("2001:db8:2::f"),
        na(quiet_target, WORK_MAC, true),
    );
    assert_eq!(nd.receive(0, &answer).1.len(), 1);
}

#[test]
fn the_gateway_is_resolved_even_for_a_source_that_used_up_its_share() {
    let mut nd = Nd::ready(STATIC);
    let flooder = SourceClass6::Neighbour(1, a("fd00:137:1::66"));
    for host in 0..MAX_RESOLVING_PER_SOURCE as u16 {
        let silent = Ipv6Address::new(0x2001, 0xdb8, 2, 0, 0, 0, 1, host);
        nd.next_hop_for(flooder, 0, silent, b"f");
    }
    let one_more = Ipv6Address::new(0x2001, 0xdb8, 2, 0, 0, 0, 1, 999);
    assert_eq!(
        nd.next_hop_for(flooder, 0, one_more, b"f").0,
        NextHop::Dropped,
        "over its share, too fast"
    );
    let (hop, out) = nd.next_hop_for(flooder, 0, a("fe80::1"), b"to the internet");
    assert_eq!(hop, NextHop::Queued, "the gateway is outside the shares");
    assert_eq!(out.len(), 1);
}

#[test]
fn advertisements_from_the_unspecified_or_a_multicast_address_are_refused() {
    let mut nd = Nd::ready(STATIC);
    let work = a("fd00:137:1::10");
    let from_nobody = to_all_nodes(
        WORK_MAC,
        Ipv6Address::UNSPECIFIED,
        na(work, WORK_MAC, false),
    );
    assert_eq!(
        nd.receive(1, &from_nobody).0,
        NdOutcome::Dropped(NdDrop::Invalid("nd-source-unspecified"))
    );
    let from_a_group = to_all_nodes(WORK_MAC, ALL_NODES, na(work, WORK_MAC, false));
    assert_eq!(
        nd.receive(1, &from_a_group).0,
        NdOutcome::Dropped(NdDrop::Invalid("nd-source-multicast"))
    );
}
