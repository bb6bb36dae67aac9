//! The state table's bounds: a fixed capacity with early drop of half-open flows, and the
//! ruleset's per-rule, per-source and per-client limits.

mod state_common;

use dataplane::packet::tcp_flags::{ACK, PSH, SYN};
use dataplane::policy::StateLimits;
use dataplane::state::{ClientRef, Lookup, NewFlow, Refused, RuleRef, StateTable, MAX_CAPACITY};
use dataplane::testutil::packets;
use smoltcp::time::Instant;
use state_common::*;

/// A SYN from `src`:`port` to the server, opened as an unmasqueraded flow.
fn open_syn(table: &mut StateTable, src: [u8; 4], port: u16, now: Instant) -> Result<(), Refused> {
    let mut syn = packets::tcp((src, port), (SERVER, 443), (1000, 0, SYN), b"");
    open_outbound(table, &mut syn, now).map(|_| ())
}

/// A UDP flow from `src`:`port`, bound to `rule` and `client`.
fn open_udp(
    table: &mut StateTable,
    src: [u8; 4],
    port: u16,
    rule: Option<RuleRef>,
    client: Option<ClientRef>,
) -> Result<(), Refused> {
    let mut datagram = packets::udp(src, port, SERVER, 443, b"quic");
    let flow = NewFlow {
        rule,
        client,
        ..flow(CLIENT_NIC, UPLINK_NIC, &datagram)
    };
    open(table, &flow, &mut datagram, at(0)).map(|_| ())
}

/// Rule `index` with these limits (0 = none).
fn limited_rule(index: u32, max_states: u32, max_states_per_source: u32) -> RuleRef {
    RuleRef {
        index,
        limits: StateLimits {
            max_states,
            max_states_per_source,
        },
    }
}

/// Completes the handshake of the flow `open_syn(CLIENT, port)` started.
fn establish(table: &mut StateTable, port: u16) {
    let mut synack = packets::tcp((SERVER, 443), (CLIENT, port), (5000, 1001, SYN | ACK), b"");
    assert!(forwarded(pass(table, UPLINK_NIC, &mut synack, at(1))));
    let mut ack = packets::tcp((CLIENT, port), (SERVER, 443), (1001, 5001, ACK), b"");
    assert!(forwarded(pass(table, CLIENT_NIC, &mut ack, at(1))));
}

#[test]
fn syn_flood_cannot_displace_an_established_flow_and_a_new_flow_still_gets_in() {
    const CAPACITY: usize = 64;
    let mut table = table(CAPACITY);
    open_syn(&mut table, CLIENT, 40000, at(0)).unwrap();
    establish(&mut table, 40000);

    // A flood of half-open connections (spoofed source ports) fills the table...
    for port in 0..(CAPACITY as u16 - 1) {
        open_syn(&mut table, CLIENT2, 1024 + port, at(2)).unwrap();
    }
    assert_eq!(table.len(), CAPACITY);
    // ...and keeps coming: each new SYN pushes out the oldest half-open one.
    for port in 0..1000 {
        open_syn(&mut table, CLIENT2, 20000 + port, at(3)).unwrap();
    }
    assert_eq!(table.stats().early_drops, 1000);

    // The established flow never moved.
    let mut data = packets::tcp(
        (CLIENT, 40000),
        (SERVER, 443),
        (1001, 5001, PSH | ACK),
        b"still here",
    );
    assert!(forwarded(pass(&mut table, CLIENT_NIC, &mut data, at(4))));
    let mut answer = packets::tcp(
        (SERVER, 443),
        (CLIENT, 40000),
        (5001, 1011, PSH | ACK),
        b"yes",
    );
    assert!(forwarded(pass(&mut table, UPLINK_NIC, &mut answer, at(4))));

    // A legitimate new connection gets in by evicting the oldest half-open one.
    // The table holds the last 63 flood SYNs: 20937..=20999.
    let oldest_flood_syn = packets::tcp((CLIENT2, 20937), (SERVER, 443), (1000, 0, SYN), b"");
    assert!(table.is_taken(&tuple(&oldest_flood_syn), at(4)));
    open_syn(&mut table, CLIENT, 40001, at(4)).expect("room is made for a new flow");
    assert!(
        !table.is_taken(&tuple(&oldest_flood_syn), at(4)),
        "the oldest half-open flow was dropped"
    );
    let next_oldest = packets::tcp((CLIENT2, 20938), (SERVER, 443), (1000, 0, SYN), b"");
    assert!(
        table.is_taken(&tuple(&next_oldest), at(4)),
        "and only that one"
    );
    establish(&mut table, 40001);
    assert_eq!(table.stats().refused.total(), 0);
}

#[test]
fn table_full_of_established_flows_refuses_new_ones() {
    let mut table = table(4);
    for port in 40000..40004 {
        open_syn(&mut table, CLIENT, port, at(0)).unwrap();
        establish(&mut table, port);
    }
    assert_eq!(
        open_syn(&mut table, CLIENT, 40004, at(2)),
        Err(Refused::TableFull)
    );
    assert_eq!(table.stats().refused.table_full, 1);
    assert_eq!(table.stats().early_drops, 0);
    assert_eq!(table.len(), 4);
}

#[test]
fn udp_flow_that_got_an_answer_is_not_dropped_early() {
    let mut table = table(2);
    let mut query = packets::udp(CLIENT, 5353, SERVER, 53, b"q");
    open_outbound(&mut table, &mut query, at(0)).unwrap();
    let mut answer = packets::udp(SERVER, 53, CLIENT, 5353, b"a");
    assert!(forwarded(pass(&mut table, UPLINK_NIC, &mut answer, at(0))));
    let mut unanswered = packets::udp(CLIENT, 5354, SERVER, 53, b"q");
    open_outbound(&mut table, &mut unanswered, at(1)).unwrap();

    let mut third = packets::udp(CLIENT, 5355, SERVER, 53, b"q");
    open_outbound(&mut table, &mut third, at(2)).unwrap();
    assert!(table.is_taken(&tuple(&query), at(2)), "answered flow kept");
    assert!(
        !table.is_taken(&tuple(&unanswered), at(2)),
        "unanswered flow dropped"
    );
}

#[test]
fn rule_max_states_is_enforced_and_released_when_a_state_dies() {
    let mut table = table(16);
    let rule = limited_rule(7, 2, 0);
    open_udp(&mut table, CLIENT, 1, Some(rule), None).unwrap();
    open_udp(&mut table, CLIENT2, 2, Some(rule), None).unwrap();
    assert_eq!(
        open_udp(&mut table, CLIENT, 3, Some(rule), None),
        Err(Refused::RuleLimit)
    );
    // Another rule is not affected.
    let other = RuleRef { index: 8, ..rule };
    open_udp(&mut table, CLIENT, 3, Some(other), None).unwrap();

    // When one of the rule's states dies, the rule may create another.
    let first = packets::udp(CLIENT, 1, SERVER, 443, b"");
    let (id, _) = table.find(&tuple(&first), at(0)).unwrap();
    assert!(table.remove(id));
    open_udp(&mut table, CLIENT, 4, Some(rule), None).unwrap();
    assert_eq!(table.stats().refused.rule_limit, 1);
}

#[test]
fn max_states_per_source_counts_each_source_separately() {
    let mut table = table(16);
    let rule = limited_rule(0, 0, 2);
    open_udp(&mut table, CLIENT, 1, Some(rule), None).unwrap();
    open_udp(&mut table, CLIENT, 2, Some(rule), None).unwrap();
    assert_eq!(
        open_udp(&mut table, CLIENT, 3, Some(rule), None),
        Err(Refused::SourceLimit)
    );
    open_udp(&mut table, CLIENT2, 1, Some(rule), None).unwrap();
    open_udp(&mut table, CLIENT2, 2, Some(rule), None).unwrap();
    assert_eq!(
        open_udp(&mut table, CLIENT2, 3, Some(rule), None),
        Err(Refused::SourceLimit)
    );
    assert_eq!(table.stats().refused.source_limit, 2);
}

#[test]
fn client_max_states_is_enforced_across_rules() {
    let mut table = table(16);
    let client = ClientRef {
        index: 3,
        max_states: 2,
    };
    let rule = |index| {
        Some(RuleRef {
            index,
            limits: StateLimits::default(),
        })
    };
    open_udp(&mut table, CLIENT, 1, rule(0), Some(client)).unwrap();
    open_udp(&mut table, CLIENT, 2, rule(1), Some(client)).unwrap();
    assert_eq!(
        open_udp(&mut table, CLIENT, 3, rule(2), Some(client)),
        Err(Refused::ClientLimit)
    );
    assert_eq!(table.stats().refused.client_limit, 1);
}

#[test]
fn limits_are_checked_before_early_drop_evicts_anything() {
    let mut table = table(2);
    let rule = limited_rule(0, 1, 0);
    open_udp(&mut table, CLIENT, 1, Some(rule), None).unwrap();
    open_udp(&mut table, CLIENT, 2, None, None).unwrap();
    assert_eq!(
        open_udp(&mut table, CLIENT, 3, Some(rule), None),
        Err(Refused::RuleLimit)
    );
    assert_eq!(table.stats().early_drops, 0);
    assert_eq!(table.len(), 2);
}

#[test]
fn every_limit_count_is_released_when_states_expire() {
    let mut table = table(16);
    let rule = limited_rule(0, 5, 5);
    let client = ClientRef {
        index: 0,
        max_states: 5,
    };
    for port in 1..=5 {
        open_udp(&mut table, CLIENT, port, Some(rule), Some(client)).unwrap();
    }
    assert_eq!(table.sweep(at(3600), 16), 5);
    assert!(table.limit_counts_are_empty());
    for port in 6..=10 {
        open_udp(&mut table, CLIENT, port, Some(rule), Some(client)).unwrap();
    }
}

#[test]
fn a_tuple_owned_by_a_live_state_cannot_be_claimed_again() {
    let mut table = table(16);
    let mut query = packets::udp(CLIENT, 5353, SERVER, 53, b"q");
    open_outbound(&mut table, &mut query, at(0)).unwrap();
    let again = packets::udp(CLIENT, 5353, SERVER, 53, b"q");
    assert_eq!(
        table.insert(&flow(CLIENT_NIC, UPLINK_NIC, &again), &parse(&again), at(0)),
        Err(Refused::TupleInUse)
    );
    // The server's reply tuple is taken too: it cannot become a new flow of its own.
    let reverse = packets::udp(SERVER, 53, CLIENT, 5353, b"a");
    assert_eq!(
        table.insert(
            &flow(UPLINK_NIC, CLIENT_NIC, &reverse),
            &parse(&reverse),
            at(0)
        ),
        Err(Refused::TupleInUse)
    );
    assert_eq!(table.stats().refused.tuple_in_use, 2);
}

#[test]
fn icmp_errors_and_later_fragments_cannot_open_states() {
    let mut table = table(16);
    let inner = packets::udp(CLIENT, 5353, SERVER, 53, b"q");
    let error = packets::icmp_error(SERVER, CLIENT, 3, 3, &inner);
    let placeholder = flow(CLIENT_NIC, UPLINK_NIC, &inner);
    assert_eq!(
        table.insert(&placeholder, &parse(&error), at(0)),
        Err(Refused::Untrackable)
    );
    let mut fragment = packets::udp(CLIENT, 5353, SERVER, 53, &[0; 64]);
    packets::set_fragment(&mut fragment, false, 1480);
    assert_eq!(
        table.insert(&placeholder, &parse(&fragment), at(0)),
        Err(Refused::Untrackable)
    );
    assert_eq!(
        table.lookup(CLIENT_NIC, &parse(&fragment), at(0)),
        Lookup::Miss
    );
    assert_eq!(table.stats().refused.untrackable, 2);
}

#[test]
fn statistics_count_live_states_by_protocol() {
    let mut table = table(16);
    let mut syn = packets::tcp_syn(CLIENT, 40000, SERVER, 443);
    let mut datagram = packets::udp(CLIENT, 5353, SERVER, 53, b"q");
    let mut ping = packets::icmp_echo(CLIENT, SERVER, true, 7, 1, b"");
    for packet in [&mut syn, &mut datagram, &mut ping] {
        open_outbound(&mut table, packet, at(0)).unwrap();
    }
    let stats = table.stats();
    assert_eq!(
        (
            stats.live,
            stats.by_protocol.tcp,
            stats.by_protocol.udp,
            stats.by_protocol.icmp
        ),
        (3, 1, 1, 1)
    );
    assert_eq!((stats.inserts, stats.capacity), (3, 16));
    table.sweep(at(100_000), 16);
    let stats = table.stats();
    assert_eq!(
        (
            stats.live,
            stats.by_protocol.tcp,
            stats.by_protocol.udp,
            stats.by_protocol.icmp
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(stats.expired, 3);
}

#[test]
fn capacity_is_sized_from_a_memory_budget() {
    for capacity in [1, 1000, 65_536, 100_000] {
        let bytes = StateTable::memory_bytes(capacity);
        assert!(StateTable::capacity_for(bytes) >= capacity, "{capacity}");
        assert!(StateTable::memory_bytes(StateTable::capacity_for(bytes)) <= bytes);
    }
    assert_eq!(StateTable::capacity_for(0), 0);
    assert!(StateTable::capacity_for(usize::MAX) <= MAX_CAPACITY);
    let per_state = StateTable::memory_bytes(65_536) / 65_536;
    assert!(
        (100..=200).contains(&per_state),
        "{per_state} bytes per state"
    );
}
