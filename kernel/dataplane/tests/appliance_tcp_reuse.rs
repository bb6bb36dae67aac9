//! A TCP 4-tuple used again: once a connection is over (both FINs acknowledged, or reset),
//! a SYN on its tuple opens a new connection at once, from either end, as in pf and Linux
//! conntrack — the way a client that closes with a reset, or a busy server, reuses ports
//! within seconds. A SYN on the tuple of a live connection opens nothing.

mod appliance_common;

use appliance_common::*;
use dataplane::drops::DropReason;
use dataplane::packet::tcp_flags::{ACK, FIN, PSH, RST, SYN};

/// The default network, both clients attached and the gateway known.
fn lab() -> Lab {
    let mut lab = Lab::new(&DEFAULT);
    lab.attach(CLIENT);
    lab.attach(CLIENT2);
    lab.teach(GATEWAY);
    lab
}

/// A fresh SYN from the client on `connection`'s tuple, with another initial sequence
/// number, must leave the uplink with the same masqueraded tuple, and the server's SYN-ACK
/// to it must reach the client: a new connection.
fn reopens(lab: &mut Lab, connection: &Connection) {
    let isn = 7_000_000;
    let syn = segment(connection.inside, connection.server, isn, 0, SYN, &[]);
    let out = tcp_of(&lab.send(connection.client, &syn).ipv4_to(GATEWAY));
    assert_eq!(
        (out.src, out.dst, out.seq, out.flags),
        (connection.outside, connection.server, isn, SYN),
        "the new SYN leaves the uplink at once, not after a retransmission"
    );
    let synack = segment(
        connection.server,
        connection.outside,
        9_000_000,
        isn + 1,
        SYN | ACK,
        &[],
    );
    let back = tcp_of(&lab.send(GATEWAY, &synack).ipv4_to(connection.client));
    assert_eq!((back.dst, back.flags), (connection.inside, SYN | ACK));
    assert_eq!(
        lab.live_states(),
        1,
        "the old state gave way to the new one"
    );
    assert_eq!(lab.dropped(DropReason::InvalidState), 0);
}

#[test]
fn syn_after_the_fin_exchange_on_the_same_tuple_opens_a_new_connection() {
    let mut lab = lab();
    let mut connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
    connection.client_sends(&mut lab, PSH | ACK, b"bye");
    connection.client_sends(&mut lab, FIN | ACK, &[]);
    connection.server_sends(&mut lab, FIN | ACK, &[]);
    connection.client_sends(&mut lab, ACK, &[]);
    reopens(&mut lab, &connection);
}

#[test]
fn syn_after_the_server_closed_first_opens_a_new_connection() {
    let mut lab = lab();
    let mut connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
    connection.server_sends(&mut lab, FIN | ACK, &[]);
    connection.client_sends(&mut lab, ACK, &[]);
    connection.client_sends(&mut lab, FIN | ACK, &[]);
    connection.server_sends(&mut lab, ACK, &[]);
    reopens(&mut lab, &connection);
}

#[test]
fn syn_after_a_reset_crossing_the_servers_fin_opens_a_new_connection() {
    // What a benchmark client does thousands of times a second: connect, close with a
    // reset (SO_LINGER 0) while the server closes too, connect again from the same port.
    let mut lab = lab();
    let mut connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
    connection.client_sends(&mut lab, RST | ACK, &[]);
    // The server's FIN crossed the reset; the client answers it with another reset.
    let fin = connection.segment_from_server(FIN | ACK, &[]);
    lab.send(GATEWAY, &fin).ipv4_to(CLIENT);
    let answer = segment(
        connection.inside,
        connection.server,
        connection.client_seq,
        0,
        RST,
        &[],
    );
    lab.send(CLIENT, &answer).ipv4_to(GATEWAY);
    reopens(&mut lab, &connection);
}

#[test]
fn syn_from_the_server_on_the_tuple_of_a_finished_connection_is_a_new_flow_for_the_policy() {
    let mut lab = lab();
    let mut connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
    connection.client_sends(&mut lab, FIN | ACK, &[]);
    connection.server_sends(&mut lab, FIN | ACK, &[]);
    connection.client_sends(&mut lab, ACK, &[]);
    // The server opens a connection back to the port the finished one used: it is not a
    // packet of the old connection (which would have passed it, or dropped it as out of
    // window); it is a new flow from the uplink, and the policy blocks those.
    let syn = segment(
        connection.server,
        connection.outside,
        3_000_000,
        0,
        SYN,
        &[],
    );
    lab.send(GATEWAY, &syn).assert_nothing();
    assert_eq!(lab.dropped(DropReason::Policy), 1);
    assert_eq!(lab.dropped(DropReason::InvalidState), 0);
    assert_eq!(
        lab.live_states(),
        0,
        "the finished connection's state is gone"
    );
}

#[test]
fn syn_inside_the_window_of_an_established_connection_opens_nothing() {
    let mut lab = lab();
    let mut connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
    // A SYN carrying the connection's own next sequence number: a forgery or a confused
    // stack, not a new connection. It stays a segment of the live connection, which goes on.
    let syn = segment(
        connection.inside,
        connection.server,
        connection.client_seq,
        0,
        SYN,
        &[],
    );
    lab.send(CLIENT, &syn);
    assert_eq!(lab.live_states(), 1, "no second state for the tuple");
    connection.client_sends(&mut lab, PSH | ACK, b"still the same connection");
    connection.server_sends(&mut lab, PSH | ACK, b"and back");
}

#[test]
fn syn_with_a_new_sequence_number_on_a_live_connection_is_dropped_out_of_window() {
    let mut lab = lab();
    let mut connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
    let syn = segment(
        connection.inside,
        connection.server,
        connection.client_seq.wrapping_add(1 << 30),
        0,
        SYN,
        &[],
    );
    lab.send(CLIENT, &syn).assert_nothing();
    assert_eq!(lab.dropped(DropReason::InvalidState), 1);
    assert_eq!(lab.live_states(), 1);
    connection.client_sends(&mut lab, PSH | ACK, b"the connection is untouched");
}
