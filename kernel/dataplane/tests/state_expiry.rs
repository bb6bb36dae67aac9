//! Time in the state table: pseudo-states and their timeouts for UDP and ICMP, caller
//! overrides, lazy expiry on lookup and the bounded periodic sweep. The clock is fake.

mod state_common;

use dataplane::state::{Lookup, ProtocolState, StateTable, Timeouts};
use dataplane::testutil::packets;
use smoltcp::time::{Duration, Instant};
use state_common::*;

const JUST: Duration = Duration::from_millis(1);

fn query() -> Vec<u8> {
    packets::udp(CLIENT, 5353, SERVER, 53, b"query")
}

fn answer() -> Vec<u8> {
    packets::udp(SERVER, 53, CLIENT, 5353, b"answer")
}

fn expires(table: &StateTable) -> Instant {
    let (id, _) = table.find(&tuple(&query()), at(0)).expect("state is live");
    table.get(id).unwrap().expires
}

#[test]
fn udp_walks_first_single_multiple_with_pf_timeouts() {
    let pf = Timeouts::default();
    let mut table = table(8);
    let id = open_outbound(&mut table, &mut query(), at(0)).unwrap();
    assert_eq!(table.get(id).unwrap().protocol_state, ProtocolState::Single);
    assert_eq!(expires(&table), at(0) + pf.udp_first);

    assert!(forwarded(pass(&mut table, CLIENT_NIC, &mut query(), at(1))));
    assert_eq!(
        expires(&table),
        at(1) + pf.udp_single,
        "more from the initiator, nothing back"
    );

    assert!(forwarded(pass(
        &mut table,
        UPLINK_NIC,
        &mut answer(),
        at(2)
    )));
    assert_eq!(
        table.get(id).unwrap().protocol_state,
        ProtocolState::Multiple
    );
    assert_eq!(
        expires(&table),
        at(2) + pf.udp_single,
        "one answer: pf waits for both sides to repeat"
    );

    assert!(forwarded(pass(&mut table, CLIENT_NIC, &mut query(), at(3))));
    assert_eq!(
        expires(&table),
        at(3) + pf.udp_multiple,
        "traffic both ways"
    );
}

#[test]
fn state_is_alive_until_its_timeout_and_gone_just_after() {
    let mut table = table(8);
    open_outbound(&mut table, &mut query(), at(0)).unwrap();
    let deadline = at(0) + Timeouts::default().udp_first;
    assert!(forwarded(pass(
        &mut table,
        UPLINK_NIC,
        &mut answer(),
        deadline - JUST
    )));
    // The answer refreshed it: udp.single from then on.
    let deadline = deadline - JUST + Timeouts::default().udp_single;
    assert!(forwarded(pass(
        &mut table,
        UPLINK_NIC,
        &mut answer(),
        deadline - JUST
    )));
    let deadline = deadline - JUST + Timeouts::default().udp_single;
    assert_eq!(
        pass(&mut table, UPLINK_NIC, &mut answer(), deadline),
        Lookup::Miss,
        "expired lazily on lookup"
    );
    assert_eq!(table.stats().expired, 1);
    assert!(table.is_empty());
}

#[test]
fn caller_timeouts_override_pf_defaults() {
    let short = Timeouts {
        udp_first: Duration::from_secs(2),
        ..Timeouts::default()
    };
    let mut table = table_with(8, short);
    open_outbound(&mut table, &mut query(), at(0)).unwrap();
    assert_eq!(expires(&table), at(2));
    assert_eq!(
        pass(&mut table, UPLINK_NIC, &mut answer(), at(2)),
        Lookup::Miss
    );
}

#[test]
fn ping_uses_icmp_first_then_icmp_error_after_the_reply() {
    let pf = Timeouts::default();
    let mut table = table(8);
    let mut ping = packets::icmp_echo(CLIENT, SERVER, true, 0x77, 1, b"abc");
    let id = open_outbound(&mut table, &mut ping, at(0)).unwrap();
    assert_eq!(table.get(id).unwrap().expires, at(0) + pf.icmp_first);
    let mut pong = packets::icmp_echo(SERVER, CLIENT, false, 0x77, 1, b"abc");
    assert!(forwarded(pass(&mut table, UPLINK_NIC, &mut pong, at(1))));
    assert_eq!(table.get(id).unwrap().expires, at(1) + pf.icmp_error);
    assert_eq!(
        table.get(id).unwrap().protocol_state,
        ProtocolState::Multiple
    );
}

/// A GRE packet (a protocol the data plane knows no ports for).
fn gre_packet(src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{IpProtocol, Ipv4Packet, Ipv4Repr};
    let repr = Ipv4Repr {
        src_addr: ip(src),
        dst_addr: ip(dst),
        next_header: IpProtocol::Unknown(47),
        payload_len: payload.len(),
        hop_limit: 64,
    };
    let mut bytes = vec![0; repr.buffer_len() + payload.len()];
    let mut packet = Ipv4Packet::new_unchecked(&mut bytes[..]);
    repr.emit(&mut packet, &ChecksumCapabilities::default());
    packet.payload_mut().copy_from_slice(payload);
    bytes
}

#[test]
fn other_protocols_get_pseudo_states_with_their_own_timeouts() {
    let pf = Timeouts::default();
    let mut table = table(8);
    let mut gre = gre_packet(CLIENT, SERVER, b"tunnel");
    let id = open_outbound(&mut table, &mut gre, at(0)).unwrap();
    assert_eq!(table.get(id).unwrap().expires, at(0) + pf.other_first);
    assert_eq!(table.stats().by_protocol.other, 1);
}

#[test]
fn sweep_does_bounded_work_and_eventually_removes_every_expired_state() {
    const STATES: u16 = 40;
    let mut table = table(64);
    for port in 0..STATES {
        let mut datagram = packets::udp(CLIENT, 10_000 + port, SERVER, 53, b"q");
        open_outbound(&mut table, &mut datagram, at(0)).unwrap();
    }
    assert_eq!(table.sweep(at(10), 64), 0, "nothing has expired yet");
    let later = at(0) + Timeouts::default().udp_first;
    let mut removed = 0;
    let mut calls = 0;
    while removed < STATES as usize {
        let now_removed = table.sweep(later, 8);
        assert!(now_removed <= 8, "a sweep examines at most its budget");
        removed += now_removed;
        calls += 1;
        assert!(calls <= 64 / 8, "one pass over the capacity suffices");
    }
    assert!(table.is_empty());
    assert_eq!(table.stats().expired, STATES as u64);
}

#[test]
fn sweep_spares_states_that_are_still_alive() {
    let mut table = table(8);
    open_outbound(&mut table, &mut query(), at(0)).unwrap();
    let mut fresh = packets::udp(CLIENT, 6000, SERVER, 53, b"q");
    open_outbound(&mut table, &mut fresh, at(50)).unwrap();
    assert_eq!(table.sweep(at(60), 8), 1);
    assert_eq!(table.len(), 1);
    assert!(table.is_taken(
        &tuple(&packets::udp(CLIENT, 6000, SERVER, 53, b"q")),
        at(60)
    ));
}

#[test]
fn an_expired_state_does_not_block_its_tuple() {
    let mut table = table(8);
    open_outbound(&mut table, &mut query(), at(0)).unwrap();
    let later = at(0) + Timeouts::default().udp_first;
    assert!(!table.is_taken(&tuple(&query()), later));
    open_outbound(&mut table, &mut query(), later).expect("the tuple is free again");
    assert_eq!((table.len(), table.stats().expired), (1, 1));
}
