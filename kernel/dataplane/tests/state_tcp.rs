//! TCP through the state table: the handshake, data, teardown, window checks and resets,
//! with real segments crossing a masquerading appliance.

mod state_common;

use dataplane::packet::tcp_flags::{ACK, FIN, PSH, RST, SYN};
use dataplane::state::{
    Direction, Lookup, ProtocolState, Refused, StateDrop, StateId, StateTable, TcpState, Timeouts,
};
use dataplane::testutil::packets;
use smoltcp::time::Duration;
use state_common::*;

const CLIENT_ISN: u32 = 1000;
const SERVER_ISN: u32 = 5000;

fn from_client(seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    packets::tcp((CLIENT, 40000), (SERVER, 443), (seq, ack, flags), payload)
}

/// The server's segments as they arrive on the uplink: addressed to the appliance's port.
fn from_server(seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    packets::tcp(
        (SERVER, 443),
        (UPLINK_ADDR, 40000),
        (seq, ack, flags),
        payload,
    )
}

fn tcp_state(table: &StateTable, id: StateId) -> ProtocolState {
    table.get(id).expect("state is live").protocol_state
}

/// A masqueraded connection through its three-way handshake, at t = 0.
fn connected() -> (StateTable, StateId) {
    let mut table = table(16);
    let mut syn = from_client(CLIENT_ISN, 0, SYN, b"");
    let flow = masqueraded(&table, &mut masquerader(), &syn, at(0));
    let id = open(&mut table, &flow, &mut syn, at(0)).expect("SYN opens a state");
    assert!(forwarded(pass(
        &mut table,
        UPLINK_NIC,
        &mut from_server(SERVER_ISN, CLIENT_ISN + 1, SYN | ACK, b""),
        at(0)
    )));
    assert!(forwarded(pass(
        &mut table,
        CLIENT_NIC,
        &mut from_client(CLIENT_ISN + 1, SERVER_ISN + 1, ACK, b""),
        at(0)
    )));
    (table, id)
}

#[test]
fn handshake_walks_syn_sent_syn_received_established_with_pf_timeouts() {
    let pf = Timeouts::default();
    let mut table = table(16);
    let mut syn = from_client(CLIENT_ISN, 0, SYN, b"");
    let flow = masqueraded(&table, &mut masquerader(), &syn, at(0));
    let id = open(&mut table, &flow, &mut syn, at(0)).unwrap();
    assert_eq!(tcp_state(&table, id), ProtocolState::Tcp(TcpState::SynSent));
    assert_eq!(table.get(id).unwrap().expires, at(0) + pf.tcp_first);

    let mut synack = from_server(SERVER_ISN, CLIENT_ISN + 1, SYN | ACK, b"");
    let Lookup::Hit(hit) = pass(&mut table, UPLINK_NIC, &mut synack, at(1)) else {
        panic!("SYN-ACK has a state")
    };
    assert_eq!(
        (hit.id, hit.direction, hit.egress_nic, hit.verdict),
        (id, Direction::Reply, CLIENT_NIC, Ok(()))
    );
    assert_eq!(
        tcp_state(&table, id),
        ProtocolState::Tcp(TcpState::SynReceived)
    );
    assert_eq!(table.get(id).unwrap().expires, at(1) + pf.tcp_opening);

    let mut ack = from_client(CLIENT_ISN + 1, SERVER_ISN + 1, ACK, b"");
    assert!(forwarded(pass(&mut table, CLIENT_NIC, &mut ack, at(2))));
    assert_eq!(
        tcp_state(&table, id),
        ProtocolState::Tcp(TcpState::Established)
    );
    assert_eq!(table.get(id).unwrap().expires, at(2) + pf.tcp_established);
    assert!(table.get(id).unwrap().established);
}

#[test]
fn tcp_reply_from_uplink_is_de_natted() {
    let mut table = table(16);
    let mut syn = from_client(CLIENT_ISN, 0, SYN, b"");
    let flow = masqueraded(&table, &mut masquerader(), &syn, at(0));
    open(&mut table, &flow, &mut syn, at(0)).unwrap();
    assert_eq!(
        endpoints(&syn),
        ((ip(UPLINK_ADDR), 40000), (ip(SERVER), 443)),
        "SYN leaves masqueraded, port kept"
    );

    let mut synack = from_server(SERVER_ISN, CLIENT_ISN + 1, SYN | ACK, b"");
    assert!(forwarded(pass(&mut table, UPLINK_NIC, &mut synack, at(0))));
    assert_eq!(endpoints(&synack), ((ip(SERVER), 443), (ip(CLIENT), 40000)));
    let summary = parse(&synack);
    let dataplane::packet::Transport::Tcp(segment) = summary.transport else {
        panic!("not TCP")
    };
    assert_eq!(
        (segment.seq, segment.ack, segment.flags),
        (SERVER_ISN, CLIENT_ISN + 1, SYN | ACK),
        "TCP fields untouched"
    );
    assert_eq!(summary.ttl, 64, "the state table leaves the TTL to routing");
}

#[test]
fn data_both_ways_then_fin_teardown_walks_fin_wait_closing_time_wait() {
    let pf = Timeouts::default();
    let (mut table, id) = connected();
    let request = from_client(
        CLIENT_ISN + 1,
        SERVER_ISN + 1,
        PSH | ACK,
        b"GET / HTTP/1.1\r\n\r\n",
    );
    assert!(forwarded(pass(
        &mut table,
        CLIENT_NIC,
        &mut request.clone(),
        at(3)
    )));
    let sent = CLIENT_ISN + 1 + 18;
    assert!(forwarded(pass(
        &mut table,
        UPLINK_NIC,
        &mut from_server(SERVER_ISN + 1, sent, PSH | ACK, &[b'x'; 1400]),
        at(3)
    )));
    let received = SERVER_ISN + 1 + 1400;

    assert!(forwarded(pass(
        &mut table,
        CLIENT_NIC,
        &mut from_client(sent, received, FIN | ACK, b""),
        at(4)
    )));
    assert_eq!(tcp_state(&table, id), ProtocolState::Tcp(TcpState::FinWait));
    assert_eq!(table.get(id).unwrap().expires, at(4) + pf.tcp_closing);

    assert!(forwarded(pass(
        &mut table,
        UPLINK_NIC,
        &mut from_server(received, sent + 1, FIN | ACK, b""),
        at(5)
    )));
    assert_eq!(tcp_state(&table, id), ProtocolState::Tcp(TcpState::Closing));
    assert_eq!(table.get(id).unwrap().expires, at(5) + pf.tcp_finwait);

    assert!(forwarded(pass(
        &mut table,
        CLIENT_NIC,
        &mut from_client(sent + 1, received + 1, ACK, b""),
        at(6)
    )));
    assert_eq!(
        tcp_state(&table, id),
        ProtocolState::Tcp(TcpState::TimeWait)
    );
    assert_eq!(table.get(id).unwrap().expires, at(6) + pf.tcp_closed);
}

#[test]
fn segment_beyond_the_receivers_window_is_dropped_and_counted() {
    let (mut table, id) = connected();
    // The server offered ~64 KiB: 1 MiB ahead is outside anything it allowed.
    let mut far = from_client(
        CLIENT_ISN + 1 + (1 << 20),
        SERVER_ISN + 1,
        PSH | ACK,
        b"injected",
    );
    let before = far.clone();
    let Lookup::Hit(hit) = pass(&mut table, CLIENT_NIC, &mut far, at(3)) else {
        panic!("segment has a state")
    };
    assert_eq!(hit.verdict, Err(StateDrop::OutOfWindow));
    assert_eq!(far, before, "a dropped segment is not translated");
    assert_eq!(table.stats().out_of_window, 1);
    assert_eq!(
        table.get(id).unwrap().expires,
        at(0) + Timeouts::default().tcp_established,
        "not refreshed"
    );
    // The connection itself is unharmed.
    assert!(forwarded(pass(
        &mut table,
        CLIENT_NIC,
        &mut from_client(CLIENT_ISN + 1, SERVER_ISN + 1, PSH | ACK, b"ok"),
        at(4)
    )));
}

#[test]
fn ack_of_data_never_sent_is_dropped() {
    let (mut table, _) = connected();
    let mut forged = from_server(SERVER_ISN + 1, CLIENT_ISN + 1 + 5_000_000, ACK, b"");
    let Lookup::Hit(hit) = pass(&mut table, UPLINK_NIC, &mut forged, at(3)) else {
        panic!("segment has a state")
    };
    assert_eq!(hit.verdict, Err(StateDrop::OutOfWindow));
}

#[test]
fn rst_out_of_window_is_dropped_and_rst_in_window_closes_the_connection() {
    let (mut table, id) = connected();
    let mut blind = from_server(SERVER_ISN + 1 + 40_000, CLIENT_ISN + 1, RST | ACK, b"");
    let Lookup::Hit(hit) = pass(&mut table, UPLINK_NIC, &mut blind, at(3)) else {
        panic!("RST has a state")
    };
    assert_eq!(
        hit.verdict,
        Err(StateDrop::OutOfWindow),
        "a RST must carry the exact sequence number"
    );
    assert_eq!(
        tcp_state(&table, id),
        ProtocolState::Tcp(TcpState::Established)
    );

    let mut reset = from_server(SERVER_ISN + 1, CLIENT_ISN + 1, RST | ACK, b"");
    assert!(forwarded(pass(&mut table, UPLINK_NIC, &mut reset, at(4))));
    assert_eq!(
        endpoints(&reset).1,
        (ip(CLIENT), 40000),
        "the RST is de-NATed to the client"
    );
    assert_eq!(tcp_state(&table, id), ProtocolState::Tcp(TcpState::Closed));
    assert_eq!(
        table.get(id).unwrap().expires,
        at(4) + Timeouts::default().tcp_closed
    );
}

#[test]
fn rst_answering_a_syn_closes_the_half_open_state() {
    let mut table = table(16);
    let mut syn = from_client(CLIENT_ISN, 0, SYN, b"");
    let flow = masqueraded(&table, &mut masquerader(), &syn, at(0));
    let id = open(&mut table, &flow, &mut syn, at(0)).unwrap();
    let mut refused = from_server(0, CLIENT_ISN + 1, RST | ACK, b"");
    assert!(forwarded(pass(&mut table, UPLINK_NIC, &mut refused, at(0))));
    assert_eq!(tcp_state(&table, id), ProtocolState::Tcp(TcpState::Closed));
    assert!(
        !table.get(id).unwrap().established,
        "a refused connection stays an early-drop candidate"
    );
}

#[test]
fn only_a_syn_can_open_a_connection() {
    let mut table = table(16);
    for flags in [ACK, SYN | ACK, PSH | ACK, RST, FIN | ACK] {
        let segment = from_client(CLIENT_ISN, 1, flags, b"");
        let refused = table.insert(
            &flow(CLIENT_NIC, UPLINK_NIC, &segment),
            &parse(&segment),
            at(0),
        );
        assert_eq!(refused, Err(Refused::TcpWithoutSyn), "flags {flags:#x}");
    }
    assert_eq!(table.stats().refused.tcp_without_syn, 5);
    assert!(table.is_empty());
}

#[test]
fn new_syn_on_the_tuple_of_a_finished_connection_starts_over() {
    let (mut table, old) = connected();
    let sent = CLIENT_ISN + 1;
    let received = SERVER_ISN + 1;
    pass(
        &mut table,
        CLIENT_NIC,
        &mut from_client(sent, received, FIN | ACK, b""),
        at(3),
    );
    pass(
        &mut table,
        UPLINK_NIC,
        &mut from_server(received, sent + 1, FIN | ACK, b""),
        at(3),
    );
    pass(
        &mut table,
        CLIENT_NIC,
        &mut from_client(sent + 1, received + 1, ACK, b""),
        at(3),
    );
    assert_eq!(
        tcp_state(&table, old),
        ProtocolState::Tcp(TcpState::TimeWait)
    );

    let mut again = from_client(900_000, 0, SYN, b"");
    assert_eq!(
        pass(&mut table, CLIENT_NIC, &mut again, at(4)),
        Lookup::Miss,
        "the old state gives way"
    );
    assert!(table.get(old).is_none());
    let flow = masqueraded(&table, &mut masquerader(), &again, at(4));
    let new = open(&mut table, &flow, &mut again, at(4)).expect("the new connection gets a state");
    assert_eq!(
        tcp_state(&table, new),
        ProtocolState::Tcp(TcpState::SynSent)
    );
    assert_eq!(table.stats().removed, 1);
}

#[test]
fn retransmitted_syn_is_part_of_the_same_connection() {
    let mut table = table(16);
    let mut syn = from_client(CLIENT_ISN, 0, SYN, b"");
    let flow = masqueraded(&table, &mut masquerader(), &syn, at(0));
    let id = open(&mut table, &flow, &mut syn, at(0)).unwrap();
    let Lookup::Hit(hit) = pass(
        &mut table,
        CLIENT_NIC,
        &mut from_client(CLIENT_ISN, 0, SYN, b""),
        at(1),
    ) else {
        panic!("retransmission has a state")
    };
    assert_eq!((hit.id, hit.verdict), (id, Ok(())));
    assert_eq!(table.len(), 1);
}

#[test]
fn reply_arriving_on_the_client_side_is_dropped() {
    let mut table = table(16);
    let mut syn = from_client(CLIENT_ISN, 0, SYN, b"");
    let flow = masqueraded(&table, &mut masquerader(), &syn, at(0));
    open(&mut table, &flow, &mut syn, at(0)).unwrap();
    let mut misplaced = from_server(SERVER_ISN, CLIENT_ISN + 1, SYN | ACK, b"");
    let Lookup::Hit(hit) = pass(&mut table, CLIENT_NIC, &mut misplaced, at(0)) else {
        panic!("tuple is known")
    };
    assert_eq!(hit.verdict, Err(StateDrop::WrongInterface));
    assert_eq!(table.stats().wrong_interface, 1);
}

#[test]
fn opening_state_expires_after_tcp_first_without_an_answer() {
    let mut table = table(16);
    let mut syn = from_client(CLIENT_ISN, 0, SYN, b"");
    let flow = masqueraded(&table, &mut masquerader(), &syn, at(0));
    open(&mut table, &flow, &mut syn, at(0)).unwrap();
    let first = Timeouts::default().tcp_first;
    let late = at(0) + first + Duration::from_millis(1);
    let mut synack = from_server(SERVER_ISN, CLIENT_ISN + 1, SYN | ACK, b"");
    assert_eq!(
        pass(&mut table, UPLINK_NIC, &mut synack, late),
        Lookup::Miss
    );
    assert_eq!(table.stats().expired, 1);
    assert!(table.is_empty());
}
