//! Pinned client MACs (`client NAME ADDR mac MAC on IFACE`): what the checker accepts, and
//! what `test` lines and `explain` report, through the data plane.

use rules::explain::explain;

const NETWORK: &str = "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3
interface clients nic1 address 10.137.1.1/24
nat from clients to uplink
pass from clients to uplink
default block log
";

fn errors(text: &str) -> String {
    match rules::compile("t.rules", text) {
        Ok(_) => String::new(),
        Err(e) => e.render(),
    }
}

fn compiled(text: &str) -> rules::Compiled {
    rules::compile("t.rules", text).unwrap_or_else(|e| panic!("{}", e.render()))
}

#[test]
fn a_client_mac_is_written_before_or_after_its_interface() {
    for client in [
        "client work 10.137.1.10 mac 00:16:3e:5e:6c:00 on clients",
        "client work 10.137.1.10 on clients mac 00:16:3e:5e:6c:00 max-states 100",
        "client work 10.137.1.10 on clients max-states 100 mac 00-16-3e-5e-6c-00",
    ] {
        let c = compiled(&format!("{NETWORK}{client}\n"));
        assert_eq!(
            c.policy.as_policy().clients[0].mac,
            Some([0x00, 0x16, 0x3e, 0x5e, 0x6c, 0x00]),
            "{client}"
        );
    }
}

#[test]
fn a_pinned_mac_must_be_a_stations_and_only_one_clients() {
    for (clients, expected) in [
        (
            "client work 10.137.1.10 mac ff:ff:ff:ff:ff:ff on clients",
            "error: ff:ff:ff:ff:ff:ff is the broadcast address, not a station's MAC",
        ),
        (
            "client work 10.137.1.10 mac 01:00:5e:00:00:01 on clients",
            "error: 01:00:5e:00:00:01 is a multicast address, not a station's MAC",
        ),
        (
            "client work 10.137.1.10 mac 00:00:00:00:00:00 on clients",
            "error: 00:00:00:00:00:00 is all zeros, not a station's MAC",
        ),
        (
            "client work 10.137.1.10 mac 00:16:3e:5e:6c:0 on clients",
            "error: '00:16:3e:5e:6c:0' is not a MAC address",
        ),
        (
            "client work 10.137.1.10 mac 00:16:3e:5e:6c:00 on clients mac 00:16:3e:5e:6c:01",
            "error: 'mac' given twice",
        ),
        (
            "client work 10.137.1.10 mac 00:16:3e:5e:6c:00 on clients\n\
             client personal 10.137.1.11 mac 00:16:3e:5e:6c:00 on clients",
            "error: 00:16:3e:5e:6c:00 is already the MAC of client 'work'",
        ),
    ] {
        let out = errors(&format!("{NETWORK}{clients}\n"));
        assert!(out.contains(expected), "{clients}:\n{out}");
    }
}

const PINNED: &str = "client work 10.137.1.10 mac 00:16:3e:5e:6c:00 on clients\n";

#[test]
fn test_lines_send_from_the_pinned_mac_unless_told_otherwise() {
    let text = format!(
        "{NETWORK}{PINNED}\
         test pass udp work:5000 -> 1.1.1.1:53\n\
         test pass udp work:5000 -> 1.1.1.1:53 mac 00:16:3e:5e:6c:00\n\
         test block log because spoofed udp work:5000 -> 1.1.1.1:53 mac 02:00:00:00:00:66\n"
    );
    compiled(&text);
}

#[test]
fn explain_names_the_pin_a_spoofed_packet_broke() {
    let c = compiled(&format!("{NETWORK}{PINNED}"));
    let out = explain(
        &c.file,
        &c.checked,
        &c.policy.as_policy(),
        "udp work:5000 -> 1.1.1.1:53 mac 02:00:00:00:00:66",
    )
    .unwrap();
    assert!(
        out.contains(
            "verdict: block log (spoofed), by the data plane: 10.137.1.10 may not send from \
             clients (client-mac-pinned)"
        ),
        "{out}"
    );
}
