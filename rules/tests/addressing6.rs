//! IPv6 addressing in interface declarations — `address6 A/P`, `gateway6 G`, `slaac`,
//! `ra` — as compiled into the policy, and every mistake the compiler refuses with its
//! message and position.

use dataplane::policy::Ipv6Config;
use rules::compile;

fn compiled(text: &str) -> rules::Compiled {
    match compile("t.rules", text) {
        Ok(c) => c,
        Err(e) => panic!("expected the ruleset to compile:\n{}", e.render()),
    }
}

fn errors(text: &str) -> String {
    match compile("t.rules", text) {
        Ok(_) => panic!("expected the ruleset to be rejected:\n{text}"),
        Err(e) => e.render(),
    }
}

fn assert_has(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            haystack.contains(needle),
            "missing {needle:?} in:\n{haystack}"
        );
    }
}

fn v6(text: &str) -> u128 {
    text.parse::<std::net::Ipv6Addr>().unwrap().into()
}

const DUAL_STACK: &str = "\
interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 address6 2001:db8:0:2::f/64 gateway6 fe80::1
interface clients nic1 address 10.137.1.1/24 address6 fd00:137:1::1/64 ra
client work 10.137.1.10, fd00:137:1::10 on clients
";

#[test]
fn static_address6_gateway6_and_ra_reach_the_policy() {
    let c = compiled(DUAL_STACK);
    let policy = c.policy.as_policy();
    let uplink = policy.interface_on(0).unwrap();
    assert_eq!(
        uplink.ipv6,
        Ipv6Config::Static {
            address: v6("2001:db8:0:2::f"),
            prefix_len: 64,
            gateway: Some(v6("fe80::1")),
        }
    );
    assert!(uplink.uplink && !uplink.router_adverts);
    let clients = policy.interface_on(1).unwrap();
    assert!(clients.router_adverts && !clients.uplink);
    assert_eq!(policy.clients[0].ipv6, Some(v6("fd00:137:1::10")));
}

#[test]
fn slaac_makes_the_interface_the_uplink() {
    let c = compiled(
        "interface wan nic0 dhcp slaac\ninterface lan nic1 address 10.0.0.1/24 address6 fd00::1/64 ra\n",
    );
    let policy = c.policy.as_policy();
    assert_eq!(policy.interface_on(0).unwrap().ipv6, Ipv6Config::Slaac);
    assert!(policy.interface_on(0).unwrap().uplink);
}

#[test]
fn an_ipv6_only_uplink_is_the_uplink_and_needs_no_ipv4_warning() {
    let c = compiled("interface wan nic0 slaac\ninterface lan nic1 address6 fd00::1/64 ra\n");
    assert!(c.policy.as_policy().interface_on(0).unwrap().uplink);
    assert_eq!(c.render_warnings(), "");
}

#[test]
fn a_v4_uplink_and_a_separate_v6_uplink_are_two_uplinks() {
    assert_has(
        &errors("interface wan nic0 dhcp\ninterface wan6 nic1 slaac\n"),
        &["2:11: error: two uplinks: 'wan' and 'wan6' both have a default route"],
    );
}

#[test]
fn address6_and_slaac_exclude_each_other() {
    assert_has(
        &errors("interface wan nic0 slaac address6 2001:db8::2/64\n"),
        &[
            "1:26: error: the interface's IPv6 address is already given",
            "hint: an interface has either 'slaac' or one 'address6 A/P'",
        ],
    );
}

#[test]
fn an_ipv4_address_after_address6_is_named() {
    assert_has(
        &errors("interface wan nic0 address6 10.0.2.15/24\n"),
        &["1:29: error: '10.0.2.15' is an IPv4 address; an IPv6 address is needed here"],
    );
}

#[test]
fn address6_needs_a_prefix_length() {
    assert_has(
        &errors("interface lan nic1 address6 fd00::1\n"),
        &["error: 'fd00::1' has no prefix length", "e.g. fd00::1/64"],
    );
}

#[test]
fn a_prefix_longer_than_128_bits_is_refused() {
    assert_has(
        &errors("interface lan nic1 address6 fd00::1/129\n"),
        &["prefix length 129 is out of range (0-128)"],
    );
}

#[test]
fn link_local_and_multicast_cannot_be_the_interface_address() {
    assert_has(
        &errors("interface lan nic1 address6 fe80::1/64\n"),
        &["error: fe80::1 is link-local"],
    );
    assert_has(
        &errors("interface lan nic1 address6 ff02::1/64\n"),
        &["error: ff02::1 is a multicast address"],
    );
}

#[test]
fn the_subnet_router_anycast_address_is_refused() {
    assert_has(
        &errors("interface lan nic1 address6 fd00:1::/64\n"),
        &["error: fd00:1:: is the subnet-router anycast address of fd00:1::/64"],
    );
}

#[test]
fn gateway6_must_be_on_link() {
    assert_has(
        &errors("interface wan nic0 address6 2001:db8::2/64 gateway6 2001:db9::1\n"),
        &[
            "1:53: error: IPv6 gateway 2001:db9::1 is outside the prefix 2001:db8::/64",
            "inside the prefix, or link-local (fe80::/10)",
        ],
    );
}

#[test]
fn gateway6_needs_address6() {
    assert_has(
        &errors("interface wan nic0 slaac gateway6 fe80::1\n"),
        &["error: an IPv6 gateway needs a static IPv6 address"],
    );
}

#[test]
fn overlapping_prefixes_are_refused() {
    assert_has(
        &errors(
            "interface a nic1 address6 fd00::1/48\ninterface b nic2 address6 fd00:0:0:5::1/64\n",
        ),
        &["2:27: error: prefix fd00:0:0:5::/64 overlaps interface 'a''s fd00::/48"],
    );
}

#[test]
fn ra_needs_a_static_64_prefix() {
    assert_has(
        &errors("interface lan nic1 address6 fd00::1/56 ra\n"),
        &[
            "1:40: error: 'ra' advertises the prefix of address6 fd00::1/56 for SLAAC, which needs a /64",
            "hint: write: address6 fd00::1/64 ra",
        ],
    );
    assert_has(
        &errors("interface lan nic1 address 10.0.0.1/24 ra\n"),
        &["error: 'ra' needs a static IPv6 prefix to advertise"],
    );
}

#[test]
fn ra_on_the_uplink_is_refused() {
    assert_has(
        &errors("interface wan nic0 address6 2001:db8::2/64 gateway6 fe80::1 ra\n"),
        &["error: router advertisements on the uplink would announce the appliance as a router to its own upstream"],
    );
}

#[test]
fn ra_given_twice_is_named() {
    assert_has(
        &errors("interface lan nic1 address6 fd00::1/64 ra ra\n"),
        &["1:43: error: 'ra' given twice"],
    );
}

#[test]
fn a_misspelt_keyword_suggests_the_ipv6_one() {
    assert_has(
        &errors("interface wan nic0 slac\n"),
        &[
            "error: unexpected 'slac' in an interface declaration",
            "did you mean 'slaac'?",
        ],
    );
}

#[test]
fn a_client_ipv6_address_outside_the_prefix_is_refused() {
    assert_has(
        &errors("interface lan nic1 address6 fd00:1::1/64\nclient work fd00:2::10 on lan\n"),
        &["2:13: error: fd00:2::10 is outside interface 'lan''s prefix fd00:1::/64"],
    );
}

#[test]
fn a_client_cannot_have_the_appliance_address() {
    assert_has(
        &errors("interface lan nic1 address6 fd00:1::1/64\nclient work fd00:1::1 on lan\n"),
        &["error: fd00:1::1 is the appliance's own address on 'lan'"],
    );
}

#[test]
fn a_client_ipv6_address_on_an_interface_without_ipv6_is_a_warning() {
    let c = compiled(
        "interface lan nic1 address 10.0.0.1/24\nclient work 10.0.0.10, fd00::10 on lan\n",
    );
    assert!(
        c.render_warnings().contains(
            "warning: interface 'lan' has no IPv6: the client's IPv6 address is never used"
        ),
        "{}",
        c.render_warnings()
    );
}
