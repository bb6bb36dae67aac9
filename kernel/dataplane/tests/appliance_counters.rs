//! Per-rule and per-reason counters, and the machine-readable lines that report them: on a
//! schedule (only what changed) and at shutdown (everything non-zero).

mod appliance_common;

use appliance_common::*;
use dataplane::appliance::ApplianceOptions;
use dataplane::packet::tcp_flags::{ACK, SYN};
use dataplane::rule_counters::{RuleCount, RuleId};
use dataplane::testutil::packets;
use dataplane::testutil::packets6::{self, addr};
use smoltcp::time::Duration;
use smoltcp::wire::{Ipv6Packet, TcpPacket};

/// `rules/default.rules`: rules 0 and 1 (line 20, ICMP and ICMPv6) pass ping to the
/// appliance, rule 2 (line 21) passes clients to the uplink, the default (line 22) blocks.
const PASS_OUT: RuleId = RuleId::Rule(2);

fn lab_with(options: ApplianceOptions) -> Lab {
    let mut lab = Lab::with_options(&DEFAULT, options);
    lab.attach(CLIENT);
    lab.teach(GATEWAY);
    take_log_lines();
    lab
}

/// IP bytes of a TCP segment with `flags` and `payload` (the test packet builder's).
fn segment_bytes(flags: u8, payload: &[u8]) -> u64 {
    segment(sock(CLIENT.ip, 1), sock(SERVER, 2), 0, 0, flags, payload).len() as u64
}

/// IP bytes of a three-way handshake.
fn handshake_bytes() -> u64 {
    segment_bytes(SYN, &[]) + segment_bytes(SYN | ACK, &[]) + segment_bytes(ACK, &[])
}

fn stats_lines() -> Vec<String> {
    take_log_lines()
        .into_iter()
        .filter(|l| l.starts_with("stats ") || l.starts_with("final "))
        .collect()
}

#[test]
fn a_connection_counts_every_packet_both_ways_and_one_state_for_the_rule_that_passed_it() {
    let mut lab = lab_with(ApplianceOptions::default());
    let mut connection = Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
    connection.client_sends(&mut lab, ACK, b"hello");
    connection.server_sends(&mut lab, ACK, b"world!");
    assert_eq!(
        lab.appliance.rule_counters().get(PASS_OUT),
        RuleCount {
            packets: 5,
            bytes: handshake_bytes() + segment_bytes(ACK, b"hello") + segment_bytes(ACK, b"world!"),
            states: 1
        }
    );
    assert_eq!(
        lab.appliance.rule_counters().get(RuleId::Default),
        RuleCount::default()
    );
}

#[test]
fn a_blocked_packet_counts_for_the_default_without_a_state() {
    let mut lab = lab_with(ApplianceOptions::default());
    let syn = packets::tcp_syn(REMOTE, 40000, CLIENT.ip, 22);
    lab.send(GATEWAY, &syn).assert_nothing();
    assert_eq!(
        lab.appliance.rule_counters().get(RuleId::Default),
        RuleCount {
            packets: 1,
            bytes: syn.len() as u64,
            states: 0
        }
    );
}

#[test]
fn an_ipv6_connection_counts_for_its_rule_like_an_ipv4_one() {
    // `DUAL_STACK`: rules 0 and 1 pass ping (ICMP, ICMPv6) to the appliance, rule 2 rejects
    // SMTP, rule 3 passes the clients to the uplink.
    let mut lab = Lab::new(&DUAL_STACK);
    lab.teach6_all(&[CLIENT6]);
    let server = addr(SERVER6);
    let syn = packets6::tcp_syn(CLIENT6.addr(), 40000, server, 443);
    let out = lab.send6(CLIENT6, &syn).ipv6_upstream();
    let nat_port = TcpPacket::new_checked(Ipv6Packet::new_checked(&out[..]).unwrap().payload())
        .unwrap()
        .src_port();
    let synack = packets6::tcp(
        (server, 443),
        (addr(APPLIANCE6_UPLINK), nat_port),
        (5000, 1001, SYN | ACK),
        b"",
    );
    lab.send6(GATEWAY6, &synack).ipv6_to(CLIENT6);
    assert_eq!(
        lab.appliance.rule_counters().get(RuleId::Rule(3)),
        RuleCount {
            packets: 2,
            bytes: (syn.len() + synack.len()) as u64,
            states: 1
        }
    );
    let smtp = packets6::tcp_syn(CLIENT6.addr(), 40001, server, 25);
    lab.send6(CLIENT6, &smtp);
    assert_eq!(
        lab.appliance.rule_counters().get(RuleId::Rule(2)),
        RuleCount {
            packets: 1,
            bytes: smtp.len() as u64,
            states: 0
        }
    );
}

#[test]
fn shutdown_reports_every_non_zero_rule_and_drop_reason_as_key_value_lines() {
    let mut lab = lab_with(ApplianceOptions::default());
    Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
    let syn = packets::tcp_syn(REMOTE, 40000, CLIENT.ip, 22);
    lab.send(GATEWAY, &syn).assert_nothing();
    take_log_lines();

    lab.appliance.report_final();
    let lines = stats_lines();
    assert!(lines[0].starts_with("final nic0 rx "), "{lines:?}");
    assert_eq!(
        lines[1..],
        [
            format!(
                "stats rule=2 line=21 packets=3 bytes={} states=1",
                handshake_bytes()
            ),
            format!(
                "stats rule=default line=22 packets=1 bytes={} states=0",
                syn.len()
            ),
            "stats drop reason=policy count=1".to_string(),
        ]
    );
}

#[test]
fn the_schedule_prints_only_the_counters_that_changed_at_most_once_per_interval() {
    let options = ApplianceOptions {
        stats_interval: Some(Duration::from_secs(2)),
        ..ApplianceOptions::default()
    };
    let mut lab = lab_with(options);
    Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
    lab.poll();
    let first = stats_lines();
    assert!(first[0].starts_with("stats nic0 rx "), "{first:?}");
    assert_eq!(
        first[1..],
        [format!(
            "stats rule=2 line=21 packets=3 bytes={} states=1",
            handshake_bytes()
        )]
    );

    lab.advance(Duration::from_secs(2));
    lab.poll();
    assert_eq!(stats_lines(), Vec::<String>::new(), "nothing changed");

    let syn = packets::tcp_syn(REMOTE, 40000, CLIENT.ip, 22);
    lab.send(GATEWAY, &syn);
    lab.poll();
    let second = stats_lines();
    assert_eq!(
        second[1..],
        [
            format!(
                "stats rule=default line=22 packets=1 bytes={} states=0",
                syn.len()
            ),
            "stats drop reason=policy count=1".to_string(),
        ]
    );

    lab.send(GATEWAY, &syn);
    lab.advance(Duration::from_secs(1));
    lab.poll();
    assert_eq!(
        stats_lines(),
        Vec::<String>::new(),
        "the interval is not over"
    );
    lab.advance(Duration::from_secs(1));
    lab.poll();
    let third = stats_lines();
    assert_eq!(
        third[1..],
        [
            format!(
                "stats rule=default line=22 packets=2 bytes={} states=0",
                2 * syn.len()
            ),
            "stats drop reason=policy count=2".to_string(),
        ]
    );
}

#[test]
fn stats_off_prints_nothing_until_shutdown() {
    let options = ApplianceOptions {
        stats_interval: None,
        ..ApplianceOptions::default()
    };
    let mut lab = lab_with(options);
    Connection::open(&mut lab, CLIENT, 40000, sock(SERVER, 443));
    for _ in 0..3 {
        lab.advance(Duration::from_secs(10));
        lab.poll();
    }
    assert_eq!(stats_lines(), Vec::<String>::new());
    lab.appliance.report_final();
    assert!(stats_lines().len() > 1);
}
