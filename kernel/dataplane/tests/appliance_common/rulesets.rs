//! The rulesets of the pipeline tests, compiled by the `rules` crate from their text.

use std::sync::LazyLock;

use dataplane::policy::PolicyBuf;

/// The policy of ruleset `text`; a ruleset that does not compile fails the test with the
/// compiler's diagnostics.
fn compile(name: &str, text: &str) -> PolicyBuf {
    match rules::compile(name, text) {
        Ok(compiled) => compiled.policy,
        Err(error) => panic!("{name} does not compile:\n{}", error.render()),
    }
}

/// `rules/default.rules`, the default image's ruleset.
pub static DEFAULT: LazyLock<PolicyBuf> = LazyLock::new(|| {
    compile(
        "default.rules",
        include_str!("../../../../rules/default.rules"),
    )
});

/// Qubes-style: the clients are declared (proxy ARP, strict anti-spoofing); `work` gets
/// SSH forwarded from the uplink's port 8022, `personal` SIP on UDP 5060.
pub static DECLARED: LazyLock<PolicyBuf> = LazyLock::new(|| {
    compile(
        "declared.rules",
        "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3
         interface clients nic1 address 10.137.1.1/24
         client work     10.137.1.10 on clients
         client personal 10.137.1.11 on clients
         nat from clients to uplink
         dns from clients to upstream
         forward uplink tcp port 8022 to work port 22
         forward uplink udp port 5060 to personal
         pass from uplink to work tcp port 22
         pass from uplink to personal udp port 5060
         pass from clients to self icmp type echo-request
         pass from clients to uplink
         default block log",
    )
});

/// The default shape with mail and NetBIOS refused out loud.
pub static REJECTING: LazyLock<PolicyBuf> = LazyLock::new(|| {
    compile(
        "rejecting.rules",
        "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3
         interface clients nic1 address 10.137.1.1/24
         nat from clients to uplink
         reject from clients to uplink tcp port 25
         reject from clients to uplink udp port 137
         pass from clients to uplink
         default block log",
    )
});

/// Two client networks, each allowed out, neither allowed into the other.
pub static TWO_NETWORKS: LazyLock<PolicyBuf> = LazyLock::new(|| {
    compile(
        "two-networks.rules",
        "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3
         interface clients nic1 address 10.137.1.1/24
         interface lab     nic2 address 10.137.2.1/24
         nat from { clients, lab } to uplink
         pass from { clients, lab } to uplink
         default block log",
    )
});

/// The default shape with the uplink addressed by DHCP.
pub static DHCP_UPLINK: LazyLock<PolicyBuf> = LazyLock::new(|| {
    compile(
        "dhcp-uplink.rules",
        "interface uplink  nic0 dhcp
         interface clients nic1 address 10.137.1.1/24
         nat from clients to uplink
         dns from clients to upstream
         pass from clients to uplink
         default block log",
    )
});

/// State limits: `work` may hold two states, and only one SSH connection leaves at a time.
pub static LIMITED: LazyLock<PolicyBuf> = LazyLock::new(|| {
    compile(
        "limited.rules",
        "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3
         interface clients nic1 address 10.137.1.1/24
         client work     10.137.1.10 on clients max-states 2
         client personal 10.137.1.11 on clients
         nat from clients to uplink
         pass from clients to uplink tcp port 22 max-states 1
         pass from clients to uplink
         default block log",
    )
});

/// `rules/examples/ipv4-only.rules`: the default without IPv6, for tests that pin every
/// frame the appliance sends (no neighbour discovery, no router advertisements).
pub static IPV4_ONLY: LazyLock<PolicyBuf> = LazyLock::new(|| {
    compile(
        "ipv4-only.rules",
        include_str!("../../../../rules/examples/ipv4-only.rules"),
    )
});

/// `rules/default.rules` with a 1,400-byte uplink MTU (a PPPoE or VPN uplink).
pub static SMALL_UPLINK_MTU: LazyLock<PolicyBuf> = LazyLock::new(|| {
    compile(
        "small-mtu.rules",
        &include_str!("../../../../rules/default.rules")
            .replace("dns 10.0.2.3", "dns 10.0.2.3 mtu 1400"),
    )
});

/// `rules/default.rules` with SCTP to port 9999 blocked before everything else passes.
pub static SCTP_BLOCKED: LazyLock<PolicyBuf> = LazyLock::new(|| {
    compile(
        "sctp-blocked.rules",
        &include_str!("../../../../rules/default.rules").replacen(
            "pass from clients to uplink",
            "block from clients to uplink sctp port 9999\npass from clients to uplink",
            1,
        ),
    )
});

/// Clients out through the uplink; only UDP port 5004 (a multicast-style stream) may carry
/// IP options, and pings to the appliance may too.
pub static OPTIONS_ALLOWED: LazyLock<PolicyBuf> = LazyLock::new(|| {
    compile(
        "options-allowed.rules",
        "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3
         interface clients nic1 address 10.137.1.1/24
         nat from clients to uplink
         pass from clients to self icmp type echo-request allow-opts
         pass from clients to uplink udp port 5004 allow-opts
         pass from clients to uplink
         default block log",
    )
});

/// [`DECLARED`] with its port forward passed the way that opens nothing else: SSH reaches
/// `work` only through the forward.
pub static FORWARDED_ONLY: LazyLock<PolicyBuf> = LazyLock::new(|| {
    compile(
        "forwarded-only.rules",
        "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3
         interface clients nic1 address 10.137.1.1/24
         client work     10.137.1.10 on clients
         client personal 10.137.1.11 on clients
         nat from clients to uplink
         forward uplink tcp port 8022 to work port 22
         pass forwarded from uplink to work tcp port 22
         pass from clients to uplink
         default block log",
    )
});

/// Declared clients, `work`'s MAC pinned (Qubes knows every client's MAC).
pub static PINNED: LazyLock<PolicyBuf> = LazyLock::new(|| {
    compile(
        "pinned.rules",
        "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3
         interface clients nic1 address 10.137.1.1/24
         client work     10.137.1.10 mac 02:43:00:00:01:0a on clients
         client personal 10.137.1.11 on clients
         nat from clients to uplink
         pass from clients to uplink
         default block log",
    )
});

/// Only HTTPS leaves, through a 1,400-byte uplink (fragments are cut again on the way out).
pub static HTTPS_ONLY_SMALL_MTU: LazyLock<PolicyBuf> = LazyLock::new(|| {
    compile(
        "https-only.rules",
        "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3 mtu 1400
         interface clients nic1 address 10.137.1.1/24
         nat from clients to uplink
         pass from clients to uplink tcp port 443
         default block log",
    )
});

/// A served client network: `work` declared with a pinned MAC, `laptop` declared, the
/// others from a pool of four addresses leased for two minutes, each pool client held to
/// two states.
pub static SERVED: LazyLock<PolicyBuf> = LazyLock::new(|| {
    compile(
        "served.rules",
        "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3
         interface clients nic1 address 10.137.1.1/24 mtu 1400
         client work 10.137.1.10 mac 00:16:3e:5e:6c:00 on clients
         client laptop 10.137.1.11 on clients
         dhcp on clients pool 10.137.1.100-10.137.1.103 lease 2m max-states 2
         nat from clients to uplink
         dns from clients to upstream
         pass from clients to self icmp type echo-request
         pass from clients to uplink
         default block log",
    )
});

/// [`SERVED`] with IPv6: the clients, leased or declared, form addresses in
/// `fd00:137:1::/64` and are masqueraded behind the uplink's IPv6 address; every flow from
/// the clients' network is limited per source.
pub static SERVED_DUAL_STACK: LazyLock<PolicyBuf> = LazyLock::new(|| {
    compile(
        "served-dual-stack.rules",
        "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3 address6 2001:db8:2::15/64 gateway6 fe80::2
         interface clients nic1 address 10.137.1.1/24 address6 fd00:137:1::1/64
         client work 10.137.1.10, fd00:137:1::10 on clients max-states 3
         client v6only fd00:137:1::20 on clients max-states 3
         dhcp on clients pool 10.137.1.100-10.137.1.103 lease 2m max-states 2
         nat from clients to uplink
         pass from clients to uplink max-src-states 4
         default block log",
    )
});

/// Dual stack, Qubes-style: the clients have unique local IPv6 addresses, masqueraded
/// behind the uplink's IPv6 address like their IPv4 ones.
pub static DUAL_STACK: LazyLock<PolicyBuf> = LazyLock::new(|| {
    compile(
        "dual-stack.rules",
        "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3 address6 2001:db8:2::15/64 gateway6 fe80::2
         interface clients nic1 address 10.137.1.1/24 address6 fd00:137:1::1/64
         client work     10.137.1.10, fd00:137:1::10 on clients
         client personal 10.137.1.11, fd00:137:1::11 on clients
         nat from clients to uplink
         pass from clients to self { icmp, icmp6 } type echo-request
         reject from clients to uplink tcp port 25
         pass from clients to uplink
         default block log",
    )
});

/// Dual stack whose uplink knows only an IPv4 resolver (10.0.2.3), with the clients' DNS
/// redirected: a query to the appliance's IPv6 address crosses to IPv4. The uplink's MTU
/// is smaller than the clients' (TCP's MSS is lowered to fit both).
pub static DNS_ACROSS_FAMILIES: LazyLock<PolicyBuf> = LazyLock::new(|| {
    compile(
        "dns-across-families.rules",
        "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3 address6 2001:db8:2::15/64 gateway6 fe80::2 mtu 1400
         interface clients nic1 address 10.137.1.1/24 address6 fd00:137:1::1/64 ra
         client work     10.137.1.10, fd00:137:1::10 on clients
         nat from clients to uplink
         dns from clients to upstream
         pass from clients to uplink
         default block log",
    )
});

/// Dual stack with a port forward to a dual-stack client: the IPv4 and the IPv6 address
/// of the uplink forward to the client's own of the same family.
pub static FORWARD_DUAL_STACK: LazyLock<PolicyBuf> = LazyLock::new(|| {
    compile(
        "forward-dual-stack.rules",
        "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3 address6 2001:db8:2::15/64 gateway6 fe80::2
         interface clients nic1 address 10.137.1.1/24 address6 fd00:137:1::1/64
         client work     10.137.1.10, fd00:137:1::10 on clients
         nat from clients to uplink
         forward uplink tcp port 2222 to work port 22
         pass forwarded from uplink to work tcp port 22
         pass from clients to uplink
         default block log",
    )
});

/// Qubes' wiring: two point-to-point client links sharing the gateway address 10.137.0.1,
/// each with one qube at an address of its own.
pub static POINT_TO_POINT: LazyLock<PolicyBuf> = LazyLock::new(|| {
    compile(
        "point-to-point.rules",
        "interface uplink nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3
         interface vif1   nic1 address 10.137.0.1/32
         interface vif2   nic2 address 10.137.0.1/32
         client work     10.137.0.10 on vif1
         client personal 10.137.0.11 on vif2
         nat from { vif1, vif2 } to uplink
         pass from { vif1, vif2 } to self icmp type echo-request
         pass from { vif1, vif2 } to uplink
         default block log",
    )
});

/// Dual stack with a routed IPv6 prefix on the clients' network: IPv4 is masqueraded,
/// IPv6 is not.
pub static ROUTED_DUAL_STACK: LazyLock<PolicyBuf> = LazyLock::new(|| {
    compile(
        "routed-dual-stack.rules",
        "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 address6 2001:db8:2::15/64 gateway6 fe80::2
         interface clients nic1 address 10.137.1.1/24 address6 2001:db8:137::1/64
         nat from 10.137.1.0/24 to uplink
         pass from clients to uplink
         pass from uplink to 2001:db8:137::10 tcp port 22
         default block log",
    )
});

/// Dual stack behind an uplink whose MTU is IPv6's minimum.
pub static SMALL_MTU_DUAL_STACK: LazyLock<PolicyBuf> = LazyLock::new(|| {
    compile(
        "small-mtu-dual-stack.rules",
        "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 address6 2001:db8:2::15/64 gateway6 fe80::2 mtu 1280
         interface clients nic1 address 10.137.1.1/24 address6 fd00:137:1::1/64
         nat from clients to uplink
         pass from clients to uplink
         default block log",
    )
});
