//! `test` lines and `explain` for IPv6 packets: judged, like IPv4's, by what the data plane
//! does with the packet — NAT66, a routed prefix, anti-spoofing, link scope, the policy on
//! the protocol after the extension chain, ping to the appliance.

const DUAL_STACK: &str = "\
interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 address6 2001:db8:2::15/64 gateway6 fe80::2
interface clients nic1 address 10.137.1.1/24 address6 fd00:137:1::1/64
client work 10.137.1.10, fd00:137:1::10 on clients
nat from clients to uplink
pass from clients to self { icmp, icmp6 } type echo-request
reject from clients to uplink tcp port 25
pass from clients to uplink
default block log
";

fn errors(text: &str) -> String {
    match rules::compile("t.rules", text) {
        Ok(_) => String::new(),
        Err(e) => e.render(),
    }
}

fn with(lines: &str) -> String {
    format!("{DUAL_STACK}{lines}")
}

#[test]
fn ipv6_test_lines_pass_when_the_data_plane_agrees() {
    let text = with(
        "test pass tcp work -> [2001:db8:5::80]:443\n\
         test pass udp [fd00:137:1::4c2a]:5353 -> [2001:db8:5::80]:53 on clients\n\
         test pass icmp6 work -> self type echo-request\n\
         test reject tcp work -> [2001:db8:5::80]:25\n\
         test block log tcp [2001:db8:5::80] -> work:22 on uplink\n\
         test block because spoofed udp [2001:db8:99::5] -> [2001:db8:5::80]:53 on clients\n\
         test block because spoofed udp work -> [2001:db8:5::80]:53 on uplink\n\
         test block because martian-destination udp [fd00:137:1::10] -> [fe80::99]:53 on clients\n\
         test block because martian-destination udp [fd00:137:1::10] -> [ff0e::1]:53 on clients\n\
         test block because martian-source udp [fe80::10] -> [2001:db8:5::80]:53 on clients\n",
    );
    let out = errors(&text);
    assert!(out.is_empty(), "{out}");
}

#[test]
fn an_ipv6_test_the_data_plane_disagrees_with_fails_with_its_reason() {
    let out = errors(&with(
        "test pass udp [fd00:137:1::10]:4000 -> [ff0e::1]:53 on clients\n\
         test pass tcp [2001:db8:5::80] -> work:22 on uplink\n",
    ));
    for expected in [
        "9:1: error: test failed: expected pass, got block (martian-destination)",
        "10:1: error: test failed: expected pass, got block log, decided by the default",
    ] {
        assert!(out.contains(expected), "missing {expected}\nin:\n{out}");
    }
}

#[test]
fn explain_shows_an_ipv6_flow_leaving_masqueraded() {
    let compiled = rules::compile("t.rules", DUAL_STACK).expect("compiles");
    let text = rules::explain::explain(
        &compiled.file,
        &compiled.checked,
        &compiled.policy.as_policy(),
        "tcp work -> [2001:db8:5::80]:443",
    )
    .expect("explains");
    assert!(
        text.contains("2001:db8:2::15"),
        "the uplink's IPv6 address as source:\n{text}"
    );
    assert!(text.contains("fe80::2"), "via the IPv6 router:\n{text}");
}

/// An uplink that learns its IPv6 address, router and resolvers from router advertisements
/// (SLAAC, RDNSS), and DNS from one client network redirected to those resolvers.
const SLAAC_UPLINK: &str = "\
interface uplink nic0 address 10.0.2.15/24 gateway 10.0.2.2 slaac
interface lan1   nic1 address 10.137.1.1/24 address6 fd00:137:1::1/64
interface lan2   nic2 address 10.137.2.1/24 address6 fd00:137:2::1/64
client alpha 10.137.1.2, fd00:137:1::2 on lan1
client beta  10.137.2.2, fd00:137:2::2 on lan2
nat from { lan1, lan2 } to uplink
dns from lan1 to upstream
pass from { lan1, lan2 } to uplink
default block log
";

fn slaac_with(lines: &str) -> String {
    format!("{SLAAC_UPLINK}{lines}")
}

#[test]
fn dns_asked_of_the_appliances_ipv6_address_goes_to_the_resolver_the_router_advertises() {
    let text = slaac_with("test pass udp [fd00:137:1::2]:40000 -> self:53\n");
    assert_eq!(errors(&text), "");
}

#[test]
fn dns_from_a_client_the_redirect_does_not_cover_gets_the_policys_verdict() {
    let text = slaac_with("test block log udp [fd00:137:2::2]:40000 -> self:53\n");
    assert_eq!(errors(&text), "");
    let wrong = slaac_with("test pass udp [fd00:137:2::2]:40000 -> self:53\n");
    assert!(
        errors(&wrong).contains("expected pass, got block log, decided by the default at 9:1"),
        "{}",
        errors(&wrong)
    );
}

#[test]
fn a_dns_test_must_hold_for_every_resolver_the_router_may_advertise() {
    let text = SLAAC_UPLINK.replace(
        "pass from { lan1, lan2 } to uplink\n",
        "block from lan1 to 2a00::/16\n\
         pass from { lan1, lan2 } to uplink\n",
    ) + "test pass udp [fd00:137:1::2]:40000 -> self:53\n";
    assert!(
        errors(&text).contains(
            "expected pass, got block when the destination is 2a00::, decided by the rule at 8:1 \
             (after the DNS redirect at 7:1 to the resolver the router advertises (2a00:: here))"
        ),
        "{}",
        errors(&text)
    );
}

#[test]
fn explain_shows_the_stand_in_advertisement_a_slaac_uplink_learns_from() {
    let compiled = rules::compile("t.rules", SLAAC_UPLINK).expect("compiles");
    let text = rules::explain::explain(
        &compiled.file,
        &compiled.checked,
        &compiled.policy.as_policy(),
        "udp [fd00:137:1::2]:40000 -> self:53",
    )
    .expect("explains");
    assert!(
        text.contains("the resolver the router advertises"),
        "redirected to the advertised resolver:\n{text}"
    );
    assert!(
        text.contains(
            "slaac:   uplink's IPv6 address, router and resolver are learned at run time"
        ),
        "names the stand-in:\n{text}"
    );
}
