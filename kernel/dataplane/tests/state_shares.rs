//! Early drop by shares: when the table is full, the biggest consumer gives up its oldest
//! half-open flow — a neighbour is a consumer of its own, the addresses behind the uplink's
//! router one consumer divided by address — and a quiet client's flow is never taken.

mod state_common;

use dataplane::share::Source;
use dataplane::state::{NewFlow, Refused, StateTable};
use dataplane::testutil::packets;
use proptest::prelude::*;
use smoltcp::time::Instant;
use state_common::*;

/// A UDP datagram from `src`:`port` to the server, opened as a flow of `source` arriving
/// on `in_nic` (not established: no answer yet).
fn open_from(
    table: &mut StateTable,
    source: Source,
    in_nic: u8,
    port: u16,
    now: Instant,
) -> Result<(), Refused> {
    let mut datagram = packets::udp(source.addr.octets(), port, SERVER, 53, b"q");
    let flow = NewFlow {
        source,
        ..flow(in_nic, 1 - in_nic, &datagram)
    };
    open(table, &flow, &mut datagram, now).map(|_| ())
}

/// A client on the clients' NIC.
fn client(src: [u8; 4]) -> Source {
    Source::neighbour(CLIENT_NIC, ip(src))
}

/// An address behind the uplink's router.
fn remote(src: [u8; 4]) -> Source {
    Source::remote(UPLINK_NIC, ip(src))
}

/// Whether `source`'s flow from `port` is still in the table.
fn holds(table: &StateTable, source: Source, port: u16) -> bool {
    let datagram = packets::udp(source.addr.octets(), port, SERVER, 53, b"q");
    table.is_taken(&tuple(&datagram), at(9))
}

/// A client's answered (established) flow from `port`.
fn open_answered(table: &mut StateTable, source: Source, port: u16) {
    open_from(table, source, CLIENT_NIC, port, at(0)).unwrap();
    let mut answer = packets::udp(SERVER, 53, source.addr.octets(), port, b"a");
    assert!(forwarded(pass(table, UPLINK_NIC, &mut answer, at(0))));
}

#[test]
fn a_full_table_takes_from_the_biggest_consumer_not_the_oldest_flow() {
    let mut table = table(16);
    let (quiet, busy) = (client(CLIENT), client(CLIENT2));
    open_from(&mut table, quiet, CLIENT_NIC, 5353, at(0)).unwrap();
    for port in 0..15 {
        open_from(&mut table, busy, CLIENT_NIC, 10_000 + port, at(1)).unwrap();
    }
    // A third client's flow takes the busy client's oldest, not the quiet one's.
    let third = client([10, 137, 1, 12]);
    open_from(&mut table, third, CLIENT_NIC, 7000, at(2)).unwrap();
    assert!(holds(&table, quiet, 5353));
    assert!(!holds(&table, busy, 10_000));
    assert!(holds(&table, busy, 10_001));
    // The busy client's own new flows take its own oldest ones.
    for port in 100..200 {
        open_from(&mut table, busy, CLIENT_NIC, 10_000 + port, at(3)).unwrap();
    }
    assert!(holds(&table, quiet, 5353) && holds(&table, third, 7000));
    assert!(table.shares_agree());
}

#[test]
fn a_consumer_no_bigger_than_the_newcomer_is_never_taken_from() {
    let mut table = table(8);
    let (quiet, big) = (client(CLIENT), client(CLIENT2));
    for port in 0..7 {
        open_answered(&mut table, big, 20_000 + port);
    }
    open_from(&mut table, quiet, CLIENT_NIC, 5353, at(1)).unwrap();
    // The big client holds 7 established flows: it may not take the quiet one's query.
    assert_eq!(
        open_from(&mut table, big, CLIENT_NIC, 20_100, at(2)),
        Err(Refused::TableFull)
    );
    assert!(holds(&table, quiet, 5353));
    // A newcomer smaller than the quiet client may: the quiet one is the bigger consumer.
    open_from(
        &mut table,
        client([10, 137, 1, 12]),
        CLIENT_NIC,
        7000,
        at(3),
    )
    .unwrap();
    assert!(!holds(&table, quiet, 5353));
    assert!(table.shares_agree());
}

#[test]
fn the_uplinks_addresses_are_one_consumer_and_a_flooding_address_pays_first() {
    let mut table = table(64);
    let quiet = client(CLIENT);
    let visitor = remote([198, 51, 100, 7]);
    open_from(&mut table, quiet, CLIENT_NIC, 5353, at(0)).unwrap();
    open_from(&mut table, visitor, UPLINK_NIC, 443, at(0)).unwrap();
    // One remote address floods: it gives up its own flows, first the visitor's share of
    // the uplink is spared, then the client's.
    let flooder = remote([203, 0, 113, 9]);
    for port in 0..1000 {
        open_from(&mut table, flooder, UPLINK_NIC, 1024 + port, at(1)).unwrap();
    }
    assert!(holds(&table, quiet, 5353));
    assert!(holds(&table, visitor, 443));
    assert!(table.stats().early_drops > 900);
    // Many remote addresses: they compete among themselves, never with the client.
    for n in 0..2000u32 {
        let spoofed = remote([198, 18, (n >> 8) as u8, n as u8]);
        open_from(&mut table, spoofed, UPLINK_NIC, 80, at(2)).unwrap();
    }
    assert!(holds(&table, quiet, 5353));
    assert!(table.shares_agree());
}

#[derive(Clone, Debug)]
enum Op {
    /// Source `n` opens a flow from port `p`.
    Open(u8, u16),
    /// The flow of source `n` from port `p` gets an answer (established).
    Answer(u8, u16),
    /// Time passes (flows expire).
    Wait(u8),
}

/// The sources of the property test: clients, and addresses behind the router.
fn source(n: u8) -> (Source, u8) {
    match n % 6 {
        0..=2 => (client([10, 137, 1, 10 + n % 6]), CLIENT_NIC),
        _ => (remote([198, 18, 0, n]), UPLINK_NIC),
    }
}

proptest! {
    /// Whatever flows open, get answers, expire or are dropped early, the accounts agree
    /// with the table.
    #[test]
    fn accounts_always_agree_with_the_live_states(ops in proptest::collection::vec(
        prop_oneof![
            (0u8..24, 0u16..40).prop_map(|(n, p)| Op::Open(n, p)),
            (0u8..24, 0u16..40).prop_map(|(n, p)| Op::Answer(n, p)),
            (0u8..40).prop_map(Op::Wait),
        ],
        1..300,
    )) {
        let mut table = table(12);
        let mut secs = 0;
        for op in ops {
            match op {
                Op::Open(n, port) => {
                    let (src, nic) = source(n);
                    let _ = open_from(&mut table, src, nic, port, at(secs));
                }
                Op::Answer(n, port) => {
                    let (src, nic) = source(n);
                    let mut answer = packets::udp(SERVER, 53, src.addr.octets(), port, b"a");
                    pass(&mut table, 1 - nic, &mut answer, at(secs));
                }
                Op::Wait(s) => {
                    secs += u64::from(s);
                    table.sweep(at(secs), 64);
                }
            }
            prop_assert!(table.shares_agree());
        }
    }
}
