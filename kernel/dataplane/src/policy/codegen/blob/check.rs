//! That every span of a decoded policy lies inside the pool it points into.
//!
//! Which field points into which pool (see the model's field docs):
//!
//! - `names`: the `name` of interfaces and clients (whole characters, too);
//! - `addr_ranges`: `src` and `dst` of rules, `src` of `nat` rules;
//! - `port_ranges`: `src_port` and `dst_port` of rules;
//! - `byte_ranges`: `in_nic`, `out`, `protocol`, `icmp_type`, `icmp_code` and `redirect` of
//!   rules, `in_nic` of `nat` rules and DNS redirects;
//! - `ipv4_addrs`: `dns_servers` of interfaces, `at` and a static `upstream` of DNS
//!   redirects.
//!
//! Port forwards, DHCP servers and the default rule hold no spans.

use super::super::flat::List;
use super::error::{BlobError, Record};
use crate::policy::{DnsUpstream, PolicyBuf, Span};

/// Checks every span of `policy` against its pool.
pub(super) fn spans(policy: &PolicyBuf) -> Result<(), BlobError> {
    let pools = Pools::of(policy);
    for (index, interface) in policy.interfaces.iter().enumerate() {
        let at = pools.record(List::Interfaces, index);
        at.name("name", interface.name)?;
        at.within("dns_servers", interface.dns_servers, List::Ipv4Addrs)?;
    }
    for (index, client) in policy.clients.iter().enumerate() {
        pools
            .record(List::Clients, index)
            .name("name", client.name)?;
    }
    for (index, rule) in policy.rules.iter().enumerate() {
        let at = pools.record(List::Rules, index);
        at.within("src", rule.src, List::AddrRanges)?;
        at.within("dst", rule.dst, List::AddrRanges)?;
        at.within("src_port", rule.src_port, List::PortRanges)?;
        at.within("dst_port", rule.dst_port, List::PortRanges)?;
        let bytes = [
            ("in_nic", rule.in_nic),
            ("out", rule.out),
            ("protocol", rule.protocol),
            ("icmp_type", rule.icmp_type),
            ("icmp_code", rule.icmp_code),
            ("redirect", rule.redirect),
        ];
        for (field, span) in bytes {
            at.within(field, span, List::ByteRanges)?;
        }
    }
    for (index, nat) in policy.masquerade.iter().enumerate() {
        let at = pools.record(List::Masquerade, index);
        at.within("in_nic", nat.in_nic, List::ByteRanges)?;
        at.within("src", nat.src, List::AddrRanges)?;
    }
    for (index, dns) in policy.dns.iter().enumerate() {
        let at = pools.record(List::Dns, index);
        at.within("in_nic", dns.in_nic, List::ByteRanges)?;
        at.within("at", dns.at, List::Ipv4Addrs)?;
        if let DnsUpstream::Static(resolvers) = dns.upstream {
            at.within("upstream", resolvers, List::Ipv4Addrs)?;
        }
    }
    Ok(())
}

/// The pools of a policy, as far as spans need them.
struct Pools<'a> {
    names: &'a str,
    addr_ranges: usize,
    port_ranges: usize,
    byte_ranges: usize,
    ipv4_addrs: usize,
}

impl<'a> Pools<'a> {
    fn of(policy: &'a PolicyBuf) -> Pools<'a> {
        Pools {
            names: &policy.names,
            addr_ranges: policy.addr_ranges.len(),
            port_ranges: policy.port_ranges.len(),
            byte_ranges: policy.byte_ranges.len(),
            ipv4_addrs: policy.ipv4_addrs.len(),
        }
    }

    /// Record `index` of `list`, to check its spans.
    fn record(&self, list: List, index: usize) -> At<'_> {
        At {
            pools: self,
            record: Record { list, index },
        }
    }

    /// Items in `pool` (bytes for `names`).
    fn len(&self, pool: List) -> usize {
        match pool {
            List::Names => self.names.len(),
            List::AddrRanges => self.addr_ranges,
            List::PortRanges => self.port_ranges,
            List::ByteRanges => self.byte_ranges,
            List::Ipv4Addrs => self.ipv4_addrs,
            _ => 0,
        }
    }
}

/// One record whose spans are being checked.
struct At<'a> {
    pools: &'a Pools<'a>,
    record: Record,
}

impl At<'_> {
    /// Checks that `span` (the record's `field`) lies inside `pool`.
    fn within(&self, field: &'static str, span: Span, pool: List) -> Result<(), BlobError> {
        let pool_len = self.pools.len(pool);
        let end = u64::from(span.start) + u64::from(span.len);
        if end > pool_len as u64 {
            return Err(BlobError::Span {
                record: self.record,
                field,
                span,
                pool,
                pool_len,
            });
        }
        Ok(())
    }

    /// Checks that `span` (the record's `field`) is whole characters of `names`.
    fn name(&self, field: &'static str, span: Span) -> Result<(), BlobError> {
        self.within(field, span, List::Names)?;
        if span.str_of(self.pools.names).len() != span.len as usize {
            return Err(BlobError::SplitName {
                record: self.record,
                field,
                span,
            });
        }
        Ok(())
    }
}
