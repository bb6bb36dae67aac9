//! Lowering: a [`Checked`] ruleset to the data plane's [`PolicyBuf`].
//!
//! Identical range lists share one span of their pool, so the compiled form stays small
//! (every unconstrained field of every rule points at the same full-range entry).

use std::collections::HashMap;
use std::net::IpAddr;

use dataplane::policy::{
    ipv4_to_flow_addr, AddrRange, AddressPool, ByteRange, Client, DhcpServer, DnsRedirect,
    DnsUpstream, Interface, Ipv4Config, Ipv6Config, Masquerade, PolicyBuf, PortForward, PortRange,
    Rule, Span,
};

use crate::checked::{Addressing, Addressing6, Checked, DnsTarget, NormRule};
use crate::ranges::RangeSet;
use crate::source::SourceFile;
use crate::space::{Field, KeySet};

/// Builds the policy (without digest and index) for `checked`.
pub fn lower(file: &SourceFile, checked: &Checked) -> PolicyBuf {
    let mut pools = Pools {
        buf: PolicyBuf::default(),
        addrs: HashMap::new(),
        ports: HashMap::new(),
        bytes: HashMap::new(),
    };
    pools.buf.source_name = file_name(file.name()).to_string();
    for iface in &checked.interfaces {
        let name = pools.buf.add_name(&iface.name);
        let dns: Vec<u32> = iface.dns.iter().map(|&a| a.into()).collect();
        let dns_servers = pools.buf.add_ipv4_addrs(&dns);
        let ipv4 = match iface.addressing {
            Addressing::None => Ipv4Config::None,
            Addressing::Dhcp => Ipv4Config::Dhcp,
            Addressing::Static {
                address,
                prefix_len,
                gateway,
            } => Ipv4Config::Static {
                address: address.into(),
                prefix_len,
                gateway: gateway.map(u32::from),
            },
        };
        let ipv6 = match iface.addressing6 {
            Addressing6::None => Ipv6Config::None,
            Addressing6::Slaac => Ipv6Config::Slaac,
            Addressing6::Static {
                address,
                prefix_len,
                gateway,
            } => Ipv6Config::Static {
                address: address.into(),
                prefix_len,
                gateway: gateway.map(u128::from),
            },
        };
        pools.buf.interfaces.push(Interface {
            name,
            nic: iface.nic,
            ipv4,
            ipv6,
            router_adverts: iface.router_adverts,
            dns_servers,
            uplink: iface.uplink,
            mtu: iface.mtu,
            pos: iface.pos,
        });
    }
    for client in &checked.clients {
        let name = pools.buf.add_name(&client.name);
        pools.buf.clients.push(Client {
            name,
            nic: client.nic,
            ipv4: client.ipv4.map(u32::from),
            ipv6: client.ipv6.map(u128::from),
            mac: client.mac,
            max_states: client.max_states,
            pos: client.pos,
        });
    }
    for rule in &checked.rules {
        for part in &rule.parts {
            let lowered = pools.rule(part, rule);
            pools.buf.rules.push(lowered);
        }
    }
    pools.buf.default = checked.default;
    for m in &checked.masquerades {
        let in_nic = pools.bytes(&m.in_nic);
        let src = pools.addrs(&m.src);
        let pos = file.position(m.loc.start);
        pools.buf.masquerade.push(Masquerade {
            in_nic,
            src,
            out_nic: m.out_nic,
            pos,
        });
    }
    for f in &checked.forwards {
        pools.buf.forwards.push(PortForward {
            in_nic: f.in_nic,
            protocol: f.protocol,
            ports: PortRange {
                first: f.ports.0,
                last: f.ports.1,
            },
            target: match f.target {
                IpAddr::V4(v4) => ipv4_to_flow_addr(v4.into()),
                IpAddr::V6(v6) => v6.into(),
            },
            target_port: f.target_port,
            pos: file.position(f.loc.start),
        });
    }
    for d in &checked.dns {
        let in_nic = pools.bytes(&d.in_nics);
        let upstream = match &d.target {
            DnsTarget::Learned(_) => DnsUpstream::Learned,
            DnsTarget::Static(addrs) => {
                let addrs: Vec<u32> = addrs.iter().map(|&a| a.into()).collect();
                DnsUpstream::Static(pools.buf.add_ipv4_addrs(&addrs))
            }
        };
        let at: Vec<u32> = d.at.iter().map(|&a| a.into()).collect();
        let at = pools.buf.add_ipv4_addrs(&at);
        pools.buf.dns.push(DnsRedirect {
            at,
            in_nic,
            upstream,
            pos: file.position(d.loc.start),
        });
    }
    for d in &checked.dhcp {
        pools.buf.dhcp_servers.push(DhcpServer {
            nic: d.nic,
            pool: d.pool.map(|(first, last)| AddressPool {
                first: first.into(),
                last: last.into(),
            }),
            lease_secs: d.lease_secs,
            max_states: d.max_states,
            pos: file.position(d.loc.start),
        });
    }
    pools.buf
}

/// The last component of a path (what the boot banner shows).
pub fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// The buffer being filled and the spans of range lists already in its pools.
struct Pools {
    buf: PolicyBuf,
    addrs: HashMap<RangeSet, Span>,
    ports: HashMap<RangeSet, Span>,
    bytes: HashMap<RangeSet, Span>,
}

impl Pools {
    /// One normalised part of `rule` as a compiled rule.
    fn rule(&mut self, part: &KeySet, rule: &NormRule) -> Rule {
        Rule {
            pos: rule.pos,
            action: rule.action,
            log: rule.log,
            allow_opts: rule.allow_opts,
            limits: rule.limits,
            in_nic: self.bytes(part.get(Field::InNic)),
            out: self.bytes(part.get(Field::Out)),
            protocol: self.bytes(part.get(Field::Protocol)),
            src: self.addrs(part.get(Field::Src)),
            dst: self.addrs(part.get(Field::Dst)),
            src_port: self.ports(part.get(Field::SrcPort)),
            dst_port: self.ports(part.get(Field::DstPort)),
            icmp_type: self.bytes(part.get(Field::IcmpType)),
            icmp_code: self.bytes(part.get(Field::IcmpCode)),
            redirect: self.bytes(part.get(Field::Redirect)),
        }
    }

    fn addrs(&mut self, set: &RangeSet) -> Span {
        let ranges = |set: &RangeSet| -> Vec<AddrRange> {
            set.ranges()
                .iter()
                .map(|&(first, last)| AddrRange { first, last })
                .collect()
        };
        intern(&mut self.addrs, set, |s| {
            self.buf.add_addr_ranges(&ranges(s))
        })
    }

    fn ports(&mut self, set: &RangeSet) -> Span {
        let ranges = |set: &RangeSet| -> Vec<PortRange> {
            let port = |v: u128| v as u16;
            set.ranges()
                .iter()
                .map(|&(a, b)| PortRange {
                    first: port(a),
                    last: port(b),
                })
                .collect()
        };
        intern(&mut self.ports, set, |s| {
            self.buf.add_port_ranges(&ranges(s))
        })
    }

    fn bytes(&mut self, set: &RangeSet) -> Span {
        let ranges = |set: &RangeSet| -> Vec<ByteRange> {
            let byte = |v: u128| v as u8;
            set.ranges()
                .iter()
                .map(|&(a, b)| ByteRange {
                    first: byte(a),
                    last: byte(b),
                })
                .collect()
        };
        intern(&mut self.bytes, set, |s| {
            self.buf.add_byte_ranges(&ranges(s))
        })
    }
}

/// The span of `set` in a pool: the one it already has, or a new one made by `add`.
fn intern(
    spans: &mut HashMap<RangeSet, Span>,
    set: &RangeSet,
    add: impl FnOnce(&RangeSet) -> Span,
) -> Span {
    if let Some(&span) = spans.get(set) {
        return span;
    }
    let span = add(set);
    spans.insert(set.clone(), span);
    span
}
