//! The digest of a compiled policy: SHA-256 over a canonical byte encoding of everything
//! the data plane acts on (records and pools, source positions included, the file name
//! and the derived match index excluded). The same ruleset always gives the same digest.

use dataplane::policy::{Action, DnsUpstream, Ipv4Config, PolicyBuf, SourcePos, Span};
use sha2::{Digest, Sha256};

/// Hex SHA-256 of the canonical encoding of `buf`.
pub fn policy_digest(buf: &PolicyBuf) -> String {
    let mut e = Encoder(Sha256::new());
    e.bytes(b"moat-policy-v1");
    e.len(buf.interfaces.len());
    for i in &buf.interfaces {
        e.span(i.name);
        e.u8(i.nic);
        match i.ipv4 {
            Ipv4Config::None => e.u8(0),
            Ipv4Config::Dhcp => e.u8(1),
            Ipv4Config::Static {
                address,
                prefix_len,
                gateway,
            } => {
                e.u8(2);
                e.u32(address);
                e.u8(prefix_len);
                e.u32(gateway.unwrap_or(0));
                e.u8(gateway.is_some().into());
            }
        }
        e.span(i.dns_servers);
        e.u8(i.uplink.into());
        e.u16(i.mtu);
        e.pos(i.pos);
    }
    e.len(buf.clients.len());
    for c in &buf.clients {
        e.span(c.name);
        e.u8(c.nic);
        e.u8(c.ipv4.is_some().into());
        e.u32(c.ipv4.unwrap_or(0));
        e.u8(c.ipv6.is_some().into());
        e.u128(c.ipv6.unwrap_or(0));
        e.u32(c.max_states);
        e.pos(c.pos);
    }
    e.len(buf.rules.len());
    for r in &buf.rules {
        e.pos(r.pos);
        e.action(r.action);
        e.u8(r.log.into());
        e.u32(r.limits.max_states);
        e.u32(r.limits.max_states_per_source);
        for span in [
            r.in_nic,
            r.out,
            r.protocol,
            r.src,
            r.dst,
            r.src_port,
            r.dst_port,
            r.icmp_type,
            r.icmp_code,
        ] {
            e.span(span);
        }
    }
    e.pos(buf.default.pos);
    e.u8(buf.default.reject.into());
    e.u8(buf.default.log.into());
    e.len(buf.masquerade.len());
    for m in &buf.masquerade {
        e.span(m.in_nic);
        e.span(m.src);
        e.u8(m.out_nic);
        e.pos(m.pos);
    }
    e.len(buf.forwards.len());
    for f in &buf.forwards {
        e.u8(f.in_nic);
        e.u8(f.protocol);
        e.u16(f.ports.first);
        e.u16(f.ports.last);
        e.u32(f.target);
        e.u16(f.target_port);
        e.pos(f.pos);
    }
    e.len(buf.dns.len());
    for d in &buf.dns {
        e.span(d.in_nic);
        match d.upstream {
            DnsUpstream::Learned => e.u8(0),
            DnsUpstream::Static(span) => {
                e.u8(1);
                e.span(span);
            }
        }
        e.pos(d.pos);
    }
    e.len(buf.names.len());
    e.bytes(buf.names.as_bytes());
    e.len(buf.addr_ranges.len());
    for r in &buf.addr_ranges {
        e.u128(r.first);
        e.u128(r.last);
    }
    e.len(buf.port_ranges.len());
    for r in &buf.port_ranges {
        e.u16(r.first);
        e.u16(r.last);
    }
    e.len(buf.byte_ranges.len());
    for r in &buf.byte_ranges {
        e.u8(r.first);
        e.u8(r.last);
    }
    e.len(buf.ipv4_addrs.len());
    for &a in &buf.ipv4_addrs {
        e.u32(a);
    }
    e.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds fixed-width little-endian values to the hash.
struct Encoder(Sha256);

impl Encoder {
    fn bytes(&mut self, b: &[u8]) {
        self.0.update(b);
    }
    fn u8(&mut self, v: u8) {
        self.0.update([v]);
    }
    fn u16(&mut self, v: u16) {
        self.0.update(v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.update(v.to_le_bytes());
    }
    fn u128(&mut self, v: u128) {
        self.0.update(v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.0.update((n as u64).to_le_bytes());
    }
    fn span(&mut self, s: Span) {
        self.u32(s.start);
        self.u32(s.len);
    }
    fn pos(&mut self, p: SourcePos) {
        self.u32(p.line);
        self.u32(p.column);
    }
    fn action(&mut self, a: Action) {
        self.u8(match a {
            Action::Pass => 0,
            Action::Block => 1,
            Action::Reject => 2,
        });
    }
}
