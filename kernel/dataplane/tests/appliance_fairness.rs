//! One client must never hurt another (issue 8): the shipped `default.rules` keeps one
//! client from taking the whole state table.

mod appliance_common;

use appliance_common::*;
use dataplane::appliance::ApplianceOptions;
use dataplane::drops::DropReason;
use dataplane::testutil::packets;

/// A state table twice the size of `default.rules`' per-client share (the kernel's is far
/// bigger: a quarter of the heap, about 110,000 states in 64 MiB).
const CAPACITY: usize = 8192;

#[test]
fn one_client_with_thousands_of_answered_flows_cannot_stop_another_from_opening_one() {
    let mut lab = Lab::with_options(
        &DEFAULT,
        ApplianceOptions {
            state_capacity: CAPACITY,
            ..ApplianceOptions::default()
        },
    );
    lab.attach(CLIENT);
    lab.attach(CLIENT2);
    lab.teach(GATEWAY);

    // CLIENT opens as many answered (so established) flows as it can: more than the table
    // holds.
    let mut opened = 0;
    for port in 10_000..10_000 + CAPACITY as u16 {
        let query = packets::udp(CLIENT.ip, port, SERVER, 53, b"query");
        if lab.send(CLIENT, &query).frames.is_empty() {
            continue;
        }
        let answer = packets::udp(SERVER, 53, APPLIANCE_UPLINK, port, b"answer");
        lab.send(GATEWAY, &answer).ipv4_to(CLIENT);
        opened += 1;
    }
    assert!(opened < CAPACITY, "CLIENT alone filled the table");
    assert!(lab.dropped(DropReason::StateLimit) > 0);
    assert_eq!(lab.dropped(DropReason::StateTableFull), 0);

    // CLIENT2 still gets its flow.
    let query = packets::udp(CLIENT2.ip, 5353, SERVER, 53, b"query");
    lab.send(CLIENT2, &query).ipv4_to(GATEWAY);
}
