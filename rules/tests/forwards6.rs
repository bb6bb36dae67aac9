//! Port forwards over IPv6: a forward to a client by name works in each family the client
//! and the interface have an address of; to an address, in that address's family.

use dataplane::policy::flow_addr_to_ipv4;

/// A dual-stack uplink and client network, Qubes-style (NAT66), with one dual-stack
/// client, one IPv4-only and one IPv6-only.
const DUAL: &str = "\
interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3 address6 2001:db8:2::15/64 gateway6 fe80::2
interface clients nic1 address 10.137.1.1/24 address6 fd00:137:1::1/64
client work   10.137.1.10, fd00:137:1::10 on clients
client legacy 10.137.1.11 on clients
client modern fd00:137:1::12 on clients
nat from clients to uplink
";

fn compiled(text: &str) -> rules::Compiled {
    rules::compile("t.rules", text).unwrap_or_else(|e| panic!("does not compile:\n{}", e.render()))
}

fn errors(text: &str) -> String {
    match rules::compile("t.rules", text) {
        Ok(_) => panic!("expected the ruleset to be rejected:\n{text}"),
        Err(e) => e.render(),
    }
}

/// The targets of the compiled forwards, as text, in order.
fn targets(text: &str) -> Vec<String> {
    let compiled = compiled(text);
    let policy = compiled.policy.as_policy();
    policy
        .forwards
        .iter()
        .map(|f| match flow_addr_to_ipv4(f.target) {
            Some(v4) => std::net::Ipv4Addr::from(v4).to_string(),
            None => std::net::Ipv6Addr::from(f.target).to_string(),
        })
        .collect()
}

#[test]
fn a_forward_to_a_dual_stack_client_works_in_both_families() {
    let text = format!(
        "{DUAL}forward uplink tcp port 2222 to work port 22
pass forwarded from uplink to work tcp port 22
default block log
test pass tcp 203.0.113.9:40000 -> 10.0.2.15:2222 on uplink
test pass tcp [2001:db8::9]:40000 -> [2001:db8:2::15]:2222 on uplink
test block log tcp [2001:db8::9]:40000 -> [fd00:137:1::10]:22 on uplink
test block log tcp [2001:db8::9]:40000 -> [2001:db8:2::15]:2223 on uplink
"
    );
    assert_eq!(targets(&text), ["10.137.1.10", "fd00:137:1::10"]);
}

#[test]
fn a_forward_to_an_address_or_a_single_stack_client_works_in_its_family() {
    let forward = |line: &str| {
        targets(&format!(
            "{DUAL}{line}\npass forwarded from uplink to clients\n"
        ))
    };
    assert_eq!(
        forward("forward uplink tcp port 2222 to legacy port 22"),
        ["10.137.1.11"]
    );
    assert_eq!(
        forward("forward uplink tcp port 2222 to modern port 22"),
        ["fd00:137:1::12"]
    );
    assert_eq!(
        forward("forward uplink tcp port 2222 to fd00:137:1::10 port 22"),
        ["fd00:137:1::10"]
    );
    assert_eq!(
        forward("forward uplink { tcp, udp } port 2222 to work port 22"),
        [
            "10.137.1.10",
            "fd00:137:1::10",
            "10.137.1.10",
            "fd00:137:1::10"
        ]
    );
    // One port forwarded per family to different clients is no overlap.
    assert_eq!(
        forward("forward uplink tcp port 2222 to legacy port 22\nforward uplink tcp port 2222 to modern port 22"),
        ["10.137.1.11", "fd00:137:1::12"]
    );
}

#[test]
fn a_forward_needs_an_address_of_its_family_on_the_interface() {
    let ipv4_uplink = "\
interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2
interface clients nic1 address 10.137.1.1/24 address6 fd00:137:1::1/64
client work   10.137.1.10, fd00:137:1::10 on clients
client modern fd00:137:1::12 on clients
";
    // The dual-stack client is forwarded to over IPv4 only: no IPv6 flow can be
    // addressed to the appliance on that uplink.
    let text = format!("{ipv4_uplink}forward uplink tcp port 2222 to work port 22\npass forwarded from uplink to work\n");
    assert_eq!(targets(&text), ["10.137.1.10"]);
    let out = errors(&format!(
        "{ipv4_uplink}forward uplink tcp port 2222 to modern port 22\n"
    ));
    assert!(
        out.contains("5:33: error: interface 'uplink' has no IPv6 address to forward from"),
        "{out}"
    );
}

#[test]
fn an_ipv6_forward_no_rule_passes_is_a_warning() {
    // The rule passes the IPv4 target only.
    let text = format!(
        "{DUAL}forward uplink tcp port 2222 to work port 22\npass forwarded from uplink to 10.137.1.10 tcp port 22\n"
    );
    let warnings = compiled(&text).render_warnings();
    assert!(
        warnings.contains(
            "warning: no rule passes this forward's traffic: tcp from uplink to work port 22"
        ),
        "{warnings}"
    );
}

#[test]
fn test_lines_reach_the_appliances_slaac_address_and_its_forwards() {
    // The uplink's IPv6 address comes from its router: the test runs against the address
    // the appliance forms from the compiler's stand-in advertisement.
    let text = "\
interface wan  nic0 dhcp slaac
interface home nic1 address 192.168.10.1/24 address6 fd00:10::1/64 ra
client nas 192.168.10.2, fd00:10::2 on home
nat from home to wan
forward wan tcp port 443 to nas
pass forwarded from wan to nas tcp port 443
pass from home to wan
default block log
test pass tcp [2001:db8:99::7]:40000 -> self:443 on wan
test block log tcp [2001:db8:99::7]:40000 -> self:22 on wan
test block log tcp [2001:db8:99::7]:40000 -> [fd00:10::2]:443 on wan
";
    assert_eq!(targets(text), ["192.168.10.2", "fd00:10::2"]);
    // A wrong expectation about it fails, with the kernel's reason.
    let out = errors(&format!(
        "{text}test pass tcp [2001:db8:99::7]:40000 -> self:22 on wan\n"
    ));
    assert!(
        out.contains("12:1: error: test failed: expected pass, got block log"),
        "{out}"
    );
}
