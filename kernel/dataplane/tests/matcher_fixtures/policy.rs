//! A policy using every part of the model, shared by the policy blob tests.

use dataplane::policy::*;

use super::support;

/// A policy using every part of the model: 200 generated rules, and interfaces, clients,
/// NAT, forwards, DNS redirects of every kind and a DHCP server, with quotes, a tab and a
/// non-ASCII letter in its text.
pub fn fixture() -> PolicyBuf {
    let mut buf = support::realistic_policy(200, 42);
    buf.source_name = "fixture \"quoted\"\tname.rules".to_string();
    buf.digest = "0123456789abcdef".to_string();
    let uplink = buf.add_name("uplink");
    let lan = buf.add_name("lan");
    let work = buf.add_name("wörk");
    let dns = buf.add_ipv4_addrs(&[0x0a00_0203, 0x0101_0101]);
    let pos = |line| SourcePos { line, column: 1 };
    buf.interfaces = vec![
        Interface {
            mtu: MAX_MTU,
            name: uplink,
            nic: 0,
            ipv4: Ipv4Config::Static {
                address: 0x0a00_020f,
                prefix_len: 24,
                gateway: Some(0x0a00_0202),
            },
            ipv6: Ipv6Config::Static {
                address: 0x2001_0db8_0000_0000_0000_0000_0000_0002,
                prefix_len: 64,
                gateway: Some(0xfe80_0000_0000_0000_0000_0000_0000_0001),
            },
            router_adverts: false,
            dns_servers: dns,
            uplink: true,
            pos: pos(1),
        },
        Interface {
            mtu: MAX_MTU,
            name: lan,
            nic: 1,
            ipv4: Ipv4Config::Dhcp,
            ipv6: Ipv6Config::Slaac,
            router_adverts: false,
            dns_servers: Span::EMPTY,
            uplink: false,
            pos: pos(2),
        },
        Interface {
            mtu: MAX_MTU,
            name: lan,
            nic: 2,
            ipv4: Ipv4Config::Static {
                address: 0x0a89_0201,
                prefix_len: 24,
                gateway: None,
            },
            ipv6: Ipv6Config::Static {
                address: 0xfd00_0137_0002_0000_0000_0000_0000_0001,
                prefix_len: 64,
                gateway: None,
            },
            router_adverts: true,
            dns_servers: Span::EMPTY,
            uplink: false,
            pos: pos(3),
        },
        Interface {
            mtu: MAX_MTU,
            name: lan,
            nic: 3,
            ipv4: Ipv4Config::None,
            ipv6: Ipv6Config::None,
            router_adverts: false,
            dns_servers: Span::EMPTY,
            uplink: false,
            pos: pos(4),
        },
    ];
    buf.clients = vec![
        Client {
            name: work,
            nic: 1,
            ipv4: Some(0x0a89_010a),
            ipv6: Some(0xfd00 << 112 | 0x10),
            mac: Some([0x00, 0x16, 0x3e, 0x5e, 0x6c, 0x00]),
            max_states: 64,
            pos: pos(5),
        },
        Client {
            name: work,
            nic: 2,
            ipv4: None,
            ipv6: None,
            mac: None,
            max_states: 0,
            pos: pos(6),
        },
    ];
    let lan_nics = buf.add_byte_ranges(&[ByteRange { first: 1, last: 3 }]);
    let lan_net = buf.add_addr_ranges(&[AddrRange {
        first: ipv4_to_flow_addr(0x0a89_0000),
        last: ipv4_to_flow_addr(0x0a89_ffff),
    }]);
    buf.masquerade = vec![Masquerade {
        in_nic: lan_nics,
        src: lan_net,
        out_nic: 0,
        pos: pos(7),
    }];
    buf.forwards = vec![PortForward {
        in_nic: 0,
        protocol: 6,
        ports: PortRange {
            first: 8022,
            last: 8023,
        },
        target: dataplane::policy::ipv4_to_flow_addr(0x0a89_010a),
        target_port: 22,
        pos: pos(8),
    }];
    buf.dhcp_servers = vec![DhcpServer {
        nic: 2,
        pool: Some(AddressPool {
            first: 0x0a89_0264,
            last: 0x0a89_02c8,
        }),
        lease_secs: 3600,
        max_states: 512,
        pos: pos(12),
    }];
    buf.dns = vec![
        DnsRedirect {
            at: dns,
            in_nic: lan_nics,
            upstream: DnsUpstream::Learned,
            pos: pos(9),
        },
        DnsRedirect {
            at: Span::EMPTY,
            in_nic: lan_nics,
            upstream: DnsUpstream::Static(dns),
            pos: pos(10),
        },
    ];
    buf.default = DefaultRule {
        pos: pos(300),
        reject: true,
        log: true,
    };
    buf.build_index();
    buf
}
