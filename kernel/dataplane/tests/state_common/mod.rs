//! The setting of the state-table tests, and the pipeline's two paths in miniature.
//!
//! ```text
//!   clients (nic1, 10.137.1.0/24, appliance .1)  --  appliance  --  uplink (nic0, 10.0.2.15)
//!   CLIENT 10.137.1.10, CLIENT2 10.137.1.11                          ROUTER 10.0.2.2
//!                                                                    SERVER 93.184.216.34
//! ```

// Each test file uses a different part of this module.
#![allow(dead_code)]

use dataplane::nat::{self, MasqueradeConfig, Masquerader};
use dataplane::packet::{IpSummary, Transport};
use dataplane::state::{
    FlowTuple, Lookup, NewFlow, Refused, StateConfig, StateId, StateTable, Timeouts,
};
use dataplane::testutil::packets::checksums_valid;
use smoltcp::time::Instant;
use smoltcp::wire::{IpAddress, Ipv4Address};

pub const UPLINK_NIC: u8 = 0;
pub const CLIENT_NIC: u8 = 1;
pub const UPLINK_ADDR: [u8; 4] = [10, 0, 2, 15];
pub const CLIENT_GATEWAY: [u8; 4] = [10, 137, 1, 1];
pub const CLIENT: [u8; 4] = [10, 137, 1, 10];
pub const CLIENT2: [u8; 4] = [10, 137, 1, 11];
pub const ROUTER: [u8; 4] = [10, 0, 2, 2];
pub const SERVER: [u8; 4] = [93, 184, 216, 34];
pub const RESOLVER: [u8; 4] = [9, 9, 9, 9];

/// An address.
pub fn ip(a: [u8; 4]) -> Ipv4Address {
    Ipv4Address::from(a)
}

/// The fake clock: `secs` seconds after an arbitrary boot.
pub fn at(secs: u64) -> Instant {
    Instant::from_secs(1_000 + secs as i64)
}

/// A table of `capacity` states with pf's timeouts.
pub fn table(capacity: usize) -> StateTable {
    table_with(capacity, Timeouts::default())
}

/// A table of `capacity` states with `timeouts`.
pub fn table_with(capacity: usize, timeouts: Timeouts) -> StateTable {
    StateTable::new(StateConfig {
        capacity,
        hash_key: *b"moat-state-tests",
        timeouts,
    })
}

/// A masquerader with the default port range.
pub fn masquerader() -> Masquerader {
    Masquerader::new(MasqueradeConfig::seeded(0x6d6f_6174))
}

/// Parses a packet the test built (and must be valid).
pub fn parse(packet: &[u8]) -> IpSummary {
    IpSummary::parse(packet).expect("test packet parses")
}

/// The tuple of a packet.
pub fn tuple(packet: &[u8]) -> FlowTuple {
    FlowTuple::of(&parse(packet)).expect("test packet has a tuple")
}

/// A new flow of `packet` from `in_nic` to `out_nic`, untranslated.
pub fn flow(in_nic: u8, out_nic: u8, packet: &[u8]) -> NewFlow {
    NewFlow::new(in_nic, out_nic, tuple(packet))
}

/// A new flow of `packet` from the clients out of the uplink, masqueraded.
pub fn masqueraded(
    table: &StateTable,
    masquerader: &mut Masquerader,
    packet: &[u8],
    now: Instant,
) -> NewFlow {
    let original = tuple(packet);
    let translated = masquerader
        .masquerade(table, original, ip(UPLINK_ADDR).into(), now)
        .expect("a free port");
    NewFlow {
        translated,
        ..NewFlow::new(CLIENT_NIC, UPLINK_NIC, original)
    }
}

/// The miss path after the policy passed: create the state of `flow`, then translate its
/// first packet in place (checksums must stay valid).
pub fn open(
    table: &mut StateTable,
    flow: &NewFlow,
    packet: &mut [u8],
    now: Instant,
) -> Result<StateId, Refused> {
    let mut summary = parse(packet);
    let id = table.insert(flow, &summary, now)?;
    nat::apply(packet, &mut summary, &flow.translation());
    assert_eq!(
        parse(packet),
        summary,
        "summary kept in step with the bytes"
    );
    assert!(
        checksums_valid(packet),
        "checksums after translating the first packet"
    );
    Ok(id)
}

/// The miss path for an untranslated flow from the client NIC out of the uplink.
pub fn open_outbound(
    table: &mut StateTable,
    packet: &mut [u8],
    now: Instant,
) -> Result<StateId, Refused> {
    open(table, &flow(CLIENT_NIC, UPLINK_NIC, packet), packet, now)
}

/// The hit path: look the packet up as arriving on `in_nic`, and translate it in place when
/// it may be forwarded (checksums must stay valid).
pub fn pass(table: &mut StateTable, in_nic: u8, packet: &mut [u8], now: Instant) -> Lookup {
    let mut summary = parse(packet);
    let found = table.lookup(in_nic, &summary, now);
    if let Lookup::Hit(hit) | Lookup::Related(hit) = found {
        if hit.verdict.is_ok() {
            nat::apply(packet, &mut summary, &hit.translation);
            assert_eq!(
                parse(packet),
                summary,
                "summary kept in step with the bytes"
            );
            assert!(checksums_valid(packet), "checksums after translating");
        }
    }
    found
}

/// Whether the lookup says: forward this packet of a state.
pub fn forwarded(found: Lookup) -> bool {
    matches!(found, Lookup::Hit(hit) if hit.verdict.is_ok())
}

/// Source and destination of a packet, with ports.
pub fn endpoints(packet: &[u8]) -> ((Ipv4Address, u16), (Ipv4Address, u16)) {
    let s = parse(packet);
    let (sport, dport) = s.ports();
    let (src, dst) = s.ipv4_addresses().expect("an IPv4 packet");
    ((src, sport), (dst, dport))
}

/// The quoted packet of an ICMP error: source and destination, with ports.
pub fn quoted_endpoints(packet: &[u8]) -> ((Ipv4Address, Option<u16>), (Ipv4Address, Option<u16>)) {
    match parse(packet).transport {
        Transport::Icmp(dataplane::packet::IcmpSummary::Error { quoted, .. }) => {
            let v4 = |a: IpAddress| match a {
                IpAddress::Ipv4(a) => a,
                IpAddress::Ipv6(a) => panic!("an IPv6 quote: {a}"),
            };
            (
                (v4(quoted.src), quoted.src_port),
                (v4(quoted.dst), quoted.dst_port),
            )
        }
        other => panic!("not an ICMP error: {other:?}"),
    }
}

/// An IPv4 address as an address of either family.
pub fn addr(a: [u8; 4]) -> IpAddress {
    ip(a).into()
}
